//! # gzip streams: reference solution
//!
//! Two ways to move a file through gzip, and what each costs in memory:
//!
//! - [`gzip_buffered`] reads the whole file, compresses it in memory and writes the result. Its
//!   peak memory is the input plus the output: a 4 GiB log needs more than 4 GiB of RAM.
//! - [`gzip_streaming`] and [`gunzip_streaming`] are pipelines of three stages that run at the
//!   same time: a reader that reads chunks of [`CHUNK_SIZE`] bytes, a worker that (de)compresses
//!   them, and a writer that writes what comes out. Bounded channels join the stages, so at most
//!   a few chunks are in flight and memory stays the same whether the file is 1 KiB or 100 GiB.
//!
//! Four decisions shape the code:
//!
//! - **Compression runs in `spawn_blocking`.** Deflate is pure CPU work, milliseconds per chunk
//!   and seconds per file. Done on the async runtime's thread, it would stop every other task for
//!   that long; tokio's blocking pool is where long synchronous work belongs.
//! - **Bounded channels give backpressure.** When the worker falls behind, the reader's `send`
//!   waits for room instead of piling chunks up in memory; when the writer falls behind, the
//!   worker waits in turn. The slowest stage sets the pace and memory stays at a few chunks.
//! - **The output goes to a temporary file beside `dst`, renamed onto it only on success.** A
//!   rename within one directory is atomic, so `dst` is either what it was or the complete new
//!   file, never half of one. On any error, or if the caller drops the future half way, the
//!   temporary file is deleted.
//! - **Errors say what went wrong and where:** [`GzipError`] tells a read failure from a write
//!   failure from input that is not gzip, corrupt or truncated, each naming the path.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use gzip_streams::{GzipError, gunzip_streaming, gzip_streaming};
//!
//! let dir = tempfile::tempdir()?;
//! let log = dir.path().join("access.log");
//! let (gz, back) = (dir.path().join("access.log.gz"), dir.path().join("back.log"));
//! tokio::fs::write(&log, "GET /index.html 200\n".repeat(1000)).await?;
//!
//! // The number of bytes written: a few hundred, for 20,000 bytes of one line over and over.
//! let written = gzip_streaming(&log, &gz).await?;
//! assert_eq!(written, tokio::fs::metadata(&gz).await?.len());
//! assert_eq!(gunzip_streaming(&gz, &back).await?, 20_000);
//!
//! // Text is not gzip: the error says so, names the file, and leaves back.log alone.
//! match gunzip_streaming(&log, &back).await {
//!     Err(GzipError::NotGzip { path }) => assert_eq!(path, log),
//!     other => panic!("expected NotGzip, got {other:?}"),
//! }
//! assert_eq!(tokio::fs::read(&back).await?.len(), 20_000);
//! # Ok(())
//! # }
//! ```

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::bufread::{GzEncoder, MultiGzDecoder};
use tempfile::TempPath;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinError;

/// The size of the chunks the streaming pipelines read, and of the chunks they write.
///
/// 64 KiB is a common sweet spot: large enough that the per-chunk costs (a trip to the blocking
/// pool for each read and write, a channel message) are small beside the work on the bytes,
/// small enough that a few chunks in flight are nothing.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// How many chunks each channel holds. With the chunk in each stage's hands, at most about
/// `2 * (CHANNEL_CAPACITY + 2)` chunks exist at once, whatever the file's size.
pub const CHANNEL_CAPACITY: usize = 4;

/// The compression level: 6, gzip's own default and the usual balance of size and speed.
pub const LEVEL: u32 = 6;

/// The two bytes every gzip stream starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

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

impl GzipError {
    fn read(path: &Path, source: io::Error) -> Self {
        Self::Read {
            path: path.to_owned(),
            source,
        }
    }

    fn write(path: &Path, source: io::Error) -> Self {
        Self::Write {
            path: path.to_owned(),
            source,
        }
    }

    /// What a failed decode means. flate2 reports input that ends too early (in the header, in
    /// the compressed data or in the trailer) as `UnexpectedEof`, and everything else it rejects
    /// (bad deflate data, a bad header, a CRC or length mismatch) as `InvalidInput`.
    fn decoding(path: &Path, error: io::Error) -> Self {
        let path = path.to_owned();
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated { path }
        } else {
            Self::Corrupt {
                path,
                reason: error.to_string(),
            }
        }
    }
}

