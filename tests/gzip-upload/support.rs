//! How the gzip-upload suite makes uploads and looks at what they leave behind: bodies (gzip made
//! by flate2, large ones made as they are read, a zip bomb, damaged gzip), a client on the far
//! end of a `tokio::io::duplex` for the core, a minimal HTTP/1.1 client for the server (over
//! duplex or loopback TCP), the server on 127.0.0.1, sources for the client, and the checks of
//! errors, files and directories.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use gzip_upload::{Cap, Config, Limits, Server, Shutdown, UploadError, receive};
use kata_harness::data::NumberedLog;
use kata_harness::files::TestDir;
use kata_harness::report::{check, check_eq, check_stream, fail};
use kata_harness::timing::At;
use kata_harness::{Hint, data};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * KIB;

/// Caps no test reaches unless it means to.
pub const ROOMY: Limits = Limits {
    compressed: 1 << 30,
    decompressed: 1 << 30,
};

/// A size as people say it: `300 KiB`, `64 KiB + 1 B`, `3 MiB`.
pub fn size(len: usize) -> String {
    let (unit, name) = if len >= MIB {
        (MIB, "MiB")
    } else {
        (KIB, "KiB")
    };
    match (len / unit, len % unit) {
        (0, rest) => format!("{rest} B"),
        (whole, 0) => format!("{whole} {name}"),
        (whole, rest) => format!("{whole} {name} + {rest} B"),
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// Gzips `data` with flate2 at `level`, independently of the code under test.
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder
        .write_all(data)
        .expect("flate2 cannot fail to compress bytes in memory");
    encoder
        .finish()
        .expect("flate2 cannot fail to compress bytes in memory")
}

/// An input for the round trips: sizes around the edges, and both kinds of data.
#[derive(Debug, Clone, Copy)]
pub enum Input {
    Empty,
    OneByte,
    TextLine,
    EveryByteValue,
    /// Log-like text of this many bytes: it compresses.
    Text(usize),
    /// Pseudo-random bytes: they do not compress.
    Random(usize),
}

impl Input {
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Self::Empty => Vec::new(),
            Self::OneByte => b"x".to_vec(),
            Self::TextLine => b"Hello, upload!\n".to_vec(),
            Self::EveryByteValue => (0..=255).collect(),
            Self::Text(len) => data::text(len),
            Self::Random(len) => data::random_bytes(1, len),
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("an empty file"),
            Self::OneByte => f.write_str("one byte"),
            Self::TextLine => f.write_str("a line of text"),
            Self::EveryByteValue => f.write_str("every byte value"),
            Self::Text(len) => write!(f, "{} of text", size(len)),
            Self::Random(len) => write!(f, "{} of random bytes", size(len)),
        }
    }
}

/// `len` random letters from `a` to `p`: text with nothing to repeat, which gzip codes as one
/// literal per byte, half a byte each. The costliest kind of input to decompress, per byte of
/// output: what makes decompression show on the thread that does it.
pub fn letters(len: usize) -> Vec<u8> {
    let mut bytes = data::random_bytes(5, len);
    for byte in &mut bytes {
        *byte = b'a' + (*byte & 15);
    }
    bytes
}

/// The gzip (level 1, quick to make) of `len` bytes of [`NumberedLog`], made block by block.
pub fn gzip_log(len: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::copy(&mut NumberedLog::new(len), &mut encoder).expect("cannot compress in memory");
    encoder.finish().expect("cannot compress in memory")
}

