// The protocol's numbers: message kinds, flags, header sizes. Plain constants without
// dependencies, so that the test fixture playing a misbehaving worker
// (`pool-testkit/src/bin/misbehaving_worker.rs`) includes this very file instead of
// declaring numbers of its own (it must not link pool-process, whose pre-`main` hook would
// make it a real worker).

/// Bumped on any change to the messages below. 3: requests and replies carry a sequence
/// number. 4: the [`POLL`] flag on requests.
pub(crate) const PROTOCOL_VERSION: u32 = 5;

/// The environment variable that puts a process in worker mode.
pub(crate) const WORKER_ENV: &str = "POOL_PROCESS_WORKER";

/// Parent → worker: the codec probe and the hooks.
pub(crate) const SETUP: u8 = 1;
/// Parent → worker: run a task. Header: kind, sequence (u64), `FnRef` (i64); then the
/// encoded argument.
pub(crate) const TASK: u8 = 2;
/// Parent → worker: run the finalizer and exit.
pub(crate) const STOP: u8 = 3;
/// Parent → worker: run a named task. Header: kind, sequence (u64), registry index (u32);
/// then the argument.
pub(crate) const NAMED: u8 = 4;
/// Flag on a request's kind byte (`TASK | POLL`, `NAMED | POLL`): a caller waits for this
/// reply polling (`ProcessPool::apply` on a borrowed worker). After answering it, the worker
/// polls for its next request a little before it blocks, as the caller polls for the reply:
/// in a loop of such calls neither side sleeps. Without the flag the worker blocks at once
/// (the engine's threads share the CPU with everything else; a polling worker measured
/// slower there).
pub(crate) const POLL: u8 = 0x40;

/// Worker → parent: identity, first thing after start.
pub(crate) const HELLO: u8 = 0x81;
/// Worker → parent: codec name and initializer outcome.
pub(crate) const READY: u8 = 0x82;
/// Worker → parent: the request's sequence (u64), the task's outcome byte, then its payload.
pub(crate) const REPLY: u8 = 0x83;
/// Worker → parent: the finalizer's outcome byte, then its detail.
pub(crate) const STOPPED: u8 = 0x84;

/// Where a request's or a reply's sequence number sits: right after the kind byte. The
/// parent numbers the requests to one worker 1, 2, 3, ...; the worker echoes the number in
/// its reply, and the parent checks it against the oldest request still unanswered.
pub(crate) const SEQ: std::ops::Range<usize> = 1..9;

/// Length of a task request's header.
pub(crate) const TASK_HEADER: usize = 17;
/// Length of a named task request's header.
pub(crate) const NAMED_HEADER: usize = 13;
/// Length of a reply's header (kind, sequence, outcome).
pub(crate) const REPLY_HEADER: usize = 10;
/// The longest request header.
pub(crate) const MAX_REQUEST_HEADER: usize = TASK_HEADER;
