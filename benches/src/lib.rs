//! pool: criterion benches and the side-by-side comparison binary `compare`.
//!
//! The library half holds what the binary and the criterion benches share: the measuring
//! loop ([`measure`]), the peers we compare against ([`refs`]), the raw pipe and spawn floors
//! ([`floor`]), the NATS server of the `nats.*` rows ([`mod@nats`]), our own pools driven the
//! same way ([`ours`]), the table of scenarios
//! ([`mod@scenarios`]) and the output formats ([`report`]). See `benches/README.md` for what each
//! scenario measures.

pub mod criterion_glue;
pub mod floor;
pub mod measure;
pub mod nats;
pub mod ours;
pub mod refs;
pub mod report;
pub mod scenarios;
pub mod work;

pub use measure::{Plan, Subject, measure_interleaved};
pub use report::Row;
pub use scenarios::{Scenario, scenarios};
