//! # gzip upload: reference solution
//!
//! A server that takes gzipped uploads over HTTP/1.1 and stores them decompressed, and the
//! client that streams them to it. The protocol:
//!
//! ```text
//! PUT /uploads/{name}          Content-Encoding: gzip          body: the gzip of the file
//!
//! 201 Created                  "{size}\n", the decompressed size, stored as dir/{name}
//! 400 Bad Request              a bad name, or a body that is not gzip, truncated or corrupt (says which)
//! 404 Not Found                any other path
//! 405 Method Not Allowed       any other method on /uploads/{name} (Allow: PUT)
//! 413 Content Too Large        over the cap on the compressed or on the decompressed size
//! 415 Unsupported Media Type   no Content-Encoding: gzip (Accept-Encoding: gzip)
//! 503 Service Unavailable      too many uploads in flight already (Retry-After: 1)
//! 500 Internal Server Error    the file could not be written (a full disk, say)
//! ```
//!
//! Three layers, one per stage of the kata:
//!
//! - [`receive`]: the core. It reads a gzip body from any [`AsyncRead`] and writes what it
//!   decompresses to a temporary file beside the destination, renamed onto it once the whole
//!   body has been decoded. It is the gzip-streams kata's bounded pipeline with one change: the
//!   decoder does not live on a blocking thread for the whole upload, it moves to the blocking
//!   pool for one chunk of work at a time and comes back. An upload arrives at the client's
//!   pace, and a pool thread parked while a slow client thinks is a thread wasted.
//! - [`Server`]: hyper's HTTP/1.1 server around it: the request checks (path, method, name,
//!   encoding, a `Content-Length` over the cap) answered before any body byte is read, load
//!   shedding with a semaphore that is tried, never awaited, and a graceful shutdown that
//!   stops accepting, lets uploads in flight finish for a while, then cuts the rest.
//! - [`upload`]: hyper's HTTP/1.1 client, streaming a source gzipped chunk by chunk as a chunked
//!   body, without ever holding the file.
//!
//! Production code would reach for axum (routing, extractors), tower-http's
//! `RequestDecompressionLayer` and `RequestBodyLimitLayer`, and reqwest on the client side.
//! Each of them would do one of this kata's steps for us; see the kata's README for where.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use gzip_upload::{Config, Server, upload};
//!
//! let dir = tempfile::tempdir()?;
//! let server = Server::new(Config::new(dir.path()));
//! // One connection, in memory: a TCP stream would do the same.
//! let (client_side, server_side) = tokio::io::duplex(64 * 1024);
//! tokio::spawn(async move { server.serve_connection(server_side).await });
//!
//! let size = upload(client_side, "localhost", "hello.txt", &b"Hello, upload!\n"[..]).await?;
//! assert_eq!(size, 15);
//! assert_eq!(std::fs::read(dir.path().join("hello.txt"))?, b"Hello, upload!\n");
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use futures::TryStreamExt;
use http::header::{ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tempfile::TempPath;
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinError, JoinSet};
use tokio_util::io::StreamReader;
use tokio_util::sync::CancellationToken;

/// The most bytes one step of the pipeline handles: a read of the body, one round of
/// decompression, one write. Memory per upload is a few of these, whatever the file's size.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// Chunks that may wait between two stages of an upload's pipeline (and between the client's
/// compressor and the connection). Bounded: a stage that gets ahead waits for room.
pub const CHANNEL_CAPACITY: usize = 4;

/// What a `503` asks the client to wait before it tries again, in seconds (`Retry-After: 1`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// The client's compression level: 1, gzip's fastest. An upload is usually bound by the
/// network, and the CPU time is the user's: level 1 keeps up with a fast link and still takes
/// most of what compression can take off text.
pub const CLIENT_LEVEL: u32 = 1;

/// The two bytes every gzip stream starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most bytes of an answer the client reads: the protocol's answers are one line.
const ANSWER_LIMIT: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Stage 1: the core
// ---------------------------------------------------------------------------------------------