/// One gzip member whose data is `mib` MiB of zeros, in about 1 KiB per MiB: a zip bomb.
///
/// Compressing gigabytes of zeros takes time; repeating a block does not. A deflate stream
/// flushed with a *full* flush refers to nothing before the flush, so the blocks that 1 MiB of
/// zeros compresses to can be repeated as often as wanted, then closed with an empty final
/// block and the gzip trailer (the CRC-32 and size of all the zeros).
pub fn zip_bomb(mib: usize) -> Vec<u8> {
    let zeros = vec![0; MIB];
    let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
    let mut blocks = Vec::with_capacity(64 * KIB);
    deflate
        .compress_vec(&zeros, &mut blocks, flate2::FlushCompress::Full)
        .expect("cannot compress zeros");
    assert!(deflate.total_in() == MIB as u64 && blocks.len() < blocks.capacity());
    let mut crc = flate2::Crc::new();
    // ID1 ID2, deflate, no flags, no time, no extra flags, unknown OS.
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    for _ in 0..mib {
        gz.extend_from_slice(&blocks);
        crc.update(&zeros);
    }
    gz.extend_from_slice(&[0x03, 0x00]); // An empty final block (fixed codes: just its end).
    gz.extend_from_slice(&crc.sum().to_le_bytes());
    gz.extend_from_slice(&((mib * MIB) as u32).to_le_bytes());
    gz
}

/// What the `gzip` tool made of [`TOOL_TEXT`] (`gzip -9 tool.txt`): a header with the file's
/// name and time in it, which flate2's encoder never writes.
pub const TOOL_GZ: &[u8] = b"\
    \x1f\x8b\x08\x08\x25\x7d\x93\x65\x02\x03\x74\x6f\x6f\x6c\x2e\x74\x78\x74\x00\x95\
    \x8c\xb1\x15\x83\x30\x0c\x05\x7b\xa6\xf8\x03\xf0\x28\x52\x66\x07\xba\x2c\x20\xb0\
    \x0c\x0a\xb6\x45\x6c\x91\x00\xd3\xc7\x64\x83\xb4\xf7\xef\x7e\x4f\x8e\x31\x1c\xb0\
    \x99\x31\x9d\xb2\xc2\x54\x43\x8b\xa4\x76\x51\x1f\xc8\xf8\x76\x6f\xc4\x0a\x66\xae\
    \x6a\x46\xa2\xc8\xe5\xa7\x7b\x09\x0c\x4a\x0e\x23\xe5\x2c\x15\x12\x4c\x22\x77\xcd\
    \xa3\x8e\xaf\x4d\xc6\x05\x43\xd6\x4f\x82\xd7\x1d\xcf\x2d\xae\x05\xfa\xae\x0f\x57\
    \x1b\xe8\x3c\xe0\x74\xfa\x53\xfe\x02\xcd\x96\x63\x3b\xae\x00\x00\x00";
pub const TOOL_TEXT: &str = "Made by the gzip tool, not by flate2:\n\
                             its header names the file and carries a time.\n\
                             The quick brown fox jumps over the lazy dog.\n\
                             The quick brown fox jumps over the lazy dog.\n";

/// 512 KiB of text, gzipped: enough that a decoder has written output before it reaches a
/// problem in the second half.
pub fn sample_gz() -> Vec<u8> {
    gzip(&data::text(512 * KIB), 6)
}

/// Ways to damage [`sample_gz`].
#[derive(Debug, Clone, Copy)]
pub enum Damage {
    CutInTheHeader,
    CutInTheData,
    CutInTheTrailer,
    MiddleOverwritten,
    CrcChanged,
    LengthChanged,
    UnknownMethod,
    GarbageAfterTheEnd,
}

