//! [`MsgPack`]: MessagePack through `rmp-serde` (structs as arrays).

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::append_or_roll_back;
use crate::{Codec, CodecError};

/// [MessagePack](https://msgpack.org) through [rmp-serde](https://docs.rs/rmp-serde) 1.x,
/// with structs written as arrays (rmp-serde's default; no field names on the wire).
///
/// Integers take the smallest MessagePack form that holds the value; a byte string
/// (`serde_bytes`) is a `bin` header plus one `write_all` into the `Vec` (a single memcpy).
/// Decoding borrows from the input, checks every length against the bytes that remain, and
/// stops at a nesting depth of 1024, so hostile input can neither overflow the stack nor
/// make it allocate much more than the input. Unlike the other built-in codecs it does not
/// notice trailing bytes after the value (rmp-serde does not report how much it read).
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{Codec, MsgPack};
/// let mut buf = Vec::new();
/// MsgPack.encode(&(7u64, true), &mut buf)?;
/// assert_eq!(buf, [0x92, 0x07, 0xc3]);
/// let back: (u64, bool) = MsgPack.decode(&buf)?;
/// assert_eq!(back, (7, true));
/// # Ok::<(), pool::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MsgPack;

impl Codec for MsgPack {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("msgpack")
    }

    #[inline]
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        append_or_roll_back::<T, _>(self.name(), out, |out| rmp_serde::encode::write(out, value))
    }

    #[inline]
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        // rmp-serde does not say how many bytes it consumed, so trailing bytes after the
        // value go unnoticed (the only built-in codec where they do).
        rmp_serde::from_slice(bytes).map_err(|e| CodecError::decode::<T>(self.name(), e))
    }
}
