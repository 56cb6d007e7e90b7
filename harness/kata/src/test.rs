//! `just test [kata] [stages or test names]`: build, run, and say in a few lines where the
//! learner stands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::bar::ProgressBar;
use crate::cargo::{self, Built, Noise};
use crate::progress::{self, Progress};
use crate::repo::{ALL, Kata, Repo};
use crate::selection::Selection;
use crate::suite::{self, SuiteRun};
use crate::{cache, status, style, summary};

/// Whose crate a run tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    Learner,
    Reference,
}

impl Whose {
    pub fn package(self, kata: &Kata) -> String {
        match self {
            Whose::Learner => kata.exercise_package().to_owned(),
            Whose::Reference => kata.solution_package(),
        }
    }

    pub fn dir(self, kata: &Kata) -> PathBuf {
        match self {
            Whose::Learner => kata.exercise_dir(),
            Whose::Reference => kata.solution_dir(),
        }
    }

    /// A directory of its own for the records of a run.
    pub fn records(self, kata: &Kata) -> PathBuf {
        let who = match self {
            Whose::Learner => "yours",
            Whose::Reference => "reference",
        };
        kata.state_dir().join("records").join(&kata.name).join(who)
    }
}

/// What came of building and running a suite.
pub enum Ran {
    DoesNotCompile { messages: String },
    Ran(SuiteRun),
}

/// Builds `whose` crate's suite and runs the selected tests (nothing is saved).
pub fn build_and_run(
    kata: &Kata,
    whose: Whose,
    selection: &Selection,
    noise: Noise,
) -> Result<Ran> {
    if whose == Whose::Learner {
        kata.require_exercise()?;
    }
    let package = whose.package(kata);
    Ok(
        match cargo::build_suite(&kata.root, &package, &kata.name, noise)? {
            Built::Failed { messages } => Ran::DoesNotCompile { messages },
            Built::Binary(binary) => Ran::Ran(suite::run(
                kata,
                &binary,
                &whose.dir(kata),
                selection,
                &whose.records(kata),
            )?),
        },
    )
}

/// [`build_and_run`], with the learner's results saved for `just` to show.
pub fn build_run_and_save(
    kata: &Kata,
    whose: Whose,
    selection: &Selection,
    noise: Noise,
) -> Result<Ran> {
    let ran = build_and_run(kata, whose, selection, noise)?;
    if whose == Whose::Learner {
        match &ran {
            Ran::DoesNotCompile { .. } => cache::save_build_failure(kata),
            Ran::Ran(run) => cache::save_run(kata, run),
        }
    }
    Ok(ran)
}

/// Refuses to run with environment settings the harness would reject in every test.
pub fn check_settings() -> Result<()> {
    if let Err(error) = kata_record::settings::Settings::from_env() {
        bail!("{error}");
    }
    Ok(())
}

pub fn run(kata: Option<&str>, only: &[String], solution: bool) -> Result<ExitCode> {
    check_settings()?;
    let repo = Repo::here()?;
    if kata == Some(ALL) {
        return run_all(&repo, only, solution);
    }
    let command = if solution { "solution" } else { "test" };
    let Some(kata) = progress::named_or_next(&repo, kata, command)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let selection = Selection::parse(only, &kata)?;
    let whose = if solution {
        Whose::Reference
    } else {
        Whose::Learner
    };
    test_kata(&kata, &selection, whose)
}

