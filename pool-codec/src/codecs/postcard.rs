//! [`Postcard`]: the postcard 1.x wire format (varint integers, no field names).

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{append_or_roll_back, trailing_bytes};
use crate::{Codec, CodecError};

/// The [postcard](https://docs.rs/postcard) 1.x format: compact (varint integers, no field
/// names), stable wire format, maintained.
///
/// Encoding writes straight into the caller's buffer; a byte string (`serde_bytes`) is a
/// varint length plus one `extend_from_slice` (a single memcpy). Decoding borrows from the
/// input, so it never allocates more than the input holds; sequence pre-allocation is capped
/// by serde (at most 1 MiB per sequence). postcard has no recursion limit: a recursive type
/// (a tree of `Box`es) fed hostile input can exhaust the stack.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{Codec, Postcard};
/// let mut buf = Vec::new();
/// Postcard.encode(&(300u32, "hi"), &mut buf)?;
/// assert_eq!(buf, [0xac, 0x02, 2, b'h', b'i']);
/// let (n, s): (u32, String) = Postcard.decode(&buf)?;
/// assert_eq!((n, s.as_str()), (300, "hi"));
/// # Ok::<(), pool::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Postcard;

/// A postcard output flavor that appends to a borrowed `Vec<u8>`.
struct AppendVec<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendVec<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline]
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl Codec for Postcard {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("postcard")
    }

    #[inline]
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        append_or_roll_back::<T, _>(self.name(), out, |out| {
            postcard::serialize_with_flavor(value, AppendVec(out))
        })
    }

    #[inline]
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        match postcard::take_from_bytes(bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(trailing_bytes::<T>(self.name(), rest.len())),
            Err(e) => Err(CodecError::decode::<T>(self.name(), e)),
        }
    }
}