/// The two caps on one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes the body may have as it arrives, gzipped: what the client may make us read.
    pub compressed: u64,
    /// The most bytes the body may decompress to: what the client may make us write. A zip bomb
    /// (gigabytes of zeros in a few megabytes) passes the first cap and is stopped here.
    pub decompressed: u64,
}

/// Which of the two [`Limits`] an upload went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// [`Limits::compressed`].
    Compressed,
    /// [`Limits::decompressed`].
    Decompressed,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Compressed => "compressed",
            Self::Decompressed => "decompressed",
        })
    }
}

/// Why an upload was not stored. The server answers each with its own status (see
/// [`UploadError::status`]).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body could not be read: the client went away half way, or sent a broken message.
    #[error("cannot read the request body: the client went away, or sent a broken message")]
    Body(#[source] io::Error),
    /// The body does not start with the gzip magic bytes `1f 8b` (an empty body included).
    #[error("the body is not gzip data: it does not start with the bytes 1f 8b")]
    NotGzip,
    /// The body is gzip but damaged: bad compressed data, a bad header, a checksum or length
    /// that does not match, or bytes after the last gzip member that are not gzip.
    #[error("the body is corrupt gzip: {reason}")]
    Corrupt {
        /// What is wrong with it, as the decoder said.
        reason: String,
    },
    /// The body is gzip but ends before its gzip stream does: it was cut short.
    #[error("the body is truncated gzip: it ends before its gzip stream does")]
    Truncated,
    /// The body went over one of the [`Limits`].
    #[error("the body's {cap} size is over the cap of {limit} bytes")]
    TooLarge {
        /// Which cap.
        cap: Cap,
        /// Its value, in bytes.
        limit: u64,
    },
    /// The destination could not be written: its directory is missing, the disk is full, ...
    #[error("cannot write {}", path.display())]
    Write {
        /// The destination, as given.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

impl UploadError {
    /// The status the server answers this error with: the client's fault is a 4xx (400 for what
    /// it sent, 413 for how much), ours is a 500.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Body(_) | Self::NotGzip | Self::Corrupt { .. } | Self::Truncated => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Write { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn write(path: &Path, source: io::Error) -> Self {
        Self::Write {
            path: path.to_owned(),
            source,
        }
    }

    /// What a failed decode means. flate2 reports input that ends too early (in a header, in
    /// the compressed data, in a trailer) as `UnexpectedEof`, and everything else it rejects as
    /// `InvalidInput`.
    fn decoding(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated
        } else {
            Self::Corrupt {
                reason: error.to_string(),
            }
        }
    }
}

