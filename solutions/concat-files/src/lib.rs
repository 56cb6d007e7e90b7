//! # Concat files: reference solution
//!
//! [`concat_files`] copies every source file into a destination, in argument order, and returns
//! the bytes written. [`concat_read_ahead`] is the engine under it: any readers into any writer,
//! with the next sources already being read while the current one is written.
//!
//! Four decisions shape the code:
//!
//! - **Chunks, never whole files.** Data moves in chunks of 128 KiB (`CHUNK_SIZE`), so memory is
//!   a few chunks whatever the files' sizes: concatenating 3 GiB costs the same heap as 3 MiB.
//! - **A temporary file beside `dst`, renamed onto it at the end.** Nothing is written to `dst`
//!   itself. On any error the temporary file is removed and `dst` is exactly what it was (or still
//!   absent); on success one `rename` swaps the new content in at once, so a reader of `dst` sees
//!   the old file or the new one, never half of it. It is beside `dst` because a rename only
//!   works within one file system.
//! - **One task per source being read, each with a bounded channel.** While one source is being
//!   written, the next ones are already being read, but each may run only a couple of chunks
//!   ahead: a full channel makes its reader wait (backpressure), so reading ahead costs a fixed
//!   amount of memory, not a copy of the sources.
//! - **Writes in argument order, always.** The writer takes the sources' channels one after the
//!   other and drains each to its end before starting the next: a source that finishes reading
//!   early waits its turn.
//!
//! Checks that need no writing (no sources, a missing source or a directory, `dst` among the
//! sources, `dst`'s directory missing) happen first, so a mistake costs no copying.

use std::collections::VecDeque;
use std::fs::Permissions;
use std::io;
use std::path::{Path, PathBuf};

use tempfile::TempPath;
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The most bytes read (and so written) at a time.
///
/// 128 KiB, the buffer GNU `cat` uses when it cannot leave the copy to the kernel. Every chunk
/// costs a round trip to tokio's blocking pool for its read and another for its write, so small
/// chunks are slow (measured here: 64 KiB is about a quarter slower, 32 KiB half as fast), while
/// a few chunks of this size in flight still make only a megabyte or so.
const CHUNK_SIZE: usize = 128 * 1024;

/// Chunks a source's reader may have read and not yet handed to the writer.
///
/// Two let a reader fill one chunk while the writer takes the previous one; more would only hold
/// memory, since the writer is never slower than "one chunk behind" for long.
const CHANNEL_CAPACITY: usize = 2;

/// How many sources [`concat_files`] reads ahead of the one it is writing.
///
/// One is enough for local files: the next file's first chunks are ready when the current one
/// ends, so the writer never waits for an `open`. Slow sources (a network file system) gain
/// from more; see [`concat_read_ahead`].
const READ_AHEAD: usize = 1;

/// Why a concatenation failed. Every variant names the path it is about, as it was given; after
/// any of them the destination is exactly what it was (or still absent).
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

