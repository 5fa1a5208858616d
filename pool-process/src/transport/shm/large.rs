//! The large-payload regions: a frame too big for the ring is written once into its
//! direction's region of the shared file, and the ring carries only a `KIND_LARGE` header.
//!
//! Region `d` starts at file offset `(d + 1) * REGION_SPAN`. Its writer grows the file (never
//! shrinks: the file is sealed) and its own mapping as needed; the reader maps the region on
//! demand, after checking that the file is long enough for the announced length. One payload
//! at a time: the writer counts payloads sent, the reader counts payloads released
//! (`large_released`, published with `Release` once it no longer reads the bytes), and the
//! writer writes only when the two are equal. The bytes are handed to the receiver in place
//! (no copy on the receiving side).

use std::io;
use std::os::fd::BorrowedFd;

use super::layout::REGION_SPAN;
use crate::sys::shm::{self, Mapping};

/// Smallest mapping of a region; mappings grow to the next power of two of what is needed.
const MIN_MAP: usize = 1 << 20;

/// One side's view of one region.
pub(super) struct Region {
    base: u64,
    map: Option<Mapping>,
    /// The file size last seen (it never decreases: the file cannot shrink).
    file_len: u64,
}

impl Region {
    /// The region of direction `dir` (0 or 1), not yet mapped.
    pub(super) fn new(dir: usize) -> Self {
        Self {
            base: (dir as u64 + 1) * REGION_SPAN,
            map: None,
            file_len: 0,
        }
    }

    fn map_len(len: usize) -> usize {
        len.max(MIN_MAP)
            .next_power_of_two()
            .min(REGION_SPAN as usize)
    }

    /// Writer: makes `len` bytes of the region writable, growing the file as needed.
    fn ensure_writable(&mut self, fd: BorrowedFd<'_>, len: usize) -> io::Result<*mut u8> {
        debug_assert!(len as u64 <= REGION_SPAN);
        let want = Self::map_len(len);
        if self.file_len < self.base + want as u64 {
            self.file_len = shm::grow_to(fd, self.base + want as u64)?;
        }
        self.mapping(fd, want)
    }

    /// Reader: maps `len` bytes announced by the writer, after checking the file holds them.
    fn ensure_readable(&mut self, fd: BorrowedFd<'_>, len: usize) -> io::Result<*const u8> {
        if len as u64 > REGION_SPAN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes exceeds the {REGION_SPAN}-byte region"),
            ));
        }
        if self.file_len < self.base + len as u64 {
            self.file_len = shm::file_size(fd)?;
            if self.file_len < self.base + len as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a large payload was announced beyond the end of the shared file",
                ));
            }
        }
        Ok(self.mapping(fd, Self::map_len(len))?.cast_const())
    }

    fn mapping(&mut self, fd: BorrowedFd<'_>, want: usize) -> io::Result<*mut u8> {
        match &self.map {
            Some(m) if m.len() >= want => {}
            _ => {
                self.map = None; // unmap first: address space is worth more than a remap
                self.map = Some(Mapping::new(fd, self.base, want)?);
            }
        }
        Ok(self
            .map
            .as_ref()
            .map_or(std::ptr::null_mut(), Mapping::as_ptr))
    }

    /// Writer: copies `parts` (`len` bytes in all) to the start of the region. The caller
    /// made sure the reader released the previous payload.
    pub(super) fn write(
        &mut self,
        fd: BorrowedFd<'_>,
        parts: &[&[u8]],
        len: usize,
    ) -> io::Result<()> {
        let dst = self.ensure_writable(fd, len)?;
        let mut at = 0;
        for part in parts {
            // SAFETY: `ensure_writable` mapped at least `len` bytes of the region, all inside
            // the (grown) file, and `at + part.len() <= len`; the reader does not read the
            // region between releasing the previous payload and the next `KIND_LARGE` header
            // (which the caller publishes after this copy), and `part` is local memory.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), dst.add(at), part.len()) };
            at += part.len();
        }
        debug_assert_eq!(at, len);
        Ok(())
    }

    /// Reader: the `len` payload bytes, in place.
    ///
    /// The slice stays valid until the caller releases the payload (publishes
    /// `large_released`): the writer does not touch the region before that, and the mapping
    /// is only replaced through `&mut self`, which the returned borrow prevents.
    pub(super) fn read(&mut self, fd: BorrowedFd<'_>, len: usize) -> io::Result<&[u8]> {
        let src = self.ensure_readable(fd, len)?;
        // SAFETY: `ensure_readable` mapped at least `len` bytes and checked the file holds
        // them (it cannot shrink: sealed); the writer finished writing them before publishing
        // the header this length came from (Release/Acquire on `head`) and writes the region
        // again only after we release it, which the caller does only after this borrow ends.
        Ok(unsafe { std::slice::from_raw_parts(src, len) })
    }

    /// Reader: after releasing a payload of `len` bytes, return its pages beyond `keep`.
    /// Called before the release is published, so the writer cannot be writing meanwhile.
    pub(super) fn trim(&self, fd: BorrowedFd<'_>, len: usize, keep: usize) {
        let from = (keep as u64).next_multiple_of(shm::page_size() as u64);
        if (len as u64) > from {
            shm::punch_hole(fd, self.base + from, len as u64 - from);
        }
    }
}
