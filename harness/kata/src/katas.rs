//! Where the katas are: the manifest (`katas.txt`, the one place that fixes their order) and the
//! fixed layout around it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The repository root: the nearest ancestor of the current directory with a `katas.txt`.
pub fn root() -> Result<PathBuf> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    here.ancestors()
        .find(|dir| dir.join("katas.txt").is_file())
        .map(Path::to_path_buf)
        .context("no katas.txt here or above: run this from inside the async-katas repository")
}

/// One kata and the paths the layout gives it.
#[derive(Debug, Clone)]
pub struct Kata {
    pub name: String,
    pub root: PathBuf,
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

    pub fn suite(&self) -> PathBuf {
        self.root.join("tests").join(format!("{}.rs", self.name))
    }

    /// The README, relative to the root, as the learner should type it.
    pub fn readme(&self) -> String {
        format!("exercises/{}/README.md", self.name)
    }

    /// The stage numbers the suite has, from its test names (`stage1_...`), without building it.
    pub fn stages(&self) -> Result<Vec<u32>> {
        let source = std::fs::read_to_string(self.suite())
            .with_context(|| format!("cannot read the suite of {}", self.name))?;
        let mut stages: Vec<u32> = source
            .split("fn stage")
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect();
        stages.sort_unstable();
        stages.dedup();
        Ok(stages)
    }
}

impl Kata {
    /// The suite's test functions in the order they are written: the order a learner should
    /// meet failures in (libtest reports them alphabetically).
    pub fn tests_in_order(&self) -> Vec<String> {
        let source = std::fs::read_to_string(self.suite()).unwrap_or_default();
        source
            .split("fn ")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|name| stage_of(name).is_some())
            .collect()
    }
}

/// The katas of `katas.txt`, in order.
pub fn all(root: &Path) -> Result<Vec<Kata>> {
    let manifest = root.join("katas.txt");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let katas: Vec<Kata> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|name| Kata {
            name: name.to_owned(),
            root: root.to_path_buf(),
        })
        .collect();
    for kata in &katas {
        if !kata.exercise_dir().is_dir() {
            bail!(
                "katas.txt lists `{}` but exercises/{} does not exist",
                kata.name,
                kata.name
            );
        }
    }
    Ok(katas)
}

/// The kata called `name`, or an error listing the ones there are.
pub fn find(root: &Path, name: &str) -> Result<Kata> {
    let katas = all(root)?;
    let names: Vec<&str> = katas.iter().map(|kata| kata.name.as_str()).collect();
    match katas.iter().find(|kata| kata.name == name) {
        Some(kata) => Ok(kata.clone()),
        None => bail!(
            "there is no kata called `{name}`; the katas are: {}",
            names.join(", ")
        ),
    }
}

/// The stage of a test, from its name: `stage2_foo::case_1` is stage 2.
pub fn stage_of(test: &str) -> Option<u32> {
    let rest = test.strip_prefix("stage")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::stage_of;

    #[test]
    fn stages_come_from_test_names() {
        assert_eq!(stage_of("stage1_ticks"), Some(1));
        assert_eq!(stage_of("stage12_x::case_1_zero"), Some(12));
        assert_eq!(stage_of("helper"), None);
        assert_eq!(stage_of("stage_x"), None);
    }
}
