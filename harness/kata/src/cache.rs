//! The learner's results, kept between runs so `just` can show progress without building.
//!
//! `target/kata/<kata>.results` holds the suite's list of tests and, for every test that ever
//! ran, how it ended and a fingerprint of the learner's files at that moment. A run of one stage
//! updates that stage's tests and leaves the others as they were; a result whose fingerprint is
//! not the current one is from before the learner's last change, and counts as unknown.
//!
//! ```text
//! format  2
//! test    stage1_ticks
//! test    stage2_immediate
//! result  stage1_ticks  8123456789  passed
//! build   8123456789  failed
//! ```
//!
//! (fields are separated by tabs)

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::repo::Kata;
use crate::style;
use crate::suite::{SuiteRun, Verdict};

/// What the cache knows about one kata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    /// The suite's tests, as its last run listed them.
    pub listed: Vec<String>,
    /// `test → (fingerprint, verdict)` of its last run.
    pub results: BTreeMap<String, (u64, Verdict)>,
    /// The fingerprint at which the learner's crate last failed to compile, if it did since.
    pub build_failed: Option<u64>,
}

fn path(kata: &Kata) -> PathBuf {
    kata.state_dir().join(format!("{}.results", kata.name))
}

/// A hash of everything a result depends on: the learner's crate and the suite with its
/// fixtures.
pub fn fingerprint(kata: &Kata) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut files = Vec::new();
    collect(&kata.exercise_dir(), &mut files);
    collect(&kata.support_dir(), &mut files);
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

impl Results {
    fn render(&self) -> String {
        let mut text = String::from("format\t2\n");
        for test in &self.listed {
            text.push_str(&format!("test\t{test}\n"));
        }
        for (test, (print, verdict)) in &self.results {
            text.push_str(&format!("result\t{test}\t{print}\t{}\n", verdict.word()));
        }
        if let Some(print) = self.build_failed {
            text.push_str(&format!("build\t{print}\tfailed\n"));
        }
        text
    }

    /// Reads a cache file; anything else (an older format, a damaged file) is no results.
    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        (lines.next()? == "format\t2").then_some(())?;
        let mut results = Self::default();
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["test", name] => results.listed.push((*name).to_owned()),
                ["result", name, print, word] => {
                    if let (Ok(print), Some(verdict)) = (print.parse(), Verdict::from_word(word)) {
                        results.results.insert((*name).to_owned(), (print, verdict));
                    }
                }
                ["build", print, "failed"] => results.build_failed = print.parse().ok(),
                _ => {}
            }
        }
        Some(results)
    }

    /// Takes in a run made when the learner's files had fingerprint `print`.
    pub fn merge(&mut self, run: &SuiteRun, print: u64) {
        self.listed.clone_from(&run.listed);
        self.results.retain(|test, _| run.listed.contains(test));
        for result in &run.results {
            self.results
                .insert(result.name.clone(), (print, result.verdict));
        }
        self.build_failed = None;
    }
}

/// The saved results, if any.
pub fn load(kata: &Kata) -> Option<Results> {
    Results::parse(&std::fs::read_to_string(path(kata)).ok()?)
}

/// Adds a run to the saved results.
pub fn save_run(kata: &Kata, run: &SuiteRun) {
    let mut results = load(kata).unwrap_or_default();
    results.merge(run, fingerprint(kata));
    write(kata, &results);
}

/// Saves that the learner's crate did not compile, so `just` can say so.
pub fn save_build_failure(kata: &Kata) {
    let mut results = load(kata).unwrap_or_default();
    results.build_failed = Some(fingerprint(kata));
    write(kata, &results);
}

/// Set once a cache could not be written, so the learner hears about it once per command.
static REPORTED: AtomicBool = AtomicBool::new(false);

fn write(kata: &Kata, results: &Results) {
    let file = path(kata);
    let written = (|| {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = file.with_extension("tmp");
        std::fs::write(&temporary, results.render())?;
        std::fs::rename(&temporary, &file)
    })();
    if let Err(error) = written
        && !REPORTED.swap(true, Ordering::Relaxed)
    {
        eprintln!(
            "{} cannot save your results in {} ({error}), so `just` will not remember this run. \
             Move whatever is in the way (`rm -r target/kata` is safe: it holds only results, \
             hints seen and backups you can copy out first), then run again.",
            style::yellow("warning:"),
            file.strip_prefix(&kata.root).unwrap_or(&file).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::TestResult;
    use kata_record::Outcome;

    fn run(listed: &[&str], ran: &[(&str, Verdict)]) -> SuiteRun {
        SuiteRun {
            listed: listed.iter().map(|t| (*t).to_owned()).collect(),
            results: ran
                .iter()
                .map(|(name, verdict)| TestResult {
                    name: (*name).to_owned(),
                    verdict: *verdict,
                    record: None,
                    output: String::new(),
                })
                .collect(),
            crash: None,
        }
    }

    #[test]
    fn a_run_of_one_stage_merges_into_what_was_known() {
        let mut results = Results::default();
        let failed = Verdict::Failed(Outcome::CheckFailed);
        results.merge(
            &run(
                &["stage1_a", "stage2_b"],
                &[("stage1_a", failed), ("stage2_b", failed)],
            ),
            1,
        );
        results.merge(
            &run(&["stage1_a", "stage2_b"], &[("stage1_a", Verdict::Passed)]),
            2,
        );
        assert_eq!(results.results["stage1_a"], (2, Verdict::Passed));
        assert_eq!(
            results.results["stage2_b"],
            (1, failed),
            "kept, from before"
        );
        // A test that left the suite leaves the results.
        results.merge(&run(&["stage1_a"], &[]), 3);
        assert!(!results.results.contains_key("stage2_b"));
    }

    #[test]
    fn results_survive_the_file_and_old_files_are_ignored() {
        let mut results = Results::default();
        results.merge(
            &run(
                &["stage1_a", "stage1_b::case_1"],
                &[
                    ("stage1_a", Verdict::Passed),
                    ("stage1_b::case_1", Verdict::Crashed),
                ],
            ),
            42,
        );
        results.build_failed = Some(43);
        assert_eq!(Results::parse(&results.render()), Some(results));
        assert_eq!(Results::parse("12345\nstage1_a\tok\n"), None);
    }
}
