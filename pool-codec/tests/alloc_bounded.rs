//! Lying lengths never buy an allocation of the claimed size: a counting global allocator,
//! counted per thread (libtest allocates on its own threads), bounds what the frame
//! readers and the codecs allocate on hostile input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pool_codec::{Codec, FrameDecoder, FrameReader, Json, MsgPack, Postcard};
use serde_bytes::ByteBuf;

struct Counting;

thread_local! {
    /// Bytes requested by this thread's allocations while counting (reallocs count the new
    /// size), and the largest single request.
    static TOTAL: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TOTAL.try_with(|t| t.set(t.get() + size));
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the bookkeeping only touches const-initialised thread-locals,
// which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above; `ptr` and `layout` come from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns (its result, bytes allocated, largest single allocation) on this
/// thread.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    TOTAL.with(|t| t.set(0));
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, TOTAL.with(Cell::get), LARGEST.with(Cell::get))
}

/// A header claiming 2^31 bytes followed by a 10-byte body.
fn lying_frame() -> Vec<u8> {
    let mut wire = (1u32 << 31).to_le_bytes().to_vec();
    wire.extend_from_slice(b"0123456789");
    wire
}

const SMALL: usize = 256 * 1024;

#[test]
fn frame_reader_allocates_by_arrival_not_by_claim() {
    let wire = lying_frame();
    // A reader allowed the full 4 GiB range, so the claim is accepted and it must wait for
    // bytes that never come.
    let (res, total, largest) = measure(|| {
        let mut r = FrameReader::with_max_frame(&wire[..], usize::MAX);
        r.read_frame().map(|f| f.map(<[u8]>::len))
    });
    let err = res.unwrap_err();
    assert!(
        matches!(err, pool_codec::FrameError::Truncated { expected, got: 14 } if expected == (1 << 31) + 4),
        "{err}"
    );
    assert!(
        total <= SMALL,
        "allocated {total} bytes (largest {largest})"
    );

    // The default maximum (1 GiB) refuses the claim outright.
    let (res, total, _) = measure(|| {
        FrameReader::new(&wire[..])
            .read_frame()
            .map(|f| f.is_some())
    });
    assert!(res.unwrap_err().is_too_large());
    assert!(total <= SMALL, "allocated {total} bytes");
}

#[test]
fn frame_reader_growth_tracks_arrived_bytes() {
    // 3 MiB of a claimed 2 GiB frame arrive: allocation stays within a small factor of
    // what arrived.
    let mut wire = (1u32 << 31).to_le_bytes().to_vec();
    wire.resize(4 + (3 << 20), 7);
    let (res, _total, largest) = measure(|| {
        let mut r = FrameReader::with_max_frame(&wire[..], usize::MAX);
        r.read_frame().map(|f| f.is_some())
    });
    assert!(res.unwrap_err().is_truncated());
    assert!(
        largest <= 2 * wire.len() + SMALL,
        "largest allocation {largest}"
    );
}

#[test]
fn frame_decoder_allocates_only_what_was_fed() {
    let wire = lying_frame();
    let (res, total, _) = measure(|| {
        let mut d = FrameDecoder::with_max_frame(usize::MAX);
        d.feed(&wire);
        let none = d
            .next_frame()
            .map(|f| f.is_none())
            .map_err(|e| e.to_string());
        (none, d.finish().map_err(|e| e.is_truncated()))
    });
    assert_eq!(res, (Ok(true), Err(true)));
    assert!(total <= SMALL, "allocated {total} bytes");
}

/// Lying lengths inside a payload: a string, a byte buffer and a vector each claiming far
/// more than the input holds. MsgPack, postcard and JSON check against the input (serde
/// caps sequence pre-allocation at 1 MiB).
#[test]
fn codecs_do_not_trust_lengths_in_the_payload() {
    fn bounded<C: Codec>(codec: C, inputs: &[Vec<u8>]) {
        for input in inputs {
            let (res, total, largest) = measure(|| {
                (
                    codec.decode::<String>(input).is_err(),
                    codec.decode::<ByteBuf>(input).is_err(),
                    codec.decode::<Vec<u64>>(input).is_err(),
                    codec.decode::<Vec<String>>(input).is_err(),
                )
            });
            assert_eq!(
                res,
                (true, true, true, true),
                "{} accepted {input:?}",
                codec.name()
            );
            assert!(
                total <= 4 * (1 << 20) + SMALL,
                "{} allocated {total} bytes (largest {largest}) for {} input bytes",
                codec.name(),
                input.len()
            );
        }
    }
    // MessagePack: str32 / bin32 / array32 headers claiming 2^31 - 1 items, then 10 bytes.
    let msgpack: Vec<Vec<u8>> = [0xdb, 0xc6, 0xdd]
        .iter()
        .map(|m| {
            let mut v = vec![*m, 0x7f, 0xff, 0xff, 0xff];
            v.extend_from_slice(b"0123456789");
            v
        })
        .collect();
    bounded(MsgPack, &msgpack);
    // postcard: a varint length of 2^31, then 10 bytes.
    let mut pc = vec![0x80, 0x80, 0x80, 0x80, 0x08];
    pc.extend_from_slice(b"0123456789");
    bounded(Postcard, &[pc]);
    // JSON has no length prefixes at all; an unterminated giant is just truncated text.
    bounded(Json, &[b"\"0123456789".to_vec(), b"[1,2,3".to_vec()]);
}

/// The bytes fast path: encoding a 1 MiB `ByteBuf` into a buffer with room performs no
/// allocation at all (a length prefix plus one `extend_from_slice`).
#[test]
fn byte_buffers_encode_without_allocating() {
    fn check<C: Codec>(codec: C) {
        let data = ByteBuf::from(vec![0xabu8; 1 << 20]);
        let mut out = Vec::with_capacity((1 << 20) + 64);
        let (res, total, _) = measure(|| codec.encode(&data, &mut out));
        res.unwrap();
        assert_eq!(total, 0, "{} allocated while encoding bytes", codec.name());
        assert!(out.len() <= (1 << 20) + 9);
        let back: ByteBuf = codec.decode(&out).unwrap();
        assert_eq!(back, data);
    }
    check(MsgPack);
    check(Postcard);
    check(pool_codec::Bincode::default());
}
