//! The worker's codec: built once per worker process, from the configuration the parent
//! sent at SETUP (the codec probe's input), and used by every task's trampoline after that.
//!
//! A worker serves one pool, so it holds one codec: built by the codec probe in a worker of
//! the same build, or — in a named-tasks worker, which may be another binary — by the
//! registered task whose codec has the pool's codec name (`named::configure_codec`). Code
//! that runs with another codec type finds none of its type here and uses that type's
//! `Default`; the handshake only lets a pool use named tasks of its own codec's name.

use std::any::Any;
use std::sync::OnceLock;

use pool_codec::{Codec, CodecError};

static CODEC: OnceLock<Box<dyn Any + Send + Sync>> = OnceLock::new();

/// Builds the codec from the parent's configuration and keeps it for the tasks. Returns the
/// codec's name, for READY. A second call (a forked worker inherits nothing, so none is
/// expected) keeps the first codec.
pub(crate) fn install<C: Codec>(configuration: &[u8]) -> Result<String, CodecError> {
    let codec = C::configured(configuration)?;
    let name = codec.name().into_owned();
    let _ = CODEC.set(Box::new(codec));
    Ok(name)
}

/// Runs `f` with this worker's codec of type `C` (or `C::default()` when it has none).
#[inline]
pub(crate) fn with<C: Codec, T>(f: impl FnOnce(&C) -> T) -> T {
    // A zero-sized codec (every built-in one) has no settings to keep: any value of it is
    // the configured one, and making it costs nothing — no lookup on the hot path.
    if size_of::<C>() == 0 {
        return f(&C::default());
    }
    match CODEC.get().and_then(|c| c.downcast_ref::<C>()) {
        Some(codec) => f(codec),
        None => f(&C::default()),
    }
}
