//! Runs one kata test so that it can neither hang, nor fill the machine, nor lie about time.
//!
//! Three limits guard every test, because three different things can go wrong:
//!
//! 1. **Virtual time.** The body runs on a current-thread runtime with the clock paused. When
//!    every task is waiting, tokio jumps the clock to the next timer, so a test that sleeps for
//!    an hour finishes in microseconds and an *async* deadlock (everyone awaiting something that
//!    never comes) reaches the virtual limit at once. The failure says how many tasks are alive.
//! 2. **Real time.** Code that never yields (a busy loop, `std::thread::sleep`, a `std::sync`
//!    deadlock, a `spawn_blocking` job that never returns) keeps the runtime's thread, and a held
//!    thread never advances the paused clock: a tokio timeout alone would wait forever. Code that
//!    yields but never ends (tasks that only `yield_now`) keeps the clock still too. So the body
//!    runs on a thread of its own and the test's thread waits for it with a real-time limit. On
//!    expiry the test fails with a message naming it and saying which of the two it was (tokio's
//!    busy time moved, or it did not); the stuck thread is abandoned (Rust cannot kill a
//!    thread) and dies with the test process.
//! 3. **Memory.** The test's heap account has a ceiling (512 MiB unless said otherwise): a thread
//!    that allocates past it is stopped inside the allocator, and the test fails with the figure.
//!
//! Every test also leaves a [`Record`] for the runner when `KATA_RECORD_DIR` is set (see
//! [`crate::record`]): the runner reads results from there, never from what a binary prints.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Once, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::completion::alive_tasks;
use crate::heap::Account;
use crate::record::{self, Clock, Figures, Outcome, Record, Stuck};
use crate::report::{self, Kind};
use kata_record::settings::Settings;

/// The default virtual-time limit: far beyond any kata's schedule, and free to reach.
const DEFAULT_VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);
/// The watchdog limit for the rest of a run once one test has hung. A hang in the learner's code
/// usually hangs every test, and the abandoned threads keep spinning: waiting the full limit for
/// each would turn one mistake into a minute of silence.
const AFTER_A_HANG: Duration = Duration::from_secs(1);
/// How often the test's thread looks at the memory ceiling and tokio's busy time while it waits.
const SLICE: Duration = Duration::from_millis(20);

/// The environment variable set in a child process that runs one test under a file-size limit.
const CHILD_VAR: &str = "KATA_HARNESS_CHILD";

/// The first test of this process that the watchdog stopped.
static HUNG: OnceLock<String> = OnceLock::new();

/// The limits the environment asks for (`KATA_WATCHDOG_SECS`, `KATA_MEMORY_LIMIT_MIB`), read
/// once per process; a value that makes no sense is an error every test reports, rather than a
/// limit silently ignored.
fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(Settings::from_env)
}

/// How one test runs. Built by `#[kata_harness::test]`; build it by hand only for odd cases.
#[derive(Debug, Clone)]
pub struct TestConfig {
    name: &'static str,
    paused: bool,
    watchdog: Duration,
    virtual_limit: Duration,
    memory_limit: usize,
    own_process: bool,
    file_size_limit: Option<u64>,
    record_dir: Option<PathBuf>,
    settings_error: Option<String>,
}

impl TestConfig {
    /// A paused-clock test called `name` (shown in every failure) with the default limits.
    pub fn new(name: &'static str) -> Self {
        let (settings, settings_error) = match settings() {
            Ok(settings) => (*settings, None),
            Err(error) => (Settings::default(), Some(error.clone())),
        };
        Self {
            name,
            paused: true,
            watchdog: settings.watchdog,
            virtual_limit: DEFAULT_VIRTUAL_LIMIT,
            memory_limit: settings.memory_limit,
            own_process: false,
            file_size_limit: None,
            record_dir: record::dir_from_env(),
            settings_error,
        }
    }

