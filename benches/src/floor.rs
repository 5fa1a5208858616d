//! The floors: a raw pipe ping-pong with a child that is this same binary re-executed, a bare
//! spawn of this binary that answers one byte, and pipelined frames of pool-process's sizes
//! through children that only read a frame and write a reply ([`FrameChild`], [`pump`]). No
//! codec, no pool, no supervision: the cost of the kernel's pipes and of `exec` alone,
//! measured in the same run as the pools.
//!
//! The ping-pong child speaks a tiny protocol on stdin/stdout. Every request starts with an 8-byte
//! little-endian header: the top byte is the operation, the low 56 bits its length or value.
//!
//! | op | request | reply |
//! |---|---|---|
//! | [`OP_PING`] | the header itself (8 bytes) | the same 8 bytes |
//! | [`OP_DOUBLE`] | header + `len` bytes of u64 LE | `len` bytes: every u64 doubled |
//! | [`OP_SINK`] | header + `len` bytes | 8 bytes: `len` as u64 LE |
//!
//! The child reads with plain `read` calls on its file descriptors (no buffering layer) and
//! exits at end of input.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that turns this binary into a floor child: `serve`, `frames` or
/// `hello`.
pub const CHILD_ENV: &str = "POOL_BENCH_FLOOR_CHILD";

/// Ping: an 8-byte message echoed back.
pub const OP_PING: u8 = 0;
/// Double a chunk of u64s.
pub const OP_DOUBLE: u8 = 1;
/// Swallow a payload and answer its length.
pub const OP_SINK: u8 = 2;

const LEN_MASK: u64 = (1 << 56) - 1;
/// The size of the reads the child makes when swallowing a large payload.
const SINK_READ: usize = 1 << 20;

fn header(op: u8, len: u64) -> [u8; 8] {
    debug_assert!(len <= LEN_MASK);
    ((u64::from(op) << 56) | (len & LEN_MASK)).to_le_bytes()
}

/// If this process was started as a floor child, serves and exits; otherwise returns at once.
///
/// Call it first thing in `main` of a binary that uses [`PipeChild`] or [`spawn_hello`].
pub fn run_child_if_requested() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let code = match mode.to_str() {
        Some("hello") => match io::stdout().lock().write_all(&[1]) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Some("serve") => match serve() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("floor child: {e}");
                1
            }
        },
        Some("frames") => match serve_frames() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("floor frame child: {e}");
                1
            }
        },
        _ => {
            eprintln!("floor child: unknown mode {mode:?}");
            2
        }
    };
    std::process::exit(code);
}

fn serve() -> io::Result<()> {
    let mut input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let mut output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut buf = Vec::new();
    loop {
        let mut head = [0u8; 8];
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let word = u64::from_le_bytes(head);
        let len = word & LEN_MASK;
        match (word >> 56) as u8 {
            OP_PING => output.write_all(&head)?,
            OP_DOUBLE => {
                buf.resize(usize::try_from(len).map_err(io::Error::other)?, 0);
                input.read_exact(&mut buf)?;
                for word in buf.chunks_exact_mut(8) {
                    let x = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
                    word.copy_from_slice(&crate::work::double(x).to_le_bytes());
                }
                output.write_all(&buf)?;
            }
            OP_SINK => {
                buf.resize(SINK_READ, 0);
                let mut left = len;
                while left > 0 {
                    let want = left.min(SINK_READ as u64) as usize;
                    let n = input.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    left -= n as u64;
                }
                output.write_all(&len.to_le_bytes())?;
            }
            op => return Err(io::Error::other(format!("unknown op {op}"))),
        }
    }
}

/// A child process (this binary re-executed) answering the floor protocol on two pipes.
///
/// Dropping it closes its input and waits at most two seconds for it to exit, then kills it.
#[derive(Debug)]
pub struct PipeChild {
    child: Child,
    tx: Option<ChildStdin>,
    rx: ChildStdout,
    bytes: Vec<u8>,
}

