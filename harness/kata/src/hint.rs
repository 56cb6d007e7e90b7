//! `just hint [kata] [stage]`: the hints a kata's README gives for a stage, one more each time.
//!
//! Every kata README has one `## Stage N: title` section per stage, each ending with a `Hints:`
//! list that goes from a nudge to nearly the answer. A learner who asks gets the hints seen so
//! far and one more (rustlings' way: one nudge at a time leaves something to discover); `--all`
//! shows the whole list. The README stays the one place hints are written; the runner only
//! remembers how many of each stage's were shown (`target/kata/<kata>.hints`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::progress::{self, Progress};
use crate::repo::{Kata, Repo, list_stages, parse_stage};
use crate::style;

/// One stage's section of a README: its title and the items of its `Hints:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageHints {
    pub title: String,
    pub hints: Vec<String>,
}

/// Finds `## Stage <stage>...` in `readme` and the `Hints:` list inside that section: the
/// lines after `Hints:` up to the first line that is not part of a list (not `- `, not
/// indented, not blank), split into items at each `- `.
pub fn stage_hints(readme: &str, stage: u32) -> Option<StageHints> {
    let mut lines = readme.lines();
    let title = lines.by_ref().find_map(|line| {
        let rest = line.strip_prefix("## Stage ")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (digits.parse() == Ok(stage)).then(|| line.trim_start_matches("## ").to_owned())
    })?;
    let section: Vec<&str> = lines.take_while(|line| !line.starts_with("## ")).collect();
    let mut hints: Vec<String> = Vec::new();
    if let Some(start) = section.iter().position(|line| line.trim() == "Hints:") {
        for line in section[start + 1..]
            .iter()
            .take_while(|line| line.is_empty() || line.starts_with("- ") || line.starts_with(' '))
        {
            if line.starts_with("- ") {
                hints.push((*line).to_owned());
            } else if let Some(last) = hints.last_mut().filter(|_| !line.is_empty()) {
                last.push('\n');
                last.push_str(line);
            }
        }
    }
    Some(StageHints { title, hints })
}

/// The stage's hints as read from the kata's README.
pub fn for_stage(kata: &Kata, stage: u32) -> Option<StageHints> {
    let readme = std::fs::read_to_string(kata.root.join(kata.readme())).ok()?;
    stage_hints(&readme, stage)
}

/// How many hints of each stage the learner has seen.
fn seen_path(kata: &Kata) -> std::path::PathBuf {
    kata.state_dir().join(format!("{}.hints", kata.name))
}

fn load_seen(kata: &Kata) -> BTreeMap<u32, usize> {
    std::fs::read_to_string(seen_path(kata))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter_map(|(stage, seen)| Some((stage.parse().ok()?, seen.parse().ok()?)))
        .collect()
}

fn save_seen(kata: &Kata, seen: &BTreeMap<u32, usize>) {
    let text: String = seen
        .iter()
        .map(|(stage, count)| format!("{stage}\t{count}\n"))
        .collect();
    let path = seen_path(kata);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(error) = std::fs::write(&path, text) {
        eprintln!(
            "{} cannot remember which hints you saw ({error}); the next `just hint` starts again",
            style::yellow("warning:")
        );
    }
}

pub fn run(kata: Option<&str>, stage: Option<&str>, all: bool) -> Result<ExitCode> {
    let repo = Repo::here()?;
    let Some(kata) = progress::named_or_next(&repo, kata, "hint")? else {
        return Ok(ExitCode::SUCCESS);
    };
    let stages = kata.stages()?;
    let stage = match stage {
        Some(text) => {
            let stage = parse_stage(text)
                .with_context(|| format!("`{text}` is not a stage: write it as 2 or stage2"))?;
            if !stages.contains(&stage) {
                bail!(
                    "kata {} has stages {}, not {stage}",
                    kata.name,
                    list_stages(&stages)
                );
            }
            stage
        }
        None => {
            let progress = Progress::of(&kata)?;
            if progress.solved() {
                println!(
                    "Every stage of {} passes: no hint needed. {} shows a stage's hints anyway.",
                    kata.name,
                    style::bold(&format!("just hint {} <stage>", kata.name))
                );
                return Ok(ExitCode::SUCCESS);
            }
            progress.next_stage().unwrap_or(1)
        }
    };
    let Some(StageHints { title, hints }) = for_stage(&kata, stage) else {
        bail!("{} has no `## Stage {stage}` section", kata.readme());
    };
    if hints.is_empty() {
        println!(
            "Stage {stage} of {} has no hints list: its section in {} says what to build.",
            kata.name,
            kata.readme()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut seen = load_seen(&kata);
    let before = seen.get(&stage).copied().unwrap_or(0).min(hints.len());
    let now = if all {
        hints.len()
    } else {
        (before + 1).min(hints.len())
    };
    seen.insert(stage, now);
    save_seen(&kata, &seen);

    println!(
        "{} {}",
        style::bold(&format!("Hints for {title}")),
        style::dim(&format!(
            "({now} of {}, from {})",
            hints.len(),
            kata.readme()
        ))
    );
    for (number, hint) in hints.iter().take(now).enumerate() {
        let text = if number >= before && number + 1 == now && !all {
            style::bold(hint)
        } else {
            hint.clone()
        };
        for line in text.lines() {
            println!("  {line}");
        }
    }
    println!();
    if now < hints.len() {
        println!(
            "Try it, then {} again for the next hint ({} more), or {} for them all.",
            style::bold(&format!("just hint {} {stage}", kata.name)),
            hints.len() - now,
            style::bold(&format!("just hint {} {stage} --all", kata.name))
        );
    } else {
        println!(
            "That is every hint of stage {stage}. Each failing test also says what it expected \
             and gives a hint of its own: {}",
            style::bold(&format!("just test {} {stage}", kata.name))
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# Kata 9: sample

Intro.

## Stage 1: first

Text.

Hints:
- one
  continued
- two

After the list.

## Stage 2: second, no hints

Text only.

## Stage 12 (stretch): far

Hints:

- spaced out

## Lesson notes
";

    #[test]
    fn the_list_ends_where_the_prose_starts_and_items_keep_their_lines() {
        let hints = stage_hints(README, 1).unwrap();
        assert_eq!(hints.title, "Stage 1: first");
        assert_eq!(hints.hints, vec!["- one\n  continued", "- two"]);
    }

    #[test]
    fn a_stage_without_hints_still_has_a_title() {
        let hints = stage_hints(README, 2).unwrap();
        assert_eq!(hints.title, "Stage 2: second, no hints");
        assert!(hints.hints.is_empty());
    }

    #[test]
    fn stage_numbers_are_matched_whole() {
        assert_eq!(stage_hints(README, 3), None);
        let far = stage_hints(README, 12).unwrap();
        assert_eq!(far.title, "Stage 12 (stretch): far");
        assert_eq!(far.hints, vec!["- spaced out"]);
    }
}
