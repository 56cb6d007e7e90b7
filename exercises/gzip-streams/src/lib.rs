//! # gzip streams
//!
//! Gzip a file two ways: [`gzip_buffered`] reads it all, compresses it in memory and writes the
//! result; [`gzip_streaming`] and [`gunzip_streaming`] move it through in chunks, so their memory
//! does not depend on the file's size. Read `README.md` beside this file for the stages, and run
//! `just test gzip-streams` to see how far you are.
//!
//! The error type and the constants are given; the three functions with `todo!()` are yours.
//! Add private functions and types as you like.

use std::io;
use std::path::{Path, PathBuf};

/// A good size for the chunks a streaming pipeline reads and writes: use it or pick your own.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// A good capacity for the bounded channels between the stages of a pipeline.
pub const CHANNEL_CAPACITY: usize = 4;

/// The compression level: 6, gzip's own default (`flate2::Compression::new(LEVEL)`).
pub const LEVEL: u32 = 6;

/// Why a file could not be gzipped or gunzipped. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The source could not be opened or read (missing, a directory, not readable, ...).
    #[error("cannot read {}", path.display())]
    Read {
        /// The source, as given.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The destination could not be written (its directory is missing, the disk is full, ...).
    #[error("cannot write {}", path.display())]
    Write {
        /// The destination, as given.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The source does not start with the gzip magic bytes `1f 8b`: it is not gzip data at all
    /// (an empty file included).
    #[error("{} is not gzip data: it does not start with the bytes 1f 8b", path.display())]
    NotGzip {
        /// The source, as given.
        path: PathBuf,
    },
    /// The source is gzip but its data is damaged: invalid compressed data, a bad header, or a
    /// checksum or length that does not match what was decompressed.
    #[error("{} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The source, as given.
        path: PathBuf,
        /// What is wrong with it, as the decoder said.
        reason: String,
    },
    /// The source is gzip but ends before its stream does: it was cut short.
    #[error("{} is truncated: the gzip stream ends early", path.display())]
    Truncated {
        /// The source, as given.
        path: PathBuf,
    },
}

/// Gzips `src` into `dst` the simple way (stage 1): read all of `src`, compress it in memory at
/// level [`LEVEL`], write the result. Returns the number of bytes written to `dst`.
///
/// Compress inside `tokio::task::spawn_blocking`. Write a temporary file beside `dst` and rename
/// it onto `dst` at the end, so that a failure leaves `dst` as it was.
pub async fn gzip_buffered(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> Result<u64, GzipError> {
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (src.as_ref(), dst.as_ref());
    todo!("gzip_buffered: read src whole, gzip it in spawn_blocking, write a temp file, rename")
}

/// Gzips `src` into `dst` as a stream (stage 2): chunks flow from a reader through a compressor
/// to a writer, all three working at once, and memory stays the same whatever the file's size.
/// Returns the number of bytes written to `dst`.
pub async fn gzip_streaming(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
) -> Result<u64, GzipError> {
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (src.as_ref(), dst.as_ref());
    todo!("gzip_streaming: reader -> bounded channel -> GzEncoder in spawn_blocking -> writer")
}

/// Gunzips `src` into `dst` as a stream (stage 2), the mirror of [`gzip_streaming`]. Returns the
/// number of bytes written to `dst` (the uncompressed size).
///
/// Input that does not start with `1f 8b` is [`GzipError::NotGzip`], input cut short is
/// [`GzipError::Truncated`], any other damage is [`GzipError::Corrupt`].
pub async fn gunzip_streaming(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
) -> Result<u64, GzipError> {
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (src.as_ref(), dst.as_ref());
    todo!("gunzip_streaming: check the magic bytes, then a pipeline with a MultiGzDecoder")
}
