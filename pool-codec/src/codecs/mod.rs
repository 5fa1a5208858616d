//! The built-in codecs and the [`DefaultCodec`] choice.

#[cfg(feature = "bincode")]
mod bincode;
mod json;
mod msgpack;
mod postcard;

#[cfg(feature = "bincode")]
pub use self::bincode::{BINCODE_DEFAULT_LIMIT, Bincode, BincodeLimited};
pub use self::json::Json;
pub use self::msgpack::MsgPack;
pub use self::postcard::Postcard;

/// Append one encoded value to `out` with `write`; if it fails, put `out` back as it was
/// (no half-written value stays behind) and say which codec failed on which type.
#[inline]
fn append_or_roll_back<T: ?Sized, E: std::fmt::Display>(
    codec: std::borrow::Cow<'static, str>,
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), crate::CodecError> {
    let start = out.len();
    write(out).map_err(|e| {
        out.truncate(start);
        crate::CodecError::encode::<T>(codec, e)
    })
}

/// The decode error of a codec that read a whole value and found `extra` bytes after it.
fn trailing_bytes<T: ?Sized>(
    codec: std::borrow::Cow<'static, str>,
    extra: usize,
) -> crate::CodecError {
    crate::CodecError::decode::<T>(
        codec,
        format_args!("{extra} trailing bytes after the value"),
    )
}

/// The codec a process pool uses unless told otherwise: the fastest *maintained* built-in
/// codec as measured by `benches/codecs.rs` on the project's machine (see the crate
/// README for the table and the reasoning).
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{Codec, DefaultCodec};
/// let codec = DefaultCodec::default();
/// let mut buf = Vec::new();
/// codec.encode(&vec![1u64, 2, 3], &mut buf)?;
/// assert_eq!(codec.decode::<Vec<u64>>(&buf)?, [1, 2, 3]);
/// # Ok::<(), pool::codec::CodecError>(())
/// ```
pub type DefaultCodec = MsgPack;