impl Damage {
    pub fn apply(self, mut gz: Vec<u8>) -> Vec<u8> {
        let len = gz.len();
        match self {
            Self::CutInTheHeader => gz.truncate(5),
            Self::CutInTheData => gz.truncate(len / 2),
            Self::CutInTheTrailer => gz.truncate(len - 4),
            Self::MiddleOverwritten => gz[len / 2..len / 2 + 64].fill(0xff),
            Self::CrcChanged => gz[len - 8] ^= 0xff,
            Self::LengthChanged => gz[len - 4] ^= 1,
            Self::UnknownMethod => gz[2] = 7, // 8 is deflate, the only method gzip has
            Self::GarbageAfterTheEnd => gz.extend_from_slice(b"this is not gzip"),
        }
        gz
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CutInTheHeader => "gzip cut short in its header",
            Self::CutInTheData => "gzip cut short half way through its data",
            Self::CutInTheTrailer => "gzip cut short in its 8-byte trailer",
            Self::MiddleOverwritten => "gzip with 64 bytes in the middle overwritten",
            Self::CrcChanged => "gzip whose CRC-32 does not match",
            Self::LengthChanged => "gzip whose length field does not match",
            Self::UnknownMethod => "gzip with an unknown compression method",
            Self::GarbageAfterTheEnd => "gzip followed by bytes that are not gzip",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The core, over tokio::io::duplex
// ---------------------------------------------------------------------------------------------

/// The two ends of a connection in memory: the client's, and the one the code under test reads.
pub fn pipe() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(64 * KIB)
}

/// Writes `bytes` as a client would (16 KiB at a time), then closes its end: the end of the
/// body. Stops quietly when the reader has gone; returns how much got in.
pub async fn send_body(mut client: DuplexStream, bytes: &[u8]) -> usize {
    let mut sent = 0;
    for piece in bytes.chunks(16 * KIB) {
        if client.write_all(piece).await.is_err() {
            return sent;
        }
        sent += piece.len();
    }
    let _ = client.shutdown().await;
    sent
}

/// `receive(body, dst, limits)` with `gz` sent by a client on the other end of a duplex.
pub async fn receive_gz(gz: &[u8], dst: &Path, limits: Limits) -> Result<u64, UploadError> {
    let (client, body) = pipe();
    let (result, _) = tokio::join!(receive(body, dst, limits), send_body(client, gz));
    result
}

/// A body that gives `data`, then fails with `kind`: the connection broke.
pub struct Broken {
    data: Vec<u8>,
    at: usize,
    kind: io::ErrorKind,
}

impl Broken {
    pub fn new(data: Vec<u8>, kind: io::ErrorKind) -> Self {
        Self { data, at: 0, kind }
    }
}

impl AsyncRead for Broken {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at == self.data.len() {
            return Poll::Ready(Err(io::Error::new(self.kind, "the test broke the body")));
        }
        let take = buf.remaining().min(self.data.len() - self.at).min(16 * KIB);
        buf.put_slice(&self.data[self.at..self.at + take]);
        self.at += take;
        Poll::Ready(Ok(()))
    }
}

/// `len` pseudo-random bytes (they do not compress: each chunk of the source is a chunk on the
/// wire), made as they are read, with a count of the bytes read so far.
pub struct Counted {
    random: data::Xorshift,
    left: u64,
    read: Arc<AtomicU64>,
}

impl Counted {
    pub fn random(len: u64) -> (Self, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        let source = Self {
            random: data::Xorshift::new(len),
            left: len,
            read: read.clone(),
        };
        (source, read)
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let take = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.random.fill(&mut buf[..take]);
        self.left -= take as u64;
        self.read.fetch_add(take as u64, Ordering::Relaxed);
        Ok(take)
    }
}

/// A synchronous reader as an `AsyncRead` that is always ready: a source that costs no time.
pub struct Ready<R>(pub R);

impl<R: Read + Unpin> AsyncRead for Ready<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let take = buf.remaining().min(64 * KIB);
        let read = self.0.read(&mut buf.initialize_unfilled_to(take)[..take])?;
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------------
// Results and errors
// ---------------------------------------------------------------------------------------------

/// Unwraps a result the test needs, reporting an error as a failure of the code under test.
#[track_caller]
pub fn expect_ok(what: &str, result: Result<u64, UploadError>, hint: &Hint) -> u64 {
    result.unwrap_or_else(|error| {
        fail(
            &format!("{what}: failed"),
            format_args!("Err({error:?}): \"{error}\""),
            "Ok(the decompressed size)",
            hint,
        )
    })
}

