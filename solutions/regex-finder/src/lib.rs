//! # Regex finder: reference solution
//!
//! [`FindRegex`] searches a list of files for a regular expression and reports what it finds as
//! events on an [`EventEmitter`]: [`Start`] first, then for each file in turn [`FileRead`] and
//! its [`Match`]es (or an [`Error`] if it cannot be read), and [`End`] last. Stage 2's
//! [`find_regex`] runs the same search and *also* hands every match to a callback at the end:
//! events for progress, a callback for the result.
//!
//! Four decisions shape the code:
//!
//! - **The search runs in a spawned task** and [`FindRegex::find`] returns the emitter at once,
//!   so the caller can attach listeners after the call. Every event, `Start` included, is emitted
//!   from that task, never inside `find`: on tokio's current-thread runtime the task cannot run
//!   before the caller yields, so the listeners are always there in time.
//! - **Files are read with `tokio::fs`, line by line** through a `BufReader`, into one reused
//!   buffer. `tokio::fs` waits for the disk on tokio's blocking pool, never on the runtime's own
//!   thread, and memory stays at a buffer and a line whatever the file's size, where reading the
//!   file whole would hold all of it at once.
//! - **One file after another, in the order given.** The files are a list: the same path given
//!   twice is searched twice, and every path is reported as it was given.
//! - **One file's failure is that file's problem.** A file that cannot be opened or read, or that
//!   is not UTF-8, gets an [`Error`] event and the search moves on to the next file.

use std::path::{Path, PathBuf};

use kata_emitter::EventEmitter;
use regex::Regex;
use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Emitted first: the search starts, over these files, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The files to search, in the order they were given.
    pub files: Vec<PathBuf>,
}

/// Emitted when a file has been opened, before any of its matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRead {
    /// The file, as it was given.
    pub path: PathBuf,
}

/// One match of the pattern: emitted for every match, several per line if need be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The file it was found in, as it was given.
    pub path: PathBuf,
    /// The line it was found on, counting from 1.
    pub line: usize,
    /// The matched text (not the whole line).
    pub text: String,
}

/// A file that could not be searched: it cannot be opened or read, or it is not UTF-8. The
/// search carries on with the next file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The file, as it was given.
    pub path: PathBuf,
    /// What went wrong, for a person to read (for a file that is not UTF-8, which line).
    pub error: String,
}

/// Emitted last, once every file has been searched (or has failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End;

/// Why a search could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindRegexError {
    /// The pattern is not a valid regular expression.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What the regex parser said about it.
        reason: String,
    },
}

/// A search to configure with [`file`](FindRegex::file) / [`files`](FindRegex::files), then run
/// with [`find`](FindRegex::find).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), regex_finder::FindRegexError> {
/// use regex_finder::{End, FindRegex, Match};
///
/// // The section headers of this crate's manifest, `[package]` among them.
/// let emitter = FindRegex::new(r"^\[[a-z-]+\]$")?.file("Cargo.toml").find();
/// let _listening = emitter.on(|found: &Match| {
///     println!("{}:{}: {}", found.path.display(), found.line, found.text);
/// });
/// let (ended, end) = tokio::sync::oneshot::channel();
/// let _end = emitter.once(move |_: &End| {
///     let _ = ended.send(());
/// });
/// end.await.expect("the search always ends with End");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FindRegex {
    regex: Regex,
    files: Vec<PathBuf>,
}

