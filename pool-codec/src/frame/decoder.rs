//! [`FrameDecoder`]: a push-based frame decoder over byte slices.

use serde::de::DeserializeOwned;

use super::{DEFAULT_MAX_FRAME, FrameError, HEADER_LEN, MAX_FRAME_LIMIT, parse_header};
use crate::Codec;

/// Splits a byte stream that arrives in pieces into frames, without doing any I/O itself.
///
/// [`feed`](Self::feed) whatever bytes arrived (from a non-blocking socket, a shared-memory
/// ring, ...), then call [`next_frame`](Self::next_frame) until it returns `Ok(None)`. The
/// buffer only ever holds bytes that were fed (at most twice their size in capacity), so a
/// lying header costs nothing; a claimed length above the maximum is refused as soon as
/// the header is complete.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{write_frame, FrameDecoder};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, b"hello")?;
/// write_frame(&mut wire, b"world")?;
///
/// let mut d = FrameDecoder::new();
/// d.feed(&wire[..3]); // part of a header
/// assert_eq!(d.next_frame()?, None);
/// d.feed(&wire[3..]); // the rest
/// assert_eq!(d.next_frame()?, Some(&b"hello"[..]));
/// assert_eq!(d.next_frame()?, Some(&b"world"[..]));
/// assert_eq!(d.next_frame()?, None);
/// d.finish()?; // nothing left over
/// # Ok::<(), pool::codec::FrameError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the default maximum frame size, [`DEFAULT_MAX_FRAME`] (1 GiB).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let d = pool::codec::FrameDecoder::new();
    /// assert_eq!(d.max_frame(), pool::codec::DEFAULT_MAX_FRAME);
    /// ```
    pub fn new() -> Self {
        Self::with_max_frame(DEFAULT_MAX_FRAME)
    }

    /// A decoder that refuses payloads longer than `max` bytes (clamped to
    /// [`MAX_FRAME_LIMIT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{FrameDecoder, FrameError};
    /// let mut d = FrameDecoder::with_max_frame(2);
    /// d.feed(&[3, 0, 0, 0]);
    /// assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { claimed: 3, max: 2 })));
    /// ```
    pub fn with_max_frame(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max: max.min(MAX_FRAME_LIMIT),
        }
    }

    /// Appends bytes that arrived. Frames returned earlier are dropped from the buffer
    /// first, so the buffer holds at most the unreturned bytes plus `bytes`.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let mut d = pool::codec::FrameDecoder::new();
    /// d.feed(&[1, 0]);
    /// assert_eq!(d.buffered(), 2);
    /// ```
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, or `Ok(None)` if more bytes are needed. The
    /// payload borrows the decoder until the next call.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] when a complete header claims more than
    /// [`max_frame`](Self::max_frame). The stream cannot be resynchronised; every later
    /// call returns the same error.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let mut d = pool::codec::FrameDecoder::new();
    /// d.feed(&[1, 0, 0, 0]);
    /// assert_eq!(d.next_frame()?, None);
    /// d.feed(b"!");
    /// assert_eq!(d.next_frame()?, Some(&b"!"[..]));
    /// # Ok::<(), pool::codec::FrameError>(())
    /// ```
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = parse_header(avail);
        if len > self.max {
            return Err(FrameError::TooLarge {
                claimed: len,
                max: self.max,
            });
        }
        let total = HEADER_LEN + len;
        if avail.len() < total {
            return Ok(None);
        }
        let frame = self.start + HEADER_LEN..self.start + total;
        self.start += total;
        Ok(Some(&self.buf[frame]))
    }

    /// The next complete frame decoded with `codec`, or `Ok(None)` if more bytes are
    /// needed. The value may borrow from the decoder.
    ///
    /// # Errors
    ///
    /// As [`next_frame`](Self::next_frame), plus [`FrameError::Codec`] if the payload does
    /// not decode as a `T` (the frame is consumed).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{encode_frame, FrameDecoder, MsgPack};
    /// let mut wire = Vec::new();
    /// encode_frame(&MsgPack, &[1u16, 2], &mut wire)?;
    /// let mut d = FrameDecoder::new();
    /// d.feed(&wire);
    /// assert_eq!(d.next_value::<_, Vec<u16>>(&MsgPack)?, Some(vec![1, 2]));
    /// # Ok::<(), pool::codec::FrameError>(())
    /// ```
    pub fn next_value<C: Codec, T: DeserializeOwned>(
        &mut self,
        codec: &C,
    ) -> Result<Option<T>, FrameError> {
        match self.next_frame()? {
            Some(payload) => Ok(Some(codec.decode(payload)?)),
            None => Ok(None),
        }
    }

    /// Call at the end of the stream: an error if part of a frame is left over.
    ///
    /// # Errors
    ///
    /// [`FrameError::Truncated`] if unreturned bytes remain, or [`FrameError::TooLarge`]
    /// if they start with an oversized header.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{FrameDecoder, FrameError};
    /// let mut d = FrameDecoder::new();
    /// d.feed(&[9, 0, 0, 0, 1]);
    /// assert!(matches!(d.finish(), Err(FrameError::Truncated { expected: 13, got: 5 })));
    /// ```
    pub fn finish(&self) -> Result<(), FrameError> {
        let avail = &self.buf[self.start..];
        if avail.is_empty() {
            return Ok(());
        }
        if avail.len() < HEADER_LEN {
            return Err(FrameError::Truncated {
                expected: HEADER_LEN,
                got: avail.len(),
            });
        }
        let len = parse_header(avail);
        if len > self.max {
            return Err(FrameError::TooLarge {
                claimed: len,
                max: self.max,
            });
        }
        Err(FrameError::Truncated {
            expected: HEADER_LEN + len,
            got: avail.len(),
        })
    }

    /// Bytes fed but not yet returned as frames.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let mut d = pool::codec::FrameDecoder::new();
    /// d.feed(&[0, 0, 0, 0, 7]);
    /// d.next_frame()?;
    /// assert_eq!(d.buffered(), 1);
    /// # Ok::<(), pool::codec::FrameError>(())
    /// ```
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The largest payload this decoder accepts.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// assert_eq!(pool::codec::FrameDecoder::with_max_frame(5).max_frame(), 5);
    /// ```
    pub fn max_frame(&self) -> usize {
        self.max
    }
}
