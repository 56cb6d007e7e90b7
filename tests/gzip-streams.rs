//! The gzip-streams kata's suite, run against both `exercises/gzip-streams` and
//! `solutions/gzip-streams`.
//!
//! Every test works on files in a fresh temporary directory. Output is checked with an
//! independent decoder (flate2's own, and the system's `gzip` tool where there is one), and input
//! made by the `gzip` tool is fed to ours. Memory is measured with the harness's per-test heap
//! counters, which count the test's blocking pool too, so `tokio::fs` and `spawn_blocking`
//! allocations are the code's own. Stage by stage, the tests reject the usual wrong answers:
//! output that is not gzip, compression on the runtime's thread, a "stream" that still holds
//! the whole file (or lets an unbounded channel fill up), a destination written in place and
//! left half written, temporary files left behind, truncated input accepted as complete, and an
//! error that names the wrong file or the wrong problem.

kata_harness::install_allocator!();

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gzip_streams::{GzipError, gunzip_streaming, gzip_buffered, gzip_streaming};
use kata_harness::files::TestDir;
use kata_harness::heap::{self, HeapReport};
use kata_harness::report::{check_eq, fail};
use rstest::rstest;

const STAGE1: &str = "exercises/gzip-streams/README.md, stage 1";
const STAGE2: &str = "exercises/gzip-streams/README.md, stage 2";

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The streaming versions' peak heap must stay below this, whatever the file's size. A few
/// 64 KiB chunks in two bounded channels plus zlib's state (a few hundred KiB to compress, less
/// to decompress) come to about 1 MiB; the limit leaves room for bigger chunks or deeper
/// channels, and none for a copy of an 8 MiB file.
const STREAMING_LIMIT: usize = 4 * MIB;
/// How much the streaming peak may differ between an 8 MiB and a 32 MiB file: a few chunks,
/// depending on which stage happens to be ahead.
const SAME_PEAK: usize = 512 * KIB;

/// The hint for output that is not gzip, stage 1.
const FINISH_IT: &str = "compress with flate2::write::GzEncoder (gzip), not ZlibEncoder or \
                         DeflateEncoder (other formats), and call finish() so that the gzip \
                         trailer is written";
/// The hint for output that is not gzip, stage 2.
const ONE_STREAM: &str = "one gzip stream: one encoder for the whole file, finished once at the \
                          end (which writes the trailer), every chunk of its output written in \
                          order";

/// `text`, then where to read more about it.
fn hint(text: &str, stage: &str) -> String {
    format!("{text} ({stage})")
}

// ---------------------------------------------------------------------------------------------
// Files, data, and independent ways to check gzip
// ---------------------------------------------------------------------------------------------

/// `size` bytes of deterministic, log-like text: compressible the way real files are.
fn text(size: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 16] = [
        b"GET ",
        b"POST ",
        b"/index.html ",
        b"/api/v1/users ",
        b"200 ",
        b"404 ",
        b"took ",
        b"ms ",
        b"user=",
        b"session ",
        b"cache ",
        b"hit ",
        b"miss ",
        b"bytes ",
        b"from ",
        b"10.0.0.",
    ];
    let mut out = Vec::with_capacity(size + 64);
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    while out.len() < size {
        state = xorshift(state);
        for shift in (0..48).step_by(4) {
            out.extend_from_slice(WORDS[(state >> shift) as usize & 15]);
        }
        out.extend_from_slice(&[b'0' + (state >> 60) as u8 % 10, b'\n']);
    }
    out.truncate(size);
    out
}

/// `size` bytes that do not compress.
fn random(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 8);
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    while out.len() < size {
        state = xorshift(state);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(size);
    out
}

fn xorshift(mut state: u64) -> u64 {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    state
}

/// 32 MiB of numbered log lines, made once and shared by the tests that need a large file. It
/// compresses fast (one line, over and over, but for its number), which keeps those tests quick:
/// memory is about how the bytes flow, not about which bytes they are.
fn large_log() -> &'static [u8] {
    static LOG: OnceLock<Vec<u8>> = OnceLock::new();
    LOG.get_or_init(|| {
        const LINE: &[u8] = b"00000000 GET /index.html 200 took 3 ms from 10.0.0.7 user=alice\n";
        let size = 32 * MIB;
        let mut log = Vec::with_capacity(size + LINE.len());
        let mut number = 0_u32;
        while log.len() < size {
            number += 1;
            let start = log.len();
            log.extend_from_slice(LINE);
            let mut rest = number;
            for digit in log[start..start + 8].iter_mut().rev() {
                *digit = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
        }
        log.truncate(size);
        log
    })
}

/// Gzips `data` with flate2 at `level`, independently of the code under test.
fn flate2_gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut encoded = Vec::new();
    flate2::read::GzEncoder::new(data, flate2::Compression::new(level))
        .read_to_end(&mut encoded)
        .expect("flate2 cannot fail to compress bytes in memory");
    encoded
}

/// Decodes one gzip member with flate2's own decoder, and insists nothing follows it.
fn flate2_gunzip(gz: &[u8]) -> Result<Vec<u8>, String> {
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

/// Decodes `gz` with flate2, failing the test with `why`'s hint if it is not valid gzip.
#[track_caller]
fn decode(what: &str, gz: &[u8], hint: &str) -> Vec<u8> {
    match flate2_gunzip(gz) {
        Ok(decoded) => decoded,
        Err(why) => fail(
            what,
            "gzip data (flate2's GzDecoder reads it back)",
            format_args!("{}: {why}", show(gz)),
            hint,
        ),
    }
}

/// Runs the system's `gzip` with `args` and returns its stdout; `None` if there is no `gzip`.
fn gzip_tool(args: &[&str]) -> Option<Result<Vec<u8>, String>> {
    let output = match Command::new("gzip").args(args).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
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
fn skip_without_gzip(what: &str) {
    eprintln!("skipped: {what}: there is no `gzip` tool on this system");
}

/// A size and a kind of data, for messages: `8.0 MiB of text`.
fn sized(size: usize, kind: &str) -> String {
    format!("{} of {kind}", heap::bytes(size as f64))
}

/// Bytes for a report: their size, and the bytes themselves (as text if they are) when short.
fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.len() <= 40 && !text.contains(char::is_control) => {
            format!("{} bytes {text:?}", bytes.len())
        }
        _ if bytes.len() <= 16 => format!("{} bytes {bytes:02x?}", bytes.len()),
        _ => format!("{} bytes starting {:02x?}", bytes.len(), &bytes[..8]),
    }
}

