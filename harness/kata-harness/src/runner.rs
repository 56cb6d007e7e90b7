//! Runs one kata test so that it can neither hang nor lie about time.
//!
//! Two limits guard every test, because two different things can go wrong:
//!
//! 1. **Virtual time.** The body runs on a current-thread runtime with the clock paused. When
//!    every task is waiting, tokio jumps the clock to the next timer, so a test that sleeps for
//!    an hour finishes in microseconds and an *async* deadlock (everyone awaiting something that
//!    never comes) reaches the virtual limit at once. The failure says how many tasks are alive.
//! 2. **Real time.** Code that never yields (a busy loop, `std::thread::sleep`, a `std::sync`
//!    deadlock, a `spawn_blocking` job that never returns, tasks that only `yield_now`) keeps the
//!    runtime busy, and a busy runtime never advances the paused clock: a tokio timeout alone
//!    would wait forever. So the body runs on a thread of its own and the test's thread waits for
//!    it with a real-time limit. On expiry the test fails with a message naming it; the stuck
//!    thread is abandoned (Rust cannot kill a thread) and dies with the test process.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::completion::alive_tasks;
use crate::record::{self, Ending, Figures};

/// The watchdog's default real-time limit; `KATA_WATCHDOG_SECS` overrides it (say, under a
/// debugger or on a very slow machine).
const DEFAULT_WATCHDOG: Duration = Duration::from_secs(5);
/// The default virtual-time limit: far beyond any kata's schedule, and free to reach.
const DEFAULT_VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);
/// The watchdog limit for the rest of a run once one test has hung. A hang in the learner's code
/// usually hangs every test, and the abandoned threads keep spinning: waiting the full limit for
/// each would turn one mistake into a minute of silence.
const AFTER_A_HANG: Duration = Duration::from_secs(1);

/// Set when the watchdog has stopped a test in this process.
static HUNG: AtomicBool = AtomicBool::new(false);

/// How one test runs. Built by `#[kata_harness::test]`; build it by hand only for odd cases.
#[derive(Debug, Clone)]
pub struct TestConfig {
    name: &'static str,
    paused: bool,
    watchdog: Duration,
    virtual_limit: Duration,
    record_dir: Option<PathBuf>,
}

impl TestConfig {
    /// A paused-clock test called `name` (shown in every failure) with the default limits.
    pub fn new(name: &'static str) -> Self {
        let watchdog = std::env::var("KATA_WATCHDOG_SECS")
            .ok()
            .and_then(|secs| secs.parse().ok())
            .map_or(DEFAULT_WATCHDOG, Duration::from_secs);
        Self {
            name,
            paused: true,
            watchdog,
            virtual_limit: DEFAULT_VIRTUAL_LIMIT,
            record_dir: record::dir_from_env(),
        }
    }

    /// Run on tokio's paused clock (the default) or on the real one.
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Real time the test may take before the watchdog fails it.
    pub fn watchdog(mut self, limit: Duration) -> Self {
        self.watchdog = limit;
        self
    }

    /// Virtual time the test may take before it counts as deadlocked.
    pub fn virtual_limit(mut self, limit: Duration) -> Self {
        self.virtual_limit = limit;
        self
    }

    /// Write the test's figures into `dir` when it ends (see [`crate::record`]); by default
    /// they go to `KATA_RECORD_DIR` when that is set, and nowhere otherwise.
    pub fn record_to(mut self, dir: impl Into<PathBuf>) -> Self {
        self.record_dir = Some(dir.into());
        self
    }

    /// The name libtest gives the test (`stage2_b::case_1`): the name of the thread it runs
    /// on, or the configured name without the crate in front.
    fn test_name(&self) -> String {
        let thread = std::thread::current();
        match thread.name() {
            Some(name) if name != "main" => name.to_owned(),
            _ => match self.name.split_once("::") {
                Some((_crate, rest)) => rest.to_owned(),
                None => self.name.to_owned(),
            },
        }
    }
}

/// Stores the virtual time the body took when dropped, so a body that panics is timed too.
struct VirtualClock {
    figures: Arc<Figures>,
    start: tokio::time::Instant,
}

impl Drop for VirtualClock {
    fn drop(&mut self) {
        self.figures.set_virtual(self.start.elapsed());
    }
}

