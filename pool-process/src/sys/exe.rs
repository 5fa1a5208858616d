//! The executable the parent runs, held open so workers exec exactly that file.
//!
//! Mechanism: `/proc/self/exe` is a kernel link to the running program's inode. Opening it once
//! gives a descriptor to that inode; a worker is then started by exec of `/proc/self/fd/N`,
//! which the kernel resolves in the child *before* close-on-exec descriptors are dropped, so
//! the descriptor can stay close-on-exec. Replacing or deleting the file on disk (a rebuild
//! while the pool runs) therefore cannot split parent and worker. The build identity is the
//! `(device, inode, size, mtime)` of that inode; the worker reads the same through its own
//! `/proc/self/exe` and the handshake compares the two.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `(device, inode, size, mtime seconds, mtime nanoseconds)` of an executable file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BuildIdentity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    pub(crate) mtime_nsec: i64,
}

impl BuildIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    /// The identity of the program this process runs.
    pub(crate) fn current() -> std::io::Result<Self> {
        std::fs::metadata("/proc/self/exe").map(|m| Self::of(&m))
    }

    /// Text form used in the worker's environment: five numbers separated by `.`.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.dev, self.ino, self.size, self.mtime, self.mtime_nsec
        )
    }

    /// Parses [`BuildIdentity::encode`]'s text.
    pub(crate) fn decode(s: &str) -> Option<Self> {
        let mut it = s.split('.');
        let id = Self {
            dev: it.next()?.parse().ok()?,
            ino: it.next()?.parse().ok()?,
            size: it.next()?.parse().ok()?,
            mtime: it.next()?.parse().ok()?,
            mtime_nsec: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(id)
    }
}

impl std::fmt::Display for BuildIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dev {} inode {} size {} mtime {}.{:09}",
            self.dev, self.ino, self.size, self.mtime, self.mtime_nsec
        )
    }
}

/// The parent's own executable, opened once per process.
pub(crate) struct SelfExe {
    _file: File,
    /// `/proc/self/fd/N` for the held descriptor.
    pub(crate) exec_path: PathBuf,
    /// What the worker sees as `argv[0]`: the path the parent was started with.
    pub(crate) arg0: OsString,
    pub(crate) identity: BuildIdentity,
}

/// The held executable, opened on first use.
pub(crate) fn self_exe() -> Result<&'static SelfExe, String> {
    static EXE: OnceLock<Result<SelfExe, String>> = OnceLock::new();
    EXE.get_or_init(|| {
        let file = File::open("/proc/self/exe")
            .map_err(|e| format!("cannot open /proc/self/exe to start workers: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat the running executable: {e}"))?;
        let arg0 = std::env::args_os()
            .next()
            .unwrap_or_else(|| OsString::from("pool-worker"));
        Ok(SelfExe {
            exec_path: PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
            arg0,
            identity: BuildIdentity::of(&meta),
            _file: file,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_matches_self() {
        let held = self_exe().unwrap();
        let now = BuildIdentity::current().unwrap();
        assert_eq!(held.identity, now);
        assert_eq!(BuildIdentity::decode(&now.encode()), Some(now));
        assert_eq!(BuildIdentity::decode("1.2.3"), None);
        assert_eq!(BuildIdentity::decode("1.2.3.4.5.6"), None);
    }
}