/// Checks that `actual` is `expected`, saying where they first differ.
#[track_caller]
fn check_bytes(what: &str, actual: &[u8], expected: &[u8], hint: &str) {
    if actual == expected {
        return;
    }
    let first_difference = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    fail(
        what,
        show(expected),
        format_args!(
            "{}, different from byte {first_difference} on",
            show(actual)
        ),
        hint,
    );
}

/// Runs the streaming function called `function` (`gzip_streaming` or `gunzip_streaming`).
async fn streaming(function: &str, src: &Path, dst: &Path) -> Result<u64, GzipError> {
    match function {
        "gzip_streaming" => gzip_streaming(src, dst).await,
        _ => gunzip_streaming(src, dst).await,
    }
}

/// Unwraps a result the test needs, reporting an error as a failure of the code under test.
#[track_caller]
fn expect_ok<T>(what: &str, result: Result<T, GzipError>, hint: &str) -> T {
    result.unwrap_or_else(|error| {
        fail(
            what,
            "Ok(..)",
            format_args!("Err({error:?}): \"{error}\""),
            hint,
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Errors and what a failure leaves behind
// ---------------------------------------------------------------------------------------------

/// The variants, without their fields, for comparing and printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    NotGzip,
    Corrupt,
    Truncated,
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

/// Checks that `result` is the error `kind` about `path`, and that its message names the path
/// (and, for `Corrupt`, gives a reason).
#[track_caller]
fn check_error(what: &str, result: Result<u64, GzipError>, kind: Kind, path: &Path, hint: &str) {
    let error = match result {
        Ok(written) => fail(
            what,
            format_args!(
                "Err(GzipError::{kind:?} {{ path: {}, .. }})",
                path.display()
            ),
            format_args!("Ok({written}): it reported success"),
            hint,
        ),
        Err(error) => error,
    };
    let (actual_kind, actual_path) = kind_and_path(&error);
    if actual_kind != kind {
        fail(
            what,
            format_args!("GzipError::{kind:?}"),
            format_args!("GzipError::{actual_kind:?}: \"{error}\""),
            hint,
        );
    }
    check_eq(
        &format!("{what}: the path in GzipError::{kind:?}"),
        actual_path,
        path,
        &format!("the error names the file it is about, exactly as it was given; {hint}"),
    );
    let message = error.to_string();
    if !message.contains(&path.display().to_string()) {
        fail(
            &format!("{what}: the error's message"),
            format_args!("a message naming {}", path.display()),
            format_args!("{message:?}"),
            &format!("keep the #[error(...)] texts of GzipError, which print the path; {hint}"),
        );
    }
    if let GzipError::Corrupt { reason, .. } = &error
        && reason.trim().is_empty()
    {
        fail(
            &format!("{what}: GzipError::Corrupt's reason"),
            "what is wrong with the data, as the decoder said",
            "an empty reason",
            &format!("put the decoder's error text in `reason`; {hint}"),
        );
    }
}

/// Checks that a failed call left `dst` as it was (`before`, or absent) and no other file than
/// `names` in the directory: no temporary file, no half-written output.
#[track_caller]
fn check_left_alone(dir: &TestDir, dst: &str, before: Option<&[u8]>, names: &[&str], stage: &str) {
    check_left_alone_after(
        dir,
        (dst, before),
        names,
        "the failed call",
        &hint(
            "write into a temporary file beside dst, rename it onto dst only once everything \
             has succeeded, and delete it on failure (a TempPath deletes its file when \
             dropped): a failure leaves dst exactly as it was, and nothing else behind",
            stage,
        ),
    );
}

/// [`check_left_alone`], after `when`, with its own hint.
#[track_caller]
fn check_left_alone_after(
    dir: &TestDir,
    (dst, before): (&str, Option<&[u8]>),
    names: &[&str],
    when: &str,
    hint: &str,
) {
    let after = dir.read(dst);
    let show_file = |contents: Option<&[u8]>| contents.map_or("no file".to_owned(), show);
    if after.as_deref() != before {
        fail(
            &format!("{dst} after {when}"),
            format_args!("{} (as it was before the call)", show_file(before)),
            show_file(after.as_deref()),
            hint,
        );
    }
    let mut expected: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    check_eq(
        &format!("the files in the directory after {when}"),
        dir.listing(),
        expected,
        hint,
    );
}

/// Checks that the directory holds exactly `names`: a temporary file must not outlive the call.
#[track_caller]
fn check_no_strays(dir: &TestDir, names: &[&str], stage: &str) {
    let mut expected: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    check_eq(
        "the files in the directory after the call",
        dir.listing(),
        expected,
        &hint(
            "the temporary file is renamed onto dst on success and deleted on failure: \
             tempfile's NamedTempFile / TempPath deletes itself when dropped",
            stage,
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Memory and the runtime's thread
// ---------------------------------------------------------------------------------------------

/// Time the runtime's one worker thread has spent running tasks, as tokio counts it.
fn runtime_busy() -> Duration {
    tokio::runtime::Handle::current()
        .metrics()
        .worker_total_busy_duration(0)
}

/// Lets the runtime park once: tokio adds up a stretch of busy time when its thread parks.
async fn park() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Awaits `future` and says how long the runtime's thread was busy meanwhile (real time): what
/// runs on the blocking pool does not count, what runs in async code does.
async fn busy_during<F: Future>(future: F) -> (F::Output, Duration) {
    park().await;
    let before = runtime_busy();
    let output = future.await;
    park().await;
    (output, runtime_busy() - before)
}

/// Checks that `run` compressed `data` (already in `src`) without keeping the runtime's thread
/// busy for a third of the time compression takes or more: the work belongs on the blocking
/// pool.
async fn check_compresses_off_the_runtime<F, Fut>(data: &[u8], name: &str, run: F, stage: &str)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<u64, GzipError>>,
{
    // What compressing these bytes costs on this machine, right now: the yardstick.
    let started = Instant::now();
    std::hint::black_box(flate2_gzip(data, 6));
    let compressing = started.elapsed();

    let (result, busy) = busy_during(run()).await;
    expect_ok(
        &format!("{name} of {}", sized(data.len(), "text")),
        result,
        &hint(
            "an existing file into a new one in an existing directory",
            stage,
        ),
    );
    eprintln!(
        "{name}: the runtime's thread was busy {busy:.1?}; compressing takes {compressing:.1?}"
    );
    // Compressing on the runtime's thread keeps it busy for about as long as compressing takes
    // (0.7 to 1 times, depending on the load); the pipeline's own work, with chunks as small as
    // 4 KiB, for under a fifth of it.
    let limit = compressing / 3;
    if busy > limit {
        fail(
            &format!(
                "{name} of {}: the runtime's thread did the compressing",
                sized(data.len(), "text")
            ),
            format_args!(
                "the runtime's thread busy for under {limit:.1?}, a third of the \
                 {compressing:.1?} that compressing these bytes takes here"
            ),
            format_args!("busy for {busy:.1?}: every other task waited that long"),
            &hint(
                "compression is CPU work with no .await in it: run it inside \
                 tokio::task::spawn_blocking, so the runtime's thread stays free for other tasks",
                stage,
            ),
        );
    }
}

/// Writes `data` to `name`, runs `run(src)` under a heap measurement, and returns the figures
/// with the number of bytes written.
async fn measured<F, Fut>(
    dir: &TestDir,
    (name, data): (&str, &[u8]),
    run: F,
    stage: &str,
) -> (u64, HeapReport)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = Result<u64, GzipError>>,
{
    let src = dir.write(name, data);
    let (result, report) = heap::measure_async(run(src)).await;
    (
        expect_ok(
            &format!("a run over {name}, {}", heap::bytes(data.len() as f64)),
            result,
            &hint(
                "a valid input into a new file in an existing directory",
                stage,
            ),
        ),
        report,
    )
}

/// Runs `what` over an 8 MiB and a 32 MiB input, checks its peak heap stays under
/// [`STREAMING_LIMIT`] and the same for both, and returns what it wrote for the large one.
async fn check_constant_memory<F, Fut>(
    what: &str,
    dir: &TestDir,
    warm_up: &[u8],
    inputs: [(&str, &[u8]); 2],
    dst: &Path,
    run: F,
) -> Vec<u8>
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Result<u64, GzipError>>,
{
    // Warm up: the first run starts the blocking pool's threads and builds lazily-made statics,
    // which stay and are not the run's to pay for.
    measured(dir, ("warm-up", warm_up), &run, STAGE2).await;
    let [(small_name, small), (large_name, large)] = inputs;
    let (_, small_heap) = measured(dir, (small_name, small), &run, STAGE2).await;
    let (written, large_heap) = measured(dir, (large_name, large), &run, STAGE2).await;
    let show_run = |name: &str, input: &[u8], report: HeapReport| {
        format!(
            "{} for {name} ({})",
            heap::bytes(report.peak_delta as f64),
            heap::bytes(input.len() as f64)
        )
    };
    let (small_figure, large_figure) = (
        show_run(small_name, small, small_heap),
        show_run(large_name, large, large_heap),
    );
    eprintln!("{what}: peak heap {small_figure}, {large_figure}");

    let holds_it = "stream it: read a chunk, hand it on, read the next; bounded channels \
                    (tokio::sync::mpsc::channel(n)) between the stages, so a stage that is \
                    ahead waits instead of piling chunks up in memory; never read_to_end, \
                    tokio::fs::read or an unbounded_channel";
    heap::assert_peak_below(
        &format!(
            "{what} of {large_name} ({})",
            heap::bytes(large.len() as f64)
        ),
        large_heap,
        STREAMING_LIMIT,
        &hint(holds_it, STAGE2),
    );
    let (small_label, large_label) = (
        format!("{small_name} ({})", heap::bytes(small.len() as f64)),
        format!("{large_name} ({})", heap::bytes(large.len() as f64)),
    );
    heap::assert_peak_independent(
        what,
        (&small_label, small_heap),
        (&large_label, large_heap),
        SAME_PEAK,
        &hint(holds_it, STAGE2),
    );
    let output = std::fs::read(dst).expect("cannot read the output back");
    check_eq(
        &format!("{what}: the bytes it says it wrote"),
        written,
        output.len() as u64,
        &hint("return the number of bytes written to dst", STAGE2),
    );
    output
}

// ---------------------------------------------------------------------------------------------
// Inputs for the round trips
// ---------------------------------------------------------------------------------------------

/// The round-trip inputs: sizes around the edges, and both kinds of data.
fn input(case: &str) -> Vec<u8> {
    match case {
        "empty" => Vec::new(),
        "one byte" => b"x".to_vec(),
        "a line of text" => b"Hello, gzip!\n".to_vec(),
        "every byte value" => (0..=255).collect(),
        "300 KiB of text" => text(300 * KIB),
        "1 MiB of random bytes" => random(MIB),
        "64 KiB of random bytes" => random(64 * KIB),
        "64 KiB + 1 of text" => text(64 * KIB + 1),
        other => unreachable!("no input called {other}"),
    }
}

/// What the `gzip` tool made of [`TOOL_TEXT`] (`gzip -9 tool.txt`): a header with the file's
/// name and time in it, which flate2's encoder never writes.
const TOOL_GZ: &[u8] = b"\
    \x1f\x8b\x08\x08\x25\x7d\x93\x65\x02\x03\x74\x6f\x6f\x6c\x2e\x74\x78\x74\x00\x95\
    \x8c\xb1\x15\x83\x30\x0c\x05\x7b\xa6\xf8\x03\xf0\x28\x52\x66\x07\xba\x2c\x20\xb0\
    \x0c\x0a\xb6\x45\x6c\x91\x00\xd3\xc7\x64\x83\xb4\xf7\xef\x7e\x4f\x8e\x31\x1c\xb0\
    \x99\x31\x9d\xb2\xc2\x54\x43\x8b\xa4\x76\x51\x1f\xc8\xf8\x76\x6f\xc4\x0a\x66\xae\
    \x6a\x46\xa2\xc8\xe5\xa7\x7b\x09\x0c\x4a\x0e\x23\xe5\x2c\x15\x12\x4c\x22\x77\xcd\
    \xa3\x8e\xaf\x4d\xc6\x05\x43\xd6\x4f\x82\xd7\x1d\xcf\x2d\xae\x05\xfa\xae\x0f\x57\
    \x1b\xe8\x3c\xe0\x74\xfa\x53\xfe\x02\xcd\x96\x63\x3b\xae\x00\x00\x00";
const TOOL_TEXT: &str = "Made by the gzip tool, not by flate2:\n\
                         its header names the file and carries a time.\n\
                         The quick brown fox jumps over the lazy dog.\n\
                         The quick brown fox jumps over the lazy dog.\n";

// ---------------------------------------------------------------------------------------------
// Stage 1: gzip_buffered
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::empty("empty")]
#[case::one_byte("one byte")]
#[case::text_line("a line of text")]
#[case::every_byte_value("every byte value")]
#[case::text("300 KiB of text")]
#[case::random("1 MiB of random bytes")]
#[kata_harness::test]
async fn stage1_gzip_buffered_writes_gzip_that_decodes_to_the_input(#[case] case: &str) {
    let dir = TestDir::new();
    let data = input(case);
    let src = dir.write("data", &data);
    let dst = dir.path("data.gz");
    let written = expect_ok(
        &format!("gzip_buffered(data, data.gz) with data = {case}"),
        gzip_buffered(&src, &dst).await,
        &hint(
            "an existing file into a new file in an existing directory",
            STAGE1,
        ),
    );
    let gz = dir.read("data.gz").unwrap_or_else(|| {
        fail(
            "data.gz after gzip_buffered",
            "a file",
            "no file",
            &hint("write the compressed bytes to dst", STAGE1),
        )
    });
    let decoded = decode(
        &format!("data.gz, made from {case}"),
        &gz,
        &hint(FINISH_IT, STAGE1),
    );
    check_bytes(
        &format!("data.gz decoded by flate2 ({case})"),
        &decoded,
        &data,
        &hint("compress every byte of src, in order", STAGE1),
    );
    check_eq(
        "gzip_buffered's result",
        written,
        gz.len() as u64,
        &hint("return the number of bytes written to dst", STAGE1),
    );
    check_no_strays(&dir, &["data", "data.gz"], STAGE1);
}

#[kata_harness::test]
async fn stage1_the_gzip_tool_reads_what_gzip_buffered_writes() {
    let dir = TestDir::new();
    let data = text(200 * KIB);
    let src = dir.write("log.txt", &data);
    let dst = dir.path("log.txt.gz");
    expect_ok(
        "gzip_buffered(log.txt, log.txt.gz)",
        gzip_buffered(&src, &dst).await,
        &hint(
            "an existing file into a new file in an existing directory",
            STAGE1,
        ),
    );
    let Some(decoded) = gzip_tool(&["-d", "-c", &dst.to_string_lossy()]) else {
        return skip_without_gzip("decoding gzip_buffered's output with `gzip -d`");
    };
    let decoded = decoded.unwrap_or_else(|why| {
        fail(
            "`gzip -d -c log.txt.gz`",
            "the tool decodes the file",
            why,
            &hint(
                "write gzip with flate2::write::GzEncoder, and finish() it",
                STAGE1,
            ),
        )
    });
    check_bytes(
        "log.txt.gz decoded by `gzip -d`",
        &decoded,
        &data,
        &hint("compress every byte of src", STAGE1),
    );
}

#[kata_harness::test]
async fn stage1_gzip_buffered_replaces_dst_with_a_rename() {
    let dir = TestDir::new();
    let data = text(100 * KIB);
    let src = dir.write("data", &data);
    let dst = dir.write("data.gz", "an older data.gz");
    // A second name for the old file. Writing dst in place changes what both names show;
    // renaming a new file onto dst leaves the old one, and so this name, alone.
    std::fs::hard_link(&dst, dir.path("old.gz")).expect("cannot make a hard link");
    expect_ok(
        "gzip_buffered(data, data.gz) where data.gz exists",
        gzip_buffered(&src, &dst).await,
        &hint("an existing dst is replaced", STAGE1),
    );
    let gz = dir.read("data.gz").unwrap_or_default();
    check_bytes(
        "data.gz after gzip_buffered, decoded",
        &decode("data.gz after gzip_buffered", &gz, &hint(FINISH_IT, STAGE1)),
        &data,
        &hint("an existing dst is replaced by the new gzip file", STAGE1),
    );
    check_bytes(
        "old.gz (a hard link to the old data.gz) after gzip_buffered",
        &dir.read("old.gz").unwrap_or_default(),
        b"an older data.gz",
        &hint(
            "do not write into dst itself (File::create(dst) truncates it at once): write a \
             temporary file in dst's directory (tempfile::Builder::new().prefix(\".gzip-\")\
             .tempfile_in(dir)) and rename it onto dst when it is complete",
            STAGE1,
        ),
    );
    check_no_strays(&dir, &["data", "data.gz", "old.gz"], STAGE1);
}

#[rstest]
#[case::missing("missing.txt")]
#[case::a_directory("folder")]
#[kata_harness::test]
async fn stage1_a_source_that_cannot_be_read_is_a_read_error(#[case] name: &str) {
    let dir = TestDir::new();
    std::fs::create_dir(dir.path("folder")).expect("cannot create a test directory");
    let src = dir.path(name);
    let dst = dir.write("out.gz", "precious");
    check_error(
        &format!("gzip_buffered({name}, out.gz)"),
        gzip_buffered(&src, &dst).await,
        Kind::Read,
        &src,
        &hint(
            "an error opening or reading src is GzipError::Read { path: src, .. }",
            STAGE1,
        ),
    );
    check_left_alone(
        &dir,
        "out.gz",
        Some(b"precious"),
        &["folder", "out.gz"],
        STAGE1,
    );
}

#[kata_harness::test]
async fn stage1_a_missing_destination_directory_is_a_write_error() {
    let dir = TestDir::new();
    let src = dir.write("data", "some data");
    let dst = dir.path("no-such-dir").join("data.gz");
    check_error(
        "gzip_buffered(data, no-such-dir/data.gz)",
        gzip_buffered(&src, &dst).await,
        Kind::Write,
        &dst,
        &hint(
            "an error creating or writing the output (its temporary file included) is \
             GzipError::Write { path: dst, .. }",
            STAGE1,
        ),
    );
    check_no_strays(&dir, &["data"], STAGE1);
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_gzip_buffered_compresses_off_the_runtime_thread() {
    let dir = TestDir::new();
    let data = text(4 * MIB);
    let src = dir.write("log.txt", &data);
    let dst = dir.path("log.txt.gz");
    // Warm up: the blocking pool starts its first thread.
    let warm_up = dir.write("warm-up", "warm up");
    expect_ok(
        "gzip_buffered(warm-up, ..)",
        gzip_buffered(&warm_up, &dst).await,
        &hint(
            "a valid input into a new file in an existing directory",
            STAGE1,
        ),
    );
    check_compresses_off_the_runtime(&data, "gzip_buffered", || gzip_buffered(&src, &dst), STAGE1)
        .await;
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_gzip_buffered_holds_the_whole_file_in_memory() {
    let dir = TestDir::new();
    let dst = dir.path("out.gz");
    let warm_up = dir.write("warm-up", "warm up");
    expect_ok(
        "gzip_buffered(warm-up, ..)",
        gzip_buffered(&warm_up, &dst).await,
        &hint(
            "a valid input into a new file in an existing directory",
            STAGE1,
        ),
    );
    let mut figures = Vec::new();
    for size in [8 * MIB, 32 * MIB] {
        let name = format!("log-{}MiB.txt", size / MIB);
        let data = &large_log()[..size];
        let (_, report) =
            measured(&dir, (&name, data), |src| gzip_buffered(src, &dst), STAGE1).await;
        figures.push(format!(
            "{} for {}",
            heap::bytes(report.peak_delta as f64),
            heap::bytes(size as f64)
        ));
        if report.peak_delta < size {
            fail(
                &format!("gzip_buffered's peak heap for {}", sized(size, "log lines")),
                format_args!(
                    "at least the input's size, {}: stage 1 reads it all",
                    heap::bytes(size as f64)
                ),
                heap::bytes(report.peak_delta as f64),
                &hint(
                    "stage 1 is the buffered version on purpose: read the whole file \
                     (tokio::fs::read), compress it in memory, write the result; streaming is \
                     stage 2, and the figures of both are the lesson",
                    STAGE1,
                ),
            );
        }
    }
    eprintln!(
        "gzip_buffered: peak heap {}: it grows with the file",
        figures.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: gzip_streaming and gunzip_streaming
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::empty("empty")]
#[case::one_byte("one byte")]
#[case::text_line("a line of text")]
#[case::every_byte_value("every byte value")]
#[case::one_chunk_of_random("64 KiB of random bytes")]
#[case::one_chunk_and_a_byte_of_text("64 KiB + 1 of text")]
#[case::text("300 KiB of text")]
#[case::random("1 MiB of random bytes")]
#[kata_harness::test]
async fn stage2_gzip_and_gunzip_streaming_round_trip(#[case] case: &str) {
    let dir = TestDir::new();
    let data = input(case);
    let src = dir.write("data", &data);
    let gz = dir.path("data.gz");
    let back = dir.path("data.back");
    let written = expect_ok(
        &format!("gzip_streaming(data, data.gz) with data = {case}"),
        gzip_streaming(&src, &gz).await,
        &hint(
            "an existing file into a new file in an existing directory",
            STAGE2,
        ),
    );
    let compressed = dir.read("data.gz").unwrap_or_default();
    let decoded = decode(
        &format!("data.gz, made by gzip_streaming from {case}"),
        &compressed,
        &hint(ONE_STREAM, STAGE2),
    );
    check_bytes(
        &format!("gzip_streaming's data.gz decoded by flate2 ({case})"),
        &decoded,
        &data,
        &hint(
            "every chunk of src goes through the encoder, in order, and the last one too",
            STAGE2,
        ),
    );
    check_eq(
        "gzip_streaming's result",
        written,
        compressed.len() as u64,
        &hint("return the number of bytes written to dst", STAGE2),
    );

    let written = expect_ok(
        &format!("gunzip_streaming(data.gz, data.back) with data = {case}"),
        gunzip_streaming(&gz, &back).await,
        &hint("valid gzip in, the original bytes out", STAGE2),
    );
    check_bytes(
        &format!("data.back, gunzip_streaming's output ({case})"),
        &dir.read("data.back").unwrap_or_default(),
        &data,
        &hint("every decoded byte, in order, the last chunk too", STAGE2),
    );
    check_eq(
        "gunzip_streaming's result",
        written,
        data.len() as u64,
        &hint(
            "return the number of bytes written to dst: the uncompressed size",
            STAGE2,
        ),
    );
    check_no_strays(&dir, &["data", "data.back", "data.gz"], STAGE2);
}

#[kata_harness::test]
async fn stage2_gunzip_streaming_reads_what_the_gzip_tool_writes() {
    let dir = TestDir::new();
    let src = dir.write("tool.txt.gz", TOOL_GZ);
    let dst = dir.path("tool.txt");
    expect_ok(
        "gunzip_streaming(tool.txt.gz, tool.txt), a file `gzip -9` made",
        gunzip_streaming(&src, &dst).await,
        &hint(
            "the gzip tool's header carries the file's name and time: let flate2's decoder \
             parse the whole header rather than skipping a fixed 10 bytes",
            STAGE2,
        ),
    );
    check_bytes(
        "tool.txt, decoded from what `gzip -9` made",
        &dir.read("tool.txt").unwrap_or_default(),
        TOOL_TEXT.as_bytes(),
        &hint("decode with flate2's gzip decoder", STAGE2),
    );

    // A larger file, made by the tool here and now, where there is one.
    let data = text(MIB);
    let plain = dir.write("big.txt", &data);
    let Some(made) = gzip_tool(&["-6", "-c", &plain.to_string_lossy()]) else {
        return skip_without_gzip("decoding 1 MiB that `gzip -6` compresses now");
    };
    let made = made.unwrap_or_else(|why| panic!("the gzip tool failed: {why}"));
    let gz = dir.write("big.txt.gz", made);
    let back = dir.path("big.txt.back");
    expect_ok(
        "gunzip_streaming(big.txt.gz, big.txt.back), 1 MiB of text `gzip -6` made",
        gunzip_streaming(&gz, &back).await,
        &hint("valid gzip in, the original bytes out", STAGE2),
    );
    check_bytes(
        "big.txt.back, decoded from what `gzip -6` made",
        &dir.read("big.txt.back").unwrap_or_default(),
        &data,
        &hint("every decoded byte, in order", STAGE2),
    );
}

#[kata_harness::test]
async fn stage2_the_gzip_tool_reads_what_gzip_streaming_writes() {
    let dir = TestDir::new();
    let data = [text(300 * KIB), random(300 * KIB)].concat();
    let src = dir.write("mixed", &data);
    let dst = dir.path("mixed.gz");
    expect_ok(
        "gzip_streaming(mixed, mixed.gz)",
        gzip_streaming(&src, &dst).await,
        &hint(
            "an existing file into a new file in an existing directory",
            STAGE2,
        ),
    );
    let Some(decoded) = gzip_tool(&["-d", "-c", &dst.to_string_lossy()]) else {
        return skip_without_gzip("decoding gzip_streaming's output with `gzip -d`");
    };
    let decoded = decoded.unwrap_or_else(|why| {
        fail(
            "`gzip -d -c mixed.gz`",
            "the tool decodes the file",
            why,
            &hint(
                "one GzEncoder for the whole file, finished once at the end",
                STAGE2,
            ),
        )
    });
    check_bytes(
        "mixed.gz decoded by `gzip -d`",
        &decoded,
        &data,
        &hint("every chunk of src, in order", STAGE2),
    );
}

#[kata_harness::test]
async fn stage2_gunzip_streaming_decodes_every_member_of_a_file() {
    let dir = TestDir::new();
    let (first, second) = (text(100 * KIB), random(100 * KIB));
    // `cat a.gz b.gz > both.gz` is valid gzip: two members, which decode to a then b.
    let both = [flate2_gzip(&first, 6), flate2_gzip(&second, 1)].concat();
    let src = dir.write("both.gz", both);
    let dst = dir.path("both");
    let written = expect_ok(
        "gunzip_streaming(both.gz, both), both.gz = two gzip files one after the other",
        gunzip_streaming(&src, &dst).await,
        &hint("a gzip file may hold several members", STAGE2),
    );
    let expected = [first, second].concat();
    check_bytes(
        "both, decoded from two gzip members",
        &dir.read("both").unwrap_or_default(),
        &expected,
        &hint(
            "a gzip file is a series of members, and `gzip -d` decodes them all: use flate2's \
             MultiGzDecoder; GzDecoder stops after the first",
            STAGE2,
        ),
    );
    check_eq(
        "gunzip_streaming's result",
        written,
        expected.len() as u64,
        &hint("the bytes written to dst", STAGE2),
    );
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage2_gzip_streaming_memory_does_not_grow_with_the_file() {
    let dir = TestDir::new();
    let dst = dir.path("out.gz");
    let large = large_log();
    let gz = check_constant_memory(
        "gzip_streaming",
        &dir,
        &large[..64 * KIB],
        [
            ("log-8MiB.txt", &large[..8 * MIB]),
            ("log-32MiB.txt", large),
        ],
        &dst,
        |src| gzip_streaming(src, &dst),
    )
    .await;
    let decoded = decode(
        "out.gz, made by gzip_streaming from 32 MiB of log lines",
        &gz,
        &hint(ONE_STREAM, STAGE2),
    );
    check_bytes(
        "out.gz (32 MiB of log lines) decoded by flate2",
        &decoded,
        large,
        &hint("every chunk of src, in order", STAGE2),
    );
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage2_gunzip_streaming_memory_does_not_grow_with_the_file() {
    let dir = TestDir::new();
    let dst = dir.path("out.txt");
    let large = large_log();
    let small_gz = flate2_gzip(&large[..8 * MIB], 1);
    let large_gz = flate2_gzip(large, 1);
    check_constant_memory(
        "gunzip_streaming",
        &dir,
        &flate2_gzip(&large[..64 * KIB], 1),
        [
            ("log-8MiB.txt.gz", &small_gz),
            ("log-32MiB.txt.gz", &large_gz),
        ],
        &dst,
        |src| gunzip_streaming(src, &dst),
    )
    .await;
    check_bytes(
        "out.txt, gunzip_streaming's output for 32 MiB of log lines",
        &std::fs::read(&dst).unwrap_or_default(),
        large,
        &hint("every decoded byte, in order", STAGE2),
    );
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage2_gzip_streaming_compresses_off_the_runtime_thread() {
    let dir = TestDir::new();
    let data = text(4 * MIB);
    let src = dir.write("log.txt", &data);
    let dst = dir.path("log.txt.gz");
    let warm_up = dir.write("warm-up", "warm up");
    expect_ok(
        "gzip_streaming(warm-up, ..)",
        gzip_streaming(&warm_up, &dst).await,
        &hint(
            "a valid input into a new file in an existing directory",
            STAGE2,
        ),
    );
    check_compresses_off_the_runtime(
        &data,
        "gzip_streaming",
        || gzip_streaming(&src, &dst),
        STAGE2,
    )
    .await;
}

/// 512 KiB of text, gzipped by flate2: enough that a decoder has written output before it
/// reaches a problem in the second half.
fn sample_gz() -> Vec<u8> {
    flate2_gzip(&text(512 * KIB), 6)
}

/// Runs gunzip_streaming on `gz` into an existing `out.txt`, and checks the error and that
/// out.txt and the directory are as they were.
async fn check_bad_input(gz: &[u8], what: &str, kind: Kind, why: &str) {
    let dir = TestDir::new();
    let src = dir.write("input.gz", gz);
    let dst = dir.write("out.txt", "precious");
    check_error(
        &format!("gunzip_streaming(input.gz, out.txt) where input.gz is {what}"),
        gunzip_streaming(&src, &dst).await,
        kind,
        &src,
        &hint(why, STAGE2),
    );
    check_left_alone(
        &dir,
        "out.txt",
        Some(b"precious"),
        &["input.gz", "out.txt"],
        STAGE2,
    );
}

#[rstest]
#[case::empty(b"", "an empty file")]
#[case::one_byte(b"\x1f", "the single byte 1f")]
#[case::text(b"just some text, not compressed\n", "plain text")]
#[case::zip(b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "the start of a zip file")]
#[case::near_miss(b"\x1f\x8c\x08\x00\x00\x00\x00\x00\x00\x03", "1f 8c, one bit off gzip")]
#[kata_harness::test]
async fn stage2_input_that_is_not_gzip_is_not_gzip(#[case] bytes: &[u8], #[case] what: &str) {
    check_bad_input(
        bytes,
        what,
        Kind::NotGzip,
        "input that does not start with the gzip magic bytes 1f 8b (an empty file included) is \
         GzipError::NotGzip: check the first two bytes yourself, before decoding; flate2 calls \
         them an \"invalid gzip header\", like any other bad header",
    )
    .await;
}

#[rstest]
#[case::after_the_magic_bytes(|_| 2, "its first 2 bytes (1f 8b)")]
#[case::in_the_header(|_| 6, "its first 6 bytes (half a header)")]
#[case::in_the_data(|len| len / 2, "its first half")]
#[case::before_the_trailer(|len| len - 8, "all but its 8-byte trailer")]
#[case::one_byte_short(|len| len - 1, "all but its last byte")]
#[kata_harness::test]
async fn stage2_truncated_input_is_truncated(#[case] keep: fn(usize) -> usize, #[case] what: &str) {
    let gz = sample_gz();
    check_bad_input(
        &gz[..keep(gz.len())],
        &format!("a gzip file cut short: {what}"),
        Kind::Truncated,
        "input that ends before its gzip stream does is GzipError::Truncated, not a success with \
         part of the data: flate2's decoders report it as an io::Error of kind UnexpectedEof",
    )
    .await;
}

/// Ways to damage a gzip file, for the corrupt-input cases.
fn overwrite_the_middle(mut gz: Vec<u8>) -> Vec<u8> {
    let middle = gz.len() / 2;
    gz[middle..middle + 64].fill(0xff);
    gz
}
fn change_the_crc(mut gz: Vec<u8>) -> Vec<u8> {
    let at = gz.len() - 8;
    gz[at] ^= 0xff;
    gz
}
fn change_the_length(mut gz: Vec<u8>) -> Vec<u8> {
    let at = gz.len() - 4;
    gz[at] ^= 1;
    gz
}
fn change_the_method(mut gz: Vec<u8>) -> Vec<u8> {
    gz[2] = 7; // 8 is deflate, the only method gzip has
    gz
}
fn append_garbage(gz: Vec<u8>) -> Vec<u8> {
    [gz, b"this is not gzip".to_vec()].concat()
}

#[rstest]
#[case::bad_data(overwrite_the_middle, "damaged compressed data (64 bytes overwritten)")]
#[case::bad_crc(change_the_crc, "a CRC-32 that does not match")]
#[case::bad_length(change_the_length, "a length that does not match")]
#[case::bad_method(change_the_method, "an unknown compression method in the header")]
#[case::trailing_garbage(append_garbage, "bytes that are not gzip after the end of the stream")]
#[kata_harness::test]
async fn stage2_corrupt_input_is_corrupt(
    #[case] damage: fn(Vec<u8>) -> Vec<u8>,
    #[case] what: &str,
) {
    check_bad_input(
        &damage(sample_gz()),
        &format!("gzip with {what}"),
        Kind::Corrupt,
        "gzip data the decoder rejects (bad compressed data, a bad header, a checksum or length \
         that does not match, anything after the last member) is GzipError::Corrupt with the \
         decoder's message as the reason: flate2 reports these as io::Errors of kind \
         InvalidInput",
    )
    .await;
}

#[rstest]
#[case::gzip_a_missing_file("gzip_streaming", "missing.txt")]
#[case::gzip_a_directory("gzip_streaming", "folder")]
#[case::gunzip_a_missing_file("gunzip_streaming", "missing.txt")]
#[case::gunzip_a_directory("gunzip_streaming", "folder")]
#[kata_harness::test]
async fn stage2_a_source_that_cannot_be_read_is_a_read_error(
    #[case] function: &str,
    #[case] name: &str,
) {
    let dir = TestDir::new();
    std::fs::create_dir(dir.path("folder")).expect("cannot create a test directory");
    let src = dir.path(name);
    let dst = dir.write("out", "precious");
    let result = streaming(function, &src, &dst).await;
    check_error(
        &format!("{function}({name}, out)"),
        result,
        Kind::Read,
        &src,
        &hint(
            "an error opening or reading src is GzipError::Read { path: src, .. }. A directory \
             opens, and fails at the first read: the reader stage's error then comes first, \
             before whatever the (de)compressor made of an input that ended at once",
            STAGE2,
        ),
    );
    check_left_alone(&dir, "out", Some(b"precious"), &["folder", "out"], STAGE2);
}

#[rstest]
#[case::gzip("gzip_streaming")]
#[case::gunzip("gunzip_streaming")]
#[kata_harness::test]
async fn stage2_dst_is_replaced_with_a_rename(#[case] function: &str) {
    let dir = TestDir::new();
    let data = text(200 * KIB);
    let gzipping = function == "gzip_streaming";
    let src = dir.write(
        "input",
        if gzipping {
            data.clone()
        } else {
            flate2_gzip(&data, 6)
        },
    );
    let dst = dir.write("output", "an older output");
    std::fs::hard_link(&dst, dir.path("old")).expect("cannot make a hard link");
    expect_ok(
        &format!("{function}(input, output) where output exists"),
        streaming(function, &src, &dst).await,
        &hint("an existing dst is replaced", STAGE2),
    );
    let mut output = dir.read("output").unwrap_or_default();
    if gzipping {
        output = decode(
            "output after gzip_streaming",
            &output,
            &hint(ONE_STREAM, STAGE2),
        );
    }
    check_bytes(
        &format!("output after {function} (decoded if gzip)"),
        &output,
        &data,
        &hint("an existing dst is replaced by the new file", STAGE2),
    );
    check_bytes(
        &format!("old (a hard link to the old output) after {function}"),
        &dir.read("old").unwrap_or_default(),
        b"an older output",
        &hint(
            "never write into dst itself: write a temporary file in dst's directory and \
             rename it onto dst once the whole stream has been written and flushed",
            STAGE2,
        ),
    );
    check_no_strays(&dir, &["input", "old", "output"], STAGE2);
}

#[rstest]
#[case::gzip("gzip_streaming")]
#[case::gunzip("gunzip_streaming")]
#[kata_harness::test(real_time, watchdog_secs = 30)]
async fn stage2_a_call_dropped_half_way_leaves_dst_alone(#[case] function: &str) {
    // On the real clock: a timeout is how callers give up, and it must fire mid-stream, which
    // the paused clock would not do while the blocking pool is at work.
    const GIVE_UP: Duration = Duration::from_millis(10);
    let dir = TestDir::new();
    let large = large_log();
    let input = match function {
        "gzip_streaming" => large.to_vec(),
        _ => flate2_gzip(large, 1),
    };
    let src = dir.write("input", input);
    let dst = dir.write("output", "precious");
    let what =
        format!("{function}(input, output), 32 MiB of log lines, given up after {GIVE_UP:?}");
    if let Ok(result) = tokio::time::timeout(GIVE_UP, streaming(function, &src, &dst)).await {
        fail(
            &what,
            "still running when the caller gives up (32 MiB take longer than that, even in \
             release)",
            format_args!("finished: {result:?}"),
            &hint("stream all 32 MiB", STAGE2),
        );
    }
    // Time for anything left behind to finish, or to do damage.
    tokio::time::sleep(Duration::from_millis(300)).await;
    check_left_alone_after(
        &dir,
        ("output", Some(b"precious")),
        &["input", "output"],
        &format!("{function} was dropped half way"),
        &hint(
            "dropping the future must stop the work and delete the temporary file: keep the \
             TempPath in the future (dropping it deletes the file) and run the reader and \
             writer inside it (tokio::join!), not as detached tokio::spawn tasks that carry on \
             and rename onto dst after the caller gave up",
            STAGE2,
        ),
    );
}

#[rstest]
#[case::gzip("gzip_streaming")]
#[case::gunzip("gunzip_streaming")]
#[kata_harness::test]
async fn stage2_a_missing_destination_directory_is_a_write_error(#[case] function: &str) {
    let dir = TestDir::new();
    let src = dir.write("input.gz", flate2_gzip(b"some data", 6));
    let dst = dir.path("no-such-dir").join("output");
    let result = streaming(function, &src, &dst).await;
    check_error(
        &format!("{function}(input.gz, no-such-dir/output)"),
        result,
        Kind::Write,
        &dst,
        &hint(
            "an error creating or writing the output (its temporary file included) is \
             GzipError::Write { path: dst, .. }",
            STAGE2,
        ),
    );
    check_no_strays(&dir, &["input.gz"], STAGE2);
}