impl PipeChild {
    /// Starts this binary as a child and checks that it answers a ping.
    ///
    /// # Errors
    ///
    /// The spawn failed or the child did not answer.
    pub fn spawn() -> io::Result<Self> {
        Self::spawn_exe(&std::env::current_exe()?)
    }

    /// Starts `exe` (a binary that calls [`run_child_if_requested`] first) as a child and
    /// checks that it answers a ping.
    ///
    /// # Errors
    ///
    /// The spawn failed or the child did not answer.
    pub fn spawn_exe(exe: &std::path::Path) -> io::Result<Self> {
        let mut child = Command::new(exe)
            .env(CHILD_ENV, "serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let tx = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?;
        let rx = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut me = PipeChild {
            child,
            tx: Some(tx),
            rx,
            bytes: Vec::new(),
        };
        me.ping(42)?;
        Ok(me)
    }

    fn tx(&mut self) -> &mut ChildStdin {
        self.tx.as_mut().expect("stdin is only taken in drop")
    }

    /// Sends an 8-byte ping carrying `value` (56 bits) without waiting for the answer.
    ///
    /// # Errors
    ///
    /// The pipe is broken.
    pub fn send_ping(&mut self, value: u64) -> io::Result<()> {
        self.tx().write_all(&header(OP_PING, value))
    }

    /// Waits for the answer to a ping and returns the value it carried.
    ///
    /// # Errors
    ///
    /// The pipe is broken or the answer is not a ping.
    pub fn recv_ping(&mut self) -> io::Result<u64> {
        let mut head = [0u8; 8];
        self.rx.read_exact(&mut head)?;
        let word = u64::from_le_bytes(head);
        if (word >> 56) as u8 != OP_PING {
            return Err(io::Error::other("answer is not a ping"));
        }
        Ok(word & LEN_MASK)
    }

    /// One ping-pong: sends `value`, waits for it to come back.
    ///
    /// # Errors
    ///
    /// The pipe is broken or the wrong value came back.
    pub fn ping(&mut self, value: u64) -> io::Result<()> {
        self.send_ping(value)?;
        let back = self.recv_ping()?;
        if back != value & LEN_MASK {
            return Err(io::Error::other(format!("sent {value}, got {back} back")));
        }
        Ok(())
    }

    /// Sends a chunk to be doubled, without waiting for the answer.
    ///
    /// # Errors
    ///
    /// The pipe is broken.
    pub fn send_double(&mut self, chunk: &[u64]) -> io::Result<()> {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.clear();
        bytes.extend_from_slice(&header(OP_DOUBLE, (chunk.len() * 8) as u64));
        for x in chunk {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let sent = self.tx().write_all(&bytes);
        self.bytes = bytes;
        sent
    }

    /// Waits for a doubled chunk of `n` values and appends it to `out`.
    ///
    /// # Errors
    ///
    /// The pipe is broken.
    pub fn recv_double(&mut self, n: usize, out: &mut Vec<u64>) -> io::Result<()> {
        self.bytes.resize(n * 8, 0);
        self.rx.read_exact(&mut self.bytes)?;
        out.extend(
            self.bytes
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8"))),
        );
        Ok(())
    }

    /// Sends `payload` to be swallowed and returns the length the child counted.
    ///
    /// # Errors
    ///
    /// The pipe is broken.
    pub fn sink(&mut self, payload: &[u8]) -> io::Result<u64> {
        let tx = self.tx();
        tx.write_all(&header(OP_SINK, payload.len() as u64))?;
        tx.write_all(payload)?;
        let mut len = [0u8; 8];
        self.rx.read_exact(&mut len)?;
        Ok(u64::from_le_bytes(len))
    }
}

/// Waits at most two seconds for `child` (whose input is closed) to exit, then kills it;
/// reaped either way.
fn reap(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for PipeChild {
    fn drop(&mut self) {
        drop(self.tx.take());
        reap(&mut self.child);
    }
}

/// Spawns this binary as a child that writes one byte, and returns the time from the spawn
/// call to the byte's arrival (reaping the child happens after the clock stops).
///
/// # Errors
///
/// The spawn failed or no byte came.
pub fn spawn_hello() -> io::Result<Duration> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let mut child = Command::new(exe)
        .env(CHILD_ENV, "hello")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let mut byte = [0u8; 1];
    let got = out.read_exact(&mut byte);
    let elapsed = start.elapsed();
    let status = child.wait()?;
    got?;
    if !status.success() {
        return Err(io::Error::other(format!("hello child failed: {status}")));
    }
    Ok(elapsed)
}

// --- Pipelined frames of pool-process's sizes -------------------------------------------
//
// The sizes below are pool-process's (`pool-process/src/protocol/numbers.rs`, checked with
// `strace -e writev` on a pool: a task request is written as `[4-byte length][17-byte
// header][argument]`, its reply as `[4-byte length][10-byte header][result]`). They are
// private to pool-process, so they are restated here.

/// The frame's length prefix (pool-codec's framing, as pool-process's pipe transport uses it).
pub const FRAME_PREFIX: usize = pool_codec::HEADER_LEN;
/// A task request's header in pool-process: kind, sequence number (u64), function (i64).
pub const TASK_HEADER: usize = 17;
/// A task reply's header in pool-process: kind, sequence number (u64), outcome byte.
pub const REPLY_HEADER: usize = 10;
/// Tasks pool-process sends to one worker before reading the oldest one's reply
/// (`MAX_IN_FLIGHT` in `pool-process/src/backend.rs`).
pub const POOL_DEPTH: usize = 8;
/// The largest encoded argument pool-process sends behind other tasks in flight; a larger one
/// waits until its worker has answered everything (`PIPELINE_MAX_ARG`, same file).
pub const POOL_PIPELINE_MAX_ARG: usize = 256;

const FRAME_KIND_TASK: u8 = 2;
const FRAME_KIND_REPLY: u8 = 0x83;

/// A child serving [`FrameChild`]: for every frame read, one reply frame written, of the
/// length the request names (its bytes 9..17, where pool-process puts the function). The
/// sequence number (bytes 1..9) is echoed; nothing is decoded, nothing is run. Reads go
/// through pool-codec's `FrameReader` (as pool-process's worker reads), so one `read` may
/// bring several requests; every reply is one `write`, as the worker writes one per task.
fn serve_frames() -> io::Result<()> {
    let input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let mut output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut reader = pool_codec::FrameReader::new(input);
    let mut reply: Vec<u8> = Vec::new();
    loop {
        let frame = match reader.read_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e) => return Err(io::Error::other(e)),
        };
        if frame.len() < TASK_HEADER {
            return Err(io::Error::other("request shorter than a task header"));
        }
        let want = u64::from_le_bytes(frame[9..17].try_into().expect("8 bytes"));
        let body = REPLY_HEADER + usize::try_from(want).map_err(io::Error::other)?;
        let total = FRAME_PREFIX + body;
        if reply.len() < total {
            reply.resize(total, 0);
        }
        // The payload is whatever the buffer holds: only its length is part of the floor.
        reply[..4].copy_from_slice(&u32::try_from(body).map_err(io::Error::other)?.to_le_bytes());
        reply[4] = FRAME_KIND_REPLY;
        reply[5..13].copy_from_slice(&frame[1..9]);
        reply[13] = 0;
        output.write_all(&reply[..total])?;
    }
}