/// The variants, without their fields (but with the cap), for comparing and printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Body,
    NotGzip,
    Corrupt,
    Truncated,
    TooLarge(Cap),
    Write,
}

pub fn kind(error: &UploadError) -> Kind {
    match error {
        UploadError::Body(_) => Kind::Body,
        UploadError::NotGzip => Kind::NotGzip,
        UploadError::Corrupt { .. } => Kind::Corrupt,
        UploadError::Truncated => Kind::Truncated,
        UploadError::TooLarge { cap, .. } => Kind::TooLarge(*cap),
        UploadError::Write { .. } => Kind::Write,
    }
}

/// The error's message, then the `io::Error` inside it, if there is one.
pub fn describe(dir: &TestDir, error: &UploadError) -> String {
    let message = dir.short(error.to_string());
    let cause =
        std::error::Error::source(error).and_then(|cause| cause.downcast_ref::<io::Error>());
    match cause {
        Some(cause) => format!("{message} ({:?}: {cause})", cause.kind()),
        None => message,
    }
}

/// Checks that `result` is an error of `expected` kind (with `hint` if it is not) and returns it;
/// a `Corrupt` error must say what is wrong.
#[track_caller]
pub fn check_error(
    dir: &TestDir,
    what: &str,
    result: Result<u64, UploadError>,
    expected: Kind,
    hint: &Hint,
) -> UploadError {
    let error = match result {
        Ok(size) => fail(
            &format!("{what}: reported success"),
            format_args!("Ok({size})"),
            format_args!("Err(UploadError::{expected:?})"),
            hint,
        ),
        Err(error) => error,
    };
    check(
        &format!("{what}: the wrong error"),
        kind(&error) == expected,
        format_args!("UploadError::{:?}: {}", kind(&error), describe(dir, &error)),
        format_args!("UploadError::{expected:?}"),
        hint,
    );
    if let UploadError::Corrupt { reason } = &error {
        check(
            &format!("{what}: UploadError::Corrupt has no reason"),
            !reason.trim().is_empty(),
            "an empty reason",
            "what is wrong with the data, as the decoder said",
            &hint.instead("put the decoder's error text in `reason` (error.to_string())"),
        );
    }
    error
}

/// Checks the cap a `TooLarge` error gives.
#[track_caller]
pub fn check_limit(what: &str, error: &UploadError, limit: u64, hint: &Hint) {
    if let UploadError::TooLarge { limit: actual, .. } = error {
        check_eq(
            &format!("{what}: the limit in the error"),
            *actual,
            limit,
            hint,
        );
    }
}

/// Checks that the `io::Error` inside the error is of kind `expected`.
#[track_caller]
pub fn check_io_kind(what: &str, error: &UploadError, expected: io::ErrorKind, hint: &Hint) {
    let (UploadError::Body(source) | UploadError::Write { source, .. }) = error else {
        unreachable!("check_error has checked the variant")
    };
    check(
        &format!("{what}: the io::Error inside it"),
        source.kind() == expected,
        format_args!("{:?}: {source}", source.kind()),
        format_args!("{expected:?}, what the operation itself failed with"),
        hint,
    );
}

// ---------------------------------------------------------------------------------------------
// Files and directories
// ---------------------------------------------------------------------------------------------

/// The names in the directory other than `known`: temporary files.
pub fn others(dir: &TestDir, known: &[&str]) -> Vec<String> {
    dir.listing()
        .into_iter()
        .filter(|name| !known.contains(&name.as_str()))
        .collect()
}

/// The bytes in the directory's files other than `known`: what an upload under way has written.
pub fn bytes_in_others(dir: &TestDir, known: &[&str]) -> u64 {
    others(dir, known)
        .iter()
        .filter_map(|name| std::fs::metadata(dir.path(name)).ok())
        .map(|meta| meta.len())
        .sum()
}