/// Receives one gzip body from `body` and stores what it decompresses to at `dst`; returns the
/// decompressed size.
///
/// Three stages run at once, joined by bounded channels, as in the gzip-streams kata:
///
/// ```text
/// body --read--> chunks ==> decoder (one chunk at a time on the blocking pool) ==> writer --> temp file
/// ```
///
/// - **Memory** is a few chunks whatever the size of the upload: each stage hands on at most
///   [`CHUNK_SIZE`] bytes at a time, and the channels hold [`CHANNEL_CAPACITY`] chunks each. When
///   the disk or the decoder is slow, the reader stops reading, and the client's TCP window
///   closes: backpressure all the way to the sender.
/// - **The caps** are counted where the bytes are: the compressed size as the body is read, the
///   decompressed size as the decoder gives its output, before it is written. Going over either
///   stops the upload at once, without reading the rest of the body.
/// - **`dst` is never half written.** The output goes to a temporary file beside `dst`, renamed
///   onto it once the whole body has been decoded. On any error, or if this future is dropped
///   (the client went away and the server dropped the request), the temporary file is deleted
///   and `dst` is as it was.
/// - **The runtime's thread never decompresses.** Each round of decoding runs in
///   `spawn_blocking`, and the decoder travels there and back with it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::Write;
/// use gzip_upload::{Cap, Limits, UploadError, receive};
///
/// let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// encoder.write_all(&[0; 100_000])?;
/// let gz = encoder.finish()?;
///
/// let dir = tempfile::tempdir()?;
/// let dst = dir.path().join("zeros");
/// let limits = Limits { compressed: 1 << 20, decompressed: 1 << 20 };
/// assert_eq!(receive(&gz[..], &dst, limits).await?, 100_000);
///
/// // The same body against a decompressed cap of 64 KiB: a small zip bomb.
/// let tight = Limits { decompressed: 64 * 1024, ..limits };
/// let error = receive(&gz[..], &dst, tight).await.unwrap_err();
/// assert!(matches!(error, UploadError::TooLarge { cap: Cap::Decompressed, .. }));
/// assert_eq!(std::fs::metadata(&dst)?.len(), 100_000); // the first upload, untouched
/// # Ok(())
/// # }
/// ```
pub async fn receive<R>(body: R, dst: impl AsRef<Path>, limits: Limits) -> Result<u64, UploadError>
where
    R: AsyncRead + Unpin,
{
    let dst = dst.as_ref();
    let mut output = Output::create(dst).await?;

    let (to_decoder, compressed) = mpsc::channel(CHANNEL_CAPACITY);
    let (to_writer, mut decompressed) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    let sink = &mut output;
    let write = async move {
        while let Some(chunk) = decompressed.recv().await {
            sink.write(&chunk).await?;
        }
        Ok(())
    };
    // `try_join!`, not gzip-streams' `join!`: the reader of a network body may wait for a client
    // that sends nothing more. The first stage to fail ends the upload at once, and the others
    // are dropped with their channel ends. The stages that only see that failure's
    // consequences (a send that fails) stop quietly with `Ok`, so the error that comes out is
    // the cause.
    tokio::try_join!(
        read_body(body, limits.compressed, to_decoder),
        decode(compressed, limits.decompressed, to_writer),
        write,
    )?;
    // The temporary file is deleted when `output` is dropped on an early return above.
    output.commit().await
}

/// The reader: the body in chunks of up to [`CHUNK_SIZE`] bytes, counted against the cap on
/// the compressed size.
async fn read_body<R: AsyncRead + Unpin>(
    mut body: R,
    limit: u64,
    chunks: mpsc::Sender<Bytes>,
) -> Result<(), UploadError> {
    let mut total = 0;
    loop {
        let mut chunk = BytesMut::with_capacity(CHUNK_SIZE);
        // Only a read of 0 bytes is the end: a network gives what it has.
        let read = body.read_buf(&mut chunk).await.map_err(UploadError::Body)?;
        if read == 0 {
            return Ok(()); // Dropping `chunks` tells the decoder.
        }
        total += read as u64;
        if total > limit {
            return Err(UploadError::TooLarge {
                cap: Cap::Compressed,
                limit,
            });
        }
        if chunks.send(chunk.freeze()).await.is_err() {
            return Ok(()); // The decoder stopped; its own result says why.
        }
    }
}

/// The decoder's stage: async, so that it can wait for input without holding a thread, with
/// each round of decompression sent to the blocking pool.
async fn decode(
    mut chunks: mpsc::Receiver<Bytes>,
    limit: u64,
    output: mpsc::Sender<Bytes>,
) -> Result<(), UploadError> {
    let mut decoder = Decoder::new();
    let mut total = 0;
    let mut progress = Progress::NeedsInput;
    loop {
        match progress {
            Progress::Finished => return Ok(()),
            Progress::NeedsInput => match chunks.recv().await {
                Some(chunk) => decoder.push(chunk)?,
                None => decoder.end()?,
            },
            Progress::HasMore => {}
        }
        // The decoder moves to a blocking thread for one round and comes back with it.
        let (back, round) = blocking(move || {
            let round = decoder.decompress();
            (decoder, round)
        })
        .await;
        decoder = back;
        let (chunk, next) = round?;
        // Counted before it is written: nothing past the cap ever reaches the disk.
        total += chunk.len() as u64;
        if total > limit {
            return Err(UploadError::TooLarge {
                cap: Cap::Decompressed,
                limit,
            });
        }
        if !chunk.is_empty() && output.send(chunk).await.is_err() {
            return Ok(()); // The writer stopped; its own result says why.
        }
        progress = next;
    }
}

