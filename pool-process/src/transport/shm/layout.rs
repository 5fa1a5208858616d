//! The layout of the shared memory file: the control page, the two rings, the two
//! large-payload regions. Offsets and field meanings are tabulated in `README.md`.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// `b"poolshm1"`, little-endian: identifies a file laid out by this module.
pub(super) const MAGIC: u64 = u64::from_le_bytes(*b"poolshm1");
/// Bumped on any change to this layout or to the ring protocol.
pub(super) const VERSION: u32 = 1;
/// Size of the control block at offset 0; the rings follow it.
pub(super) const CONTROL_SIZE: usize = 4096;
/// Where the large-payload region of direction `d` starts: `(d + 1) * REGION_SPAN`. A region
/// never grows past `REGION_SPAN` (a frame is at most `MAX_FRAME` = 1 GiB), so the two never
/// overlap. The file is sparse: only pages actually written take memory.
pub(super) const REGION_SPAN: u64 = 2 << 30;

/// Frame header kinds (the second `u32` of a ring frame header).
pub(super) const KIND_INLINE: u32 = 0;
/// The body is in the direction's large-payload region at offset 0.
pub(super) const KIND_LARGE: u32 = 1;
/// Ring frame header length: `u32` body length, `u32` kind, both little-endian.
pub(super) const HEADER: usize = 8;

/// A value alone on its own 128-byte span (two cache lines: adjacent-line prefetch would
/// otherwise make a producer's and a consumer's index share traffic).
#[repr(C, align(128))]
pub(super) struct Line<T>(pub(super) T);

/// A place to sleep: the futex word and the "someone sleeps here" flag. Exactly one process
/// sleeps on a given event (the consumer on `data`, the producer on `space`).
#[repr(C)]
pub(super) struct Event {
    /// Futex word: bumped by the notifier whenever it sees `sleeping` set.
    pub(super) seq: AtomicU32,
    /// 1 while the waiter is (about to be) asleep on `seq`.
    pub(super) sleeping: AtomicU32,
}

/// The indices and events of one single-producer single-consumer ring.
#[repr(C)]
pub(super) struct RingControl {
    /// Bytes ever written (producer only). Frames start at multiples of 8.
    pub(super) head: Line<AtomicU64>,
    /// Bytes ever consumed (consumer only).
    pub(super) tail: Line<AtomicU64>,
    /// The consumer sleeps here waiting for data (or the peer closing).
    pub(super) data: Line<Event>,
    /// The producer sleeps here waiting for ring space or a large-region release.
    pub(super) space: Line<Event>,
    /// Large payloads of this direction the consumer has finished with (consumer only).
    pub(super) large_released: Line<AtomicU64>,
}

/// Fixed facts, written by the creator before the file is handed over.
#[repr(C)]
pub(super) struct Header {
    pub(super) magic: AtomicU64,
    pub(super) version: AtomicU32,
    /// Bytes of data per ring (a power of two).
    pub(super) ring_capacity: AtomicU32,
    /// Set to 1 by the (single) connecting side.
    pub(super) connected: AtomicU32,
}

/// The control block at offset 0 of the file.
#[repr(C)]
pub(super) struct Control {
    pub(super) header: Line<Header>,
    /// Ring 0 carries creator → connector, ring 1 connector → creator.
    pub(super) rings: [RingControl; 2],
    /// `closed[side]` is set to 1 when that side drops its transport.
    pub(super) closed: [Line<AtomicU32>; 2],
}

// The offsets tabulated in README.md.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(Control, rings) == 128);
    assert!(size_of::<RingControl>() == 640);
    assert!(offset_of!(RingControl, tail) == 128);
    assert!(offset_of!(RingControl, data) == 256);
    assert!(offset_of!(RingControl, space) == 384);
    assert!(offset_of!(RingControl, large_released) == 512);
    assert!(offset_of!(Control, closed) == 1408);
    assert!(size_of::<Control>() <= CONTROL_SIZE);
};
const _: () = assert!(std::mem::align_of::<Control>() <= CONTROL_SIZE);

/// Offset of ring `i`'s data area.
pub(super) fn ring_offset(i: usize, capacity: usize) -> usize {
    CONTROL_SIZE + i * capacity
}

/// Size of the fixed part of the file (control block and both rings).
pub(super) fn fixed_size(capacity: usize) -> usize {
    CONTROL_SIZE + 2 * capacity
}

/// Bytes a frame with a `len`-byte inline body occupies in a ring.
pub(super) fn frame_size(len: usize) -> usize {
    HEADER + len.next_multiple_of(8)
}