/// Looks, at each of `instants` (virtual time since `start`), at how many bytes the upload
/// under way has written: the size of the directory's files other than `known`.
pub async fn sample_output(
    dir: &TestDir,
    known: &[&str],
    start: Instant,
    instants: &[Duration],
) -> Vec<(At, u64)> {
    let mut samples = Vec::new();
    for &at in instants {
        tokio::time::sleep_until(start + at).await;
        samples.push((At(at), bytes_in_others(dir, known)));
    }
    samples
}

/// Waits, on the real clock, until `condition` holds, for at most `limit`; says whether it did.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Checks, 64 KiB at a time, that the file `name` holds the bytes `expected` gives; the report
/// names the block where they first differ. Never holds more than two blocks.
#[track_caller]
pub fn check_file(dir: &TestDir, name: &str, expected: impl Read, hint: &Hint) {
    let file = std::fs::File::open(dir.path(name)).unwrap_or_else(|error| {
        fail(
            &format!("{name} after an upload that reported success"),
            format_args!("cannot be opened: {error}"),
            "the upload, renamed onto its destination",
            hint,
        )
    });
    check_stream(name, BufReader::new(file), expected, hint, hint);
}

/// The largest file this process may write, found by writing one; `None` outside a test run
/// with `file_size_limit`. The shell rounds the limit up to its blocks, so this is the exact
/// figure the test can build on.
pub fn file_size_limit_here(dir: &TestDir) -> Option<u64> {
    if !kata_harness::file_size_limited() {
        return None;
    }
    let path = dir.path(".limit-probe");
    let mut file = std::fs::File::create(&path).expect("cannot create a test file");
    let block = vec![0_u8; MIB];
    let mut written = 0;
    let limit = loop {
        match file.write(&block) {
            Ok(0) => break None,
            Ok(n) => written += n as u64,
            Err(error) if error.kind() == io::ErrorKind::FileTooLarge => break Some(written),
            Err(error) => panic!("cannot probe the file-size limit: {error}"),
        }
        if written > 64 * MIB as u64 {
            break None;
        }
    };
    drop(file);
    std::fs::remove_file(&path).expect("cannot remove a test file");
    limit
}

// ---------------------------------------------------------------------------------------------
// The paused clock, stopped
// ---------------------------------------------------------------------------------------------

/// Runs `future`, failing the test if it takes more than `limit` of **real** time.
///
/// For paused-clock tests where correct code never stops the clock: tokio holds the paused clock
/// still while a `spawn_blocking` task is in flight, so code that keeps one waiting (for the
/// next chunk of a slow client, say) stops every timer of the test, and the test would wait for
/// ever. A thread of its own watches the real clock and wakes the test.
pub async fn within_real_time<F: std::future::Future>(
    what: &str,
    future: F,
    limit: Duration,
    hint: &Hint,
) -> F::Output {
    let (expired, expiry) = tokio::sync::oneshot::channel::<()>();
    let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if cancelled.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            let _ = expired.send(());
        }
    });
    let output = tokio::select! {
        biased;
        output = future => output,
        Ok(()) = expiry => fail(
            &format!("{what}: the paused clock stopped"),
            format_args!(
                "no timer fired for {limit:?} of real time: something kept a spawn_blocking task \
                 in flight, which holds the paused clock still"
            ),
            "the test's timers to fire on the paused clock, as they do beside correct code",
            hint,
        ),
    };
    drop(cancel);
    output
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// A request, as bytes on the wire: the suite writes it by hand, so it says exactly what is
/// sent and when (the head alone, half a body, a chunked body, a client that stops).
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
    pub chunked: bool,
}

