//! The shared test harness of async-katas.
//!
//! Every kata suite (`tests/<kata>.rs`) runs against two crates, the learner's stub and the
//! reference solution, so its checks must be exact, instant and impossible to hang. This crate
//! gives them that:
//!
//! - [`test`] / [`run_test`]: each test runs on tokio's **paused clock** on its own thread, under a
//!   virtual-time limit (an async deadlock fails at once), a **real-time watchdog** (a busy loop,
//!   a `std::sync` deadlock, a stuck `spawn_blocking` or a `yield_now` livelock fails within
//!   seconds, naming the test and saying which kind of hang it was) and a **memory ceiling**.
//! - [`hint`] and [`report`]: the hints (each knows its kata's README section) and the one shape
//!   of every failure; `check_eq`, `check_seq`, `check_bytes`.
//! - [`timing`]: record virtual timestamps, mark when futures start, finish or are dropped, and
//!   assert a schedule or an elapsed time exactly.
//! - [`completion`]: "completes within" and "deadlocks" checks that say how many tasks are alive.
//! - [`files`]: a temporary directory per test, named pipes fed on cue, unreadable files, and
//!   paths shortened for reports; [`data`]: repeatable random bytes and log-like text.
//! - [`probe`]: a concurrency probe (never above the limit, and the limit is reached).
//! - [`heap`], [`leaks`]: per-test heap counters (blocking pool included), drop probes, task and
//!   listener baselines, RSS.
//! - [`blocking`]: a real-time heartbeat, the runtime's busy time and a turn-counting companion,
//!   which catch code that blocks the executor.
//! - [`wakers`]: wakers that count their wakes, for futures written by hand; [`stress`]: a piece
//!   of a test on a multi-threaded runtime, where races can happen.
//! - [`record`]: each test's record (outcome, message, figures) for the runner.
//!
//! Every check takes its arguments in one order, **what, actual, expected, hint**, and fails with
//! one shape of message: what was checked, what was expected, what happened, and a hint that
//! points at the README (see [`report`]). Learners read these more than any other text in the
//! repository.

// Lets the attribute macro's `::kata_harness::...` paths resolve inside this crate too.
#[allow(unused_extern_crates)]
extern crate self as kata_harness;

pub mod blocking;
pub mod completion;
pub mod data;
pub mod files;
pub mod heap;
pub mod hint;
pub mod leaks;
pub mod probe;
pub mod record;
pub mod report;
mod runner;
pub mod stress;
pub mod timing;
pub mod wakers;

pub use hint::{Hint, Stage};
pub use kata_harness_macros::test;
pub use runner::{TestConfig, file_size_limited, in_own_process, run_test};

/// `Duration::from_millis`, short enough to write schedules with.
pub const fn ms(millis: u64) -> std::time::Duration {
    std::time::Duration::from_millis(millis)
}
