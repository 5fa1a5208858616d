//! [`Json`]: human-readable JSON through `serde_json`, for debugging.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::append_or_roll_back;
use crate::{Codec, CodecError};

/// JSON through [serde_json](https://docs.rs/serde_json): readable on the wire, for
/// debugging and for talking to non-Rust peers. By far the slowest built-in codec.
///
/// Byte strings become arrays of numbers (up to four bytes of text per byte). Maps need
/// string-like keys. serde_json stops at a nesting depth of 128 and rejects trailing
/// non-whitespace.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{Codec, Json};
/// let mut buf = Vec::new();
/// Json.encode(&("a", 1), &mut buf)?;
/// assert_eq!(buf, br#"["a",1]"#);
/// let back: (String, i32) = Json.decode(&buf)?;
/// assert_eq!(back, ("a".to_string(), 1));
/// # Ok::<(), pool::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Json;

impl Codec for Json {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("json")
    }

    #[inline]
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        append_or_roll_back::<T, _>(self.name(), out, |out| serde_json::to_writer(out, value))
    }

    #[inline]
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::decode::<T>(self.name(), e))
    }
}
