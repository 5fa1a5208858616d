//! [`FrameError`]: what can go wrong reading or writing a frame.

use crate::CodecError;

/// Reading or writing a frame failed.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{FrameError, FrameReader};
/// // A header claiming 100 bytes, followed by only 3.
/// let wire = [100, 0, 0, 0, 1, 2, 3];
/// let err = FrameReader::new(&wire[..]).read_frame().unwrap_err();
/// assert!(matches!(err, FrameError::Truncated { expected: 104, got: 7 }));
/// assert!(err.is_truncated());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A header claimed (or a writer tried to send) a payload longer than the maximum frame
    /// size. The stream cannot be resynchronised: close it.
    #[error(
        "frame of {claimed} bytes exceeds the maximum frame size of {max} bytes \
         (raise the reader's max_frame, or send less per frame)"
    )]
    TooLarge {
        /// The payload length the header claimed, or the writer's payload length.
        claimed: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The stream ended inside a frame (the peer closed or died mid-write).
    #[error("stream ended inside a frame: expected {expected} bytes (header included), got {got}")]
    Truncated {
        /// Bytes the frame needs, header included (just [`HEADER_LEN`](crate::HEADER_LEN)
        /// while the header itself is incomplete).
        expected: usize,
        /// Bytes of this frame that arrived before the end of the stream.
        got: usize,
    },
    /// The underlying reader or writer failed. A `WouldBlock` or `TimedOut` here leaves the
    /// reader's state intact: calling again resumes the same frame.
    #[error("frame I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The codec failed to encode or decode the frame's value.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl FrameError {
    /// `true` for [`FrameError::TooLarge`].
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::FrameError;
    /// assert!(FrameError::TooLarge { claimed: 9, max: 8 }.is_too_large());
    /// ```
    pub fn is_too_large(&self) -> bool {
        matches!(self, FrameError::TooLarge { .. })
    }

    /// `true` for [`FrameError::Truncated`].
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::FrameError;
    /// assert!(FrameError::Truncated { expected: 4, got: 1 }.is_truncated());
    /// ```
    pub fn is_truncated(&self) -> bool {
        matches!(self, FrameError::Truncated { .. })
    }

    /// `true` for [`FrameError::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::FrameError;
    /// assert!(FrameError::from(std::io::Error::other("boom")).is_io());
    /// ```
    pub fn is_io(&self) -> bool {
        matches!(self, FrameError::Io(_))
    }

    /// `true` for [`FrameError::Codec`].
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{CodecError, FrameError};
    /// assert!(FrameError::from(CodecError::decode::<u8>("json", "eof")).is_codec());
    /// ```
    pub fn is_codec(&self) -> bool {
        matches!(self, FrameError::Codec(_))
    }
}
