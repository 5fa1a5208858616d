//! Our pools, driven exactly like the references. (Interim: the backends are not merged yet.)

use crate::refs::Made;

/// A process-pool variant: the default transport, or a named one.
#[derive(Debug)]
pub struct ProcessVariant {
    /// Suffix of the scenario ids (`None` for the default transport).
    pub suffix: Option<&'static str>,
}

/// The variants measured.
pub const PROCESS_VARIANTS: &[ProcessVariant] = &[ProcessVariant { suffix: None }];

fn missing() -> Made {
    Err("backend not merged yet".into())
}

/// `thread.roundtrip`.
pub fn thread_roundtrip() -> Made {
    missing()
}
/// `thread.tasks_*`.
pub fn thread_tasks(_n: usize) -> Made {
    missing()
}
/// `thread.map_*`.
pub fn thread_map(_n: usize) -> Made {
    missing()
}
/// `process.roundtrip`.
pub fn process_roundtrip(_v: &ProcessVariant) -> Made {
    missing()
}
/// `process.tasks_*`.
pub fn process_tasks(_v: &ProcessVariant, _n: usize) -> Made {
    missing()
}
/// `process.map_*`.
pub fn process_map(_v: &ProcessVariant, _n: usize) -> Made {
    missing()
}
/// `process.bytes_*`.
pub fn process_bytes(_v: &ProcessVariant, _n: usize) -> Made {
    missing()
}
/// `process.cold_start`.
pub fn process_cold_start(_v: &ProcessVariant) -> Made {
    missing()
}
