//! Catching code that blocks the executor.
//!
//! An async runtime shares one thread among many tasks; a task that computes for 100 ms without
//! an `.await`, or calls `std::thread::sleep`, stops every other task for that long. To see it, a
//! heartbeat task asks to be woken every millisecond and measures, in **real** time, how late it
//! was woken. A late heartbeat means something held the thread.
//!
//! It works on both clocks. On the paused clock a heartbeat costs no real time at all, so any
//! real gap is blocking; on the real clock the gap is measured beyond the 1 ms it asked for.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::report;

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
/// The future runs in the calling task; the heartbeat ends when it does. Note that on the paused
/// clock the heartbeat is a timer every virtual millisecond, so wrap only futures that finish.
pub async fn watch<F: Future>(future: F) -> (F::Output, BlockingReport) {
    let mut report = BlockingReport {
        max_gap: Duration::ZERO,
        beats: 0,
    };
    let heartbeat = async {
        loop {
            let before = Instant::now();
            tokio::time::sleep(BEAT).await;
            let gap = before.elapsed().saturating_sub(BEAT);
            report.max_gap = report.max_gap.max(gap);
            report.beats += 1;
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
    // The heartbeat borrows `report`; end that borrow before reading it.
    drop(heartbeat);
    (output, report)
}

/// Asserts that nothing held the thread for `limit` or longer.
#[track_caller]
pub fn assert_not_blocked(what: &str, report: BlockingReport, limit: Duration, hint: &str) {
    if report.max_gap >= limit {
        report::fail(
            &format!("{what}: blocked the executor"),
            format_args!("no heartbeat delayed by {limit:?} or more (real time)"),
            format_args!(
                "a heartbeat was {:?} late ({} beats)",
                report.max_gap, report.beats
            ),
            hint,
        );
    }
}
