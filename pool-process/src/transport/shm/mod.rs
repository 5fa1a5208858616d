//! The shared-memory transport: two single-producer single-consumer byte rings in an
//! anonymous memory file mapped by both processes, futex wake-ups after a short
//! `sched_yield` phase, and large payloads written once into a shared region instead of
//! being streamed. The protocol (layout, indices, memory ordering, wake-up handshake,
//! large-payload hand-over, crash detection) is described in `README.md` beside this file.

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod hostile;
mod large;
mod layout;
mod ring;
mod wake;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

use self::large::Region;
use self::layout::{
    CONTROL_SIZE, Control, HEADER, KIND_INLINE, KIND_LARGE, MAGIC, VERSION, fixed_size, frame_size,
    ring_offset,
};
use self::ring::Ring;
use self::wake::Woke;
use super::{MAX_FRAME, Transport};
use crate::sys::pidfd::ProcessWatch;
use crate::sys::shm::{self, Mapping};

/// Sizes of a shared-memory channel; see each setter for its default.
///
/// # Examples
///
/// ```
/// use pool_process::transport::shm::ShmOptions;
///
/// let opts = ShmOptions::new().ring_capacity(64 * 1024).large_threshold(8 * 1024);
/// assert_eq!(opts.get_ring_capacity(), 64 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmOptions {
    ring_capacity: usize,
    large_threshold: usize,
    keep_large: usize,
}

impl Default for ShmOptions {
    fn default() -> Self {
        Self {
            ring_capacity: 1 << 20,
            large_threshold: 256 << 10,
            keep_large: 64 << 20,
        }
    }
}

impl ShmOptions {
    /// The defaults: 1 MiB rings, payloads above 256 KiB go through the large region, whose
    /// first 64 MiB stay allocated for reuse.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of data per ring (one ring per direction). Rounded up to a power of two, at
    /// least 4 KiB and at most 256 MiB. Default: 1 MiB.
    #[must_use]
    pub fn ring_capacity(mut self, bytes: usize) -> Self {
        self.ring_capacity = bytes.clamp(4096, 256 << 20).next_power_of_two();
        self
    }

    /// Messages longer than this many bytes (or too long for the ring) are written once into
    /// the shared large-payload region instead of the ring. Default: 256 KiB.
    #[must_use]
    pub fn large_threshold(mut self, bytes: usize) -> Self {
        self.large_threshold = bytes;
        self
    }

    /// After a large payload has been read, its pages beyond this many bytes are returned to
    /// the system; the first `bytes` stay allocated so the next large payload does not pay
    /// for fresh pages. Default: 64 MiB.
    #[must_use]
    pub fn keep_large(mut self, bytes: usize) -> Self {
        self.keep_large = bytes;
        self
    }

    /// The ring capacity these options give.
    pub fn get_ring_capacity(&self) -> usize {
        self.ring_capacity
    }
}

/// A [`Transport`] over shared memory between two processes (or two threads).
///
/// One side creates the channel ([`ShmTransport::create`]) and hands the returned memory-file
/// descriptor to the other, which opens its side with [`ShmTransport::connect`]. Each side
/// should watch the other's process ([`ShmTransport::watch_process`],
/// [`ShmTransport::watch_parent`]): a peer that exits
/// without closing its side is then reported as `UnexpectedEof` (receive) or `BrokenPipe`
/// (send) within about 50–100 ms. A side that is dropped closes the channel at once.
///
/// # Examples
///
/// ```
/// use pool_process::transport::Transport;
/// use pool_process::transport::shm::{ShmOptions, ShmTransport};
///
/// let (mut a, mut b) = ShmTransport::pair(&ShmOptions::new())?;
/// a.send(&[b"hello ", b"worker"])?;
/// assert_eq!(b.recv(None)?, b"hello worker");
/// drop(a);
/// assert_eq!(b.recv(None).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ShmTransport {
    /// 0 for the creating side, 1 for the connecting side; it sends on ring `side`.
    side: usize,
    file: OwnedFd,
    control: Mapping,
    cap: usize,
    threshold: usize,
    keep_large: usize,
    /// Producer state: where our next frame starts in the outgoing ring.
    tx_head: u64,
    /// Consumer state: where the next unread frame starts in the incoming ring.
    rx_tail: u64,
    rx_buf: Vec<u8>,
    large_tx: Region,
    large_rx: Region,
    /// Large payloads sent so far (compared with the peer's `large_released`).
    large_sent: u64,
    /// Length of the large payload handed out by the last `recv`, not yet released.
    held: Option<usize>,
    peer: Option<ProcessWatch>,
    /// The largest message either way ([`Transport::set_max_frame`]).
    max_frame: usize,
}

