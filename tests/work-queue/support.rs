//! How the work-queue suite drives a queue: jobs that are timers on the paused clock, a `join`
//! that cannot hang the test, producers on threads outside the runtime, a count of how often a
//! future was polled, and joiners racing the last job on a multi-threaded runtime.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kata_harness::completion::completes_within;
use kata_harness::report::{fail, panic_text, panic_with_string};
use kata_harness::{Hint, Stage, stress};
use work_queue::WorkQueue;

/// Long enough for any test here; a `join` still waiting after this never returns.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `WorkQueue::new` for tests that are not about its errors.
#[track_caller]
pub fn queue(concurrency: usize, stage: Stage) -> WorkQueue {
    WorkQueue::new(concurrency).unwrap_or_else(|error| {
        fail(
            &format!("WorkQueue::new({concurrency})"),
            format_args!("Err({error:?})"),
            "Ok(a queue)",
            &stage.hint("WorkQueue::new(n) is Ok for every n ≥ 1: only 0 is an error"),
        )
    })
}

/// Waits for `queue.join()`, failing the test (instead of hanging) if it never returns.
#[track_caller]
pub fn join<'a>(queue: &'a WorkQueue, hint: &'a Hint) -> impl Future<Output = ()> + 'a {
    completes_within("join()", queue.join(), PATIENCE, hint)
}

/// The hint of a `join()` that never returned, for tests that are not about why.
pub fn never_returned(stage: Stage) -> Hint {
    stage.hint(
        "join() never returned: the count of unfinished jobs never came back to zero (a job \
         not counted as finished, a worker that died or stopped), or nothing woke join() when \
         it did",
    )
}

/// A job that sleeps for `length` from its first poll: an `async fn` runs nothing until it is
/// polled, so the sleep's deadline is set when the job starts, not when it is made.
pub async fn sleeping(length: Duration) {
    tokio::time::sleep(length).await;
}

/// What a panicking job panics with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// `panic!("boom")`: the payload is a `&'static str`.
    Literal,
    /// A formatted message: the payload is a `String`. (`panic!("boom {}", 7)` would not do:
    /// rustc folds a literal argument into the text and the payload is a `&str` again.)
    Formatted,
    /// `std::panic::panic_any(42)`: a payload that is not text at all.
    NotText,
}

/// Panics the way `payload` says; typed as returning a `u32`, like the jobs around it.
pub fn explode(payload: Payload) -> u32 {
    match payload {
        Payload::Literal => panic!("boom"),
        Payload::Formatted => panic_with_string(format_args!("boom {}", 7)),
        Payload::NotText => std::panic::panic_any(42_u32),
    }
}