/// The requests of one floor operation, built before the clock starts: every frame's bytes
/// (prefix, a 17-byte header, the argument as pool-process would encode it), the length of
/// the reply it asks for, and whether pool-process would send it behind others in flight.
#[derive(Debug, Default)]
pub struct Frames {
    bytes: Vec<u8>,
    frames: Vec<FrameSpec>,
}

#[derive(Debug)]
struct FrameSpec {
    start: usize,
    end: usize,
    /// The reply frame's body length (header included).
    reply_body: usize,
    pipelined: bool,
}

impl Frames {
    /// Appends the request of a task whose encoded argument is `arg` and whose encoded result
    /// is `result_len` bytes; it is sent behind others in flight if `arg` is at most
    /// [`POOL_PIPELINE_MAX_ARG`] bytes, as pool-process does.
    ///
    /// # Panics
    ///
    /// A frame over 4 GiB.
    pub fn push(&mut self, arg: &[u8], result_len: usize) {
        let seq = self.frames.len() as u64 + 1;
        let start = self.bytes.len();
        let body = u32::try_from(TASK_HEADER + arg.len()).expect("frame under 4 GiB");
        self.bytes.extend_from_slice(&body.to_le_bytes());
        self.bytes.push(FRAME_KIND_TASK);
        self.bytes.extend_from_slice(&seq.to_le_bytes());
        self.bytes
            .extend_from_slice(&(result_len as u64).to_le_bytes());
        self.bytes.extend_from_slice(arg);
        self.frames.push(FrameSpec {
            start,
            end: self.bytes.len(),
            reply_body: REPLY_HEADER + result_len,
            pipelined: arg.len() <= POOL_PIPELINE_MAX_ARG,
        });
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// No requests.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes of all requests and of all replies, frame prefixes included.
    pub fn wire_bytes(&self) -> (usize, usize) {
        let replies = self
            .frames
            .iter()
            .map(|f| FRAME_PREFIX + f.reply_body)
            .sum();
        (self.bytes.len(), replies)
    }
}

/// A child (this binary re-executed) that answers every request frame with a reply frame of
/// the length the request names, without decoding or running anything.
///
/// Dropping it closes its input and waits at most two seconds for it to exit, then kills it.
#[derive(Debug)]
pub struct FrameChild {
    child: Child,
    tx: Option<ChildStdin>,
    rx: Option<pool_codec::FrameReader<ChildStdout>>,
    /// Indices (in [`Frames`]) of the requests sent and not answered, oldest first.
    in_flight: std::collections::VecDeque<usize>,
}

impl FrameChild {
    /// Starts this binary as a frame child and checks that it answers one request.
    ///
    /// # Errors
    ///
    /// The spawn failed or the child did not answer.
    pub fn spawn() -> io::Result<Self> {
        let child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, "frames")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut me = FrameChild {
            child,
            tx: None,
            rx: None,
            in_flight: std::collections::VecDeque::with_capacity(POOL_DEPTH),
        };
        me.tx = me.child.stdin.take();
        me.rx = me.child.stdout.take().map(pool_codec::FrameReader::new);
        let mut probe = Frames::default();
        probe.push(&[7], 3);
        pump(std::slice::from_mut(&mut me), &probe, 1, 1)?;
        Ok(me)
    }

