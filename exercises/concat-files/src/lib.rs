//! # Concat files
//!
//! Copy a list of source files into one destination, in order: what `cat a b c > dst` does,
//! async, streaming, and without ever leaving `dst` half written. Read `README.md` beside this
//! file for the stages, and run `just test concat-files` to see how far you are.
//!
//! The error type is given; the bodies with `todo!()` are yours: [`concat_files`] (stage 1) and
//! [`concat_read_ahead`] (stage 2). Add private functions, types and constants as you like.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite};

/// Why a concatenation failed. Every variant names the path it is about, as it was given; after
/// any of them the destination must be exactly what it was (or still absent).
#[derive(Debug, thiserror::Error)]
pub enum ConcatError {
    /// No source files were given: there is nothing to concatenate.
    #[error("no source files to concatenate")]
    NoSources,
    /// A source is missing, is a directory, or cannot be read.
    #[error("cannot read source {}", path.display())]
    Source {
        /// The source, as it was given.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The destination is also one of the sources (possibly under another name).
    #[error("the destination {} is also one of the sources", path.display())]
    DestinationIsSource {
        /// The destination, as it was given.
        path: PathBuf,
    },
    /// The directory the destination would go in does not exist (or is not a directory).
    #[error("the destination's directory {} does not exist", dir.display())]
    DestinationDir {
        /// The destination's parent directory, as it was given.
        dir: PathBuf,
    },
    /// Writing the result failed: the temporary file could not be created or written, or it
    /// could not be renamed onto the destination (for one, when the destination is a directory).
    #[error("cannot write {}", path.display())]
    Write {
        /// The destination, as it was given.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Copies every source into `dst`, in argument order, and returns the number of bytes written
/// (stage 1).
///
/// Stream in chunks with `tokio::fs` (never a whole file in memory), into a temporary file in
/// `dst`'s directory that is renamed onto `dst` only when everything was copied (and flushed).
/// On any error, and when the future is dropped half way, `dst` is left exactly as it was (or
/// absent) and the temporary file is removed. Errors name their path as it was given; the checks
/// that need no writing come first, in the README's order.
pub async fn concat_files(
    sources: &[impl AsRef<Path>],
    dst: impl AsRef<Path>,
) -> Result<u64, ConcatError> {
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (sources, dst);
    todo!(
        "concat_files: check the paths, copy the sources into a temporary file, rename it onto dst"
    )
}

/// Copies every source into `dst`, in order, while up to `read_ahead` following sources are
/// already being read, and returns the number of bytes written (stage 2).
///
/// Each source is read by its own task into a small bounded channel of chunks; the writes stay in
/// source order. A source keeps its place among the `read_ahead + 1` until its last byte has been
/// written. Write each chunk (all of it) as soon as it is its turn, and flush `dst` at the end.
/// The first error in write order is the result, as it came; a source's panic comes out of this
/// function when that source's turn comes; either way, and on a drop, every reader stops.
pub async fn concat_read_ahead<R, W>(
    sources: Vec<R>,
    dst: &mut W,
    read_ahead: usize,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (sources, dst, read_ahead);
    todo!("concat_read_ahead: a reader task and a bounded channel per source, written in order")
}
