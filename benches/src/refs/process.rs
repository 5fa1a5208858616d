//! Process-pool references: procspawn 1.0.2 (a pool of [`WORKERS`]), the raw floors
//! ([`crate::floor`]: pipe ping-pong with children that are this binary, pipelined frames of
//! pool-process's sizes, a bare spawn), and two plain pipe schemes that are not floors
//! (`sequential-pingpong`, `raw-chunks`).
//!
//! procspawn needs `procspawn::init()` at the top of `main`, which the `compare` binary does.

use super::{Made, WORKERS};
use crate::floor::{FrameChild, Frames, POOL_DEPTH, PipeChild, pump, pump_per_child, spawn_hello};
use crate::measure::timed;
use crate::work::{
    burn, burn_range, byte_len, check_burned, check_doubled, cpu_timed, double_chunk, noop,
    work_iters,
};
use pool_codec::{Codec, DefaultCodec};
use pool_core::{ChunkResults, Executor, MapOptions, Progress};
use serde_bytes::ByteBuf;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// procspawn holds three descriptors per queued task and fails past a few thousand, so the
/// many-tasks scenario keeps at most this many of its tasks in flight.
pub const PROCSPAWN_WINDOW: usize = 1000;

/// Values per chunk in the `raw-chunks` reference of the map scenario: a request and its
/// answer each fit in a pipe's 64 KiB buffer, so the two children work while the parent
/// writes.
pub const RAW_MAP_CHUNK: usize = 4096;

fn procspawn_pool() -> Result<procspawn::Pool, String> {
    let pool = procspawn::Pool::new(WORKERS).map_err(|e| format!("procspawn pool: {e}"))?;
    // Warm every worker: one round trip each, all in flight together.
    let handles: Vec<_> = (0..WORKERS as u64)
        .map(|i| pool.spawn(i, noop as fn(u64) -> u64))
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let got = h.join().map_err(|e| format!("procspawn warm-up: {e}"))?;
        if got != i as u64 {
            return Err(format!("procspawn warm-up: got {got}, expected {i}"));
        }
    }
    Ok(pool)
}

fn pipe_children(n: usize) -> Result<Vec<PipeChild>, String> {
    (0..n)
        .map(|_| PipeChild::spawn().map_err(|e| format!("pipe child: {e}")))
        .collect()
}

/// `process.roundtrip`: procspawn `Pool::spawn(x, noop)` + `join`, sequential.
///
/// # Errors
///
/// The pool could not be started.
pub fn procspawn_roundtrip() -> Made {
    let pool = procspawn_pool()?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let (d, got) = timed(|| pool.spawn(i, noop as fn(u64) -> u64).join());
        match got {
            Ok(v) if v == i => Ok(d),
            Ok(v) => Err(format!("got {v}, expected {i}")),
            Err(e) => Err(e.to_string()),
        }
    }))
}

/// `process.roundtrip`: one 8-byte ping-pong with one pipe child.
///
/// # Errors
///
/// The child could not be started.
pub fn pipe_roundtrip() -> Made {
    let mut child = PipeChild::spawn().map_err(|e| format!("pipe child: {e}"))?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let (d, got) = timed(|| child.ping(i));
        got.map(|()| d).map_err(|e| e.to_string())
    }))
}

