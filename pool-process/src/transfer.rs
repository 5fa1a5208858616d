//! Same-binary function transfer: THE unsafe module of pool-process.
//!
//! # Invariant
//!
//! **A [`FnRef`] is only ever resolved in a process that runs the identical build of the
//! program that made it.** Parent and worker then have the same machine code at the same
//! offsets from [`anchor`]; only the load address differs (ASLR), and it is added back on the
//! worker side. The worker exec'd the very inode the parent runs (an fd held by the parent),
//! and before it resolves anything it compares the executable's `(device, inode, size,
//! mtime)` *and* the distance between two anchor functions with the values the parent
//! measured ([`SameBinary::verify`]). Only a match yields a [`SameBinary`], and
//! [`FnRef::resolve`] takes one: a worker without it cannot resolve a single offset (it
//! refuses the handshake, and the parent reports a start error; see `worker/README.md`).
//!
//! # What crosses
//!
//! A task function `F: Fn(A) -> R + Copy + Send + Sync + 'static` that is **zero-sized**:
//! a fn item or a closure that captures nothing. Zero-sized means the value carries no data,
//! so the worker can make its own copy out of nothing; stable Rust only lets closures and fn
//! items implement the `Fn` traits, and neither has a validity invariant beyond its type. A
//! function pointer or a capturing closure is rejected at compile time with a clear message.
//!
//! Each `(F, A, R, C)` monomorphizes a *trampoline* (decode `A` with `C`, call `F`, encode
//! `R`, catch panics); its offset from [`anchor`] is what travels in a request.

use std::any::type_name;
use std::io;
use std::mem::size_of;

use pool_codec::Codec;
use pool_core::{CallFn, ChunkFn, ChunkResults};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bytes;
use crate::protocol::reply::{Outcome, write_codec_failure, write_codec_name, write_failure};
pub(crate) use crate::protocol::request::FnRef;
use crate::sys::exe::BuildIdentity;
use crate::worker::{self, panics};

/// The shape of every trampoline: input bytes in, output bytes appended, outcome returned.
pub(crate) type Trampoline = fn(&[u8], &mut Vec<u8>) -> Outcome;

/// The reference point for all offsets. Distinct bodies and `inline(never)` keep the linker
/// from folding the two anchors into one address.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x706f_6f6c_5f61_6e31)
}

#[inline(never)]
fn second_anchor() -> u64 {
    std::hint::black_box(0x706f_6f6c_5f61_6e32) ^ 0xff
}

fn address(f: fn() -> u64) -> i64 {
    f as usize as i64
}

/// Distance between the two anchors: equal in parent and worker iff the code layout is.
pub(crate) fn anchor_delta() -> i64 {
    address(second_anchor).wrapping_sub(address(anchor))
}

impl FnRef {
    fn of(t: Trampoline) -> Self {
        Self((t as usize as i64).wrapping_sub(address(anchor)))
    }

    /// Turns the offset back into a callable trampoline in this process, which the proof
    /// shows to run the build of the parent that sent `self`.
    pub(crate) fn resolve(self, _proof: &SameBinary) -> Trampoline {
        let addr = address(anchor).wrapping_add(self.0) as usize;
        debug_assert_ne!(addr, 0);
        // SAFETY: the module invariant. The proof exists only where `SameBinary::verify` found
        // this process to run the identical build of the parent (same executable, same
        // anchor distance), and the parent sends only references made by `FnRef::of` from
        // a `Trampoline` of that build. So `addr` is the address of a function of type
        // `Trampoline` in this very image (same code, offset from the same anchor); `usize`
        // and `fn` pointers have the same size.
        unsafe { std::mem::transmute::<usize, Trampoline>(addr) }
    }
}

/// This process's build as [`SameBinary::verify`] compares it: its executable's identity
/// and its code layout (the distance between the anchors). A worker reports both in HELLO.
pub(crate) struct ThisBuild {
    identity: BuildIdentity,
    anchor_delta: i64,
}

impl ThisBuild {
    /// Measures this process's build.
    ///
    /// # Errors
    /// The executable cannot be examined.
    pub(crate) fn measure() -> io::Result<Self> {
        Ok(Self {
            identity: BuildIdentity::current()?,
            anchor_delta: anchor_delta(),
        })
    }

