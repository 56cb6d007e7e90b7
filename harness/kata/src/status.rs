//! `just`: every kata, its stages, the learner's progress, and what to do next.
//!
//! Answers from the cache only (no build), so it is instant.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cache::{self, Saved};
use crate::katas::{self, Kata, stage_of};
use crate::style;

/// Progress of one kata as far as the cache knows.
pub enum Progress {
    NotTried,
    Stale,
    Tried { passed: usize, total: usize },
}

pub fn progress(kata: &Kata) -> Progress {
    match cache::load(kata) {
        None => Progress::NotTried,
        Some(Saved { stale: true, .. }) => Progress::Stale,
        Some(Saved { results, .. }) => Progress::Tried {
            passed: results.iter().filter(|(_, passed)| *passed).count(),
            total: results.len(),
        },
    }
}

fn solved(kata: &Kata) -> bool {
    matches!(progress(kata), Progress::Tried { passed, total } if passed == total && total > 0)
}

/// The first kata not known to be solved.
pub fn next(katas: &[Kata]) -> Option<&Kata> {
    katas.iter().find(|kata| !solved(kata))
}

/// The kata a command works on: the one named, else the first not solved yet. `None`, after
/// saying so, when none was named and every kata is solved.
pub fn named_or_next(root: &Path, name: Option<&str>, command: &str) -> Result<Option<Kata>> {
    if let Some(name) = name {
        return katas::find(root, name).map(Some);
    }
    let next = next(&katas::all(root)?).cloned();
    if next.is_none() {
        println!(
            "{}",
            style::green(&format!(
                "Every kata is solved. Name one to go again: just {command} <kata>"
            ))
        );
    }
    Ok(next)
}

pub fn run() -> Result<ExitCode> {
    let root = katas::root()?;
    let katas = katas::all(&root)?;
    println!(
        "{}\n",
        style::bold("async-katas: learn async Rust with tokio, one kata at a time")
    );
    for (number, kata) in katas.iter().enumerate() {
        println!("  {:>2}. {:<22} {}", number + 1, kata.name, line(kata)?);
    }
    println!();
    match next(&katas) {
        Some(kata) => println!("Next: {}", next_step(kata)),
        None => println!("{}", style::green("Every kata is solved. Well done!")),
    }
    Ok(ExitCode::SUCCESS)
}

/// What to do next on an unsolved kata, from what the cache knows about it.
fn next_step(kata: &Kata) -> String {
    let test = style::bold(&format!("just test {}", kata.name));
    match cache::load(kata) {
        Some(Saved { stale: true, .. }) => {
            format!("you changed {} since the last run: {test}", kata.name)
        }
        Some(Saved {
            compiles: false, ..
        }) => format!("{test} shows the compile error to fix first"),
        Some(Saved { results, .. }) => {
            let stage = results
                .iter()
                .filter(|(_, passed)| !passed)
                .filter_map(|(name, _)| stage_of(name))
                .min();
            match stage {
                Some(stage) => format!(
                    "stage {stage} of {}: read it in {}, then run {}",
                    kata.name,
                    kata.readme(),
                    style::bold(&format!("just test {} stage{stage}", kata.name))
                ),
                None => format!("read {}, then run {test}", kata.readme()),
            }
        }
        None => format!("read {}, then run {test}", kata.readme()),
    }
}

fn line(kata: &Kata) -> Result<String> {
    let stages = kata.stages()?;
    Ok(match cache::load(kata) {
        None => style::dim(&format!("{} stages, not tried yet", stages.len())),
        Some(Saved { stale: true, .. }) => style::yellow(&format!(
            "{} stages, changed since the last run",
            stages.len()
        )),
        Some(Saved {
            compiles: false, ..
        }) => style::red(&format!(
            "does not compile: just test {} shows why",
            kata.name
        )),
        Some(Saved { results, .. }) => {
            let cells: Vec<String> = stages
                .iter()
                .map(|&stage| {
                    let of_stage: Vec<bool> = results
                        .iter()
                        .filter(|(name, _)| stage_of(name) == Some(stage))
                        .map(|&(_, passed)| passed)
                        .collect();
                    let passed = of_stage.iter().filter(|&&p| p).count();
                    let text = format!("stage {stage} {passed}/{}", of_stage.len());
                    // Padded before colouring, so the columns line up from kata to kata.
                    if passed == of_stage.len() {
                        style::green(&format!("{:<16}", format!("{text} ✓")))
                    } else {
                        format!("{text:<16}")
                    }
                })
                .collect();
            cells.join(" ").trim_end().to_owned()
        }
    })
}
