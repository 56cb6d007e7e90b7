//! One test's record: how it ended and what it cost. The harness writes it, the runner reads it.
//!
//! The runner never believes what a test binary prints: a learner's `println!("test x ... ok")`
//! would read like a pass in libtest's human output. Instead, when `KATA_RECORD_DIR` is set,
//! every kata test writes one small file there, twice: as `running` when it starts and with its
//! outcome when it ends. A test whose record still says `running` after its binary exited was
//! running when the binary crashed (an abort, a signal, the OS killing it for memory).
//!
//! The format is `key=value` lines, readable by eye and by a shell; values are escaped so that a
//! multi-line failure message stays on one line:
//!
//! ```text
//! test=stage1_ticks::case_2_one_second
//! outcome=check-failed
//! clock=paused
//! real_ns=1834021
//! virtual_ns=1000000000
//! peak_heap=52113
//! max_concurrency=4
//! concurrency=0:1,10:2,20:0
//! location=tests/ticker.rs:42:5
//! message=ticks: wrong schedule\n  expected: ...
//! ```
//!
//! This crate has no dependencies, so the runner reads records without building tokio. It also
//! holds the other thing the two share: the environment settings both validate ([`settings`]).

pub mod settings;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable naming the directory records go to.
pub const RECORD_DIR_VAR: &str = "KATA_RECORD_DIR";

/// How a test ended, as the harness saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Started and not ended yet; after the binary exited: it crashed while this test ran.
    #[default]
    Running,
    Passed,
    /// A check of the suite failed (expected vs actual, with a hint).
    CheckFailed,
    /// The code under test is still `todo!()`.
    NotStarted,
    /// A panic that is not a check: the learner's own `panic!`, `unwrap`, index out of bounds.
    Panicked,
    /// The blocking check saw the executor's thread held (a symptom-explaining cause).
    Blocked,
    /// Everything waited for something that never came (virtual time ran out).
    Deadlock,
    /// The real-time watchdog stopped it: see [`Stuck`] for how.
    Hung,
    /// It allocated past the per-test memory ceiling and was stopped.
    OutOfMemory,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Self::Running,
        Self::Passed,
        Self::CheckFailed,
        Self::NotStarted,
        Self::Panicked,
        Self::Blocked,
        Self::Deadlock,
        Self::Hung,
        Self::OutOfMemory,
    ];

    /// The word in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Passed => "passed",
            Self::CheckFailed => "check-failed",
            Self::NotStarted => "not-started",
            Self::Panicked => "panicked",
            Self::Blocked => "blocked",
            Self::Deadlock => "deadlock",
            Self::Hung => "hung",
            Self::OutOfMemory => "out-of-memory",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == word)
    }

    /// Whether the test passed.
    pub fn passed(self) -> bool {
        self == Self::Passed
    }
}

/// How a hung test was stuck, as the watchdog could tell from the runtime's poll count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stuck {
    /// No task was polled while the watchdog waited: something never gave the thread back (a
    /// loop without `.await`, `std::thread::sleep`, a `std::sync::Mutex`, blocking I/O).
    InOnePoll,
    /// Tasks kept being polled but the test never finished: it yields, but has far too many
    /// steps, or only `yield_now`s.
    KeptPolling,
}

impl Stuck {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InOnePoll => "in-one-poll",
            Self::KeptPolling => "kept-polling",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Self::InOnePoll, Self::KeptPolling]
            .into_iter()
            .find(|stuck| stuck.as_str() == word)
    }
}

/// Which clock a test ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Clock {
    /// tokio's paused clock: its times are exact and the same on every machine.
    Paused,
    /// The real clock (`real_time` tests): its times are this machine's, noise included.
    Real,
}

impl Clock {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paused => "paused",
            Self::Real => "real",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Self::Paused, Self::Real]
            .into_iter()
            .find(|clock| clock.as_str() == word)
    }
}

/// What the harness saw of one test. `None`: not measured (or not applicable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The name libtest gives the test (`stage2_b::case_1`).
    pub test: String,
    pub outcome: Outcome,
    /// For a hung test: how it was stuck.
    pub stuck: Option<Stuck>,
    /// The clock the test ran on (so a reader knows whether `virtual_time` is exact).
    pub clock: Option<Clock>,
    pub real: Option<Duration>,
    /// The test's time on its runtime's clock: exact on the paused clock. Absent when the test
    /// hung: its clock never stopped.
    pub virtual_time: Option<Duration>,
    /// Peak heap bytes of the test's account (when the suite installs the counting allocator).
    pub peak_heap: Option<u64>,
    /// The most jobs a concurrency probe saw in flight at once (when the test used one).
    pub max_concurrency: Option<u64>,
    /// The probe's in-flight count over time, `(milliseconds since the probe was made, jobs)`
    /// at every change, thinned to at most [`MAX_POINTS`] points.
    pub concurrency: Vec<(u64, u64)>,
    /// For a failure: where it happened, e.g. `tests/ticker.rs:42:5`.
    pub location: Option<String>,
    /// For a failure: the message, as the harness or the panic wrote it.
    pub message: Option<String>,
}