/// Copies every source into `dst`, in argument order, and returns the number of bytes written.
///
/// Any number of sources from one, the same one several times if you like; any data, text or
/// not. The result is written to a temporary file in `dst`'s directory and renamed onto `dst`
/// when complete, so:
///
/// - on success `dst` is replaced at once (if it existed, it keeps its permissions; if it is a
///   symbolic link, the file it points to is replaced and the link stays);
/// - on error, or if this future is dropped before it finishes, `dst` is untouched and the
///   temporary file is removed.
///
/// Memory stays at a few chunks of 128 KiB per source being read, whatever the sizes, and at most
/// two sources are open at once (`READ_AHEAD` is 1). Paths are used as given: a bare file name
/// such as `out.txt` is in the current directory, and its temporary file goes there too.
///
/// ```
/// # use concat_files::concat_files;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let (intro, body) = (dir.path().join("intro.md"), dir.path().join("body.md"));
/// std::fs::write(&intro, "# A book\n")?;
/// std::fs::write(&body, "Once upon a time.\n")?;
/// let book = dir.path().join("book.md");
///
/// let written = concat_files(&[&intro, &body, &intro], &book).await?;
/// assert_eq!(written, 36);
/// assert_eq!(std::fs::read_to_string(&book)?, "# A book\nOnce upon a time.\n# A book\n");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`ConcatError`], naming the offending path as it was given. Checked in this order, all before
/// any writing, and the first problem found is the result: no sources, each source in argument
/// order (missing, or a directory), `dst`'s directory, `dst` among the sources, `dst` a directory
/// (a `Write` error). A source that cannot be read, or a failed write (a full disk, say), is found
/// while copying; the last write's error too, since the output is flushed before the rename.
pub async fn concat_files(
    sources: &[impl AsRef<Path>],
    dst: impl AsRef<Path>,
) -> Result<u64, ConcatError> {
    let sources: Vec<PathBuf> = sources.iter().map(|p| p.as_ref().to_owned()).collect();
    let dst = dst.as_ref();
    let target = check(&sources, dst).await?;
    let write_error = |source| ConcatError::Write {
        path: dst.to_owned(),
        source,
    };
    let source_error = |path: &Path, source| ConcatError::Source {
        path: path.to_owned(),
        source,
    };

    let (file, temp) = temp_file_beside(&target).await.map_err(write_error)?;
    let mut file = File::from_std(file);
    // Each source is opened by its own reader task when its turn to be read comes, so at most
    // READ_AHEAD + 1 files are open at once, however many sources there are.
    let opens = sources.iter().cloned().map(File::open).collect();
    let failed = |failure| match failure {
        Failure::Read { index, error } => source_error(&sources[index], error),
        Failure::Write(error) => write_error(error),
    };
    let written = copy_in_order(opens, &mut file, READ_AHEAD)
        .await
        .map_err(failed)?;
    // `copy_in_order` flushed: every write has landed (tokio's `File` hands each write to the
    // blocking pool and returns at once; `flush` waits for the last one, and reports its error).
    drop(file);

    // The one moment `dst` changes: a rename is atomic. If it fails, `persist` hands the
    // `TempPath` back inside the error and dropping it removes the temporary file.
    blocking(move || temp.persist(&target.path).map_err(|error| error.error))
        .await
        .map_err(write_error)?;
    Ok(written)
}

/// Where the result goes: the file `dst` names (through a symbolic link, if it is one), and the
/// permissions of the file it replaces.
struct Target {
    path: PathBuf,
    permissions: Option<Permissions>,
}

/// Every check that needs no writing, in the documented order.
async fn check(sources: &[PathBuf], dst: &Path) -> Result<Target, ConcatError> {
    if sources.is_empty() {
        return Err(ConcatError::NoSources);
    }
    let source_error = |path: &Path, source| ConcatError::Source {
        path: path.to_owned(),
        source,
    };
    for path in sources {
        let metadata = tokio::fs::metadata(path)
            .await
            .map_err(|error| source_error(path, error))?;
        if metadata.is_dir() {
            return Err(source_error(path, io::ErrorKind::IsADirectory.into()));
        }
    }

    // `Path::parent` of a bare file name is "": the current directory.
    let dir = dst.parent().unwrap_or(Path::new(""));
    let is_dir = if dir.as_os_str().is_empty() {
        true
    } else {
        tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir())
    };
    if !is_dir {
        return Err(ConcatError::DestinationDir {
            dir: dir.to_owned(),
        });
    }

    let write_error = |source| ConcatError::Write {
        path: dst.to_owned(),
        source,
    };
    // Paths are compared in canonical form, so `./out.txt`, `sub/../out.txt` and a symbolic link
    // to it are all recognised as `out.txt`.
    let existing = match tokio::fs::canonicalize(dst).await {
        Ok(path) => path,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(Target {
                path: dst.to_owned(),
                permissions: None,
            });
        }
        Err(error) => return Err(write_error(error)),
    };
    for path in sources {
        let source = tokio::fs::canonicalize(path)
            .await
            .map_err(|error| source_error(path, error))?;
        if source == existing {
            return Err(ConcatError::DestinationIsSource {
                path: dst.to_owned(),
            });
        }
    }
    let metadata = tokio::fs::metadata(&existing).await.map_err(write_error)?;
    if metadata.is_dir() {
        return Err(write_error(io::ErrorKind::IsADirectory.into()));
    }
    Ok(Target {
        path: existing,
        permissions: Some(metadata.permissions()),
    })
}

