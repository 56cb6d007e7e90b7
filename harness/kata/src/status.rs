//! `just`: every kata, its stages, the learner's progress, and what to do next.
//!
//! Answers from the cache only (no build), so it is instant.

use std::process::ExitCode;

use anyhow::Result;

use crate::progress::{Progress, StageProgress, State, next_unsolved};
use crate::repo::{Kata, Repo};
use crate::style;

pub fn run() -> Result<ExitCode> {
    let repo = Repo::here()?;
    println!(
        "{}\n",
        style::bold("async-katas: learn async Rust with tokio, one kata at a time")
    );
    let mut some_unsure = false;
    for (number, kata) in repo.katas().iter().enumerate() {
        let (text, unsure) = line(kata);
        some_unsure |= unsure;
        println!("  {:>2}. {:<22} {text}", number + 1, kata.name);
    }
    if some_unsure {
        println!(
            "\n  {}",
            style::dim("* some results are from before your last change: run the kata again")
        );
    }
    println!();
    match next_unsolved(repo.katas()) {
        Some(kata) => println!("Next: {}", next_step(kata)),
        None => println!("{}", style::green("Every kata is solved. Well done!")),
    }
    Ok(ExitCode::SUCCESS)
}

/// What to do next on an unsolved kata.
fn next_step(kata: &Kata) -> String {
    let test = style::bold(&format!("just test {}", kata.name));
    if kata.require_exercise().is_err() {
        return format!(
            "exercises/{} is missing: {} puts it back",
            kata.name,
            style::bold(&format!("git checkout HEAD -- exercises/{}", kata.name))
        );
    }
    let Ok(progress) = Progress::of(kata) else {
        return format!("read {}, then run {test}", kata.readme());
    };
    match (progress.state, progress.next_stage()) {
        (State::DoesNotCompile, _) => format!("{test} shows the compile error to fix first"),
        (State::Tried, _) if progress.all_stale() => {
            format!("you changed {} since the last run: {test}", kata.name)
        }
        (State::Tried, Some(stage)) => format!(
            "stage {stage} of {}: read it in {}, then run {}",
            kata.name,
            kata.readme(),
            style::bold(&format!("just test {} {stage}", kata.name))
        ),
        _ => format!("read {}, then run {test}", kata.readme()),
    }
}

/// The kata's line in the table, and whether it shows results from before a change.
fn line(kata: &Kata) -> (String, bool) {
    if kata.require_exercise().is_err() {
        return (
            style::red(&format!(
                "missing: git checkout HEAD -- exercises/{}",
                kata.name
            )),
            false,
        );
    }
    let progress = match Progress::of(kata) {
        Ok(progress) => progress,
        Err(error) => return (style::red(&format!("{error:#}")), false),
    };
    let stages = progress.stages.len();
    match progress.state {
        State::NotTried => (
            style::dim(&format!("{stages} stages, not tried yet")),
            false,
        ),
        State::DoesNotCompile => (
            style::red(&format!(
                "does not compile: just test {} shows why",
                kata.name
            )),
            false,
        ),
        State::Tried if progress.all_stale() => (
            style::yellow(&format!("{stages} stages, changed since the last run")),
            false,
        ),
        State::Tried => {
            let mut unsure = false;
            let cells: Vec<String> = progress
                .stages
                .iter()
                .map(|stage| {
                    unsure |= stage.stale > 0;
                    cell(stage)
                })
                .collect();
            (cells.join(" ").trim_end().to_owned(), unsure)
        }
    }
}

/// `stage 1 9/9 ✓`, `stage 2 3/5`, `stage 3 2/4 *` (some results from before a change),
/// `stage 4 -/6` (not run yet).
fn cell(stage: &StageProgress) -> String {
    let text = format!("stage {} {}/{}", stage.stage, stage.passed, stage.total);
    // Padded before colouring, so the columns line up from kata to kata.
    if stage.solved() {
        style::green(&format!("{:<16}", format!("{text} ✓")))
    } else if stage.stale > 0 {
        style::dim(&format!("{:<16}", format!("{text} *")))
    } else if stage.unknown == stage.total {
        style::dim(&format!(
            "{:<16}",
            format!("stage {} -/{}", stage.stage, stage.total)
        ))
    } else {
        format!("{text:<16}")
    }
}
