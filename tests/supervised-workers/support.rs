//! How the supervised-workers suite drives a pool: scripted jobs as the items, producers that
//! note when each send went through, and a work function that notes every attempt (when it
//! started, on which consumer, how it ended) on one timeline.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_harness::Hint;
use kata_harness::completion::completes_within;
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report;
use kata_harness::timing::{At, Timeline};
use supervised_workers::{Outcome, Pool, Supervisor};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Longer than any schedule of the suite (virtual time): a pool still running then never ends.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The items of every test: a job that takes `ms` of work, then succeeds, fails or panics.
#[derive(Clone, PartialEq, Eq)]
pub struct Job {
    pub name: &'static str,
    pub ms: u64,
    /// Its first `fails` attempts fail, later ones succeed.
    pub fails: u32,
    pub how: How,
}

/// How a failing attempt fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The work returns `Err(Boom(name))`.
    Error,
    /// The work panics with a `&'static str` payload, `"<name> panicked"`.
    PanicStr,
    /// The work panics with a `String` payload, `"<name> panicked"`.
    PanicString,
}

/// Shown by its name, so failures read `consumer 0 failed on D`.
impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A job that succeeds after `ms`.
pub fn job(name: &'static str, ms: u64) -> Job {
    flaky(name, ms, 0)
}

/// A job whose every attempt fails after `ms`.
pub fn failing(name: &'static str, ms: u64) -> Job {
    flaky(name, ms, u32::MAX)
}

/// A job whose first `fails` attempts fail after `ms`; later attempts succeed after `ms`.
pub fn flaky(name: &'static str, ms: u64, fails: u32) -> Job {
    Job {
        name,
        ms,
        fails,
        how: How::Error,
    }
}

/// A job that panics after `ms`, with a payload of the given kind.
pub fn panicking(name: &'static str, ms: u64, how: How) -> Job {
    Job {
        name,
        ms,
        fails: u32::MAX,
        how,
    }
}

/// The work's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boom(pub &'static str);

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} went wrong", self.0)
    }
}

/// The work as the pool sees it.
pub type WorkFuture = Pin<Box<dyn Future<Output = Result<(), Boom>> + Send>>;

/// Everything a run did, on one timeline: `"sent A"`, `"refused A"` (the send failed), and for
/// each attempt `"A started"`, `"A failed"`, `"A finished"` (it returned, failed or not) or
/// `"A dropped"` (cancelled). A job's first attempt is called by its name, `A`; later ones
/// `A#2`, `A#3`, ...
#[derive(Debug, Clone)]
pub struct Log {
    pub timeline: Timeline,
    /// Attempts in flight: entered at an attempt's first poll, left when it ends or is dropped.
    pub probe: ConcurrencyProbe,
    attempts: Arc<Mutex<HashMap<&'static str, u32>>>,
    workers: Arc<Mutex<Vec<(String, usize)>>>,
}

impl Log {
    pub fn new() -> Self {
        Self {
            timeline: Timeline::start(),
            probe: ConcurrencyProbe::new(),
            attempts: Arc::default(),
            workers: Arc::default(),
        }
    }

