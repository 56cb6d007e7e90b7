//! The work queue on the source exercise's own job (`just bench`): sort 0..1,000,000 into evens
//! and odds, each number one job, 3 at a time; against a bare `Semaphore` + `join_all` doing the
//! same, a Python asyncio work queue (3 consumers on an `asyncio.Queue`), and a sketch of the
//! same fixed pool with another hand-off between workers (see [`std_pool`]).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use kata_benches::{human, median_times_in_turns, python_peer, row};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinSet;
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

/// A benchmark-only sketch, not the reference: the reference's fixed pool (3 workers, one queue
/// in push order, each job boxed with its panic caught, its result sent through a oneshot and
/// counted as unfinished), but the workers share a `std::sync::Mutex<VecDeque>` held only to
/// pop a job, and idle workers sleep on a `Notify`, instead of taking turns at a
/// `tokio::sync::Mutex` around an mpsc receiver. With the tokio mutex, the worker that got a job
/// hands the lock to the next one in line, which is a task wake-up (often on the other thread)
/// per job; here a worker that finds a job waits for nobody.
///
/// The price is why the kata keeps the tokio mutex: a `std` guard cannot live across an
/// `.await` in a spawned task (the future would not be `Send`), so the kata's lock trap becomes
/// a compile error rather than a lesson, and each idle worker must register for the next push
/// before it looks at the queue (`Notified::enable`), or two pushes that race two idle workers
/// wake only one of them.
mod std_pool {
    use super::{
        Arc, AssertUnwindSafe, AtomicUsize, Future, FutureExt, JoinSet, Mutex, Notify, Ordering,
        Pin, VecDeque, oneshot, pin,
    };

    type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

    #[derive(Default)]
    struct Jobs {
        queue: Mutex<VecDeque<Job>>,
        pushed: Notify,
    }

    pub struct Pool {
        jobs: Arc<Jobs>,
        unfinished: Arc<AtomicUsize>,
        _workers: JoinSet<()>,
    }

    impl Pool {
        pub fn new(concurrency: usize) -> Self {
            let jobs = Arc::new(Jobs::default());
            let mut workers = JoinSet::new();
            for _ in 0..concurrency {
                workers.spawn(work(jobs.clone()));
            }
            Self {
                jobs,
                unfinished: Arc::default(),
                _workers: workers,
            }
        }

        pub fn submit<F>(&self, job: F) -> oneshot::Receiver<Result<F::Output, ()>>
        where
            F: Future + Send + 'static,
            F::Output: Send + 'static,
        {
            let (result_tx, result_rx) = oneshot::channel();
            self.unfinished.fetch_add(1, Ordering::AcqRel);
            let unfinished = self.unfinished.clone();
            let wrapped = async move {
                let result = AssertUnwindSafe(job).catch_unwind().await.map_err(drop);
                let _ = result_tx.send(result);
                unfinished.fetch_sub(1, Ordering::AcqRel);
            };
            self.jobs
                .queue
                .lock()
                .expect("never poisoned")
                .push_back(Box::pin(wrapped));
            self.jobs.pushed.notify_one();
            result_rx
        }
    }

    async fn work(jobs: Arc<Jobs>) {
        loop {
            let mut pushed = pin!(jobs.pushed.notified());
            pushed.as_mut().enable();
            let next = jobs.queue.lock().expect("never poisoned").pop_front();
            match next {
                Some(job) => job.await,
                None => pushed.await,
            }
        }
    }
}

/// `classify` on [`std_pool`]: the same jobs, handles awaited in order.
async fn std_pool_classify() -> Parity {
    let pool = std_pool::Pool::new(CONCURRENCY);
    let handles: Vec<_> = (0..COUNT)
        .map(|n| pool.submit(async move { (n, n % 2 == 0) }))
        .collect();
    let mut parity = Parity::default();
    for handle in handles {
        let Ok(Ok((n, even))) = handle.await else {
            unreachable!("a parity job cannot fail");
        };
        if even {
            parity.evens.push(n);
        } else {
            parity.odds.push(n);
        }
    }
    parity
}

/// Ours, the baseline and the [`std_pool`] sketch on `runtime`, in turns, median of [`RUNS`]
/// each.
fn measure(runtime: &Runtime) -> (Duration, Duration, Duration) {
    let check = |parity: Parity| assert_eq!(parity.evens.len() + parity.odds.len(), COUNT as usize);
    let [ours, baseline, pool] = median_times_in_turns(
        RUNS,
        &mut [
            &mut || {
                check(
                    runtime
                        .block_on(classify(0..COUNT, CONCURRENCY))
                        .expect("3 is a valid concurrency"),
                );
            },
            &mut || check(runtime.block_on(semaphore_classify())),
            &mut || check(runtime.block_on(std_pool_classify())),
        ],
    )[..] else {
        unreachable!("one median per contender");
    };
    (ours, baseline, pool)
}

fn main() {
    // The runtime a learner's program would have: multi-threaded, one worker per core. Jobs this
    // small are dominated by hand-offs between threads, so the current-thread figures are shown
    // too: same code, no cross-thread wake-ups.
    let multi = Runtime::new().expect("a tokio runtime");
    let single = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let (ours, baseline, pool) = measure(&multi);
    let (ours_single, baseline_single, pool_single) = measure(&single);
    let what = "Work queue: classify 0..1,000,000, c = 3";
    let ratio = |ours: Duration, peer: Duration| ours.as_secs_f64() / peer.as_secs_f64();
    row(
        what,
        &human(ours),
        "`Semaphore` + `join_all`",
        &human(baseline),
        ratio(ours, baseline),
        "<= 1.5x",
    );
    row(
        &format!("{what}, current-thread runtime"),
        &human(ours_single),
        "`Semaphore` + `join_all`, current-thread runtime",
        &human(baseline_single),
        ratio(ours_single, baseline_single),
        "<= 2x",
    );
    row(
        &format!("{what}, `std_pool` sketch (benches/benches/classify.rs)"),
        &human(pool),
        "`Semaphore` + `join_all`",
        &human(baseline),
        ratio(pool, baseline),
        "<= 1.5x",
    );
    row(
        what,
        &human(ours),
        "`std_pool` sketch: the same pool on a `std` `Mutex<VecDeque>` + `Notify`",
        &human(pool),
        ratio(ours, pool),
        "",
    );
    row(
        &format!("{what}, `std_pool` sketch, current-thread runtime"),
        &human(pool_single),
        "`Semaphore` + `join_all`, current-thread runtime",
        &human(baseline_single),
        ratio(pool_single, baseline_single),
        "",
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
