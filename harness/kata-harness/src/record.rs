//! Figures of each test, written for `just compare` to read.
//!
//! When `KATA_RECORD_DIR` is set (the runner sets it; nobody else needs to), every
//! [`run_test`](crate::run_test) writes one small file there when its test ends: how it ended,
//! the real and virtual time it took, the peak heap of its account (when the suite installs the
//! counting allocator) and the most jobs a [`ConcurrencyProbe`](crate::probe::ConcurrencyProbe)
//! saw in flight at once (when the suite uses one). The runner runs the same suite on the
//! learner's crate and on the reference and lays the two sets side by side.
//!
//! The format is plain `key=value` lines, so the runner reads it without depending on this
//! crate (and so without building tokio):
//!
//! ```text
//! test=stage1_ticks::case_2_one_second
//! outcome=passed            (passed | failed | deadlock | hung)
//! real_ns=1834021
//! virtual_ns=1000000000     (absent when the test hung: its clock never stopped)
//! peak_heap=52113           (absent without the counting allocator)
//! max_concurrency=4         (absent without a concurrency probe)
//! ```

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The environment variable naming the directory records go to.
pub const RECORD_DIR_VAR: &str = "KATA_RECORD_DIR";

/// How a test ended, as the harness saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Passed,
    Failed,
    Deadlock,
    Hung,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Deadlock => "deadlock",
            Self::Hung => "hung",
        }
    }
}

/// Figures gathered while one test runs. Shared between the test's threads, hence atomics;
/// `u64::MAX` / `0` mean "not measured".
#[derive(Debug)]
pub(crate) struct Figures {
    virtual_ns: AtomicU64,
    real_ns: AtomicU64,
    peak_heap: AtomicU64,
    max_concurrency: AtomicUsize,
}

impl Default for Figures {
    fn default() -> Self {
        Self {
            virtual_ns: AtomicU64::new(u64::MAX),
            real_ns: AtomicU64::new(u64::MAX),
            peak_heap: AtomicU64::new(u64::MAX),
            max_concurrency: AtomicUsize::new(0),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX - 1)
}

impl Figures {
    pub(crate) fn set_virtual(&self, elapsed: Duration) {
        self.virtual_ns.store(nanos(elapsed), Ordering::Relaxed);
    }

    pub(crate) fn set_real(&self, elapsed: Duration) {
        self.real_ns.store(nanos(elapsed), Ordering::Relaxed);
    }

    pub(crate) fn set_peak_heap(&self, bytes: usize) {
        self.peak_heap.store(bytes as u64, Ordering::Relaxed);
    }

    /// Called by probes on every job that enters them.
    pub(crate) fn observe_concurrency(&self, in_flight: usize) {
        self.max_concurrency.fetch_max(in_flight, Ordering::Relaxed);
    }

    /// The file's text for `test`, which ended as `ending`.
    fn render(&self, test: &str, ending: Ending) -> String {
        let mut text = format!("test={test}\noutcome={}\n", ending.as_str());
        let mut field = |key: &str, value: u64| {
            if value != u64::MAX {
                let _ = writeln!(text, "{key}={value}");
            }
        };
        field("real_ns", self.real_ns.load(Ordering::Relaxed));
        field("virtual_ns", self.virtual_ns.load(Ordering::Relaxed));
        field("peak_heap", self.peak_heap.load(Ordering::Relaxed));
        match self.max_concurrency.load(Ordering::Relaxed) {
            0 => {}
            max => field("max_concurrency", max as u64),
        }
        text
    }

    /// Writes the record of `test` into `dir`. A record that cannot be written costs the
    /// comparison one row, never the test its result, so errors are ignored.
    pub(crate) fn write(&self, dir: &Path, test: &str, ending: Ending) {
        let file = dir.join(format!("{}.txt", test.replace("::", "--")));
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(file, self.render(test, ending));
    }
}

/// The directory records go to, from the environment.
pub(crate) fn dir_from_env() -> Option<PathBuf> {
    std::env::var_os(RECORD_DIR_VAR)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

thread_local! {
    /// The figures of the test whose body runs on this thread, if it is recorded.
    static CURRENT: RefCell<Option<Arc<Figures>>> = const { RefCell::new(None) };
}

/// Makes `figures` the current test's figures on this thread (the body's thread).
pub(crate) fn enter(figures: Arc<Figures>) {
    CURRENT.with(|current| *current.borrow_mut() = Some(figures));
}

/// The figures of the test running on this thread, if it is being recorded.
pub(crate) fn current() -> Option<Arc<Figures>> {
    CURRENT.try_with(|current| current.borrow().clone()).ok()?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_figures_are_left_out() {
        let figures = Figures::default();
        figures.set_real(Duration::from_millis(2));
        assert_eq!(
            figures.render("stage1_a", Ending::Hung),
            "test=stage1_a\noutcome=hung\nreal_ns=2000000\n"
        );
    }

    #[test]
    fn every_figure_is_written() {
        let figures = Figures::default();
        figures.set_real(Duration::from_micros(5));
        figures.set_virtual(Duration::from_secs(1));
        figures.set_peak_heap(4096);
        figures.observe_concurrency(3);
        figures.observe_concurrency(2);
        assert_eq!(
            figures.render("stage2_b::case_1", Ending::Passed),
            "test=stage2_b::case_1\noutcome=passed\nreal_ns=5000\nvirtual_ns=1000000000\n\
             peak_heap=4096\nmax_concurrency=3\n"
        );
    }
}
