//! How the gather-wait suite makes its jobs and watches them: every job sleeps for its length
//! from its first poll, then returns `Ok(index)`, returns `Err(index)` or panics; a timeline marks
//! when it started, finished or was dropped, and a probe counts how many were in flight.

use std::future::Future;
use std::time::Duration;

use gather_wait::{WaitError, Waited};
use kata_harness::completion::completes_within;
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check, fail, panic_with_string};
use kata_harness::timing::{Life, Timeline};
use kata_harness::{Hint, ms};
use tokio::task::{JoinError, JoinHandle};

/// What every job returns: `Ok(its index)` or `Err(its index)`.
pub type Outcome = Result<usize, usize>;

/// Longer than any schedule here: something still pending after this never finishes.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The message of a job that panics with a `&'static str` payload (`panic!("literal")`).
pub const STR_MESSAGE: &str = "the job exploded (a &str payload)";

/// The message of job `index` when it panics with a `String` payload.
pub fn string_message(index: usize) -> String {
    format!("job {index} exploded (a String payload)")
}

/// How a job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    Ok,
    Err,
    /// `panic!` with a `&'static str` payload.
    PanicsWithStr,
    /// A panic whose payload is a `String`.
    PanicsWithString,
}

/// A job: how long it sleeps, and how it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub length: Duration,
    pub ends: Ends,
}

/// A job that sleeps `millis` ms, then returns `Ok(its index)`.
pub const fn ok(millis: u64) -> Spec {
    Spec {
        length: ms(millis),
        ends: Ends::Ok,
    }
}

/// A job that sleeps `millis` ms, then returns `Err(its index)`.
pub const fn err(millis: u64) -> Spec {
    Spec {
        length: ms(millis),
        ends: Ends::Err,
    }
}

/// A job that sleeps `millis` ms, then panics as `ends` says.
pub const fn panics(millis: u64, ends: Ends) -> Spec {
    Spec {
        length: ms(millis),
        ends,
    }
}

/// Job `index` of `spec`, unwatched: for tests of thousands of jobs, where the timeline's own
/// records would be most of the memory measured.
pub async fn plain(index: usize, spec: Spec) -> Outcome {
    // `sleep` starts counting when it is called: inside the job, so from its first poll.
    tokio::time::sleep(spec.length).await;
    match spec.ends {
        Ends::Ok => Ok(index),
        Ends::Err => Err(index),
        Ends::PanicsWithStr => std::panic::panic_any(STR_MESSAGE),
        Ends::PanicsWithString => panic_with_string(string_message(index)),
    }
}

/// Makes jobs and watches them: a timeline with `job <index> started / finished / dropped`,
/// and a probe of how many are in flight.
#[derive(Debug, Clone)]
pub struct Jobs {
    timeline: Timeline,
    probe: ConcurrencyProbe,
}

impl Jobs {
    /// A fresh set of watchers; the timeline's 0 ms is now.
    pub fn new() -> Self {
        Self {
            timeline: Timeline::start(),
            probe: ConcurrencyProbe::new(),
        }
    }

    /// Job `index` of `spec`, watched.
    pub fn job(&self, index: usize, spec: Spec) -> impl Future<Output = Outcome> + Send + use<> {
        let tracked = self.probe.track(plain(index, spec));
        self.timeline.watch(format!("job {index}"), tracked)
    }

