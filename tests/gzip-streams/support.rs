//! How the gzip-streams suite drives the three functions and looks at what they leave behind:
//! the functions as one enum, the inputs, independent ways to check gzip (flate2's own decoder,
//! the `gzip` tool), the error checks, large files made and checked block by block (so that the
//! test's own setup never counts in the peak heap it records), the runtime thread's CPU time, and
//! destinations that fill up.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gzip_streams::{GzipError, gunzip_streaming, gzip_buffered, gzip_streaming};
use kata_harness::blocking;
pub use kata_harness::blocking::{Cost, cost_of, runtime_cost};
use kata_harness::data::{self, NumberedLog};
use kata_harness::files::{Gate, PipeFeeder, TestDir, check_left_alone, read_output};
use kata_harness::heap::{self, HeapReport};
use kata_harness::report::{check, check_bytes, check_eq, check_stream, fail, show_bytes};
use kata_harness::{Hint, ms};

// The hints that several tests give are the suite's; the fixtures here give them too.
use super::{CHUNKS, FINISH_IT, LEFT_ALONE, NOTHING_FAILS};

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * KIB;

// ---------------------------------------------------------------------------------------------
// The functions under test, and their inputs
// ---------------------------------------------------------------------------------------------

/// One of the kata's three functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    GzipBuffered,
    GzipStreaming,
    GunzipStreaming,
}

impl Function {
    /// Calls the function.
    pub async fn run(self, src: impl AsRef<Path>, dst: impl AsRef<Path>) -> Result<u64, GzipError> {
        match self {
            Self::GzipBuffered => gzip_buffered(src, dst).await,
            Self::GzipStreaming => gzip_streaming(src, dst).await,
            Self::GunzipStreaming => gunzip_streaming(src, dst).await,
        }
    }

    /// Whether it writes gzip (rather than reading it).
    pub fn gzips(self) -> bool {
        self != Self::GunzipStreaming
    }

    /// What it is given to stand for `data`: `data` itself to gzip, its gzip to gunzip.
    pub fn input_for(self, data: &[u8]) -> Vec<u8> {
        if self.gzips() {
            data.to_vec()
        } else {
            flate2_gzip(data, 6)
        }
    }

    /// What its `output` stands for: decoded by flate2 when it is gzip (failing the test with
    /// `hint` when it is not), as it is otherwise.
    #[track_caller]
    pub fn decoded(self, what: &str, output: &[u8], hint: &Hint) -> Vec<u8> {
        if self.gzips() {
            decode(what, output, hint)
        } else {
            output.to_vec()
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GzipBuffered => "gzip_buffered",
            Self::GzipStreaming => "gzip_streaming",
            Self::GunzipStreaming => "gunzip_streaming",
        })
    }
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
            Self::TextLine => b"Hello, gzip!\n".to_vec(),
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
// Independent ways to make and check gzip
// ---------------------------------------------------------------------------------------------

/// Gzips `data` with flate2 at `level`, independently of the code under test.
pub fn flate2_gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut encoded = Vec::new();
    flate2::read::GzEncoder::new(data, flate2::Compression::new(level))
        .read_to_end(&mut encoded)
        .expect("flate2 cannot fail to compress bytes in memory");
    encoded
}

/// Decodes one gzip member with flate2's own decoder, and insists nothing follows it.
pub fn flate2_gunzip(gz: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = flate2::bufread::GzDecoder::new(gz);
    let mut decoded = Vec::new();
    decoder
        .read_to_end(&mut decoded)
        .map_err(|error| format!("flate2's GzDecoder rejects it: {error}"))?;
    match decoder.into_inner().len() {
        0 => Ok(decoded),
        extra => Err(format!("{extra} bytes follow the end of the gzip stream")),
    }
}

/// Decodes `gz` with flate2, failing the test with `hint` if it is not one valid gzip stream.
#[track_caller]
pub fn decode(what: &str, gz: &[u8], hint: &Hint) -> Vec<u8> {
    flate2_gunzip(gz).unwrap_or_else(|why| {
        fail(
            &format!("{what}: not gzip that flate2 reads back"),
            format_args!("{}: {why}", show_bytes(gz)),
            "one gzip stream (1f 8b ... its 8-byte trailer), and nothing after it",
            hint,
        )
    })
}

