//! The floors: a raw pipe ping-pong with a child that is this same binary re-executed, and a
//! bare spawn of this binary that answers one byte. No codec, no pool, no supervision: the
//! cost of the kernel's pipes and of `exec` alone, measured in the same run as the pools.
//!
//! The child speaks a tiny protocol on stdin/stdout. Every request starts with an 8-byte
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

/// The environment variable that turns this binary into a floor child: `serve` or `hello`.
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

impl Drop for PipeChild {
    fn drop(&mut self) {
        drop(self.tx.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
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
