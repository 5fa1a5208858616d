//! pool-codec's framing fed hostile bytes: `FrameDecoder` (bytes pushed in pieces) and
//! `FrameReader` (pulling from a reader that returns short reads, `Interrupted` and
//! `WouldBlock`), both checked against a plain model of the format.
//!
//! Input: `flags, max_lo, max_hi, chunk_seed, stream...`. Bit 0 of `flags` selects the
//! default maximum frame size instead of the small `max` from the next two bytes; bit 1 lets
//! the reader return `WouldBlock` now and then, bit 2 `Interrupted`.
//!
//! Invariants: nothing panics; both readers return exactly the model's frames and end the
//! same way (clean end, `Truncated { expected, got }`, `TooLarge { claimed, max }`, which is
//! sticky); re-encoding the frames gives back the consumed bytes; no allocation is larger than
//! the documented bound (2 × bytes fed for the decoder, max(64 KiB, 2 × bytes received) for
//! the reader), whatever length a header claims.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use pool_codec::{DEFAULT_MAX_FRAME, FrameDecoder, FrameError, FrameReader, HEADER_LEN};

/// The system allocator, remembering the largest single request.
struct Largest;

/// Starts measuring the largest allocation.
fn measure() {
    LARGEST.store(0, Ordering::Relaxed);
}

/// The largest allocation since [`measure`].
fn measured() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only a size is recorded.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

/// How a stream ends, according to the model.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Clean,
    Truncated { expected: usize, got: usize },
    TooLarge { claimed: usize },
}

/// The format, written plainly: the frames of `stream` and how it ends.
fn model(stream: &[u8], max: usize) -> (Vec<&[u8]>, End, usize) {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &stream[pos..];
        if rest.is_empty() {
            return (frames, End::Clean, pos);
        }
        if rest.len() < HEADER_LEN {
            let end = End::Truncated {
                expected: HEADER_LEN,
                got: rest.len(),
            };
            return (frames, end, pos);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > max {
            return (frames, End::TooLarge { claimed: len }, pos);
        }
        if rest.len() < HEADER_LEN + len {
            let end = End::Truncated {
                expected: HEADER_LEN + len,
                got: rest.len(),
            };
            return (frames, end, pos);
        }
        frames.push(&rest[HEADER_LEN..HEADER_LEN + len]);
        pos += HEADER_LEN + len;
    }
}

fn end_of(e: &FrameError, max: usize) -> End {
    match e {
        FrameError::Truncated { expected, got } => End::Truncated {
            expected: *expected,
            got: *got,
        },
        FrameError::TooLarge { claimed, max: m } => {
            assert_eq!(*m, max, "TooLarge names another maximum");
            End::TooLarge { claimed: *claimed }
        }
        other => panic!("unexpected error {other:?}"),
    }
}

/// Chunk sizes from a tiny generator: mostly small, sometimes large.
struct Chunks(u32);

impl Chunks {
    fn next(&mut self) -> u32 {
        // xorshift32; a zero state would stay zero.
        let mut x = self.0 | 1;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn size(&mut self) -> usize {
        let r = self.next();
        if r % 8 == 0 {
            (r >> 8) as usize % 4096
        } else {
            (r >> 8) as usize % 17
        }
    }
}

/// A reader that hands out the stream in the generator's pieces.
struct Pieces<'a> {
    data: &'a [u8],
    pos: usize,
    chunks: Chunks,
    would_block: bool,
    interrupted: bool,
    last_was_error: bool,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.chunks.next();
        if !self.last_was_error && self.would_block && r % 5 == 0 {
            self.last_was_error = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.last_was_error && self.interrupted && r % 7 == 1 {
            self.last_was_error = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.last_was_error = false;
        let n = self
            .chunks
            .size()
            .min(buf.len())
            .min(self.data.len() - self.pos);
        // A zero-length piece would read as the end of the stream: give at least one byte.
        let n = if n == 0 {
            1.min(buf.len()).min(self.data.len() - self.pos)
        } else {
            n
        };
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn check_decoder(stream: &[u8], max: usize, seed: u32) {
    let (frames, end, consumed) = model(stream, max);
    let mut d = FrameDecoder::with_max_frame(max);
    let mut largest = 0;
    let mut chunks = Chunks(seed);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut fed = 0;
    let mut failed = None;
    'feed: while fed < stream.len() {
        let n = chunks.size().min(stream.len() - fed);
        measure();
        d.feed(&stream[fed..fed + n]);
        largest = largest.max(measured());
        fed += n;
        assert!(d.buffered() <= fed);
        loop {
            measure();
            let next = d.next_frame();
            largest = largest.max(measured());
            match next {
                Ok(Some(f)) => got.push(f.to_vec()),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(end_of(&e, max));
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(got, frames, "decoder frames differ from the model");
    match failed {
        Some(e) => {
            assert_eq!(e, end, "decoder failed differently from the model");
            // Sticky: the stream cannot be resynchronised.
            let again = d.next_frame().map(|f| f.map(<[u8]>::to_vec));
            assert_eq!(end_of(&again.unwrap_err(), max), end);
            assert_eq!(end_of(&d.finish().unwrap_err(), max), end);
        }
        None => match d.finish() {
            Ok(()) => assert_eq!(end, End::Clean),
            Err(e) => assert_eq!(end_of(&e, max), end),
        },
    }
    assert!(
        largest <= 2 * stream.len() + 64,
        "decoder allocated {largest} bytes for a stream of {}",
        stream.len()
    );
    let mut again = Vec::new();
    for f in &got {
        pool_codec::write_frame(&mut again, f).unwrap();
    }
    assert_eq!(again, &stream[..consumed]);
}

fn check_reader(stream: &[u8], max: usize, seed: u32, would_block: bool, interrupted: bool) {
    let (frames, end, _) = model(stream, max);
    let pieces = Pieces {
        data: stream,
        pos: 0,
        chunks: Chunks(seed.rotate_left(7)),
        would_block,
        interrupted,
        last_was_error: false,
    };
    let mut r = FrameReader::with_max_frame(pieces, max);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut largest = 0;
    let finished = loop {
        measure();
        let next = r.read_frame();
        largest = largest.max(measured());
        match next {
            Ok(Some(f)) => got.push(f.to_vec()),
            Ok(None) => break End::Clean,
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => break end_of(&e, max),
        }
        assert!(r.buffered() <= r.get_ref().pos);
    };
    assert_eq!(got, frames, "reader frames differ from the model");
    assert_eq!(finished, end, "reader ended differently from the model");
    if let End::TooLarge { .. } = end {
        let again = r.read_frame().map(|f| f.map(<[u8]>::to_vec));
        assert_eq!(end_of(&again.unwrap_err(), max), end, "TooLarge is sticky");
    }
    let received = r.get_ref().pos;
    let bound = (64 * 1024).max(2 * received);
    assert!(
        r.buffer_capacity() <= bound,
        "reader buffer of {} bytes after receiving {received}",
        r.buffer_capacity()
    );
    assert!(
        largest <= bound,
        "reader allocated {largest} bytes after receiving {received}"
    );
}

fuzz_target!(|data: &[u8]| {
    let [flags, lo, hi, seed, stream @ ..] = data else {
        return;
    };
    let max = if flags & 1 != 0 {
        DEFAULT_MAX_FRAME
    } else {
        usize::from(u16::from_le_bytes([*lo, *hi]))
    };
    let seed = u32::from_le_bytes([*seed, *lo, *hi, *flags]);
    check_decoder(stream, max, seed);
    check_reader(stream, max, seed, flags & 2 != 0, flags & 4 != 0);
});
