//! The work queue on the source exercise's own job (`just bench`): sort 0..1,000,000 into evens
//! and odds, each number one job, 3 at a time; against a bare `Semaphore` + `join_all` doing the
//! same, and a Python asyncio work queue (3 consumers on an `asyncio.Queue`).

use std::time::Duration;

use futures::future::join_all;
use kata_benches::{human, median_time, python_peer, row};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use work_queue::{Parity, classify};

const COUNT: u64 = 1_000_000;
const CONCURRENCY: usize = 3;
const RUNS: usize = 5;

/// The baseline: a semaphore of 3 and one future per number, polled by `join_all`.
async fn semaphore_classify() -> Parity {
    let semaphore = Semaphore::new(CONCURRENCY);
    let verdicts = join_all((0..COUNT).map(|n| {
        let semaphore = &semaphore;
        async move {
            let _permit = semaphore.acquire().await.expect("never closed");
            (n, n % 2 == 0)
        }
    }))
    .await;
    let mut parity = Parity::default();
    for (n, even) in verdicts {
        if even {
            parity.evens.push(n);
        } else {
            parity.odds.push(n);
        }
    }
    parity
}

/// Ours and the baseline on `runtime`, median of [`RUNS`] each.
fn measure(runtime: &Runtime) -> (Duration, Duration) {
    let ours = median_time(RUNS, || {
        let parity = runtime
            .block_on(classify(0..COUNT, CONCURRENCY))
            .expect("3 is a valid concurrency");
        assert_eq!(parity.evens.len() + parity.odds.len(), COUNT as usize);
    });
    let baseline = median_time(RUNS, || {
        let parity = runtime.block_on(semaphore_classify());
        assert_eq!(parity.evens.len() + parity.odds.len(), COUNT as usize);
    });
    (ours, baseline)
}

fn main() {
    // The runtime a learner's program would have: multi-threaded, one worker per core. Jobs this
    // small are dominated by hand-offs between threads, so the current-thread figures are shown
    // too: same code, no cross-thread wake-ups.
    let multi = Runtime::new().expect("a tokio runtime");
    let single = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let (ours, baseline) = measure(&multi);
    let (ours_single, baseline_single) = measure(&single);
    let what = "Work queue: classify 0..1,000,000, c = 3";
    let ratio = |ours: Duration, peer: Duration| ours.as_secs_f64() / peer.as_secs_f64();
    row(
        what,
        &human(ours),
        "`Semaphore` + `join_all`",
        &human(baseline),
        ratio(ours, baseline),
        "<= 2x",
    );
    row(
        &format!("{what}, current-thread runtime"),
        &human(ours_single),
        "`Semaphore` + `join_all`, current-thread runtime",
        &human(baseline_single),
        ratio(ours_single, baseline_single),
        "<= 2x",
    );
    if let Some(python) = python_peer(&["work-queue", &COUNT.to_string(), &CONCURRENCY.to_string()])
    {
        row(
            what,
            &human(ours),
            "Python asyncio work queue (`benches/python/peers.py`)",
            &human(python),
            ratio(ours, python),
            "<= 0.05x (20x faster)",
        );
    }
}
