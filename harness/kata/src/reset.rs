//! `just reset <kata> [--yes]`: put a kata's crate back as the last git commit has it (on a fresh
//! clone, the stub), so a learner can start the kata over.
//!
//! It never destroys work silently: it lists what differs, asks (or needs `--yes`), and copies
//! the learner's version to `target/kata/backup/` before git touches anything. Git is the source
//! of the stub, so files git ignores (build output) are neither listed nor removed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::repo::Repo;
use crate::{prompt, style};

/// Lists what differs in the kata's crate, asks, backs it up, and restores it from git.
pub fn run(kata: &str, yes: bool) -> Result<ExitCode> {
    let repo = Repo::here()?;
    let root = repo.root.clone();
    let kata = repo.kata(kata)?.clone();
    // Git's pathspecs and everything shown to the learner use the path relative to the root.
    let dir = format!("exercises/{}", kata.name);

    if git(&root, &["ls-tree", "-r", "--name-only", "HEAD", "--", &dir])?.is_empty() {
        bail!(
            "your last commit has no {dir}, so there is nothing to put back. Reset restores what \
             git's HEAD has there; `git log -- {dir}` shows the commits that do."
        );
    }
    let status = git(
        &root,
        &[
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=all",
            "--",
            &dir,
        ],
    )?;
    let changes = parse_porcelain(&status);
    if changes.is_empty() {
        println!("{dir} is already as your last commit has it: nothing to reset.");
        return Ok(ExitCode::SUCCESS);
    }

    println!("{dir} differs from your last commit:");
    for change in &changes {
        println!("  {:<10} {}", describe(&change.code), change.path);
    }
    let backup_dir = free_backup_dir(&root.join("target/kata/backup"), &kata.name, unix_now());
    let backup = backup_dir.strip_prefix(&root).unwrap_or(&backup_dir);
    println!(
        "\nReset puts these files back as your last git commit has them (on a fresh clone: the \
         stub).\nYour version is copied first to {}/ (without any target directory).",
        backup.display()
    );

    if !yes {
        if !prompt::can_ask() {
            println!(
                "\n{} Nothing was reset: standard input is not a terminal, so there is no one to \
                 ask.\nTo reset anyway (your version is still backed up), run {}",
                style::red("✗"),
                style::bold(&format!("just reset {} --yes", kata.name))
            );
            return Ok(ExitCode::FAILURE);
        }
        println!();
        if !prompt::yes_or_no(&format!("Reset {dir}?"))? {
            println!("Nothing was reset: {dir} is as you left it.");
            return Ok(ExitCode::SUCCESS);
        }
    }

    // The backup is written in full before anything is touched: if it fails, nothing is lost.
    // A crate deleted whole has nothing left to back up.
    if kata.exercise_dir().is_dir() {
        copy_tree(&kata.exercise_dir(), &backup_dir).with_context(|| {
            format!(
                "cannot back up {dir} to {}: nothing was reset",
                backup.display()
            )
        })?;
    }
    // `--no-overlay` also drops files that were added to the index but are not in HEAD.
    git(&root, &["checkout", "--no-overlay", "HEAD", "--", &dir])?;
    let untracked = git(
        &root,
        &[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--",
            &dir,
        ],
    )?;
    let mut removed = 0;
    for file in untracked.split('\0').filter(|file| !file.is_empty()) {
        // Like the backup, build output is left alone.
        if is_build_output(file) {
            continue;
        }
        let path = root.join(file);
        std::fs::remove_file(&path).with_context(|| {
            format!(
                "cannot remove {file}; your version is backed up in {}",
                backup.display()
            )
        })?;
        removed += 1;
        // Directories that held only new files go too; `remove_dir` refuses any that is not
        // empty, which is where this stops.
        for parent in path.ancestors().skip(1) {
            if parent == kata.exercise_dir() || std::fs::remove_dir(parent).is_err() {
                break;
            }
        }
    }

    println!(
        "\n{} {dir} is back as your last commit has it ({} file(s) restored, {removed} new file(s) \
         removed).",
        style::green("✓"),
        changes.len() - changes.iter().filter(|c| c.code == "??").count(),
    );
    println!("Your version is in {}/.", backup.display());
    println!(
        "Next: read {}, then run {}",
        kata.readme(),
        style::bold(&format!("just test {}", kata.name))
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs git in the repository root and returns its output, or an error that says what reset
/// needs when git is missing or this is not a clone.
fn git(root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .context(
            "cannot run git: reset needs git and a git clone of the katas. Without them, copy \
             exercises/<kata> back by hand from a fresh copy of the repository",
        )?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("not a git repository") {
            bail!(
                "{} is not a git clone: reset takes the stub from git. Copy exercises/<kata> \
                 back by hand from a fresh copy of the repository",
                root.display()
            );
        }
        bail!("`git {}` failed: {}", args.join(" "), stderr.trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One entry of `git status --porcelain`: its two-letter code and the path (the new path, for
/// a rename).
#[derive(Debug, PartialEq, Eq)]
struct Change {
    code: String,
    path: String,
}

/// Parses `git status --porcelain -z`: `XY path` entries ended by NUL, where a rename or copy
/// is followed by one more entry, the original path. Build output is skipped.
fn parse_porcelain(output: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut entries = output.split('\0').filter(|entry| !entry.is_empty());
    while let Some(entry) = entries.next() {
        let (Some(code), Some(path)) = (entry.get(..2), entry.get(3..)) else {
            continue;
        };
        if code.contains(['R', 'C']) {
            entries.next();
        }
        if !is_build_output(path) {
            changes.push(Change {
                code: code.to_owned(),
                path: path.to_owned(),
            });
        }
    }
    changes
}

/// A git status code in words.
fn describe(code: &str) -> &'static str {
    match code {
        "??" => "new",
        code if code.contains('D') => "deleted",
        code if code.contains('R') => "renamed",
        code if code.starts_with('A') => "added",
        _ => "modified",
    }
}

/// Whether a path is inside a `target` directory: build output, never backed up nor removed.
fn is_build_output(path: &str) -> bool {
    Path::new(path)
        .components()
        .any(|component| component.as_os_str() == "target")
}

/// The backup's directory name: the kata and the time, so that backups sort by age.
fn backup_name(kata: &str, unix_seconds: u64) -> String {
    format!("{kata}-{unix_seconds}")
}

/// A backup directory under `base` that does not exist yet (two resets in one second get `-2`).
fn free_backup_dir(base: &Path, kata: &str, unix_seconds: u64) -> PathBuf {
    let name = backup_name(kata, unix_seconds);
    let mut dir = base.join(&name);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{name}-{n}"));
    }
    dir
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Copies a directory tree, leaving out `target` directories.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&source, &dest)?;
            }
        } else {
            std::fs::copy(&source, &dest)
                .with_context(|| format!("cannot copy {}", source.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(code: &str, path: &str) -> Change {
        Change {
            code: code.to_owned(),
            path: path.to_owned(),
        }
    }

    #[test]
    fn porcelain_entries_are_read_with_renames_and_without_build_output() {
        let output = " M exercises/t/src/lib.rs\0 D exercises/t/README.md\0\
                      ?? exercises/t/src/my notes.rs\0\
                      R  exercises/t/src/new.rs\0exercises/t/src/old.rs\0\
                      A  exercises/t/src/added.rs\0\
                      ?? exercises/t/target/debug/x\0";
        assert_eq!(
            parse_porcelain(output),
            [
                change(" M", "exercises/t/src/lib.rs"),
                change(" D", "exercises/t/README.md"),
                change("??", "exercises/t/src/my notes.rs"),
                change("R ", "exercises/t/src/new.rs"),
                change("A ", "exercises/t/src/added.rs"),
            ]
        );
        assert!(parse_porcelain("").is_empty());
    }

    #[test]
    fn codes_read_as_words() {
        assert_eq!(describe(" M"), "modified");
        assert_eq!(describe("MM"), "modified");
        assert_eq!(describe(" D"), "deleted");
        assert_eq!(describe("D "), "deleted");
        assert_eq!(describe("??"), "new");
        assert_eq!(describe("A "), "added");
        assert_eq!(describe("R "), "renamed");
    }

    #[test]
    fn backups_are_named_by_kata_and_time_and_never_reused() {
        assert_eq!(backup_name("ticker", 1_700_000_000), "ticker-1700000000");
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path();
        let first = free_backup_dir(base, "ticker", 7);
        assert_eq!(first, base.join("ticker-7"));
        std::fs::create_dir_all(&first).unwrap();
        assert_eq!(free_backup_dir(base, "ticker", 7), base.join("ticker-7-2"));
    }
}
