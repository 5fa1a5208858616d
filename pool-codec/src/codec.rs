//! The [`Codec`] trait and its error type, [`CodecError`].

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns serde values into bytes and back: how pool moves tasks and results between
/// processes.
///
/// A codec is a small value (usually a unit struct) chosen at compile time: the process pool
/// is generic over `C: Codec`, so every call is statically dispatched and the hot path never
/// goes through a vtable. Each worker process builds its own codec once, from the parent's
/// [`configuration`](Codec::configuration) with [`configured`](Codec::configured) (a codec
/// without configuration: `C::default()`), and the parent and the worker agree on it at the
/// handshake by comparing [`name`](Codec::name).
///
/// Because [`encode`](Codec::encode) and [`decode`](Codec::decode) are generic, the trait is
/// not object safe; that is deliberate (a `dyn Codec` would need type-erased serde, which
/// costs a virtual call per field).
///
/// # Implementing a codec
///
/// A codec outside this crate only has to implement the three methods; report failures with
/// [`CodecError::encode`] / [`CodecError::decode`] so the error names the codec, the
/// direction and the type. A codec with settings (a key, a compression level, a limit) also
/// implements [`configuration`](Codec::configuration) and [`configured`](Codec::configured),
/// so the workers use the same settings; a process pool refuses to build with a codec whose
/// settings would not reach them. A codec that wraps another one (compression, encryption,
/// a checksum) decodes into its own buffer and hands that to the inner codec:
/// [`decode`](Codec::decode) returns owned values, so nothing borrows from a temporary.
///
/// ## The bytes fast path
///
/// A process pool sends a `Vec<u8>` or `serde_bytes::ByteBuf` argument or result as raw
/// bytes, past the codec (no encoding copy). A codec that must see every byte (an encrypting
/// or authenticating one) turns that off with [`raw_bytes`](Codec::raw_bytes) returning
/// `false`.
///
/// A value's own `Serialize` or `Deserialize` implementation may panic; that is not the
/// codec's to handle. The process pool catches such a panic wherever it encodes or decodes:
/// in the caller it is one more encode failure (`submit` is refused, naming the panic), on
/// the pool's own threads a decode failure, and in a worker the task's panic. No thread or
/// worker dies of it.
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use std::borrow::Cow;
/// use pool::codec::{Codec, CodecError};
/// use serde::{Serialize, de::DeserializeOwned};
///
/// /// JSON, but always pretty-printed.
/// #[derive(Clone, Copy, Debug, Default)]
/// struct PrettyJson;
///
/// impl Codec for PrettyJson {
///     fn name(&self) -> Cow<'static, str> {
///         Cow::Borrowed("pretty-json")
///     }
///     fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
///         serde_json::to_writer_pretty(out, value).map_err(|e| CodecError::encode::<T>(self.name(), e))
///     }
///     fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
///         serde_json::from_slice(bytes).map_err(|e| CodecError::decode::<T>(self.name(), e))
///     }
/// }
///
/// let mut buf = Vec::new();
/// PrettyJson.encode(&(1, "two"), &mut buf)?;
/// let back: (u8, String) = PrettyJson.decode(&buf)?;
/// assert_eq!(back, (1, "two".to_string()));
/// # Ok::<(), CodecError>(())
/// ```
pub trait Codec: Clone + Default + Send + Sync + 'static {
    /// The codec's name, compared by parent and worker at the handshake and named in every
    /// codec error. Two codecs with the same name and configuration must produce and accept
    /// the same bytes. A wrapping codec can derive its name from the inner one's
    /// (`format!("zstd+{}", self.inner.name())`).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{Codec, Json};
    /// assert_eq!(Json.name(), "json");
    /// ```
    fn name(&self) -> Cow<'static, str>;

    /// Appends the encoding of `value` to `out`.
    ///
    /// `out` is not cleared first, so a caller can reserve a frame header and encode behind
    /// it. Implementations must leave `out` at its original length when they fail (the
    /// built-in codecs do).
    ///
    /// # Errors
    ///
    /// A [`CodecError`] in the [`Direction::Encode`] direction when the value cannot be
    /// represented (for example a map with non-string keys in JSON, or a `Serialize` impl
    /// that returns an error).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{Codec, Json};
    /// let mut out = b"prefix:".to_vec();
    /// Json.encode(&[1, 2, 3], &mut out)?;
    /// assert_eq!(out, b"prefix:[1,2,3]");
    /// # Ok::<(), pool::codec::CodecError>(())
    /// ```
    fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>)
    -> Result<(), CodecError>;

    /// Decodes one value that fills `bytes` exactly.
    ///
    /// Must never panic and never allocate far more than `bytes.len()` on hostile input
    /// (see each codec's notes for the exact bound). Trailing bytes after the value should
    /// be an error, since a frame holds exactly one value (all built-in codecs but
    /// [`MsgPack`](crate::MsgPack) reject them).
    ///
    /// # Errors
    ///
    /// A [`CodecError`] in the [`Direction::Decode`] direction for corrupt, truncated or
    /// trailing input, or input that does not match `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{Codec, Json};
    /// let v: Vec<u8> = Json.decode(b"[1,2,3]")?;
    /// assert_eq!(v, [1, 2, 3]);
    /// assert!(Json.decode::<Vec<u8>>(b"[1,2").is_err());
    /// # Ok::<(), pool::codec::CodecError>(())
    /// ```
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;

    /// The codec's settings as bytes, sent to every worker process, which rebuilds its codec
    /// from them with [`Codec::configured`]. Default: none (the workers use
    /// `Self::default()`).
    ///
    /// A codec whose settings change the bytes it writes implements both methods; a process
    /// pool compares the parent's codec with the one a worker would rebuild on a sample
    /// value, and refuses to build when they disagree.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{Codec, MsgPack};
    /// assert!(MsgPack.configuration().is_empty());
    /// ```
    fn configuration(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Rebuilds the codec from [`Codec::configuration`]'s bytes (in a worker process, once).
    /// Default: `Self::default()`.
    ///
    /// # Errors
    ///
    /// The bytes are not a configuration of this codec; the worker does not start, and the
    /// error reaches the parent as the start failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{Codec, Json};
    /// let again = Json::configured(&Json.configuration())?;
    /// assert_eq!(again.name(), "json");
    /// # Ok::<(), pool::codec::CodecError>(())
    /// ```
    fn configured(configuration: &[u8]) -> Result<Self, CodecError>
    where
        Self: Sized,
    {
        let _ = configuration;
        Ok(Self::default())
    }

    /// Whether `Vec<u8>` and `serde_bytes::ByteBuf` arguments and results may skip this codec
    /// and cross as raw bytes (the bytes fast path; default `true`). Return `false` from a
    /// codec that must see every byte, such as one that encrypts or authenticates: bytes then
    /// go through [`Codec::encode`] and [`Codec::decode`] like any other value.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{Codec, DefaultCodec};
    /// assert!(DefaultCodec::default().raw_bytes());
    /// ```
    fn raw_bytes(&self) -> bool {
        true
    }
}

