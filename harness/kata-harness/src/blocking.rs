//! Catching code that blocks the executor, three ways.
//!
//! An async runtime shares one thread among many tasks; a task that computes for 100 ms without
//! an `.await`, or calls `std::thread::sleep`, stops every other task for that long.
//!
//! - [`watch`]: a heartbeat asks to be woken every millisecond and measures, in **real** time,
//!   how late it was woken. A late heartbeat means something held the thread. It works on both
//!   clocks: on the paused clock a heartbeat costs no real time at all, so any real gap is
//!   blocking; on the real clock the gap is measured beyond the 1 ms it asked for.
//! - [`busy_during`]: how long the runtime's thread was busy running tasks while a future ran, as
//!   tokio counts it. Work moved to the blocking pool (`spawn_blocking`) does not count.
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
    let last_beat = Cell::new(Instant::now());
    let gap_so_far = || {
        let gap = last_beat.get().elapsed().saturating_sub(BEAT);
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
            last_beat.set(Instant::now());
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