/// Where a round of decompression left the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// It filled a whole chunk and may have more without new input.
    HasMore,
    /// It used up its input: give it the next chunk, or tell it the body ended.
    NeedsInput,
    /// The body ended after complete gzip members: nothing more will come.
    Finished,
}

/// A gzip decoder that is fed one chunk at a time, and gives its output one chunk at a time.
///
/// flate2's `bufread::MultiGzDecoder` pulls its input from a [`BufRead`]. Ours, [`Fed`], gives
/// the chunk it holds and then says `WouldBlock` (not end of file) until the next one comes:
/// flate2 keeps its place in the stream, header and trailer included, and picks up from there.
/// So the decoder never waits for input, and can move to a blocking thread for exactly the CPU
/// work.
struct Decoder {
    gzip: MultiGzDecoder<Fed>,
    /// How many of the body's first bytes matched [`GZIP_MAGIC`] so far.
    magic: usize,
}

impl Decoder {
    fn new() -> Self {
        Self {
            gzip: MultiGzDecoder::new(Fed::default()),
            magic: 0,
        }
    }

    /// Hands the decoder the body's next chunk (it has used up the last one). flate2 calls a
    /// wrong magic number an "invalid gzip header", like any other bad header byte: checking the
    /// first two bytes ourselves tells "not gzip at all" from "damaged gzip".
    fn push(&mut self, chunk: Bytes) -> Result<(), UploadError> {
        for (&byte, &expected) in chunk.iter().zip(&GZIP_MAGIC[self.magic..]) {
            if byte != expected {
                return Err(UploadError::NotGzip);
            }
            self.magic += 1;
        }
        self.gzip.get_mut().chunk = chunk;
        Ok(())
    }

    /// Tells the decoder that the body has ended.
    fn end(&mut self) -> Result<(), UploadError> {
        if self.magic < GZIP_MAGIC.len() {
            return Err(UploadError::NotGzip); // Fewer than two bytes (none, too) are not gzip.
        }
        self.gzip.get_mut().ended = true;
        Ok(())
    }

    /// Decompresses until it has a chunk of output or needs input. CPU work: call it on a
    /// blocking thread.
    fn decompress(&mut self) -> Result<(Bytes, Progress), UploadError> {
        let mut out = vec![0; CHUNK_SIZE];
        let mut filled = 0;
        let progress = loop {
            if filled == out.len() {
                break Progress::HasMore;
            }
            match self.gzip.read(&mut out[filled..]) {
                // MultiGzDecoder says 0 only at the end of the input, after whole members.
                Ok(0) => break Progress::Finished,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    break Progress::NeedsInput;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(UploadError::decoding(error)),
            }
        };
        out.truncate(filled);
        Ok((Bytes::from(out), progress))
    }
}

/// The decoder's input: the chunk it is given, then `WouldBlock` until the next, then (once the
/// body has ended) the end of file.
#[derive(Default)]
struct Fed {
    chunk: Bytes,
    ended: bool,
}

impl BufRead for Fed {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.chunk.is_empty() && !self.ended {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, amount: usize) {
        self.chunk.advance(amount);
    }
}

impl Read for Fed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let amount = available.len().min(buf.len());
        buf[..amount].copy_from_slice(&available[..amount]);
        self.consume(amount);
        Ok(amount)
    }
}

/// A destination being written: a temporary file beside `dst`, renamed onto `dst` by
/// [`commit`](Output::commit). Dropped without a commit (an error, a dropped future), it
/// deletes the temporary file, and `dst` is untouched.
struct Output {
    file: File,
    temp: TempPath,
    dst: PathBuf,
    written: u64,
}