/// Runs the system's `gzip` with `args` and returns its stdout; `None` if there is no `gzip`.
pub fn gzip_tool(args: &[&str]) -> Option<Result<Vec<u8>, String>> {
    let output = match Command::new("gzip").args(args).output() {
        Ok(output) => output,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => return Some(Err(format!("cannot run gzip: {error}"))),
    };
    Some(if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "gzip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })
}

/// Says why a check that needs the `gzip` tool is skipped.
pub fn skip_without_gzip(what: &str) {
    eprintln!("skipped: {what}: there is no `gzip` tool on this system");
}

/// The sizes flate2 gives `data` at `level` and at the levels either side of it.
pub fn sizes_around(data: &[u8], level: u32) -> [usize; 3] {
    [level - 1, level, level + 1].map(|level| flate2_gzip(data, level).len())
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

// ---------------------------------------------------------------------------------------------
// Bad input for gunzip
// ---------------------------------------------------------------------------------------------

/// 512 KiB of text, gzipped by flate2: enough that a decoder has written output before it
/// reaches a problem in the second half.
pub fn sample_gz() -> Vec<u8> {
    flate2_gzip(&data::text(512 * KIB), 6)
}

pub fn overwrite_the_middle(mut gz: Vec<u8>) -> Vec<u8> {
    let middle = gz.len() / 2;
    gz[middle..middle + 64].fill(0xff);
    gz
}

pub fn change_the_crc(mut gz: Vec<u8>) -> Vec<u8> {
    let at = gz.len() - 8;
    gz[at] ^= 0xff;
    gz
}

pub fn change_the_length(mut gz: Vec<u8>) -> Vec<u8> {
    let at = gz.len() - 4;
    gz[at] ^= 1;
    gz
}

pub fn change_the_method(mut gz: Vec<u8>) -> Vec<u8> {
    gz[2] = 7; // 8 is deflate, the only method gzip has
    gz
}

pub fn append_garbage(gz: Vec<u8>) -> Vec<u8> {
    [gz, b"this is not gzip".to_vec()].concat()
}

/// Runs gunzip_streaming on `gz` into an existing `out.txt`, and checks the error and that
/// out.txt and the directory are as they were.
pub async fn check_bad_input(gz: &[u8], what: &str, kind: Kind, hint: &Hint) {
    let dir = TestDir::new();
    let src = dir.write("input.gz", gz);
    let dst = dir.write("out.txt", "precious");
    check_error(
        &dir,
        &format!("gunzip_streaming(input.gz, out.txt) where input.gz is {what}"),
        gunzip_streaming(&src, &dst).await,
        (kind, &src),
        hint,
    );
    check_left_alone(
        &dir,
        ("out.txt", Some(b"precious")),
        &["input.gz", "out.txt"],
        "the failed call",
        &hint.instead(LEFT_ALONE),
    );
}

// ---------------------------------------------------------------------------------------------
// Results, errors and what a call leaves behind
// ---------------------------------------------------------------------------------------------

/// Unwraps a result the test needs, reporting an error as a failure of the code under test.
#[track_caller]
pub fn expect_ok<T: fmt::Debug>(what: &str, result: Result<T, GzipError>, hint: &Hint) -> T {
    result.unwrap_or_else(|error| {
        fail(
            &format!("{what}: failed"),
            format_args!("Err({error:?}): \"{error}\""),
            "Ok(the number of bytes written to dst)",
            hint,
        )
    })
}

/// The variants, without their fields, for comparing and printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    NotGzip,
    Corrupt,
    Truncated,
}

/// The error's message as the test directory shortens it, then the `io::Error` that caused it,
/// if one did: `"cannot read input" (BrokenPipe: the writer stopped)`.
fn describe(dir: &TestDir, error: &GzipError) -> String {
    let message = dir.short(error.to_string());
    let cause =
        std::error::Error::source(error).and_then(|cause| cause.downcast_ref::<io::Error>());
    match cause {
        Some(cause) => format!("{message} ({:?}: {cause})", cause.kind()),
        None => message,
    }
}

fn kind_and_path(error: &GzipError) -> (Kind, &Path) {
    match error {
        GzipError::Read { path, .. } => (Kind::Read, path),
        GzipError::Write { path, .. } => (Kind::Write, path),
        GzipError::NotGzip { path } => (Kind::NotGzip, path),
        GzipError::Corrupt { path, .. } => (Kind::Corrupt, path),
        GzipError::Truncated { path } => (Kind::Truncated, path),
    }
}

/// Checks that `result` is the error `kind` about `path` (with `hint` if it is not), that it
/// names the path as it was given and that its message shows it (with hints of their own), and
/// returns it.
#[track_caller]
pub fn check_error(
    dir: &TestDir,
    what: &str,
    result: Result<u64, GzipError>,
    (kind, path): (Kind, &Path),
    hint: &Hint,
) -> GzipError {
    let name = dir.name(path);
    let error = match result {
        Ok(written) => fail(
            &format!("{what}: reported success"),
            format_args!("Ok({written})"),
            format_args!("Err(GzipError::{kind:?} {{ path: {name:?}, .. }})"),
            hint,
        ),
        Err(error) => error,
    };
    let (actual_kind, actual_path) = kind_and_path(&error);
    if actual_kind != kind {
        fail(
            &format!("{what}: the wrong error"),
            format_args!("GzipError::{actual_kind:?}: {}", describe(dir, &error)),
            format_args!("GzipError::{kind:?} {{ path: {name:?}, .. }}"),
            hint,
        );
    }
    check_eq(
        &format!("{what}: the path in GzipError::{kind:?}"),
        dir.short(actual_path),
        dir.short(path),
        &hint.instead(
            "the error names the file it is about (src for Read and the bad-input errors, dst \
             for Write), exactly as the caller gave it: not the temporary file, not a \
             canonicalized path",
        ),
    );
    let message = error.to_string();
    if !message.contains(&path.display().to_string()) {
        fail(
            &format!("{what}: the error's message does not name the file"),
            dir.short(&message),
            format_args!("a message naming {name}"),
            &hint.instead("keep the #[error(...)] texts of GzipError, which print the path"),
        );
    }
    if let GzipError::Corrupt { reason, .. } = &error
        && reason.trim().is_empty()
    {
        fail(
            &format!("{what}: GzipError::Corrupt has no reason"),
            "an empty reason",
            "what is wrong with the data, as the decoder said",
            &hint.instead("put the decoder's error text in `reason` (error.to_string())"),
        );
    }
    error
}

/// Checks that the `io::Error` inside a `GzipError::Write` is of kind `kind`.
#[track_caller]
pub fn check_io_kind(what: &str, error: &GzipError, kind: io::ErrorKind, hint: &Hint) {
    let GzipError::Write { source, .. } = error else {
        unreachable!("check_error has checked it is a Write error");
    };
    check(
        &format!("{what}: the io::Error inside GzipError::Write"),
        source.kind() == kind,
        format_args!("{:?}: {source}", source.kind()),
        format_args!("{kind:?}, what the write itself failed with"),
        hint,
    );
}

// ---------------------------------------------------------------------------------------------
// The runtime's thread: CPU time, and sources that pause
// ---------------------------------------------------------------------------------------------

/// A source that gives its bytes part by part: a named pipe fed by a [`PipeFeeder`], or, where
/// the system has no named pipes, a plain file holding all the parts (the checks that need the
/// pipe are then skipped).
pub struct Source {
    pub path: PathBuf,
    pub feeder: Option<PipeFeeder>,
}

impl Source {
    pub fn start(dir: &TestDir, name: &str, parts: Vec<Vec<u8>>, gate: Gate) -> Self {
        match dir.fifo(name) {
            Some(path) => Self {
                feeder: Some(PipeFeeder::start(&path, parts, gate)),
                path,
            },
            None => {
                eprintln!("skipped in part: there are no named pipes here, {name} is a plain file");
                Self {
                    path: dir.write(name, parts.concat()),
                    feeder: None,
                }
            }
        }
    }
}

/// `bytes` cut into `parts` parts of about the same size.
pub fn split(bytes: &[u8], parts: usize) -> Vec<Vec<u8>> {
    bytes
        .chunks(bytes.len().div_ceil(parts).max(1))
        .map(<[u8]>::to_vec)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Large files, made and checked block by block
// ---------------------------------------------------------------------------------------------

/// Writes `len` bytes of [`NumberedLog`] to `name`, as they are made.
fn write_log(dir: &TestDir, name: &str, len: usize) -> PathBuf {
    let path = dir.path(name);
    let mut file = std::fs::File::create(&path).expect("cannot create a test file");
    io::copy(&mut NumberedLog::new(len), &mut file).expect("cannot write a test file");
    path
}

/// Writes the gzip (by flate2, at `level`) of `len` bytes of [`NumberedLog`] to `name`.
fn write_log_gz(dir: &TestDir, name: &str, len: usize, level: u32) -> PathBuf {
    let path = dir.path(name);
    let file = std::fs::File::create(&path).expect("cannot create a test file");
    let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::new(level));
    io::copy(&mut NumberedLog::new(len), &mut encoder).expect("cannot write a test file");
    encoder.finish().expect("cannot write a test file");
    path
}

/// Checks that the gzip file at `path` is one gzip stream that decodes to what `expected`
/// gives, decoding it block by block.
#[track_caller]
pub fn check_gz_file(what: &str, path: &Path, expected: impl Read, hint: &Hint, unreadable: &Hint) {
    let file = std::fs::File::open(path).expect("cannot open the output");
    let mut decoder = flate2::bufread::GzDecoder::new(BufReader::new(file));
    check_stream(what, &mut decoder, expected, hint, unreadable);
    let rest = decoder
        .into_inner()
        .fill_buf()
        .map(<[u8]>::len)
        .unwrap_or_default();
    if rest > 0 {
        fail(
            &format!("{what}: bytes after the end of the gzip stream"),
            format_args!("more bytes after the gzip stream's trailer (at least {rest})"),
            "one gzip stream, and nothing after it",
            unreadable,
        );
    }
}

/// Runs `function` under a heap measurement on `len` bytes of [`NumberedLog`] (gzipped by flate2
/// at level 1 for gunzip, which is quick to make) written to `name`, into `dst`; deletes the
/// input afterwards. Fails the test with `hint` if the call fails.
pub async fn measured_on_log(
    function: Function,
    dir: &TestDir,
    (name, len): (&str, usize),
    dst: &Path,
    hint: &Hint,
) -> (u64, HeapReport) {
    let src = match function {
        Function::GunzipStreaming => write_log_gz(dir, name, len, 1),
        _ => write_log(dir, name, len),
    };
    let (result, report) = heap::measure_async(function.run(&src, dst)).await;
    std::fs::remove_file(&src).expect("cannot remove a test file");
    (
        expect_ok(&format!("{function}({name}, output)"), result, hint),
        report,
    )
}

/// `peak for name (size)`, for reports.
pub fn peak_for(name: &str, len: usize, report: HeapReport) -> String {
    format!(
        "{} for {name} ({})",
        heap::bytes(report.peak_delta as f64),
        size(len)
    )
}

// ---------------------------------------------------------------------------------------------
// Destinations that fill up
// ---------------------------------------------------------------------------------------------

/// The largest file this process may write, found by writing one (a write past the limit
/// writes what fits, and the next fails with "File too large"); `None` outside a test run with
/// `file_size_limit`. The shell rounds the limit up to its blocks (512 or 1024 bytes), so this
/// is the exact figure the test can build on.
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

/// Pseudo-random bytes whose gzip at level 6 is exactly `target` bytes long (found by trying
/// lengths near it: random bytes do not compress, so the length moves with the input's).
pub fn random_with_gzip_size(target: usize) -> Vec<u8> {
    for seed in 1..20 {
        let mut len = target.saturating_sub(64);
        for _ in 0..30 {
            let bytes = data::random_bytes(seed, len);
            let got = flate2_gzip(&bytes, 6).len();
            if got == target {
                return bytes;
            }
            len = (len + target).saturating_sub(got);
        }
    }
    panic!("no random input gzips to exactly {target} bytes")
}

/// Where a destination fills up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// About 2 MiB before the output's end: many chunks are still to come.
    HalfWay,
    /// At the output's very last byte: the last write is the one that fails.
    AtTheLastByte,
}

