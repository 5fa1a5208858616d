//! [`Bincode`]: bincode 2.0.1 through its serde path, fixed-width integers, with an
//! allocation limit.
//!
//! bincode 2.0.1 is the last release of bincode (3.0.0 on crates.io is a tombstone whose
//! library is a `compile_error!`) and RUSTSEC-2025-0141 flags it unmaintained. It is pinned
//! to `~2.0.1`, sits behind the `bincode` cargo feature (on by default) and is never the
//! default codec.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{append_or_roll_back, trailing_bytes};
use crate::{Codec, CodecError};

/// The default allocation limit of [`Bincode`]: 1 GiB, the default maximum frame size.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// assert_eq!(pool::codec::BINCODE_DEFAULT_LIMIT, pool::codec::DEFAULT_MAX_FRAME);
/// ```
pub const BINCODE_DEFAULT_LIMIT: usize = 1 << 30;

/// [bincode](https://docs.rs/bincode) 2.0.1 through its serde path, little-endian,
/// fixed-width integers (faster than bincode's default varints on integer data), with an
/// allocation limit of `LIMIT` bytes.
///
/// **Unmaintained:** bincode 2.0.1 is the last release and RUSTSEC-2025-0141 flags it
/// unmaintained; this codec is pinned to `~2.0.1` and only built with the `bincode` feature
/// (on by default).
///
/// **Lying lengths:** bincode allocates a `String`, `Vec` or byte buffer of the length the
/// input *claims* before reading it. The `LIMIT` (a bincode config limit, counted over the
/// whole value) is what stops a corrupt length from asking for gigabytes: decoding fails
/// with "limit exceeded" instead. Lower it for untrusted peers, e.g.
/// [`BincodeLimited::<{ 16 << 20 }>`](BincodeLimited); the other built-in codecs need no such limit.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{Bincode, Codec};
/// let mut buf = Vec::new();
/// Bincode::default().encode(&(1u32, "ab"), &mut buf)?;
/// assert_eq!(buf, [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
/// let back: (u32, String) = Bincode::default().decode(&buf)?;
/// assert_eq!(back, (1, "ab".to_string()));
///
/// // A 16-byte limit: a string that claims more is refused before allocating.
/// let small = pool::codec::BincodeLimited::<16>;
/// assert!(small.decode::<String>(&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, b'x']).is_err());
/// # Ok::<(), pool::codec::CodecError>(())
/// ```
pub type Bincode = BincodeLimited<BINCODE_DEFAULT_LIMIT>;

/// [`Bincode`] with an allocation limit of `LIMIT` bytes instead of
/// [`BINCODE_DEFAULT_LIMIT`]. Same wire format and same [`name`](Codec::name).
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{BincodeLimited, Codec};
/// let codec = BincodeLimited::<{ 16 << 20 }>;
/// let mut buf = Vec::new();
/// codec.encode("small enough", &mut buf)?;
/// assert_eq!(codec.decode::<String>(&buf)?, "small enough");
/// # Ok::<(), pool::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BincodeLimited<const LIMIT: usize>;

impl<const LIMIT: usize> BincodeLimited<LIMIT> {
    #[inline]
    fn config() -> impl bincode::config::Config {
        bincode::config::standard()
            .with_little_endian()
            .with_fixed_int_encoding()
            .with_limit::<LIMIT>()
    }
}

impl<const LIMIT: usize> Codec for BincodeLimited<LIMIT> {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("bincode2-fixint")
    }

    #[inline]
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        append_or_roll_back::<T, _>(self.name(), out, |out| {
            bincode::serde::encode_into_std_write(value, out, Self::config()).map(drop)
        })
    }

    #[inline]
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        match bincode::serde::borrow_decode_from_slice(bytes, Self::config()) {
            Ok((value, read)) if read == bytes.len() => Ok(value),
            Ok((_, read)) => Err(trailing_bytes::<T>(self.name(), bytes.len() - read)),
            Err(e) => Err(CodecError::decode::<T>(self.name(), e)),
        }
    }
}