    pub(crate) fn identity(&self) -> &BuildIdentity {
        &self.identity
    }

    pub(crate) fn anchor_delta(&self) -> i64 {
        self.anchor_delta
    }
}

/// Proof that this process runs the identical build of the parent that sends it function
/// references: what [`FnRef::resolve`] requires. Made only by [`SameBinary::verify`].
#[derive(Debug)]
pub(crate) struct SameBinary {
    _verified: (),
}

impl SameBinary {
    /// Compares this build with the parent's: its executable's identity and its anchor
    /// distance, as the parent measured them (the worker's spec carries both).
    ///
    /// # Errors
    /// The difference, in words, when the builds differ.
    pub(crate) fn verify(
        this: &ThisBuild,
        parent_identity: &BuildIdentity,
        parent_anchor_delta: i64,
    ) -> Result<Self, String> {
        if this.identity != *parent_identity {
            Err(format!(
                "the worker runs a different executable ({}) than the parent ({parent_identity})",
                this.identity
            ))
        } else if this.anchor_delta != parent_anchor_delta {
            Err(format!(
                "code layout differs (anchor distance {} in the worker, {parent_anchor_delta} in \
                 the parent)",
                this.anchor_delta
            ))
        } else {
            Ok(Self { _verified: () })
        }
    }
}

/// Compile-time check that `F` can cross: fails the build with a clear message otherwise.
pub(crate) fn require_zst<F>() {
    const {
        assert!(
            size_of::<F>() == 0,
            "pool-process can only send zero-sized functions to a worker: a fn item or a \
             closure that captures nothing (not a fn pointer, not a capturing closure); move \
             what the closure captures into the argument, e.g. `|(x, offset): (u64, u64)| x + \
             offset` with `(x, offset)`"
        )
    };
}

/// Makes a value of the zero-sized type `F` in the worker.
fn conjure<F: Copy + 'static>() -> F {
    require_zst::<F>();
    // SAFETY: `F` is zero-sized (checked above at compile time), so it has no bytes to be
    // invalid; it is inhabited, since the parent held a value of it to build the `FnRef`
    // that led here; and on stable Rust only fn items and closures implement `Fn`, which have
    // no invariant beyond their type.
    unsafe { std::mem::zeroed::<F>() }
}

/// Decodes an argument in the worker. On failure writes the codec failure record to `out`
/// and returns `None`. A panic in the type's `Deserialize` unwinds to the caller's catch and
/// is reported as the task's panic (message and location), as a panic in the task itself.
fn decode_arg<A: DeserializeOwned, C: Codec>(
    codec: &C,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Option<A> {
    match codec.decode::<A>(input) {
        Ok(a) => Some(a),
        Err(e) => {
            write_codec_failure(out, type_name::<A>(), &codec.name(), e.message());
            None
        }
    }
}

/// Decode `A`, call, encode `R`, with panics and codec failures turned into outcomes.
///
/// `raw_arg` / `raw_result` let byte payloads bypass the codec (see `bytes.rs`): when
/// `raw_arg` gives a value the codec does not decode the input, and when `raw_result` gives a
/// slice it is written as the result as is.
fn run_call<A, R, C>(
    input: &[u8],
    out: &mut Vec<u8>,
    raw_arg: fn(&[u8]) -> Option<A>,
    call: impl FnOnce(A) -> R,
    raw_result: fn(&R) -> Option<&[u8]>,
) -> Outcome
where
    A: DeserializeOwned,
    R: Serialize,
    C: Codec,
{
    caught(out, |out| {
        worker::codec::with(|codec: &C| run_coded(codec, input, out, raw_arg, call, raw_result))
    })
}

/// Runs `f` on `out`; a panic becomes the `Panicked` outcome, its record replacing whatever
/// `f` had written.
#[inline]
fn caught(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>) -> Outcome) -> Outcome {
    let start = out.len();
    panics::catch(|| f(&mut *out)).unwrap_or_else(|record| {
        out.truncate(start);
        record.write(out);
        Outcome::Panicked
    })
}