impl Output {
    /// Creates the temporary file in `dst`'s directory (a rename is atomic only within one file
    /// system). Its name starts with a dot, which no upload's name may: an upload can never
    /// overwrite another's temporary file.
    async fn create(dst: &Path) -> Result<Self, UploadError> {
        let dir = match dst.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let temp = blocking(move || tempfile::Builder::new().prefix(".upload-").tempfile_in(dir))
            .await
            .map_err(|error| UploadError::write(dst, error))?;
        let (file, temp) = temp.into_parts();
        Ok(Self {
            file: File::from_std(file),
            temp,
            dst: dst.to_owned(),
            written: 0,
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|error| UploadError::write(&self.dst, error))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Finishes the file and renames it onto `dst`; returns the bytes written. `flush` matters:
    /// tokio's `File` hands each write to the blocking pool and returns before it is done, so
    /// the last write's error (a full disk) only shows up here.
    async fn commit(mut self) -> Result<u64, UploadError> {
        self.file
            .flush()
            .await
            .map_err(|error| UploadError::write(&self.dst, error))?;
        drop(self.file);
        let (temp, dst) = (self.temp, self.dst);
        blocking({
            let dst = dst.clone();
            move || temp.persist(dst)
        })
        .await
        .map_err(|error| UploadError::write(&dst, error.error))?;
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

// ---------------------------------------------------------------------------------------------
// Stage 2: the server
// ---------------------------------------------------------------------------------------------

/// How a [`Server`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where uploads are stored: `PUT /uploads/{name}` writes `dir/{name}`.
    pub dir: PathBuf,
    /// The caps on each upload.
    pub limits: Limits,
    /// Uploads that may be in flight at once; one more is answered `503` at once.
    pub max_uploads: usize,
    /// How long a shutdown lets uploads in flight finish before it cuts them.
    pub drain: Duration,
}

impl Config {
    /// Uploads into `dir`, of at most 64 MiB gzipped and 1 GiB decompressed, 8 at once, with
    /// 10 s to drain at shutdown.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            limits: Limits {
                compressed: 64 << 20,
                decompressed: 1 << 30,
            },
            max_uploads: 8,
            drain: Duration::from_secs(10),
        }
    }
}

/// What a shutdown did with the connections that were open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shutdown {
    /// Connections that closed within the drain time: idle ones at once, busy ones once their
    /// request was answered.
    pub drained: usize,
    /// Connections still busy at the drain deadline, cut there: their uploads were dropped and
    /// their temporary files deleted.
    pub cut: usize,
}

/// The upload server: cheap to clone (the clones share the configuration and the upload slots).
#[derive(Debug, Clone)]
pub struct Server {
    config: Arc<Config>,
    /// One permit per upload in flight.
    uploads: Arc<Semaphore>,
}

impl Server {
    /// A server for `config`.
    pub fn new(config: Config) -> Self {
        Self {
            uploads: Arc::new(Semaphore::new(config.max_uploads)),
            config: Arc::new(config),
        }
    }

