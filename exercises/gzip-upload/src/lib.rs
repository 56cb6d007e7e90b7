//! # gzip upload
//!
//! A server that takes gzipped uploads over HTTP/1.1 and stores them decompressed, and the
//! client that streams them to it. Read `README.md` first: it gives the protocol, the three
//! stages and hints. Your code goes where the `todo!()`s are; the types, constants and the
//! `status` table are given.
//!
//! - Stage 1: [`receive`], the core: a gzip body from any `AsyncRead`, decoded as it arrives
//!   into a temporary file beside `dst`, renamed onto `dst` at the end.
//! - Stage 2: [`Server`]: hyper's HTTP/1.1 server around it, with load shedding and a graceful
//!   shutdown.
//! - Stage 3: [`upload`]: hyper's HTTP/1.1 client, streaming a source gzipped as it is read.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

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
}

/// Receives one gzip body from `body` and stores what it decompresses to at `dst`; returns the
/// decompressed size (stage 1).
///
/// - The body is read, decompressed and written a chunk at a time (at most [`CHUNK_SIZE`]
///   bytes), by stages joined with bounded channels: memory does not grow with the upload.
/// - Decompressing runs on the blocking pool, one chunk of work at a time: the decoder goes
///   there with its input and comes back with its output.
/// - Over `limits.compressed` (as read) or `limits.decompressed` (as decoded) is
///   [`UploadError::TooLarge`], at once; so is any other error, without waiting for the rest of
///   the body.
/// - The output goes to a temporary file beside `dst`, renamed onto `dst` at the end; on any
///   error, or if this future is dropped, `dst` is as it was and the temporary file is gone.
pub async fn receive<R>(body: R, dst: impl AsRef<Path>, limits: Limits) -> Result<u64, UploadError>
where
    R: AsyncRead + Unpin,
{
    // Only here so the stub compiles without "never used" warnings: delete it.
    let _ = (body, dst.as_ref(), limits);
    todo!("receive: read the body, decode it on the blocking pool, write it, rename it")
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
    // Add what the connections share: the upload slots.
}

impl Server {
    /// A server for `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// Serves HTTP/1.1 on one connection (a TCP stream, or one end of `tokio::io::duplex` in
    /// tests) until the client closes it (stage 2).
    pub async fn serve_connection<IO>(&self, io: IO) -> Result<(), hyper::Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _ = (&self.config, io);
        todo!("Server::serve_connection: hyper's http1 server, with a service that answers uploads")
    }

    /// Accepts connections on `listener` and serves each in a task of its own, until `shutdown`
    /// completes; then closes the listener, lets the connections finish their requests for up to
    /// [`Config::drain`], cuts the rest, and returns once no task of the server is left
    /// (stage 2).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Shutdown {
        let _ = (listener, shutdown);
        todo!("Server::serve: accept, serve each connection in a JoinSet, shut down gracefully")
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
/// of bytes read from `source` (stage 3).
///
/// The body is chunked, made as it is sent: each chunk of the source is compressed on the
/// blocking pool and flushed, so the server can decode it before the source gives the next one.
pub async fn upload<IO, R>(io: IO, host: &str, name: &str, source: R) -> Result<u64, ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let _ = (io, host, name, source);
    todo!("upload: a hyper http1 client, with a body made of compressed chunks")
}