impl Req {
    /// `PUT path` with `Content-Encoding: gzip` and a `Content-Length` body.
    pub fn put(path: &str, body: impl Into<bytes::Bytes>) -> Self {
        let body = body.into();
        Self {
            method: "PUT".to_owned(),
            path: path.to_owned(),
            headers: vec![
                ("Host".to_owned(), "localhost".to_owned()),
                ("Content-Encoding".to_owned(), "gzip".to_owned()),
                ("Content-Length".to_owned(), body.len().to_string()),
            ],
            body,
            chunked: false,
        }
    }

    /// `method path` without a body.
    pub fn bare(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: vec![("Host".to_owned(), "localhost".to_owned())],
            body: bytes::Bytes::new(),
            chunked: false,
        }
    }

    /// The same request with `name: value` instead of any `name` it had (`None`: without it).
    pub fn with(mut self, name: &str, value: Option<&str>) -> Self {
        self.headers
            .retain(|(other, _)| !other.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            self.headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// The same request with a chunked body (`Transfer-Encoding: chunked`, no `Content-Length`).
    pub fn chunked(self) -> Self {
        let mut request = self
            .with("Content-Length", None)
            .with("Transfer-Encoding", Some("chunked"));
        request.chunked = true;
        request
    }

    /// The request line and the headers.
    pub fn head(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// `part` of the body as it goes on the wire: a chunk of its own when chunked.
    fn framed(&self, part: &[u8]) -> Vec<u8> {
        if self.chunked && !part.is_empty() {
            [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat()
        } else {
            part.to_vec()
        }
    }

    /// The end of the body: the last chunk when chunked, nothing otherwise.
    fn end(&self) -> &'static [u8] {
        if self.chunked { b"0\r\n\r\n" } else { b"" }
    }
}

/// An answer, as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The final status.
    pub status: u16,
    /// `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Statuses of the interim (1xx) answers before it, such as `100 Continue`.
    pub interim: Vec<u16>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(other, _)| other.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.status, self.body)
    }
}

/// A client on one connection: writes requests as bytes, reads answers.
pub struct Http<IO> {
    reader: tokio::io::ReadHalf<IO>,
    writer: tokio::io::WriteHalf<IO>,
    buffer: Vec<u8>,
    /// The task that serves the other end, when the test started one.
    server: Option<JoinHandle<()>>,
}

impl<IO: AsyncRead + AsyncWrite> Http<IO> {
    pub fn new(io: IO) -> Self {
        let (reader, writer) = tokio::io::split(io);
        Self {
            reader,
            writer,
            buffer: Vec::new(),
            server: None,
        }
    }

    /// When the connection failed: if the task serving its other end panicked (a `todo!()`
    /// still in the code, say), the test fails with that panic; otherwise with `error`.
    async fn failed(&mut self, error: io::Error) -> io::Error {
        if let Some(server) = self.server.take()
            && let Ok(Err(ended)) = tokio::time::timeout(Duration::from_millis(100), server).await
            && ended.is_panic()
        {
            std::panic::resume_unwind(ended.into_panic());
        }
        error
    }

