//! The tiny, codec-independent binary encoding of protocol messages (handshake, replies'
//! status and error details). Little-endian integers; strings and byte strings carry a `u32`
//! length. Decoding never panics and never allocates a claimed length: every read is bounds
//! checked against the bytes actually present. Bytes in text (the worker's spec) are
//! hexadecimal ([`hex`], [`unhex`]).

/// Appends protocol fields to a buffer.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u32(&mut self, v: u32);
    fn put_i64(&mut self, v: i64);
    fn put_bytes(&mut self, v: &[u8]);
    fn put_str(&mut self, v: &str) {
        self.put_bytes(v.as_bytes());
    }
    fn put_opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.put_u8(1);
                self.put_str(s);
            }
            None => self.put_u8(0),
        }
    }
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bytes(&mut self, v: &[u8]) {
        self.put_u32(v.len() as u32);
        self.extend_from_slice(v);
    }
}

/// Reads protocol fields; `None` means truncated or malformed input.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn str(&mut self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    pub(crate) fn opt_str(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.str().map(Some),
            _ => None,
        }
    }
    /// Everything not read yet.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Bytes as lowercase hexadecimal text (two digits each).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hexadecimal text (either case); `None` for an odd length or a non-digit.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut b = Vec::new();
        b.put_u8(7);
        b.put_u32(9);
        b.put_i64(-5);
        b.put_str("hé");
        b.put_opt_str(None);
        b.put_opt_str(Some("x"));
        let mut r = Reader(&b);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u32(), Some(9));
        assert_eq!(r.i64(), Some(-5));
        assert_eq!(r.str().as_deref(), Some("hé"));
        assert_eq!(r.opt_str(), Some(None));
        assert_eq!(r.opt_str(), Some(Some("x".to_string())));
        assert!(r.rest().is_empty());
        for cut in 0..b.len() {
            let mut r = Reader(&b[..cut]);
            let ok = (|| {
                r.u8()?;
                r.u32()?;
                r.i64()?;
                r.str()?;
                r.opt_str()?;
                r.opt_str()
            })();
            assert!(ok.is_none(), "cut at {cut}");
        }
        // A huge claimed length is an error, not an allocation.
        let mut huge = Vec::new();
        huge.put_u32(u32::MAX);
        assert_eq!(Reader(&huge).bytes(), None);
    }
}
