//! Writing frames: [`write_frame`] and [`encode_frame`].

use std::io::{self, IoSlice, Write};

use serde::Serialize;

use super::{FrameError, HEADER_LEN, MAX_FRAME_LIMIT};
use crate::Codec;

/// Writes `payload` as one frame (a `u32` little-endian length, then the bytes).
///
/// Header and payload go out in vectored writes, so a large payload is not copied.
/// Partial writes and `Interrupted` are retried.
///
/// # Errors
///
/// [`FrameError::TooLarge`] if `payload` is longer than [`MAX_FRAME_LIMIT`] (nothing is
/// written); [`FrameError::Io`] if the writer fails (part of the frame may have been
/// written; the stream is then unusable).
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// let mut wire = Vec::new();
/// pool::codec::write_frame(&mut wire, b"hi")?;
/// assert_eq!(wire, [2, 0, 0, 0, b'h', b'i']);
/// # Ok::<(), pool::codec::FrameError>(())
/// ```
pub fn write_frame<W: Write + ?Sized>(w: &mut W, payload: &[u8]) -> Result<(), FrameError> {
    let header = header_for(payload.len())?;
    let mut bufs = [IoSlice::new(&header), IoSlice::new(payload)];
    let mut bufs = &mut bufs[..];
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => {
                return Err(FrameError::Io(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write the whole frame",
                )));
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(())
}

/// Encodes `value` with `codec` and appends it to `buf` as one complete frame.
///
/// Appending (rather than replacing) lets a caller batch several frames into one write.
/// On any error `buf` is left exactly as it was.
///
/// # Errors
///
/// [`FrameError::Codec`] if the codec fails; [`FrameError::TooLarge`] if the encoding is
/// longer than [`MAX_FRAME_LIMIT`].
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{encode_frame, Json};
/// let mut buf = Vec::new();
/// encode_frame(&Json, &[1, 2], &mut buf)?;
/// assert_eq!(buf, b"\x05\x00\x00\x00[1,2]");
/// # Ok::<(), pool::codec::FrameError>(())
/// ```
pub fn encode_frame<C: Codec, T: Serialize + ?Sized>(
    codec: &C,
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    if let Err(e) = codec.encode(value, buf) {
        buf.truncate(start);
        return Err(e.into());
    }
    match header_for(buf.len() - start - HEADER_LEN) {
        Ok(header) => {
            buf[start..start + HEADER_LEN].copy_from_slice(&header);
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// The header for a payload of `len` bytes.
fn header_for(len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    match u32::try_from(len) {
        Ok(n) => Ok(n.to_le_bytes()),
        Err(_) => Err(FrameError::TooLarge {
            claimed: len,
            max: MAX_FRAME_LIMIT,
        }),
    }
}
