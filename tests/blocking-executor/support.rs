//! How the blocking-executor suite looks at a computation: what it cost the runtime's thread, how
//! late a ticker beside it was, whether it stopped when dropped; and gated jobs for the pool.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Poll;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use blocking_executor::{
    BigNat, BlockingPool, Factorial, FactorialError, Progress, factorial_cancellable,
    factorial_offloaded,
};
use futures::FutureExt;
pub use kata_harness::blocking::{ThreadTimes, cost_of, runtime_cost};
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::fail;
use kata_harness::{Hint, ms};

// ---------------------------------------------------------------------------------------------
// Results.

/// A factorial as a report shows it: how many digits, how it starts, how many zeros end it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digits {
    pub count: usize,
    pub first: String,
    pub trailing_zeros: usize,
}

impl Digits {
    pub fn of(value: &BigNat) -> Self {
        let text = value.to_string();
        Self {
            count: text.len(),
            first: text.chars().take(20).collect(),
            trailing_zeros: text.len() - text.trim_end_matches('0').len(),
        }
    }

    /// The known digits of `n!` (worked out with another big-number library).
    pub fn of_factorial(n: u32) -> Self {
        let (count, first, trailing_zeros) = match n {
            0 | 1 => (1, "1", 0),
            20 => (19, "2432902008176640000", 4),
            25 => (26, "15511210043330985984", 6),
            1000 => (2568, "40238726007709377354", 249),
            10000 => (35660, "28462596809170545189", 2499),
            _ => panic!("the suite knows no digits of {n}!"),
        };
        Self {
            count,
            first: first.to_owned(),
            trailing_zeros,
        }
    }
}

/// The outcome of a computation as the checks compare it.
pub fn digits_of(result: &Result<BigNat, FactorialError>) -> Result<Digits, FactorialError> {
    result.as_ref().map(Digits::of).map_err(Clone::clone)
}

/// Polls `future` once, in the caller's task: what it does before it first waits.
pub async fn first_poll<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    futures::poll!(future.as_mut())
}

/// Awaits `future`; if it panics, fails the test with `what` and `hint` instead.
pub async fn without_panic<F: Future>(what: &str, future: F, hint: &Hint) -> F::Output {
    match std::panic::AssertUnwindSafe(future).catch_unwind().await {
        Ok(output) => output,
        Err(payload) => fail(
            what,
            format_args!(
                "it panicked: {:?}",
                kata_harness::report::panic_text(payload.as_ref())
            ),
            "an Err(BlockingError::Panicked { .. }) returned, not a panic",
            hint,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The two offloaded factorials of stage 2, to run the same checks on both.

#[derive(Debug, Clone, Copy)]
pub enum Offloaded {
    Plain,
    Cancellable,
}

impl Offloaded {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "factorial_offloaded",
            Self::Cancellable => "factorial_cancellable",
        }
    }

    pub async fn call(self, n: u32, progress: Progress) -> Result<BigNat, FactorialError> {
        match self {
            Self::Plain => factorial_offloaded(n, progress).await,
            Self::Cancellable => factorial_cancellable(n, progress).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a computation costs the runtime's thread.

// ---------------------------------------------------------------------------------------------
// A ticker beside a computation, on the real clock.

/// How often the ticker asks to tick.
pub const PERIOD: Duration = ms(20);

/// How late a ticker was while something ran beside it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lateness {
    /// The longest wait between two ticks beyond [`PERIOD`], net of the time the thread waited
    /// for a CPU (see [`ticker_beside`]).
    pub max: Duration,
    pub ticks: u32,
}

/// Runs `work` in the calling task beside a ticker task on the same thread, and says how late
/// the ticker was. Call it on the real clock.
///
/// The ticker sleeps until each instant of a 20 ms grid and measures the time since its last
/// tick. On a busy machine a thread that is ready to run may wait for a CPU for tens of
/// milliseconds (hundreds, under heavy load): that wait is the machine's doing, so it is taken
/// off each gap (Linux says how long the thread waited; elsewhere the gaps are taken whole).
/// What is left is time the thread was held: computing, or asleep in a blocking call.
pub async fn ticker_beside<F: Future>(work: F) -> (F::Output, Lateness) {
    let seen = Arc::new(Mutex::new(Lateness::default()));
    let ticker = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut next = tokio::time::Instant::now();
            let mut last = (Instant::now(), ThreadTimes::now().map(|times| times.waited));
            loop {
                next += PERIOD;
                tokio::time::sleep_until(next).await;
                let now = (Instant::now(), ThreadTimes::now().map(|times| times.waited));
                let waited = match (now.1, last.1) {
                    (Some(now), Some(last)) => now - last,
                    _ => Duration::ZERO,
                };
                let late = (now.0 - last.0).saturating_sub(waited + PERIOD);
                let mut seen = seen.lock().unwrap();
                seen.max = seen.max.max(late);
                seen.ticks += 1;
                last = now;
            }
        }
    });
    // Let the ticker tick once before the work starts: a ticker that has not started yet cannot
    // be late.
    while seen.lock().unwrap().ticks == 0 {
        tokio::time::sleep(ms(1)).await;
    }
    let output = work.await;
    // One more period, so a tick due during the work's last stretch is seen too.
    tokio::time::sleep(PERIOD + ms(5)).await;
    ticker.abort();
    let lateness = *seen.lock().unwrap();
    (output, lateness)
}

