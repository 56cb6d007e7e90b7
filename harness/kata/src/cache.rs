//! The last results of each kata, so `just` can show progress without building anything.
//!
//! `target/kata/<kata>.tsv` holds a fingerprint of the learner's files and one line per test.
//! When the files change, the fingerprint no longer matches and the results show as stale.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::katas::Kata;
use crate::libtest::Outcomes;

/// What the cache knows about one kata.
pub struct Saved {
    /// `(test name, passed)` from the last full run.
    pub results: Vec<(String, bool)>,
    /// Whether the learner's files changed since.
    pub stale: bool,
    /// False when the last run stopped at a compile error (`results` is then empty).
    pub compiles: bool,
}

/// The line that stands for "did not compile" in place of results.
const BUILD_FAILED: &str = "!build-failed";

fn path(kata: &Kata) -> PathBuf {
    kata.root
        .join("target")
        .join("kata")
        .join(format!("{}.tsv", kata.name))
}

/// A hash of the exercise's files and the suite: what a result depends on.
pub fn fingerprint(kata: &Kata) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut files = Vec::new();
    collect(&kata.exercise_dir(), &mut files);
    files.push(kata.suite());
    files.sort();
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                collect(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// Saves a full run's results (filtered runs are not saved: they are not the whole picture).
pub fn save(kata: &Kata, outcomes: &Outcomes) {
    let mut text = format!("{}\n", fingerprint(kata));
    for (name, outcome) in outcomes {
        text.push_str(&format!(
            "{name}\t{}\n",
            if outcome.passed { "ok" } else { "FAILED" }
        ));
    }
    write(kata, text);
}

/// Saves that the learner's crate did not compile, so `just` can say so.
pub fn save_build_failure(kata: &Kata) {
    write(kata, format!("{}\n{BUILD_FAILED}\n", fingerprint(kata)));
}

fn write(kata: &Kata, text: String) {
    let file = path(kata);
    // A cache that cannot be written only costs speed later: never fail a test run for it.
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(file, text);
}

/// The saved results, if any.
pub fn load(kata: &Kata) -> Option<Saved> {
    let text = std::fs::read_to_string(path(kata)).ok()?;
    let mut lines = text.lines();
    let saved_print: u64 = lines.next()?.parse().ok()?;
    let lines: Vec<&str> = lines.collect();
    let results = lines
        .iter()
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, result)| (name.to_owned(), result == "ok"))
        .collect();
    Some(Saved {
        results,
        stale: saved_print != fingerprint(kata),
        compiles: !lines.contains(&BUILD_FAILED),
    })
}
