//! A temporary directory for one test's files, and the ways the file katas' suites look at it.
//!
//! The file katas check not only what a function wrote but what it left behind: a destination
//! unchanged after an error, no temporary file in the directory. [`TestDir`] gives each test its
//! own directory (deleted when the test ends) with those views, and shortens the paths in
//! reports to names, so a learner reads `a.txt`, not `/tmp/.tmpX3b9/a.txt`.
//!
//! Files that behave unlike plain files are what find the interesting bugs:
//! - [`TestDir::fifo`] and [`PipeFeeder`]: a named pipe whose writer gives its bytes when the
//!   test says so (or after real pauses), so a test can look at a destination half way through a
//!   copy, or catch code that blocks the runtime's thread on a read;
//! - [`TestDir::write_unreadable`]: a file the test may not read;
//! - a destination that fills up after some bytes: run the test with
//!   `#[kata_harness::test(file_size_limit = N)]` (see [`crate::TestConfig::file_size_limit`]).

use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

use crate::hint::Hint;
use crate::report::{check_bytes, check_eq, fail};

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

    /// A file `name` holding `contents` that the test may not read (mode 000), or `None` where
    /// the system does not enforce that: off Unix, and for root, who reads everything.
    pub fn write_unreadable(&self, name: &str, contents: impl AsRef<[u8]>) -> Option<PathBuf> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = self.write(name, contents);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).ok()?;
            std::fs::File::open(&path).is_err().then_some(path)
        }
        #[cfg(not(unix))]
        {
            let _ = (name, contents);
            None
        }
    }

    /// Makes a named pipe `name` (with the `mkfifo` command) and returns its path, or `None`
    /// where there is no `mkfifo`. Feed it with a [`PipeFeeder`].
    pub fn fifo(&self, name: &str) -> Option<PathBuf> {
        let path = self.path(name);
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .is_ok_and(|status| status.success());
        made.then_some(path)
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

/// Checks that the directory holds exactly `names` (in any order) after `when`: no temporary
/// file left, no output missing.
#[track_caller]
pub fn check_listing(dir: &TestDir, names: &[&str], when: &str, hint: &Hint) {
    let mut expected: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    check_eq(
        &format!("the files in the directory after {when}"),
        dir.listing(),
        expected,
        hint,
    );
}

/// Checks that the file `name` is as it was (`before`, or absent) after `when`, and that the
/// directory holds `names` and nothing else: what a failed write must leave behind.
#[track_caller]
pub fn check_left_alone(
    dir: &TestDir,
    (name, before): (&str, Option<&[u8]>),
    names: &[&str],
    when: &str,
    hint: &Hint,
) {
    check_bytes(
        &format!("{name} after {when} (it must be as it was before)"),
        &dir.read(name),
        before,
        hint,
    );
    check_listing(dir, names, when, hint);
}

/// The bytes of the file `name`, which a call that reported success must have written; fails
/// the test with `hint` if there is no such file.
#[track_caller]
pub fn read_output(dir: &TestDir, name: &str, hint: &Hint) -> Vec<u8> {
    dir.read(name).unwrap_or_else(|| {
        fail(
            &format!("{name} after a call that reported success"),
            "no file",
            "the output, renamed onto its destination",
            hint,
        )
    })
}

/// When a [`PipeFeeder`] writes each part after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// When the test calls [`PipeFeeder::release`].
    Test,
    /// After this much real time: a writer that pauses, as a slow network or disk would.
    Pause(Duration),
}

/// Feeds a named pipe from a thread of its own, part by part.
///
/// Opening a pipe for writing waits until a reader opens it, and a write of more than the pipe
/// holds (64 KiB on Linux) returns only once the reader has taken most of it, so "part 1 is
/// written" also says how far the reader got. After the last part the pipe is closed, which is
/// its end of file.
#[derive(Debug)]
pub struct PipeFeeder {
    written: tokio::sync::watch::Receiver<usize>,
    release: mpsc::Sender<()>,
}

