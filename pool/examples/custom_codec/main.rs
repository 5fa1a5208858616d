//! A custom codec with configuration: `cargo run --release -p pool --example custom_codec`.
//!
//! `Deflated<C>` wraps another codec (here MessagePack, the default) and compresses what it
//! writes, at a compression level chosen when the pool is built. The level reaches every
//! worker process (`Codec::configuration` / `Codec::configured`), byte vectors are
//! compressed too (`Codec::raw_bytes` is `false`), and the codec's name is derived from the
//! inner one's.

mod deflated;

use std::error::Error;

use deflated::Deflated;
use pool::codec::{Codec, MsgPack};
use pool::prelude::*;

fn word_count(text: String) -> usize {
    text.split_whitespace().count()
}

/// FNV-1a.
fn checksum(bytes: Vec<u8>) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let text = "the quick brown fox jumps over the lazy dog\n".repeat(2_000);
    println!("== a custom codec with configuration ==\n");

    for level in [1u8, 9] {
        let codec = Deflated::new(level, MsgPack);
        let mut on_the_wire = Vec::new();
        codec.encode(&text, &mut on_the_wire)?;
        println!(
            "{} at level {level}: a {} KiB text crosses as {} bytes",
            codec.name(),
            text.len() / 1024,
            on_the_wire.len()
        );
    }

    let pool = ProcessPool::builder()
        .max_workers(2)
        .codec(Deflated::new(9, MsgPack))
        .build()?;
    println!(
        "\nprocess pool with codec {:?}, level {}",
        pool.codec().name(),
        pool.codec().level()
    );
    println!(
        "words in the text: {}",
        pool.submit(word_count, text.clone())?.result()?
    );
    let pages: Vec<String> = (1..=8).map(|i| text[..i * 4400].to_string()).collect();
    let words: Vec<usize> = pool.map_all(word_count, pages)?;
    println!("words in 8 growing excerpts (a map): {words:?}");
    let bytes = vec![0xab_u8; 1 << 20];
    println!(
        "checksum of 1 MiB of bytes (compressed on the way too): {:#010x}",
        pool.apply(checksum, bytes)?
    );
    let report = pool.shutdown(Shutdown::Wait);
    println!(
        "\nshutdown: workers exited and reaped ({} still running)",
        report.unfinished_workers
    );
    Ok(())
}
