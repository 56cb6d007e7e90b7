//! Virtual timestamps and exact schedule assertions.
//!
//! On the paused clock nothing takes time except timers, so "a tick at 50 ms" means exactly
//! 50 ms, every run, on every machine. A [`Timeline`] records labelled events against the virtual
//! clock; [`assert_schedule`] compares the times of one label with the schedule the kata asks for
//! and reports the first difference, so "one tick too many" and "a tick 1 ms late" read
//! differently.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::report;

/// A shared log of `(virtual time since start, label)`; clone it into listeners and tasks.
#[derive(Debug, Clone)]
pub struct Timeline {
    origin: Instant,
    events: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Timeline {
    /// Starts a timeline at the current (virtual) instant.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
            events: Arc::default(),
        }
    }

    /// Virtual time elapsed since the timeline started.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Records `label` at the current virtual time.
    pub fn mark(&self, label: impl Into<String>) {
        let at = self.now();
        self.events
            .lock()
            .expect("timeline poisoned")
            .push((at, label.into()));
    }

    /// Every event so far, in the order they were recorded.
    pub fn events(&self) -> Vec<(Duration, String)> {
        self.events.lock().expect("timeline poisoned").clone()
    }

    /// The labels so far, in order (for "X comes before Y" checks).
    pub fn labels(&self) -> Vec<String> {
        self.events().into_iter().map(|(_, label)| label).collect()
    }

    /// The times at which `label` was recorded, in order.
    pub fn times(&self, label: &str) -> Vec<Duration> {
        self.events()
            .into_iter()
            .filter(|(_, l)| l == label)
            .map(|(at, _)| at)
            .collect()
    }
}

/// The grid `first, first + step, ...` up to and including `last`.
pub fn grid(first: Duration, step: Duration, last: Duration) -> Vec<Duration> {
    assert!(!step.is_zero(), "grid: step must not be zero");
    let mut out = Vec::new();
    let mut at = first;
    while at <= last {
        out.push(at);
        at += step;
    }
    out
}

/// Asserts that `actual` are exactly the `expected` times, in order.
///
/// The report names the first difference: a missing event, an extra one, or one that came early
/// or late and by how much.
#[track_caller]
pub fn assert_schedule(what: &str, actual: &[Duration], expected: &[Duration], hint: &str) {
    if actual == expected {
        return;
    }
    let mut detail = String::new();
    match actual.iter().zip(expected).position(|(a, e)| a != e) {
        Some(i) => {
            let (a, e) = (actual[i], expected[i]);
            let (dir, by) = if a < e {
                ("early", e - a)
            } else {
                ("late", a - e)
            };
            let _ = write!(
                detail,
                "event #{} came at {a:?}, {by:?} {dir} (expected {e:?})",
                i + 1
            );
        }
        None if actual.len() > expected.len() => {
            let extra = &actual[expected.len()..];
            let _ = write!(
                detail,
                "{} extra event(s) at {}",
                extra.len(),
                report::list(extra)
            );
        }
        None => {
            let missing = &expected[actual.len()..];
            let _ = write!(
                detail,
                "{} event(s) missing, due at {}",
                missing.len(),
                report::list(missing)
            );
        }
    }
    report::fail(
        &format!("{what}: wrong schedule ({detail})"),
        format_args!("{} event(s) at {}", expected.len(), report::list(expected)),
        format_args!("{} event(s) at {}", actual.len(), report::list(actual)),
        hint,
    );
}

/// Asserts that `actual` is within `tolerance` of `expected` (use `Duration::ZERO` for exact).
#[track_caller]
pub fn assert_elapsed(
    what: &str,
    actual: Duration,
    expected: Duration,
    tolerance: Duration,
    hint: &str,
) {
    if actual.abs_diff(expected) <= tolerance {
        return;
    }
    let expected = if tolerance.is_zero() {
        format!("exactly {expected:?}")
    } else {
        format!("{expected:?} ± {tolerance:?}")
    };
    report::fail(
        &format!("{what}: wrong elapsed time"),
        expected,
        format_args!("{actual:?}"),
        hint,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ms;

    #[test]
    fn grid_includes_both_ends() {
        assert_eq!(
            grid(ms(50), ms(50), ms(150)),
            vec![ms(50), ms(100), ms(150)]
        );
        assert_eq!(grid(ms(50), ms(50), ms(149)), vec![ms(50), ms(100)]);
        assert!(grid(ms(50), ms(50), ms(49)).is_empty());
    }

    #[test]
    fn a_right_schedule_passes() {
        assert_schedule("ticks", &[ms(50), ms(100)], &[ms(50), ms(100)], "");
    }

    #[test]
    #[should_panic(
        expected = "ticks: wrong schedule (event #2 came at 101ms, 1ms late (expected 100ms))"
    )]
    fn a_late_event_is_caught() {
        assert_schedule("ticks", &[ms(50), ms(101)], &[ms(50), ms(100)], "");
    }

    #[test]
    #[should_panic(expected = "event #1 came at 0ns, 50ms early")]
    fn an_early_event_is_caught() {
        assert_schedule("ticks", &[ms(0), ms(50)], &[ms(50), ms(100)], "");
    }

    #[test]
    #[should_panic(expected = "ticks: wrong schedule (1 extra event(s) at [150ms])")]
    fn an_extra_event_is_caught() {
        assert_schedule("ticks", &[ms(50), ms(100), ms(150)], &[ms(50), ms(100)], "");
    }

    #[test]
    #[should_panic(expected = "ticks: wrong schedule (1 event(s) missing, due at [100ms])")]
    fn a_missing_event_is_caught() {
        assert_schedule("ticks", &[ms(50)], &[ms(50), ms(100)], "");
    }

    #[test]
    fn elapsed_within_tolerance_passes() {
        assert_elapsed("run", ms(1000), ms(1000), Duration::ZERO, "");
        assert_elapsed("run", ms(1004), ms(1000), ms(5), "");
    }

    #[test]
    #[should_panic(
        expected = "run: wrong elapsed time\n  expected: exactly 1s\n  actual:   1.001s"
    )]
    fn elapsed_off_by_a_millisecond_is_caught() {
        assert_elapsed("run", ms(1001), ms(1000), Duration::ZERO, "");
    }
}