    fn send(&mut self, frames: &Frames, i: usize) -> io::Result<()> {
        let f = &frames.frames[i];
        self.tx
            .as_mut()
            .ok_or_else(|| io::Error::other("no stdin"))?
            .write_all(&frames.bytes[f.start..f.end])?;
        self.in_flight.push_back(i);
        Ok(())
    }

    /// Reads the reply to the oldest request in flight (blocking) and checks its sequence
    /// number and length.
    fn recv(&mut self, frames: &Frames) -> io::Result<()> {
        let i = self
            .in_flight
            .pop_front()
            .ok_or_else(|| io::Error::other("nothing in flight"))?;
        let rx = self
            .rx
            .as_mut()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let frame = rx
            .read_frame()
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let want = &frames.frames[i];
        let seq = u64::from_le_bytes(
            frame
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        );
        if frame.len() != want.reply_body || seq != i as u64 + 1 {
            return Err(io::Error::other(format!(
                "reply of {} bytes with sequence {seq}, expected {} bytes with {}",
                frame.len(),
                want.reply_body,
                i + 1
            )));
        }
        Ok(())
    }

    /// True if the reply to the oldest request in flight is already buffered whole (reading
    /// it makes no system call).
    fn reply_buffered(&self, frames: &Frames) -> bool {
        match (self.in_flight.front(), &self.rx) {
            (Some(&i), Some(rx)) => rx.buffered() >= FRAME_PREFIX + frames.frames[i].reply_body,
            _ => false,
        }
    }
}

