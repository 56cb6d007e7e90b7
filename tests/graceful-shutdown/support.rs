//! How the graceful-shutdown suite builds its jobs and watches them: named jobs on a timeline,
//! reports shown with names instead of numbers, a poll by hand, and scripted readers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use graceful_shutdown::{
    CancelToken, Cancelled, CloseReport, Event, JobId, Scheduler, Shielded, follow_lines,
};
use kata_harness::completion::completes_within;
use kata_harness::report::{fail, panic_with_string};
use kata_harness::stress;
use kata_harness::timing::{At, Life, Timeline};
use kata_harness::wakers::CountingWaker;
use kata_harness::{Hint, Stage, ms};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::{Instant, sleep, sleep_until};

/// Polls `future` once with `waker`, as a runtime would.
pub fn poll_once<F: Future + ?Sized>(
    future: Pin<&mut F>,
    waker: &CountingWaker,
) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(&waker.waker()))
}

/// Spawns a task that waits on `token` and marks `name` on the timeline when it wakes.
pub fn waiter(timeline: &Timeline, name: &'static str, token: &CancelToken) {
    let (timeline, token) = (timeline.clone(), token.clone());
    tokio::spawn(async move {
        token.cancelled().await;
        timeline.mark(name);
    });
}

/// When each of `names` was first marked, in the order given; `None`: never.
pub fn marks(timeline: &Timeline, names: &[&'static str]) -> Vec<(&'static str, Option<At>)> {
    names
        .iter()
        .map(|&name| (name, timeline.first(name).map(At)))
        .collect()
}

/// `names`, each marked at `at`.
pub fn all_at(names: &[&'static str], at: u64) -> Vec<(&'static str, Option<At>)> {
    names.iter().map(|&name| (name, Some(At(ms(at))))).collect()
}

/// How a test panic is raised: `panic!("literal")` gives a `&str`, a formatted message a
/// `String`, and code that reads panics must handle both.
#[derive(Debug, Clone, Copy)]
pub enum Payload {
    Str(&'static str),
    String(&'static str),
}

/// Panics with `message`, as a `&str` or as a `String`.
fn raise(message: Payload) -> Result<(), Cancelled> {
    match message {
        Payload::Str(text) => std::panic::panic_any(text),
        Payload::String(text) => panic_with_string(text),
    }
}

/// A scheduler whose jobs have names, and a timeline that marks when each job's future started,
/// finished or was dropped (`Timeline::watch`), plus `"<name> asked to stop"` when a
/// cooperative job saw its token cancelled.
pub struct Jobs {
    pub scheduler: Scheduler,
    pub timeline: Timeline,
    names: Names,
    hint: Hint,
}

/// Who is who in a report: a job's number and its name, for jobs that name their own shielded
/// work.
#[derive(Debug, Clone, Default)]
pub struct Names(Arc<Mutex<HashMap<JobId, &'static str>>>);

impl Names {
    /// Names `id`.
    pub fn name(&self, id: JobId, name: &'static str) {
        self.0.lock().unwrap().insert(id, name);
    }

    fn of(&self, id: &JobId) -> &'static str {
        let names = self.0.lock().unwrap();
        names
            .get(id)
            .copied()
            .unwrap_or("(work the test did not spawn)")
    }
}

impl Jobs {
    /// `Scheduler::new(limit)`, which the test expects to work.
    pub fn new(limit: usize, hint: &Hint) -> Self {
        let scheduler = Scheduler::new(limit).unwrap_or_else(|error| {
            fail(
                &format!("Scheduler::new({limit})"),
                format_args!("Err({error:?})"),
                "Ok(a scheduler)",
                &hint.instead("only a limit of 0 is an error"),
            )
        });
        Self {
            scheduler,
            timeline: Timeline::start(),
            names: Names::default(),
            hint: hint.clone(),
        }
    }

    fn accepted(
        &self,
        name: &'static str,
        spawned: Result<JobId, graceful_shutdown::Closed>,
    ) -> JobId {
        let id = spawned.unwrap_or_else(|error| {
            fail(
                &format!("spawning job {name} before close"),
                format_args!("Err({error:?})"),
                "Ok(its JobId)",
                &self
                    .hint
                    .instead("only a scheduler that is closing refuses jobs"),
            )
        });
        self.names.name(id, name);
        id
    }

    /// Names `id` (for shielded work, whose id comes from its handle).
    pub fn name(&self, id: JobId, name: &'static str) {
        self.names.name(id, name);
    }

    /// `scheduler.shield(work)`, which the test expects to be accepted.
    pub fn shield<F>(&self, work: F) -> Shielded<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.scheduler.shield(work).unwrap_or_else(|error| {
            fail(
                "shield before close",
                format_args!("Err({error:?})"),
                "Ok(a handle)",
                &self
                    .hint
                    .instead("shield refuses work only once close has returned"),
            )
        })
    }

    /// A handle to name work with from inside a job.
    pub fn names(&self) -> Names {
        self.names.clone()
    }

    /// A job that works for `work` ms and never looks at its token.
    pub fn ignoring(&self, name: &'static str, work: u64) -> JobId {
        let timeline = self.timeline.clone();
        let spawned = self.scheduler.spawn(move |_token| {
            timeline.watch(name, async move {
                sleep(ms(work)).await;
                Ok(())
            })
        });
        self.accepted(name, spawned)
    }

    /// A job that never ends by itself and never looks at its token.
    pub fn forever(&self, name: &'static str) -> JobId {
        let timeline = self.timeline.clone();
        let spawned = self.scheduler.spawn(move |_token| {
            timeline.watch(name, std::future::pending::<Result<(), Cancelled>>())
        });
        self.accepted(name, spawned)
    }

    /// A job that works for `work` ms unless its token is cancelled first; then it marks
    /// `"<name> asked to stop"`, cleans up for `cleanup` ms and returns `Err(Cancelled)`.
    pub fn cooperative(&self, name: &'static str, work: u64, cleanup: u64) -> JobId {
        let timeline = self.timeline.clone();
        let spawned = self.scheduler.spawn(move |token| {
            let marks = timeline.clone();
            timeline.watch(name, async move {
                tokio::select! {
                    () = sleep(ms(work)) => Ok(()),
                    () = token.cancelled() => {
                        marks.mark(format!("{name} asked to stop"));
                        sleep(ms(cleanup)).await;
                        Err(Cancelled)
                    }
                }
            })
        });
        self.accepted(name, spawned)
    }

    /// A job that panics with `message` after `after` ms.
    pub fn panicking(&self, name: &'static str, after: u64, message: Payload) -> JobId {
        let timeline = self.timeline.clone();
        let spawned = self.scheduler.spawn(move |_token| {
            timeline.watch(name, async move {
                sleep(ms(after)).await;
                raise(message)
            })
        });
        self.accepted(name, spawned)
    }

    /// Spawns any job under `name`.
    pub fn custom<F, Fut>(&self, name: &'static str, job: F) -> JobId
    where
        F: FnOnce(CancelToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Cancelled>> + Send + 'static,
    {
        let timeline = self.timeline.clone();
        let spawned = self
            .scheduler
            .spawn(move |token| timeline.watch(name, job(token)));
        self.accepted(name, spawned)
    }

    /// When the job `name`'s future started, finished or was dropped.
    pub fn life(&self, name: &str) -> Lived {
        Lived(self.timeline.life(name))
    }

    /// Lets the jobs spawned so far start: the runtime runs every task that is ready.
    pub async fn let_them_start(&self) {
        kata_harness::leaks::settle().await;
    }

    /// Calls `close(grace)` and returns what it returned and when (time on the timeline). A
    /// close still running 10 s after its deadline fails the test.
    pub async fn close(&self, grace: u64, hint: &Hint) -> (Option<Named>, At) {
        let limit = ms(grace) + Duration::from_secs(10);
        let close = self.scheduler.close(ms(grace));
        let report = completes_within(&format!("close({grace} ms)"), close, limit, hint).await;
        (
            report.map(|report| self.named(&report)),
            At(self.timeline.now()),
        )
    }

    /// The report with each job's name in place of its number.
    pub fn named(&self, report: &CloseReport) -> Named {
        let name = |id: &JobId| self.names.of(id);
        let list = |ids: &[JobId]| ids.iter().map(name).collect::<Vec<_>>();
        Named {
            finished: list(&report.finished),
            stopped: list(&report.stopped),
            aborted: list(&report.aborted),
            never_started: list(&report.never_started),
            panicked: report
                .panicked
                .iter()
                .map(|(id, message)| (name(id), message.clone()))
                .collect(),
            shielded: list(&report.shielded),
        }
    }
}

/// A watched future's life, shown as "started 0ms, finished 100ms, dropped never".
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Lived(pub Life);

impl std::fmt::Debug for Lived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The life of a watched future that started at `started` and finished at `finished` (ms).
pub fn ran(started: u64, finished: u64) -> Lived {
    Lived(Life {
        started: Some(ms(started)),
        finished: Some(ms(finished)),
        dropped: None,
    })
}

/// The life of a watched future that started at `started` and was dropped at `dropped` (ms).
pub fn cut(started: u64, dropped: u64) -> Lived {
    Lived(Life {
        started: Some(ms(started)),
        finished: None,
        dropped: Some(ms(dropped)),
    })
}

/// A [`CloseReport`] with names: what a failure shows, and what a test expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    pub finished: Vec<&'static str>,
    pub stopped: Vec<&'static str>,
    pub aborted: Vec<&'static str>,
    pub never_started: Vec<&'static str>,
    pub panicked: Vec<(&'static str, String)>,
    pub shielded: Vec<&'static str>,
}

impl Named {
    pub fn finished(mut self, names: &[&'static str]) -> Self {
        self.finished = names.to_vec();
        self
    }

    pub fn stopped(mut self, names: &[&'static str]) -> Self {
        self.stopped = names.to_vec();
        self
    }

    pub fn aborted(mut self, names: &[&'static str]) -> Self {
        self.aborted = names.to_vec();
        self
    }

    pub fn never_started(mut self, names: &[&'static str]) -> Self {
        self.never_started = names.to_vec();
        self
    }

    pub fn panicked(mut self, panics: &[(&'static str, &str)]) -> Self {
        self.panicked = panics
            .iter()
            .map(|&(name, message)| (name, message.to_owned()))
            .collect();
        self
    }

    pub fn shielded(mut self, names: &[&'static str]) -> Self {
        self.shielded = names.to_vec();
        self
    }
}

/// A reader whose bytes arrive on a schedule: each `(ms, text)` is written at that instant
/// (time since the call), and the writer closes (end of input) at `end`. A duplex pipe, so it
/// stays on the paused clock.
pub fn scripted(writes: &[(u64, &'static [u8])], end: u64) -> DuplexStream {
    let (reader, mut writer) = tokio::io::duplex(1024);
    let start = Instant::now();
    let writes = writes.to_vec();
    tokio::spawn(async move {
        for (at, bytes) in writes {
            sleep_until(start + ms(at)).await;
            writer.write_all(bytes).await.expect("the pipe is open");
        }
        sleep_until(start + ms(end)).await;
        drop(writer);
    });
    reader
}

/// What one run of `follow_lines` did.
#[derive(Debug)]
pub struct Followed {
    /// Every event, with when it was reported.
    pub events: Vec<(At, Event)>,
    /// What it returned (an error by its kind).
    pub result: Result<(), std::io::ErrorKind>,
    /// When it returned.
    pub returned: At,
}

/// Runs `follow_lines(reader, every, token, ..)` and records what it reports. A run still going
/// 10 s later fails the test.
pub async fn follow(
    reader: DuplexStream,
    every: Duration,
    token: &CancelToken,
    stage: &Stage,
) -> Followed {
    let timeline = Timeline::start();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = (timeline.clone(), events.clone());
    let run = follow_lines(reader, every, token, move |event| {
        log.1.lock().unwrap().push((At(log.0.now()), event));
    });
    let hint = stage.hint("follow_lines returns when the input ends or the token is cancelled");
    let result = completes_within("follow_lines", run, Duration::from_secs(10), &hint).await;
    let events = events.lock().unwrap().clone();
    Followed {
        events,
        result: result.map_err(|error| error.kind()),
        returned: At(timeline.now()),
    }
}

/// Real time after which a waiter of a cancelled token counts as never woken: far beyond any
/// scheduling delay of a loaded machine (a woken waiter is ready within microseconds), and it
/// costs nothing unless a wake-up was lost.
const STUCK: Duration = Duration::from_secs(2);

/// The pending waiters an attempt keeps: the newest ones. A waiter lost to the race is the last
/// one started before the cancel; older ones had registered long before, and are dropped (an
/// abandoned waiter) to keep memory flat.
const KEPT: usize = 8;

/// How long the canceller waits for a waiter to be pending (the caller was preempted): then it
/// cancels anyway, and the attempt races nothing.
const ARMED_WAIT: Duration = Duration::from_millis(20);

/// Races `cancelled()` against `cancel()` on a runtime of 2 worker threads, `attempts` times or
/// for `budget` of real time, whichever ends first, and says in which attempt (from 1), if any,
/// a waiter was never woken. (On two cores a lost wake-up shows after about 10,000 attempts on
/// average, so the test makes 50,000, about a second, to catch it in about 99 runs in 100: the
/// cancel must land in a gap of a few instructions, and `cancel()` itself takes a lock between
/// raising the flag and waking the waiters.)
///
/// An attempt, on a fresh token: a task on a worker thread waits until a waiter is pending, spins
/// a little (a different time each attempt) and cancels the token, while this thread starts
/// `token.cancelled()` calls one after another, polling each once, until one is ready at once.
/// The last calls still pending must then all be woken. A `cancelled()` that reads the flag,
/// then registers for the wake-up, is caught when the cancel lands between the two.
pub async fn cancel_race(attempts: usize, budget: Duration) -> Result<(), usize> {
    stress::on_multi_thread(2, move || async move {
        let started = std::time::Instant::now();
        for attempt in (1..=attempts).take_while(|_| started.elapsed() < budget) {
            let token = CancelToken::new();
            let armed = Arc::new(AtomicBool::new(false));
            let canceller = tokio::spawn({
                let (token, armed) = (token.clone(), armed.clone());
                async move {
                    let waiting = std::time::Instant::now();
                    while !armed.load(Ordering::Acquire) && waiting.elapsed() < ARMED_WAIT {
                        std::hint::spin_loop();
                    }
                    for _ in 0..attempt * 7 % 50 {
                        std::hint::spin_loop();
                    }
                    token.cancel();
                }
            });
            let woken = stress::race_calls(
                KEPT,
                STUCK,
                || token.cancelled(),
                || armed.store(true, Ordering::Release),
            );
            let woken = woken.await;
            canceller.await.expect("the canceller does not panic");
            if !woken {
                return Err(attempt);
            }
        }
        Ok(())
    })
    .await
}
