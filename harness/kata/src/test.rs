//! `just test <kata> [stage]`: build, run, and say in a few lines where the learner stands.

use std::process::ExitCode;

use anyhow::Result;

use crate::katas::{self, Kata, stage_of};
use crate::libtest::{self, Outcomes, TestOutcome};
use crate::progress::Progress;
use crate::{cache, hint, status, style};

/// The kata name that means "every kata".
pub const ALL: &str = "all";

pub fn run(kata: Option<&str>, filter: Option<&str>, solution: bool) -> Result<ExitCode> {
    let root = katas::root()?;
    if kata == Some(ALL) && !solution && filter.is_none() {
        return run_all(&root);
    }
    let command = if solution { "solution" } else { "test" };
    let Some(kata) = status::named_or_next(&root, kata, command)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let (package, whose) = if solution {
        (kata.solution_package(), "the reference solution")
    } else {
        (kata.exercise_package().to_owned(), "your code")
    };
    let scope = filter
        .map(|f| format!(" (tests matching `{f}`)"))
        .unwrap_or_default();
    println!(
        "{}",
        style::bold(&format!("Testing {whose} for kata {}{scope}", kata.name))
    );

    if !libtest::build(&root, &package, &kata.name, false)? {
        if !solution {
            cache::save_build_failure(&kata);
        }
        println!(
            "\n{} {} does not compile yet. The compiler's messages are above: fix the first one \
             and run this again.",
            style::red("✗"),
            if solution {
                format!("solutions/{}", kata.name)
            } else {
                format!("exercises/{}", kata.name)
            },
        );
        return Ok(ExitCode::FAILURE);
    }
    let outcomes = libtest::run(&root, &package, &kata.name, filter, None)?;
    if outcomes.is_empty() {
        println!(
            "No test matches `{}`. Stages are named stage1, stage2, ...",
            filter.unwrap_or("")
        );
        return Ok(ExitCode::FAILURE);
    }
    if filter.is_none() && !solution {
        cache::save(&kata, &outcomes);
    }
    print_summary(&kata, &outcomes)?;

    // The first failure in the suite's own order: its early tests are the basic ones.
    let order = kata.tests_in_order();
    let position = |name: &str| {
        let function = name.split("::").next().unwrap_or(name);
        order
            .iter()
            .position(|f| f == function)
            .unwrap_or(usize::MAX)
    };
    let first_failure = outcomes
        .iter()
        .filter(|(_, outcome)| !outcome.passed)
        .min_by_key(|(name, _)| (stage_of(name), position(name)));
    match first_failure {
        None => {
            println!("\n{} every test passes.", style::green("✓"));
            if !solution {
                println!(
                    "Read the reference in solutions/{}/src/lib.rs and compare your choices.",
                    kata.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some((name, outcome)) => {
            print_failure(&kata, name, outcome, solution);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `just test all`: every kata's suite on the learner's code, with a progress bar, then the
/// status table. Compile errors are not shown here (eight crates' worth would bury the table);
/// the table says which kata does not compile and `just test <kata>` shows why.
fn run_all(root: &std::path::Path) -> Result<ExitCode> {
    let katas = katas::all(root)?;
    let mut progress = Progress::new(katas.len());
    for kata in &katas {
        progress.start(&format!("testing {}", kata.name));
        if !progress.is_drawn() {
            println!("testing {}", kata.name);
        }
        if libtest::build(root, kata.exercise_package(), &kata.name, true)? {
            let outcomes = libtest::run(root, kata.exercise_package(), &kata.name, None, None)?;
            cache::save(kata, &outcomes);
        } else {
            cache::save_build_failure(kata);
        }
        progress.step();
    }
    drop(progress);
    status::run()
}

/// One line per stage: `stage 1  ✓ 9/9`.
fn print_summary(kata: &Kata, outcomes: &Outcomes) -> Result<()> {
    println!();
    for stage in kata.stages()? {
        let of_stage: Vec<&TestOutcome> = outcomes
            .iter()
            .filter(|(name, _)| stage_of(name) == Some(stage))
            .map(|(_, o)| o)
            .collect();
        if of_stage.is_empty() {
            continue;
        }
        let passed = of_stage.iter().filter(|o| o.passed).count();
        let mark = if passed == of_stage.len() {
            style::green("✓")
        } else {
            style::red("✗")
        };
        println!(
            "  stage {stage}  {mark} {passed}/{} tests pass",
            of_stage.len()
        );
    }
    Ok(())
}

/// The first failing test: its message as the harness wrote it, and where to go next.
fn print_failure(kata: &Kata, name: &str, outcome: &TestOutcome, solution: bool) {
    let stage = stage_of(name);
    // A location inside the harness (the watchdog) says nothing to a learner; the message names
    // the test instead.
    let location = outcome
        .location
        .as_deref()
        .filter(|at| !at.starts_with("harness/"));
    println!("\n{} {}", style::red("✗"), style::bold(name));
    let message = outcome.message.as_deref().unwrap_or("(no message)");
    if let Some(rest) = message.strip_prefix("not yet implemented") {
        let what = rest.trim_start_matches(':').trim();
        println!(
            "  not started: the code at {} is still todo!()",
            location.unwrap_or("?")
        );
        if !what.is_empty() {
            println!("  ({what})");
        }
    } else {
        if let Some(location) = location {
            println!("  {}", style::dim(&format!("at {location}")));
        }
        for line in message.lines() {
            println!("  {line}");
        }
    }
    if solution {
        return;
    }
    println!();
    if let Some(stage) = stage
        && hint::print(kata, stage)
    {
        println!();
    }
    match stage {
        Some(stage) => {
            println!(
                "Next: read stage {stage} in {}, edit exercises/{}/src/lib.rs,",
                kata.readme(),
                kata.name
            );
            println!(
                "      then run {} to check that stage alone.",
                style::bold(&format!("just test {} stage{stage}", kata.name))
            );
        }
        None => println!(
            "Next: read {} and edit exercises/{}/src/lib.rs.",
            kata.readme(),
            kata.name
        ),
    }
}
