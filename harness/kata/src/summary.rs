//! What a learner reads after a run: a line per stage, a line per failing test under its stage,
//! then the details of the one failure that explains the most.
//!
//! Causes outrank symptoms. A test binary that crashed, a test that hung or ran out of memory, a
//! blocked executor: each of these makes the timing checks around it fail too, so its details
//! come first, whatever the order of the suite. Among failures of the same kind, the suite's
//! order decides: its early tests are the basic ones.

use kata_record::Outcome;

use crate::repo::{Kata, stage_of};
use crate::selection::Selection;
use crate::style;
use crate::suite::{SuiteRun, TestResult, Verdict};

/// How much a failure explains the others: lower comes first.
fn rank(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Crashed => 0,
        Verdict::Failed(Outcome::OutOfMemory) => 1,
        Verdict::Failed(Outcome::Hung) => 2,
        Verdict::Failed(Outcome::Blocked) => 3,
        Verdict::Failed(Outcome::Deadlock) => 4,
        Verdict::Failed(Outcome::Panicked) => 5,
        Verdict::Failed(Outcome::CheckFailed) => 6,
        Verdict::Failed(Outcome::NotStarted) => 7,
        Verdict::NoRecord => 8,
        Verdict::Passed | Verdict::Failed(Outcome::Passed | Outcome::Running) => 9,
    }
}

/// Why a failure of this kind is shown before the others, when it is.
fn why_first(verdict: Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Crashed => Some("the test binary died here, which ends the tests around it"),
        Verdict::Failed(Outcome::OutOfMemory) => {
            Some("a leak this size slows and breaks the tests around it")
        }
        Verdict::Failed(Outcome::Hung) => {
            Some("a hang explains the failures around it: the tests after it had less time")
        }
        Verdict::Failed(Outcome::Blocked) => Some(
            "a blocked executor explains timing failures around it: while the thread is held, \
             nothing else runs on time",
        ),
        Verdict::Failed(Outcome::Deadlock) => Some("a deadlock stops everything waiting on it"),
        _ => None,
    }
}

/// How a failure reads to a learner: a check that failed because it met a `todo!()` (a test
/// that catches panics to compare their messages, or a `todo!()` that panicked in a task the
/// test then waited for) is "not started" like any other.
pub fn effective(result: &TestResult) -> Verdict {
    const TODO: &str = "not yet implemented";
    let todo = result
        .record
        .as_ref()
        .and_then(|r| r.message.as_deref())
        .is_some_and(|message| message.contains(TODO))
        || result.output.contains(TODO);
    match result.verdict {
        Verdict::Failed(Outcome::CheckFailed | Outcome::Panicked) if todo => {
            Verdict::Failed(Outcome::NotStarted)
        }
        verdict => verdict,
    }
}

/// The failure whose details a learner should read first.
pub fn most_telling(run: &SuiteRun) -> Option<&TestResult> {
    run.failures().min_by_key(|result| {
        // Of several hung tests, the one that hung first: the others were cut short because of
        // it, and their messages say so.
        let cut_short = result
            .record
            .as_ref()
            .and_then(|r| r.message.as_deref())
            .is_some_and(|m| m.contains("already hung"));
        (rank(effective(result)), cut_short)
    })
}

/// One line about a failure, for the list under its stage.
pub fn short(result: &TestResult) -> String {
    let message = result.record.as_ref().and_then(|r| r.message.as_deref());
    match effective(result) {
        Verdict::Crashed => "crashed: the test binary died while it ran".to_owned(),
        Verdict::NoRecord => "no result: it never ran, or not through the harness".to_owned(),
        Verdict::Failed(Outcome::NotStarted) => "not started: still todo!()".to_owned(),
        _ => {
            let Some(first) = message.and_then(|m| m.lines().next()) else {
                return "failed".to_owned();
            };
            // `name: what happened`: the name is already on the line.
            let line = first
                .strip_prefix(&format!("{}: ", result.name))
                .unwrap_or(first);
            // A hang cut short because another test hung first says which.
            let cut_short = message
                .and_then(|m| m.split_once(" already hung)"))
                .and_then(|(before, _)| before.rsplit(": ").next())
                .map(|first_hung| format!(" (cut short: {first_hung} hung first)"))
                .unwrap_or_default();
            shorten(&format!("{line}{cut_short}"), 80)
        }
    }
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let cut: String = text.chars().take(width - 1).collect();
    format!("{cut}…")
}

/// A line per stage the run touched, with the failing tests under their stage. Stages the
/// selection left out are named, with the command that runs them.
pub fn print_stages(kata: &Kata, run: &SuiteRun, selection: &Selection) {
    let stages = kata.stages().unwrap_or_default();
    let width = run
        .failures()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(56);
    println!();
    for stage in stages {
        let of_stage: Vec<&TestResult> = run
            .results
            .iter()
            .filter(|r| stage_of(&r.name) == Some(stage))
            .collect();
        if of_stage.is_empty() {
            if !selection.is_everything() {
                println!(
                    "  stage {stage}  {}",
                    style::dim(&format!(
                        "not run this time: just test {} {stage}",
                        kata.name
                    ))
                );
            }
            continue;
        }
        let passed = of_stage.iter().filter(|r| r.verdict.passed()).count();
        let mark = if passed == of_stage.len() {
            style::green("✓")
        } else {
            style::red("✗")
        };
        let failures: Vec<&&TestResult> = of_stage.iter().filter(|r| !r.verdict.passed()).collect();
        let not_started = !failures.is_empty()
            && failures
                .iter()
                .all(|r| effective(r) == Verdict::Failed(Outcome::NotStarted));
        println!(
            "  stage {stage}  {mark} {passed}/{} tests pass{}",
            of_stage.len(),
            if not_started {
                style::dim("  (not started: still todo!())")
            } else {
                String::new()
            }
        );
        if not_started {
            continue;
        }
        for failure in failures {
            let name: String = if failure.name.chars().count() > width {
                shorten(&failure.name, width)
            } else {
                failure.name.clone()
            };
            println!(
                "           {} {name:<width$}  {}",
                style::red("✗"),
                style::dim(&short(failure))
            );
        }
    }
}

