//! How the pclimit suite drives a limiter: jobs that are timers on the paused clock (counted by a
//! concurrency probe or watched on a timeline), jobs the test ends by hand, and the two races
//! that need real threads (calls from two threads, a wait that starts as the last job ends).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use kata_harness::Hint;
use kata_harness::completion::completes_within;
use kata_harness::leaks::DropToken;
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check_eq, fail};
use kata_harness::stress::on_multi_thread;
use kata_harness::timing::Timeline;
use pclimit::{PCLimit, RunError, RunHandle};
use tokio::sync::oneshot;

/// Long enough for any test here; a handle still pending after this never resolves.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `PCLimit::new` for tests that are not about its errors.
#[track_caller]
pub fn limiter(concurrency: usize, hint: &Hint) -> PCLimit {
    PCLimit::new(concurrency).unwrap_or_else(|error| {
        fail(
            &format!("PCLimit::new({concurrency})"),
            format_args!("Err({error:?})"),
            "a limiter",
            &hint.instead("any limit from 1 up is valid: only 0 is an error"),
        )
    })
}

/// A job that counts itself in `probe` while it sleeps for `length` from its first poll, then
/// returns `value`.
pub fn timed<T>(
    probe: &ConcurrencyProbe,
    length: Duration,
    value: T,
) -> impl Future<Output = T> + use<T> {
    // `sleep` sets its deadline when it is *called*, so call it inside the job.
    probe.track(async move {
        tokio::time::sleep(length).await;
        value
    })
}

/// Job `index`: sleeps for `length`, watched on `timeline` as "job {index}" (started at its
/// first poll, then finished or dropped).
pub fn watched(
    timeline: &Timeline,
    index: usize,
    length: Duration,
) -> impl Future<Output = ()> + Send + use<> {
    timeline.watch(format!("job {index}"), async move {
        tokio::time::sleep(length).await;
    })
}

/// The jobs that started, in the order they started ("job 3", ...).
pub fn started(timeline: &Timeline) -> Vec<String> {
    timeline
        .labels()
        .into_iter()
        .filter_map(|label| label.strip_suffix(" started").map(str::to_owned))
        .collect()
}

/// When each job started, in the order they started.
pub fn start_times(timeline: &Timeline) -> Vec<Duration> {
    timeline
        .events()
        .into_iter()
        .filter(|(_, label)| label.ends_with(" started"))
        .map(|(at, _)| at)
        .collect()
}

/// A job that holds `token` (see `DropProbe`) for as long as the job exists.
pub async fn carrying<F: Future>(token: DropToken, job: F) -> F::Output {
    let _token = token;
    job.await
}

/// Ends a [`gated`] job: the test decides when, so no timer is involved.
#[derive(Debug)]
pub struct Gate(oneshot::Sender<()>);

impl Gate {
    pub fn open(self) {
        let _ = self.0.send(());
    }
}

/// A job that returns `value` once the test opens its gate (or drops it).
pub fn gated<T: Send + 'static>(value: T) -> (Gate, impl Future<Output = T> + Send + use<T>) {
    let (open, opened) = oneshot::channel();
    (Gate(open), async move {
        let _ = opened.await;
        value
    })
}

/// `limit.idle()` as a future that owns its limiter, so that a test can spawn it.
pub async fn idle_of(limit: PCLimit) {
    limit.idle().await;
}

/// Awaits a task the test spawned (a waiter, say), failing the test if it never ends; a panic
/// inside it is the test's panic.
pub async fn joined<T>(what: &str, task: tokio::task::JoinHandle<T>, hint: &Hint) -> T {
    match completes_within(what, task, PATIENCE, hint).await {
        Ok(output) => output,
        Err(error) => match error.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(error) => fail(what, format_args!("{error}"), "the task to finish", hint),
        },
    }
}

/// How a test takes a waiting job out of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    ClearQueue,
    Abort,
    DropHandle,
}

impl std::fmt::Display for Removal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Removal::ClearQueue => "clear_queue()",
            Removal::Abort => "abort()",
            Removal::DropHandle => "dropping its handle",
        })
    }
}