/// One kata's run, as `just test <kata>` and `just watch` show it.
pub fn test_kata(kata: &Kata, selection: &Selection, whose: Whose) -> Result<ExitCode> {
    let who = match whose {
        Whose::Learner => "your code",
        Whose::Reference => "the reference solution",
    };
    println!(
        "{}",
        style::bold(&format!(
            "Testing {who} for kata {}{}",
            kata.name,
            selection.describe()
        ))
    );
    let run = match build_run_and_save(kata, whose, selection, Noise::Shown)? {
        Ran::DoesNotCompile { .. } => {
            println!(
                "\n{} {} does not compile yet. The compiler's messages are above: fix the first \
                 one and run this again.",
                style::red("✗"),
                whose
                    .dir(kata)
                    .strip_prefix(&kata.root)
                    .unwrap_or(&whose.dir(kata))
                    .display(),
            );
            return Ok(ExitCode::FAILURE);
        }
        Ran::Ran(run) => run,
    };
    if run.results.is_empty() {
        println!(
            "\nNo test matches {}. Stages are 1, 2, ... (`just test {} 2`), and a word runs the \
             tests whose name contains it; `just test {}` runs them all.",
            selection.describe().trim(),
            kata.name,
            kata.name
        );
        return Ok(ExitCode::FAILURE);
    }
    summary::print_stages(kata, &run, selection);
    if let Some(crash) = &run.crash {
        println!(
            "\n{} the test binary {crash}: the tests that were running have no result.",
            style::red("✗")
        );
    }
    match summary::most_telling(&run) {
        Some(failure) => {
            summary::print_details(kata, &run, failure);
            if whose == Whose::Learner {
                print_next_after_failure(kata, failure);
            }
            Ok(ExitCode::FAILURE)
        }
        None => {
            print_success(kata, selection, whose)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_next_after_failure(kata: &Kata, failure: &suite::TestResult) {
    let stage = crate::repo::stage_of(&failure.name);
    println!();
    match stage {
        Some(stage) => println!(
            "Next: read stage {stage} in {}, change {}, then {} runs that stage alone.",
            kata.readme(),
            kata.lib(),
            style::bold(&format!("just test {} {stage}", kata.name))
        ),
        None => println!("Next: read {} and change {}.", kata.readme(), kata.lib()),
    }
    println!(
        "      {} runs the tests whose name contains a word; stuck? {} shows a hint, one more \
         each time.",
        style::bold(&format!("just test {} <word>", kata.name)),
        style::bold(&format!("just hint {}", kata.name))
    );
}

fn print_success(kata: &Kata, selection: &Selection, whose: Whose) -> Result<()> {
    if whose == Whose::Reference {
        println!(
            "\n{} every test passes on the reference.",
            style::green("✓")
        );
        return Ok(());
    }
    let progress = Progress::of(kata)?;
    // A full run that passes is the answer, even when the results could not be saved.
    if selection.is_everything() || progress.solved() {
        println!(
            "\n{} every test of {} passes: the kata is solved.",
            style::green("✓"),
            kata.name
        );
        println!(
            "Next: {} holds your code beside the reference (figures per test, then the code), \
             and {} shows where you stand.",
            style::bold(&format!("just compare {}", kata.name)),
            style::bold("just")
        );
        return Ok(());
    }
    println!(
        "\n{} every test{} passes.",
        style::green("✓"),
        selection.describe()
    );
    if let Some(stage) = progress.next_stage() {
        println!(
            "Next: stage {stage}: read it in {}, then run {}",
            kata.readme(),
            style::bold(&format!("just test {} {stage}", kata.name))
        );
    }
    Ok(())
}

/// `just test all`: every kata's suite, with a progress bar, then the status table. Compile
/// errors are not shown here (many crates' worth would bury the table); the table says which
/// kata does not compile and `just test <kata>` shows why. Fails unless every kata passes.
fn run_all(repo: &Repo, only: &[String], solution: bool) -> Result<ExitCode> {
    let whose = if solution {
        Whose::Reference
    } else {
        Whose::Learner
    };
    let katas = repo.katas();
    let mut bar = ProgressBar::new(katas.len());
    let mut all_pass = true;
    for kata in katas {
        bar.start(&format!("testing {}", kata.name));
        if !bar.is_drawn() {
            println!("testing {}", kata.name);
        }
        // A stage one kata lacks is skipped there, not an error for all of them.
        let Ok(selection) = Selection::parse(only, kata) else {
            bar.step();
            continue;
        };
        match build_run_and_save(kata, whose, &selection, Noise::Quiet) {
            Ok(Ran::Ran(run)) => all_pass &= run.failures().next().is_none() && run.crash.is_none(),
            Ok(Ran::DoesNotCompile { .. }) => all_pass = false,
            Err(error) => {
                bar.clear();
                eprintln!("{} {}: {error:#}", style::red("error:"), kata.name);
                all_pass = false;
            }
        }
        bar.step();
    }
    drop(bar);
    if whose == Whose::Learner {
        status::run()?;
    } else {
        println!(
            "{}",
            if all_pass {
                style::green("✓ every reference passes")
            } else {
                style::red("✗ a reference fails: see `just solution <kata>`")
            }
        );
    }
    Ok(if all_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
