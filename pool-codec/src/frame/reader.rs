//! [`FrameReader`]: reads frames from any [`Read`], reusing one buffer.
//!
//! Buffer layout: `buf[..start]` is consumed, `buf[start..end]` holds bytes read but not yet
//! returned, `buf[end..]` is free space (initialised, so it can be handed to `read`
//! without unsafe code). The buffer grows only when it is full of bytes that actually
//! arrived, at most doubling, so a header that lies about its length costs at most
//! `max(INITIAL_CAPACITY, 2 × bytes received)`.

use std::io::{self, Read};

use serde::de::DeserializeOwned;

use super::{DEFAULT_MAX_FRAME, FrameError, HEADER_LEN, MAX_FRAME_LIMIT, parse_header};
use crate::Codec;

/// The buffer's first size, and the smallest step it grows by.
const INITIAL_CAPACITY: usize = 64 * 1024;

/// Reads length-prefixed frames from a [`Read`], one at a time, into a reused buffer.
///
/// Reads ahead: one `read` call may bring in several small frames, which later calls then
/// return without a system call. The buffer is reused from frame to frame and grows only as
/// payload bytes arrive, never to the length a header claims; a claimed length above the
/// maximum frame size is refused at once.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{write_frame, FrameReader};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, b"one")?;
/// write_frame(&mut wire, b"")?;
/// let mut r = FrameReader::new(&wire[..]);
/// assert_eq!(r.read_frame()?, Some(&b"one"[..]));
/// assert_eq!(r.read_frame()?, Some(&b""[..]));
/// assert_eq!(r.read_frame()?, None);
/// # Ok::<(), pool::codec::FrameError>(())
/// ```
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl<R: Read> FrameReader<R> {
    /// A reader with the default maximum frame size, [`DEFAULT_MAX_FRAME`] (1 GiB).
    /// Allocates nothing until the first read.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let r = pool::codec::FrameReader::new(std::io::empty());
    /// assert_eq!(r.max_frame(), pool::codec::DEFAULT_MAX_FRAME);
    /// ```
    pub fn new(inner: R) -> Self {
        Self::with_max_frame(inner, DEFAULT_MAX_FRAME)
    }

    /// A reader that refuses payloads longer than `max` bytes. `max` is clamped to
    /// [`MAX_FRAME_LIMIT`], the most a header can describe.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{write_frame, FrameError, FrameReader};
    /// let mut wire = Vec::new();
    /// write_frame(&mut wire, &[0; 10])?;
    /// let err = FrameReader::with_max_frame(&wire[..], 8).read_frame().unwrap_err();
    /// assert!(matches!(err, FrameError::TooLarge { claimed: 10, max: 8 }));
    /// # Ok::<(), FrameError>(())
    /// ```
    pub fn with_max_frame(inner: R, max: usize) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            max: max.min(MAX_FRAME_LIMIT),
        }
    }

    /// Reads the next frame and returns its payload, borrowed from the reader's buffer
    /// until the next call.
    ///
    /// Returns `Ok(None)` when the stream ends cleanly between frames.
    ///
    /// # Errors
    ///
    /// - [`FrameError::TooLarge`] when the header claims more than
    ///   [`max_frame`](Self::max_frame); nothing of the payload is read or allocated, and
    ///   every later call returns the same error.
    /// - [`FrameError::Truncated`] when the stream ends inside a frame.
    /// - [`FrameError::Io`] when the reader fails. `Interrupted` is retried; after
    ///   `WouldBlock` or `TimedOut` the bytes read so far are kept and calling again
    ///   continues the same frame.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{FrameError, FrameReader};
    /// let wire = [2, 0, 0, 0, b'o', b'k', 9, 0];
    /// let mut r = FrameReader::new(&wire[..]);
    /// assert_eq!(r.read_frame()?, Some(&b"ok"[..]));
    /// // Two bytes of a four-byte header, then the end.
    /// assert!(matches!(r.read_frame(), Err(FrameError::Truncated { expected: 4, got: 2 })));
    /// # Ok::<(), FrameError>(())
    /// ```
    pub fn read_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        if !self.fill(HEADER_LEN)? {
            let got = self.end - self.start;
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                expected: HEADER_LEN,
                got,
            });
        }
        let len = parse_header(&self.buf[self.start..self.end]);
        if len > self.max {
            return Err(FrameError::TooLarge {
                claimed: len,
                max: self.max,
            });
        }
        let total = HEADER_LEN + len;
        if !self.fill(total)? {
            return Err(FrameError::Truncated {
                expected: total,
                got: self.end - self.start,
            });
        }
        let frame = self.start + HEADER_LEN..self.start + total;
        self.start += total;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(&self.buf[frame]))
    }

    /// Reads the next frame and decodes it with `codec`. The value may borrow from the
    /// reader's buffer (`&str`, `&[u8]` fields).
    ///
    /// # Errors
    ///
    /// As [`read_frame`](Self::read_frame), plus [`FrameError::Codec`] if the payload does
    /// not decode as a `T` (the frame is consumed; the stream stays usable).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{encode_frame, FrameReader, Postcard};
    /// let mut wire = Vec::new();
    /// encode_frame(&Postcard, &(1u8, "x"), &mut wire)?;
    /// let mut r = FrameReader::new(&wire[..]);
    /// let v: Option<(u8, String)> = r.read_value(&Postcard)?;
    /// assert_eq!(v, Some((1, "x".to_string())));
    /// # Ok::<(), pool::codec::FrameError>(())
    /// ```
    pub fn read_value<C: Codec, T: DeserializeOwned>(
        &mut self,
        codec: &C,
    ) -> Result<Option<T>, FrameError> {
        match self.read_frame()? {
            Some(payload) => Ok(Some(codec.decode(payload)?)),
            None => Ok(None),
        }
    }

    /// Makes sure at least `need` unread bytes are buffered. `Ok(false)` at end of stream.
    fn fill(&mut self, need: usize) -> Result<bool, FrameError> {
        while self.end - self.start < need {
            if self.buf.len() - self.start < need && self.start > 0 {
                // The frame does not fit behind `start`: move the unread bytes to the front.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                // Full of bytes that arrived: grow, at most doubling, never past the frame.
                let grown = (self.buf.len() * 2).min(self.start + need);
                self.buf.resize(grown.max(INITIAL_CAPACITY), 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
        Ok(true)
    }
}

impl<R> FrameReader<R> {
    /// The largest payload this reader accepts.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let r = pool::codec::FrameReader::with_max_frame(std::io::empty(), 1024);
    /// assert_eq!(r.max_frame(), 1024);
    /// ```
    pub fn max_frame(&self) -> usize {
        self.max
    }

    /// Changes the largest payload this reader accepts (capped at [`MAX_FRAME_LIMIT`]), for
    /// a limit agreed after the stream started.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let mut r = pool::codec::FrameReader::new(std::io::empty());
    /// r.set_max_frame(4096);
    /// assert_eq!(r.max_frame(), 4096);
    /// ```
    pub fn set_max_frame(&mut self, max: usize) {
        self.max = max.min(MAX_FRAME_LIMIT);
    }

    /// Bytes read ahead from the stream but not yet returned as frames.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{write_frame, FrameReader};
    /// let mut wire = Vec::new();
    /// write_frame(&mut wire, b"a")?;
    /// write_frame(&mut wire, b"b")?;
    /// let mut r = FrameReader::new(&wire[..]);
    /// r.read_frame()?;
    /// assert_eq!(r.buffered(), 5); // the second frame came in with the first read
    /// # Ok::<(), pool::codec::FrameError>(())
    /// ```
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The bytes of the buffer currently allocated (it is kept between frames).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let r = pool::codec::FrameReader::new(std::io::empty());
    /// assert_eq!(r.buffer_capacity(), 0);
    /// ```
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The underlying reader.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let r = pool::codec::FrameReader::new(std::io::Cursor::new(vec![1u8]));
    /// assert_eq!(r.get_ref().position(), 0);
    /// ```
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying reader, mutably. Reading from it directly skips any bytes this
    /// reader has buffered ([`buffered`](Self::buffered)).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let mut r = pool::codec::FrameReader::new(std::io::Cursor::new(vec![1u8]));
    /// r.get_mut().set_position(1);
    /// assert_eq!(r.read_frame()?, None);
    /// # Ok::<(), pool::codec::FrameError>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Unwraps the reader. Bytes buffered but not yet returned are lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// let r = pool::codec::FrameReader::new(std::io::empty());
    /// let _empty: std::io::Empty = r.into_inner();
    /// ```
    pub fn into_inner(self) -> R {
        self.inner
    }
}