/// Asserts `(active_count, pending_count)`.
#[track_caller]
pub fn check_counts(when: &str, limit: &PCLimit, expected: (usize, usize), hint: &Hint) {
    check_eq(
        &format!("(active_count, pending_count) {when}"),
        (limit.active_count(), limit.pending_count()),
        expected,
        hint,
    );
}

/// Awaits a handle, failing the test (instead of hanging) if it never resolves.
pub async fn outcome<T>(handle: RunHandle<T>, hint: &Hint) -> Result<T, RunError> {
    let hint = hint.and(
        "a handle that never resolves usually means its job never got a slot (a slot kept by \
         a job that ended, or nobody started the next job), or its task waits for a message \
         nobody will send",
    );
    completes_within("awaiting a RunHandle", handle, PATIENCE, &hint).await
}

/// How a job panics.
#[derive(Debug, Clone, Copy)]
pub enum Panic {
    /// `panic!("job exploded")`: a `&'static str` payload.
    Literal,
    /// A `String` payload ("job 2 exploded"), as `panic!("job {}", n)` gives at run time.
    Formatted,
    /// `std::panic::panic_any(42)`: a payload that is not text at all.
    NotText,
}

/// A job's body that panics the way `how` says.
pub fn explode(how: Panic) -> u32 {
    match how {
        Panic::Literal => panic!("job exploded"),
        // rustc folds `panic!("job {} exploded", 2)` into a `&'static str`: only this makes a
        // real `String` payload.
        Panic::Formatted => {
            kata_harness::report::panic_with_string(format_args!("job {} exploded", 2))
        }
        Panic::NotText => std::panic::panic_any(42_i32),
    }
}

// ---------------------------------------------------------------------------------------------
// Races that need real threads (stress::on_multi_thread): on one thread tasks take turns in a
// fixed order, so neither of these can go wrong there.

/// The order `run` was called in and the order the jobs started in, for one round.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    pub calls: Vec<usize>,
    pub starts: Vec<usize>,
    /// Whether every handle resolved within 2 s of real time.
    pub finished: bool,
}

/// `rounds` rounds of: two tasks on a two-worker runtime call `run` on one `PCLimit::new(1)`,
/// `per_caller` times each, in bursts of three calls between yields. Each call is made under a
/// lock that also records it, so the calls have one order even across threads: the order `run`
/// took its place. Each job records its id when it starts, then yields twice before it ends.
pub async fn calls_from_two_threads(rounds: usize, per_caller: usize) -> Vec<Orders> {
    on_multi_thread(2, move || async move {
        let mut out = Vec::new();
        for _ in 0..rounds {
            let limit = PCLimit::new(1).expect("1 is a valid limit");
            let calls = Arc::new(Mutex::new(Vec::new()));
            let starts = Arc::new(Mutex::new(Vec::new()));
            let callers: Vec<_> = (0..2)
                .map(|caller| {
                    let (limit, calls, starts) = (limit.clone(), calls.clone(), starts.clone());
                    tokio::spawn(async move {
                        let mut handles = Vec::new();
                        for i in 0..per_caller {
                            let id = caller * per_caller + i;
                            let starts = starts.clone();
                            let job = async move {
                                starts.lock().unwrap().push(id);
                                tokio::task::yield_now().await;
                                tokio::task::yield_now().await;
                            };
                            {
                                let mut calls = calls.lock().unwrap();
                                handles.push(limit.run(job));
                                calls.push(id);
                            }
                            if i % 3 == 2 {
                                tokio::task::yield_now().await;
                            }
                        }
                        handles
                    })
                })
                .collect();
            let mut handles = Vec::new();
            for caller in callers {
                handles.extend(
                    caller
                        .await
                        .unwrap_or_else(|error| match error.try_into_panic() {
                            Ok(payload) => std::panic::resume_unwind(payload),
                            Err(error) => panic!("a caller task was cancelled: {error}"),
                        }),
                );
            }
            let all = futures::future::join_all(handles);
            let finished = tokio::time::timeout(Duration::from_secs(2), all)
                .await
                .is_ok();
            out.push(Orders {
                calls: calls.lock().unwrap().clone(),
                starts: starts.lock().unwrap().clone(),
                finished,
            });
            if !finished {
                break;
            }
        }
        out
    })
    .await
}

