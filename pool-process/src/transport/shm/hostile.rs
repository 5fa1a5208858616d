//! A hostile peer for the shared-memory channel, driven by a script of bytes (the fuzz target
//! `shm_ring`, and the unit tests below).
//!
//! Two sides of a real channel live in this process: `ours`, the side under test, and
//! `theirs`, the peer. The peer both plays by the rules (real sends and receives) and writes
//! what a hostile or broken process could write into the shared file: the head index and the
//! data of the ring it produces into, the tail index and the large-payload release count of
//! the ring it consumes from, and its closed flag. Everything runs on one thread, one step at a
//! time, and a step that would block (a send into a ring the peer never drains) is skipped, so
//! a script always ends.
//!
//! What must hold: no step panics, reads or writes outside the mapping (the fuzzer builds with
//! AddressSanitizer) or hangs; a receive returns a message, `TimedOut`, `UnexpectedEof`,
//! `BrokenPipe` or `InvalidData`; while the peer has written nothing out of turn in a
//! direction, that direction delivers exactly the messages sent, in order.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::layout::{HEADER, frame_size};
use super::{ShmOptions, ShmTransport};
use crate::transport::Transport;

/// One step of a script: an opcode byte, then its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The peer sends a message of this many bytes by the rules (skipped if it would block).
    TheirSend(u16),
    /// The side under test sends a message of this many bytes (skipped if it would block).
    OurSend(u16),
    /// The side under test receives, without waiting.
    OurRecv,
    /// The peer receives, without waiting.
    TheirRecv,
    /// The peer moves the head of the ring it produces into by this many bytes.
    MoveHead(i16),
    /// The peer stores this value as the head of the ring it produces into.
    SetHead(u64),
    /// The peer writes these bytes into the data of the ring it produces into, this many
    /// bytes past the ring's current head (wrapping around the end of the data area).
    Poke(u16, Vec<u8>),
    /// The peer moves the tail of the ring it consumes from by this many bytes.
    MoveTail(i16),
    /// The peer moves the large-payload release count of our direction.
    MoveReleased(i8),
    /// The peer sets its closed flag, as if it had dropped its side.
    Close,
}

const THEIR_SEND: u8 = 0;
const OUR_SEND: u8 = 1;
const OUR_RECV: u8 = 2;
const THEIR_RECV: u8 = 3;
const MOVE_HEAD: u8 = 4;
const SET_HEAD: u8 = 5;
const POKE: u8 = 6;
const MOVE_TAIL: u8 = 7;
const MOVE_RELEASED: u8 = 8;
const CLOSE: u8 = 9;
const KINDS: u8 = 10;

/// Ring capacity of the scripted channel: the smallest, so scripts reach wrap-around soon.
const CAP: usize = 4096;
/// Messages above this go through the large region.
const THRESHOLD: usize = 1024;

