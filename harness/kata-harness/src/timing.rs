//! Virtual timestamps and exact schedule assertions.
//!
//! On the paused clock nothing takes time except timers, so "a tick at 50 ms" means exactly
//! 50 ms, every run, on every machine. A [`Timeline`] records labelled events against the virtual
//! clock; [`Timeline::watch`] marks when a future started, finished or was dropped (the instant a
//! sibling is cancelled is as much a part of a schedule as the instant it ends);
//! [`assert_schedule`] compares the times of one label with the schedule the kata asks for and
//! reports the first difference, so "one tick too many" and "a tick 1 ms late" read differently.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::hint::Hint;
use crate::report::{self, Difference};

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

    /// The time of every event so far, in order, whatever its label.
    pub fn instants(&self) -> Vec<Duration> {
        self.events().into_iter().map(|(at, _)| at).collect()
    }

    /// The times at which `label` was recorded, in order.
    pub fn times(&self, label: &str) -> Vec<Duration> {
        self.events()
            .into_iter()
            .filter(|(_, l)| l == label)
            .map(|(at, _)| at)
            .collect()
    }

    /// The first time `label` was recorded, if it was.
    pub fn first(&self, label: &str) -> Option<Duration> {
        self.times(label).first().copied()
    }

    /// Wraps `future` so that the timeline records `"{name} started"` at its first poll, and
    /// then either `"{name} finished"` when it completes or `"{name} dropped"` when it is dropped
    /// before that. A future that is never polled records nothing until it is dropped.
    pub fn watch<F: Future>(&self, name: impl Into<String>, future: F) -> Watched<F> {
        Watched {
            future: Box::pin(future),
            timeline: self.clone(),
            name: name.into(),
            state: WatchState::NotStarted,
        }
    }

    /// What [`watch`](Self::watch) recorded for `name`: when it started, finished, was dropped.
    pub fn life(&self, name: &str) -> Life {
        Life {
            started: self.first(&format!("{name} started")),
            finished: self.first(&format!("{name} finished")),
            dropped: self.first(&format!("{name} dropped")),
        }
    }
}

/// When one watched future started, finished or was dropped (virtual time since the timeline
/// started); `None`: it did not (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Life {
    pub started: Option<Duration>,
    pub finished: Option<Duration>,
    pub dropped: Option<Duration>,
}

impl std::fmt::Display for Life {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part =
            |at: Option<Duration>| at.map_or("never".to_owned(), |at| format!("{:?}", At(at)));
        write!(
            f,
            "started {}, finished {}, dropped {}",
            part(self.started),
            part(self.finished),
            part(self.dropped)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchState {
    NotStarted,
    Running,
    Done,
}

/// A future whose start, finish or drop is marked on a [`Timeline`]; see [`Timeline::watch`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Watched<F> {
    // Boxed, so `Watched` is `Unpin` whatever `F` is: no pin projection needed.
    future: Pin<Box<F>>,
    timeline: Timeline,
    name: String,
    state: WatchState,
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if this.state == WatchState::NotStarted {
            this.state = WatchState::Running;
            this.timeline.mark(format!("{} started", this.name));
        }
        let output = std::task::ready!(this.future.as_mut().poll(cx));
        this.state = WatchState::Done;
        this.timeline.mark(format!("{} finished", this.name));
        Poll::Ready(output)
    }
}