impl std::fmt::Debug for ShmTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmTransport")
            .field("side", &self.side)
            .field("ring_capacity", &self.cap)
            .field("large_threshold", &self.threshold)
            .field("watching_peer", &self.peer.is_some())
            .finish_non_exhaustive()
    }
}

impl ShmTransport {
    /// Creates a channel; returns this side and a descriptor of the shared memory file for
    /// the other side (close-on-exec; pass it to [`ShmTransport::connect`] in the peer).
    ///
    /// # Errors
    ///
    /// The memory file cannot be created, sized, sealed or mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_process::transport::Transport;
    /// use pool_process::transport::shm::{ShmOptions, ShmTransport};
    ///
    /// let (mut parent, file) = ShmTransport::create(&ShmOptions::new())?;
    /// // ... normally `file` goes to another process ...
    /// let mut child = ShmTransport::connect(file)?;
    /// child.send(&[b"ready"])?;
    /// assert_eq!(parent.recv(None)?, b"ready");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(opts: &ShmOptions) -> io::Result<(Self, OwnedFd)> {
        let cap = opts
            .ring_capacity
            .clamp(4096, 256 << 20)
            .next_power_of_two();
        let fixed = fixed_size(cap);
        let file = shm::create_memfd("pool-shm", fixed as u64)?;
        let control = Mapping::new(file.as_fd(), 0, fixed)?;
        let this = Self::from_parts(0, file, control, cap, opts);
        let header = &this.control_block().header.0;
        header.ring_capacity.store(cap as u32, Ordering::Relaxed);
        header.version.store(VERSION, Ordering::Relaxed);
        // Release: the fields above are visible to whoever sees the magic.
        header.magic.store(MAGIC, Ordering::Release);
        let peer_file = rustix::io::fcntl_dupfd_cloexec(&this.file, 3)?;
        Ok((this, peer_file))
    }

    /// Opens the other side of a channel from the memory file [`ShmTransport::create`]
    /// returned. Ring and threshold sizes are the creator's (`keep_large` is the default).
    ///
    /// # Errors
    ///
    /// `InvalidData` if the file is not a channel made by `create` (wrong magic, version or
    /// size, not sealed), `AddrInUse` if the other side was already connected.
    pub fn connect(file: OwnedFd) -> io::Result<Self> {
        Self::connect_with(file, &ShmOptions::default())
    }

    /// Like [`ShmTransport::connect`], with this side's `large_threshold` and `keep_large`
    /// taken from `opts` (the ring capacity is always the creator's).
    ///
    /// # Errors
    ///
    /// As for [`ShmTransport::connect`].
    pub fn connect_with(file: OwnedFd, opts: &ShmOptions) -> io::Result<Self> {
        let invalid = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a pool shared-memory channel: {what}"),
            )
        };
        shm::check_sealed(file.as_fd()).map_err(|_| invalid("the file is not sealed"))?;
        let size = shm::file_size(file.as_fd())?;
        if size < CONTROL_SIZE as u64 {
            return Err(invalid("the file is too short"));
        }
        let head = Mapping::new(file.as_fd(), 0, CONTROL_SIZE)?;
        // SAFETY: the mapping is `CONTROL_SIZE` bytes, page-aligned, inside the file (checked
        // above; sealed against shrinking) and `Control` fits in it with its alignment; all of
        // its fields are atomics, so shared access from both processes is sound.
        let control = unsafe { &*head.as_ptr().cast::<Control>() };
        if control.header.0.magic.load(Ordering::Acquire) != MAGIC {
            return Err(invalid("wrong magic number"));
        }
        if control.header.0.version.load(Ordering::Relaxed) != VERSION {
            return Err(invalid("layout version mismatch"));
        }
        let cap = control.header.0.ring_capacity.load(Ordering::Relaxed) as usize;
        if !cap.is_power_of_two() || cap < 4096 || size < fixed_size(cap) as u64 {
            return Err(invalid("bad ring capacity"));
        }
        if control.header.0.connected.swap(1, Ordering::AcqRel) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "this shared-memory channel already has a connected peer",
            ));
        }
        drop(head);
        let control = Mapping::new(file.as_fd(), 0, fixed_size(cap))?;
        Ok(Self::from_parts(1, file, control, cap, opts))
    }

    /// Two connected sides in this process (for two threads).
    ///
    /// # Errors
    ///
    /// As for [`ShmTransport::create`].
    pub fn pair(opts: &ShmOptions) -> io::Result<(Self, Self)> {
        let (a, file) = Self::create(opts)?;
        let b = Self::connect_with(file, opts)?;
        Ok((a, b))
    }

    fn from_parts(
        side: usize,
        file: OwnedFd,
        control: Mapping,
        cap: usize,
        opts: &ShmOptions,
    ) -> Self {
        // Everything that does not fit the ring whole goes through the large region.
        let threshold = opts.large_threshold.min(cap - HEADER);
        Self {
            side,
            file,
            control,
            cap,
            threshold,
            keep_large: opts.keep_large,
            tx_head: 0,
            rx_tail: 0,
            rx_buf: Vec::new(),
            large_tx: Region::new(side),
            large_rx: Region::new(1 - side),
            large_sent: 0,
            held: None,
            peer: None,
            max_frame: MAX_FRAME,
        }
    }

    /// Watches the peer process `pid`, an unreaped child of this process: once it has
    /// exited, waits end with `UnexpectedEof` (receiving) or `BrokenPipe` (sending) instead of
    /// waiting for a message that will never come.
    ///
    /// # Errors
    ///
    /// The process cannot be watched (`pidfd_open` failed: it is already reaped, or the
    /// kernel is older than 5.3).
    pub fn watch_process(&mut self, pid: u32) -> io::Result<()> {
        self.peer = Some(ProcessWatch::open(pid)?);
        Ok(())
    }

    /// Watches this process's parent, which must be `pid`, like
    /// [`ShmTransport::watch_process`]. The watch is set up first and the parent id checked
    /// afterwards, so a parent that already died (its pid possibly reused) is an error, never
    /// a stranger watched by mistake.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if `pid` is not (or no longer) the parent; otherwise as for
    /// [`ShmTransport::watch_process`].
    pub fn watch_parent(&mut self, pid: u32) -> io::Result<()> {
        self.peer = Some(ProcessWatch::parent(pid)?);
        Ok(())
    }

    /// Bytes of data per ring.
    pub fn ring_capacity(&self) -> usize {
        self.cap
    }

    fn control_block(&self) -> &Control {
        control_of(&self.control)
    }

    fn tx(&self) -> Ring<'_> {
        ring_of(&self.control, self.cap, self.side)
    }

    fn rx(&self) -> Ring<'_> {
        ring_of(&self.control, self.cap, 1 - self.side)
    }

    fn peer_closed(&self) -> bool {
        self.control_block().closed[1 - self.side]
            .0
            .load(Ordering::Acquire)
            != 0
    }

    /// Releases the large payload handed out by the last `recv`, if any.
    fn release_held(&mut self) {
        if let Some(len) = self.held.take() {
            self.large_rx.trim(self.file.as_fd(), len, self.keep_large);
            let rx = self.rx();
            rx.ctl.large_released.0.fetch_add(1, Ordering::Release);
            wake::notify(&rx.ctl.space.0);
        }
    }

    /// Waits until the outgoing ring has `need` free bytes.
    fn wait_space(&mut self, need: usize) -> io::Result<()> {
        let mut failure = None;
        let woke = {
            let tx = self.tx();
            let ready = || match tx.free(self.tx_head) {
                Ok(free) => free >= need || self.peer_closed(),
                Err(e) => {
                    failure = Some(e);
                    true
                }
            };
            wake::wait(&tx.ctl.space.0, None, self.peer.as_ref(), ready)
        };
        if let Some(e) = failure {
            return Err(e);
        }
        match woke {
            Woke::Ready if self.tx().free(self.tx_head)? >= need => Ok(()),
            _ => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Waits until the peer released our previous large payload.
    fn wait_large_free(&mut self) -> io::Result<()> {
        let sent = self.large_sent;
        let woke = {
            let tx = self.tx();
            let released = || tx.ctl.large_released.0.load(Ordering::Acquire);
            let ready = || released() == sent || self.peer_closed();
            wake::wait(&tx.ctl.space.0, None, self.peer.as_ref(), ready)
        };
        let released = self.tx().ctl.large_released.0.load(Ordering::Acquire);
        match woke {
            Woke::Ready if released == sent => Ok(()),
            _ => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

impl Transport for ShmTransport {
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        // A `send` means the caller no longer borrows the last received message.
        self.release_held();
        if self.peer_closed() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > self.max_frame {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "message of {total} bytes exceeds the {}-byte frame limit",
                    self.max_frame
                ),
            ));
        }
        if total <= self.threshold {
            let need = frame_size(total);
            if self.tx().free(self.tx_head)? < need {
                self.wait_space(need)?;
            }
            self.tx_head = self
                .tx()
                .push(self.tx_head, KIND_INLINE, total as u32, parts);
        } else {
            if self.tx().ctl.large_released.0.load(Ordering::Acquire) != self.large_sent {
                self.wait_large_free()?;
            }
            self.large_tx.write(self.file.as_fd(), parts, total)?;
            if self.tx().free(self.tx_head)? < HEADER {
                self.wait_space(HEADER)?;
            }
            self.tx_head = self.tx().push(self.tx_head, KIND_LARGE, total as u32, &[]);
            self.large_sent += 1;
        }
        wake::notify(&self.tx().ctl.data.0);
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        // The region for large payloads holds at most `REGION_SPAN` bytes.
        self.max_frame = max.min(layout::REGION_SPAN as usize);
    }

    fn recv(&mut self, deadline: Option<Instant>) -> io::Result<&[u8]> {
        self.release_held();
        loop {
            let available = self.rx().available(self.rx_tail)?;
            if available >= HEADER {
                let rx = ring_of(&self.control, self.cap, 1 - self.side);
                let (kind, len) = rx.header(self.rx_tail);
                let len = len as usize;
                return match kind {
                    KIND_INLINE => {
                        let size = frame_size(len);
                        if size > available {
                            return Err(corrupt("a frame is longer than the published data"));
                        }
                        self.rx_buf.clear();
                        rx.read(self.rx_tail + HEADER as u64, len, &mut self.rx_buf);
                        self.rx_tail += size as u64;
                        rx.release(self.rx_tail);
                        wake::notify(&rx.ctl.space.0);
                        Ok(&self.rx_buf)
                    }
                    KIND_LARGE if len > self.max_frame => Err(corrupt(&format!(
                        "a frame of {len} bytes was announced, over the {}-byte limit",
                        self.max_frame
                    ))),
                    KIND_LARGE => {
                        self.rx_tail += HEADER as u64;
                        rx.release(self.rx_tail);
                        wake::notify(&rx.ctl.space.0);
                        self.held = Some(len);
                        self.large_rx.read(self.file.as_fd(), len)
                    }
                    other => Err(corrupt(&format!("unknown frame kind {other}"))),
                };
            }
            if available != 0 {
                return Err(corrupt("a partial frame header was published"));
            }
            if self.peer_closed() {
                // Everything published before the close is visible now (Acquire); only
                // then is the channel really empty.
                if self.rx().available(self.rx_tail)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                continue;
            }
            let woke = {
                let rx = self.rx();
                let tail = self.rx_tail;
                let ready = || rx.available(tail).map_or(true, |n| n > 0) || self.peer_closed();
                wake::wait(&rx.ctl.data.0, deadline, self.peer.as_ref(), ready)
            };
            match woke {
                Woke::Ready => {}
                Woke::TimedOut => return Err(io::ErrorKind::TimedOut.into()),
                Woke::PeerGone => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }
}

impl Drop for ShmTransport {
    fn drop(&mut self) {
        self.release_held();
        let control = self.control_block();
        control.closed[self.side].0.store(1, Ordering::Release);
        // Wake the peer wherever it may sleep: waiting for our data, or for ring space or a
        // large-region release on its own outgoing ring.
        wake::notify(&self.tx().ctl.data.0);
        wake::notify(&self.rx().ctl.space.0);
    }
}

/// The control block of a channel mapping.
fn control_of(control: &Mapping) -> &Control {
    // SAFETY: a channel's control mapping covers at least `CONTROL_SIZE` bytes at offset 0
    // of the sealed file (it cannot shrink), page-aligned (so aligned for `Control`), for as
    // long as the borrow of the `Mapping`; every field of `Control` is an atomic, so the
    // other process writing it concurrently is sound.
    unsafe { &*control.as_ptr().cast::<Control>() }
}

/// Ring `i` of a channel mapping of ring capacity `cap`.
fn ring_of(control: &Mapping, cap: usize, i: usize) -> Ring<'_> {
    debug_assert!(control.len() >= fixed_size(cap));
    let data = control.as_ptr().wrapping_add(ring_offset(i, cap));
    // SAFETY: ring `i`'s data area is `cap` bytes at `ring_offset(i, cap)`, inside the control
    // mapping (`fixed_size(cap)` bytes) that outlives the borrow; `cap` is a power of two of
    // at least 4096. Side `s` produces only on ring `s` (`tx`) and consumes only on ring
    // `1 - s` (`rx`), and there is exactly one side of each kind (`connected` flag).
    unsafe { Ring::new(&control_of(control).rings[i], data, cap) }
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("shared-memory channel corrupt: {what}"),
    )
}