impl PipeFeeder {
    /// Starts writing `parts` into the pipe at `path`, the first at once (as soon as a reader
    /// opens the pipe) and each later one when `gate` says.
    pub fn start(path: &Path, parts: Vec<Vec<u8>>, gate: Gate) -> Self {
        let (written_tx, written) = tokio::sync::watch::channel(0);
        let (release, released) = mpsc::channel::<()>();
        let path = path.to_owned();
        std::thread::spawn(move || {
            // A reader that opens the pipe only to look at it and close it again breaks the
            // pipe for the writer: start over for the next reader, a few times.
            for _ in 0..3 {
                let Ok(mut pipe) = std::fs::OpenOptions::new().write(true).open(&path) else {
                    return;
                };
                let mut broken = false;
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        match gate {
                            Gate::Test => {
                                if released.recv().is_err() {
                                    return;
                                }
                            }
                            Gate::Pause(pause) => std::thread::sleep(pause),
                        }
                    }
                    if pipe.write_all(part).is_err() {
                        broken = true;
                        break;
                    }
                    written_tx.send_replace(i + 1);
                }
                if !broken || *written_tx.borrow() > 0 {
                    return;
                }
            }
        });
        Self { written, release }
    }

    /// Waits until `parts` parts have been written (the first `parts` of them).
    pub async fn written(&mut self, parts: usize) {
        // The feeder thread may end (a broken pipe) before getting there: then this waits for
        // good, and the test's own limits report it.
        let _ = self.written.wait_for(|&done| done >= parts).await;
    }

    /// How many parts have been written so far.
    pub fn parts_written(&self) -> usize {
        *self.written.borrow()
    }

    /// Lets the next part go (with [`Gate::Test`]).
    pub fn release(&self) {
        let _ = self.release.send(());
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_directory_is_checked_for_leftovers_and_outputs() {
        let dir = TestDir::new();
        dir.write("dst", "old");
        dir.write("src", "new");
        let hint = crate::Stage::new("kata", 1).hint("h");
        check_left_alone(
            &dir,
            ("dst", Some(b"old")),
            &["src", "dst"],
            "a failure",
            &hint,
        );
        assert_eq!(read_output(&dir, "src", &hint), b"new");
        dir.write(".dst.tmp", "half");
        let message = std::panic::catch_unwind(|| {
            check_listing(&dir, &["dst", "src"], "a failure", &hint);
        })
        .map_err(|payload| crate::report::panic_text(payload.as_ref()))
        .expect_err("a temporary file is left");
        assert!(message.contains(".dst.tmp"), "{message}");
        let message = std::panic::catch_unwind(|| read_output(&dir, "out", &hint))
            .map_err(|payload| crate::report::panic_text(payload.as_ref()))
            .expect_err("there is no output");
        assert!(
            message.contains("out after a call that reported success"),
            "{message}"
        );
    }
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
    fn an_unreadable_file_cannot_be_read_where_it_is_given() {
        let dir = TestDir::new();
        if let Some(path) = dir.write_unreadable("locked", "secret") {
            assert!(std::fs::read(path).is_err());
        }
    }

    #[cfg(unix)]
    #[crate::test(real_time)]
    async fn a_pipe_is_fed_part_by_part() {
        use tokio::io::AsyncReadExt;
        let dir = TestDir::new();
        let Some(path) = dir.fifo("pipe") else {
            return eprintln!("skipped: no mkfifo here");
        };
        let mut feeder =
            PipeFeeder::start(&path, vec![b"one ".to_vec(), b"two".to_vec()], Gate::Test);
        let mut reader = tokio::fs::File::open(&path).await.unwrap();
        feeder.written(1).await;
        let mut first = [0; 4];
        reader.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"one ");
        assert_eq!(feeder.parts_written(), 1);
        feeder.release();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"two");
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