/// Gzips `src` into `dst` the simple way (stage 1): reads all of `src`, compresses it in memory
/// at level [`LEVEL`], and writes the result. Returns the number of bytes written to `dst`.
///
/// Peak memory is the whole input plus the whole output. `dst` is replaced only once the
/// compressed data is completely written; on error it is left as it was.
pub async fn gzip_buffered(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> Result<u64, GzipError> {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    let data = tokio::fs::read(src)
        .await
        .map_err(|error| GzipError::read(src, error))?;
    // Seconds of CPU work for a large file: off the runtime's thread, onto the blocking pool.
    let compressed = blocking(move || {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::new(LEVEL));
        encoder.write_all(&data)?;
        encoder.finish()
    })
    .await
    .expect("compressing into a Vec cannot fail: a Vec takes every write");

    let mut output = Output::create(dst).await?;
    output.write(&compressed).await?;
    output.commit().await
}

/// Gzips `src` into `dst` as a stream (stage 2): memory stays at a few chunks whatever the size
/// of `src`, and reading, compressing and writing overlap. Returns the number of bytes written.
///
/// `dst` is replaced only once the compressed data is completely written; on error, or if this
/// future is dropped before it finishes, `dst` is left as it was and no temporary file remains.
pub async fn gzip_streaming(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
) -> Result<u64, GzipError> {
    let src = src.as_ref();
    let source = src.to_owned();
    pipeline(src, dst.as_ref(), move |input, output| {
        let encoder = GzEncoder::new(input, Compression::new(LEVEL));
        // The input side never fails (it is a channel) and compressing any bytes succeeds, so
        // an error here would be the source's.
        pump(encoder, &output).map_err(|error| GzipError::read(&source, error))
    })
    .await
}

/// Gunzips `src` into `dst` as a stream (stage 2), the mirror of [`gzip_streaming`]. Returns the
/// number of bytes written (the uncompressed size).
///
/// A file of several gzip members (`cat a.gz b.gz`) decodes to their contents one after the
/// other, as `gzip -d` does. Input that does not start with `1f 8b` is
/// [`NotGzip`](GzipError::NotGzip), input cut short is [`Truncated`](GzipError::Truncated), and
/// damaged input (anything after the last member included) is [`Corrupt`](GzipError::Corrupt).
pub async fn gunzip_streaming(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
) -> Result<u64, GzipError> {
    let src = src.as_ref();
    let source = src.to_owned();
    pipeline(src, dst.as_ref(), move |mut input, output| {
        // flate2 calls a wrong magic number an "invalid gzip header", like any other bad header
        // byte; checking the first two bytes ourselves tells "not gzip at all" from "damaged".
        let mut magic = [0; 2];
        match input.read_exact(&mut magic) {
            Ok(()) if magic == GZIP_MAGIC => {}
            // Fewer than two bytes (an empty file too) cannot be gzip either.
            Ok(()) | Err(_) => return Err(GzipError::NotGzip { path: source }),
        }
        // Hand the two bytes back in front of the rest: the decoder parses the whole header.
        let decoder = MultiGzDecoder::new(Read::chain(&magic[..], input));
        pump(decoder, &output).map_err(|error| GzipError::decoding(&source, error))
    })
    .await
}

/// Runs `src` through `transform` into `dst` as three overlapping stages:
///
/// ```text
/// reader (async) --chunks--> transform (blocking pool) --chunks--> writer (async) --> temp file
/// ```
///
/// The reader and the writer are futures joined in the caller's task, so dropping our future
/// drops them; `transform` runs on the blocking pool, reading its input channel as a
/// [`BufRead`] and sending its output in chunks.
async fn pipeline<T>(src: &Path, dst: &Path, transform: T) -> Result<u64, GzipError>
where
    T: FnOnce(ChunkReader, mpsc::Sender<Vec<u8>>) -> Result<(), GzipError> + Send + 'static,
{
    let mut input = File::open(src)
        .await
        .map_err(|error| GzipError::read(src, error))?;
    let mut output = Output::create(dst).await?;

    // Bounded: a stage that gets ahead waits for room (backpressure) instead of buffering.
    let (to_work, work_input) = mpsc::channel::<Vec<u8>>(CHANNEL_CAPACITY);
    let (work_output, mut to_write) = mpsc::channel::<Vec<u8>>(CHANNEL_CAPACITY);

    // Each stage owns its end of the channels and drops it when it stops, for whatever reason:
    // the next stage then sees the end of its input, the previous one a failed send. So an error
    // anywhere stops the whole pipeline instead of leaving a stage waiting forever.
    let read = async move {
        loop {
            let mut chunk = Vec::with_capacity(CHUNK_SIZE);
            if input.read_buf(&mut chunk).await? == 0 {
                return Ok(()); // End of file: dropping `to_work` tells the worker.
            }
            if to_work.send(chunk).await.is_err() {
                return Ok(()); // The worker stopped early; its own result says why.
            }
        }
    };
    let work = blocking(move || transform(ChunkReader::new(work_input), work_output));
    let sink = &mut output;
    let write = async move {
        while let Some(chunk) = to_write.recv().await {
            sink.write(&chunk).await?;
        }
        Ok::<_, GzipError>(()) // On an error, dropping `to_write` stops the worker.
    };
    let (read, work, write) = tokio::join!(read, work, write);

    // The first stage to fail is the cause; the later ones only saw its consequences (a read
    // error looks like an early end of input to the worker, which may then call the data
    // truncated). The temporary file is deleted when `output` is dropped on the way out.
    read.map_err(|error| GzipError::read(src, error))?;
    work?;
    write?;
    output.commit().await
}

