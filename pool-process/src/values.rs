//! A task's values on the parent's side: encoding an argument and decoding a result
//! (user code: a `Serialize` or `Deserialize` that panics is a codec failure), dropping an
//! argument once it is encoded, and the short name a task is reported by. `pool.rs` and
//! `builder.rs` (the hooks' arguments) use them.

use std::any::type_name;

use pool_codec::Codec;
use pool_core::{CodecFailure, Side, TaskError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::EncodedReply;
use crate::buffers::BufPool;
use crate::bytes;

/// Encodes `value` into `out` with `codec`. A `Serialize` that panics is one more encode
/// failure: the panic is caught (it never unwinds into the caller), `out` is put back to its
/// length, and the message names the panic. `Err` is the failure's message.
pub(crate) fn encode_caught<C: Codec, T: Serialize + ?Sized>(
    codec: &C,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let start = out.len();
    match pool_core::catch_panic(|| codec.encode(value, out)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.message().to_owned()),
        Err(p) => {
            out.truncate(start);
            Err(panicked_in("Serialize", &p.message, p.location.as_deref()))
        }
    }
}

/// Drops a task's argument once it is encoded (or its task refused without handing it
/// back). Its `Drop` is user code: a panic there is reported through `tracing` and
/// contained, so it never unwinds out of a call that has already queued the task (the
/// caller would lose the future of a task that runs anyway).
pub(crate) fn drop_argument<T>(arg: T) {
    if std::mem::needs_drop::<T>()
        && let Err(p) = pool_core::catch_panic(move || drop(arg))
    {
        let thread = std::thread::current();
        // The same event as the engine's for user code it contains on its threads.
        tracing::warn!(target: "pool", thread = thread.name().unwrap_or("<unnamed>"),
            what = "dropping a task's argument after encoding it", panic = %p.message,
            location = p.location.as_deref().unwrap_or("<unknown>"),
            "user code panicked; contained");
    }
}

/// The codec-failure message for a `Serialize` or `Deserialize` (`which`) implementation that
/// panicked in the parent, where such a panic is one more codec failure (in a worker it is the
/// task's panic).
fn panicked_in(which: &str, message: &str, location: Option<&str>) -> String {
    match location {
        Some(at) => format!("its {which} implementation panicked: {message} (at {at})"),
        None => format!("its {which} implementation panicked: {message}"),
    }
}

/// A task's result from the worker's reply. `raw_result`: the worker answered `R` as raw
/// bytes (the bytes fast path). The reply's buffer goes back to `bufs` unless it becomes the
/// result.
pub(crate) fn decode_reply<R, C>(
    codec: &C,
    bufs: &BufPool,
    raw_result: bool,
    reply: EncodedReply,
) -> Result<R, TaskError>
where
    R: DeserializeOwned + 'static,
    C: Codec,
{
    if raw_result {
        let mut bytes = reply.bytes;
        // The reply buffer came from the free list: do not hand the caller far more
        // capacity than the result needs.
        if bytes.capacity() > 2 * bytes.len() + 4096 {
            bytes.shrink_to_fit();
        }
        if let Some(value) = bytes::make::<R>(bytes) {
            return Ok(value);
        }
        return Err(TaskError::Decode(CodecFailure {
            side: Side::Parent,
            type_name: type_name::<R>().to_owned(),
            codec: "raw bytes".to_owned(),
            message: "not a byte type".to_owned(),
        }));
    }
    // On the pool's thread (or a caller's, for `apply`): a `Deserialize` that panics fails
    // this task with a decode error, like one that fails.
    let decoded = match pool_core::catch_panic(|| codec.decode::<R>(&reply.bytes)) {
        Ok(r) => r.map_err(|e| e.message().to_owned()),
        Err(p) => Err(panicked_in(
            "Deserialize",
            &p.message,
            p.location.as_deref(),
        )),
    };
    let value = decoded.map_err(|message| {
        TaskError::Decode(CodecFailure {
            side: Side::Parent,
            type_name: type_name::<R>().to_owned(),
            codec: codec.name().into_owned(),
            message,
        })
    });
    bufs.put(reply.bytes);
    value
}

/// `F`'s type name without its leading crate path: `tour::crash` for a fn item,
/// `tests::main::{{closure}}` for a closure. A slice of a static string: no allocation.
pub(crate) fn short_name<F>() -> &'static str {
    let full = type_name::<F>();
    let keep = if full.ends_with("{{closure}}") { 3 } else { 2 };
    let mut cut = full.len();
    for _ in 0..keep {
        match full[..cut].rfind("::") {
            Some(i) => cut = i,
            None => return full,
        }
    }
    &full[cut + 2..]
}

/// What every worker's copy of the codec must agree on: a sample of the common shapes
/// (integers, a float, text, bytes, an option, a sequence of pairs).
type CodecSample = (
    u64,
    i32,
    f64,
    String,
    Vec<u8>,
    Option<bool>,
    Vec<(String, u16)>,
);

/// Each worker rebuilds the codec from its configuration (`C::configured(&codec.configuration())`;
/// for a codec without one, `C::default()`): a codec whose settings would not survive that
/// trip would fail every task there. Refused (with the reason) when the two disagree on a
/// sample value.
pub(crate) fn codec_reaches_workers<C: Codec>(codec: &C) -> Result<(), String> {
    let configuration = codec.configuration();
    let rebuilt = match pool_core::catch_panic(|| C::configured(&configuration)) {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Err(format!(
                "the codec {:?} refuses its own configuration ({} bytes), so the workers \
                 could not build it: {}",
                codec.name(),
                configuration.len(),
                e.message()
            ));
        }
        Err(p) => {
            return Err(format!(
                "the codec {:?} panicked rebuilding itself from its configuration: {p}",
                codec.name()
            ));
        }
    };
    let sample: CodecSample = (
        u64::MAX - 1,
        -12_345,
        1.5e-7,
        "configuration".to_owned(),
        vec![0, 1, 0xfe, 0xff],
        Some(true),
        vec![("a".to_owned(), 1), ("bc".to_owned(), 65_535)],
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let agree = encode_caught(codec, &sample, &mut ours).is_ok()
        && encode_caught(&rebuilt, &sample, &mut theirs).is_ok()
        && ours == theirs
        && pool_core::catch_panic(|| {
            rebuilt.decode::<CodecSample>(&ours).ok() == Some(sample.clone())
                && codec.decode::<CodecSample>(&theirs).ok() == Some(sample.clone())
        })
        .unwrap_or(false);
    if agree {
        return Ok(());
    }
    Err(if configuration.is_empty() {
        format!(
            "the codec's configuration would not reach the workers: the codec {:?} has no \
             `configuration()`, so they would use `{}::default()`, which does not produce the \
             same bytes as the codec given to `.codec(..)`; implement `Codec::configuration` \
             and `Codec::configured`",
            codec.name(),
            short_type::<C>(),
        )
    } else {
        format!(
            "the codec's configuration would not reach the workers: `{}::configured` on the \
             codec's {}-byte configuration gives a codec that does not produce the same bytes \
             as the one given to `.codec(..)` (codec {:?})",
            short_type::<C>(),
            configuration.len(),
            codec.name()
        )
    })
}

fn short_type<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    fn plain(x: u32) -> u32 {
        x
    }

    #[test]
    fn short_names() {
        fn name_of<F>(_: &F) -> &'static str {
            super::short_name::<F>()
        }
        assert_eq!(name_of(&plain), "tests::plain");
        let c = |x: u32| x;
        assert_eq!(name_of(&c), "tests::short_names::{{closure}}");
        assert_eq!(super::short_name::<u32>(), "u32");
    }
}
