//! Where the katas are: the manifest (`katas.txt`, the one place that fixes their order) and the
//! fixed layout around it. A kata name is resolved to a [`Kata`] once, where a command starts, and
//! every path the runner uses comes from it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The repository: its root and its katas, in order.
#[derive(Debug, Clone)]
pub struct Repo {
    pub root: PathBuf,
    katas: Vec<Kata>,
}

/// One kata and the paths the layout gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kata {
    pub name: String,
    pub root: PathBuf,
}

/// The kata name that means "every kata" (`just test all`).
pub const ALL: &str = "all";

impl Repo {
    /// The repository around the current directory: the nearest ancestor with a `katas.txt`.
    pub fn here() -> Result<Self> {
        let here = std::env::current_dir().context("cannot read the current directory")?;
        let root = here
            .ancestors()
            .find(|dir| dir.join("katas.txt").is_file())
            .map(Path::to_path_buf)
            .context(
                "no katas.txt here or above: run this from inside the async-katas repository",
            )?;
        Self::at(root)
    }

    /// The repository at `root`.
    pub fn at(root: PathBuf) -> Result<Self> {
        let manifest = root.join("katas.txt");
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let katas = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|name| Kata {
                name: name.to_owned(),
                root: root.clone(),
            })
            .collect();
        Ok(Self { root, katas })
    }

    /// Every kata, in the course's order.
    pub fn katas(&self) -> &[Kata] {
        &self.katas
    }

    /// The kata called `name`, or an error listing the ones there are.
    pub fn kata(&self, name: &str) -> Result<&Kata> {
        match self.katas.iter().find(|kata| kata.name == name) {
            Some(kata) => Ok(kata),
            None => bail!(
                "there is no kata called `{name}`; the katas are: {}",
                self.katas
                    .iter()
                    .map(|kata| kata.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Kata {
    /// The learner's crate (`exercises/<kata>`), which is also its package name.
    pub fn exercise_package(&self) -> &str {
        &self.name
    }

    /// The reference crate (`solutions/<kata>`), package `<kata>-solution`.
    pub fn solution_package(&self) -> String {
        format!("{}-solution", self.name)
    }

    pub fn exercise_dir(&self) -> PathBuf {
        self.root.join("exercises").join(&self.name)
    }

    pub fn solution_dir(&self) -> PathBuf {
        self.root.join("solutions").join(&self.name)
    }

    /// The suite, `tests/<kata>.rs`.
    pub fn suite(&self) -> PathBuf {
        self.root.join("tests").join(format!("{}.rs", self.name))
    }

    /// The suite's own fixtures, `tests/<kata>/`.
    pub fn support_dir(&self) -> PathBuf {
        self.root.join("tests").join(&self.name)
    }

    /// The README, relative to the root, as the learner should type it.
    pub fn readme(&self) -> String {
        format!("exercises/{}/README.md", self.name)
    }

    /// The learner's file to edit, relative to the root.
    pub fn lib(&self) -> String {
        format!("exercises/{}/src/lib.rs", self.name)
    }

    /// The runner's files for this kata (`target/kata`).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("target").join("kata")
    }

    /// Fails with the one command that restores the learner's crate when it is missing.
    pub fn require_exercise(&self) -> Result<()> {
        if !self.exercise_dir().join("Cargo.toml").is_file() {
            bail!(
                "exercises/{name} is missing (or has no Cargo.toml), so kata {name} cannot be \
                 built. `git checkout HEAD -- exercises/{name}` puts the stub back; the other \
                 katas work as before",
                name = self.name
            );
        }
        Ok(())
    }

    /// The suite's source, or an error that says what is missing.
    fn suite_source(&self) -> Result<String> {
        std::fs::read_to_string(self.suite()).with_context(|| {
            format!(
                "cannot read tests/{}.rs, the kata's suite; `git checkout HEAD -- tests/{}.rs` \
                 restores it",
                self.name, self.name
            )
        })
    }

    /// The stage numbers the suite has, from its test names (`stage1_...`), without building it.
    pub fn stages(&self) -> Result<Vec<u32>> {
        let mut stages: Vec<u32> = self
            .tests_in_order()?
            .iter()
            .filter_map(|name| stage_of(name))
            .collect();
        stages.sort_unstable();
        stages.dedup();
        Ok(stages)
    }

    /// The suite's test functions in the order they are written: the order a learner should
    /// meet failures in (libtest reports them alphabetically).
    pub fn tests_in_order(&self) -> Result<Vec<String>> {
        Ok(self
            .suite_source()?
            .split("fn ")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|name| stage_of(name).is_some())
            .collect())
    }

    /// Where a test function is written: `tests/ticker.rs:42`.
    pub fn test_location(&self, test: &str) -> Option<String> {
        let function = test.split("::").next().unwrap_or(test);
        let source = self.suite_source().ok()?;
        let line = source
            .lines()
            .position(|line| line.contains(&format!("fn {function}(")))?;
        Some(format!("tests/{}.rs:{}", self.name, line + 1))
    }
}

/// The stage of a test, from its name: `stage2_foo::case_1` is stage 2.
pub fn stage_of(test: &str) -> Option<u32> {
    parse_stage_prefix(test.strip_prefix("stage")?)
}

fn parse_stage_prefix(rest: &str) -> Option<u32> {
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A stage as a learner types it: `2`, `stage2`, `Stage2`, `stage-2`.
pub fn parse_stage(text: &str) -> Option<u32> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("stage")
        .map(|rest| rest.trim_start_matches(['-', '_', ' ']))
        .unwrap_or(&lower);
    (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
        .then(|| rest.parse().ok())
        .flatten()
}

/// `1, 2, 3` for messages.
pub fn list_stages(stages: &[u32]) -> String {
    stages
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_come_from_test_names() {
        assert_eq!(stage_of("stage1_ticks"), Some(1));
        assert_eq!(stage_of("stage12_x::case_1_zero"), Some(12));
        assert_eq!(stage_of("helper"), None);
        assert_eq!(stage_of("stage_x"), None);
    }

    #[test]
    fn stages_are_read_as_learners_type_them() {
        for text in ["2", "stage2", "Stage2", "stage-2", " 2 ", "STAGE_2"] {
            assert_eq!(parse_stage(text), Some(2), "{text}");
        }
        for text in ["", "stage", "two", "2a", "-1", "stage 2 3", "1.5"] {
            assert_eq!(parse_stage(text), None, "{text}");
        }
    }
}
