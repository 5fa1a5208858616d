//! A library author's view: one generic function (`checksums.rs`) used with a thread pool, a
//! process pool and from `async` code, unchanged.
//!
//! `cargo run --release --example library_author [FILES...]` (default: this crate's sources).

mod checksums;

use std::path::PathBuf;

use pool::{ProcessPool, ThreadPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        paths = vec![
            here.join("Cargo.toml"),
            here.join("src/lib.rs"),
            here.join("no-such-file"),
        ];
    }

    let threads = ThreadPool::builder().max_workers(2).build()?;
    let processes = ProcessPool::builder().max_workers(2).build()?;
    let on_threads = checksums::parallel_checksums(&threads, paths.clone());
    let on_processes = checksums::parallel_checksums(&processes, paths.clone());
    for ((path, t), p) in paths.iter().zip(&on_threads).zip(&on_processes) {
        match (t, p) {
            (Ok(a), Ok(b)) if a == b => println!("{:016x}  {}", a, path.display()),
            (Err(e), Err(_)) => println!("{:>16}  {} ({e})", "-", path.display()),
            _ => println!("threads and processes disagree on {}", path.display()),
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let first = paths[0].clone();
    let awaited = runtime.block_on(checksums::checksum_async(&processes, first.clone()))?;
    println!("{awaited:016x}  {} (awaited)", first.display());
    Ok(())
}
