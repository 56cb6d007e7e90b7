//! Which tests of a suite a run covers: `just test ticker 2`, `just test ticker stage1 stage3`,
//! `just test ticker "does not block"`.
//!
//! A word that reads as a stage (`2`, `stage2`, `1,3`) selects that stage; anything else selects
//! the tests whose name contains it, spaces read as underscores (libtest's rule: a test runs when
//! any filter matches).

use anyhow::{Result, bail};

use crate::repo::{Kata, list_stages, parse_stage};

/// The tests a run covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub stages: Vec<u32>,
    pub names: Vec<String>,
}

impl Selection {
    /// Every test.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Reads what the learner typed after the kata's name.
    pub fn parse(words: &[String], kata: &Kata) -> Result<Self> {
        let mut selection = Self::default();
        let known = kata.stages()?;
        for word in words
            .iter()
            .map(|word| word.trim())
            .filter(|w| !w.is_empty())
        {
            let pieces: Vec<&str> = word.split(',').map(str::trim).collect();
            let stages: Option<Vec<u32>> = pieces.iter().map(|piece| parse_stage(piece)).collect();
            match stages {
                Some(stages) => {
                    for stage in stages {
                        if !known.contains(&stage) {
                            bail!(
                                "kata {} has stages {}, not {stage}",
                                kata.name,
                                list_stages(&known)
                            );
                        }
                        if !selection.stages.contains(&stage) {
                            selection.stages.push(stage);
                        }
                    }
                }
                None => selection.names.push(word.replace(' ', "_")),
            }
        }
        selection.stages.sort_unstable();
        Ok(selection)
    }

    /// Whether the run covers the whole suite.
    pub fn is_everything(&self) -> bool {
        self.stages.is_empty() && self.names.is_empty()
    }

    /// The filters to give libtest.
    pub fn filters(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|stage| format!("stage{stage}_"))
            .chain(self.names.iter().cloned())
            .collect()
    }

    /// Whether `test` is in the selection (libtest's rule: any filter is a substring).
    pub fn covers(&self, test: &str) -> bool {
        self.is_everything() || self.filters().iter().any(|filter| test.contains(filter))
    }

    /// For headings: ` (stage 2)`, ` (stages 1, 3 and tests matching `block`)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.stages.as_slice() {
            [] => {}
            [one] => parts.push(format!("stage {one}")),
            many => parts.push(format!("stages {}", list_stages(many))),
        }
        if !self.names.is_empty() {
            parts.push(format!("tests matching `{}`", self.names.join("` or `")));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(" and "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kata() -> (tempfile::TempDir, Kata) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tests")).unwrap();
        std::fs::write(
            dir.path().join("tests/t.rs"),
            "fn stage1_a() {}\nfn stage2_b() {}\nfn stage3_c() {}\nfn helper() {}\n",
        )
        .unwrap();
        let kata = Kata {
            name: "t".to_owned(),
            root: dir.path().to_owned(),
        };
        (dir, kata)
    }

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn stages_read_every_way_and_names_keep_their_spaces_as_underscores() {
        let (_dir, kata) = kata();
        let selection =
            Selection::parse(&words(&["2", "stage1", "does not block"]), &kata).unwrap();
        assert_eq!(selection.stages, vec![1, 2]);
        assert_eq!(selection.names, vec!["does_not_block"]);
        assert_eq!(
            selection.filters(),
            vec!["stage1_", "stage2_", "does_not_block"]
        );
        assert!(selection.covers("stage2_b::case_1"));
        assert!(selection.covers("stage3_does_not_block"));
        assert!(!selection.covers("stage3_c"));
        assert_eq!(
            selection.describe(),
            " (stages 1, 2 and tests matching `does_not_block`)"
        );
        let listed = Selection::parse(&words(&["1,3"]), &kata).unwrap();
        assert_eq!(listed.stages, vec![1, 3]);
    }

    #[test]
    fn a_stage_the_kata_lacks_is_an_error_and_nothing_is_everything() {
        let (_dir, kata) = kata();
        let error = Selection::parse(&words(&["7"]), &kata).unwrap_err();
        assert_eq!(error.to_string(), "kata t has stages 1, 2, 3, not 7");
        let all = Selection::parse(&words(&[" "]), &kata).unwrap();
        assert!(all.is_everything());
        assert!(all.covers("anything"));
        assert_eq!(all.describe(), "");
    }
}
