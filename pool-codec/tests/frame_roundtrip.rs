//! Frames survive any split of the byte stream; truncated, oversized and arbitrary streams
//! give error values, never panics (proptest).

use std::io::{self, Read};

use pool_codec::{
    FrameDecoder, FrameError, FrameReader, HEADER_LEN, MsgPack, encode_frame, write_frame,
};
use proptest::prelude::*;

/// A reader that hands out the stream in the given chunk sizes (cycled), and reports
/// `Interrupted` once in a while, like a pipe would.
struct Chunky<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
}

impl Read for Chunky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.turn += 1;
        let size = self.sizes[self.turn % self.sizes.len()];
        if size == 0 && !self.data.is_empty() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = size.max(1).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn wire_of(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for p in payloads {
        write_frame(&mut wire, p).unwrap();
    }
    wire
}

fn read_all<R: Read>(r: &mut FrameReader<R>) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut out = Vec::new();
    while let Some(f) = r.read_frame()? {
        out.push(f.to_vec());
    }
    Ok(out)
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..64),
            1 => prop::collection::vec(any::<u8>(), 0..200_000),
        ],
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn reader_returns_every_frame_for_any_split(
        payloads in payloads(),
        sizes in prop::collection::vec(0usize..70_000, 1..6),
    ) {
        let wire = wire_of(&payloads);
        let mut r = FrameReader::new(Chunky { data: &wire, sizes, turn: 0 });
        prop_assert_eq!(read_all(&mut r).unwrap(), payloads);
    }

    #[test]
    fn decoder_returns_every_frame_for_any_split(
        payloads in payloads(),
        sizes in prop::collection::vec(1usize..70_000, 1..6),
    ) {
        let wire = wire_of(&payloads);
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut turn = 0;
        while !rest.is_empty() {
            let n = sizes[turn % sizes.len()].min(rest.len());
            turn += 1;
            d.feed(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        d.finish().unwrap();
        prop_assert_eq!(got, payloads);
    }

    #[test]
    fn truncated_stream_is_truncated_error(
        payloads in payloads().prop_filter("non-empty", |p| !p.is_empty()),
        cut in any::<prop::sample::Index>(),
    ) {
        let wire = wire_of(&payloads);
        let cut = cut.index(wire.len());
        // Where do frame boundaries fall?
        let mut boundaries = vec![0];
        for p in &payloads {
            boundaries.push(boundaries.last().unwrap() + HEADER_LEN + p.len());
        }
        let mut r = FrameReader::new(&wire[..cut]);
        let res = read_all(&mut r);
        let mut d = FrameDecoder::new();
        d.feed(&wire[..cut]);
        while d.next_frame().unwrap().is_some() {}
        if boundaries.contains(&cut) {
            let whole = boundaries.iter().position(|b| *b == cut).unwrap();
            prop_assert_eq!(res.unwrap(), payloads[..whole].to_vec());
            prop_assert!(d.finish().is_ok());
        } else {
            prop_assert!(matches!(res, Err(FrameError::Truncated { .. })), "{:?}", res);
            prop_assert!(matches!(d.finish(), Err(FrameError::Truncated { .. })), "decoder finish");
        }
    }

    #[test]
    fn arbitrary_streams_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        max in 0usize..1024,
    ) {
        let mut r = FrameReader::with_max_frame(&bytes[..], max);
        let mut frames = 0;
        let end = loop {
            match r.read_frame() {
                Ok(Some(f)) => {
                    prop_assert!(f.len() <= max);
                    frames += 1;
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        prop_assert!(frames <= bytes.len() / HEADER_LEN);
        prop_assert!(!matches!(end, Some(FrameError::Io(_))));
        prop_assert!(r.buffer_capacity() <= 64 * 1024 + 2 * bytes.len());

        let mut d = FrameDecoder::with_max_frame(max);
        d.feed(&bytes);
        while let Ok(Some(f)) = d.next_frame() {
            prop_assert!(f.len() <= max);
        }
        let _ = d.finish();
    }

    #[test]
    fn oversized_claims_are_refused(claimed in 1025u32.., body in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut wire = claimed.to_le_bytes().to_vec();
        wire.extend_from_slice(&body);
        let err = FrameReader::with_max_frame(&wire[..], 1024).read_frame().unwrap_err();
        prop_assert!(
            matches!(err, FrameError::TooLarge { claimed: c, max: 1024 } if c == claimed as usize),
            "{}", err
        );
        let mut d = FrameDecoder::with_max_frame(1024);
        d.feed(&wire);
        prop_assert!(d.next_frame().unwrap_err().is_too_large());
    }
}

#[test]
fn encode_frame_batches_and_decodes() {
    let mut wire = Vec::new();
    for i in 0..100u32 {
        encode_frame(&MsgPack, &(i, format!("task-{i}")), &mut wire).unwrap();
    }
    let mut r = FrameReader::new(&wire[..]);
    for i in 0..100u32 {
        let (n, s): (u32, String) = r.read_value(&MsgPack).unwrap().unwrap();
        assert_eq!(n, i);
        assert_eq!(s, format!("task-{i}"));
    }
    assert!(r.read_frame().unwrap().is_none());
}

#[test]
fn codec_errors_inside_frames_keep_the_stream_usable() {
    let mut wire = Vec::new();
    write_frame(&mut wire, b"\xc1").unwrap(); // 0xc1 is never valid MessagePack
    encode_frame(&MsgPack, &7u8, &mut wire).unwrap();
    let mut r = FrameReader::new(&wire[..]);
    let err = r.read_value::<_, u8>(&MsgPack).unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert_eq!(r.read_value::<_, u8>(&MsgPack).unwrap(), Some(7));
}

#[test]
fn io_errors_are_reported_and_would_block_resumes() {
    struct Flaky {
        data: Vec<u8>,
        pos: usize,
        calls: usize,
    }
    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = 3.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    let mut wire = Vec::new();
    write_frame(&mut wire, b"hello, frames").unwrap();
    let mut r = FrameReader::new(Flaky {
        data: wire,
        pos: 0,
        calls: 0,
    });
    let mut would_block = 0;
    let frame = loop {
        match r.read_frame() {
            Ok(f) => break f.map(<[u8]>::to_vec),
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                would_block += 1;
                assert!(would_block < 100, "no progress");
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(frame.as_deref(), Some(&b"hello, frames"[..]));
    assert!(would_block > 0);
}

#[test]
fn write_frame_handles_short_writes() {
    struct Trickle(Vec<u8>);
    impl io::Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let payload: Vec<u8> = (0..100).collect();
    let mut w = Trickle(Vec::new());
    write_frame(&mut w, &payload).unwrap();
    let mut r = FrameReader::new(&w.0[..]);
    assert_eq!(r.read_frame().unwrap(), Some(&payload[..]));

    struct Full;
    impl io::Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    assert!(write_frame(&mut Full, b"x").unwrap_err().is_io());
}
