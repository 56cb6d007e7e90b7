//! Heap checks: peak and live bytes of a block, per test.
//!
//! The counting itself lives in the small `kata-heap` crate (re-exported here): a global
//! allocator that counts per **account**, one account per kata test, joined by the test's thread
//! and its runtime's blocking pool, so `tokio::fs` and `spawn_blocking` allocations count as the
//! test's own. A suite installs it with [`install_allocator!`](crate::install_allocator), then
//! measures a block with [`measure_async`] and checks the [`HeapReport`] with the assertions
//! below.
//!
//! Every kata test also runs under a **memory ceiling** (see [`crate::TestConfig`]): a learner's
//! leak stops the test with its figures instead of filling the machine.

pub use kata_heap::{
    Account, CountingAllocator, HeapReport, HeapScope, bytes, is_installed, join, live_bytes,
    measure, measure_async,
};

use crate::hint::Hint;
use crate::report;

/// Installs [`CountingAllocator`] as the global allocator of the crate it is written in.
///
/// Write it once at the top of a suite: `kata_harness::install_allocator!();`
#[macro_export]
macro_rules! install_allocator {
    () => {
        #[global_allocator]
        static KATA_HARNESS_ALLOCATOR: $crate::heap::CountingAllocator =
            $crate::heap::CountingAllocator;
    };
}

/// Asserts that the block's peak stayed below `limit` bytes above where it started.
#[track_caller]
pub fn assert_peak_below(what: &str, report: HeapReport, limit: usize, hint: &Hint) {
    if report.peak_delta >= limit {
        report::fail(
            &format!("{what}: peak heap too high"),
            format_args!("{} at the peak", bytes(report.peak_delta as f64)),
            format_args!("below {}", bytes(limit as f64)),
            hint,
        );
    }
}

/// Asserts that two runs of the same work on inputs of different sizes peaked at about the same
/// heap (within `margin` of each other): what "memory does not grow with the input" means when
/// it is measured. `small` and `large` pair a label for the report ("8 MiB") with the figures.
#[track_caller]
pub fn assert_peak_independent(
    what: &str,
    small: (&str, HeapReport),
    large: (&str, HeapReport),
    margin: usize,
    hint: &Hint,
) {
    let ((small_label, small), (large_label, large)) = (small, large);
    if large.peak_delta.abs_diff(small.peak_delta) > margin {
        report::fail(
            &format!("{what}: peak heap changed with the input's size"),
            format_args!(
                "{} for {small_label}, {} for {large_label}",
                bytes(small.peak_delta as f64),
                bytes(large.peak_delta as f64)
            ),
            format_args!(
                "about the same peak for {small_label} and {large_label} (within {})",
                bytes(margin as f64)
            ),
            hint,
        );
    }
}

/// Asserts that the block left at most `tolerance` bytes more allocated than it found.
#[track_caller]
pub fn assert_live_back(what: &str, report: HeapReport, tolerance: usize, hint: &Hint) {
    if report.live_delta > tolerance as isize {
        report::fail(
            &format!("{what}: memory not given back"),
            format_args!("{} still allocated", bytes(report.live_delta as f64)),
            format_args!(
                "live heap back to its start (within {})",
                bytes(tolerance as f64)
            ),
            hint,
        );
    }
}
