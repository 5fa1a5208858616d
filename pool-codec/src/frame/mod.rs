//! Length-prefixed framing: a `u32` little-endian payload length, then the payload.
//!
//! Writers: [`write_frame`] (one payload to a [`Write`](std::io::Write)) and
//! [`encode_frame`] (encode a value as a frame at the end of a buffer). Readers:
//! [`FrameReader`] (pulls from a [`Read`](std::io::Read)) and [`FrameDecoder`] (bytes are
//! pushed in, for non-blocking and shared-memory transports).
//!
//! Both readers enforce a maximum frame size and grow their buffer only as bytes arrive:
//! never by the length a header claims. The bound is "at most
//! max(64 KiB, 2 × bytes received)" for [`FrameReader`] and "at most 2 × bytes fed" for
//! [`FrameDecoder`].

mod decoder;
mod error;
mod reader;
mod write;

pub use self::decoder::FrameDecoder;
pub use self::error::FrameError;
pub use self::reader::FrameReader;
pub use self::write::{encode_frame, write_frame};

/// Bytes in a frame header: the payload length as a `u32`, little-endian.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// let mut wire = Vec::new();
/// pool::codec::write_frame(&mut wire, b"abc")?;
/// assert_eq!(wire.len(), pool::codec::HEADER_LEN + 3);
/// assert_eq!(wire, [3, 0, 0, 0, b'a', b'b', b'c']);
/// # Ok::<(), pool::codec::FrameError>(())
/// ```
pub const HEADER_LEN: usize = 4;

/// The largest payload the format can describe: `u32::MAX` bytes (4 GiB − 1).
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// assert_eq!(pool::codec::MAX_FRAME_LIMIT, u32::MAX as usize);
/// ```
pub const MAX_FRAME_LIMIT: usize = u32::MAX as usize;

/// The maximum payload readers accept unless configured otherwise: 1 GiB.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{FrameReader, DEFAULT_MAX_FRAME};
/// assert_eq!(DEFAULT_MAX_FRAME, 1 << 30);
/// assert_eq!(FrameReader::new(&b""[..]).max_frame(), DEFAULT_MAX_FRAME);
/// ```
pub const DEFAULT_MAX_FRAME: usize = 1 << 30;

/// Reads the payload length from a complete header.
#[inline]
fn parse_header(header: &[u8]) -> usize {
    let mut len = [0u8; HEADER_LEN];
    len.copy_from_slice(&header[..HEADER_LEN]);
    u32::from_le_bytes(len) as usize
}