    /// Run on tokio's paused clock (the default) or on the real one.
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Real time the test may take before the watchdog fails it (`KATA_WATCHDOG_SECS`, or
    /// 5 s, by default).
    pub fn watchdog(mut self, limit: Duration) -> Self {
        self.watchdog = limit;
        self
    }

    /// At least `limit` of real time before the watchdog fails the test: for a test that needs
    /// longer than most (large files), so that a larger `KATA_WATCHDOG_SECS` still wins.
    pub fn watchdog_at_least(mut self, limit: Duration) -> Self {
        self.watchdog = self.watchdog.max(limit);
        self
    }

    /// Virtual time the test may take before it counts as deadlocked.
    pub fn virtual_limit(mut self, limit: Duration) -> Self {
        self.virtual_limit = limit;
        self
    }

    /// The heap ceiling of the test, in bytes.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Runs the test in a child process of its own (the same test binary, run again for this
    /// test alone): for a test that changes what is process-wide, such as the current
    /// directory, while other tests run beside it. Unix only: elsewhere the test is skipped.
    pub fn own_process(mut self) -> Self {
        self.own_process = true;
        self
    }

    /// Runs the test in a child process whose files may not grow past about `bytes` (the
    /// shell's `ulimit -f`, so rounded up to its 512- or 1024-byte blocks): a write past it fails
    /// with "File too large", the way a full disk fails a write. This is how a suite gives code
    /// that writes to a path a destination that fails half way. Unix only: elsewhere the test
    /// is skipped (see [`crate::files`]).
    pub fn file_size_limit(mut self, bytes: u64) -> Self {
        self.own_process = true;
        self.file_size_limit = Some(bytes);
        self
    }

    /// Write the test's record into `dir` (see [`crate::record`]); by default records go to
    /// `KATA_RECORD_DIR` when that is set, and nowhere otherwise.
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

    fn write(&self, record: &Record) {
        if let Some(dir) = &self.record_dir {
            record::write(dir, record);
        }
    }
}

/// The last panic seen on a thread, as the panic hook saw it.
#[derive(Debug, Clone)]
struct PanicSeen {
    message: String,
    location: Option<String>,
    kind: Option<Kind>,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<PanicSeen>> = const { RefCell::new(None) };
}

/// `exercises/ticker/../../tests/ticker.rs` reads better as `tests/ticker.rs`.
fn tidy_path(path: &str) -> &str {
    match path.rfind("../") {
        Some(at) => &path[at + 3..],
        None => path,
    }
}

/// Installs (once per process) a panic hook that notes where each panic happened and whether a
/// check raised it, then lets the previous hook print it as usual.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let seen = PanicSeen {
                message: report::panic_text(info.payload()),
                location: info
                    .location()
                    .map(|at| format!("{}:{}:{}", tidy_path(at.file()), at.line(), at.column())),
                kind: report::take_kind(),
            };
            let _ = LAST_PANIC.try_with(|last| *last.borrow_mut() = Some(seen));
            previous(info);
        }));
    });
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
enum BodyEnd {
    Finished,
    /// The virtual limit passed; this many tasks were still alive.
    VirtualTimeout {
        alive: usize,
    },
    Panicked {
        payload: Box<dyn Any + Send>,
        seen: Option<PanicSeen>,
    },
}

/// How the test's thread saw the test end.
enum Ending {
    Body(BodyEnd, Duration),
    Lost,
    OutOfMemory,
    Hung(Stuck),
}

/// tokio's busy time and park count on the test's runtime: if neither moves, no task runs.
fn activity(handle: &tokio::runtime::Handle) -> (Duration, u64) {
    let metrics = handle.metrics();
    (
        metrics.worker_total_busy_duration(0),
        metrics.worker_park_unpark_count(0),
    )
}

