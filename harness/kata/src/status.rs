//! `just`: every kata, its stages, the learner's progress, and what to do next.
//!
//! Answers from the cache only (no build), so it is instant.

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
        Some(kata) => println!(
            "Next: read {}, then run {}",
            kata.readme(),
            style::bold(&format!("just test {}", kata.name))
        ),
        None => println!("{}", style::green("Every kata is solved. Well done!")),
    }
    Ok(ExitCode::SUCCESS)
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
