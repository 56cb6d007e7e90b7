//! Building a kata's suite and reading what libtest reports.
//!
//! The build's messages are passed on unchanged, so a compile error reaches the learner exactly
//! as the compiler wrote it (colours included, on a terminal). The test run is captured and parsed: libtest's
//! plain format on stable Rust is `test NAME ... ok|FAILED`, then one `---- NAME stdout ----`
//! block per failure, which holds the panic message the harness wrote.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::style;

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub passed: bool,
    /// For a failure: the harness's message (the panic text), trimmed.
    pub message: Option<String>,
    /// For a failure: where it panicked, e.g. `tests/ticker.rs:42:5`.
    pub location: Option<String>,
}

/// Every test of one run, by name (sorted, so stages come out in order).
pub type Outcomes = BTreeMap<String, TestOutcome>;

/// Builds `package`'s `suite` test target. Returns whether it built.
///
/// The compiler's messages (errors and warnings) are passed on as cargo wrote them, colours
/// included, unless `quiet`. On a terminal a dim "building" line stands in for cargo's own
/// progress (hidden by `--quiet`) while the build runs: the first build of a kata compiles tokio
/// and takes a minute, and a silent minute looks like a hang.
pub fn build(root: &Path, package: &str, suite: &str, quiet: bool) -> Result<bool> {
    let mut command = Command::new(cargo());
    command
        .current_dir(root)
        .args([
            "test",
            "--no-run",
            "--quiet",
            "--package",
            package,
            "--test",
            suite,
        ])
        .args(["--color", style::stderr_color()])
        .stdin(Stdio::null());
    let show_progress = !quiet && std::io::stderr().is_terminal();
    if show_progress {
        eprint!(
            "{}",
            style::dim(&format!(
                "building {package} (the first build of a kata takes a minute or two)..."
            ))
        );
    }
    let output = command.output().context("cannot run cargo")?;
    if show_progress {
        eprint!("\r\x1b[K");
    }
    if !quiet {
        std::io::stderr().write_all(&output.stderr)?;
    }
    Ok(output.status.success())
}

/// Runs `package`'s `suite` (already built) and parses the report. With `record_dir`, the
/// harness also writes each test's figures there (see [`crate::record`]).
pub fn run(
    root: &Path,
    package: &str,
    suite: &str,
    filter: Option<&str>,
    record_dir: Option<&Path>,
) -> Result<Outcomes> {
    let mut command = Command::new(cargo());
    command
        .current_dir(root)
        .args([
            "test",
            "--quiet",
            "--package",
            package,
            "--test",
            suite,
            "--",
        ])
        .args(["--format", "pretty", "--color", "never"])
        // Messages, not backtraces: the harness's report is what a learner needs.
        .env("RUST_BACKTRACE", "0");
    if let Some(dir) = record_dir {
        command.env(crate::record::RECORD_DIR_VAR, dir);
    }
    if let Some(filter) = filter {
        command.arg(filter);
    }
    let output = command.output().context("cannot run cargo test")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let outcomes = parse(&stdout);
    if outcomes.is_empty() && !output.status.success() {
        anyhow::bail!(
            "the suite did not run:\n{}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(outcomes)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Parses libtest's pretty output.
pub fn parse(stdout: &str) -> Outcomes {
    let mut outcomes = Outcomes::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        // `should_panic` tests print `name - should panic ... ok`.
        let name = name.trim_end_matches(" - should panic").to_owned();
        let passed = match result.trim() {
            "ok" => true,
            "FAILED" => false,
            _ => continue, // ignored
        };
        outcomes.insert(
            name,
            TestOutcome {
                passed,
                message: None,
                location: None,
            },
        );
    }

    // The failure blocks: `---- name stdout ----` up to the next block or the closing list.
    let mut current: Option<(String, Vec<&str>)> = None;
    let mut blocks: Vec<(String, Vec<&str>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            blocks.extend(current.take());
            current = Some((name.to_owned(), Vec::new()));
        } else if line == "failures:" {
            blocks.extend(current.take());
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    blocks.extend(current);

    for (name, lines) in blocks {
        let (location, message) = panic_message(&lines);
        if let Some(outcome) = outcomes.get_mut(&name) {
            outcome.location = location;
            outcome.message = Some(message);
        }
    }
    outcomes
}

/// Finds `thread '...' panicked at LOCATION:` and the message after it; output the test printed
/// before the panic is dropped, as is libtest's backtrace note.
fn panic_message(lines: &[&str]) -> (Option<String>, String) {
    let Some(start) = lines
        .iter()
        .position(|line| line.starts_with("thread '") && line.contains(" panicked at "))
    else {
        return (None, lines.join("\n").trim().to_owned());
    };
    let location = lines[start]
        .split_once(" panicked at ")
        .map(|(_, at)| tidy_path(at.trim_end_matches(':')));
    let message: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
        .copied()
        .collect();
    (location, message.join("\n").trim().to_owned())
}

/// `exercises/ticker/../../tests/ticker.rs:3:1` reads better as `tests/ticker.rs:3:1`.
fn tidy_path(path: &str) -> String {
    match path.find("../../") {
        Some(at) => path[at + "../../".len()..].to_owned(),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "
running 3 tests
test stage1_a ... ok
test stage2_b::case_1_zero ... FAILED
test stage3_c - should panic ... ok
test helper ... ignored

failures:

---- stage2_b::case_1_zero stdout ----
something the test printed

thread 'ticker::stage2_b::case_1_zero' (123) panicked at exercises/ticker/../../tests/ticker.rs:42:5:
ticks: wrong schedule
  expected: 1
  actual:   2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    stage2_b::case_1_zero

test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
";

    #[test]
    fn passes_failures_and_messages_are_read() {
        let outcomes = parse(REPORT);
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes["stage1_a"].passed);
        assert!(outcomes["stage3_c"].passed);
        let failed = &outcomes["stage2_b::case_1_zero"];
        assert!(!failed.passed);
        assert_eq!(failed.location.as_deref(), Some("tests/ticker.rs:42:5"));
        assert_eq!(
            failed.message.as_deref(),
            Some("ticks: wrong schedule\n  expected: 1\n  actual:   2")
        );
    }

    #[test]
    fn the_older_panic_line_is_read_too() {
        let (location, message) =
            panic_message(&["thread 'x' panicked at src/lib.rs:3:9:", "boom"]);
        assert_eq!(location.as_deref(), Some("src/lib.rs:3:9"));
        assert_eq!(message, "boom");
    }

    #[test]
    fn an_empty_report_has_no_tests() {
        assert!(parse("running 0 tests\n\ntest result: ok.").is_empty());
    }
}
