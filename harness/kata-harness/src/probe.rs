//! A concurrency probe: how many jobs were in flight at once, and when.
//!
//! A limiter has two ways to be wrong: it lets too many jobs run (the limit is not enforced) or
//! it lets too few run (it is secretly sequential, or leaks slots). [`ConcurrencyProbe::assert_limit`]
//! checks both. Jobs enter the probe through an RAII [`ProbeGuard`], so a job that panics or is
//! cancelled still leaves it: the probe never blames a limiter for the test's own bookkeeping.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::hint::Hint;
use crate::report;

#[derive(Debug)]
struct State {
    origin: Instant,
    current: usize,
    max: usize,
    /// Virtual time at which `max` was first reached.
    max_at: Duration,
    started: usize,
    finished: usize,
    /// `(virtual time, jobs in flight)` after every change.
    history: Vec<(Duration, usize)>,
}

/// Counts jobs in flight; clone it into every job.
#[derive(Debug, Clone)]
pub struct ConcurrencyProbe {
    state: Arc<Mutex<State>>,
    /// The figures of the test that made the probe, when `just compare` records them.
    figures: Option<Arc<crate::record::Figures>>,
}

/// Proof that a job is in flight; leaving the probe happens on drop, so also on panic or cancel.
#[derive(Debug)]
#[must_use = "the job leaves the probe when the guard is dropped"]
pub struct ProbeGuard {
    probe: ConcurrencyProbe,
}

impl Default for ConcurrencyProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl ConcurrencyProbe {
    /// A probe whose history starts now (virtual time).
    pub fn new() -> Self {
        let state = State {
            origin: Instant::now(),
            current: 0,
            max: 0,
            max_at: Duration::ZERO,
            started: 0,
            finished: 0,
            history: Vec::new(),
        };
        let probe = Self {
            state: Arc::new(Mutex::new(state)),
            figures: crate::record::current(),
        };
        if let Some(figures) = &probe.figures {
            figures.register_probe(&probe);
        }
        probe
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("probe poisoned")
    }

    /// Marks a job as started; it finishes when the guard drops.
    pub fn enter(&self) -> ProbeGuard {
        let mut state = self.lock();
        let at = state.origin.elapsed();
        state.current += 1;
        state.started += 1;
        if state.current > state.max {
            state.max = state.current;
            state.max_at = at;
        }
        let current = state.current;
        state.history.push((at, current));
        if let Some(figures) = &self.figures {
            figures.observe_concurrency(current);
        }
        ProbeGuard {
            probe: self.clone(),
        }
    }

    /// Wraps `job` so it counts as in flight from its first poll until it finishes or is dropped.
    pub fn track<F: Future>(&self, job: F) -> impl Future<Output = F::Output> + use<F> {
        let probe = self.clone();
        async move {
            let _guard = probe.enter();
            job.await
        }
    }

    /// Jobs in flight now.
    pub fn current(&self) -> usize {
        self.lock().current
    }

    /// The most jobs ever in flight at once.
    pub fn max(&self) -> usize {
        self.lock().max
    }

    /// Jobs that have started / finished so far.
    pub fn started(&self) -> usize {
        self.lock().started
    }

    /// Jobs that have finished (or were dropped) so far.
    pub fn finished(&self) -> usize {
        self.lock().finished
    }

    /// `(virtual time since the probe was made, jobs in flight)` after every change.
    pub fn history(&self) -> Vec<(Duration, usize)> {
        self.lock().history.clone()
    }

    /// The in-flight counts only, with consecutive repeats at one instant folded to the last one:
    /// the sequence a reader would describe ("1, 2, 3, 2, 3, 0").
    pub fn levels(&self) -> Vec<usize> {
        let history = self.history();
        let mut out: Vec<usize> = Vec::new();
        for (i, &(at, level)) in history.iter().enumerate() {
            let next_same_instant = history.get(i + 1).is_some_and(|&(next, _)| next == at);
            if !next_same_instant && out.last() != Some(&level) {
                out.push(level);
            }
        }
        out
    }

    /// The in-flight count at every instant something changed, with changes at one instant folded
    /// to where they ended: `[(0ms, 4), (10ms, 3), (40ms, 1)]`. Unlike [`levels`](Self::levels),
    /// an instant where the count went down and up again (one job ends, the next starts) is kept,
    /// so a suite can assert how a limit was followed over time.
    pub fn levels_over_time(&self) -> Vec<(Duration, usize)> {
        let mut out: Vec<(Duration, usize)> = Vec::new();
        for (at, level) in self.history() {
            match out.last_mut() {
                Some(last) if last.0 == at => last.1 = level,
                _ => out.push((at, level)),
            }
        }
        out
    }