/// [`run_call`]'s work with the worker's codec.
#[inline]
fn run_coded<A, R, C>(
    codec: &C,
    input: &[u8],
    out: &mut Vec<u8>,
    raw_arg: fn(&[u8]) -> Option<A>,
    call: impl FnOnce(A) -> R,
    raw_result: fn(&R) -> Option<&[u8]>,
) -> Outcome
where
    A: DeserializeOwned,
    R: Serialize,
    C: Codec,
{
    let start = out.len();
    let arg: A = match raw_arg(input) {
        Some(a) => a,
        None => match decode_arg::<A, C>(codec, input, out) {
            Some(a) => a,
            None => return Outcome::DecodeFailed,
        },
    };
    let result = call(arg);
    if let Some(raw) = raw_result(&result) {
        out.extend_from_slice(raw);
        return Outcome::Ok;
    }
    // A `Serialize` that panics unwinds to `caught`: the task's panic.
    match codec.encode(&result, out) {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            out.truncate(start);
            write_codec_failure(out, type_name::<R>(), &codec.name(), e.message());
            Outcome::EncodeFailed
        }
    }
}

/// Every argument goes through the codec.
fn coded_arg<A>(_: &[u8]) -> Option<A> {
    None
}

/// Every result goes through the codec.
fn coded_result<R>(_: &R) -> Option<&[u8]> {
    None
}

/// A raw argument is one copy out of the frame; the codec is not involved.
fn raw_arg<A: 'static>(input: &[u8]) -> Option<A> {
    if bytes::is_raw::<A>() {
        bytes::make::<A>(input.to_vec())
    } else {
        None
    }
}

fn task_trampoline<F, A, R, C>(input: &[u8], out: &mut Vec<u8>) -> Outcome
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: DeserializeOwned,
    R: Serialize,
    C: Codec,
{
    run_call::<A, R, C>(input, out, coded_arg, conjure::<F>(), coded_result)
}

/// The trampoline of functions sent by offset: as [`task_trampoline`], except that byte
/// arguments and results (`Vec<u8>`, `ByteBuf`) cross raw (see `bytes.rs`).
fn raw_task_trampoline<F, A, R, C>(input: &[u8], out: &mut Vec<u8>) -> Outcome
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
    C: Codec,
{
    run_call::<A, R, C>(input, out, raw_arg, conjure::<F>(), bytes::as_slice)
}

fn chunk_trampoline<F, A, R, C>(input: &[u8], out: &mut Vec<u8>) -> Outcome
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: DeserializeOwned + 'static,
    R: Serialize + Send + 'static,
    C: Codec,
{
    run_call::<Vec<A>, ChunkResults<R>, C>(
        input,
        out,
        coded_arg,
        |items| ChunkFn(conjure::<F>()).call(items),
        coded_result,
    )
}

/// What an initializer or finalizer may return: `()` or `Result<(), E>`.
pub trait HookResult {
    /// `Err(message)` if the hook failed.
    ///
    /// # Errors
    /// The hook's own error, rendered with `Display`.
    fn into_result(self) -> Result<(), String>;
}

impl HookResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> HookResult for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

fn hook_trampoline<F, A, H, C>(input: &[u8], out: &mut Vec<u8>) -> Outcome
where
    F: Fn(A) -> H + Copy + Send + Sync + 'static,
    A: DeserializeOwned,
    H: HookResult,
    C: Codec,
{
    caught(out, |out| {
        let Some(arg) = worker::codec::with(|codec: &C| decode_arg::<A, C>(codec, input, out))
        else {
            return Outcome::DecodeFailed;
        };
        match conjure::<F>()(arg).into_result() {
            Ok(()) => Outcome::Ok,
            Err(message) => {
                write_failure(out, &message);
                Outcome::Failed
            }
        }
    })
}

/// The codec probe: builds this worker's codec from the parent's configuration (`input`)
/// and answers its name, which the parent compares with its own. A configuration the codec
/// refuses answers a name that cannot match, carrying the codec's reason.
fn probe_trampoline<C: Codec>(input: &[u8], out: &mut Vec<u8>) -> Outcome {
    match worker::codec::install::<C>(input) {
        Ok(name) => write_codec_name(out, &name),
        Err(e) => write_codec_name(
            out,
            &format!(
                "{} (its configuration was refused: {})",
                C::default().name(),
                e.message()
            ),
        ),
    }
    Outcome::Ok
}

