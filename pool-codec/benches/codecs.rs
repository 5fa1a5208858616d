//! Encode and decode speed of the built-in codecs on the three shapes pool moves most:
//! a big integer vector, a small task message, and a 1 MiB byte buffer.
//!
//! Run with `cargo bench -p pool-codec --bench codecs`. The README's table comes from here.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pool_codec::{Bincode, Codec, Json, MsgPack, Postcard};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::ByteBuf;

/// The typical task message: a few integers and a short string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TaskMsg {
    id: u64,
    worker: u32,
    attempt: u16,
    deadline_ms: u64,
    label: String,
}

fn bench_shape<C: Codec, T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    c: &mut Criterion,
    shape: &str,
    codec: &C,
    value: &T,
    bytes_in_value: u64,
) {
    let mut group = c.benchmark_group(format!("{shape}/{}", codec.name()));
    group.throughput(Throughput::Bytes(bytes_in_value));
    if bytes_in_value > 64 * 1024 {
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
    } else {
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
    }
    let mut buf = Vec::new();
    codec.encode(value, &mut buf).expect("encode");
    let back: T = codec.decode(&buf).expect("decode");
    assert_eq!(&back, value, "round trip through {}", codec.name());
    println!("{shape}/{}: encoded size {} bytes", codec.name(), buf.len());

    let mut out = Vec::with_capacity(buf.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            codec.encode(black_box(value), &mut out).expect("encode");
            black_box(out.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| black_box(codec.decode::<T>(black_box(&buf)).expect("decode")))
    });
    group.finish();
}

fn shapes<C: Codec>(c: &mut Criterion, codec: C) {
    let ints: Vec<u64> = (0..1_000_000u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (i % 64))
        .collect();
    bench_shape(c, "u64_vec_1m", &codec, &ints, 8_000_000);

    let msg = TaskMsg {
        id: 123_456,
        worker: 3,
        attempt: 1,
        deadline_ms: 1_764_400_000_000,
        label: "resize-image".to_string(),
    };
    bench_shape(c, "small_struct", &codec, &msg, 1);

    let bytes = ByteBuf::from((0..1 << 20).map(|i| i as u8).collect::<Vec<u8>>());
    bench_shape(c, "bytes_1mib", &codec, &bytes, 1 << 20);
}

fn codecs(c: &mut Criterion) {
    shapes(c, Postcard);
    shapes(c, MsgPack);
    shapes(c, Bincode::default());
    shapes(c, Json);
}

criterion_group!(benches, codecs);
criterion_main!(benches);
