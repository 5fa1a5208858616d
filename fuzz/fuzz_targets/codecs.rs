//! Every built-in codec of pool-codec decoding hostile bytes into the types that cross the
//! process boundary: `RemoteError` (and `Result<_, RemoteError>`, what a fallible task
//! returns), byte buffers, strings, integers, tuples, floats, maps,
//! and the conformance suite's `Payload` (a bit of every serde shape).
//!
//! Input: a codec byte (modulo 4: MessagePack, postcard, bincode with a 1 MiB limit, JSON),
//! a type byte, then the bytes to decode.
//!
//! Invariants: decoding never panics or aborts; it allocates at most about 1 MiB plus a
//! multiple of the input, whatever lengths the input claims (bincode: at most its limit); a
//! value that decodes encodes again, and that encoding decodes and encodes to the same bytes.
//!
//! Out of reach here: the depth of a `RemoteError` chain. postcard and bincode have no depth
//! limit and `RemoteError` nests its sources, so a long enough chain (tens of thousands of
//! levels) overflows the stack; libFuzzer's 4 KiB inputs stay well below that. See README.md.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use pool_codec::{BincodeLimited, Codec, Json, MsgPack, Postcard};
use pool_core::RemoteError;
use pool_testkit::conformance::tasks::{Payload, Shape};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The system allocator, remembering the largest single request.
struct Largest;

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

/// bincode's allocation limit here: small, so that a lying length costs little.
const BINCODE_LIMIT: usize = 1 << 20;

/// The most one decode may allocate at once for `input` bytes.
fn bound(input: usize) -> usize {
    (1 << 20) + BINCODE_LIMIT + 64 * input
}

/// Decodes `bytes` as `T`; if that works, checks the allocation bound and the round trip.
fn owned<C: Codec, T: Serialize + for<'de> Deserialize<'de>>(codec: &C, bytes: &[u8]) {
    LARGEST.store(0, Ordering::Relaxed);
    let decoded = codec.decode::<T>(bytes);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= bound(bytes.len()),
        "{} allocated {largest} bytes decoding {} bytes as {}",
        codec.name(),
        bytes.len(),
        std::any::type_name::<T>()
    );
    let Ok(value) = decoded else {
        return;
    };
    let mut first = Vec::new();
    codec
        .encode(&value, &mut first)
        .expect("a decoded value encodes");
    let again: T = codec
        .decode(&first)
        .unwrap_or_else(|e| panic!("its own encoding does not decode: {e}"));
    let mut second = Vec::new();
    codec
        .encode(&again, &mut second)
        .expect("a decoded value encodes");
    assert_eq!(first, second, "encoding is not stable after a round trip");
}

fn with<C: Codec>(codec: &C, ty: u8, bytes: &[u8]) {
    match ty % 16 {
        0 => owned::<C, RemoteError>(codec, bytes),
        1 => owned::<C, Result<u64, RemoteError>>(codec, bytes),
        2 => owned::<C, Result<Vec<String>, RemoteError>>(codec, bytes),
        3 => owned::<C, Vec<u8>>(codec, bytes),
        4 => owned::<C, ByteBuf>(codec, bytes),
        5 => owned::<C, String>(codec, bytes),
        6 => owned::<C, Option<String>>(codec, bytes),
        7 => owned::<C, Vec<ByteBuf>>(codec, bytes),
        8 => owned::<C, u64>(codec, bytes),
        9 => owned::<C, (i32, Option<String>, bool, char)>(codec, bytes),
        10 => owned::<C, f64>(codec, bytes),
        11 => owned::<C, Payload>(codec, bytes),
        12 => owned::<C, Vec<Payload>>(codec, bytes),
        13 => owned::<C, Shape>(codec, bytes),
        14 => owned::<C, BTreeMap<String, Vec<u64>>>(codec, bytes),
        _ => owned::<C, (u128, i8, Vec<Option<u16>>, ())>(codec, bytes),
    }
}

fuzz_target!(|data: &[u8]| {
    let [codec, ty, bytes @ ..] = data else {
        return;
    };
    match codec % 4 {
        0 => with(&MsgPack, *ty, bytes),
        1 => with(&Postcard, *ty, bytes),
        2 => with(&BincodeLimited::<BINCODE_LIMIT>, *ty, bytes),
        _ => with(&Json, *ty, bytes),
    }
});