impl Drop for FrameChild {
    fn drop(&mut self) {
        drop(self.tx.take());
        reap(&mut self.child);
    }
}

/// Sends every request of `frames` through `children` and reads every reply, from one
/// thread, keeping each child as busy as pool-process keeps a worker: at most `depth`
/// requests in flight per child, a request that is not pipelined (argument over
/// [`POOL_PIPELINE_MAX_ARG`]) only to a child with nothing in flight, and at most `window`
/// requests in flight over all children. Requests go out in order, each to the least busy
/// child that may take it; each is one `write`. The thread then blocks on the child holding
/// the oldest request in flight and takes every reply already buffered, from every child,
/// before sending again. Replies are checked (sequence number, length), not decoded.
///
/// # Errors
///
/// A pipe broke or a reply was not the one expected. The children are then out of step: drop
/// them.
pub fn pump(
    children: &mut [FrameChild],
    frames: &Frames,
    depth: usize,
    window: usize,
) -> io::Result<()> {
    let n = frames.len();
    let (mut next, mut done, mut in_flight) = (0, 0, 0);
    while done < n {
        while next < n && in_flight < window {
            let Some(c) = children
                .iter_mut()
                .min_by_key(|c| c.in_flight.len())
                .filter(|c| {
                    let busy = c.in_flight.len();
                    if frames.frames[next].pipelined {
                        busy < depth
                    } else {
                        busy == 0
                    }
                })
            else {
                break;
            };
            c.send(frames, next)?;
            next += 1;
            in_flight += 1;
        }
        let oldest = children
            .iter_mut()
            .filter_map(|c| c.in_flight.front().copied().map(|i| (i, c)))
            .min_by_key(|(i, _)| *i)
            .map(|(_, c)| c)
            .ok_or_else(|| io::Error::other("nothing in flight and nothing sendable"))?;
        oldest.recv(frames)?;
        done += 1;
        in_flight -= 1;
        for c in children.iter_mut() {
            while c.reply_buffered(frames) {
                c.recv(frames)?;
                done += 1;
                in_flight -= 1;
            }
        }
    }
    Ok(())
}

/// Sends every frame of `frames` and receives its reply, with one thread per child (as the
/// pool has one per worker): each thread takes the next frame from a shared counter while its
/// child has fewer than `depth` in flight, and otherwise waits for its child's oldest reply.
/// No thread waits for another child's reply.
///
/// # Errors
///
/// A child failed to take a request or gave a wrong reply.
pub fn pump_per_child(
    children: &mut [FrameChild],
    frames: &Frames,
    depth: usize,
) -> io::Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let n = frames.len();
    std::thread::scope(|scope| {
        let threads: Vec<_> = children
            .iter_mut()
            .map(|c| {
                let next = &next;
                scope.spawn(move || -> io::Result<()> {
                    let mut exhausted = false;
                    loop {
                        while !exhausted && c.in_flight.len() < depth {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= n {
                                exhausted = true;
                            } else {
                                c.send(frames, i)?;
                            }
                        }
                        if c.in_flight.is_empty() {
                            return Ok(());
                        }
                        c.recv(frames)?;
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a pump thread panicked")))
            })
            .collect::<io::Result<Vec<()>>>()
            .map(drop)
    })
}