impl fmt::Display for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HalfWay => "half way",
            Self::AtTheLastByte => "at its very last byte",
        })
    }
}

/// A source named `input` whose output through `function` is larger than `limit` bytes: by
/// megabytes ([`Fill::HalfWay`]) or by exactly one byte ([`Fill::AtTheLastByte`]). The source
/// itself must fit under the limit, or the test could not write it: to gzip megabytes it is a
/// named pipe, which no file-size limit applies to.
pub fn overflowing_source(dir: &TestDir, function: Function, fill: Fill, limit: u64) -> Source {
    let limit = usize::try_from(limit).expect("a small limit");
    let bytes = match (fill, function.gzips()) {
        (Fill::HalfWay, true) => {
            let parts = vec![data::random_bytes(4, 2 * MIB)];
            return Source::start(dir, "input", parts, Gate::Test);
        }
        // 4 MiB of one line over and over: its gzip is a few KiB.
        (Fill::HalfWay, false) => flate2_gzip(&b"all work and no play\n".repeat(200_000), 6),
        (Fill::AtTheLastByte, true) => random_with_gzip_size(limit + 1),
        (Fill::AtTheLastByte, false) => flate2_gzip(&data::text(limit + 1), 6),
    };
    Source {
        path: dir.write("input", bytes),
        feeder: None,
    }
}