/// Which way a codec was working when it failed.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::Direction;
/// assert_eq!(Direction::Decode.to_string(), "decode");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Turning a value into bytes.
    Encode,
    /// Turning bytes into a value.
    Decode,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Encode => "encode",
            Direction::Decode => "decode",
        })
    }
}

/// A codec failed to encode or decode a value.
///
/// Says which codec, which direction, which Rust type (when known) and the codec's own
/// message. The message is part of [`Display`](fmt::Display) rather than a
/// [`source`](std::error::Error::source), so the error is `Clone` and can cross a process
/// boundary as text.
///
/// # Examples
///
/// ```
/// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
/// use pool::codec::{Codec, Direction, Postcard};
/// let err = Postcard.decode::<String>(&[5, b'a']).unwrap_err();
/// assert_eq!(err.codec(), "postcard");
/// assert_eq!(err.direction(), Direction::Decode);
/// assert_eq!(err.type_name(), Some("alloc::string::String"));
/// assert!(err.to_string().starts_with("postcard could not decode `alloc::string::String`: "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{codec} could not {direction} `{ty}`: {message}", ty = self.type_name.unwrap_or("<unknown type>"))]
pub struct CodecError {
    codec: Cow<'static, str>,
    direction: Direction,
    type_name: Option<&'static str>,
    message: String,
}

impl CodecError {
    /// A failure with every field given explicitly.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{CodecError, Direction};
    /// let e = CodecError::new("toy", Direction::Encode, None, "out of ink");
    /// assert_eq!(e.to_string(), "toy could not encode `<unknown type>`: out of ink");
    /// ```
    pub fn new(
        codec: impl Into<Cow<'static, str>>,
        direction: Direction,
        type_name: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            codec: codec.into(),
            direction,
            type_name,
            message: message.into(),
        }
    }

    /// An encode failure of a `T`, with the codec's message.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::CodecError;
    /// let e = CodecError::encode::<[u32]>("toy", "too long");
    /// assert_eq!(e.to_string(), "toy could not encode `[u32]`: too long");
    /// ```
    pub fn encode<T: ?Sized>(
        codec: impl Into<Cow<'static, str>>,
        message: impl fmt::Display,
    ) -> Self {
        Self::new(
            codec,
            Direction::Encode,
            Some(std::any::type_name::<T>()),
            message.to_string(),
        )
    }

    /// A decode failure of a `T`, with the codec's message.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::CodecError;
    /// let e = CodecError::decode::<u8>("toy", "unexpected end of input");
    /// assert!(e.is_decode());
    /// assert_eq!(e.type_name(), Some("u8"));
    /// ```
    pub fn decode<T: ?Sized>(
        codec: impl Into<Cow<'static, str>>,
        message: impl fmt::Display,
    ) -> Self {
        Self::new(
            codec,
            Direction::Decode,
            Some(std::any::type_name::<T>()),
            message.to_string(),
        )
    }

    /// The name of the codec that failed ([`Codec::name`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::CodecError;
    /// assert_eq!(CodecError::decode::<u8>("json", "eof").codec(), "json");
    /// ```
    pub fn codec(&self) -> &str {
        &self.codec
    }

    /// Whether encoding or decoding failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::{CodecError, Direction};
    /// assert_eq!(CodecError::encode::<u8>("json", "x").direction(), Direction::Encode);
    /// ```
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The Rust type being encoded or decoded, from [`std::any::type_name`], when known.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::CodecError;
    /// assert_eq!(CodecError::encode::<bool>("json", "x").type_name(), Some("bool"));
    /// ```
    pub fn type_name(&self) -> Option<&'static str> {
        self.type_name
    }

    /// The underlying codec's own message.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::CodecError;
    /// assert_eq!(CodecError::encode::<u8>("json", "bad").message(), "bad");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `true` if this is an encode failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::CodecError;
    /// assert!(CodecError::encode::<u8>("json", "x").is_encode());
    /// ```
    pub fn is_encode(&self) -> bool {
        self.direction == Direction::Encode
    }

    /// `true` if this is a decode failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod pool { pub mod codec { pub use pool_codec::*; } } // what `pool` re-exports
    /// use pool::codec::CodecError;
    /// assert!(CodecError::decode::<u8>("json", "x").is_decode());
    /// ```
    pub fn is_decode(&self) -> bool {
        self.direction == Direction::Decode
    }
}