/// Creates a hidden temporary file in the target's directory, with the permissions the result
/// should have: the replaced file's, or for a new file those of `File::create` (0o666 less the
/// umask; `tempfile`'s own default, 0o600, would make the result private).
async fn temp_file_beside(target: &Target) -> io::Result<(std::fs::File, TempPath)> {
    let dir = match target.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let permissions = target.permissions.clone();
    blocking(move || {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".concat-").suffix(".tmp");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = builder.tempfile_in(dir)?;
        if let Some(permissions) = permissions {
            temp.as_file().set_permissions(permissions)?;
        }
        // The `TempPath` removes the file when dropped: on an error, and on cancellation too,
        // since dropping this future drops it.
        Ok(temp.into_parts())
    })
    .await
}

/// Runs blocking file-system calls (creating, renaming) on tokio's blocking pool, as
/// `tokio::fs` does, so they never hold up the tasks of this thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(io::Error::other(error)))
}

/// Copies every source into `dst`, in order, while up to `read_ahead` following sources are
/// already being read, and returns the number of bytes written. `dst` is flushed at the end.
///
/// `read_ahead` counts the sources *after* the one being written: at most `read_ahead + 1`
/// sources are being read (or have been read and wait their turn) at any moment. A source keeps
/// its place until its last byte has been written to `dst`; only then does the next source start
/// being read. So `0` reads each source only once the previous one is written out, and with `n`
/// sources that each take time `t` to read (and a writer that takes no time), the copy takes
/// `ceil(n / (read_ahead + 1)) * t`.
///
/// Each source is read by its own task into a channel of at most 2 chunks (`CHANNEL_CAPACITY`) of
/// 128 KiB (`CHUNK_SIZE`), so memory stays near `(read_ahead + 1) * (CHANNEL_CAPACITY + 1)`
/// chunks (those in the channels, and one being filled per reader) whatever the sources' sizes.
/// Chunks are written as soon as it is their turn: `dst` is not buffered here (wrap it in a
/// `BufWriter` if it needs that).
///
/// Every chunk is written with `write_all`, so a writer that takes fewer bytes than offered
/// (a short write) still gets them all, in order.
///
/// ```
/// # use concat_files::concat_read_ahead;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// // Any `AsyncRead`s: byte slices here, files or sockets elsewhere.
/// let sources: Vec<&'static [u8]> = vec![b"one, ", b"two, ", b"three"];
/// let mut out = Vec::new();
/// let written = concat_read_ahead(sources, &mut out, 1).await?;
/// assert_eq!(written, 15);
/// assert_eq!(out, b"one, two, three");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// The first error of a source or of `dst` in write order, as it came (not the first in time: a
/// later source that fails early waits its turn): everything before it has been written, nothing
/// after it. The readers still running are stopped.
///
/// # Cancellation
/// Dropping the future stops every reader task at its next `.await` and drops the sources.
///
/// # Panics
/// If a source panics while being read, that panic is resumed here, with its own payload, when
/// the source's turn comes (after the sources before it are written): a panic is a bug in the
/// source, not an I/O error, so it is not turned into one. The readers after it are stopped.
/// Outside a tokio runtime, like `tokio::spawn`.
pub async fn concat_read_ahead<R, W>(
    sources: Vec<R>,
    dst: &mut W,
    read_ahead: usize,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let opens = sources
        .into_iter()
        .map(|source| std::future::ready(Ok(source)))
        .collect();
    copy_in_order(opens, dst, read_ahead)
        .await
        .map_err(|failure| match failure {
            Failure::Read { error, .. } | Failure::Write(error) => error,
        })
}