/// `process.tasks_*`: `n` procspawn tasks, each its own handle, at most
/// [`PROCSPAWN_WINDOW`] in flight, joined in submission order.
///
/// # Errors
///
/// The pool could not be started.
pub fn procspawn_tasks(n: usize) -> Made {
    let pool = procspawn_pool()?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| -> Result<Vec<u64>, String> {
            let mut out = Vec::with_capacity(n);
            let mut in_flight = VecDeque::with_capacity(PROCSPAWN_WINDOW);
            for i in 0..n as u64 {
                if in_flight.len() == PROCSPAWN_WINDOW {
                    let h: procspawn::JoinHandle<u64> = in_flight.pop_front().expect("full");
                    out.push(h.join().map_err(|e| e.to_string())?);
                }
                in_flight.push_back(pool.spawn(i, crate::work::double as fn(u64) -> u64));
            }
            for h in in_flight {
                out.push(h.join().map_err(|e| e.to_string())?);
            }
            Ok(out)
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}

/// `process.tasks_*`, `sequential-pingpong` (not a floor): `n` 8-byte ping-pongs split across
/// [`WORKERS`] pipe children, each child with one ping in flight, all children busy at once.
/// Sequential per child, where the pool pipelines: it does the same number of round trips,
/// but each pays a full wake-up of both sides.
///
/// # Errors
///
/// The children could not be started.
pub fn sequential_pingpong_tasks(n: usize) -> Made {
    let mut children = pipe_children(WORKERS)?;
    Ok(Box::new(move || {
        let (d, got) = timed(|| -> std::io::Result<u64> {
            let mut sent = 0u64;
            let mut received = 0u64;
            let mut sum = 0u64;
            let mut busy = vec![false; children.len()];
            for (c, b) in children.iter_mut().zip(busy.iter_mut()) {
                if sent < n as u64 {
                    c.send_ping(sent)?;
                    sent += 1;
                    *b = true;
                }
            }
            while received < n as u64 {
                for (c, b) in children.iter_mut().zip(busy.iter_mut()) {
                    if !*b {
                        continue;
                    }
                    sum = sum.wrapping_add(c.recv_ping()?);
                    received += 1;
                    *b = false;
                    if sent < n as u64 {
                        c.send_ping(sent)?;
                        sent += 1;
                        *b = true;
                    }
                }
            }
            Ok(sum)
        });
        let want = (n as u64) * (n as u64).saturating_sub(1) / 2;
        match got {
            Ok(sum) if sum == want => Ok(d),
            Ok(sum) => Err(format!("ping sum {sum}, expected {want}")),
            Err(e) => Err(e.to_string()),
        }
    }))
}

/// `process.map_*`: procspawn at its best for a map: the items cut into [`WORKERS`] chunks,
/// one spawn of [`double_chunk`] per chunk, results concatenated in order.
///
/// # Errors
///
/// The pool could not be started.
pub fn procspawn_map(n: usize) -> Made {
    let pool = procspawn_pool()?;
    let items: Vec<u64> = (0..n as u64).collect();
    let chunk = n.div_ceil(WORKERS).max(1);
    Ok(Box::new(move || {
        let (d, out) = timed(|| -> Result<Vec<u64>, String> {
            let handles: Vec<_> = items
                .chunks(chunk)
                .map(|c| pool.spawn(c.to_vec(), double_chunk as fn(Vec<u64>) -> Vec<u64>))
                .collect();
            let mut out = Vec::with_capacity(n);
            for h in handles {
                out.extend(h.join().map_err(|e| e.to_string())?);
            }
            Ok(out)
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}

/// `process.map_*`, `raw-chunks` (not a floor): the same items as raw u64 bytes through
/// [`WORKERS`] pipe children in chunks of [`RAW_MAP_CHUNK`], one chunk in flight per child,
/// the children doubling them, results in order. Fewer frames than the pool sends but 8 bytes
/// per value each way (MessagePack: 1–5) and the work done.
///
/// # Errors
///
/// The children could not be started.
pub fn raw_chunks_map(n: usize) -> Made {
    let mut children = pipe_children(WORKERS)?;
    let items: Vec<u64> = (0..n as u64).collect();
    Ok(Box::new(move || {
        let (d, out) = timed(|| -> std::io::Result<Vec<u64>> {
            let mut out = Vec::with_capacity(n);
            let mut chunks = items.chunks(RAW_MAP_CHUNK);
            let mut in_flight: Vec<Option<usize>> = vec![None; children.len()];
            for (c, slot) in children.iter_mut().zip(in_flight.iter_mut()) {
                if let Some(chunk) = chunks.next() {
                    c.send_double(chunk)?;
                    *slot = Some(chunk.len());
                }
            }
            while in_flight.iter().any(Option::is_some) {
                for (c, slot) in children.iter_mut().zip(in_flight.iter_mut()) {
                    if let Some(len) = slot.take() {
                        c.recv_double(len, &mut out)?;
                        if let Some(chunk) = chunks.next() {
                            c.send_double(chunk)?;
                            *slot = Some(chunk.len());
                        }
                    }
                }
            }
            Ok(out)
        });
        let out = out.map_err(|e| e.to_string())?;
        check_doubled(&out, n as u64).map(|()| d)
    }))
}

fn frame_children() -> Result<Vec<FrameChild>, String> {
    (0..WORKERS)
        .map(|_| FrameChild::spawn().map_err(|e| format!("frame child: {e}")))
        .collect()
}

fn encoded<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    DefaultCodec::default()
        .encode(value, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// One floor operation: every request of `frames` through `children` (see [`pump`]).
fn pump_subject(
    mut children: Vec<FrameChild>,
    frames: Frames,
    depth: usize,
    window: usize,
) -> Made {
    Ok(Box::new(move || {
        let (d, got) = timed(|| pump(&mut children, &frames, depth, window));
        got.map(|()| d).map_err(|e| e.to_string())
    }))
}

/// `process.tasks_*`, `pipe-floor`: the frames the pool sends and receives for `n` tasks
/// `double(i)` — request `[4][17-byte header][MessagePack i]`, reply `[4][10-byte
/// header][MessagePack 2i]` — through [`WORKERS`] frame children that answer without
/// decoding or running anything, pipelined [`POOL_DEPTH`] deep per child as the pool does.
/// One thread per child sends and receives (as the pool has one per worker). The requests
/// are built before the clock starts; the replies are checked (sequence, length), not
/// decoded.
///
/// # Errors
///
/// The children could not be started.
pub fn frame_floor_tasks(n: usize) -> Made {
    let mut frames = Frames::default();
    for i in 0..n as u64 {
        frames.push(&encoded(&i)?, encoded(&crate::work::double(i))?.len());
    }
    let mut children = frame_children()?;
    Ok(Box::new(move || {
        let (d, got) = timed(|| pump_per_child(&mut children, &frames, POOL_DEPTH));
        got.map(|()| d).map_err(|e| e.to_string())
    }))
}

/// The chunk sizes our pool's `map` makes over `0..n` with the default options, in order: from
/// one of five maps (the one with the median number of chunks) on a pool of [`WORKERS`] built
/// for the purpose and dropped before returning. Automatic chunking adapts to measured times,
/// so the sizes differ a little from map to map.
///
/// # Errors
///
/// The pool could not be built or a map failed.
pub fn pool_chunk_sizes(n: usize) -> Result<Vec<usize>, String> {
    let pool = pool_process::ProcessPool::builder()
        .min_workers(WORKERS)
        .max_workers(WORKERS)
        .build()
        .map_err(|e| format!("ProcessPool for the chunk sizes: {e}"))?;
    let mut runs = Vec::new();
    for run in 0..6 {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let opts = MapOptions::default().progress(Progress::new(move |done, _, _| {
            record.lock().expect("not poisoned").push(done);
        }));
        let out = pool
            .map_with(crate::work::double, 0..n as u64, opts)
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|e| format!("map for the chunk sizes: {e}"))?;
        check_doubled(&out, n as u64)?;
        let done = seen.lock().expect("not poisoned").clone();
        let sizes: Vec<usize> = std::iter::once(0)
            .chain(done.iter().copied())
            .zip(done.iter().copied())
            .map(|(a, b)| b - a)
            .collect();
        if sizes.iter().sum::<usize>() != n {
            return Err(format!("chunk sizes {sizes:?} do not add up to {n}"));
        }
        // The first map warms the workers up.
        if run > 0 {
            runs.push(sizes);
        }
    }
    runs.sort_by_key(Vec::len);
    Ok(runs.swap_remove(runs.len() / 2))
}

/// `process.map_*`, `pipe-floor`: the frames our pool's `map` sends and receives for `0..n`,
/// chunk by chunk as it cuts them ([`pool_chunk_sizes`]) — request `[4][17-byte
/// header][MessagePack Vec<u64> of the chunk]`, reply `[4][10-byte header][MessagePack
/// ChunkResults of the doubled chunk]` — through [`WORKERS`] frame children that answer
/// without decoding or running anything, with the pool's limits on what is in flight: at most
/// `MapOptions::default().lookahead` chunks in all, [`POOL_DEPTH`] per child for chunks
/// whose argument is small enough to be pipelined, one at a time otherwise.
///
/// # Errors
///
/// The chunk sizes could not be learnt or the children could not be started.
pub fn frame_floor_map(n: usize) -> Made {
    let sizes = pool_chunk_sizes(n)?;
    let mut frames = Frames::default();
    let mut start = 0u64;
    for len in sizes {
        let chunk: Vec<u64> = (start..start + len as u64).collect();
        let result = ChunkResults::<u64> {
            values: chunk.iter().map(|&x| crate::work::double(x)).collect(),
            panics: Vec::new(),
        };
        frames.push(&encoded(&chunk)?, encoded(&result)?.len());
        start += len as u64;
    }
    let window = MapOptions::default().lookahead;
    pump_subject(frame_children()?, frames, POOL_DEPTH, window)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// `process.bytes_*`: procspawn `spawn(ByteBuf, byte_len)` of a `len`-byte payload (the copy
/// handed to it is made before the clock starts); the worker answers the length.
///
/// # Errors
///
/// The pool could not be started.
pub fn procspawn_bytes(len: usize) -> Made {
    let pool = procspawn_pool()?;
    let data = ByteBuf::from(payload(len));
    Ok(Box::new(move || {
        let arg = data.clone();
        let (d, got) = timed(|| pool.spawn(arg, byte_len as fn(ByteBuf) -> u64).join());
        match got {
            Ok(v) if v == len as u64 => Ok(d),
            Ok(v) => Err(format!("worker counted {v} bytes, sent {len}")),
            Err(e) => Err(e.to_string()),
        }
    }))
}

/// `process.bytes_*`: the `len` bytes written raw into one pipe child, which reads them in
/// 1 MiB reads and answers the length.
///
/// # Errors
///
/// The child could not be started.
pub fn pipe_bytes(len: usize) -> Made {
    let mut child = PipeChild::spawn().map_err(|e| format!("pipe child: {e}"))?;
    let data = payload(len);
    Ok(Box::new(move || {
        let (d, got) = timed(|| child.sink(&data));
        match got {
            Ok(v) if v == len as u64 => Ok(d),
            Ok(v) => Err(format!("child counted {v} bytes, sent {len}")),
            Err(e) => Err(e.to_string()),
        }
    }))
}

/// `process.cold_start`: `procspawn::Pool::new(WORKERS)` + the first result; the pool is
/// dropped (its processes killed) after the clock stops.
///
/// # Errors
///
/// Never at set-up; each start reports its own failure.
pub fn procspawn_cold_start() -> Made {
    Ok(Box::new(|| {
        let start = Instant::now();
        let pool = procspawn::Pool::new(WORKERS).map_err(|e| e.to_string())?;
        let got = pool.spawn(7u64, noop as fn(u64) -> u64).join();
        let d = start.elapsed();
        pool.kill();
        drop(pool);
        match got {
            Ok(7) => Ok(d),
            Ok(v) => Err(format!("got {v}, expected 7")),
            Err(e) => Err(e.to_string()),
        }
    }))
}

/// `process.cold_start`: spawn this binary as a child that writes one byte; time to the byte.
///
/// # Errors
///
/// Never at set-up; each spawn reports its own failure.
pub fn spawn_floor_cold_start() -> Made {
    Ok(Box::new(|| spawn_hello().map_err(|e| e.to_string())))
}

/// `process.work_*`: procspawn at its best for equal CPU-bound tasks: the `n` calls
/// `burn((i, iters))` cut into [`WORKERS`] contiguous ranges, one spawn of [`burn_range`] per
/// range (three `u64` in, a `Vec<u64>` out), results concatenated in order.
///
/// # Errors
///
/// The pool could not be started.
pub fn procspawn_work(n: usize, per_task: Duration) -> Made {
    let iters = work_iters(per_task);
    let pool = procspawn_pool()?;
    let chunk = n.div_ceil(WORKERS).max(1) as u64;
    Ok(Box::new(move || {
        let (d, out) = timed(|| -> Result<Vec<u64>, String> {
            let handles: Vec<_> = (0..n as u64)
                .step_by(chunk as usize)
                .map(|start| {
                    let end = (start + chunk).min(n as u64);
                    pool.spawn(
                        (start, end, iters),
                        burn_range as fn((u64, u64, u64)) -> Vec<u64>,
                    )
                })
                .collect();
            let mut out = Vec::with_capacity(n);
            for h in handles {
                out.extend(h.join().map_err(|e| e.to_string())?);
            }
            Ok(out)
        });
        check_burned(&out?, n as u64, iters).map(|()| d)
    }))
}

/// `process.work_*`, `ideal`: the CPU time of the work divided among [`WORKERS`] workers with
/// no overhead at all. At set-up the same `n` calls `burn((i, iters))` are run on this thread,
/// one after the other, and the thread's CPU time for them ([`cpu_timed`]) is taken once;
/// every operation then reports that time / [`WORKERS`] (it runs nothing). CPU time, not wall
/// time, so that load elsewhere on the machine during the set-up run does not raise it.
///
/// # Errors
///
/// The single-thread run gave wrong results.
pub fn ideal_work(n: usize, per_task: Duration) -> Made {
    let iters = work_iters(per_task);
    let (d, out) = cpu_timed(|| {
        (0..n as u64)
            .map(|i| burn((i, iters)))
            .collect::<Vec<u64>>()
    });
    check_burned(&out, n as u64, iters)?;
    let ideal = d / WORKERS as u32;
    Ok(Box::new(move || Ok(ideal)))
}
