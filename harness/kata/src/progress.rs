//! Where the learner stands on a kata: the one place that says whether it is solved, which
//! stage comes next, and how far each stage is. `just`, `just test`, `just watch` and
//! `just hint` all ask here.

use anyhow::Result;

use crate::cache::{self, Results};
use crate::repo::{Kata, Repo, stage_of};
use crate::style;
use crate::suite::Verdict;

/// What the cache says about a kata, against the learner's files as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub state: State,
    pub stages: Vec<StageProgress>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No run yet.
    NotTried,
    /// The learner's crate did not compile at its current state.
    DoesNotCompile,
    /// Results exist (some may be from before the learner's last change).
    Tried,
}

/// One stage's tests, by what is known of them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageProgress {
    pub stage: u32,
    pub total: usize,
    /// Passed, with the learner's files as they are now.
    pub passed: usize,
    /// Failed, with the learner's files as they are now.
    pub failed: usize,
    /// Not run since the learner's last change (or never).
    pub unknown: usize,
    /// Of `unknown`: run, but before the learner's last change.
    pub stale: usize,
}

impl StageProgress {
    pub fn solved(&self) -> bool {
        self.total > 0 && self.passed == self.total
    }
}

impl Progress {
    /// The kata's progress, from the cache and the current fingerprint of its files.
    pub fn of(kata: &Kata) -> Result<Self> {
        let stages = kata.stages()?;
        let print = cache::fingerprint(kata);
        Ok(Self::from_results(&stages, cache::load(kata), print))
    }

    fn from_results(stages: &[u32], results: Option<Results>, print: u64) -> Self {
        let Some(results) = results else {
            return Self::not_tried(stages);
        };
        let state = if results.build_failed == Some(print) {
            State::DoesNotCompile
        } else if results.listed.is_empty() {
            return Self::not_tried(stages);
        } else {
            State::Tried
        };
        let stages = stages
            .iter()
            .map(|&stage| {
                let mut progress = StageProgress {
                    stage,
                    total: 0,
                    passed: 0,
                    failed: 0,
                    unknown: 0,
                    stale: 0,
                };
                for test in results
                    .listed
                    .iter()
                    .filter(|test| stage_of(test) == Some(stage))
                {
                    progress.total += 1;
                    match results.results.get(test) {
                        Some(&(at, verdict)) if at == print => {
                            if verdict == Verdict::Passed {
                                progress.passed += 1;
                            } else {
                                progress.failed += 1;
                            }
                        }
                        Some(_) => {
                            progress.unknown += 1;
                            progress.stale += 1;
                        }
                        None => progress.unknown += 1,
                    }
                }
                progress
            })
            .collect();
        Self { state, stages }
    }

    fn not_tried(stages: &[u32]) -> Self {
        Self {
            state: State::NotTried,
            stages: stages
                .iter()
                .map(|&stage| StageProgress {
                    stage,
                    total: 0,
                    passed: 0,
                    failed: 0,
                    unknown: 0,
                    stale: 0,
                })
                .collect(),
        }
    }

    /// Every test passes, with the learner's files as they are now.
    pub fn solved(&self) -> bool {
        self.state == State::Tried
            && !self.stages.is_empty()
            && self.stages.iter().all(StageProgress::solved)
    }

    /// The first stage that is not known to pass: the one to work on.
    pub fn next_stage(&self) -> Option<u32> {
        match self.state {
            State::NotTried | State::DoesNotCompile => self.stages.first().map(|s| s.stage),
            State::Tried => self
                .stages
                .iter()
                .find(|stage| !stage.solved())
                .map(|stage| stage.stage),
        }
    }

    /// Whether every result is from before the learner's last change.
    pub fn all_stale(&self) -> bool {
        self.state == State::Tried
            && self
                .stages
                .iter()
                .all(|stage| stage.passed + stage.failed == 0)
    }
}

/// The first kata of `katas` not known to be solved.
pub fn next_unsolved(katas: &[Kata]) -> Option<&Kata> {
    katas
        .iter()
        .find(|kata| !Progress::of(kata).is_ok_and(|progress| progress.solved()))
}

/// The kata a command works on: the one named, else the first not solved yet. `None`, after
/// saying so, when none was named and every kata is solved.
pub fn named_or_next(repo: &Repo, name: Option<&str>, command: &str) -> Result<Option<Kata>> {
    if let Some(name) = name {
        return repo.kata(name).cloned().map(Some);
    }
    let next = next_unsolved(repo.katas()).cloned();
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

#[cfg(test)]
mod tests {
    use super::*;
    use kata_record::Outcome;

    fn results(entries: &[(&str, u64, Verdict)]) -> Results {
        Results {
            listed: entries
                .iter()
                .map(|(name, ..)| (*name).to_owned())
                .collect(),
            results: entries
                .iter()
                .map(|&(name, print, verdict)| (name.to_owned(), (print, verdict)))
                .collect(),
            build_failed: None,
        }
    }

    #[test]
    fn only_fresh_passes_count_and_the_next_stage_is_the_first_unsure_one() {
        let failed = Verdict::Failed(Outcome::CheckFailed);
        let progress = Progress::from_results(
            &[1, 2, 3],
            Some(results(&[
                ("stage1_a", 7, Verdict::Passed),
                ("stage1_b", 7, Verdict::Passed),
                ("stage2_a", 6, Verdict::Passed),
                ("stage2_b", 7, failed),
                ("stage3_a", 7, Verdict::Passed),
            ])),
            7,
        );
        assert_eq!(progress.state, State::Tried);
        let counts: Vec<_> = progress
            .stages
            .iter()
            .map(|s| (s.stage, s.passed, s.failed, s.unknown, s.total))
            .collect();
        assert_eq!(
            counts,
            vec![(1, 2, 0, 0, 2), (2, 0, 1, 1, 2), (3, 1, 0, 0, 1)]
        );
        assert_eq!(progress.next_stage(), Some(2));
        assert!(!progress.solved());
        assert!(!progress.all_stale());
    }

    #[test]
    fn solved_means_every_test_passed_on_the_files_as_they_are() {
        let passed = results(&[
            ("stage1_a", 7, Verdict::Passed),
            ("stage2_a", 7, Verdict::Passed),
        ]);
        assert!(Progress::from_results(&[1, 2], Some(passed.clone()), 7).solved());
        let changed = Progress::from_results(&[1, 2], Some(passed), 8);
        assert!(!changed.solved());
        assert!(changed.all_stale());
        assert_eq!(
            Progress::from_results(&[1, 2], None, 7).state,
            State::NotTried
        );
        let mut broken = results(&[("stage1_a", 7, Verdict::Passed)]);
        broken.build_failed = Some(8);
        assert_eq!(
            Progress::from_results(&[1], Some(broken), 8).state,
            State::DoesNotCompile
        );
    }
}
