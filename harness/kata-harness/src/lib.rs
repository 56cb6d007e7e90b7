//! The shared test harness of async-katas.
//!
//! Every kata suite (`tests/<kata>.rs`) runs against two crates, the learner's stub and the
//! reference solution, so its checks must be exact, instant and impossible to hang. This crate
//! gives them that:
//!
//! - [`test`] / [`run_test`]: each test runs on tokio's **paused clock** on its own thread, under a
//!   virtual-time limit (an async deadlock fails at once) and a **real-time watchdog** (a busy loop,
//!   a `std::sync` deadlock, a stuck `spawn_blocking` or a `yield_now` livelock fails within
//!   seconds, naming the test).
//! - [`timing`]: record virtual timestamps and assert a schedule or an elapsed time exactly.
//! - [`completion`]: "completes within" and "deadlocks" checks that say how many tasks are alive.
//! - [`files`]: a temporary directory per test, its listing, and paths shortened for reports.
//! - [`probe`]: a concurrency probe (never above the limit, and the limit is reached).
//! - [`heap`], [`leaks`]: per-test heap counters (blocking pool included), drop probes, task and
//!   listener baselines, RSS.
//! - [`blocking`]: a real-time heartbeat that catches code blocking the executor.
//! - [`record`]: each test's figures (times, peak heap, concurrency) for `just compare`.
//! - [`bench`]: median timings, Python peers and table rows for `just bench`.
//!
//! Every failing check panics with the same shape of message: what was checked, what was
//! expected, what happened, and a hint (see [`report`]). Learners read these more than any other
//! text in the repository, so each check takes a `hint` from the suite that knows the kata.

// Lets the attribute macro's `::kata_harness::...` paths resolve inside this crate too.
#[allow(unused_extern_crates)]
extern crate self as kata_harness;

pub mod bench;
pub mod blocking;
pub mod completion;
pub mod files;
pub mod heap;
pub mod leaks;
pub mod probe;
pub mod record;
pub mod report;
mod runner;
pub mod timing;

pub use kata_harness_macros::test;
pub use runner::{TestConfig, run_test};

/// `Duration::from_millis`, short enough to write schedules with.
pub const fn ms(millis: u64) -> std::time::Duration {
    std::time::Duration::from_millis(millis)
}
