//! The bytes fast path: `Vec<u8>` and `serde_bytes::ByteBuf` arguments and results of
//! functions sent by offset cross as the raw bytes themselves, without the codec.
//!
//! Through a serde codec a byte buffer costs a full copy on each side (encode into the
//! request buffer, decode into a new vector), and a plain `Vec<u8>` is worse: MessagePack and
//! JSON write it as an array of integers, one at a time. Here the parent hands the caller's
//! vector itself to the transport (its bytes are written straight from it, no encode copy),
//! and the worker builds the argument with one copy out of the received frame; a byte result
//! is copied once into the reply and becomes the parent's result vector as it was received.
//!
//! Both sides decide by the static type alone (`TypeId`), and both run the identical build
//! (the transfer invariant), so they always agree on whether a value is raw. Named tasks,
//! which may be served by another binary, always use the codec. A codec's own treatment of
//! these two types (compression, say) is bypassed for them.
//!
//! All of it is safe code: `Any` downcasts on `'static` types.

use std::any::{Any, TypeId};

use serde_bytes::ByteBuf;

/// Whether values of `T` cross as raw bytes.
pub(crate) fn is_raw<T: 'static>() -> bool {
    let t = TypeId::of::<T>();
    t == TypeId::of::<Vec<u8>>() || t == TypeId::of::<ByteBuf>()
}

/// Moves the bytes out of a raw-typed value (leaving it empty); `None` for other types.
pub(crate) fn take<T: 'static>(value: &mut T) -> Option<Vec<u8>> {
    let any: &mut dyn Any = value;
    if let Some(v) = any.downcast_mut::<Vec<u8>>() {
        return Some(std::mem::take(v));
    }
    any.downcast_mut::<ByteBuf>()
        .map(|b| std::mem::take(b).into_vec())
}

/// Puts bytes taken with [`take`] back (a refused submission hands the task back intact).
pub(crate) fn restore<T: 'static>(value: &mut T, bytes: Vec<u8>) {
    let any: &mut dyn Any = value;
    if let Some(v) = any.downcast_mut::<Vec<u8>>() {
        *v = bytes;
    } else if let Some(b) = any.downcast_mut::<ByteBuf>() {
        *b = ByteBuf::from(bytes);
    }
}

/// The raw bytes of a raw-typed value; `None` for other types.
pub(crate) fn as_slice<T: 'static>(value: &T) -> Option<&[u8]> {
    let any: &dyn Any = value;
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        return Some(v);
    }
    any.downcast_ref::<ByteBuf>().map(|b| &b[..])
}

/// Makes a raw-typed value from bytes; `None` (bytes dropped) for other types.
pub(crate) fn make<T: 'static>(bytes: Vec<u8>) -> Option<T> {
    let mut slot: Option<T> = None;
    let any: &mut dyn Any = &mut slot;
    if let Some(s) = any.downcast_mut::<Option<Vec<u8>>>() {
        *s = Some(bytes);
    } else if let Some(s) = any.downcast_mut::<Option<ByteBuf>>() {
        *s = Some(ByteBuf::from(bytes));
    }
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_types_round_trip_and_others_are_left_alone() {
        assert!(is_raw::<Vec<u8>>() && is_raw::<ByteBuf>());
        assert!(!is_raw::<Vec<u16>>() && !is_raw::<String>() && !is_raw::<Vec<Vec<u8>>>());

        let mut v = vec![1u8, 2, 3];
        let taken = take(&mut v).unwrap();
        assert!(v.is_empty());
        assert_eq!(taken, [1, 2, 3]);
        restore(&mut v, taken);
        assert_eq!(v, [1, 2, 3]);

        let mut b = ByteBuf::from(vec![4u8, 5]);
        assert_eq!(as_slice(&b), Some(&[4u8, 5][..]));
        let taken = take(&mut b).unwrap();
        assert!(b.is_empty());
        restore(&mut b, taken);
        assert_eq!(&b[..], [4, 5]);

        assert_eq!(make::<Vec<u8>>(vec![9]), Some(vec![9]));
        assert_eq!(
            make::<ByteBuf>(vec![8]).map(ByteBuf::into_vec),
            Some(vec![8])
        );
        assert_eq!(make::<String>(vec![7]), None);

        let mut s = String::from("x");
        assert_eq!(take(&mut s), None);
        assert_eq!(as_slice(&s), None);
        restore(&mut s, vec![1]);
        assert_eq!(s, "x");
    }
}
