//! Shared memory for the shared-memory transport: anonymous memory files and their mappings.
//!
//! Mechanism: `memfd_create(2)` makes an anonymous tmpfs file that exists only as long as a
//! descriptor or a mapping refers to it, so nothing is left behind in `/dev/shm` when a
//! process crashes. The file is created with `MFD_ALLOW_SEALING` and sealed with
//! `F_SEAL_SHRINK | F_SEAL_SEAL`: it can grow (`ftruncate` to a larger size, which only
//! extends the sparse file) but never shrink, so a mapping that was valid when it was checked
//! against the file size stays valid — no `SIGBUS` from a peer truncating the file under us.
//! Mappings are `MAP_SHARED` read-write views made with `mmap(2)` at an address the kernel
//! chooses; they are unmapped on drop. Pages the transport no longer needs are returned with
//! `fallocate(FALLOC_FL_PUNCH_HOLE)`.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// Creates an anonymous, close-on-exec memory file of `len` bytes whose size can only grow.
pub(crate) fn create_memfd(name: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, len)?;
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::SEAL)?;
    Ok(fd)
}

/// Checks that `fd` is a memory file that cannot shrink (so mappings of it never fault).
pub(crate) fn check_sealed(fd: BorrowedFd<'_>) -> io::Result<()> {
    let seals = rustix::fs::fcntl_get_seals(fd)?;
    if seals.contains(SealFlags::SHRINK) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the shared-memory file is not sealed against shrinking",
        ))
    }
}

/// The current size of a file.
pub(crate) fn file_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_size as u64)
}

/// Grows the file to at least `len` bytes. Two processes may grow it at once: a shrinking
/// `ftruncate` (the other one got further) fails with `EPERM` because of the seal, and is
/// then simply re-checked.
pub(crate) fn grow_to(fd: BorrowedFd<'_>, len: u64) -> io::Result<u64> {
    loop {
        let size = file_size(fd)?;
        if size >= len {
            return Ok(size);
        }
        match rustix::fs::ftruncate(fd, len) {
            Ok(()) | Err(rustix::io::Errno::PERM) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Gives the pages of `[offset, offset + len)` back to the system; the range reads as zeros
/// afterwards and the file keeps its size. Failure only costs memory, so it is ignored.
pub(crate) fn punch_hole(fd: BorrowedFd<'_>, offset: u64, len: u64) {
    let _ = rustix::fs::fallocate(
        fd,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    );
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// A shared read-write mapping of part of a file, unmapped on drop.
///
/// The mapping itself is plain memory as far as this type is concerned; what may be read or
/// written where, and when, is the business of the protocol that uses it (see
/// `transport/shm/README.md`). The address is stable for the mapping's lifetime.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapping` owns its address range; it hands out only a raw pointer, and all access
// through that pointer is synchronized by the shared-memory protocol, not by this type.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` starting at `offset` (page-aligned) shared and read-write.
    ///
    /// The range may extend past the end of the file; touching a page past the end raises
    /// `SIGBUS`, so callers access only what they checked against [`file_size`].
    pub(crate) fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Self> {
        debug_assert!(len > 0 && offset.is_multiple_of(page_size() as u64));
        // SAFETY: a null hint lets the kernel pick a fresh address range, so the mapping
        // aliases no memory that Rust code already references.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                offset,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Self { ptr, len })
    }

    /// The first byte of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the range `mmap` returned and nothing else unmapped
        // it; borrows of the memory end with the borrow of `self` that produced them.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