/// Checks that `gz`, the gzip of `data`, has about the size flate2 gives it at level 6: closer
/// to that than to the sizes of levels 5 and 7.
#[track_caller]
pub fn check_level(what: &str, gz: &[u8], data: &[u8], hint: &Hint) {
    let [five, six, seven] = sizes_around(data, 6);
    let (low, high) = ((six + seven) / 2, (six + five) / 2);
    check(
        &format!("{what}: the compressed size gives the level away"),
        (low..=high).contains(&gz.len()),
        format_args!("{} bytes", gz.len()),
        format_args!(
            "about {six} bytes, flate2's size at level 6 (from {low} to {high}: level 5 gives \
             {five}, level 7 gives {seven})"
        ),
        hint,
    );
}

/// Checks that `what` cost the runtime's thread less than `1 / share` of what `work` (the same
/// bytes, (de)compressed on this thread just before) cost.
#[track_caller]
pub fn check_off_the_runtime_thread(
    what: &str,
    cost: Cost,
    (work, work_cost): (&str, Duration),
    share: u32,
    hint: &Hint,
) {
    eprintln!("{what}: the runtime's thread: {cost}; {work} the same bytes: {work_cost:.1?}");
    let limit = work_cost / share;
    check(
        &format!("{what}: the runtime's thread did the {work}"),
        cost.figure() < limit,
        format_args!("{cost}: every other task waited that long"),
        format_args!(
            "under {limit:.1?}, 1/{share} of the {work_cost:.1?} that {work} these bytes takes \
             here"
        ),
        hint,
    );
}

