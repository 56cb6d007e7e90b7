//! A temporary directory for one test's files, and the ways the file katas' suites look at it.
//!
//! The file katas check not only what a function wrote but what it left behind: a destination
//! unchanged after an error, no temporary file in the directory. [`TestDir`] gives each test its
//! own directory (deleted when the test ends) with those views, and shortens the paths in
//! reports to names, so a learner reads `a.txt`, not `/tmp/.tmpX3b9/a.txt`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A temporary directory for one test's files; deleted when dropped.
#[derive(Debug)]
pub struct TestDir {
    dir: TempDir,
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDir {
    /// A new, empty directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory for the test");
        Self { dir }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The path of `name` in the directory (the file need not exist).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("cannot write a test file");
        path
    }

    /// Creates the directory `name` and returns its path.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir(&path).expect("cannot create a test directory");
        path
    }

    /// What the file `name` holds, or `None` if there is no such file.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        Self::contents(&self.path(name))
    }

    /// What the file at `path` holds, or `None` if there is no file there.
    pub fn contents(path: &Path) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }

    /// The names in the directory, sorted, hidden ones included: a temporary file left behind
    /// shows up here.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("cannot list the test directory")
            .map(|entry| {
                let entry = entry.expect("cannot list the test directory");
                entry.file_name().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// A path as reports show it: its name in this directory (other paths unchanged).
    pub fn name(&self, path: &Path) -> String {
        match path.strip_prefix(self.dir.path()) {
            Ok(name) => name.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    /// `Debug` text with this directory's paths shortened to names.
    pub fn short(&self, value: impl Debug) -> String {
        let prefix = format!("{}/", self.dir.path().display());
        format!("{value:?}").replace(&prefix, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_written_are_listed_read_and_named() {
        let dir = TestDir::new();
        let path = dir.write("b.txt", "bee");
        dir.write(".hidden", "");
        dir.mkdir("sub");
        assert_eq!(dir.listing(), [".hidden", "b.txt", "sub"]);
        assert_eq!(dir.read("b.txt").as_deref(), Some(&b"bee"[..]));
        assert_eq!(dir.read("missing"), None);
        assert_eq!(TestDir::contents(&path).as_deref(), Some(&b"bee"[..]));
        assert_eq!(dir.name(&path), "b.txt");
        assert_eq!(dir.short(Some(&path)), "Some(\"b.txt\")");
    }

    #[test]
    fn the_directory_goes_away_with_the_value() {
        let dir = TestDir::new();
        let root = dir.root().to_path_buf();
        assert!(root.is_dir());
        drop(dir);
        assert!(!root.exists());
    }
}