    /// Asserts that at most `limit` jobs ever ran at once.
    #[track_caller]
    pub fn assert_never_above(&self, what: &str, limit: usize, hint: &Hint) {
        let state = self.lock();
        if state.max > limit {
            let (max, at) = (state.max, state.max_at);
            drop(state);
            report::fail(
                &format!("{what}: too many jobs at once"),
                format_args!("{max} in flight at {:?} (virtual)", crate::timing::At(at)),
                format_args!("at most {limit} in flight"),
                hint,
            );
        }
    }

    /// Asserts that at most `limit` jobs ran at once **and** that `limit` was actually reached,
    /// so a limiter that runs jobs one by one (or leaks slots) does not pass.
    #[track_caller]
    pub fn assert_limit(&self, what: &str, limit: usize, hint: &Hint) {
        self.assert_never_above(what, limit, hint);
        let max = self.max();
        if max < limit {
            report::fail(
                &format!("{what}: the concurrency limit was never reached"),
                format_args!("never more than {max} at once"),
                format_args!("{limit} jobs in flight at some point"),
                hint,
            );
        }
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        let mut state = self.probe.lock();
        let at = state.origin.elapsed();
        state.current -= 1;
        state.finished += 1;
        let current = state.current;
        state.history.push((at, current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint::Stage;
    use crate::ms;

    fn h() -> Hint {
        Stage::new("sample", 1).hint("h")
    }
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    /// `jobs` jobs of 10 ms each through a semaphore of `permits`, all tracked by the probe.
    async fn run_through_semaphore(probe: &ConcurrencyProbe, jobs: usize, permits: usize) {
        let semaphore = Arc::new(Semaphore::new(permits));
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                let semaphore = semaphore.clone();
                let probe = probe.clone();
                tokio::spawn(async move {
                    let _permit = semaphore.acquire().await.unwrap();
                    probe.track(tokio::time::sleep(ms(10))).await;
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }

    #[crate::test]
    async fn a_correct_limiter_passes() {
        let probe = ConcurrencyProbe::new();
        run_through_semaphore(&probe, 10, 3).await;
        probe.assert_limit("semaphore(3)", 3, &h());
        assert_eq!(
            (probe.started(), probe.finished(), probe.current()),
            (10, 10, 0)
        );
        // 10 jobs of 10 ms through 3 slots: three full waves, then the last job alone.
        assert_eq!(probe.levels(), vec![3, 1, 0]);
    }

    #[test]
    #[should_panic(
        expected = "semaphore(4): too many jobs at once\n  expected: at most 3 in flight\n  actual:   4 in flight at 0ms"
    )]
    fn a_limiter_that_lets_too_many_through_is_caught() {
        crate::run_test(crate::TestConfig::new("too many"), || async {
            let probe = ConcurrencyProbe::new();
            run_through_semaphore(&probe, 10, 4).await;
            probe.assert_limit("semaphore(4)", 3, &h());
        });
    }

    #[test]
    #[should_panic(
        expected = "sequential: the concurrency limit was never reached\n  expected: 3 jobs in flight at some point\n  actual:   never more than 1 at once"
    )]
    fn a_secretly_sequential_limiter_is_caught() {
        crate::run_test(crate::TestConfig::new("sequential"), || async {
            let probe = ConcurrencyProbe::new();
            run_through_semaphore(&probe, 10, 1).await;
            probe.assert_limit("sequential", 3, &h());
        });
    }

    #[crate::test]
    async fn a_cancelled_job_leaves_the_probe() {
        let probe = ConcurrencyProbe::new();
        let job = tokio::spawn(probe.track(std::future::pending::<()>()));
        tokio::task::yield_now().await;
        assert_eq!(probe.current(), 1);
        job.abort();
        let _ = job.await;
        assert_eq!(probe.current(), 0);
        assert_eq!(probe.finished(), 1);
    }

    #[crate::test]
    async fn history_records_levels_over_virtual_time() {
        let probe = ConcurrencyProbe::new();
        let a = probe.enter();
        tokio::time::sleep(ms(10)).await;
        let b = probe.enter();
        tokio::time::sleep(ms(10)).await;
        drop(a);
        drop(b);
        assert_eq!(
            probe.history(),
            vec![(ms(0), 1), (ms(10), 2), (ms(20), 1), (ms(20), 0)]
        );
        assert_eq!(probe.levels(), vec![1, 2, 0]);
    }

    #[crate::test]
    async fn levels_over_time_keep_a_handover_at_one_instant() {
        let probe = ConcurrencyProbe::new();
        let first = probe.enter();
        tokio::time::sleep(ms(10)).await;
        // One job ends and the next starts at the same instant: the level stays 1.
        drop(first);
        let second = probe.enter();
        tokio::time::sleep(ms(10)).await;
        drop(second);
        assert_eq!(
            probe.levels_over_time(),
            vec![(ms(0), 1), (ms(10), 1), (ms(20), 0)]
        );
        assert_eq!(probe.levels(), vec![1, 0]);
    }
}
