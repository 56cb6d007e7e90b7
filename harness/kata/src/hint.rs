//! `just hint <kata> [stage]`: the hints a kata's README gives for a stage.
//!
//! Every kata README has one `## Stage N: title` section per stage, and most sections end with a
//! `Hints:` list. The runner prints that list under a failing test (`just test`) and on request
//! here, so the README stays the one place hints are written.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cache::{self, Saved};
use crate::katas::{self, Kata, stage_of};
use crate::style;

/// One stage's section of a README: its title and its `Hints:` list, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageHints {
    pub title: String,
    pub hints: Option<String>,
}

/// Finds `## Stage <stage>...` in `readme` and the `Hints:` list inside that section: the
/// lines after `Hints:` up to the first line that is not part of a list (not `- `, not
/// indented, not blank).
pub fn stage_hints(readme: &str, stage: u32) -> Option<StageHints> {
    let mut lines = readme.lines();
    let title = lines.by_ref().find_map(|line| {
        let rest = line.strip_prefix("## Stage ")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (digits.parse() == Ok(stage)).then(|| line.trim_start_matches("## ").to_owned())
    })?;
    let section: Vec<&str> = lines.take_while(|line| !line.starts_with("## ")).collect();
    let hints = section
        .iter()
        .position(|line| line.trim() == "Hints:")
        .map(|start| {
            let list: Vec<&str> = section[start + 1..]
                .iter()
                .take_while(|line| {
                    line.is_empty() || line.starts_with("- ") || line.starts_with(' ')
                })
                .copied()
                .collect();
            list.join("\n")
                .trim_start_matches('\n')
                .trim_end()
                .to_owned()
        })
        .filter(|hints| !hints.is_empty());
    Some(StageHints { title, hints })
}

/// The stage's hints as read from the kata's README (`None` when the README has none).
pub fn for_stage(kata: &Kata, stage: u32) -> Option<StageHints> {
    let readme = std::fs::read_to_string(kata.root.join(kata.readme())).ok()?;
    stage_hints(&readme, stage)
}

/// Prints a stage's hints, indented under a heading that says where they come from.
pub fn print(kata: &Kata, stage: u32) -> bool {
    let Some(StageHints {
        title,
        hints: Some(hints),
    }) = for_stage(kata, stage)
    else {
        return false;
    };
    println!(
        "{} {}",
        style::bold(&format!("Hints for {title}")),
        style::dim(&format!("(from {})", kata.readme()))
    );
    for line in hints.lines() {
        println!("  {line}");
    }
    true
}

/// The stage the learner is on: the first with a failing test in the last full run, or 1.
fn current_stage(kata: &Kata) -> u32 {
    let Some(Saved { results, .. }) = cache::load(kata) else {
        return 1;
    };
    results
        .iter()
        .filter(|(_, passed)| !passed)
        .filter_map(|(name, _)| stage_of(name))
        .min()
        .unwrap_or(1)
}

pub fn run(name: &str, stage: Option<&str>) -> Result<ExitCode> {
    let root = katas::root()?;
    let kata = katas::find(&root, name)?;
    let stages = kata.stages()?;
    let stage = match stage {
        Some(text) => text
            .trim_start_matches("stage")
            .parse()
            .with_context(|| format!("`{text}` is not a stage: write it as 2 or stage2"))?,
        None => current_stage(&kata),
    };
    if !stages.contains(&stage) {
        bail!(
            "kata {} has stages {}, not {stage}",
            kata.name,
            stages
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !print(&kata, stage) {
        println!(
            "Stage {stage} of {} has no hints list: its section in {} says what to build.",
            kata.name,
            kata.readme()
        );
    }
    println!(
        "\nEvery failing test also says what it expected and gives a hint of its own: {}",
        style::bold(&format!("just test {} stage{stage}", kata.name))
    );
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
    fn the_list_ends_where_the_prose_starts() {
        let hints = stage_hints(README, 1).unwrap();
        assert_eq!(hints.title, "Stage 1: first");
        assert_eq!(hints.hints.as_deref(), Some("- one\n  continued\n- two"));
    }

    #[test]
    fn a_stage_without_hints_still_has_a_title() {
        let hints = stage_hints(README, 2).unwrap();
        assert_eq!(hints.title, "Stage 2: second, no hints");
        assert_eq!(hints.hints, None);
    }

    #[test]
    fn stage_numbers_are_matched_whole() {
        assert_eq!(stage_hints(README, 3), None);
        let far = stage_hints(README, 12).unwrap();
        assert_eq!(far.title, "Stage 12 (stretch): far");
        assert_eq!(far.hints.as_deref(), Some("- spaced out"));
    }
}