    /// Writes `bytes` as they are.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let written = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        }
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(error) => Err(self.failed(error).await),
        }
    }

    /// Sends the head of `request` and `part` of its body.
    pub async fn start(&mut self, request: &Req, part: &[u8]) -> io::Result<()> {
        self.write(&request.head()).await?;
        self.send_part(request, part).await
    }

    /// Sends `part` of the body of `request`, framed as the request says, 16 KiB at a time.
    pub async fn send_part(&mut self, request: &Req, part: &[u8]) -> io::Result<()> {
        for piece in part.chunks(16 * KIB) {
            self.write(&request.framed(piece)).await?;
        }
        Ok(())
    }

    /// Sends the rest of the body of `request` and its end, while reading the answer; returns
    /// the answer. A server may answer before the body has ended (a 413, a 503) and read no more
    /// of it: the sending then stops.
    pub async fn finish(&mut self, request: &Req, rest: &[u8]) -> io::Result<Answer> {
        match self.send_rest(request, rest).await {
            Ok(answer) => Ok(answer),
            Err(error) => Err(self.failed(error).await),
        }
    }

    async fn send_rest(&mut self, request: &Req, rest: &[u8]) -> io::Result<Answer> {
        let (writer, reader, buffer) = (&mut self.writer, &mut self.reader, &mut self.buffer);
        let send = async {
            for piece in rest.chunks(16 * KIB) {
                writer.write_all(&request.framed(piece)).await?;
            }
            writer.write_all(request.end()).await?;
            writer.flush().await
        };
        let answer = read_answer(reader, buffer);
        tokio::pin!(send, answer);
        let mut sending = true;
        loop {
            tokio::select! {
                biased;
                answer = &mut answer => return answer,
                // A failed send (the server closed its end) is no answer: keep reading.
                _ = &mut send, if sending => sending = false,
            }
        }
    }

    /// Sends `request` whole and returns the answer.
    pub async fn exchange(&mut self, request: &Req) -> io::Result<Answer> {
        self.write(&request.head()).await?;
        let body = request.body.clone();
        self.finish(request, &body).await
    }

    /// Reads the next answer.
    pub async fn answer(&mut self) -> io::Result<Answer> {
        match read_answer(&mut self.reader, &mut self.buffer).await {
            Ok(answer) => Ok(answer),
            Err(error) => Err(self.failed(error).await),
        }
    }

    /// Whether the server closed the connection: a read gives its end (or an error).
    pub async fn closed(&mut self) -> bool {
        let mut byte = [0; 1];
        !matches!(self.reader.read(&mut byte).await, Ok(1..))
    }
}

/// Reads one answer (after any interim ones) from `reader`, with what was read past the last
/// one in `buffer`.
async fn read_answer<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
) -> io::Result<Answer> {
    let mut interim = Vec::new();
    loop {
        let end = loop {
            if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
            if reader.read_buf(buffer).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the connection closed before an answer ({} bytes of one)",
                        buffer.len()
                    ),
                ));
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, head.clone()))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        if (100..200).contains(&status) {
            interim.push(status);
            continue;
        }
        let length = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.parse::<usize>().ok());
        let body = match length {
            Some(length) => {
                while buffer.len() < length {
                    if reader.read_buf(buffer).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                buffer.drain(..length).collect()
            }
            // No length: the body runs to the end of the connection.
            None => {
                while reader.read_buf(buffer).await? > 0 {}
                std::mem::take(buffer)
            }
        };
        return Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            interim,
        });
    }
}

/// A connection to `server` in memory: the server serves its end in a task of its own.
pub fn connect(server: &Server) -> Http<DuplexStream> {
    let (client, server_side) = pipe();
    let server = server.clone();
    let serving = tokio::spawn(async move {
        let _ = server.serve_connection(server_side).await;
    });
    Http {
        server: Some(serving),
        ..Http::new(client)
    }
}

/// The answer to `request` on a new in-memory connection to `server`.
pub async fn ask(server: &Server, request: &Req) -> Answer {
    connect(server)
        .exchange(request)
        .await
        .unwrap_or_else(|error| panic!("the suite's client failed: {error}"))
}

/// A server configuration for the test directory, with `limits` and `max_uploads` slots.
pub fn settings(dir: &TestDir, limits: Limits, max_uploads: usize) -> Config {
    Config {
        dir: dir.root().to_owned(),
        limits,
        max_uploads,
        drain: Duration::from_secs(5),
    }
}

// ---------------------------------------------------------------------------------------------
// The server on loopback
// ---------------------------------------------------------------------------------------------

/// The server, serving on 127.0.0.1 (a port the system picks) in a task of its own. Nothing else
/// on the network is ever contacted.
pub struct Loopback {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Mutex<Option<JoinHandle<Shutdown>>>,
}

