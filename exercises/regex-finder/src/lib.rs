//! # Regex finder
//!
//! Search a list of files for a regular expression, line by line, and report what you find as
//! events: [`Start`], then per file [`FileRead`] and its [`Match`]es (or an [`Error`]), then
//! [`End`]. Read `README.md` beside this file for the stages, and run `just test regex-finder`
//! to see how far you are.
//!
//! The events, the error type and the builder methods are given; the bodies with `todo!()` are
//! yours: [`FindRegex::new`], [`FindRegex::find`] and [`find_regex`]. Add fields and private
//! functions as you like.

use std::path::PathBuf;

use kata_emitter::EventEmitter;
use regex::Regex;

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
    /// What went wrong, for a person to read. For a file that is not UTF-8, say so and which
    /// line, e.g. `line 2 is not valid UTF-8`.
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
#[derive(Debug, Clone)]
pub struct FindRegex {
    regex: Regex,
    files: Vec<PathBuf>,
}

impl FindRegex {
    /// A search for `pattern` over no files yet. An invalid pattern is
    /// [`FindRegexError::InvalidPattern`], here, before anything runs (stage 1).
    pub fn new(pattern: &str) -> Result<Self, FindRegexError> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = pattern;
        todo!("FindRegex::new: compile the pattern, or say why it is not a valid regex")
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

    /// Starts the search and returns its emitter at once (stage 1).
    ///
    /// Emit `Start { files }`, then for each file, one after another in the order given,
    /// `FileRead` once it is open and a `Match` for every match on every line (or an `Error`,
    /// then go on with the next file), then `End`. Listeners attached right after this call
    /// must hear all of it, `Start` included. Read the files with `tokio::fs` (never `std::fs`
    /// in async code), line by line: never the whole file at once. Paths are reported exactly
    /// as given.
    pub fn find(self) -> EventEmitter {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = (self.regex, self.files);
        todo!("FindRegex::find: spawn a task that searches the files, and return the emitter")
    }
}

/// Searches `files` for `pattern` (stage 2): returns the emitter for live progress, and calls
/// `on_done` with every match, in order, once the search is over.
///
/// `on_done` is called exactly once, after `End` has been emitted, even when there are no
/// matches, some files failed or the caller dropped the emitter. An invalid pattern is an error
/// here, and then `on_done` is never called.
pub fn find_regex<P, F>(
    files: impl IntoIterator<Item = P>,
    pattern: &str,
    on_done: F,
) -> Result<EventEmitter, FindRegexError>
where
    P: Into<PathBuf>,
    F: FnOnce(Vec<Match>) + Send + 'static,
{
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (files.into_iter(), pattern, on_done);
    todo!("find_regex: the stage 1 search, plus on_done(all matches) after End")
}
