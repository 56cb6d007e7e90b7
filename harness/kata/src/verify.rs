//! `just verify`: the stub check. A test that passes on the untouched stub teaches nothing, and
//! one that fails on the reference is wrong, so for every kata every test must fail on the stub
//! and pass on the solution, and both crates must run the same tests. Results come from the
//! harness's records, like every run's.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cargo::Noise;
use crate::repo::{Kata, Repo, stage_of};
use crate::selection::Selection;
use crate::style;
use crate::suite::{SuiteRun, Verdict};
use crate::test::{self, Ran, Whose};

pub fn run() -> Result<ExitCode> {
    test::check_settings()?;
    let repo = Repo::here()?;
    let (mut problems, mut checks) = (0, 0);
    for kata in repo.katas() {
        let (kata_checks, kata_problems) = verify(kata)?;
        checks += kata_checks;
        problems += kata_problems;
    }
    println!();
    if problems == 0 {
        let done = "every test fails on the stub and passes on the solution";
        println!(
            "{} {done} ({} kata(s))",
            style::green("✓"),
            repo.katas().len()
        );
    } else {
        println!(
            "{} {problems} problem(s): see the ✗ rows above",
            style::red("✗")
        );
    }
    // The plain closing line that CI summaries read: one check per test.
    println!("verify: {} passed, {problems} failed", checks - problems);
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn outcomes(kata: &Kata, whose: Whose) -> Result<SuiteRun> {
    // The stub check reads the crates as they are committed; the learner's results stay theirs.
    let package = whose.package(kata);
    match test::build_and_run(kata, whose, &Selection::everything(), Noise::Shown)? {
        Ran::Ran(run) => Ok(run),
        Ran::DoesNotCompile { .. } => bail!("{package} does not compile (see above)"),
    }
}

/// Prints the kata's table; returns how many tests it checked and how many have a problem.
fn verify(kata: &Kata) -> Result<(usize, usize)> {
    let stub = outcomes(kata, Whose::Learner)?;
    let solution = outcomes(kata, Whose::Reference)?;
    let names: BTreeSet<&String> = stub.listed.iter().chain(&solution.listed).collect();
    let width = names
        .iter()
        .map(|name| name.len())
        .max()
        .unwrap_or(4)
        .max(4);

    println!(
        "\n{}",
        style::bold(&format!(
            "{:<width$}  {:<8}  {:<8}  kata {}",
            "test", "stub", "solution", kata.name
        ))
    );
    let mut problems = 0;
    let checks = names.len();
    if names.is_empty() {
        println!("{} the suite has no tests", style::red("✗"));
        return Ok((1, 1));
    }
    for name in names {
        let cell = |run: &SuiteRun| match run.results.iter().find(|r| &r.name == name) {
            Some(result) if result.verdict == Verdict::Passed => "passes",
            Some(result) if result.verdict == Verdict::NoRecord => "no record",
            Some(_) => "fails",
            None => "missing",
        };
        let (on_stub, on_solution) = (cell(&stub), cell(&solution));
        let mut verdict = Vec::new();
        if on_stub != "fails" {
            verdict.push(format!(
                "{on_stub} on the stub: a test that teaches nothing"
            ));
        }
        if on_solution != "passes" {
            verdict.push(format!("{on_solution} on the solution"));
        }
        if stage_of(name).is_none() {
            verdict.push("not named stage<N>_...".to_owned());
        }
        let mark = if verdict.is_empty() {
            style::green("✓")
        } else {
            style::red(&format!("✗ {}", verdict.join("; ")))
        };
        problems += usize::from(!verdict.is_empty());
        println!("{name:<width$}  {on_stub:<8}  {on_solution:<8}  {mark}");
    }
    Ok((checks, problems))
}