/// The request reference for running `f` on one argument. `raw`: byte arguments and
/// results cross raw, past the codec (the codec's `raw_bytes`).
pub(crate) fn task_ref<F, A, R, C>(_f: &F, raw: bool) -> FnRef
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
    C: Codec,
{
    require_zst::<F>();
    if raw {
        FnRef::of(raw_task_trampoline::<F, A, R, C>)
    } else {
        FnRef::of(task_trampoline::<F, A, R, C>)
    }
}

/// The request reference for running `f` over a `Vec<A>` chunk, giving `Vec<R>`.
pub(crate) fn chunk_ref<F, A, R, C>(_f: &F) -> FnRef
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: DeserializeOwned + 'static,
    R: Serialize + Send + 'static,
    C: Codec,
{
    require_zst::<F>();
    FnRef::of(chunk_trampoline::<F, A, R, C>)
}

/// The reference for an initializer/finalizer hook.
pub(crate) fn hook_ref<F, A, H, C>(_f: &F) -> FnRef
where
    F: Fn(A) -> H + Copy + Send + Sync + 'static,
    A: DeserializeOwned,
    H: HookResult,
    C: Codec,
{
    require_zst::<F>();
    FnRef::of(hook_trampoline::<F, A, H, C>)
}

/// The trampoline of a named task: looked up by name in the worker's own registry, never
/// resolved from an offset, so it needs no same-build guarantee.
pub(crate) const fn named_trampoline<F, A, R, C>() -> Trampoline
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: DeserializeOwned,
    R: Serialize,
    C: Codec,
{
    const {
        assert!(
            size_of::<F>() == 0,
            "a named task must be a fn item or a closure that captures nothing"
        )
    };
    task_trampoline::<F, A, R, C>
}

/// The reference for the codec probe (answers `C::default().name()`).
pub(crate) fn probe_ref<C: Codec>() -> FnRef {
    FnRef::of(probe_trampoline::<C>)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_codec::DefaultCodec;

    fn rev(mut v: Vec<u8>) -> Vec<u8> {
        v.reverse();
        v
    }

    fn len(b: serde_bytes::ByteBuf) -> u64 {
        b.len() as u64
    }

    /// The trampoline a request for `f` resolves to.
    fn trampoline_of<F, A, R>(_f: F) -> Trampoline
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        raw_task_trampoline::<F, A, R, DefaultCodec>
    }

    #[test]
    fn only_the_same_build_verifies() {
        let this = ThisBuild::measure().unwrap();
        let proof = SameBinary::verify(&this, this.identity(), this.anchor_delta()).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            probe_ref::<DefaultCodec>().resolve(&proof)(&[], &mut out),
            Outcome::Ok
        );
        let other = BuildIdentity {
            size: this.identity().size + 1,
            ..*this.identity()
        };
        let err = SameBinary::verify(&this, &other, this.anchor_delta()).unwrap_err();
        assert!(err.contains("different executable"), "{err}");
        let err = SameBinary::verify(&this, this.identity(), this.anchor_delta() + 1).unwrap_err();
        assert!(err.contains("code layout differs"), "{err}");
    }

    #[test]
    fn byte_types_cross_raw_and_others_through_the_codec() {
        // Raw in, raw out: the reply body is the bytes themselves.
        let mut out = Vec::new();
        assert_eq!(trampoline_of(rev)(b"abc", &mut out), Outcome::Ok);
        assert_eq!(out, b"cba");
        // Raw in, codec out.
        out.clear();
        assert_eq!(trampoline_of(len)(&[0; 300], &mut out), Outcome::Ok);
        assert_eq!(DefaultCodec::default().decode::<u64>(&out).unwrap(), 300);
        // Codec in, codec out.
        out.clear();
        let mut arg = Vec::new();
        DefaultCodec::default().encode(&20u64, &mut arg).unwrap();
        assert_eq!(trampoline_of(|x: u64| x + 1)(&arg, &mut out), Outcome::Ok);
        assert_eq!(DefaultCodec::default().decode::<u64>(&out).unwrap(), 21);
    }
}