/// The most points of concurrency history a record keeps.
pub const MAX_POINTS: usize = 400;

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `\` and line ends escaped, so a value stays on one line.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl Record {
    /// A record of `test` that has just started.
    pub fn running(test: impl Into<String>) -> Self {
        Self {
            test: test.into(),
            ..Self::default()
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = format!(
            "test={}\noutcome={}\n",
            escape(&self.test),
            self.outcome.as_str()
        );
        let mut field = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                let _ = writeln!(text, "{key}={}", escape(&value));
            }
        };
        field("stuck", self.stuck.map(|s| s.as_str().to_owned()));
        field("clock", self.clock.map(|c| c.as_str().to_owned()));
        field("real_ns", self.real.map(|d| nanos(d).to_string()));
        field(
            "virtual_ns",
            self.virtual_time.map(|d| nanos(d).to_string()),
        );
        field("peak_heap", self.peak_heap.map(|n| n.to_string()));
        field(
            "max_concurrency",
            self.max_concurrency.map(|n| n.to_string()),
        );
        field(
            "concurrency",
            (!self.concurrency.is_empty()).then(|| {
                self.concurrency
                    .iter()
                    .map(|(at, level)| format!("{at}:{level}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        );
        field("location", self.location.clone());
        field("message", self.message.clone());
        text
    }

    /// Parses a file's text; `None` without a test name or a known outcome. Unknown keys are
    /// skipped (a newer harness may write more).
    pub fn parse(text: &str) -> Option<Self> {
        let mut record = Self::default();
        let (mut named, mut outcome) = (false, false);
        for (key, value) in text.lines().filter_map(|line| line.split_once('=')) {
            let number = value.trim().parse::<u64>().ok();
            match key.trim() {
                "test" => {
                    record.test = unescape(value);
                    named = true;
                }
                "outcome" => {
                    record.outcome = Outcome::parse(value.trim())?;
                    outcome = true;
                }
                "stuck" => record.stuck = Stuck::parse(value.trim()),
                "clock" => record.clock = Clock::parse(value.trim()),
                "real_ns" => record.real = number.map(Duration::from_nanos),
                "virtual_ns" => record.virtual_time = number.map(Duration::from_nanos),
                "peak_heap" => record.peak_heap = number,
                "max_concurrency" => record.max_concurrency = number,
                "concurrency" => {
                    record.concurrency = value
                        .split(',')
                        .filter_map(|point| point.split_once(':'))
                        .filter_map(|(at, level)| Some((at.parse().ok()?, level.parse().ok()?)))
                        .collect();
                }
                "location" => record.location = Some(unescape(value)),
                "message" => record.message = Some(unescape(value)),
                _ => {}
            }
        }
        (named && outcome).then_some(record)
    }

    /// The record's file in `dir`: one per test, named after it.
    pub fn path_in(dir: &Path, test: &str) -> PathBuf {
        let name: String = test
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        dir.join(format!("{name}.txt"))
    }

    /// Writes the record into `dir`, replacing the test's earlier one at once (a temporary file
    /// renamed into place), so a reader never sees half a record.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path_in(dir, &self.test);
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, self.render())?;
        std::fs::rename(&temporary, &path)
    }
}

/// Every record in `dir`, by test name (an unreadable or foreign file is skipped).
pub fn read_dir(dir: &Path) -> BTreeMap<String, Record> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "txt"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|text| Record::parse(&text))
        .map(|record| (record.test.clone(), record))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Record {
        Record {
            test: "stage2_b::case_1".to_owned(),
            outcome: Outcome::Hung,
            stuck: Some(Stuck::KeptPolling),
            clock: Some(Clock::Paused),
            real: Some(Duration::from_micros(5)),
            virtual_time: Some(Duration::from_secs(1)),
            peak_heap: Some(4096),
            max_concurrency: Some(3),
            concurrency: vec![(0, 1), (10, 3), (20, 0)],
            location: Some("tests/ticker.rs:42:5".to_owned()),
            message: Some("ticks: wrong\n  expected: a = b\\c\r\n  actual:   \\n".to_owned()),
        }
    }

    #[test]
    fn a_record_survives_the_round_trip() {
        let record = full();
        assert_eq!(Record::parse(&record.render()), Some(record));
        for outcome in Outcome::ALL {
            let record = Record {
                outcome,
                ..Record::running("stage1_a")
            };
            assert_eq!(Record::parse(&record.render()), Some(record));
        }
    }

    #[test]
    fn a_message_stays_on_one_line() {
        let text = full().render();
        assert_eq!(text.lines().count(), 11, "{text}");
        assert!(
            text.ends_with(
                "message=ticks: wrong\\n  expected: a = b\\\\c\\r\\n  actual:   \\\\n\n"
            )
        );
    }

    #[test]
    fn unmeasured_figures_are_left_out() {
        assert_eq!(
            Record::running("stage1_a").render(),
            "test=stage1_a\noutcome=running\n"
        );
    }

    #[test]
    fn unknown_keys_are_skipped_and_a_record_needs_a_name_and_an_outcome() {
        let record = Record::parse("test=a\noutcome=passed\ncolour=blue\n").unwrap();
        assert_eq!(record.outcome, Outcome::Passed);
        assert!(Record::parse("outcome=passed\n").is_none());
        assert!(Record::parse("test=a\n").is_none());
        assert!(Record::parse("test=a\noutcome=maybe\n").is_none());
    }

    #[test]
    fn records_are_written_and_read_back_by_test_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = full();
        record.write(dir.path()).unwrap();
        record.outcome = Outcome::Passed;
        record.write(dir.path()).unwrap();
        Record::running("stage1_other").write(dir.path()).unwrap();
        std::fs::write(dir.path().join("stray.log"), "test=x\noutcome=passed\n").unwrap();
        let read = read_dir(dir.path());
        assert_eq!(read.len(), 2);
        assert_eq!(read["stage2_b::case_1"], record);
        assert_eq!(read["stage1_other"].outcome, Outcome::Running);
        assert_eq!(
            Record::path_in(Path::new("d"), "stage2_b::case_1"),
            Path::new("d/stage2_b--case_1.txt")
        );
    }
}