    /// Serves HTTP/1.1 on one connection (a TCP stream, or one end of `tokio::io::duplex` in
    /// tests) until the client closes it.
    pub async fn serve_connection<IO>(&self, io: IO) -> Result<(), hyper::Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.connection(io, CancellationToken::new()).await
    }

    /// Accepts connections on `listener` and serves each in a task of its own, until `shutdown`
    /// completes. Then it shuts down gracefully:
    ///
    /// 1. it closes the listener, so new connections are refused;
    /// 2. it asks every connection to close once its request in flight (if any) is answered:
    ///    idle keep-alive connections close at once;
    /// 3. it waits for them up to [`Config::drain`], then cuts those still busy (their uploads
    ///    are dropped, and so their temporary files deleted) and waits for their tasks to end.
    ///
    /// When it returns, no task of the server is left.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Shutdown {
        let stop = CancellationToken::new();
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let (server, stop) = (self.clone(), stop.clone());
                        connections.spawn(async move {
                            // A connection that fails (the client went away) ends here; its
                            // request, if any, was dropped with it.
                            let _ = server.connection(stream, stop).await;
                        });
                    }
                    // Out of file descriptors, say: the next accept may work, once a connection
                    // has closed. Waiting a moment keeps this loop from spinning meanwhile.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                // Reap connections as they end, so the set does not grow with the server's age.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }

        drop(listener); // From here on, connecting is refused.
        stop.cancel();
        let deadline = tokio::time::sleep(self.config.drain);
        tokio::pin!(deadline);
        let mut drained = 0;
        loop {
            tokio::select! {
                ended = connections.join_next() => match ended {
                    Some(_) => drained += 1,
                    None => return Shutdown { drained, cut: 0 },
                },
                () = &mut deadline => break,
            }
        }
        let cut = connections.len();
        // Aborts the rest and waits for them: dropping a connection's future drops its upload,
        // whose temporary file goes with it.
        connections.shutdown().await;
        Shutdown { drained, cut }
    }

    /// Serves one connection until the client closes it, or until `stop` is cancelled and its
    /// request in flight is answered.
    async fn connection<IO>(&self, io: IO, stop: CancellationToken) -> Result<(), hyper::Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let server = self.clone();
        let service = service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request).await) }
        });
        let connection = http1::Builder::new().serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => result,
            () = stop.cancelled() => {
                // hyper finishes the request in flight, answers it with `Connection: close`,
                // and ends; an idle connection ends at once.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        }
    }

    /// Answers one request. Everything that can be decided from the request's head is decided
    /// before the body is touched: a refused upload costs the server no body bytes, and a
    /// client that sent `Expect: 100-continue` does not even send them.
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(name) = request.uri().path().strip_prefix("/uploads/") else {
            return reply(
                StatusCode::NOT_FOUND,
                format!(
                    "not found: uploads go to PUT /uploads/{{name}}, not {}",
                    request.uri().path()
                ),
            );
        };
        if request.method() != Method::PUT {
            let mut response = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed here: uploads are PUT", request.method()),
            );
            response
                .headers_mut()
                .insert(ALLOW, "PUT".parse().expect("a valid header value"));
            return response;
        }
        if let Err(reason) = check_name(name) {
            return reply(
                StatusCode::BAD_REQUEST,
                format!("bad upload name {name:?}: {reason}"),
            );
        }
        if !is_gzip(request.headers()) {
            let mut response = reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "uploads must be gzipped and say so: Content-Encoding: gzip".to_owned(),
            );
            response.headers_mut().insert(
                ACCEPT_ENCODING,
                "gzip".parse().expect("a valid header value"),
            );
            return response;
        }
        let limits = self.config.limits;
        // The fast path: a Content-Length over the cap is refused before any body byte is read
        // (hyper's size hint of a body with a Content-Length is exactly that length). A chunked
        // body has no length to look at: `receive` counts its bytes as they come.
        if request.body().size_hint().lower() > limits.compressed {
            let error = UploadError::TooLarge {
                cap: Cap::Compressed,
                limit: limits.compressed,
            };
            return reply(error.status(), error.to_string());
        }
        // Load shedding: *try* to take a slot, and refuse at once when there is none. Waiting
        // for one (`acquire().await`) would queue every client behind the slow ones, each
        // holding a connection and its buffers while it waits: backpressure where shedding is
        // what keeps the server up. The permit is held until this function returns or is
        // dropped (the client went away), so the slot is always given back.
        let Ok(_slot) = self.uploads.clone().try_acquire_owned() else {
            let mut response = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "too many uploads in flight ({} at most): try again later",
                    self.config.max_uploads
                ),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, RETRY_AFTER_SECS.into());
            return response;
        };
        let dst = self.config.dir.join(name);
        // The body as an AsyncRead: a stream of its data frames, read through tokio-util's
        // StreamReader.
        let body = StreamReader::new(
            request
                .into_body()
                .into_data_stream()
                .map_err(io::Error::other),
        );
        match receive(body, &dst, limits).await {
            Ok(size) => reply(StatusCode::CREATED, size.to_string()),
            Err(error) => reply(error.status(), error.to_string()),
        }
    }
}