/// What [`race_the_last_job`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Race {
    /// Every wait that began before the last job ended was woken by its end, in every round run
    /// (as many as `budget` allowed).
    AllWoken { rounds: usize },
    /// In this round, a wait that began before the end was still waiting after it.
    Lost { round: usize },
    /// In this round, `idle()` did not return within 2 s although the job had ended.
    NeverIdle { round: usize },
}

/// `rounds` rounds of: one job runs on a worker thread of a two-worker runtime and ends while
/// `THREADS` threads call `idle()` over and over, each polling every call once (with a waker
/// that does nothing) and keeping the last few that did not return at once, until one does: the
/// limiter is idle. Once the job's task is over (its slot given back, the waiters told), every
/// kept wait must be ready.
///
/// More threads than cores get preempted at random points, which is what stretches a wait's few
/// instructions between "check" and "register for the wake-up" long enough for the job's end to
/// fall in between; each round also ends the job a little later than the one before. Stops
/// early, once `budget` of real time is spent, so that a loaded machine cannot make it hang.
pub async fn race_the_last_job(rounds: usize, budget: Duration) -> Race {
    on_multi_thread(2, move || async move {
        let began = Instant::now();
        for round in 0..rounds {
            if began.elapsed() > budget {
                return Race::AllWoken { rounds: round };
            }
            let limit = PCLimit::new(1).expect("1 is a valid limit");
            let waiting = Arc::new(AtomicUsize::new(0));
            let job = limit.run({
                let waiting = waiting.clone();
                let extra = round * 7919 % 2000;
                async move {
                    // Wait (on the worker's thread) until the waits have begun, then a little more.
                    let since = Instant::now();
                    while waiting.load(Ordering::SeqCst) < THREADS && since.elapsed() < GIVE_UP {
                        std::hint::spin_loop();
                    }
                    for step in 0..extra {
                        std::hint::black_box(step);
                    }
                }
            });
            let since = Instant::now();
            while limit.active_count() == 0 && since.elapsed() < GIVE_UP {
                tokio::task::yield_now().await;
            }
            let over = Arc::new(AtomicBool::new(false));
            let waiters: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (limit, waiting, over) = (limit.clone(), waiting.clone(), over.clone());
                    std::thread::spawn(move || wait_until_idle(&limit, &waiting, &over))
                })
                .collect();
            let finished = tokio::time::timeout(Duration::from_secs(2), job).await;
            over.store(true, Ordering::SeqCst);
            let seen: Vec<Option<bool>> = waiters
                .into_iter()
                .map(|waiter| {
                    waiter
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            if finished.is_err() || seen.contains(&None) {
                return Race::NeverIdle { round };
            }
            if seen.contains(&Some(true)) {
                return Race::Lost { round };
            }
        }
        Race::AllWoken { rounds }
    })
    .await
}

/// Threads that wait for the limiter at once in [`race_the_last_job`].
const THREADS: usize = 3;

/// One waiter thread of [`race_the_last_job`]: calls `idle()` until a call returns at once,
/// keeping the last calls that did not; once `over` (the job's task has ended), says whether
/// any of them is still waiting (`None`: no call ever returned).
fn wait_until_idle(limit: &PCLimit, waiting: &AtomicUsize, over: &AtomicBool) -> Option<bool> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut kept = VecDeque::new();
    waiting.fetch_add(1, Ordering::SeqCst);
    let since = Instant::now();
    loop {
        let mut wait = Box::pin(limit.idle());
        if wait.as_mut().poll(&mut cx).is_ready() {
            break;
        }
        kept.push_back(wait);
        if kept.len() > 16 {
            kept.pop_front();
        }
        if since.elapsed() > Duration::from_secs(2) {
            return None;
        }
    }
    while !over.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    Some(
        kept.iter_mut()
            .any(|wait| wait.as_mut().poll(&mut cx).is_pending()),
    )
}

/// How long the job waits for the waits to begin: a round that does not overlap proves nothing,
/// but must not hang.
const GIVE_UP: Duration = Duration::from_millis(20);
