//! Each test's record, for the runner (`just test`, `just compare`, `just verify`).
//!
//! When `KATA_RECORD_DIR` is set, every [`run_test`](crate::run_test) writes its test's
//! [`Record`] there: once as `running` when it starts, then with how it ended, where and why it
//! failed, the real and virtual time it took, the peak heap of its account and the most jobs a
//! [`ConcurrencyProbe`](crate::probe::ConcurrencyProbe) saw in flight. The format belongs to the
//! dependency-free `kata-record` crate, which the runner reads it with.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use kata_record::{Clock, MAX_POINTS, Outcome, RECORD_DIR_VAR, Record, Stuck};

use crate::probe::ConcurrencyProbe;

/// Figures gathered while one test runs. Shared between the test's threads, hence atomics;
/// `u64::MAX` / `0` mean "not measured".
#[derive(Debug)]
pub(crate) struct Figures {
    virtual_ns: AtomicU64,
    peak_heap: AtomicU64,
    max_concurrency: AtomicUsize,
    /// The test's first probe, whose history the record keeps (for `just compare`'s chart).
    first_probe: Mutex<Option<ConcurrencyProbe>>,
}

impl Default for Figures {
    fn default() -> Self {
        Self {
            virtual_ns: AtomicU64::new(u64::MAX),
            peak_heap: AtomicU64::new(u64::MAX),
            max_concurrency: AtomicUsize::new(0),
            first_probe: Mutex::new(None),
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

    pub(crate) fn set_peak_heap(&self, bytes: usize) {
        self.peak_heap.store(bytes as u64, Ordering::Relaxed);
    }

    /// Called by probes on every job that enters them.
    pub(crate) fn observe_concurrency(&self, in_flight: usize) {
        self.max_concurrency.fetch_max(in_flight, Ordering::Relaxed);
    }

    /// Called by every probe when it is made; the first one's history is recorded.
    pub(crate) fn register_probe(&self, probe: &ConcurrencyProbe) {
        let mut first = self.first_probe.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(probe.clone());
        }
    }

    /// Copies the figures into `record`.
    pub(crate) fn fill(&self, record: &mut Record) {
        let measured = |value: u64| (value != u64::MAX).then_some(value);
        record.virtual_time =
            measured(self.virtual_ns.load(Ordering::Relaxed)).map(Duration::from_nanos);
        record.peak_heap = measured(self.peak_heap.load(Ordering::Relaxed));
        record.max_concurrency = match self.max_concurrency.load(Ordering::Relaxed) {
            0 => None,
            max => Some(max as u64),
        };
        let probe = self
            .first_probe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(probe) = probe {
            let history = probe.levels_over_time();
            // Thinned evenly when long: a chart a few dozen columns wide needs no more.
            let step = history.len().div_ceil(MAX_POINTS).max(1);
            record.concurrency = history
                .iter()
                .step_by(step)
                .chain(history.last().filter(|_| step > 1))
                .map(|&(at, level)| (at.as_millis() as u64, level as u64))
                .collect();
        }
    }
}

/// The directory records go to, from the environment.
pub(crate) fn dir_from_env() -> Option<PathBuf> {
    std::env::var_os(RECORD_DIR_VAR)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

/// Writes `record` into `dir`. A record that cannot be written is said on stderr once per test,
/// and costs the test nothing else: the runner then reports the test as unrecorded.
pub(crate) fn write(dir: &Path, record: &Record) {
    if let Err(error) = record.write(dir) {
        eprintln!(
            "kata-harness: cannot write the record of {} into {}: {error}",
            record.test,
            dir.display()
        );
    }
}

thread_local! {
    /// The figures of the test whose body runs on this thread.
    static CURRENT: RefCell<Option<Arc<Figures>>> = const { RefCell::new(None) };
}

/// Makes `figures` the current test's figures on this thread (the body's thread).
pub(crate) fn enter(figures: Arc<Figures>) {
    CURRENT.with(|current| *current.borrow_mut() = Some(figures));
}

/// The figures of the test running on this thread, if any.
pub(crate) fn current() -> Option<Arc<Figures>> {
    CURRENT.try_with(|current| current.borrow().clone()).ok()?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_figures_stay_unknown() {
        let mut record = Record::running("stage1_a");
        Figures::default().fill(&mut record);
        assert_eq!(record, Record::running("stage1_a"));
    }

    #[test]
    fn every_figure_is_copied() {
        let figures = Figures::default();
        figures.set_virtual(Duration::from_secs(1));
        figures.set_peak_heap(4096);
        figures.observe_concurrency(3);
        figures.observe_concurrency(2);
        let mut record = Record::running("stage2_b::case_1");
        figures.fill(&mut record);
        assert_eq!(record.virtual_time, Some(Duration::from_secs(1)));
        assert_eq!(record.peak_heap, Some(4096));
        assert_eq!(record.max_concurrency, Some(3));
    }
}