    /// One watched job per spec, indexed from 0, not started.
    pub fn make(
        &self,
        specs: &[Spec],
    ) -> Vec<impl Future<Output = Outcome> + Send + 'static + use<>> {
        specs
            .iter()
            .enumerate()
            .map(|(index, &spec)| self.job(index, spec))
            .collect()
    }

    /// One watched job per spec, each spawned as a tokio task (which starts at the caller's next
    /// `.await`).
    pub fn spawn(&self, specs: &[Spec]) -> Vec<JoinHandle<Outcome>> {
        self.make(specs).into_iter().map(tokio::spawn).collect()
    }

    /// Virtual time since the jobs' timeline started.
    pub fn now(&self) -> Duration {
        self.timeline.now()
    }

    /// Marks `label` on the jobs' timeline (to check what happened before it).
    pub fn mark(&self, label: &str) {
        self.timeline.mark(label);
    }

    /// The probe counting the jobs in flight.
    pub fn probe(&self) -> &ConcurrencyProbe {
        &self.probe
    }

    /// When job `index` started, finished, was dropped.
    pub fn life(&self, index: usize) -> Life {
        self.timeline.life(&format!("job {index}"))
    }

    /// Whether job `index` was dropped before `label` was marked.
    pub fn dropped_before(&self, index: usize, label: &str) -> bool {
        let labels = self.timeline.labels();
        let at = |wanted: &str| labels.iter().position(|label| label == wanted);
        match (at(&format!("job {index} dropped")), at(label)) {
            (Some(dropped), Some(mark)) => dropped < mark,
            _ => false,
        }
    }
}

/// The life of a job that started at `started` ms and finished at `finished` ms.
pub fn ran(started: u64, finished: u64) -> Life {
    Life {
        started: Some(ms(started)),
        finished: Some(ms(finished)),
        dropped: None,
    }
}

/// The life of a job that started at `started` ms and was dropped, unfinished, at `dropped` ms.
pub fn cut(started: u64, dropped: u64) -> Life {
    Life {
        started: Some(ms(started)),
        finished: None,
        dropped: Some(ms(dropped)),
    }
}

/// Checks that job `index` lived as `expected` says.
#[track_caller]
pub fn check_life(jobs: &Jobs, index: usize, expected: Life, hint: &Hint) {
    let actual = jobs.life(index);
    check(
        &format!("job {index}: when it started, finished, was dropped"),
        actual == expected,
        actual,
        expected,
        hint,
    );
}

/// A task's outcome as a report shows it: `Ok(2)`, `Err(1)`, `panicked`, `cancelled`.
pub fn describe(outcome: &Result<Outcome, JoinError>) -> String {
    match outcome {
        Ok(Ok(value)) => format!("Ok({value})"),
        Ok(Err(error)) => format!("Err({error})"),
        Err(error) if error.is_panic() => "panicked".to_owned(),
        Err(_) => "cancelled".to_owned(),
    }
}

/// `wait`'s done list as `(index, outcome)` a report can show.
pub fn done_of(waited: &Waited<Outcome>) -> Vec<(usize, String)> {
    waited
        .done
        .iter()
        .map(|(index, outcome)| (*index, describe(outcome)))
        .collect()
}

/// The indices of `wait`'s pending list.
pub fn pending_of(waited: &Waited<Outcome>) -> Vec<usize> {
    waited.pending.iter().map(|(index, _)| *index).collect()
}

/// What `wait` on some tasks returned, which is never an error.
#[track_caller]
pub fn waited_or_fail(result: Result<Waited<Outcome>, WaitError>, hint: &Hint) -> Waited<Outcome> {
    result.unwrap_or_else(|error| {
        fail(
            "wait(..) on some tasks",
            format_args!("Err({error:?})"),
            "Ok(Waited { done, pending })",
            &hint.instead("WaitError::NoTasks is for an empty list of tasks only"),
        )
    })
}

/// Awaits every pending handle `wait` returned (they must still be running), and gives each
/// task's outcome.
pub async fn finish_pending(
    pending: Vec<(usize, JoinHandle<Outcome>)>,
    hint: &Hint,
) -> Vec<(usize, String)> {
    let mut outcomes = Vec::new();
    for (index, handle) in pending {
        let what = format!("the pending task {index}, awaited after wait returned");
        let outcome = completes_within(&what, handle, PATIENCE, hint).await;
        outcomes.push((index, describe(&outcome)));
    }
    outcomes
}