/// Pushes `jobs` from two threads of their own, outside the runtime, taking turns: the first
/// thread pushes jobs 0, 2, 4, ..., the second 1, 3, 5, ..., each waiting for the other's push
/// before its next, so the push order is exactly the jobs' order. The threads are started from
/// the runtime's blocking pool, which holds the paused clock still while they push.
///
/// `Err` carries the panic of a `push` (that thread stops there, and so does the other one).
pub async fn push_from_two_threads<F>(queue: Arc<WorkQueue>, jobs: Vec<F>) -> Result<(), String>
where
    F: Future<Output = ()> + Send + 'static,
{
    let pushed = tokio::task::spawn_blocking(move || {
        // The index of the next job to push; `None` once a push panicked.
        let turn = Mutex::new(Some(0_usize));
        let changed = Condvar::new();
        let mut shares = [Vec::new(), Vec::new()];
        for (index, job) in jobs.into_iter().enumerate() {
            shares[index % 2].push((index, job));
        }
        std::thread::scope(|threads| {
            let producers: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    let (queue, turn, changed) = (&queue, &turn, &changed);
                    threads.spawn(move || -> Result<(), String> {
                        for (index, job) in share {
                            let waiting = turn.lock().unwrap();
                            let mut next = changed
                                .wait_while(waiting, |next| next.is_some_and(|next| next != index))
                                .unwrap();
                            if next.is_none() {
                                return Ok(());
                            }
                            let outcome = catch_unwind(AssertUnwindSafe(|| queue.push(job)));
                            *next = outcome.is_ok().then_some(index + 1);
                            changed.notify_all();
                            outcome.map_err(|panic| panic_text(panic.as_ref()))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            producers.into_iter().try_for_each(|producer| {
                producer
                    .join()
                    .unwrap_or_else(|panic| Err(panic_text(panic.as_ref())))
            })
        })
    })
    .await;
    pushed.unwrap_or_else(|error| Err(error.to_string()))
}

/// A `join()` that did not return on the multi-threaded runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stuck {
    /// The attempt it happened in (from 1).
    pub attempt: usize,
}

/// Real time after which a `join()` whose jobs are all done counts as never returning: far
/// beyond any scheduling delay of a loaded machine (a correct join returns within microseconds
/// of the last job), and it costs nothing unless a wake-up was lost.
const STUCK: Duration = Duration::from_secs(2);

/// The pending `join()` calls an attempt keeps: the newest ones. A call lost to the race is one
/// of the last few started before the count reached zero; older calls had registered for the
/// wake-up long before, and are dropped (a cancelled `join()`) to keep memory flat.
const KEPT: usize = 8;

/// How long the last job of an attempt waits for a `join()` call to be pending (the caller was
/// preempted, or `join()` never waits): then it ends anyway, and the attempt races nothing.
const ARMED_WAIT: Duration = Duration::from_millis(20);

/// Races `join()` against the end of the last job on a runtime of 4 worker threads, for at least
/// `attempts` attempts and at least `budget` of real time (whichever takes longer; a busy
/// machine makes attempts slow, and a lost wake-up takes a few hundred of them to show), and
/// says which attempt, if any, had a `join()` that never returned.
///
/// An attempt, on one queue of 2 workers: push 2 jobs, then start `join()` calls one after
/// another as fast as possible, polling each once, until one returns at once. The longer job
/// waits until a call is pending, spins a little (a different time each attempt) and ends, so
/// the count reaches zero on a worker thread while calls are being started on another. Then the
/// last calls still pending must all return. A `join()` that reads the count, then registers for
/// the wake-up, is caught when the last job ends between the two; so is a last job that wakes
/// the joiners before it brings the count down.
pub async fn join_race(attempts: usize, budget: Duration) -> Result<(), Stuck> {
    // The calls are made in the runtime's `block_on`, which is not one of its worker threads:
    // the workers that a push wakes are free to run the jobs meanwhile.
    stress::on_multi_thread(4, move || async move {
        let started = std::time::Instant::now();
        let queue = WorkQueue::new(2).expect("WorkQueue::new(2) is Ok");
        // The last attempt with a call pending.
        let armed = Arc::new(AtomicUsize::new(0));
        let mut attempt = 0;
        while attempt < attempts || started.elapsed() < budget {
            attempt += 1;
            queue.push(async {});
            let armed_now = armed.clone();
            queue.push(async move {
                let waiting = std::time::Instant::now();
                while armed_now.load(Ordering::Acquire) < attempt && waiting.elapsed() < ARMED_WAIT
                {
                    std::hint::spin_loop();
                }
                for _ in 0..attempt * 7 % 50 {
                    std::hint::spin_loop();
                }
            });
            let returned = stress::race_calls(
                KEPT,
                STUCK,
                || queue.join(),
                || armed.store(attempt, Ordering::Release),
            );
            if !returned.await {
                return Err(Stuck { attempt });
            }
        }
        Ok(())
    })
    .await
}

/// The hint for "fewer jobs ran at once than there are workers", by what was seen: one at a time
/// is the lock held while a job runs; more than one is workers missing.
pub fn fewer_at_once(stage: Stage, most: usize, workers: usize) -> Hint {
    if most <= 1 && workers > 1 {
        stage.hint(
            "only one job ran at a time: a worker keeps the queue's lock while its job runs. \
             `while let Some(job) = rx.lock().await.recv().await { job.await }` (or a `match` on \
             that expression) keeps the lock guard alive until the end of the loop body; take the \
             job in a statement of its own, `let job = rx.lock().await.recv().await;`, so the \
             guard is dropped before `job.await`",
        )
    } else {
        stage.hint(format!(
            "at most {most} of the {workers} workers ever ran a job: spawn `concurrency` workers \
             in new(), and let each take the next job as soon as its previous one ends"
        ))
    }
}