/// Runs `make()`'s future as a test under the three limits (see the module docs).
///
/// `make` builds the future on the test's own thread, so the future itself need not be `Send`.
/// Panics (and so fails the test) when the body panics, deadlocks, hangs or runs out of memory.
pub fn run_test<M, F>(config: TestConfig, make: M)
where
    M: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    install_panic_hook();
    let test = config.test_name();
    let mut record = Record::running(&test);
    record.clock = Some(if config.paused {
        Clock::Paused
    } else {
        Clock::Real
    });
    if let Some(error) = &config.settings_error {
        record.outcome = Outcome::Panicked;
        record.message = Some(error.clone());
        config.write(&record);
        panic!("{error}");
    }
    if config.own_process && std::env::var(CHILD_VAR).ok().as_deref() != Some(test.as_str()) {
        return child::run(&config, &test, config.file_size_limit);
    }
    config.write(&record);

    let (report, outcome) = mpsc::channel();
    let (runtime_tx, runtime_rx) = mpsc::channel();
    let virtual_limit = config.virtual_limit;
    let paused = config.paused;
    let started = Instant::now();
    let figures = Arc::new(Figures::default());
    let body_figures = Arc::clone(&figures);
    let account = Account::open_with_limit(config.memory_limit);

    thread::Builder::new()
        .name(test.clone())
        .spawn(move || {
            // One heap account for the test's thread and its runtime's blocking pool, so
            // `tokio::fs` and `spawn_blocking` allocations count as the test's own.
            crate::heap::join(account);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(paused)
                .on_thread_start(move || crate::heap::join(account))
                .build()
                .expect("kata-harness: cannot build a tokio runtime");
            let _ = runtime_tx.send(runtime.handle().clone());
            record::enter(Arc::clone(&body_figures));
            let body_started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                runtime.block_on(async {
                    let _clock = VirtualClock {
                        figures: Arc::clone(&body_figures),
                        start: tokio::time::Instant::now(),
                    };
                    match tokio::time::timeout(virtual_limit, make()).await {
                        Ok(()) => BodyEnd::Finished,
                        Err(_) => BodyEnd::VirtualTimeout {
                            alive: alive_tasks(),
                        },
                    }
                })
            }));
            let real = body_started.elapsed();
            let end = result.unwrap_or_else(|payload| BodyEnd::Panicked {
                payload,
                seen: LAST_PANIC.with(|last| last.borrow_mut().take()),
            });
            // A test may leave a `spawn_blocking` job running; dropping the runtime would wait
            // for it forever, so give it a moment and move on.
            runtime.shutdown_timeout(Duration::from_millis(200));
            // The receiver is gone only when the test's thread already failed the test.
            let _ = report.send((end, real));
        })
        .expect("kata-harness: cannot start the test thread");

    let first_hung = HUNG.get().cloned();
    let watchdog = if first_hung.is_some() {
        config.watchdog.min(AFTER_A_HANG)
    } else {
        config.watchdog
    };
    let handle = runtime_rx.recv_timeout(watchdog).ok();
    // Activity one second before the watchdog's deadline, to compare with the activity at it.
    let mut before_deadline = None;
    let ending = loop {
        match outcome.recv_timeout(SLICE) {
            Ok((end, real)) => break Ending::Body(end, real),
            Err(mpsc::RecvTimeoutError::Disconnected) => break Ending::Lost,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if account.exceeded() {
            break Ending::OutOfMemory;
        }
        let elapsed = started.elapsed();
        if before_deadline.is_none() && elapsed + Duration::from_secs(1) >= watchdog {
            before_deadline = handle.as_ref().map(activity);
        }
        if elapsed >= watchdog {
            let now = handle.as_ref().map(activity);
            let stuck = if now.is_some() && now != before_deadline {
                Stuck::KeptPolling
            } else {
                Stuck::InOnePoll
            };
            break Ending::Hung(stuck);
        }
    };

    if crate::heap::is_installed() {
        figures.set_peak_heap(account.peak());
    }
    figures.fill(&mut record);
    match ending {
        Ending::Body(BodyEnd::Finished, real) => {
            record.outcome = Outcome::Passed;
            record.real = Some(real);
            config.write(&record);
        }
        Ending::Body(BodyEnd::Panicked { payload, seen }, real) => {
            let message = report::panic_text(payload.as_ref());
            let seen = seen.filter(|seen| seen.message == message);
            record.outcome = match seen.as_ref().and_then(|seen| seen.kind) {
                Some(Kind::Check) => Outcome::CheckFailed,
                Some(Kind::Blocked) => Outcome::Blocked,
                None if message.contains("not yet implemented") => Outcome::NotStarted,
                None => Outcome::Panicked,
            };
            record.location = seen.and_then(|seen| seen.location);
            record.message = Some(message);
            record.real = Some(real);
            config.write(&record);
            resume_unwind(payload);
        }
        Ending::Body(BodyEnd::VirtualTimeout { alive }, real) => {
            let message = report::format(
                &format!("{test}: never finished (deadlock)"),
                format_args!(
                    "every task stopped making progress; {alive} tokio task(s) still alive"
                ),
                format_args!("the test to finish within {virtual_limit:?} of virtual time"),
                "on the paused clock this means everything is waiting for something that never \
                 comes: a slot or lock held while awaiting work that needs it, a channel nobody \
                 sends on, or a handle to a task that never ends",
            );
            record.outcome = Outcome::Deadlock;
            record.real = Some(real);
            fail_with(&config, record, message);
        }
        Ending::Lost => {
            let message = format!("{test}: the test thread ended without a result");
            record.outcome = Outcome::Panicked;
            record.real = Some(started.elapsed());
            fail_with(&config, record, message);
        }
        Ending::OutOfMemory => {
            let limit = crate::heap::bytes(config.memory_limit as f64);
            let message = report::format(
                &format!("{test}: stopped for using too much memory"),
                format_args!(
                    "{} allocated when it was stopped, after {:.1?}",
                    crate::heap::bytes(account.peak() as f64),
                    started.elapsed()
                ),
                format_args!("the test to stay under {limit} of heap (KATA_MEMORY_LIMIT_MIB)"),
                "something keeps growing that should not: a Vec, a map or a channel that is only \
                 ever added to, listeners or tasks never removed, a buffer the size of the input. \
                 The thread that went past the ceiling was stopped where it stood",
            );
            record.outcome = Outcome::OutOfMemory;
            record.real = Some(started.elapsed());
            fail_with(&config, record, message);
        }
        Ending::Hung(stuck) => {
            let _ = HUNG.set(test.clone());
            let shortened = match &first_hung {
                Some(first) => format!(
                    " (shortened from {:?}: {first} already hung)",
                    config.watchdog
                ),
                None => String::new(),
            };
            let hint = match stuck {
                Stuck::InOnePoll => {
                    "no task ran while the watchdog waited: something held the runtime's thread \
                     and never gave control back to tokio, so not even the paused clock could \
                     move. Look for a loop with no .await in it, std::thread::sleep, a \
                     std::sync::Mutex locked twice, blocking I/O, or a spawn_blocking job the \
                     code waits for that never returns"
                }
                Stuck::KeptPolling => {
                    "tokio kept running tasks, but the test never finished: the code yields, but \
                     something loops for ever (or for billions of steps): tasks that only \
                     yield_now() to each other, a retry loop whose condition never comes true, \
                     or a loop that awaits once per step of a huge count"
                }
            };
            let message = report::format(
                &format!("{test}: stopped by the watchdog"),
                format_args!("still running after {:.1?}", started.elapsed()),
                format_args!("the test to finish within {watchdog:?} of real time{shortened}"),
                hint,
            );
            record.outcome = Outcome::Hung;
            record.stuck = Some(stuck);
            record.real = Some(started.elapsed());
            fail_with(&config, record, message);
        }
    }
}

