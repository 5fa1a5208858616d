//! The shared-memory transport within one process: frame sizes at every boundary, wrap-around,
//! large payloads, two threads under load, close, deadlines, and refusing bad files.

mod support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use pool_process::transport::Transport;
use pool_process::transport::shm::{ShmOptions, ShmTransport};

/// A recognisable body: byte `i` of message `seed` is `(seed * 31 + i * 7) % 251`.
fn body(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((seed * 31 + i * 7) % 251) as u8)
        .collect()
}

fn small() -> ShmOptions {
    ShmOptions::new().ring_capacity(4096)
}

#[test]
fn frame_sizes_at_every_boundary() {
    let guard = support::start("shm_sizes", Duration::from_secs(30));
    let (mut a, mut b) = ShmTransport::pair(&small()).unwrap();
    let ring = a.ring_capacity();
    assert_eq!(ring, 4096);
    // 0, 1, around the 8-byte padding, around the largest inline frame (ring - 8),
    // ring - 1, ring, ring + 1, and well past the ring (large region).
    let sizes = [
        0,
        1,
        7,
        8,
        9,
        ring - 9,
        ring - 8,
        ring - 7,
        ring - 1,
        ring,
        ring + 1,
        3 * ring + 5,
        1 << 20,
    ];
    for (seed, &len) in sizes.iter().enumerate() {
        let msg = body(seed, len);
        a.send(&[&msg]).unwrap();
        assert_eq!(b.recv(None).unwrap(), &msg[..], "a->b, {len} bytes");
        b.send(&[&msg]).unwrap();
        assert_eq!(a.recv(None).unwrap(), &msg[..], "b->a, {len} bytes");
    }
    drop((a, b));
    guard.finish(&[]);
}

#[test]
fn wrap_around_with_odd_sizes_and_parts() {
    let guard = support::start("shm_wrap", Duration::from_secs(30));
    let (mut a, mut b) = ShmTransport::pair(&small()).unwrap();
    // Odd lengths make every header and body land at a different offset; 2 000 messages
    // through a 4 KiB ring wrap it hundreds of times. Several queued before each drain.
    let mut seed = 0;
    for round in 0..500 {
        let batch: Vec<Vec<u8>> = (0..4)
            .map(|k| body(seed + k, (round * 13 + k * 101) % 900))
            .collect();
        for m in &batch {
            // Split into three parts so part boundaries also cross the ring's end.
            let (x, rest) = m.split_at(m.len() / 3);
            let (y, z) = rest.split_at(rest.len() / 2);
            a.send(&[x, y, z]).unwrap();
        }
        for m in &batch {
            assert_eq!(b.recv(None).unwrap(), &m[..], "round {round}");
        }
        seed += 4;
    }
    drop((a, b));
    guard.finish(&[]);
}