/// What the body's thread reports back.
enum Outcome {
    Finished,
    /// The virtual limit passed; this many tasks were still alive.
    VirtualTimeout {
        alive: usize,
    },
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Runs `make()`'s future as a test under both limits (see the module docs).
///
/// `make` builds the future on the test's own thread, so the future itself need not be `Send`.
/// Panics (and so fails the test) when the body panics, deadlocks or hangs.
pub fn run_test<M, F>(config: TestConfig, make: M)
where
    M: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    let (report, outcome) = mpsc::channel();
    let virtual_limit = config.virtual_limit;
    let paused = config.paused;
    let started = Instant::now();
    let figures = config
        .record_dir
        .as_ref()
        .map(|_| Arc::new(Figures::default()));
    let body_figures = figures.clone();

    thread::Builder::new()
        .name(config.name.to_owned())
        .spawn(move || {
            // One heap account for the test's thread and its runtime's blocking pool, so
            // `tokio::fs` and `spawn_blocking` allocations count as the test's own.
            let account = crate::heap::Account::open();
            crate::heap::join(account);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(paused)
                .on_thread_start(move || crate::heap::join(account))
                .build()
                .expect("kata-harness: cannot build a tokio runtime");
            if let Some(figures) = &body_figures {
                record::enter(Arc::clone(figures));
            }
            let body_started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                runtime.block_on(async {
                    let _clock = body_figures.clone().map(|figures| VirtualClock {
                        figures,
                        start: tokio::time::Instant::now(),
                    });
                    match tokio::time::timeout(virtual_limit, make()).await {
                        Ok(()) => Outcome::Finished,
                        Err(_) => Outcome::VirtualTimeout {
                            alive: alive_tasks(),
                        },
                    }
                })
            }));
            if let Some(figures) = &body_figures {
                figures.set_real(body_started.elapsed());
                if crate::heap::is_installed() {
                    figures.set_peak_heap(account.peak());
                }
            }
            // A test may leave a `spawn_blocking` job running; dropping the runtime would wait
            // for it forever, so give it a moment and move on.
            runtime.shutdown_timeout(Duration::from_millis(200));
            // The receiver is gone only when the watchdog already failed the test.
            let _ = report.send(result.unwrap_or_else(Outcome::Panicked));
        })
        .expect("kata-harness: cannot start the test thread");

    let already_hung = HUNG.load(Ordering::Relaxed);
    let watchdog = if already_hung {
        config.watchdog.min(AFTER_A_HANG)
    } else {
        config.watchdog
    };
    let outcome = outcome.recv_timeout(watchdog);
    if let (Some(figures), Some(dir)) = (&figures, &config.record_dir) {
        let ending = match &outcome {
            Ok(Outcome::Finished) => Ending::Passed,
            Ok(Outcome::Panicked(_)) => Ending::Failed,
            Ok(Outcome::VirtualTimeout { .. }) => Ending::Deadlock,
            Err(_) => {
                figures.set_real(started.elapsed());
                Ending::Hung
            }
        };
        figures.write(dir, &config.test_name(), ending);
    }
    match outcome {
        Ok(Outcome::Finished) => {}
        Ok(Outcome::Panicked(payload)) => resume_unwind(payload),
        Ok(Outcome::VirtualTimeout { alive }) => panic!(
            "{}",
            crate::report::format(
                &format!("{}: never finished (deadlock)", config.name),
                format_args!("the test to finish within {virtual_limit:?} of virtual time"),
                format_args!(
                    "every task stopped making progress; {alive} tokio task(s) still alive"
                ),
                "on the paused clock this means everything is waiting for something that never \
                 comes: a slot or lock held while awaiting work that needs it, a channel nobody \
                 sends on, or a handle to a task that never ends",
            )
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{}: the test thread ended without a result", config.name)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            HUNG.store(true, Ordering::Relaxed);
            let shortened = if already_hung {
                " (shortened: an earlier test already hung)"
            } else {
                ""
            };
            panic!(
                "{}",
                crate::report::format(
                    &format!("{}: stopped by the watchdog", config.name),
                    format_args!("the test to finish within {watchdog:?} of real time{shortened}"),
                    format_args!("still running after {:.1?}", started.elapsed()),
                    "the code never gave control back to tokio, so not even the paused clock \
                     could move: a loop with no .await in it, std::thread::sleep, a \
                     std::sync::Mutex locked twice, a spawn_blocking job that never returns, or \
                     tasks that only yield_now()",
                )
            )
        }
    }
}
