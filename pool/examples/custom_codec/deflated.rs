//! `Deflated<C>`: a codec that wraps another one and compresses its bytes (zlib, via flate2),
//! with its compression level as configuration.

use std::borrow::Cow;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use pool::codec::{Codec, CodecError, MsgPack};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How much larger than its compressed form a message may decode to: a bound on what a
/// hostile or corrupt message can make the decoder allocate (a "zip bomb").
const MAX_RATIO: usize = 1024;

/// The inner codec's bytes, deflated at `level` (0 = stored, 9 = smallest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deflated<C = MsgPack> {
    level: u8,
    inner: C,
}

impl<C: Codec> Deflated<C> {
    /// `inner`'s bytes compressed at `level` (at most 9).
    pub(crate) fn new(level: u8, inner: C) -> Self {
        Self {
            level: level.min(9),
            inner,
        }
    }

    /// The compression level.
    pub(crate) fn level(&self) -> u8 {
        self.level
    }
}

impl<C: Codec> Default for Deflated<C> {
    fn default() -> Self {
        Self::new(6, C::default())
    }
}

impl<C: Codec> Codec for Deflated<C> {
    // Derived from the inner codec's name: two `Deflated` around different codecs differ.
    fn name(&self) -> Cow<'static, str> {
        Cow::Owned(format!("deflate+{}", self.inner.name()))
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let mut plain = Vec::new();
        self.inner.encode(value, &mut plain)?;
        let start = out.len();
        let mut z = ZlibEncoder::new(&mut *out, Compression::new(u32::from(self.level)));
        let written = z.write_all(&plain).and_then(|()| z.finish().map(drop));
        written.map_err(|e| {
            out.truncate(start); // a codec leaves `out` as it was when it fails
            CodecError::encode::<T>(self.name(), e)
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        // Decompress into a buffer of our own; the values decoded from it are owned.
        let bound = bytes.len().saturating_mul(MAX_RATIO).saturating_add(4096);
        let mut plain = Vec::new();
        ZlibDecoder::new(bytes)
            .take(bound as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| CodecError::decode::<T>(self.name(), e))?;
        if plain.len() > bound {
            return Err(CodecError::decode::<T>(
                self.name(),
                format!("decompresses to more than {MAX_RATIO} times its size"),
            ));
        }
        self.inner.decode(&plain)
    }

    // The level, then the inner codec's own configuration: what a worker needs to rebuild
    // exactly this codec.
    fn configuration(&self) -> Vec<u8> {
        let mut c = vec![self.level];
        c.extend(self.inner.configuration());
        c
    }

    fn configured(configuration: &[u8]) -> Result<Self, CodecError> {
        match configuration.split_first() {
            Some((&level, inner)) if level <= 9 => Ok(Self::new(level, C::configured(inner)?)),
            _ => Err(CodecError::decode::<Self>(
                "deflate",
                format!("not a Deflated configuration: {configuration:?}"),
            )),
        }
    }

    // Byte arguments and results are compressed too, rather than sent raw.
    fn raw_bytes(&self) -> bool {
        false
    }
}