impl<F> Drop for Watched<F> {
    fn drop(&mut self) {
        if self.state != WatchState::Done {
            self.timeline.mark(format!("{} dropped", self.name));
        }
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

/// A time on a schedule, shown in whole milliseconds when it is one (`0ms`, `1000ms`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct At(pub Duration);

impl std::fmt::Debug for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", self.0.as_millis())
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

fn at_list(times: &[Duration]) -> String {
    report::list(&times.iter().copied().map(At).collect::<Vec<_>>())
}

/// Times in `of` that `other` lacks, counting repeats (a multiset difference).
fn missing_from(of: &[Duration], other: &[Duration]) -> Vec<Duration> {
    let mut left = other.to_vec();
    of.iter()
        .filter(|time| match left.iter().position(|t| t == *time) {
            Some(at) => {
                left.swap_remove(at);
                false
            }
            None => true,
        })
        .copied()
        .collect()
}

/// Asserts that `actual` are exactly the `expected` times, in order.
///
/// The report names the difference: events missing, events extra, or the first event that came
/// early or late and by how much.
#[track_caller]
pub fn assert_schedule(what: &str, actual: &[Duration], expected: &[Duration], hint: &Hint) {
    if actual == expected {
        return;
    }
    let missing = missing_from(expected, actual);
    let extra = missing_from(actual, expected);
    let detail = if !missing.is_empty() && extra.is_empty() {
        format!(
            "{} event(s) missing, due at {}",
            missing.len(),
            at_list(&missing)
        )
    } else if missing.is_empty() && !extra.is_empty() {
        format!("{} extra event(s) at {}", extra.len(), at_list(&extra))
    } else {
        // Both (or only the order differs): the first event out of place says the most.
        let i = match report::first_difference(actual, expected) {
            Difference::At(at) => at,
            _ => 0,
        };
        match (actual.get(i), expected.get(i)) {
            (Some(&a), Some(&e)) => {
                let (dir, by) = if a < e {
                    ("early", e - a)
                } else {
                    ("late", a - e)
                };
                format!(
                    "event #{} came at {:?}, {:?} {dir} (expected {:?})",
                    i + 1,
                    At(a),
                    At(by),
                    At(e)
                )
            }
            _ => "the events differ".to_owned(),
        }
    };
    report::fail(
        &format!("{what}: wrong schedule ({detail})"),
        format_args!(
            "{} event(s) at {}{}",
            actual.len(),
            at_list(actual),
            picture(actual, expected)
        ),
        format_args!("{} event(s) at {}", expected.len(), at_list(expected)),
        hint,
    );
}

/// Both schedules on one time axis, a column per slice of time, with `^` under the columns that
/// differ: a picture of where the schedule went wrong. Empty when there is nothing to draw.
fn picture(actual: &[Duration], expected: &[Duration]) -> String {
    const WIDTH: usize = 60;
    let end = actual
        .iter()
        .chain(expected)
        .max()
        .copied()
        .unwrap_or_default();
    if end.is_zero() || actual.len() + expected.len() > 400 {
        return String::new();
    }
    let columns = |times: &[Duration]| {
        let mut counts = [0_usize; WIDTH];
        for time in times {
            let column = (time.as_nanos() * (WIDTH as u128 - 1) / end.as_nanos()) as usize;
            counts[column] += 1;
        }
        counts
    };
    let row = |counts: &[usize; WIDTH]| -> String {
        counts
            .iter()
            .map(|&n| match n {
                0 => '·',
                1 => '|',
                2..=9 => char::from_digit(n as u32, 10).unwrap_or('+'),
                _ => '+',
            })
            .collect()
    };
    let (mine, theirs) = (columns(actual), columns(expected));
    let marks: String = mine
        .iter()
        .zip(&theirs)
        .map(|(a, e)| if a == e { ' ' } else { '^' })
        .collect();
    let end_label = format!("{:?}", At(end));
    format!(
        "\n  on one time axis (| an event, a digit for several in one column):\n    \
         expected │{}│\n    actual   │{}│\n              {}\n              0ms{}{end_label}",
        row(&theirs),
        row(&mine),
        marks.trim_end(),
        " ".repeat((WIDTH + 2).saturating_sub(3 + end_label.len())),
    )
}

/// Asserts that `actual` is exactly `expected`: on the paused clock, elapsed times are exact.
#[track_caller]
pub fn assert_elapsed(what: &str, actual: Duration, expected: Duration, hint: &Hint) {
    if actual != expected {
        let (dir, by) = if actual < expected {
            ("early", expected - actual)
        } else {
            ("late", actual - expected)
        };
        report::fail(
            &format!("{what}: wrong elapsed time ({:?} {dir})", At(by)),
            format_args!("{:?}", At(actual)),
            format_args!("exactly {:?}", At(expected)),
            hint,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint::Stage;
    use crate::ms;

    const T: Stage = Stage::new("sample", 1);

    fn h() -> Hint {
        T.hint("h")
    }

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
        assert_schedule("ticks", &[ms(50), ms(100)], &[ms(50), ms(100)], &h());
    }

    #[test]
    #[should_panic(
        expected = "ticks: wrong schedule (event #2 came at 101ms, 1ms late (expected 100ms))\n  \
                    expected: 2 event(s) at [50ms, 100ms]\n  actual:   2 event(s) at [50ms, 101ms]"
    )]
    fn a_late_event_is_caught() {
        assert_schedule("ticks", &[ms(50), ms(101)], &[ms(50), ms(100)], &h());
    }

    #[test]
    #[should_panic(expected = "event #1 came at 0ms, 50ms early (expected 50ms)")]
    fn an_early_event_is_caught() {
        assert_schedule("ticks", &[ms(0), ms(50)], &[ms(50), ms(101)], &h());
    }

    #[test]
    #[should_panic(expected = "ticks: wrong schedule (1 extra event(s) at [150ms])")]
    fn an_extra_event_is_caught() {
        assert_schedule(
            "ticks",
            &[ms(50), ms(100), ms(150)],
            &[ms(50), ms(100)],
            &h(),
        );
    }

    #[test]
    #[should_panic(expected = "ticks: wrong schedule (1 event(s) missing, due at [100ms])")]
    fn a_missing_event_is_caught() {
        assert_schedule("ticks", &[ms(50)], &[ms(50), ms(100)], &h());
    }

    #[test]
    #[should_panic(expected = "ticks: wrong schedule (1 event(s) missing, due at [0ms])")]
    fn a_missing_first_event_is_missing_not_late() {
        assert_schedule("ticks", &[ms(50), ms(100)], &[ms(0), ms(50), ms(100)], &h());
    }

    #[test]
    #[should_panic(expected = "event #2 came at 100.5ms, 500µs late (expected 100ms)")]
    fn sub_millisecond_times_are_shown_exactly() {
        assert_schedule(
            "ticks",
            &[ms(50), Duration::from_micros(100_500)],
            &[ms(50), ms(100)],
            &h(),
        );
    }

    #[test]
    fn a_wrong_schedule_is_drawn_on_one_time_axis() {
        let expected: Vec<Duration> = (0..=4).map(|i| ms(i * 250)).collect();
        let mut actual = expected[1..].to_vec();
        actual.push(ms(1000));
        let text = picture(&actual, &expected);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let gap = |n: usize| "·".repeat(n);
        assert_eq!(
            lines[2],
            format!(
                "expected │|{}|{}|{}|{}|│",
                gap(13),
                gap(14),
                gap(14),
                gap(14)
            )
        );
        assert_eq!(
            lines[3],
            format!(
                "actual   │·{}|{}|{}|{}2│",
                gap(13),
                gap(14),
                gap(14),
                gap(14)
            )
        );
        assert_eq!(lines[4], format!("^{}^", " ".repeat(58)));
        assert!(
            lines[5].starts_with("0ms") && lines[5].ends_with("1000ms"),
            "{text}"
        );
        assert_eq!(picture(&[], &[]), "");
    }

    #[test]
    fn an_exact_elapsed_time_passes() {
        assert_elapsed("run", ms(1000), ms(1000), &h());
    }

    #[test]
    #[should_panic(
        expected = "run: wrong elapsed time (1ms late)\n  expected: exactly 1000ms\n  actual:   1001ms"
    )]
    fn elapsed_off_by_a_millisecond_is_caught() {
        assert_elapsed("run", ms(1001), ms(1000), &h());
    }

    #[crate::test]
    async fn watch_marks_start_and_finish() {
        let timeline = Timeline::start();
        let job = timeline.watch("job", async {
            tokio::time::sleep(ms(100)).await;
            7
        });
        tokio::time::sleep(ms(20)).await;
        assert_eq!(job.await, 7);
        assert_eq!(
            timeline.life("job"),
            Life {
                started: Some(ms(20)),
                finished: Some(ms(120)),
                dropped: None
            }
        );
    }

    #[crate::test]
    async fn watch_marks_a_drop_before_the_end() {
        let timeline = Timeline::start();
        let job = timeline.watch("job", tokio::time::sleep(ms(100)));
        assert!(tokio::time::timeout(ms(30), job).await.is_err());
        let never_polled = timeline.watch("lazy", std::future::ready(()));
        tokio::time::sleep(ms(5)).await;
        drop(never_polled);
        assert_eq!(
            timeline.life("job").to_string(),
            "started 0ms, finished never, dropped 30ms"
        );
        assert_eq!(
            timeline.life("lazy"),
            Life {
                started: None,
                finished: None,
                dropped: Some(ms(35))
            }
        );
    }
}