/// Runs `function` on a named pipe whose writer pauses 300 ms between parts, beside a
/// heartbeat: a blocking read holds the runtime's thread for each pause.
pub async fn check_slow_source(function: Function, hint: &Hint) {
    const PAUSE: Duration = ms(300);
    // Far above the scheduling noise of a loaded machine, far below the pause.
    const LATE: Duration = ms(150);
    let dir = TestDir::new();
    let data = data::text(192 * KIB);
    let parts = split(&function.input_for(&data), 3);
    let source = Source::start(&dir, "input", parts, Gate::Pause(PAUSE));
    let dst = dir.path("output");
    let what = format!("{function}(input, output), input a pipe that pauses {PAUSE:?} twice");
    let (result, report) = blocking::watch(function.run(&source.path, &dst)).await;
    expect_ok(&what, result, &hint.instead(NOTHING_FAILS));
    if source.feeder.is_some() {
        let what = format!("{what} (time spent waiting for a CPU left out)");
        blocking::assert_not_blocked(&what, report, LATE, hint);
    }
    check_bytes(
        &format!("output, what {function} made of the pipe's bytes (decoded if gzip)"),
        &function.decoded(
            "output",
            &read_output(&dir, "output", hint),
            &hint.instead(FINISH_IT),
        ),
        &data,
        &hint.instead(match function {
            Function::GzipBuffered => {
                "the output is not the gzip of all of src: a pipe gives its bytes part by part, \
                 so read until a read returns 0 bytes (tokio::fs::read does)"
            }
            _ => CHUNKS,
        }),
    );
}