impl Loopback {
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot listen on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(Server::new(config).serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            serving: Mutex::new(Some(serving)),
        }
    }

    /// A new connection to the server, for the suite's client.
    pub async fn connect(&self) -> io::Result<Http<TcpStream>> {
        Ok(Http::new(self.stream().await?))
    }

    /// A new connection to the server. If it cannot be made because `serve` panicked (a
    /// `todo!()` still in the code, say), the test fails with that panic.
    pub async fn stream(&self) -> io::Result<TcpStream> {
        match TcpStream::connect(self.addr).await {
            Ok(stream) => Ok(stream),
            Err(error) => {
                let ended = self
                    .serving
                    .lock()
                    .expect("poisoned")
                    .take_if(|serving| serving.is_finished());
                if let Some(serving) = ended {
                    let _ = Self::ended(serving).await;
                }
                Err(error)
            }
        }
    }

    /// What `serve` returned; its panic if it panicked.
    async fn ended(serving: JoinHandle<Shutdown>) -> Shutdown {
        serving
            .await
            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
    }

    /// Tells the server to shut down.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// What `serve` returned.
    pub async fn finished(self) -> Shutdown {
        let serving = self.serving.into_inner().expect("poisoned");
        Self::ended(serving.expect("serve() is awaited once")).await
    }
}

// ---------------------------------------------------------------------------------------------
// For the client: what it sends, seen from the server's side
// ---------------------------------------------------------------------------------------------

/// What [`Recorded`] keeps of the start of what is read through it.
const RECORDED_HEAD: usize = 64 * KIB;
/// What [`Recorded`] keeps of the end of what is read through it, once past its head.
const RECORDED_TAIL: usize = 64;

/// A connection that keeps what is read through it, as the server got it: the first 64 KiB
/// (the request's head and the start of its body), then only the last 64 bytes (how it ended).
pub struct Recorded<IO> {
    io: IO,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl<IO> Recorded<IO> {
    pub fn new(io: IO) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let seen = Arc::new(Mutex::new(Vec::with_capacity(
            RECORDED_HEAD + 2 * RECORDED_TAIL,
        )));
        (
            Self {
                io,
                seen: seen.clone(),
            },
            seen,
        )
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Recorded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let mut seen = self.seen.lock().expect("poisoned");
        let new = &buf.filled()[before..];
        let (head, rest) = new.split_at(new.len().min(RECORDED_HEAD.saturating_sub(seen.len())));
        seen.extend_from_slice(head);
        seen.extend_from_slice(&rest[rest.len().saturating_sub(RECORDED_TAIL)..]);
        if seen.len() > RECORDED_HEAD + RECORDED_TAIL {
            let tail = seen.len() - RECORDED_TAIL;
            seen.drain(RECORDED_HEAD..tail);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Recorded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The request line and the headers (names in lower case) at the start of `bytes`.
pub fn request_head(bytes: &[u8]) -> (String, Vec<(String, String)>) {
    let end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (line, headers)
}

/// A connection to `server` in memory whose server side records what it reads.
pub fn recorded_connection(server: &Server) -> (DuplexStream, Arc<Mutex<Vec<u8>>>) {
    let (client, server_side) = pipe();
    let (recorded, seen) = Recorded::new(server_side);
    let server = server.clone();
    tokio::spawn(async move {
        let _ = server.serve_connection(recorded).await;
    });
    (client, seen)
}

/// A connection to `server`, served on a thread and runtime of its own: what the test's runtime
/// does is then the client's alone.
pub fn serve_on_another_thread(server: Server) -> DuplexStream {
    let (client, server_side) = pipe();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cannot start a runtime");
        let _ = runtime.block_on(server.serve_connection(server_side));
    });
    client
}

/// A file of `size` bytes in the directory, checked block by block against `expected`: zeros.
pub struct Zeros(pub u64);

impl Read for Zeros {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let take = buf.len().min(usize::try_from(self.0).unwrap_or(usize::MAX));
        buf[..take].fill(0);
        self.0 -= take as u64;
        Ok(take)
    }
}