/// `(n, repeats)`: factorials of `n` to compute `repeats` times so that the computation costs
/// about `target` of CPU time on this machine, in this build. It computes them for about 50 ms
/// to find out: the system's CPU time is only as fresh as its last tick, a few milliseconds.
pub fn calibrate(n: u32, target: Duration) -> (u32, u32) {
    const SAMPLE: Duration = ms(50);
    let (cpu, started) = (ThreadTimes::now().map(|times| times.cpu), Instant::now());
    let mut count = 0_u32;
    let spent = loop {
        let _ = Factorial::new(n, Progress::new()).map(Factorial::run);
        count += 1;
        let spent = match ThreadTimes::now().map(|times| times.cpu).zip(cpu) {
            Some((now, before)) => now - before,
            None => started.elapsed(),
        };
        if spent >= SAMPLE {
            break spent;
        }
    };
    let once = (spent / count).max(Duration::from_micros(1));
    let repeats = target
        .as_nanos()
        .div_ceil(once.as_nanos())
        .clamp(1, 100_000);
    (n, repeats as u32)
}

// ---------------------------------------------------------------------------------------------
// Waiting for blocking work, on the real clock.

/// How long a test waits for something that should happen at once (a job starting on a pool
/// thread, a loop stopping, a queued job running): long enough for a loaded machine, short
/// enough to fail fast. Real time in the real-time tests, virtual time in the others.
pub const PATIENCE: Duration = ms(2000);

/// Polls `condition` every millisecond until it holds; fails the test if it still does not after
/// [`PATIENCE`]. Call it on the real clock: the paused one stands still while blocking work runs.
pub async fn wait_until(
    what: &str,
    mut condition: impl FnMut() -> bool,
    now: impl Fn() -> String,
    hint: &Hint,
) {
    let started = Instant::now();
    while !condition() {
        if started.elapsed() > PATIENCE {
            fail(
                &format!("{what}: did not happen"),
                format_args!("after {PATIENCE:?}: {}", now()),
                "at once (within a few milliseconds)",
                hint,
            );
        }
        tokio::time::sleep(ms(1)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs for the pool, that wait until the test lets them go.

/// What a job did, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Started(usize),
    Ended(usize),
}

/// Jobs for a [`BlockingPool`]: each counts itself in a probe while it runs, logs when it starts
/// and ends and on which thread, and a gated one waits until the test lets it go.
#[derive(Debug, Clone)]
pub struct Jobs {
    inner: Arc<JobsInner>,
}

#[derive(Debug)]
struct JobsInner {
    probe: ConcurrencyProbe,
    log: Mutex<Vec<Event>>,
    /// Jobs the test has let go and that have not passed the gate yet.
    tickets: Mutex<usize>,
    opened: Condvar,
    /// Set once a job ran on the test's own thread.
    on_runtime_thread: AtomicBool,
    runtime_thread: ThreadId,
}

/// How long a gated job waits for the test at most: long after any test would let it go, so a
/// job can never keep a thread for ever.
const GATE_PATIENCE: Duration = ms(3000);

impl Jobs {
    /// Jobs whose "runtime thread" is the calling one.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(JobsInner {
                probe: ConcurrencyProbe::new(),
                log: Mutex::new(Vec::new()),
                tickets: Mutex::new(0),
                opened: Condvar::new(),
                on_runtime_thread: AtomicBool::new(false),
                runtime_thread: thread::current().id(),
            }),
        }
    }

    /// Job `id`: starts, waits until the test lets it go, ends, returns `id`.
    pub fn gated(&self, id: usize) -> impl FnOnce() -> usize + Send + 'static {
        let jobs = self.clone();
        move || jobs.body(id, true)
    }

    /// Job `id`, which ends as soon as it starts.
    pub fn quick(&self, id: usize) -> impl FnOnce() -> usize + Send + 'static {
        let jobs = self.clone();
        move || jobs.body(id, false)
    }

    fn body(&self, id: usize, gated: bool) -> usize {
        let inner = &self.inner;
        if thread::current().id() == inner.runtime_thread {
            inner.on_runtime_thread.store(true, Ordering::SeqCst);
        }
        let _in_flight = inner.probe.enter();
        self.log().push(Event::Started(id));
        if gated {
            let tickets = inner.tickets.lock().unwrap();
            let (mut tickets, _) = inner
                .opened
                .wait_timeout_while(tickets, GATE_PATIENCE, |tickets| *tickets == 0)
                .unwrap();
            *tickets = tickets.saturating_sub(1);
        }
        self.log().push(Event::Ended(id));
        id
    }

    fn log(&self) -> MutexGuard<'_, Vec<Event>> {
        self.inner.log.lock().unwrap()
    }

    /// Lets `count` waiting (or future) gated jobs go.
    pub fn release(&self, count: usize) {
        *self.inner.tickets.lock().unwrap() += count;
        self.inner.opened.notify_all();
    }

    pub fn probe(&self) -> &ConcurrencyProbe {
        &self.inner.probe
    }

    /// Every start and end so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.log().clone()
    }

    /// The jobs that started, in order.
    pub fn started(&self) -> Vec<usize> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Started(id) => Some(id),
                Event::Ended(_) => None,
            })
            .collect()
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.inner.probe.current()
    }

    /// Jobs that ended so far.
    pub fn ended(&self) -> usize {
        self.inner.probe.finished()
    }

    /// Whether some job ran on the runtime's thread instead of the blocking pool's.
    pub fn ran_on_runtime_thread(&self) -> bool {
        self.inner.on_runtime_thread.load(Ordering::SeqCst)
    }

    /// What the jobs are doing, for a report.
    pub fn describe(&self) -> String {
        format!(
            "{} running, {} ended; events {:?}",
            self.running(),
            self.ended(),
            self.events()
        )
    }
}

/// A pool of `limit` slots, or the test fails.
pub fn pool(limit: usize, hint: &Hint) -> BlockingPool {
    BlockingPool::new(limit).unwrap_or_else(|error| {
        fail(
            &format!("BlockingPool::new({limit})"),
            format_args!("Err({error:?})"),
            "Ok(a pool)",
            hint,
        )
    })
}