/// Records `message` as the test's failure and panics with it.
fn fail_with(config: &TestConfig, mut record: Record, message: String) -> ! {
    record.message = Some(message.clone());
    config.write(&record);
    panic!("{message}")
}

/// Whether this process is a child running one test alone (see [`TestConfig::own_process`] and
/// [`TestConfig::file_size_limit`]): inside it, writes past a file-size limit fail.
pub fn file_size_limited() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

/// Whether this process runs one test alone (see [`TestConfig::own_process`]): the test may
/// change what is process-wide, such as the current directory.
pub fn in_own_process() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

mod child {
    //! One test in a child process of its own: the same test binary, run again with
    //! `--exact <test>`, under `sh -c 'ulimit -f ...'` when the test asks for a file-size limit.

    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::{CHILD_VAR, TestConfig, fail_with};
    use crate::record::{Outcome, RECORD_DIR_VAR, Record};

    /// What the parent waits beyond the child's own watchdog before it kills the child.
    const GRACE: Duration = Duration::from_secs(15);

    pub(super) fn run(config: &TestConfig, test: &str, limit: Option<u64>) {
        if !cfg!(unix) {
            eprintln!(
                "skipped: {test} needs a process of its own, which this harness makes only on Unix"
            );
            let record = Record {
                outcome: Outcome::Passed,
                ..Record::running(test)
            };
            config.write(&record);
            return;
        }
        let records = tempfile::tempdir().expect("kata-harness: cannot make a temporary directory");
        let exe = std::env::current_exe().expect("kata-harness: cannot find the test binary");
        // The shell sets the limit and ignores SIGXFSZ (whose default would kill the process):
        // a write past the limit then fails with EFBIG, "File too large". An ignored signal
        // stays ignored across `exec`. Blocks are 512 bytes in POSIX sh (1024 in bash).
        // Without a limit, `ulimit -f unlimited` changes nothing.
        let blocks = limit.map_or("unlimited".to_owned(), |limit| {
            limit.div_ceil(512).max(1).to_string()
        });
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f \"$1\" || exit 97; shift; exec \"$@\"")
            .arg("sh")
            .arg(blocks)
            .arg(&exe)
            .args(["--exact", test, "--test-threads=1", "--quiet"])
            .env(CHILD_VAR, test)
            .env(RECORD_DIR_VAR, records.path())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kata-harness: cannot start sh to run the test under a file-size limit");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().ok().flatten() {
                break Some(status);
            }
            if started.elapsed() > config.watchdog + GRACE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().ok();
        let printed = output
            .map(|out| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .unwrap_or_default();
        let record = crate::record::Record::parse(
            &std::fs::read_to_string(Record::path_in(records.path(), test)).unwrap_or_default(),
        );
        match record {
            Some(record) if record.outcome == Outcome::Passed => config.write(&record),
            Some(record) if record.outcome != Outcome::Running => {
                let message = record.message.clone().unwrap_or_default();
                fail_with(config, record, message);
            }
            _ => {
                let mut record = Record::running(test);
                record.outcome = Outcome::Panicked;
                let how = match status {
                    None => "did not end, and was killed".to_owned(),
                    Some(status) => format!("ended ({status}) without a result"),
                };
                fail_with(
                    config,
                    record,
                    format!(
                        "{test}: the child process that runs this test under a file-size limit \
                         {how}. It printed:\n{}",
                        printed.trim()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_their_way_up() {
        assert_eq!(tidy_path("exercises/t/../../tests/t.rs"), "tests/t.rs");
        assert_eq!(tidy_path("src/lib.rs"), "src/lib.rs");
    }
}