/// A text answer: the message and a newline.
fn reply(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "text/plain; charset=utf-8"
            .parse()
            .expect("a valid header value"),
    );
    response
}

/// Whether `name` may be stored as `dir/{name}`: say what is allowed rather than what is not.
/// Letters, digits, `.`, `_` and `-` only (so no `/` and no `\`, nothing to decode, no way out
/// of `dir`), not starting with a dot (so not `.`, `..`, a hidden file, or one of our temporary
/// files), and at most 255 bytes, what most file systems take.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.starts_with('.') {
        Err("it starts with a dot (no '.', '..' or hidden files)")
    } else if name.len() > 255 {
        Err("it is longer than 255 bytes")
    } else if !name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
    {
        Err("only letters, digits, '.', '_' and '-' are allowed (no '/')")
    } else {
        Ok(())
    }
}

/// Whether the body is declared gzip: one `Content-Encoding`, `gzip` (or its old alias
/// `x-gzip`), in any case. Nothing else is decoded, so nothing else is accepted.
fn is_gzip(headers: &HeaderMap) -> bool {
    let mut encodings = headers.get_all(CONTENT_ENCODING).iter();
    match (encodings.next(), encodings.next()) {
        (Some(encoding), None) => encoding.to_str().is_ok_and(|encoding| {
            let encoding = encoding.trim();
            encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip")
        }),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 3: the client
// ---------------------------------------------------------------------------------------------

/// Why an upload by [`upload`] did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The source could not be read. The request was aborted half way, so the server stored
    /// nothing.
    #[error("cannot read the source")]
    Source(#[source] io::Error),
    /// `host` or `name` cannot be put in a request (a space, a newline, ...).
    #[error("cannot make a request for {name:?} on {host:?}")]
    Target {
        /// The host, as given.
        host: String,
        /// The name, as given.
        name: String,
    },
    /// The HTTP exchange failed: the connection closed early, or the server does not speak
    /// HTTP/1.1.
    #[error("the HTTP exchange with the server failed")]
    Http(#[source] hyper::Error),
    /// The server answered, but not `201 Created`.
    #[error("the server refused the upload: {status}: {message}")]
    Refused {
        /// The status it answered.
        status: StatusCode,
        /// Its message, without the trailing newline.
        message: String,
        /// How long it asked us to wait before trying again (`Retry-After`, with a `503`).
        retry_after: Option<Duration>,
    },
    /// The server answered `201`, but not with the size of what we sent.
    #[error("the server's answer is not the size we sent: {answer}")]
    Answer {
        /// What it answered, or what was wrong with it.
        answer: String,
    },
}

/// Uploads what `source` gives, gzipped on the way, as `PUT /uploads/{name}` over `io`, an open
/// connection to the server at `host`. Returns the size the server stored, which is the number
/// of bytes read from `source`.
///
/// The body is chunked (no `Content-Length`: the compressed size is not known until the end),
/// and made as it is sent: a chunk of the source is read, compressed on the blocking pool and
/// flushed, so the server can decode and store it before the source has given the next one.
/// Memory is a few chunks whatever the size of the source: hyper pulls the next chunk only when
/// the connection has taken the last one (backpressure from the server's TCP window back to the
/// reads of the source).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use gzip_upload::{ClientError, Config, Server, upload};
///
/// let dir = tempfile::tempdir()?;
/// let server = Server::new(Config::new(dir.path()));
/// let (client_side, server_side) = tokio::io::duplex(64 * 1024);
/// tokio::spawn(async move { server.serve_connection(server_side).await });
///
/// match upload(client_side, "localhost", ".hidden", &b"secret"[..]).await {
///     Err(ClientError::Refused { status, message, .. }) => {
///         assert_eq!(status, 400);
///         assert!(message.contains("starts with a dot"), "{message}");
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
pub async fn upload<IO, R>(
    io: IO,
    host: &str,
    name: &str,
    mut source: R,
) -> Result<u64, ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let target = || ClientError::Target {
        host: host.to_owned(),
        name: name.to_owned(),
    };
    let (frames, mut body) = mpsc::channel::<io::Result<Frame<Bytes>>>(CHANNEL_CAPACITY);
    let request = Request::put(format!("/uploads/{name}"))
        .header(HOST, host)
        .header(CONTENT_ENCODING, "gzip")
        .body(StreamBody::new(futures::stream::poll_fn(move |cx| {
            body.poll_recv(cx)
        })))
        .map_err(|_| target())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(ClientError::Http)?;

    // The compressor: the same stages as the server's, the other way round.
    let compress = async move {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(CLIENT_LEVEL));
        let mut sent = 0;
        loop {
            let mut chunk = BytesMut::with_capacity(CHUNK_SIZE);
            let read = match source.read_buf(&mut chunk).await {
                Ok(read) => read,
                Err(error) => {
                    // An error in the body aborts the request: the server sees a message cut
                    // short, not a complete body with a truncated gzip stream in it.
                    let _ = frames
                        .send(Err(io::Error::new(error.kind(), "the source failed")))
                        .await;
                    return Err(ClientError::Source(error));
                }
            };
            sent += read as u64;
            let last = read == 0;
            // The encoder moves to a blocking thread for one chunk and comes back with it.
            let (back, compressed) = blocking(move || {
                let compressed = if last {
                    // The last deflate block and the gzip trailer.
                    encoder
                        .try_finish()
                        .map(|()| std::mem::take(encoder.get_mut()))
                } else {
                    compress_chunk(&mut encoder, &chunk)
                };
                (encoder, compressed)
            })
            .await;
            encoder = back;
            let compressed =
                compressed.expect("compressing into a Vec cannot fail: a Vec takes every write");
            if frames
                .send(Ok(Frame::data(Bytes::from(compressed))))
                .await
                .is_err()
            {
                return Ok(sent); // The server answered before the end; its answer says why.
            }
            if last {
                return Ok(sent);
            }
        }
    };
    let exchange = async move {
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        // An answer is a line; a server that sends more is not trusted with our memory.
        let answer = Limited::new(body, ANSWER_LIMIT).collect().await;
        Ok::<_, hyper::Error>((parts, answer))
        // `sender` is dropped here: with no request left to send, the connection closes.
    };
    let (sent, exchanged, _closed) = tokio::join!(compress, exchange, connection);
    // The source's error first: the HTTP failure that follows it is only its consequence.
    let sent = sent?;
    let (parts, answer) = exchanged.map_err(ClientError::Http)?;
    let answer = match answer {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim_end()
            .to_owned(),
        Err(error) => match error.downcast::<hyper::Error>() {
            Ok(error) => return Err(ClientError::Http(*error)),
            Err(_) => format!("an answer longer than {ANSWER_LIMIT} bytes"),
        },
    };
    if parts.status != StatusCode::CREATED {
        let retry_after = parts
            .headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse().ok())
            .map(Duration::from_secs);
        return Err(ClientError::Refused {
            status: parts.status,
            message: answer,
            retry_after,
        });
    }
    match answer.parse::<u64>() {
        Ok(size) if size == sent => Ok(size),
        _ => Err(ClientError::Answer {
            answer: format!("{answer:?} for the {sent} bytes sent"),
        }),
    }
}

/// Compresses one chunk and flushes it (a sync flush: it ends the deflate block, so the server
/// can decode everything sent so far), and takes what the encoder wrote.
fn compress_chunk(encoder: &mut GzEncoder<Vec<u8>>, chunk: &[u8]) -> io::Result<Vec<u8>> {
    encoder.write_all(chunk)?;
    encoder.flush()?;
    Ok(std::mem::take(encoder.get_mut()))
}