impl FindRegex {
    /// A search for `pattern` over no files yet.
    ///
    /// The pattern is compiled here, so a bad one is an error now, before anything runs, rather
    /// than an event nobody may be listening for.
    pub fn new(pattern: &str) -> Result<Self, FindRegexError> {
        let regex = Regex::new(pattern).map_err(|error| FindRegexError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: error.to_string(),
        })?;
        Ok(Self {
            regex,
            files: Vec::new(),
        })
    }

    /// Adds a file to search, after those already added.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(path.into());
        self
    }

    /// Adds files to search, in order, after those already added.
    pub fn files<P: Into<PathBuf>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.files.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Starts the search in a new task and returns its emitter at once.
    ///
    /// Nothing is emitted before this returns, so listeners attached right after the call hear
    /// everything from [`Start`] on (on the current-thread runtime; on a multi-threaded one the
    /// task may start on another worker at once, so attach listeners before the search can
    /// get far, or use [`find_regex`]'s callback for the result). Events nobody listens to are
    /// simply dropped: the emitter keeps no backlog. The task holds its own clone of the
    /// emitter, so the search runs to the end even if the caller drops theirs.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn find(self) -> EventEmitter {
        let emitter = EventEmitter::new();
        let events = emitter.clone();
        tokio::spawn(async move { self.search(&events, |_| {}).await });
        emitter
    }

    /// Emits the whole search on `emitter`, handing each match to `on_match` too.
    async fn search(self, emitter: &EventEmitter, mut on_match: impl FnMut(&Match)) {
        emitter.emit(Start {
            files: self.files.clone(),
        });
        // One file after another, each awaited to its end before the next is opened: the events
        // of two files never mix, and one file is open at a time. A list, not a set: a path
        // given twice is searched twice.
        for path in &self.files {
            if let Err(error) = self.search_file(path, emitter, &mut on_match).await {
                emitter.emit(Error {
                    path: path.clone(),
                    error,
                });
            }
        }
        emitter.emit(End);
    }

    /// Searches one file; `Err` says why it could not be searched (to the end).
    async fn search_file(
        &self,
        path: &Path,
        emitter: &EventEmitter,
        on_match: &mut impl FnMut(&Match),
    ) -> Result<(), String> {
        // tokio's File: the open and every read wait on the blocking pool. std::fs here would
        // hold the runtime's thread (and every other task) for as long as the disk, or a pipe's
        // writer, takes. The path is opened and reported as given, relative or not.
        let file = File::open(path)
            .await
            .map_err(|error| format!("cannot open it: {error}"))?;
        emitter.emit(FileRead {
            path: path.to_owned(),
        });

        // One line at a time, into a buffer reused for every line: memory is the reader's buffer
        // plus the longest line, never the whole file. `read_until` hands over raw bytes, so a
        // line that is not UTF-8 can be reported with its number instead of as a bare
        // "invalid data" (which is what `lines()` gives).
        let mut reader = BufReader::new(file);
        let mut bytes = Vec::new();
        let mut number = 0;
        loop {
            bytes.clear();
            let read = reader
                .read_until(b'\n', &mut bytes)
                .await
                .map_err(|error| format!("cannot read it: {error}"))?;
            if read == 0 {
                return Ok(());
            }
            number += 1;
            let line = std::str::from_utf8(without_line_ending(&bytes))
                .map_err(|error| format!("line {number} is not valid UTF-8 ({error})"))?;
            for found in self.regex.find_iter(line) {
                let event = Match {
                    path: path.to_owned(),
                    line: number,
                    text: found.as_str().to_owned(),
                };
                on_match(&event);
                emitter.emit(event);
            }
        }
    }
}

/// The line without its ending, `\n` or `\r\n`, exactly as `lines()` gives it: `$` in a pattern
/// then means the end of the line's text. Nothing else goes: whitespace at either end is part of
/// the line, and so is a `\r` that no `\n` follows.
fn without_line_ending(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

/// Searches `files` for `pattern` (stage 2): returns the emitter for live progress, and calls
/// `on_done` with every match, in order, once the search is over.
///
/// `on_done` is called exactly once, **after** [`End`] has been emitted (and so after every End
/// listener has run), even when there are no matches, some files failed or the caller dropped
/// the emitter. An invalid pattern is an error here and `on_done` is never called.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), regex_finder::FindRegexError> {
/// // Only the result is wanted: the emitter can go at once, the search goes on.
/// let (done, matches) = tokio::sync::oneshot::channel();
/// let _ = regex_finder::find_regex(["Cargo.toml"], r"^\[package\]$", move |matches| {
///     let _ = done.send(matches);
/// })?;
/// let matches = matches.await.expect("on_done is always called");
/// assert_eq!((matches[0].line, matches[0].text.as_str()), (1, "[package]"));
/// # Ok(())
/// # }
/// ```
///
/// # Panics
/// Outside a tokio runtime, like `tokio::spawn`.
pub fn find_regex<P, F>(
    files: impl IntoIterator<Item = P>,
    pattern: &str,
    on_done: F,
) -> Result<EventEmitter, FindRegexError>
where
    P: Into<PathBuf>,
    F: FnOnce(Vec<Match>) + Send + 'static,
{
    let finder = FindRegex::new(pattern)?.files(files);
    let emitter = EventEmitter::new();
    let events = emitter.clone();
    tokio::spawn(async move {
        // The task owns the list: no listener of its own on the caller's emitter (which would
        // stay there, and run before the caller's End listeners), no lock, no state shared with
        // another search, and the callback gets the list by value. The task's own clone of the
        // emitter keeps the search going if the caller drops theirs.
        let mut matches = Vec::new();
        finder
            .search(&events, |found| matches.push(found.clone()))
            .await;
        on_done(matches);
    });
    Ok(emitter)
}