impl Step {
    /// Reads one step; `None` at the end of the script (an incomplete last step is dropped).
    fn read(s: &mut &[u8]) -> Option<Self> {
        let (&op, rest) = s.split_first()?;
        *s = rest;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (a, b) = s.split_at_checked(n)?;
            *s = b;
            Some(a)
        };
        Some(match op % KINDS {
            THEIR_SEND => Self::TheirSend(u16::from_le_bytes(take(2)?.try_into().ok()?)),
            OUR_SEND => Self::OurSend(u16::from_le_bytes(take(2)?.try_into().ok()?)),
            OUR_RECV => Self::OurRecv,
            THEIR_RECV => Self::TheirRecv,
            MOVE_HEAD => Self::MoveHead(i16::from_le_bytes(take(2)?.try_into().ok()?)),
            SET_HEAD => Self::SetHead(u64::from_le_bytes(take(8)?.try_into().ok()?)),
            POKE => {
                let at = u16::from_le_bytes(take(2)?.try_into().ok()?);
                let n = usize::from(*take(1)?.first()?);
                Self::Poke(at, take(n)?.to_vec())
            }
            MOVE_TAIL => Self::MoveTail(i16::from_le_bytes(take(2)?.try_into().ok()?)),
            MOVE_RELEASED => Self::MoveReleased(i8::from_le_bytes(take(1)?.try_into().ok()?)),
            _ => Self::Close,
        })
    }

    /// The bytes `read` parses back to this step (a poke carries at most 255 bytes).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::TheirSend(n) => {
                out.push(THEIR_SEND);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Self::OurSend(n) => {
                out.push(OUR_SEND);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Self::OurRecv => out.push(OUR_RECV),
            Self::TheirRecv => out.push(THEIR_RECV),
            Self::MoveHead(d) => {
                out.push(MOVE_HEAD);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Self::SetHead(v) => {
                out.push(SET_HEAD);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Self::Poke(at, bytes) => {
                let bytes = &bytes[..bytes.len().min(255)];
                out.push(POKE);
                out.extend_from_slice(&at.to_le_bytes());
                out.push(bytes.len() as u8);
                out.extend_from_slice(bytes);
            }
            Self::MoveTail(d) => {
                out.push(MOVE_TAIL);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Self::MoveReleased(d) => {
                out.push(MOVE_RELEASED);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Self::Close => out.push(CLOSE),
        }
    }
}

/// A message of `len` bytes whose content tells which message it is.
fn message(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

/// One direction's expectations: the messages sent and not yet received, as long as the peer
/// has not tampered with it (`None` from then on: anything may arrive, or an error).
struct Expect {
    queue: Option<VecDeque<Vec<u8>>>,
    sent: u64,
}

impl Expect {
    fn new() -> Self {
        Self {
            queue: Some(VecDeque::new()),
            sent: 0,
        }
    }

    fn next_message(&mut self, len: usize) -> Vec<u8> {
        self.sent += 1;
        message(self.sent, len)
    }

    fn tampered(&mut self) {
        self.queue = None;
    }

    /// Checks one receive against what was sent; `who` names the receiving side.
    fn check(&mut self, got: io::Result<&[u8]>, peer_closed: bool, who: &str) {
        let Some(queue) = self.queue.as_mut() else {
            match got {
                Ok(_) => {}
                Err(e) => assert!(
                    matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::InvalidData
                    ),
                    "{who}: unexpected error from a tampered channel: {e}"
                ),
            }
            return;
        };
        match (got, queue.pop_front()) {
            (Ok(m), Some(want)) => assert!(m == want, "{who}: received the wrong message"),
            (Ok(m), None) => panic!("{who}: received {} bytes nobody sent", m.len()),
            (Err(e), None) if e.kind() == io::ErrorKind::TimedOut && !peer_closed => {}
            (Err(e), None) if e.kind() == io::ErrorKind::UnexpectedEof && peer_closed => {}
            (Err(e), want) => panic!(
                "{who}: {e} ({:?}) with {} message(s) pending, peer closed: {peer_closed}",
                e.kind(),
                usize::from(want.is_some()) + queue.len()
            ),
        }
    }
}

/// True if `side.send` of `len` bytes would return at once (sent or refused) instead of
/// waiting for its peer: the same tests `send` makes before it waits, in the same order (a
/// large payload first waits for the previous one's release, whatever the ring's state).
fn send_returns_at_once(side: &ShmTransport, len: usize) -> bool {
    if side.peer_closed() {
        return true;
    }
    let large = len > side.threshold;
    if large && side.tx().ctl.large_released.0.load(Ordering::Acquire) != side.large_sent {
        return false;
    }
    let need = if large { HEADER } else { frame_size(len) };
    match side.tx().free(side.tx_head) {
        Ok(free) => free >= need,
        Err(_) => true,
    }
}

/// What the receives of a script returned, counted (for tests: a script meant to reach a
/// check does reach it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) delivered: usize,
    pub(crate) corrupt: usize,
    pub(crate) other_errors: usize,
}

impl Tally {
    fn count(&mut self, got: &io::Result<&[u8]>) {
        match got {
            Ok(_) => self.delivered += 1,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => self.corrupt += 1,
            Err(_) => self.other_errors += 1,
        }
    }
}

/// Runs a script (see [`Step`]) against a fresh channel.
///
/// # Panics
///
/// When a property in the module documentation does not hold.
pub(crate) fn play(mut script: &[u8]) -> Tally {
    let mut tally = Tally::default();
    let opts = ShmOptions::new()
        .ring_capacity(CAP)
        .large_threshold(THRESHOLD)
        .keep_large(0);
    let (mut theirs, mut ours) = ShmTransport::pair(&opts).expect("create a channel");
    // Theirs produces into ring 0 and consumes ring 1 (it is side 0); ours the other way.
    let mut to_ours = Expect::new();
    let mut to_theirs = Expect::new();
    let mut closed = false;
    while let Some(step) = Step::read(&mut script) {
        match step {
            Step::TheirSend(len) => {
                let len = usize::from(len);
                if !send_returns_at_once(&theirs, len) {
                    continue;
                }
                let msg = to_ours.next_message(len);
                let (a, b) = msg.split_at(len / 3);
                match theirs.send(&[a, b]) {
                    Ok(()) => {
                        if let Some(q) = to_ours.queue.as_mut() {
                            q.push_back(msg);
                        }
                    }
                    // Only our tampering with its view can make it fail.
                    Err(_) => to_ours.tampered(),
                }
            }
            Step::OurSend(len) => {
                let len = usize::from(len);
                if !send_returns_at_once(&ours, len) {
                    continue;
                }
                let msg = to_theirs.next_message(len);
                match ours.send(&[&msg]) {
                    Ok(()) => {
                        assert!(!closed, "a send to a closed peer succeeded");
                        if let Some(q) = to_theirs.queue.as_mut() {
                            q.push_back(msg);
                        }
                    }
                    Err(e) => {
                        let kind = e.kind();
                        let fine = (kind == io::ErrorKind::BrokenPipe && closed)
                            || (kind == io::ErrorKind::InvalidData && to_theirs.queue.is_none());
                        assert!(fine, "our send failed: {e}");
                        // A refused message may still be half in the ring: expect anything.
                        to_theirs.tampered();
                    }
                }
            }
            Step::OurRecv => {
                let got = ours.recv(Some(Instant::now()));
                tally.count(&got);
                to_ours.check(got, closed, "ours");
            }
            Step::TheirRecv => {
                let got = theirs.recv(Some(Instant::now()));
                tally.count(&got);
                to_theirs.check(got, false, "theirs");
            }
            Step::MoveHead(d) => {
                let head = &theirs.tx().ctl.head.0;
                let now = head.load(Ordering::Relaxed);
                head.store(now.wrapping_add_signed(i64::from(d)), Ordering::Release);
                to_ours.tampered();
            }
            Step::SetHead(v) => {
                theirs.tx().ctl.head.0.store(v, Ordering::Release);
                to_ours.tampered();
            }
            Step::Poke(at, bytes) => {
                let head = theirs.tx().ctl.head.0.load(Ordering::Relaxed);
                // Offsets count from the ring's current head, so scripts reach the frame the
                // receiver reads next wherever the ring has wrapped to.
                theirs
                    .tx()
                    .overwrite(head.wrapping_add(u64::from(at)), &bytes);
                to_ours.tampered();
            }
            Step::MoveTail(d) => {
                let tail = &ours.tx().ctl.tail.0;
                let now = tail.load(Ordering::Relaxed);
                tail.store(now.wrapping_add_signed(i64::from(d)), Ordering::Release);
                to_theirs.tampered();
            }
            Step::MoveReleased(d) => {
                let released = &ours.tx().ctl.large_released.0;
                let now = released.load(Ordering::Relaxed);
                released.store(now.wrapping_add_signed(i64::from(d)), Ordering::Release);
                to_theirs.tampered();
            }
            Step::Close => {
                theirs.control_block().closed[theirs.side]
                    .0
                    .store(1, Ordering::Release);
                closed = true;
            }
        }
    }
    tally
}

/// Scripts that exercise each step, for the seed corpus and the tests: `(name, bytes)`.
pub(crate) fn samples() -> Vec<(&'static str, Vec<u8>)> {
    use Step::*;
    let script = |steps: &[Step]| {
        let mut out = Vec::new();
        for s in steps {
            s.encode(&mut out);
        }
        out
    };
    // Header of a frame claiming 4000 inline bytes, and of an unknown kind.
    let mut long_inline = 4000u32.to_le_bytes().to_vec();
    long_inline.extend_from_slice(&0u32.to_le_bytes());
    let mut unknown_kind = 8u32.to_le_bytes().to_vec();
    unknown_kind.extend_from_slice(&7u32.to_le_bytes());
    let mut huge_large = u32::MAX.to_le_bytes().to_vec();
    huge_large.extend_from_slice(&1u32.to_le_bytes());
    vec![
        (
            "ping-pong",
            script(&[
                TheirSend(5),
                OurRecv,
                OurSend(12),
                TheirRecv,
                OurRecv,
                TheirRecv,
            ]),
        ),
        (
            "wrap-around",
            script(&[
                TheirSend(1000),
                TheirSend(1000),
                TheirSend(1000),
                OurRecv,
                OurRecv,
                TheirSend(1000),
                TheirSend(1000),
                OurRecv,
                OurRecv,
                OurRecv,
                OurRecv,
            ]),
        ),
        (
            "large-both-ways",
            script(&[
                TheirSend(5000),
                OurRecv,
                OurSend(2000),
                TheirSend(3000),
                TheirRecv,
                OurRecv,
                TheirRecv,
                OurSend(2000),
                TheirRecv,
            ]),
        ),
        ("full-ring", script(&vec![OurSend(1000); 6])),
        (
            "head-past-capacity",
            script(&[TheirSend(8), MoveHead(5000), OurRecv, OurRecv]),
        ),
        ("head-partial", script(&[MoveHead(3), OurRecv])),
        ("head-far", script(&[SetHead(u64::MAX - 7), OurRecv])),
        (
            "long-inline-header",
            script(&[Poke(0, long_inline), MoveHead(16), OurRecv]),
        ),
        (
            "unknown-kind",
            script(&[
                TheirSend(3),
                OurRecv,
                Poke(0, unknown_kind),
                MoveHead(8),
                OurRecv,
            ]),
        ),
        (
            "large-beyond-file",
            script(&[Poke(0, huge_large), MoveHead(8), OurRecv]),
        ),
        (
            "tail-ahead",
            script(&[OurSend(8), MoveTail(64), OurSend(8), TheirRecv]),
        ),
        (
            "released-ahead",
            script(&[OurSend(2000), MoveReleased(1), OurSend(2000), TheirRecv]),
        ),
        (
            // Found by the fuzzer: a large send behind an unreleased one waits for the
            // release before it looks at the (here corrupt) ring; the script must skip it.
            "large-behind-unreleased-with-corrupt-tail",
            script(&[
                OurSend(5000),
                TheirRecv,
                MoveTail(8),
                OurSend(5000),
                TheirRecv,
            ]),
        ),
        (
            "close-then-drain",
            script(&[TheirSend(20), Close, OurRecv, OurRecv, OurSend(4)]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::{Step, Tally, play, samples};

    #[test]
    fn every_sample_script_plays_and_steps_round_trip() {
        for (name, script) in samples() {
            let mut rest = &script[..];
            let mut again = Vec::new();
            while let Some(step) = Step::read(&mut rest) {
                step.encode(&mut again);
            }
            assert_eq!(again, script, "{name}");
            let tally = play(&script);
            let expected = |delivered, corrupt, other_errors| Tally {
                delivered,
                corrupt,
                other_errors,
            };
            let want = match name {
                "ping-pong" => expected(2, 0, 2),
                "wrap-around" => expected(5, 0, 1),
                "large-both-ways" => expected(4, 0, 1),
                "full-ring" => expected(0, 0, 0),
                "head-past-capacity" => expected(0, 2, 0),
                "head-partial" => expected(0, 1, 0),
                "head-far" => expected(0, 1, 0),
                "long-inline-header" => expected(0, 1, 0),
                "unknown-kind" => expected(1, 1, 0),
                "large-beyond-file" => expected(0, 1, 0),
                "tail-ahead" => expected(1, 0, 0),
                "released-ahead" => expected(1, 0, 0),
                "large-behind-unreleased-with-corrupt-tail" => expected(1, 0, 1),
                "close-then-drain" => expected(1, 0, 1),
                other => panic!("no expectation for sample {other}"),
            };
            assert_eq!(tally, want, "{name}");
        }
    }

    #[test]
    fn a_truncated_or_garbage_script_still_plays() {
        for (_, script) in samples() {
            for cut in 0..script.len() {
                play(&script[..cut]);
            }
        }
        play(&[0xff; 64]);
        play(&(0..=255).collect::<Vec<u8>>());
    }
}