/// Which side of a copy failed, so that [`concat_files`] can name the path.
enum Failure {
    /// Opening or reading the source at this index.
    Read { index: usize, error: io::Error },
    /// Writing to the destination.
    Write(io::Error),
}

/// [`concat_read_ahead`], with sources that are opened by their reader task (`opens` are the
/// futures that open them), and errors that say which side failed.
async fn copy_in_order<O, R, W>(
    opens: Vec<O>,
    dst: &mut W,
    read_ahead: usize,
) -> Result<u64, Failure>
where
    O: Future<Output = io::Result<R>> + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let mut waiting = opens.into_iter().enumerate();
    // The source being written, then those read ahead, in argument order.
    let mut reading: VecDeque<(usize, Reader)> = VecDeque::new();
    let mut written = 0;
    loop {
        // Top up to the source being written plus `read_ahead` more. The previous source has
        // been written out completely by now: that is what frees its place.
        let room = read_ahead.saturating_add(1) - reading.len();
        reading.extend(
            waiting
                .by_ref()
                .take(room)
                .map(|(index, open)| (index, Reader::spawn(open))),
        );
        let Some((index, mut reader)) = reading.pop_front() else {
            break;
        };
        // Drain this source to its end before looking at the next one: whatever the later
        // readers have ready waits in their channels, and writes stay in argument order.
        while let Some(chunk) = reader.chunks.recv().await {
            dst.write_all(&chunk).await.map_err(Failure::Write)?;
            written += chunk.len() as u64;
        }
        reader
            .finish()
            .await
            .map_err(|error| Failure::Read { index, error })?;
    }
    // A tokio `File` finishes each write in the background: without this the last write could
    // still be under way when the caller renames the file, and its error (a full disk) lost.
    dst.flush().await.map_err(Failure::Write)?;
    Ok(written)
}

/// One source being read by its own task, chunk by chunk, into a bounded channel.
struct Reader {
    chunks: mpsc::Receiver<Vec<u8>>,
    /// How the reading ended: `Ok` at the end of the source, or its error. A task that panicked
    /// or failed also closes the channel, which alone would look like a normal end.
    task: JoinHandle<io::Result<()>>,
}

impl Reader {
    fn spawn<O, R>(open: O) -> Self
    where
        O: Future<Output = io::Result<R>> + Send + 'static,
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (sender, chunks) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(async move {
            let mut source = open.await?;
            loop {
                let mut chunk = Vec::with_capacity(CHUNK_SIZE);
                // `read_buf` fills the spare capacity: no zeroing, and at most CHUNK_SIZE bytes.
                if source.read_buf(&mut chunk).await? == 0 {
                    return Ok(());
                }
                // With the channel full this waits for the writer: backpressure, so a fast
                // source never runs more than CHANNEL_CAPACITY chunks ahead. An error means the
                // writer is gone (it failed or was dropped): stop reading.
                if sender.send(chunk).await.is_err() {
                    return Ok(());
                }
            }
        });
        Self { chunks, task }
    }

    /// Once the channel is closed: how the reading ended.
    async fn finish(&mut self) -> io::Result<()> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled: only when the runtime is shutting down.
            Err(error) => Err(io::Error::other(error)),
        }
    }
}

impl Drop for Reader {
    /// A `JoinHandle` dropped does not stop its task; a reader nobody will write out must stop,
    /// or a slow source would keep it (and its chunks) alive after an error or a cancellation.
    fn drop(&mut self) {
        self.task.abort();
    }
}