    /// The work function to give the pool: `work(worker, job)` notes the attempt, waits the
    /// job's time and ends as its script says.
    pub fn work(&self) -> impl Fn(usize, Job) -> WorkFuture + Send + Sync + 'static {
        let log = self.clone();
        move |worker, job| {
            let number = {
                let mut attempts = log.attempts.lock().unwrap();
                let count = attempts.entry(job.name).or_default();
                *count += 1;
                *count
            };
            let key = attempt_key(job.name, number);
            log.workers.lock().unwrap().push((key.clone(), worker));
            let timeline = log.timeline.clone();
            let failed = format!("{key} failed");
            let attempt = async move {
                tokio::time::sleep(Duration::from_millis(job.ms)).await;
                if number > job.fails {
                    return Ok(());
                }
                timeline.mark(failed);
                match job.how {
                    How::Error => Err(Boom(job.name)),
                    How::PanicStr => std::panic::panic_any(panic_text(job.name)),
                    How::PanicString => report::panic_with_string(panic_text(job.name)),
                }
            };
            Box::pin(log.probe.track(log.timeline.watch(key, attempt)))
        }
    }

    /// `(when, attempt)` of every attempt's start, in order.
    pub fn starts(&self) -> Vec<(Duration, String)> {
        self.with_suffix(" started")
    }

    /// The attempts, in the order they started.
    pub fn started(&self) -> Vec<String> {
        self.starts().into_iter().map(|(_, key)| key).collect()
    }

    /// When each attempt started, in order.
    pub fn start_times(&self) -> Vec<Duration> {
        self.starts().into_iter().map(|(at, _)| at).collect()
    }

    /// The consumer (slot) the attempt ran on.
    pub fn worker(&self, key: &str) -> Option<usize> {
        let workers = self.workers.lock().unwrap();
        workers.iter().find(|(k, _)| k == key).map(|&(_, w)| w)
    }

    /// Every slot number the work was called with, sorted, without repeats.
    pub fn slots(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = self
            .workers
            .lock()
            .unwrap()
            .iter()
            .map(|&(_, w)| w)
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    /// `(when, job)` of every send that went through, in order.
    pub fn sent(&self) -> Vec<(Duration, String)> {
        self.with_prefix("sent ")
    }

    /// `(when, job)` of every send that failed because the queue had gone.
    pub fn refused(&self) -> Vec<(Duration, String)> {
        self.with_prefix("refused ")
    }

    /// Attempts that ended without failing, in order.
    pub fn succeeded(&self) -> Vec<String> {
        let failed: Vec<String> = self
            .with_suffix(" failed")
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        self.with_suffix(" finished")
            .into_iter()
            .map(|(_, key)| key)
            .filter(|key| !failed.contains(key))
            .collect()
    }

    /// Attempts that were cancelled, with when.
    pub fn dropped(&self) -> Vec<(Duration, String)> {
        self.with_suffix(" dropped")
    }

    /// The most items ever waiting in the queue (sent, and not yet started by a consumer), and
    /// when that was first reached. Read from the order of events, so exact at one instant too.
    pub fn queue_peak(&self) -> (usize, Duration) {
        let (mut waiting, mut peak) = (0_usize, (0, Duration::ZERO));
        for (at, label) in self.timeline.events() {
            if label.starts_with("sent ") {
                waiting += 1;
            } else if label.ends_with(" started") && !label.contains('#') {
                waiting = waiting.saturating_sub(1);
            }
            if waiting > peak.0 {
                peak = (waiting, at);
            }
        }
        peak
    }

    /// The first time a slot started an attempt while an attempt of that same slot was still
    /// running: two consumers alive in one slot.
    pub fn slot_clash(&self) -> Option<String> {
        let workers = self.workers.lock().unwrap().clone();
        let slot = |key: &str| workers.iter().find(|(k, _)| k == key).map(|&(_, w)| w);
        let mut busy: HashMap<usize, String> = HashMap::new();
        for (at, label) in self.timeline.events() {
            if let Some(key) = label.strip_suffix(" started") {
                let Some(worker) = slot(key) else { continue };
                if let Some(other) = busy.insert(worker, key.to_owned()) {
                    return Some(format!(
                        "consumer {worker} started {key} at {:?} while {other} was still running \
                         on it",
                        At(at)
                    ));
                }
            } else if let Some(key) = label
                .strip_suffix(" finished")
                .or_else(|| label.strip_suffix(" dropped"))
                && let Some(worker) = slot(key)
                && busy.get(&worker).is_some_and(|k| k == key)
            {
                busy.remove(&worker);
            }
        }
        None
    }

    fn with_suffix(&self, suffix: &str) -> Vec<(Duration, String)> {
        self.timeline
            .events()
            .into_iter()
            .filter_map(|(at, label)| label.strip_suffix(suffix).map(|key| (at, key.to_owned())))
            .collect()
    }

    fn with_prefix(&self, prefix: &str) -> Vec<(Duration, String)> {
        self.timeline
            .events()
            .into_iter()
            .filter_map(|(at, label)| label.strip_prefix(prefix).map(|key| (at, key.to_owned())))
            .collect()
    }
}

/// `A` for a job's first attempt, `A#2` for the second, ...
pub fn attempt_key(name: &str, number: u32) -> String {
    if number == 1 {
        name.to_owned()
    } else {
        format!("{name}#{number}")
    }
}