/// The details of one failure: where, the harness's message, and what the code printed.
pub fn print_details(kata: &Kata, run: &SuiteRun, failure: &TestResult) {
    let record = failure.record.as_ref();
    let first_in_order = run.failures().next().map(|r| r.name.as_str()) == Some(&failure.name);
    let reason = why_first(failure.verdict)
        .filter(|_| !first_in_order)
        .map(|why| format!("  {}", style::dim(&format!("(shown first: {why})"))))
        .unwrap_or_default();
    println!(
        "\n{} {}{reason}",
        style::red("✗"),
        style::bold(&failure.name)
    );
    // A location inside the harness (the watchdog) says nothing to a learner: the test's own
    // line does.
    let location = record
        .and_then(|r| r.location.clone())
        .filter(|at| !at.starts_with("harness/"));
    let message = record.and_then(|r| r.message.as_deref());
    match effective(failure) {
        Verdict::Failed(Outcome::NotStarted) => {
            println!(
                "  not started: the code at {} is still todo!()",
                location.as_deref().unwrap_or(&kata.lib())
            );
            if let Some(what) = message
                .and_then(|m| m.split_once("not yet implemented"))
                .map(|(_, rest)| rest.lines().next().unwrap_or("").trim_end_matches('"'))
                .map(|rest| rest.trim_start_matches(':').trim())
                .filter(|rest| !rest.is_empty())
            {
                println!("  ({what})");
            }
        }
        Verdict::Crashed => {
            println!(
                "  the test binary {} while this test was running, so it has no result.",
                run.crash.as_deref().unwrap_or("died")
            );
            println!(
                "  {}",
                style::dim(
                    "an abort or a kill usually means memory ran out (a leak, or a buffer the \
                     size of something huge) or a stack overflow (recursion without a base case)"
                )
            );
        }
        Verdict::NoRecord => println!(
            "  it left no result: it never started (the test binary may have died before it), or \
             it is not a #[kata_harness::test]."
        ),
        _ => {
            match (&location, failure.verdict) {
                (Some(at), _) => println!("  {}", style::dim(&format!("at {at}"))),
                (
                    None,
                    Verdict::Failed(Outcome::Hung | Outcome::Deadlock | Outcome::OutOfMemory),
                ) => {
                    if let Some(at) = kata.test_location(&failure.name) {
                        println!("  {}", style::dim(&format!("the test: {at}")));
                    }
                }
                _ => {}
            }
            for line in message.unwrap_or("(no message)").lines() {
                println!("  {line}");
            }
        }
    }
    if !failure.output.is_empty() {
        println!(
            "  {}",
            style::dim("what the test printed (your println!s included):")
        );
        for line in failure.output.lines() {
            println!("  {} {line}", style::dim("│"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kata_record::Record;

    fn failed(name: &str, verdict: Verdict, message: &str) -> TestResult {
        TestResult {
            name: name.to_owned(),
            verdict,
            record: Some(Record {
                message: Some(message.to_owned()),
                ..Record::running(name)
            }),
            output: String::new(),
        }
    }

    fn run(results: Vec<TestResult>) -> SuiteRun {
        SuiteRun {
            listed: results.iter().map(|r| r.name.clone()).collect(),
            results,
            crash: None,
        }
    }

    #[test]
    fn a_cause_outranks_the_symptoms_before_it() {
        let run = run(vec![
            failed(
                "stage1_schedule",
                Verdict::Failed(Outcome::CheckFailed),
                "ticks: wrong schedule",
            ),
            failed(
                "stage1_does_not_block",
                Verdict::Failed(Outcome::Blocked),
                "ticker: blocked the executor",
            ),
        ]);
        assert_eq!(most_telling(&run).unwrap().name, "stage1_does_not_block");
    }

    #[test]
    fn of_several_hangs_the_first_one_is_shown() {
        let run = run(vec![
            failed(
                "stage1_a",
                Verdict::Failed(Outcome::Hung),
                "stage1_a: stopped by the watchdog (shortened from 5s: stage1_b already hung)",
            ),
            failed(
                "stage1_b",
                Verdict::Failed(Outcome::Hung),
                "stage1_b: stopped by the watchdog",
            ),
        ]);
        assert_eq!(most_telling(&run).unwrap().name, "stage1_b");
    }

    #[test]
    fn a_short_line_drops_the_test_s_own_name() {
        let result = failed(
            "stage1_a",
            Verdict::Failed(Outcome::Hung),
            "stage1_a: stopped by the watchdog\n  expected: ...",
        );
        assert_eq!(short(&result), "stopped by the watchdog");
        let cut = failed(
            "stage1_c",
            Verdict::Failed(Outcome::Hung),
            "stage1_c: stopped by the watchdog\n  expected: 5s (shortened from 5s: stage1_a already hung)",
        );
        assert_eq!(
            short(&cut),
            "stopped by the watchdog (cut short: stage1_a hung first)"
        );
        let todo = failed(
            "stage1_a",
            Verdict::Failed(Outcome::NotStarted),
            "not yet implemented",
        );
        assert_eq!(short(&todo), "not started: still todo!()");
    }
}
