//! Catching code that blocks the executor, three ways.
//!
//! An async runtime shares one thread among many tasks; a task that computes for 100 ms without
//! an `.await`, or calls `std::thread::sleep`, stops every other task for that long.
//!
//! - [`watch`]: a heartbeat asks to be woken every millisecond and measures, in **real** time,
//!   how late it was woken. A late heartbeat means something held the thread. It works on both
//!   clocks: on the paused clock a heartbeat costs no real time at all, so any real gap is
//!   blocking; on the real clock the gap is measured beyond the 1 ms it asked for.
//! - [`runtime_cost`] and [`cost_of`]: what a future cost the runtime's thread, and what a piece
//!   of work costs, in CPU time. Work moved to the blocking pool (`spawn_blocking`) does not
//!   count. [`busy_during`] is tokio's own figure (real time while not parked).
//!
//! A machine busy with other work makes a thread that is ready to run wait for a CPU, sometimes
//! for hundreds of milliseconds: that wait is the machine's doing, not the code's. Where the
//! system says how long a thread waited and how much CPU it used (Linux:
//! `/proc/thread-self/schedstat`), the heartbeat's gaps leave the wait out and the costs are CPU
//! time, so the checks hold on a loaded machine; elsewhere they are plain real time.
//! - [`TurnCounter`]: a companion task that counts how often it got the thread. On the
//!   current-thread runtime that count is exact and needs no clock: code that never yields leaves
//!   it at 0, code that yields every step gives it a turn per step.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::hint::Hint;
use crate::report::{self, Kind};

/// How often the heartbeat asks to run.
const BEAT: Duration = Duration::from_millis(1);

/// The calling thread's CPU time and the time it spent ready to run while others ran, so far,
/// where the system says (Linux: the first two figures of `/proc/thread-self/schedstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadTimes {
    pub cpu: Duration,
    pub waited: Duration,
}

impl ThreadTimes {
    /// The calling thread's figures, or `None` where the system does not give them.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut figures = stat
            .split_whitespace()
            .map(|figure| figure.parse::<u64>().ok());
        Some(Self {
            cpu: Duration::from_nanos(figures.next()??),
            waited: Duration::from_nanos(figures.next()??),
        })
    }
}

/// Time the calling thread waited for a CPU between `then` and now (zero where unknown).
fn waited_since(then: Option<ThreadTimes>) -> Duration {
    ThreadTimes::now()
        .zip(then)
        .map_or(Duration::ZERO, |(now, then)| {
            now.waited.saturating_sub(then.waited)
        })
}

/// What the heartbeat saw while the measured future ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingReport {
    /// The largest real-time delay of a heartbeat beyond its schedule.
    pub max_gap: Duration,
    /// Heartbeats that ran.
    pub beats: u64,
}

/// Runs `future` beside a heartbeat and reports the largest real-time gap between beats.
///
/// The future runs in the calling task; the heartbeat ends when it does. The first gap is
/// measured from before the future's first poll, so a future that blocks at once is caught too.
/// On the paused clock the heartbeat is a timer every virtual millisecond, so wrap only futures
/// that finish.
pub async fn watch<F: Future>(future: F) -> (F::Output, BlockingReport) {
    let report = Cell::new(BlockingReport {
        max_gap: Duration::ZERO,
        beats: 0,
    });
    // Taken before anything is polled: the first heartbeat's wait counts from here.
    let last_beat = Cell::new((Instant::now(), ThreadTimes::now()));
    let gap_so_far = || {
        let (at, times) = last_beat.get();
        // Time spent waiting for a CPU is the machine's load, not the code's doing.
        let gap = at
            .elapsed()
            .saturating_sub(BEAT)
            .saturating_sub(waited_since(times));
        let mut seen = report.get();
        seen.max_gap = seen.max_gap.max(gap);
        report.set(seen);
    };
    let heartbeat = async {
        loop {
            tokio::time::sleep(BEAT).await;
            gap_so_far();
            let mut seen = report.get();
            seen.beats += 1;
            report.set(seen);
            last_beat.set((Instant::now(), ThreadTimes::now()));
        }
    };
    tokio::pin!(future);
    let mut heartbeat = Box::pin(heartbeat);
    let output = tokio::select! {
        // `biased`: poll the measured future first, so the heartbeat never delays it.
        biased;
        output = &mut future => output,
        never = &mut heartbeat => never,
    };
    // A future that blocked and then finished in the same poll gave the heartbeat no turn:
    // the time since the last beat is a gap too.
    gap_so_far();
    drop(heartbeat);
    (output, report.get())
}

/// Asserts that nothing held the thread for `limit` or longer.
#[track_caller]
pub fn assert_not_blocked(what: &str, report: BlockingReport, limit: Duration, hint: &Hint) {
    if report.max_gap >= limit {
        report::fail_as(
            Kind::Blocked,
            &format!("{what}: blocked the executor"),
            format_args!(
                "a heartbeat was {:?} late ({} beats)",
                report.max_gap, report.beats
            ),
            format_args!("no heartbeat delayed by {limit:?} or more (real time)"),
            &hint.to_string(),
        );
    }
}

