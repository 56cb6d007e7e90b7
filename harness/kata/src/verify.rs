//! `just verify`: the stub check. A test that passes on the untouched stub teaches nothing, and
//! one that fails on the reference is wrong, so for every kata every test must fail on the stub
//! and pass on the solution, and both crates must run the same tests. Results come from the
//! harness's records, like every run's.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cargo::{self, Builds, Noise};
use crate::repo::{Kata, Repo, stage_of};
use crate::selection::Selection;
use crate::style;
use crate::suite::{self, SuiteRun, Verdict};
use crate::test::{self, Whose};

pub fn run() -> Result<ExitCode> {
    test::check_settings()?;
    let repo = Repo::here()?;
    // Every stub and every reference in one build: cargo shares what they have in common and
    // keeps both cores busy, where a build per crate would start over thirty times.
    let katas = repo.katas();
    let packages: Vec<String> = katas
        .iter()
        .flat_map(|kata| [kata.exercise_package().to_owned(), kata.solution_package()])
        .collect();
    let suites: Vec<String> = katas.iter().map(|kata| kata.name.clone()).collect();
    eprintln!("building every stub and every reference...");
    let builds = cargo::build_suites(&repo.root, &packages, &suites, Noise::Shown)?;
    let (mut problems, mut checks) = (0, 0);
    for kata in katas {
        let (kata_checks, kata_problems) = verify(kata, &builds)?;
        checks += kata_checks;
        problems += kata_problems;
    }
    println!();
    if problems == 0 {
        let done = "every test fails on the stub and passes on the solution";
        println!("{} {done} ({} kata(s))", style::green("✓"), katas.len());
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

/// Runs one crate's suite from the batch build (the learner's results stay theirs: nothing is
/// saved).
fn outcomes(kata: &Kata, whose: Whose, builds: &Builds) -> Result<SuiteRun> {
    let package = whose.package(kata);
    let Some(binary) = builds.binary(&whose.dir(kata)) else {
        bail!("{package} does not compile (see above)");
    };
    suite::run(
        kata,
        binary,
        &whose.dir(kata),
        &Selection::everything(),
        &whose.records(kata),
    )
}

/// Prints the kata's table; returns how many tests it checked and how many have a problem.
fn verify(kata: &Kata, builds: &Builds) -> Result<(usize, usize)> {
    let stub = outcomes(kata, Whose::Learner, builds)?;
    let solution = outcomes(kata, Whose::Reference, builds)?;
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