/// Moves everything `from` gives into `to`, in chunks of up to [`CHUNK_SIZE`] bytes. Stops
/// quietly if the receiver is gone: the writer has failed and will report why.
fn pump(mut from: impl Read, to: &mpsc::Sender<Vec<u8>>) -> io::Result<()> {
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_SIZE);
        // `take` + `read_to_end` fills the chunk up to its capacity, so it never reallocates.
        let read = (&mut from)
            .take(CHUNK_SIZE as u64)
            .read_to_end(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        // `blocking_send`, not `send().await`: this runs on a blocking thread, outside async code.
        if to.blocking_send(chunk).is_err() {
            return Ok(());
        }
    }
}

/// The receiving end of a channel of chunks, as a [`BufRead`] for flate2's decoders and
/// encoders. It blocks while it waits for a chunk, so it only belongs on a blocking thread.
struct ChunkReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    position: usize,
}

impl ChunkReader {
    fn new(chunks: mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            chunks,
            chunk: Vec::new(),
            position: 0,
        }
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.position == self.chunk.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => (self.chunk, self.position) = (chunk, 0),
                // The reader is done: an empty slice means the end of the input.
                None => break,
            }
        }
        Ok(&self.chunk[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position += amount;
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let amount = available.len().min(buf.len());
        buf[..amount].copy_from_slice(&available[..amount]);
        self.consume(amount);
        Ok(amount)
    }
}

/// A destination being written: a temporary file beside `dst`, renamed onto `dst` by
/// [`commit`](Output::commit). Dropped without a commit, after an error or because the caller
/// dropped our future, it deletes the temporary file and `dst` is untouched.
struct Output {
    file: File,
    temp: TempPath,
    dst: PathBuf,
    written: u64,
}

impl Output {
    /// Creates the temporary file in `dst`'s directory: a rename is only atomic within one file
    /// system, and the same directory is sure to be on the same one.
    async fn create(dst: &Path) -> Result<Self, GzipError> {
        let dir = match dst.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        // Creating a file is a blocking system call; tokio::fs would do the same as this.
        let temp = blocking(move || tempfile::Builder::new().prefix(".gzip-").tempfile_in(dir))
            .await
            .map_err(|error| GzipError::write(dst, error))?;
        let (file, temp) = temp.into_parts();
        Ok(Self {
            file: File::from_std(file),
            temp,
            dst: dst.to_owned(),
            written: 0,
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), GzipError> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|error| GzipError::write(&self.dst, error))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Finishes the file and renames it onto `dst`; returns the bytes written.
    ///
    /// `flush` matters: tokio's `File` hands each write to the blocking pool and returns before
    /// it is done, so the last write's error (a full disk, say) only shows up here. (A program
    /// that must survive a power cut would also `sync_all` before the rename; this one only
    /// promises that `dst` is never half written by *this* program's errors.) Once the rename
    /// has started it runs to its end even if our future is dropped: `dst` then holds the
    /// complete new file, which is as good an outcome as any.
    async fn commit(mut self) -> Result<u64, GzipError> {
        self.file
            .flush()
            .await
            .map_err(|error| GzipError::write(&self.dst, error))?;
        drop(self.file);
        let (temp, dst) = (self.temp, self.dst);
        // On failure `persist` hands back the path, which deletes the file when dropped.
        blocking({
            let dst = dst.clone();
            move || temp.persist(dst)
        })
        .await
        .map_err(|error| GzipError::write(&dst, error.error))?;
        Ok(self.written)
    }
}

/// Runs `f` on tokio's blocking pool and waits for it; a panic in `f` carries on here.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(panicked)
}

fn panicked<T>(error: JoinError) -> T {
    match error.try_into_panic() {
        Ok(payload) => std::panic::resume_unwind(payload),
        // Only when the runtime shuts down under us, and then nothing is waiting for the result.
        Err(error) => panic!("a blocking task was cancelled: {error}"),
    }
}
