//! The messages between parent and worker, and the worker's start-up environment variable.
//!
//! Every message is one transport frame whose first byte is its kind. Integers are
//! little-endian (see `crate::wire`). The sequence is described in `../worker/README.md`.
//!
//! Layout: `numbers.rs` holds the kinds, flags and header sizes; `request.rs` the messages
//! parent → worker (built by the parent, parsed by the worker), `reply.rs` the messages
//! worker → parent (written by the worker, parsed by the parent), `spec.rs` the worker's
//! start-up spec.

/// Message kinds, flags and header sizes (also included by the misbehaving-worker fixture).
mod numbers;
pub(crate) mod reply;
pub(crate) mod request;
/// The worker's start-up spec, and the spelling of its transport.
mod spec;

pub(crate) use numbers::*;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use reply::Ready;
pub(crate) use reply::{
    CodecFailureRecord, Detail, Hello, Malformed, Outcome, PanicRecord, Reply, ready_frame,
    reply_header, stopped_header, write_codec_failure, write_codec_name, write_failure,
};
pub(crate) use request::{
    HookCall, Request, RequestHeader, STOP_REQUEST, Setup, named_header, stamp_seq, task_header,
};
pub(crate) use spec::WorkerSpec;

#[cfg(test)]
mod tests {
    use super::request::seq_of;
    use super::*;
    use crate::sys::exe::BuildIdentity;
    use crate::transfer::FnRef;
    use crate::transport::Flavor;
    use crate::wire::{Put, Reader};

    #[test]
    fn messages_round_trip() {
        let id = BuildIdentity::current().unwrap();
        let spec = WorkerSpec {
            version: PROTOCOL_VERSION,
            parent: 12,
            ppid: 13,
            identity: id,
            anchor_delta: -64,
            worker_id: 3,
            named_only: true,
            transport: Flavor::from_wire("sock:pool-1-2-ab:00ff").unwrap(),
        };
        assert_eq!(WorkerSpec::decode(&spec.encode()), Some(spec.clone()));
        let spawned = WorkerSpec { ppid: 12, ..spec };
        assert_eq!(spawned.encode().matches(';').count(), 6);
        assert_eq!(WorkerSpec::decode(&spawned.encode()), Some(spawned));
        let hello = Hello {
            version: 1,
            pid: 5,
            identity: "x".into(),
            anchor_delta: 7,
            refusal: Some("no".into()),
            tasks: vec![("a".into(), "msgpack".into())],
        };
        assert_eq!(Hello::decode(&hello.encode()), Some(hello));
        let setup = Setup {
            probe: FnRef(-3),
            codec_config: vec![7, 7],
            codec_name: "msgpack".into(),
            max_frame: 1 << 20,
            init: Some(HookCall {
                f: FnRef(9),
                arg: vec![1, 2],
            }),
            fin: None,
        };
        let back = Setup::decode(&setup.encode()).unwrap();
        assert_eq!(back.probe, FnRef(-3));
        assert_eq!(back.codec_config, [7, 7]);
        assert_eq!(back.init.unwrap().arg, vec![1, 2]);
        assert!(back.fin.is_none());
        assert!(Setup::decode(&[SETUP, 9, 9]).is_none());
    }

    #[test]
    fn ready_round_trips_and_refuses_garbage() {
        // As `serve.rs` writes it: kind, the probe's codec name, the outcome byte, detail.
        let mut wire = vec![READY];
        wire.put_str("msgpack");
        wire.put_u8(Outcome::Failed as u8);
        wire.put_str("no database");
        let ready = Ready::decode(&wire).unwrap();
        assert_eq!(ready.codec, "msgpack");
        assert_eq!(ready.outcome, Outcome::Failed);
        assert_eq!(Reader(ready.detail).str().as_deref(), Some("no database"));
        assert_eq!(ready.encode(), wire);
        assert!(Ready::decode(&wire[..wire.len() - ready.detail.len() - 1]).is_none());
        let mut unknown = wire.clone();
        unknown[1 + 4 + 7] = 9;
        assert!(Ready::decode(&unknown).is_none(), "unknown outcome byte");
        assert!(Ready::decode(&[HELLO]).is_none());
    }

    #[test]
    fn sequence_numbers_are_stamped_and_echoed() {
        let mut buf = [0u8; MAX_REQUEST_HEADER];
        let task = task_header(FnRef(-2));
        let stamped = stamp_seq(&task, 0x0102_0304_0506_0708, &mut buf).unwrap();
        assert_eq!(stamped.len(), TASK_HEADER);
        assert_eq!(stamped[0], TASK);
        assert_eq!(seq_of(stamped), 0x0102_0304_0506_0708);
        assert_eq!(stamped[9..], (-2i64).to_le_bytes());
        let named = named_header(7);
        let stamped = stamp_seq(&named, 5, &mut buf).unwrap();
        assert_eq!(
            (stamped.len(), stamped[0], seq_of(stamped)),
            (NAMED_HEADER, NAMED, 5)
        );
        assert_eq!(stamped[9..], 7u32.to_le_bytes());
        assert!(stamp_seq(&[STOP], 1, &mut buf).is_none());
        assert!(stamp_seq(&task[..5], 1, &mut buf).is_none());
        let reply = reply_header(u64::MAX, 2);
        assert_eq!((reply[0], seq_of(&reply), reply[9]), (REPLY, u64::MAX, 2));
        assert_eq!(seq_of(&[REPLY, 1, 2]), 0);
    }
}
