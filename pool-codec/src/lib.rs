//! pool's wire layer: the [`Codec`] trait, the built-in serde codecs, and length-prefixed
//! framing.
//!
//! # Codecs
//!
//! A [`Codec`] turns any serde value into bytes and back. It is a compile-time choice (the
//! process pool is generic over `C: Codec = DefaultCodec`), so encoding is statically
//! dispatched. Built in:
//!
//! | codec | name | notes |
//! |---|---|---|
//! | [`MsgPack`] | `"msgpack"` | rmp-serde; **the [`DefaultCodec`]** (fastest maintained, see README) |
//! | [`Postcard`] | `"postcard"` | postcard 1.x; compact varints |
//! | `Bincode` | `"bincode2-fixint"` | bincode 2.0.1, *unmaintained* (RUSTSEC-2025-0141), feature `bincode` |
//! | [`Json`] | `"json"` | serde_json; readable, slow |
//!
//! A user codec is any type implementing [`Codec`]; parent and worker agree on it by
//! [`Codec::name`] at the handshake.
//!
//! # Framing
//!
//! A frame is a `u32` little-endian payload length followed by the payload. Writers:
//! [`write_frame`], [`encode_frame`]. Readers: [`FrameReader`] (blocking, over any
//! [`std::io::Read`]) and [`FrameDecoder`] (push bytes in, pull frames out). Both refuse a
//! frame longer than their maximum ([`DEFAULT_MAX_FRAME`] = 1 GiB unless configured) and
//! grow their buffer only as payload bytes actually arrive, so a lying length costs an
//! error, never an allocation of the claimed size.
//!
//! ```
//! # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
//! use pool::codec::{encode_frame, DefaultCodec, FrameReader};
//!
//! let mut wire = Vec::new();
//! encode_frame(&DefaultCodec::default(), &("task", 42u32), &mut wire)?;
//! encode_frame(&DefaultCodec::default(), &("task", 43u32), &mut wire)?;
//!
//! let mut reader = FrameReader::new(&wire[..]);
//! let first: (String, u32) = reader.read_value(&DefaultCodec::default())?.unwrap();
//! assert_eq!(first, ("task".to_string(), 42));
//! let second: (String, u32) = reader.read_value(&DefaultCodec::default())?.unwrap();
//! assert_eq!(second, ("task".to_string(), 43));
//! assert!(reader.read_frame()?.is_none()); // clean end of stream
//! # Ok::<(), pool::codec::FrameError>(())
//! ```

mod codec;
mod codecs;
mod frame;

pub use crate::codec::{Codec, CodecError, Direction};
#[cfg(feature = "bincode")]
pub use crate::codecs::{BINCODE_DEFAULT_LIMIT, Bincode, BincodeLimited};
pub use crate::codecs::{DefaultCodec, Json, MsgPack, Postcard};
pub use crate::frame::{
    DEFAULT_MAX_FRAME, FrameDecoder, FrameError, FrameReader, HEADER_LEN, MAX_FRAME_LIMIT,
    encode_frame, write_frame,
};
