//! Running a built suite and finding out what happened to each test.
//!
//! The binary is asked for its list of tests (`--list`), then run with the selection's filters
//! and `KATA_RECORD_DIR` set. Each test's result comes from the record the harness wrote for it:
//! how it ended, where, the message and the figures. A test whose record still says `running`
//! after the binary died was running when it crashed; a test with no record never ran through
//! the harness. libtest's own report is read for one thing only: what a failing test printed,
//! shown under its message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};
use kata_record::{Outcome, RECORD_DIR_VAR, Record};

use crate::repo::Kata;
use crate::selection::Selection;

/// How one test ended, as far as the runner can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Passed,
    /// The harness recorded this outcome (never `Passed` or `Running`).
    Failed(Outcome),
    /// It was running when the test binary died (an abort, a signal, the OS's out-of-memory
    /// killer).
    Crashed,
    /// It left no record: it never started, or it is not a kata test.
    NoRecord,
}

impl Verdict {
    pub fn passed(self) -> bool {
        self == Verdict::Passed
    }

    /// The word for it in the runner's cache.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed(outcome) => outcome.as_str(),
            Verdict::Crashed => "crashed",
            Verdict::NoRecord => "no-record",
        }
    }

    pub fn from_word(word: &str) -> Option<Verdict> {
        match word {
            "passed" => Some(Verdict::Passed),
            "crashed" => Some(Verdict::Crashed),
            "no-record" => Some(Verdict::NoRecord),
            _ => Outcome::ALL
                .into_iter()
                .find(|outcome| {
                    outcome.as_str() == word
                        && !matches!(outcome, Outcome::Passed | Outcome::Running)
                })
                .map(Verdict::Failed),
        }
    }
}

/// One test of a run.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub verdict: Verdict,
    pub record: Option<Record>,
    /// What the test printed (the learner's `println!`s), without the harness's own report.
    pub output: String,
}

/// What a run of a suite came to.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    /// Every test of the suite, selected or not.
    pub listed: Vec<String>,
    /// The selected tests, in the order the suite is written.
    pub results: Vec<TestResult>,
    /// How the test binary died, when it did not end on its own.
    pub crash: Option<String>,
}

impl SuiteRun {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.verdict.passed()).count()
    }

    pub fn failures(&self) -> impl Iterator<Item = &TestResult> {
        self.results.iter().filter(|r| !r.verdict.passed())
    }
}

