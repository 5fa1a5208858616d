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

/// The codec a process pool uses unless told otherwise: the fastest *maintained* built-in
/// codec as measured by `benches/codecs.rs` on the project's machine (see the crate
/// README for the table and the reasoning).
///
/// # Examples
///
/// ```
/// use pool_codec::{Codec, DefaultCodec};
/// let codec = DefaultCodec::default();
/// let mut buf = Vec::new();
/// codec.encode(&vec![1u64, 2, 3], &mut buf)?;
/// assert_eq!(codec.decode::<Vec<u64>>(&buf)?, [1, 2, 3]);
/// # Ok::<(), pool_codec::CodecError>(())
/// ```
pub type DefaultCodec = MsgPack;
