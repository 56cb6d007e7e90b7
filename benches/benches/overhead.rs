//! PCLimit's cost per job (`just bench`): 100,000 no-op jobs at concurrency 16, against what a
//! learner would otherwise write: a bare `Arc<Semaphore>` (with and without a task per job),
//! `futures`' `buffer_unordered`, and a Python asyncio limiter on the same input.
//!
//! The jobs do nothing, so what is timed is the limiter itself: queueing, handing out slots,
//! spawning and collecting results.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use kata_benches::{median_times_in_turns, per_item, python_peer, row};
use pclimit::PCLimit;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

const JOBS: usize = 100_000;
const CONCURRENCY: usize = 16;
const RUNS: usize = 7;

async fn noop() {}

/// Ours: a handle per job, awaited together.
async fn pclimit() {
    let limit = PCLimit::new(CONCURRENCY).expect("16 is a valid limit");
    let handles: Vec<_> = (0..JOBS).map(|_| limit.run(noop())).collect();
    for result in join_all(handles).await {
        result.expect("a no-op job cannot fail");
    }
}

/// A semaphore and a task per job: what PCLimit does, minus its queue and counts.
async fn semaphore_spawned() {
    let semaphore = Arc::new(Semaphore::new(CONCURRENCY));
    let tasks: Vec<_> = (0..JOBS)
        .map(|_| {
            let semaphore = semaphore.clone();
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await.expect("never closed");
                noop().await;
            })
        })
        .collect();
    for result in join_all(tasks).await {
        result.expect("a no-op job cannot panic");
    }
}

/// A semaphore and `join_all`, no tasks: every job is polled by the one awaiting task.
async fn semaphore_joined() {
    let semaphore = Semaphore::new(CONCURRENCY);
    join_all((0..JOBS).map(|_| async {
        let _permit = semaphore.acquire().await.expect("never closed");
        noop().await;
    }))
    .await;
}

/// `buffer_unordered`: at most 16 futures polled at once, no tasks either.
async fn buffer_unordered() {
    futures::stream::iter((0..JOBS).map(|_| noop()))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
}

fn main() {
    // The runtime a learner's program would have: multi-threaded, one worker per core.
    let runtime = Runtime::new().expect("a tokio runtime");
    let [ours, spawned, joined, buffered] = median_times_in_turns(
        RUNS,
        &mut [
            &mut || runtime.block_on(pclimit()),
            &mut || runtime.block_on(semaphore_spawned()),
            &mut || runtime.block_on(semaphore_joined()),
            &mut || runtime.block_on(buffer_unordered()),
        ],
    )[..] else {
        unreachable!("one median per contender");
    };

    let what = "PCLimit, per job (100,000 no-op jobs, c = 16)";
    let ours_figure = per_item(ours, JOBS);
    let ratio = |peer: Duration| ours.as_secs_f64() / peer.as_secs_f64();
    row(
        what,
        &ours_figure,
        "`Arc<Semaphore>` + a task per job + `join_all`",
        &per_item(spawned, JOBS),
        ratio(spawned),
        "<= 1.5x",
    );
    row(
        what,
        &ours_figure,
        "`Arc<Semaphore>` + `join_all`, no tasks",
        &per_item(joined, JOBS),
        ratio(joined),
        "<= 1.5x",
    );
    row(
        what,
        &ours_figure,
        "`futures` `buffer_unordered(16)`, no tasks",
        &per_item(buffered, JOBS),
        ratio(buffered),
        "",
    );
    if let Some(python) = python_peer(&["pclimit", &JOBS.to_string(), &CONCURRENCY.to_string()]) {
        row(
            what,
            &ours_figure,
            "Python asyncio limiter (`benches/python/peers.py`)",
            &per_item(python, JOBS),
            ratio(python),
            "<= 0.05x (20x faster)",
        );
    }
}