/// What a panicking job's panic says: a `&'static str`, so that `How::PanicStr` can panic
/// with one.
pub fn panic_text(name: &'static str) -> &'static str {
    match name {
        "P" => "P panicked",
        _ => "a job panicked",
    }
}

/// One step of a producer.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send this job, waiting for room in the queue.
    Send(Job),
    /// Wait until this many ms after the start.
    Until(u64),
}

pub fn send(job: Job) -> Step {
    Step::Send(job)
}

pub fn until(ms: u64) -> Step {
    Step::Until(ms)
}

/// Spawns a producer that runs `steps`, then drops its sender. A send that fails (the queue's
/// consumers are gone) is noted as `refused` and ends the producer.
pub fn produce(queue: mpsc::Sender<Job>, timeline: Timeline, steps: Vec<Step>) {
    tokio::spawn(async move {
        for step in steps {
            match step {
                Step::Until(ms) => {
                    let wait = Duration::from_millis(ms).saturating_sub(timeline.now());
                    tokio::time::sleep_until(Instant::now() + wait).await;
                }
                Step::Send(job) => {
                    let name = job.name;
                    if queue.send(job).await.is_ok() {
                        timeline.mark(format!("sent {name}"));
                    } else {
                        timeline.mark(format!("refused {name}"));
                        return;
                    }
                }
            }
        }
    });
}

/// Producers that each send their jobs as fast as the queue lets them, then stop.
pub fn producers(jobs: Vec<Vec<Job>>) -> Vec<Vec<Step>> {
    jobs.into_iter()
        .map(|jobs| jobs.into_iter().map(send).collect())
        .collect()
}

/// Starts `pool` with the logging work, spawns the producers (in order), and drops the
/// original sender, so the queue closes when the last producer is done.
pub fn start(pool: Pool, producers: Vec<Vec<Step>>) -> (Log, Supervisor<Job, Boom>) {
    let log = Log::new();
    let (queue, supervisor) = pool.start(log.work());
    for steps in producers {
        produce(queue.clone(), log.timeline.clone(), steps);
    }
    (log, supervisor)
}

/// One whole run: what the supervisor returned, when, and the log.
#[derive(Debug)]
pub struct Run {
    pub outcome: Outcome<Job, Boom>,
    /// When the supervisor returned (virtual time since the start).
    pub at: Duration,
    pub log: Log,
}

/// [`start`], then waits for the supervisor (at most [`PATIENCE`]).
pub async fn run(pool: Pool, producers: Vec<Vec<Step>>, hint: &Hint) -> Run {
    let (log, supervisor) = start(pool, producers);
    let outcome = completes_within("the supervisor", supervisor, PATIENCE, hint).await;
    Run {
        outcome,
        at: log.timeline.now(),
        log,
    }
}

/// Parks of the runtime's thread so far: on the paused clock, about one per instant the clock
/// jumps to, so code that wakes on a timer to look around shows up as many more parks.
pub fn parks() -> u64 {
    tokio::runtime::Handle::current()
        .metrics()
        .worker_park_count(0)
}

/// `(when, what)` pairs sorted by name, for events at one instant in an order nobody promises.
pub fn sorted(mut events: Vec<(Duration, String)>) -> Vec<(At, String)> {
    events.sort_by(|a, b| a.1.cmp(&b.1));
    events
        .into_iter()
        .map(|(at, name)| (At(at), name))
        .collect()
}

/// `(ms, what)` pairs as the log shows them.
pub fn events(list: &[(u64, &str)]) -> Vec<(At, String)> {
    list.iter()
        .map(|&(at, name)| (At(Duration::from_millis(at)), name.to_owned()))
        .collect()
}

/// `(name, ms)` pairs as `"name at ms"`, the way the schedule checks show attempts.
pub fn attempts(list: &[(&str, u64)]) -> Vec<String> {
    list.iter()
        .map(|&(name, at)| format!("{name} at {at}ms"))
        .collect()
}

/// The log's attempts as `"name at ms"`.
pub fn attempts_of(log: &Log) -> Vec<String> {
    log.starts()
        .into_iter()
        .map(|(at, key)| format!("{key} at {:?}", At(at)))
        .collect()
}
