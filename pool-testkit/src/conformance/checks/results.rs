//! Checks on what a task hands back: values, structured values, error chains, panics.

use pool_core::TaskError;

use crate::conformance::Ctx;
use crate::conformance::tasks::{self, Payload, Shape};
use crate::target::Target;

pub(super) fn submit_results<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("submit one");
    let f = cx.sub(tasks::square, 7u64)?;
    let v = cx.value(f, "square(7)")?;
    ensure!(v == 49, "square(7) returned {v}");
    cx.step("submit 200 at once");
    let mut futs = Vec::new();
    for i in 0..200u64 {
        futs.push(cx.sub(tasks::square, i)?);
    }
    for (i, f) in futs.into_iter().enumerate() {
        let v = cx.value(f, &format!("square({i})"))?;
        ensure!(v == (i as u64) * (i as u64), "square({i}) returned {v}");
    }
    Ok(())
}

pub(super) fn values_round_trip<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let p = Payload {
        name: "héllo".into(),
        bytes: vec![0, 1, 254, 255],
        maybe: Some(-5),
        shape: Shape::Rect { w: 3, h: 4 },
        nested: vec![(1, "a".into()), (65535, String::new())],
    };
    cx.step("transform a structured value");
    let got = cx.value(cx.sub(tasks::transform, p.clone())?, "transform")?;
    let want = tasks::transform(p);
    ensure!(got == want, "transform returned {got:?}, expected {want:?}");
    cx.step("other shapes");
    for shape in [Shape::Empty, Shape::Circle(1.5)] {
        let p = Payload {
            name: String::new(),
            bytes: Vec::new(),
            maybe: None,
            shape,
            nested: Vec::new(),
        };
        let got = cx.value(cx.sub(tasks::transform, p.clone())?, "transform")?;
        ensure!(
            got == tasks::transform(p.clone()),
            "transform({p:?}) returned {got:?}"
        );
    }
    cx.step("a large value");
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
    let p = Payload {
        name: "big".into(),
        bytes: big,
        maybe: None,
        shape: Shape::Empty,
        nested: Vec::new(),
    };
    let got = cx.value(cx.sub(tasks::transform, p.clone())?, "transform(1 MiB)")?;
    ensure!(
        got == tasks::transform(p),
        "1 MiB payload came back different"
    );
    Ok(())
}

pub(super) fn remote_error_chain<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("fail_odd(4) is Ok");
    let ok = cx.value(cx.sub(tasks::fail_odd, 4u64)?, "fail_odd(4)")?;
    ensure!(ok == Ok(4), "fail_odd(4) returned {ok:?}");
    cx.step("fail_odd(3) is a chained error");
    let err = cx.value(cx.sub(tasks::fail_odd, 3u64)?, "fail_odd(3)")?;
    let Err(e) = err else {
        return Err(format!("fail_odd(3) returned {err:?}"));
    };
    ensure!(
        e.message().contains("/etc/pool/3.toml"),
        "outer message is {:?}",
        e.message()
    );
    ensure!(
        e.type_name().contains("ConfigError"),
        "outer type name is {:?}",
        e.type_name()
    );
    let src = std::error::Error::source(&e).ok_or("the error lost its source()")?;
    ensure!(
        src.to_string().contains("no such file"),
        "source says {src}"
    );
    ensure!(
        src.source().is_none(),
        "the chain is longer than built: {:?}",
        src.source()
    );
    Ok(())
}

pub(super) fn panic_is_data<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let n = cx.workers() * 3;
    cx.step(format!("{n} panicking tasks"));
    for i in 0..n {
        let f = cx.sub(tasks::panic_with, format!("boom {i}"))?;
        match cx.resolve(f, "panic_with")? {
            Err(TaskError::Panicked(p)) => {
                ensure!(
                    p.message.contains(&format!("boom {i}")),
                    "panic message is {:?}",
                    p.message
                );
                ensure!(
                    p.location
                        .as_deref()
                        .is_some_and(|l| l.contains("tasks.rs")),
                    "panic location is {:?}",
                    p.location
                );
            }
            other => return Err(format!("a panicking task resolved as {other:?}")),
        }
    }
    cx.step("the workers survived the panics and still serve");
    let v = cx.value(cx.sub(tasks::square, 12u64)?, "square after panics")?;
    ensure!(v == 144, "square(12) = {v}");
    let s = cx.exec.stats();
    ensure!(
        s.died == 0 && s.replaced == 0,
        "panics killed or replaced workers: {s:?}"
    );
    Ok(())
}
