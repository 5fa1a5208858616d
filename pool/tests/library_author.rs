//! The library-author example's generic function, used with both pools and from `async` code:
//! the same results everywhere, a file's own error kept apart from a task failure.

#[path = "../examples/library_author/checksums.rs"]
mod checksums;

use std::path::PathBuf;
use std::time::Duration;

use checksums::Failure;
use pool::{Executor, ProcessPool, Shutdown, ThreadPool};
use pool_testkit::harness;

fn files() -> (tempdir::Dir, Vec<PathBuf>) {
    let dir = tempdir::Dir::new();
    let mut paths = Vec::new();
    for (i, body) in ["", "a", "hello, world", &"x".repeat(200_000)]
        .iter()
        .enumerate()
    {
        let p = dir.path().join(format!("f{i}"));
        std::fs::write(&p, body).unwrap();
        paths.push(p);
    }
    paths.push(dir.path().join("missing"));
    (dir, paths)
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A fresh directory under the system's temp dir, removed on drop.
    pub(crate) struct Dir(PathBuf);

    impl Dir {
        pub(crate) fn new() -> Self {
            let p = std::env::temp_dir().join(format!(
                "pool-library-author-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn check(sums: &[Result<u64, Failure>], paths: &[PathBuf]) {
    assert_eq!(sums.len(), paths.len());
    // FNV-1a of the empty input is its offset basis.
    assert_eq!(sums[0], Ok(0xcbf2_9ce4_8422_2325));
    for (s, p) in sums.iter().zip(paths).take(4) {
        assert_eq!(
            *s,
            checksums::checksum(p.clone()).map_err(Failure::Unreadable),
            "{p:?}"
        );
    }
    match &sums[4] {
        Err(Failure::Unreadable(e)) => {
            assert_eq!(e.type_name(), "std::io::error::Error");
            assert!(e.message().contains("No such file"), "{e}");
        }
        other => panic!("a missing file: {other:?}"),
    }
}

#[test]
fn one_generic_function_on_threads_processes_and_async() {
    let guard = harness::start("library_author", Duration::from_secs(60));
    let (_dir, paths) = files();

    let threads = ThreadPool::builder().max_workers(2).build().unwrap();
    check(
        &checksums::parallel_checksums(&threads, paths.clone()),
        &paths,
    );

    let processes = ProcessPool::builder().max_workers(2).build().unwrap();
    let on_processes = checksums::parallel_checksums(&processes, paths.clone());
    check(&on_processes, &paths);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let awaited = runtime.block_on(async {
        let a = checksums::checksum_async(&processes, paths[2].clone()).await;
        let b = checksums::checksum_async(&threads, paths[2].clone()).await;
        (a, b)
    });
    assert_eq!(awaited.0, on_processes[2]);
    assert_eq!(awaited.1, on_processes[2]);

    threads.shutdown(Shutdown::Wait);
    processes.shutdown(Shutdown::Wait);
    drop(processes);
    guard.finish();
}
