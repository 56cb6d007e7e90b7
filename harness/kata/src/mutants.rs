//! `just mutants [kata]`: the wrong solutions a suite must reject, applied to the reference one
//! at a time.
//!
//! `solutions/<kata>/mutants.md` lists them, each as a `## title`, a short why, one or more
//! fenced `mutant <file>` blocks (the reference's text, a `=====` line, the wrong text) and a
//! `Rejected by: test, test` line. For each, the runner puts the wrong text in place (it must
//! occur exactly once), builds and runs the suite on the reference, checks that every named test
//! fails, and puts the reference back. The reference's files are copied aside first, and put
//! back even if a run goes wrong; a copy left by an interrupted run is put back before anything
//! else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cargo::Noise;
use crate::repo::{Kata, Repo};
use crate::selection::Selection;
use crate::style;
use crate::test::{self, Ran, Whose};

/// One wrong solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutant {
    pub title: String,
    /// `(file, the reference's text, the wrong text)`.
    pub edits: Vec<(String, String, String)>,
    /// Tests that must fail.
    pub rejected_by: Vec<String>,
}

/// Reads a mutants.md.
pub fn parse(text: &str) -> Result<Vec<Mutant>> {
    let mut mutants = Vec::new();
    for section in format!("\n{text}").split("\n## ").skip(1) {
        let mut lines = section.lines();
        let title = lines.next().unwrap_or("").trim().to_owned();
        let mut mutant = Mutant {
            title: title.clone(),
            edits: Vec::new(),
            rejected_by: Vec::new(),
        };
        let mut block: Option<(String, Vec<&str>)> = None;
        for line in lines {
            if let Some((file, body)) = block.as_mut() {
                if line.trim_end() == "```" {
                    let body = body.join("\n");
                    let Some((old, new)) = body
                        .split_once("\n=====\n")
                        .or_else(|| body.strip_suffix("\n=====").map(|old| (old, "")))
                    else {
                        bail!(
                            "`{title}`: a mutant block needs a `=====` line between the two texts"
                        );
                    };
                    mutant.edits.push((
                        file.clone(),
                        format!("{old}\n"),
                        if new.is_empty() {
                            String::new()
                        } else {
                            format!("{new}\n")
                        },
                    ));
                    block = None;
                } else {
                    body.push(line);
                }
            } else if let Some(file) = line.strip_prefix("```mutant ") {
                block = Some((file.trim().to_owned(), Vec::new()));
            } else if let Some(tests) = line.strip_prefix("Rejected by:") {
                mutant.rejected_by = tests
                    .split(',')
                    .map(|test| test.trim().trim_matches('`').to_owned())
                    .filter(|test| !test.is_empty())
                    .collect();
            }
        }
        if mutant.edits.is_empty() {
            bail!("`{title}` has no ```mutant <file> block");
        }
        mutants.push(mutant);
    }
    Ok(mutants)
}

/// The reference's files as they were, put back when dropped.
struct Restore {
    saved: Vec<(PathBuf, PathBuf)>,
}

impl Restore {
    fn put_back(&mut self) -> Result<()> {
        for (file, copy) in self.saved.drain(..) {
            std::fs::copy(&copy, &file).with_context(|| {
                format!("cannot put {} back from {}", file.display(), copy.display())
            })?;
            let _ = std::fs::remove_file(&copy);
        }
        Ok(())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(error) = self.put_back() {
            eprintln!("{} {error:#}", style::red("error:"));
        }
    }
}

fn backup_dir(kata: &Kata) -> PathBuf {
    kata.state_dir().join("mutants").join(&kata.name)
}

/// Puts back copies an interrupted run left.
fn recover(kata: &Kata) -> Result<()> {
    let dir = backup_dir(kata);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().replace("%2F", "/");
        let file = kata.solution_dir().join(&name);
        std::fs::copy(entry.path(), &file)
            .with_context(|| format!("cannot put {} back", file.display()))?;
        std::fs::remove_file(entry.path())?;
        eprintln!(
            "{} put back solutions/{}/{name}, which an interrupted run had left mutated",
            style::yellow("note:"),
            kata.name
        );
    }
    Ok(())
}