/// Asserts that the runtime's thread spent less than `limit` on a piece of work: a failure is
/// recorded as a blocked executor, the cause that explains the timing failures around it.
#[track_caller]
pub fn assert_cost_below(what: &str, cost: Cost, limit: Duration, hint: &Hint) {
    if cost.figure() >= limit {
        report::fail_as(
            Kind::Blocked,
            &format!("{what}: the runtime's thread did the work"),
            format_args!("{cost}: every other task waited that long"),
            format_args!("the runtime's thread to spend under {limit:.1?} on it"),
            &hint.to_string(),
        );
    }
}

/// Asserts that the runtime's thread was busy (tokio's busy time: real time while not parked)
/// for less than `limit`: what catches a blocking *wait* (a `std::fs` read of a slow pipe, a
/// `std::thread::sleep`), which costs no CPU time. A failure is recorded as a blocked executor.
#[track_caller]
pub fn assert_busy_below(what: &str, busy: Duration, limit: Duration, hint: &Hint) {
    if busy >= limit {
        report::fail_as(
            Kind::Blocked,
            &format!("{what}: blocked the executor"),
            format_args!("busy for {busy:.1?}: the thread was held, and every other task waited"),
            format_args!("the runtime's thread busy for under {limit:.1?}"),
            &hint.to_string(),
        );
    }
}

/// Time the runtime's first worker thread has spent running tasks, as tokio counts it (real
/// time). On the current-thread runtime of a kata test, that is the test's one thread.
pub fn runtime_busy() -> Duration {
    tokio::runtime::Handle::current()
        .metrics()
        .worker_total_busy_duration(0)
}

/// Lets the runtime park once: tokio adds up a stretch of busy time when its thread parks.
async fn park() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Awaits `future` and says how long the runtime's thread was busy meanwhile (real time): what
/// runs on the blocking pool does not count, what runs in async code does.
pub async fn busy_during<F: Future>(future: F) -> (F::Output, Duration) {
    park().await;
    let before = runtime_busy();
    let output = future.await;
    park().await;
    (output, runtime_busy() - before)
}

/// What a piece of work cost the runtime's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// CPU time of the thread, where the system says (see [`ThreadTimes`]).
    pub cpu: Option<Duration>,
    /// tokio's busy time of the thread (real time while not parked, waits for a CPU included).
    pub busy: Duration,
}

impl Cost {
    /// The figure to compare: the smaller of the two measures where there are both. Busy time is
    /// exact but counts the time the thread lost to other threads on a loaded machine; the CPU
    /// time the system reports is blind to load but only as fresh as its last scheduler tick
    /// (a few milliseconds).
    pub fn figure(self) -> Duration {
        self.cpu.map_or(self.busy, |cpu| cpu.min(self.busy))
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cpu {
            Some(cpu) => write!(f, "{cpu:.1?} of CPU time (busy for {:.1?})", self.busy),
            None => write!(f, "busy for {:.1?}", self.busy),
        }
    }
}

/// Awaits `future` and says what it cost the runtime's thread (in a kata test, the test's own
/// thread: the runtime is a current-thread one). Compare it with [`cost_of`] the same work.
pub async fn runtime_cost<F: Future>(future: F) -> (F::Output, Cost) {
    let before = ThreadTimes::now();
    let (output, busy) = busy_during(future).await;
    let cpu = ThreadTimes::now()
        .zip(before)
        .map(|(after, before)| after.cpu.saturating_sub(before.cpu));
    (output, Cost { cpu, busy })
}

/// What `work` costs on this thread: CPU time where the system says, real time otherwise (the
/// same measure as [`Cost::figure`]).
pub fn cost_of(work: impl FnOnce()) -> Duration {
    let (before, started) = (ThreadTimes::now(), Instant::now());
    work();
    match ThreadTimes::now().zip(before) {
        Some((after, before)) => after.cpu.saturating_sub(before.cpu),
        None => started.elapsed(),
    }
}

/// A companion task that takes a turn every time the runtime lets it run, and counts them.
///
/// It yields after every turn, so beside code that yields it gets about one turn per yield,
/// and beside code that never yields it gets none at all. Stop it with [`TurnCounter::stop`]
/// (dropping the counter stops it too).
///
/// While it runs a task is always ready, so the paused clock cannot jump ahead: count turns
/// beside code that yields (`yield_now`, `consume_budget`), not beside code that sleeps.
#[derive(Debug)]
pub struct TurnCounter {
    turns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TurnCounter {
    /// Spawns the companion on the current runtime. It takes its first turn once the caller
    /// yields.
    pub fn spawn() -> Self {
        let turns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (turns, stop) = (turns.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    turns.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        Self { turns, stop, task }
    }

    /// Turns taken so far.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }

    /// Stops the companion and returns how many turns it took.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let turns = self.turns();
        self.task.abort();
        turns
    }
}

impl Drop for TurnCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
