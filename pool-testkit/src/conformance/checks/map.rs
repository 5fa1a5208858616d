//! Checks on the `map` family: ordering, laziness, unordered completeness, `map_all`, panics
//! and timeouts of items.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pool_core::{ChunkSize, MapOptions, TaskError};

use crate::conformance::Ctx;
use crate::conformance::tasks;
use crate::target::Target;

pub(super) fn map_ordered<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let want: Vec<u64> = (0..300).map(tasks::square).collect();
    for chunk in [ChunkSize::Fixed(1), ChunkSize::Fixed(7), ChunkSize::Auto] {
        cx.step(format!("map square, chunk {chunk:?}"));
        let got: Result<Vec<u64>, _> = cx
            .exec
            .map_fn_with(
                tasks::square,
                0..300u64,
                MapOptions::default().chunk_size(chunk),
            )
            .collect();
        let got = got.map_err(|e| format!("map with {chunk:?} failed: {e}"))?;
        ensure!(
            got == want,
            "map with {chunk:?} returned {} items, out of order or wrong",
            got.len()
        );
    }
    cx.step("map where later items finish first, lookahead 3");
    let got: Result<Vec<u64>, _> = cx
        .exec
        .map_fn_with(
            tasks::slow_reverse,
            0..48u64,
            MapOptions::default()
                .chunk_size(ChunkSize::Fixed(1))
                .lookahead(3),
        )
        .collect();
    let got = got.map_err(|e| e.to_string())?;
    ensure!(
        got == (0..48).collect::<Vec<u64>>(),
        "reverse-finishing map came back as {got:?}"
    );
    cx.step("map of nothing");
    let got: Vec<_> = cx
        .exec
        .map_fn_with(tasks::square, Vec::<u64>::new(), MapOptions::default())
        .collect();
    ensure!(got.is_empty(), "empty map yielded {} items", got.len());
    Ok(())
}

pub(super) fn map_lazy_bounded<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("map over an endless iterator, take 20");
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let endless = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let lookahead = 4;
    let it = cx.exec.map_fn_with(
        tasks::square,
        endless,
        MapOptions::default()
            .chunk_size(ChunkSize::Fixed(2))
            .lookahead(lookahead),
    );
    let got: Vec<u64> = it
        .take(20)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    ensure!(
        got == (0..20).map(tasks::square).collect::<Vec<_>>(),
        "endless map gave {got:?}"
    );
    let n = pulled.load(Ordering::Relaxed);
    // 20 yielded + at most `lookahead` chunks of 2 in flight + one chunk being filled.
    let limit = 20 + 2 * lookahead + 2;
    ensure!(
        n <= limit,
        "map pulled {n} items from the input to yield 20 (limit {limit}): not lazy"
    );
    Ok(())
}

pub(super) fn map_unordered_complete<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    for chunk in [ChunkSize::Fixed(1), ChunkSize::Fixed(5), ChunkSize::Auto] {
        cx.step(format!("map_unordered chunk {chunk:?}"));
        let got: Result<Vec<u64>, _> = cx
            .exec
            .map_fn_with(
                tasks::slow_reverse,
                0..64u64,
                MapOptions::default().ordered(false).chunk_size(chunk),
            )
            .collect();
        let mut got = got.map_err(|e| e.to_string())?;
        got.sort_unstable();
        ensure!(
            got == (0..64).collect::<Vec<u64>>(),
            "unordered map with {chunk:?} lost or duplicated items: {got:?}"
        );
    }
    Ok(())
}

pub(super) fn map_all_values_and_errors<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("map_all of squares");
    let got = cx
        .exec
        .map_all_fn(tasks::square, 0..1000u64)
        .map_err(|e| e.to_string())?;
    ensure!(
        got == (0..1000).map(tasks::square).collect::<Vec<_>>(),
        "map_all returned wrong values"
    );
    cx.step("map_all with a panicking item");
    match cx.exec.map_all_fn(tasks::panic_on_13, 0..40u64) {
        Err(TaskError::Panicked(p)) => {
            ensure!(
                p.message.contains("unlucky"),
                "map_all panic message is {:?}",
                p.message
            )
        }
        other => return Err(format!("map_all with a panicking item returned {other:?}")),
    }
    cx.step("the executor still serves after that");
    let v = cx.value(cx.sub(tasks::square, 3u64)?, "square after map_all error")?;
    ensure!(v == 9, "square(3) = {v}");
    Ok(())
}

pub(super) fn map_item_panic<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("ordered map, chunk 1, item 13 panics");
    let got: Vec<Result<u64, TaskError>> = cx
        .exec
        .map_fn_with(
            tasks::panic_on_13,
            0..30u64,
            MapOptions::default().chunk_size(ChunkSize::Fixed(1)),
        )
        .collect();
    ensure!(
        got.len() == 30,
        "map yielded {} items for 30 inputs",
        got.len()
    );
    for (i, r) in got.iter().enumerate() {
        let i = i as u64;
        match r {
            Ok(v) if i != tasks::PANIC_ITEM && *v == i + 1 => {}
            Err(TaskError::Panicked(_)) if i == tasks::PANIC_ITEM => {}
            other => return Err(format!("item {i} yielded {other:?}")),
        }
    }
    Ok(())
}

pub(super) fn map_timeout<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("map with a per-chunk timeout; one item runs past it");
    let items = vec![0u64, 1, 1500, 2, 0];
    let got: Vec<Result<u64, TaskError>> = cx
        .exec
        .map_fn_with(
            tasks::sleep_ms,
            items.clone(),
            MapOptions::default()
                .chunk_size(ChunkSize::Fixed(1))
                .timeout(Duration::from_millis(150)),
        )
        .collect();
    ensure!(
        got.len() == items.len(),
        "map yielded {} items for {}",
        got.len(),
        items.len()
    );
    for (x, r) in items.iter().zip(&got) {
        match r {
            Ok(v) if *x != 1500 && v == x => {}
            Err(TaskError::TimedOut { .. }) if *x == 1500 => {}
            other => {
                return Err(format!(
                    "sleep_ms({x}) with a 150 ms timeout yielded {other:?}"
                ));
            }
        }
    }
    Ok(())
}