#[test]
fn many_messages_between_two_threads() {
    let guard = support::start("shm_threads", Duration::from_secs(60));
    let (mut a, mut b) = ShmTransport::pair(&small().large_threshold(1024)).unwrap();
    const N: usize = 20_000;
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            // Mostly small, every 97th past the threshold (large region), so the ring fills,
            // the producer waits for space and for releases, and the consumer sleeps.
            let len = if i % 97 == 0 { 5000 + i % 3 } else { i % 300 };
            a.send(&[&body(i, len)]).unwrap();
        }
        // The reply proves the consumer saw everything before we close.
        assert_eq!(
            a.recv(Some(Instant::now() + Duration::from_secs(30)))
                .unwrap(),
            b"done"
        );
    });
    for i in 0..N {
        let len = if i % 97 == 0 { 5000 + i % 3 } else { i % 300 };
        let got = b
            .recv(Some(Instant::now() + Duration::from_secs(30)))
            .unwrap();
        assert_eq!(got.len(), len, "message {i}");
        assert_eq!(got, &body(i, len)[..], "message {i}");
        if i % 1000 == 0 {
            // Let the producer run ahead and fill the ring.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    b.send(&[b"done"]).unwrap();
    producer.join().unwrap();
    drop(b);
    guard.finish(&[]);
}

#[test]
fn ping_pong_wakes_a_sleeping_peer() {
    let guard = support::start("shm_pingpong", Duration::from_secs(30));
    let (mut a, mut b) = ShmTransport::pair(&ShmOptions::new()).unwrap();
    let echo = std::thread::spawn(move || {
        while let Ok(m) = b.recv(Some(Instant::now() + Duration::from_secs(20))) {
            let m = m.to_vec();
            b.send(&[&m]).unwrap();
        }
    });
    for i in 0..200u32 {
        if i % 20 == 0 {
            // Long enough that the echo thread is asleep on the futex, not yielding.
            std::thread::sleep(Duration::from_millis(5));
        }
        a.send(&[&i.to_le_bytes()]).unwrap();
        let r = a
            .recv(Some(Instant::now() + Duration::from_secs(10)))
            .unwrap();
        assert_eq!(r, &i.to_le_bytes());
    }
    drop(a);
    echo.join().unwrap();
    guard.finish(&[]);
}

#[test]
fn large_payloads_are_released_before_reuse() {
    let guard = support::start("shm_large", Duration::from_secs(60));
    let (mut a, mut b) = ShmTransport::pair(&small().keep_large(64 << 10)).unwrap();
    let reader = std::thread::spawn(move || {
        for i in 0..20 {
            let len = 100_000 + i * 10_000;
            let got = b
                .recv(Some(Instant::now() + Duration::from_secs(20)))
                .unwrap();
            assert_eq!(got, &body(i, len)[..], "large {i}");
            // Hold the payload a moment: the writer's next send must wait, not overwrite it.
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!(got, &body(i, len)[..], "large {i} changed while held");
        }
        b.send(&[b"ok"]).unwrap();
    });
    for i in 0..20 {
        let len = 100_000 + i * 10_000;
        a.send(&[&body(i, len)]).unwrap();
    }
    assert_eq!(
        a.recv(Some(Instant::now() + Duration::from_secs(20)))
            .unwrap(),
        b"ok"
    );
    reader.join().unwrap();
    drop(a);
    guard.finish(&[]);
}

#[test]
fn close_delivers_pending_then_eof_and_broken_pipe() {
    let guard = support::start("shm_close", Duration::from_secs(30));
    let (mut a, mut b) = ShmTransport::pair(&small()).unwrap();
    a.send(&[b"last words"]).unwrap();
    a.send(&[&body(1, 10_000)]).unwrap();
    drop(a);
    assert_eq!(b.recv(None).unwrap(), b"last words");
    assert_eq!(b.recv(None).unwrap(), &body(1, 10_000)[..]);
    assert_eq!(b.recv(None).unwrap_err().kind(), ErrorKind::UnexpectedEof);
    assert_eq!(
        b.send(&[b"anyone?"]).unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
    drop(b);

    // A receiver blocked without a deadline is woken by the close.
    let (a, mut b) = ShmTransport::pair(&small()).unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(a);
    });
    let t = Instant::now();
    assert_eq!(b.recv(None).unwrap_err().kind(), ErrorKind::UnexpectedEof);
    assert!(t.elapsed() < Duration::from_secs(10));
    closer.join().unwrap();
    drop(b);

    // A sender blocked on a full ring is woken by the close too.
    let (mut a, b) = ShmTransport::pair(&small()).unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(b);
    });
    let err = loop {
        if let Err(e) = a.send(&[&[7u8; 1000]]) {
            break e;
        }
    };
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    closer.join().unwrap();
    drop(a);
    guard.finish(&[]);
}