/// Applies a mutant's edits; the returned guard puts the reference back.
fn apply(kata: &Kata, mutant: &Mutant) -> Result<Restore> {
    let dir = backup_dir(kata);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut restore = Restore { saved: Vec::new() };
    for (file, old, new) in &mutant.edits {
        let path = kata.solution_dir().join(file);
        let copy = dir.join(file.replace('/', "%2F"));
        if !restore.saved.iter().any(|(saved, _)| *saved == path) {
            std::fs::copy(&path, &copy)
                .with_context(|| format!("cannot copy {} aside", path.display()))?;
            restore.saved.push((path.clone(), copy));
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let found = text.matches(old.as_str()).count();
        if found != 1 {
            bail!(
                "`{}`: the text to replace occurs {found} times in solutions/{}/{file}, not once",
                mutant.title,
                kata.name
            );
        }
        std::fs::write(&path, text.replacen(old.as_str(), new, 1))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(restore)
}

/// Runs one kata's mutants; returns how many were not rejected as they should be.
fn run_kata(kata: &Kata, only: Option<&str>) -> Result<usize> {
    let file = kata.solution_dir().join("mutants.md");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", relative(kata, &file)))?;
    let mutants = parse(&text)?;
    recover(kata)?;
    println!(
        "{}",
        style::bold(&format!("Wrong solutions of {}", kata.name))
    );
    let mut problems = 0;
    for mutant in mutants
        .iter()
        .filter(|m| only.is_none_or(|only| m.title.contains(only)))
    {
        // A mutant whose text is not in the reference (any more) proves nothing: say so, and go
        // on with the others.
        let mut restore = match apply(kata, mutant) {
            Ok(restore) => restore,
            Err(error) => {
                problems += 1;
                println!("  {}: {} {error:#}", mutant.title, style::red("✗"));
                continue;
            }
        };
        let ran = test::build_and_run(
            kata,
            Whose::Reference,
            &Selection::everything(),
            Noise::Quiet,
        );
        restore.put_back()?;
        let verdict = match ran? {
            Ran::DoesNotCompile { messages } => {
                problems += 1;
                format!(
                    "{} does not compile, so it proves nothing:\n{}",
                    style::red("✗"),
                    messages.trim()
                )
            }
            Ran::Ran(run) => {
                let failed: Vec<String> = run
                    .failures()
                    .map(|r| r.name.split("::").next().unwrap_or(&r.name).to_owned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let passed_anyway: Vec<&String> = mutant
                    .rejected_by
                    .iter()
                    .filter(|test| !failed.contains(test))
                    .collect();
                if failed.is_empty() {
                    problems += 1;
                    format!("{} passes every test", style::red("✗"))
                } else if !passed_anyway.is_empty() {
                    problems += 1;
                    format!(
                        "{} named but passed: {}; failed: {}",
                        style::red("✗"),
                        passed_anyway
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        failed.join(", ")
                    )
                } else {
                    format!("{} rejected by {}", style::green("✓"), failed.join(", "))
                }
            }
        };
        println!("  {}: {verdict}", mutant.title);
    }
    Ok(problems)
}

fn relative(kata: &Kata, path: &Path) -> String {
    path.strip_prefix(&kata.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

pub fn run(kata: Option<&str>, only: Option<&str>) -> Result<ExitCode> {
    test::check_settings()?;
    let repo = Repo::here()?;
    let katas: Vec<&Kata> = match kata {
        Some(name) => vec![repo.kata(name)?],
        None => repo
            .katas()
            .iter()
            .filter(|kata| kata.solution_dir().join("mutants.md").is_file())
            .collect(),
    };
    let mut problems = 0;
    for kata in katas {
        problems += run_kata(kata, only)?;
    }
    println!();
    if problems == 0 {
        println!("{} every wrong solution is rejected", style::green("✓"));
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} {problems} wrong solution(s) not rejected as they should be",
            style::red("✗")
        );
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_read_with_their_edits_and_tests() {
        let text = "# Wrong answers\n\nIntro.\n\n## Off by one\n\nWhy.\n\n```mutant src/lib.rs\n    while a <= b {\n=====\n    while a < b {\n```\n\n```mutant src/other.rs\n    keep();\n=====\n```\n\nRejected by: stage1_a, `stage1_b`\n\n## Second\n\n```mutant src/lib.rs\nx\n=====\ny\n```\n";
        let mutants = parse(text).unwrap();
        assert_eq!(mutants.len(), 2);
        assert_eq!(mutants[0].title, "Off by one");
        assert_eq!(
            mutants[0].edits,
            vec![
                (
                    "src/lib.rs".to_owned(),
                    "    while a <= b {\n".to_owned(),
                    "    while a < b {\n".to_owned()
                ),
                (
                    "src/other.rs".to_owned(),
                    "    keep();\n".to_owned(),
                    String::new()
                ),
            ]
        );
        assert_eq!(mutants[0].rejected_by, vec!["stage1_a", "stage1_b"]);
        assert!(mutants[1].rejected_by.is_empty());
    }

    #[test]
    fn a_block_without_its_separator_is_an_error() {
        let error = parse("## Broken\n```mutant src/lib.rs\nx\n```\n").unwrap_err();
        assert!(
            error.to_string().contains("needs a `=====` line"),
            "{error}"
        );
    }
}