/// The suite's tests, as the binary lists them.
pub fn list(binary: &Path, package_dir: &Path) -> Result<Vec<String>> {
    let output = Command::new(binary)
        .args(["--list", "--format", "terse"])
        .current_dir(package_dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "the suite cannot list its tests: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// Runs the selected tests of the suite `binary` (of the crate in `package_dir`), with records
/// written into `records` (emptied first).
pub fn run(
    kata: &Kata,
    binary: &Path,
    package_dir: &Path,
    selection: &Selection,
    records: &Path,
) -> Result<SuiteRun> {
    let listed = list(binary, package_dir)?;
    let records = fresh_dir(records)?;
    let records = records.path();
    let output = Command::new(binary)
        .args(["--format", "pretty", "--color", "never"])
        .args(selection.filters())
        .current_dir(package_dir)
        // What cargo would set for a test run, for suites that read them.
        .env("CARGO_MANIFEST_DIR", package_dir)
        .env(RECORD_DIR_VAR, records)
        // Messages, not backtraces: the harness's report is what a learner needs.
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let records = kata_record::read_dir(records);
    let printed = printed_by_test(&String::from_utf8_lossy(&output.stdout));
    let crash = crash(output.status);

    let order = kata.tests_in_order().unwrap_or_default();
    let position = |name: &str| {
        let function = name.split("::").next().unwrap_or(name);
        order
            .iter()
            .position(|f| f == function)
            .unwrap_or(usize::MAX)
    };
    let mut results: Vec<TestResult> = listed
        .iter()
        .filter(|name| selection.covers(name))
        .map(|name| {
            let record = records.get(name).cloned();
            let verdict = match record.as_ref().map(|r| r.outcome) {
                Some(Outcome::Passed) => Verdict::Passed,
                Some(Outcome::Running) if crash.is_some() => Verdict::Crashed,
                Some(Outcome::Running) | None => Verdict::NoRecord,
                Some(outcome) => Verdict::Failed(outcome),
            };
            let output = printed
                .get(name)
                .map(|text| learners_output(text, record.as_ref()))
                .unwrap_or_default();
            TestResult {
                name: name.clone(),
                verdict,
                record,
                output,
            }
        })
        .collect();
    results.sort_by_key(|result| (position(&result.name), result.name.clone()));
    Ok(SuiteRun {
        listed,
        results,
        crash,
    })
}

/// Where a run's records go: `preferred`, emptied, or, when that cannot be made (`target/kata`
/// is a file, say: the cache reports it), a temporary directory removed after the run.
enum RecordDir {
    Kept(PathBuf),
    Temporary(PathBuf),
}

impl RecordDir {
    fn path(&self) -> &Path {
        match self {
            RecordDir::Kept(path) | RecordDir::Temporary(path) => path,
        }
    }
}

impl Drop for RecordDir {
    fn drop(&mut self) {
        if let RecordDir::Temporary(path) = self {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

fn fresh_dir(preferred: &Path) -> Result<RecordDir> {
    let make = |dir: &Path| -> std::io::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)
    };
    if make(preferred).is_ok() {
        return Ok(RecordDir::Kept(preferred.to_owned()));
    }
    let fallback = std::env::temp_dir().join(format!("kata-records-{}", std::process::id()));
    make(&fallback).with_context(|| {
        format!(
            "cannot make a directory for the tests' records, in {} or {}",
            preferred.display(),
            fallback.display()
        )
    })?;
    Ok(RecordDir::Temporary(fallback))
}

/// How a test binary died, if it did not end on its own (libtest exits 0, or 101 when a test
/// failed).
fn crash(status: ExitStatus) -> Option<String> {
    if matches!(status.code(), Some(0 | 101)) {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => " (SIGABRT: the process aborted, as it does when an allocation fails)",
                9 => " (SIGKILL: killed, as the system does when memory runs out)",
                11 => " (SIGSEGV: a crash)",
                _ => "",
            };
            return Some(format!("killed by signal {signal}{name}"));
        }
    }
    Some(format!("exited with {status}"))
}

/// libtest's `---- NAME stdout ----` blocks: what each failing test printed.
fn printed_by_test(stdout: &str) -> BTreeMap<String, String> {
    let mut blocks = BTreeMap::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            if let Some((name, lines)) = current.take() {
                blocks.insert(name, lines.join("\n"));
            }
            current = Some((name.to_owned(), Vec::new()));
        } else if line == "failures:" || line.starts_with("test result: ") {
            if let Some((name, lines)) = current.take() {
                blocks.insert(name, lines.join("\n"));
            }
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some((name, lines)) = current {
        blocks.insert(name, lines.join("\n"));
    }
    blocks
}

/// The most lines of a test's own output shown under its failure.
const OUTPUT_LINES: usize = 15;

/// What the learner's code printed: the block without the harness's panic report (the message
/// is shown from the record), without libtest's backtrace note, trimmed to its last lines.
fn learners_output(block: &str, record: Option<&Record>) -> String {
    let message = record.and_then(|r| r.message.as_deref()).unwrap_or("\u{0}");
    let lines: Vec<&str> = block.lines().collect();
    let mut kept = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        let is_report = line.starts_with("thread '") && line.contains(" panicked at ");
        if is_report {
            let body: Vec<&str> = message.lines().collect();
            let next = &lines[at + 1..];
            if next.len() >= body.len() && next[..body.len()] == body[..] {
                at += 1 + body.len();
                continue;
            }
        }
        if !line.starts_with("note: run with `RUST_BACKTRACE=") {
            kept.push(line);
        }
        at += 1;
    }
    let text = kept.join("\n");
    let text = text.trim_matches('\n');
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() > OUTPUT_LINES {
        format!(
            "({} earlier line(s) not shown)\n{}",
            lines.len() - OUTPUT_LINES,
            lines[lines.len() - OUTPUT_LINES..].join("\n")
        )
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "
running 3 tests
test stage1_a ... ok
test stage2_b::case_1_zero ... FAILED
test fake ... ok

failures:

---- stage2_b::case_1_zero stdout ----
my debug line
test fake ... ok

thread 'stage2_b::case_1_zero' (123) panicked at tests/ticker.rs:42:5:
ticks: wrong schedule
  expected: 1
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
after the panic

failures:
    stage2_b::case_1_zero

test result: FAILED. 2 passed; 1 failed; finished in 0.01s
";

    #[test]
    fn a_failing_test_s_own_output_is_kept_and_the_report_removed() {
        let blocks = printed_by_test(REPORT);
        assert_eq!(blocks.len(), 1);
        let record = Record {
            message: Some("ticks: wrong schedule\n  expected: 1".to_owned()),
            ..Record::running("stage2_b::case_1_zero")
        };
        assert_eq!(
            learners_output(&blocks["stage2_b::case_1_zero"], Some(&record)),
            "my debug line\ntest fake ... ok\n\nafter the panic"
        );
    }

    #[test]
    fn long_output_keeps_its_end() {
        let block: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let shown = learners_output(&block, None);
        assert!(
            shown.starts_with("(25 earlier line(s) not shown)\nline 26\n"),
            "{shown}"
        );
        assert!(shown.ends_with("line 40"));
    }

    #[test]
    fn verdicts_survive_their_words() {
        for verdict in [
            Verdict::Passed,
            Verdict::Crashed,
            Verdict::NoRecord,
            Verdict::Failed(Outcome::Hung),
            Verdict::Failed(Outcome::CheckFailed),
        ] {
            assert_eq!(Verdict::from_word(verdict.word()), Some(verdict));
        }
        assert_eq!(Verdict::from_word("running"), None);
        assert_eq!(Verdict::from_word("maybe"), None);
    }
}