#[test]
fn deadline_times_out_and_channel_stays_usable() {
    let guard = support::start("shm_deadline", Duration::from_secs(30));
    let (mut a, mut b) = ShmTransport::pair(&small()).unwrap();
    for wait in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(120),
    ] {
        let t = Instant::now();
        let err = b.recv(Some(t + wait)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() >= wait, "returned before its deadline");
        assert!(
            t.elapsed() < wait + Duration::from_secs(5),
            "overslept: {:?}",
            t.elapsed()
        );
    }
    a.send(&[b"after"]).unwrap();
    assert_eq!(b.recv(Some(Instant::now())).unwrap(), b"after");
    drop((a, b));
    guard.finish(&[]);
}

#[test]
fn refuses_foreign_files_and_second_connect() {
    let guard = support::start("shm_refuse", Duration::from_secs(30));
    let (_a, file) = ShmTransport::create(&small()).unwrap();
    let again = rustix::io::fcntl_dupfd_cloexec(&file, 3).unwrap();
    let _b = ShmTransport::connect(file).unwrap();
    assert_eq!(
        ShmTransport::connect(again).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );

    // An unsealed memory file, and a sealed one without the channel's magic number.
    let plain = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&plain, 1 << 16).unwrap();
    assert_eq!(
        ShmTransport::connect(plain).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    let sealed = rustix::fs::memfd_create(
        "y",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    rustix::fs::ftruncate(&sealed, 1 << 16).unwrap();
    rustix::fs::fcntl_add_seals(&sealed, rustix::fs::SealFlags::SHRINK).unwrap();
    assert_eq!(
        ShmTransport::connect(sealed).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    drop((_a, _b));
    guard.finish(&[]);
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random sends and receives in one thread against a model of the channel: what is queued,
/// how much ring space it takes, whether the receiver still holds a large payload. Sends are
/// made only when the model says they cannot block, so any disagreement is a failure, never
/// a hang.
#[test]
fn random_operations_match_a_model() {
    let guard = support::start("shm_model", Duration::from_secs(60));
    for (seed, cap, threshold) in [
        (1u64, 4096usize, usize::MAX),
        (2, 4096, 0),
        (3, 8192, 100),
        (4, 4096, 2000),
    ] {
        let opts = ShmOptions::new()
            .ring_capacity(cap)
            .large_threshold(threshold);
        let (mut a, mut b) = ShmTransport::pair(&opts).unwrap();
        let inline_max = threshold.min(cap - 8);
        let frame = |len: usize| 8 + len.next_multiple_of(8);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut queue: std::collections::VecDeque<Vec<u8>> = Default::default();
        let mut used = 0; // ring bytes taken by queued frames
        let mut large_queued = false;
        let mut b_holds_large = false;
        let edges = [0, 1, 7, 8, 9, cap - 9, cap - 8, cap - 7, cap, cap + 1];
        for step in 0..20_000 {
            if rng.below(2) == 0 {
                let len = if rng.below(4) == 0 {
                    edges[rng.below(edges.len())]
                } else {
                    rng.below(cap + 64)
                };
                let large = len > inline_max;
                let size = if large { 8 } else { frame(len) };
                let fits = used + size <= cap && !(large && (large_queued || b_holds_large));
                if fits {
                    let msg = body(step, len);
                    let cut = rng.below(len + 1);
                    a.send(&[&msg[..cut], &msg[cut..]]).unwrap();
                    used += size;
                    large_queued |= large;
                    queue.push_back(msg);
                    continue;
                }
            }
            // Receive (also what releases a held large payload).
            b_holds_large = false;
            match queue.pop_front() {
                Some(want) => {
                    let got = b.recv(Some(Instant::now())).unwrap();
                    assert_eq!(got, &want[..], "seed {seed}, step {step}");
                    let large = want.len() > inline_max;
                    used -= if large { 8 } else { frame(want.len()) };
                    if large {
                        large_queued = false;
                        b_holds_large = true;
                    }
                }
                None => {
                    let err = b.recv(Some(Instant::now())).unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::TimedOut, "seed {seed}, step {step}");
                }
            }
        }
        drop((a, b));
    }
    guard.finish(&[]);
}
