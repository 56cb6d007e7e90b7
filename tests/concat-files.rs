//! The concat-files kata's suite, run against both `exercises/concat-files` and
//! `solutions/concat-files`.
//!
//! Stage 1 works on real files in a fresh temporary directory per test; reports name them by
//! their name in it. Every call is checked three ways: what `dst` holds afterwards (byte for byte),
//! what the call returned, and what the directory holds (so a temporary file left behind shows
//! up). The tests reject the usual wrong answers: sources sorted or dropped, a file read whole, an
//! existing `dst` overwritten in place (and so left half written, or truncated, by an error), a
//! temporary file left behind, a `dst` that loses its permissions or its symbolic link, and
//! errors that are not typed or do not name the path.
//!
//! Stage 2 drives `concat_read_ahead` with test doubles on the paused clock: sources that take an
//! exact (virtual) time to read, a destination that records what arrived and when. It checks the
//! schedule to the millisecond (how far reading runs ahead, and that a source keeps its place
//! until it is written), the order of the bytes, the memory a fast source may take while it
//! waits its turn, and that errors and cancellation stop every reader.

kata_harness::install_allocator!();

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use concat_files::{ConcatError, concat_files, concat_read_ahead};
use kata_harness::completion::completes_within;
use kata_harness::files::TestDir;
use kata_harness::heap::{self, HeapReport};
use kata_harness::leaks::{DropProbe, DropToken, TaskBaseline};
use kata_harness::ms;
use kata_harness::report::{check_eq, fail};
use kata_harness::timing::{Timeline, assert_schedule};
use rstest::rstest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const STAGE1: &str = "exercises/concat-files/README.md, stage 1";
const STAGE2: &str = "exercises/concat-files/README.md, stage 2";

/// Long enough for any call here: one still running after this never ends.
const PATIENCE: Duration = Duration::from_secs(60);

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// `text`, then where to read more about it.
fn hint(text: &str, stage: &str) -> String {
    format!("{text} ({stage})")
}

// ---------------------------------------------------------------------------------------------
// TestDir, data and how a call is observed
// ---------------------------------------------------------------------------------------------

/// `paths` as a report shows them: their names in the test directory.
fn names(files: &TestDir, paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|path| files.name(path)).collect();
    format!("[{}]", names.join(", "))
}

/// Bytes as a report shows them: short text as text, anything else by its size.
fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.len() <= 80 => format!("{text:?}"),
        _ => format!("{} bytes", bytes.len()),
    }
}

/// Fails unless `actual` is `expected`, byte for byte; says where they first differ.
#[track_caller]
fn check_bytes(what: &str, actual: Option<&[u8]>, expected: Option<&[u8]>, hint: &str) {
    if actual == expected {
        return;
    }
    let describe = |bytes: Option<&[u8]>| bytes.map_or_else(|| "no file".to_owned(), show);
    let detail = match (actual, expected) {
        (Some(actual), Some(expected)) => {
            let first = actual.iter().zip(expected).position(|(a, e)| a != e);
            match first {
                Some(at) => format!(
                    ", first difference at byte {at} (0x{:02x} where 0x{:02x} was expected)",
                    actual[at], expected[at]
                ),
                None if actual.len() < expected.len() => {
                    format!(", the first {} bytes right, then it ends", actual.len())
                }
                None => format!(", the {} bytes expected, then more", expected.len()),
            }
        }
        _ => String::new(),
    };
    fail(
        what,
        describe(expected),
        format_args!("{}{detail}", describe(actual)),
        hint,
    );
}

/// A repeatable pseudo-random byte stream (xorshift), for data with no structure to hide behind.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `size` bytes of pseudo-random data to `name`: one random block, repeated with its
/// number stamped on each copy, so a chunk out of place is a difference too.
fn write_large(files: &TestDir, name: &str, size: usize, seed: u64) -> PathBuf {
    const BLOCK: usize = 64 * KIB;
    let mut block = random_bytes(seed, BLOCK);
    let path = files.path(name);
    let mut out = std::fs::File::create(&path).expect("cannot create a test file");
    for number in 0..size.div_ceil(BLOCK) {
        block[..8].copy_from_slice(&(number as u64).to_le_bytes());
        let len = BLOCK.min(size - number * BLOCK);
        out.write_all(&block[..len])
            .expect("cannot write a test file");
    }
    path
}

/// Runs `concat_files(sources, dst)`, failing the test (instead of hanging) if it never returns.
async fn concat(files: &TestDir, sources: &[PathBuf], dst: &Path) -> Result<u64, ConcatError> {
    let what = format!(
        "concat_files({}, {})",
        names(files, sources),
        files.name(dst)
    );
    completes_within(
        PATIENCE,
        &what,
        &hint(
            "every source is a file on disk: the call must finish once they are copied",
            STAGE1,
        ),
        concat_files(sources, dst),
    )
    .await
}

/// Concatenates `sources` into `dst` and checks everything: `dst` holds exactly the sources in
/// order, the call returned their size, and the directory holds no more than before plus `dst`.
async fn check_concat(files: &TestDir, sources: &[PathBuf], dst: &Path, hint: &str) {
    let expected: Vec<u8> = sources
        .iter()
        .flat_map(|path| TestDir::contents(path).expect("cannot read a test file"))
        .collect();
    let mut listing = files.listing();
    if !listing.contains(&files.name(dst)) {
        listing.push(files.name(dst));
        listing.sort();
    }
    let call = format!(
        "concat_files({}, {})",
        names(files, sources),
        files.name(dst)
    );

    let written = match concat(files, sources, dst).await {
        Ok(written) => written,
        Err(error) => fail(
            &call,
            format_args!("Ok({})", expected.len()),
            format_args!("Err({}): {error}", files.short(&error)),
            hint,
        ),
    };
    check_bytes(
        &format!("{} after {call}", files.name(dst)),
        TestDir::contents(dst).as_deref(),
        Some(&expected),
        hint,
    );
    check_eq(
        &format!("the bytes written, as {call} returned them"),
        written,
        expected.len() as u64,
        &self::hint(
            "return the number of bytes written to dst: the sum of the sources' sizes",
            STAGE1,
        ),
    );
    check_eq(
        &format!("the files in the directory after {call}"),
        files.listing(),
        listing,
        &self::hint(
            "the sources and dst, nothing else: the temporary file must become dst (a rename), \
             not stay beside it",
            STAGE1,
        ),
    );
}

/// Runs `concat_files` expecting an error that `is_expected` accepts (described by `expected`),
/// then checks that nothing changed: `dst` byte for byte, and the directory's listing.
async fn expect_error(
    files: &TestDir,
    sources: &[PathBuf],
    dst: &Path,
    expected: &str,
    is_expected: impl FnOnce(&ConcatError) -> bool,
    hint: &str,
) -> ConcatError {
    let before = TestDir::contents(dst);
    let listing = files.listing();
    let call = format!(
        "concat_files({}, {})",
        names(files, sources),
        files.name(dst)
    );

    let error = match concat(files, sources, dst).await {
        Err(error) if is_expected(&error) => error,
        Err(error) => fail(
            &call,
            expected,
            format_args!("Err({}): {error}", files.short(&error)),
            hint,
        ),
        Ok(written) => fail(&call, expected, format_args!("Ok({written})"), hint),
    };
    let untouched = self::hint(
        "on an error dst must be exactly what it was, or still absent: check what you can \
         before writing anything, write into a temporary file beside dst and rename it onto dst \
         only when everything was copied",
        STAGE1,
    );
    check_bytes(
        &format!(
            "{} after {call} failed ({})",
            files.name(dst),
            if before.is_some() {
                "it existed before"
            } else {
                "it did not exist before"
            }
        ),
        TestDir::contents(dst).as_deref(),
        before.as_deref(),
        &untouched,
    );
    check_eq(
        &format!("the files in the directory after {call} failed"),
        files.listing(),
        listing,
        &self::hint(
            "the same files as before: no temporary file left behind (remove it on every error; \
             tempfile's NamedTempFile and TempPath do that when they are dropped)",
            STAGE1,
        ),
    );
    error
}

/// Fails unless the error's message names `path`, as the given `#[error(..)]` texts do.
#[track_caller]
fn check_message_names(files: &TestDir, error: &ConcatError, path: &Path, stage: &str) {
    let message = error.to_string();
    if !message.contains(&path.display().to_string()) {
        fail(
            "the error's message",
            format_args!("a message that names {}", files.name(path)),
            format_args!("{:?}", files.short(&message).trim_matches('"')),
            &hint("keep the #[error(...)] texts of ConcatError", stage),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 1: concat_files copies the sources in order, streaming, and never breaks dst
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::one_source(1)]
#[case::two_sources(2)]
#[case::a_hundred_sources(100)]
#[kata_harness::test]
async fn stage1_copies_the_sources_in_argument_order(#[case] count: usize) {
    let files = TestDir::new();
    // Given in an order that is neither sorted nor the order they were created in.
    let sources: Vec<PathBuf> = (0..count)
        .map(|i| (i * 37 + count / 2) % count)
        .map(|n| files.write(&format!("{n:03}.txt"), format!("source {n:03}\n")))
        .collect();
    let dst = files.path("out.txt");
    check_concat(
        &files,
        &sources,
        &dst,
        &hint(
            "copy every source, in the order given (not sorted, not in parallel), each exactly \
             once",
            STAGE1,
        ),
    )
    .await;
}

#[kata_harness::test]
async fn stage1_empty_sources_add_nothing() {
    let files = TestDir::new();
    let empty = files.write("empty.txt", "");
    let other = files.write("other-empty.txt", "");
    let x = files.write("x.txt", "x");
    check_concat(
        &files,
        &[empty.clone(), x, other.clone()],
        &files.path("some.txt"),
        &hint("an empty source adds nothing, and is no error", STAGE1),
    )
    .await;
    check_concat(
        &files,
        &[empty, other],
        &files.path("none.txt"),
        &hint(
            "only empty sources: dst is created, empty, and 0 bytes were written",
            STAGE1,
        ),
    )
    .await;
}

#[kata_harness::test]
async fn stage1_binary_data_is_copied_byte_for_byte() {
    let files = TestDir::new();
    // Every byte value (NUL, \r, \n, bytes that are not UTF-8), then sizes that are no multiple of
    // any buffer size: a chunk written whole instead of as far as it was filled shows up.
    let every_byte: Vec<u8> = (0..=255_u8).cycle().take(256 * 257 + 13).collect();
    let sources = [
        files.write("every-byte.bin", &every_byte),
        files.write("random.bin", random_bytes(1, 200_003)),
        files.write("nul.bin", [0]),
        files.write("two-chunks-and-one.bin", random_bytes(2, 2 * 64 * KIB + 1)),
    ];
    check_concat(
        &files,
        &sources,
        &files.path("out.bin"),
        &hint(
            "copy bytes, not text (no lines, no UTF-8), and of each read write exactly the bytes \
             it gave: &buf[..n]",
            STAGE1,
        ),
    )
    .await;
}

#[kata_harness::test]
async fn stage1_a_source_given_twice_is_copied_twice() {
    let files = TestDir::new();
    let a = files.write("a.txt", "A\n");
    let b = files.write("b.txt", "B\n");
    check_concat(
        &files,
        &[a.clone(), b, a],
        &files.path("out.txt"),
        &hint(
            "every argument is copied where it stands, duplicates included",
            STAGE1,
        ),
    )
    .await;
}

#[kata_harness::test]
async fn stage1_an_existing_destination_is_replaced() {
    let files = TestDir::new();
    let a = files.write("a.txt", "new\n");
    let dst = files.write("out.txt", "an old and much longer content\n".repeat(100));
    check_concat(
        &files,
        &[a],
        &dst,
        &hint(
            "dst is replaced whole: none of its old content stays (not even past the end of the \
             new one)",
            STAGE1,
        ),
    )
    .await;
}

#[cfg(unix)]
#[kata_harness::test]
async fn stage1_the_destination_gets_the_usual_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("cannot read a test file's metadata")
            .permissions()
            .mode()
            & 0o777
    };
    let files = TestDir::new();
    let a = files.write("a.txt", "a\n");
    // What a new file gets here: 0o666 less the umask, as File::create (and `cat > dst`) give.
    let usual = mode(&files.write("made-by-file-create.txt", ""));

    let new = files.path("new.txt");
    let copy_hint = hint("dst is the sources, in order", STAGE1);
    check_concat(&files, std::slice::from_ref(&a), &new, &copy_hint).await;
    check_eq(
        "the permissions of a new dst",
        format!("{:o}", mode(&new)),
        format!("{usual:o}"),
        &hint(
            "a new dst gets the permissions File::create would give it: tempfile makes its files \
             private (0o600), so ask its Builder for 0o666 (the umask takes its part, as for \
             any new file)",
            STAGE1,
        ),
    );

    let existing = files.write("existing.txt", "old\n");
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640))
        .expect("cannot set a test file's permissions");
    check_concat(&files, &[a], &existing, &copy_hint).await;
    check_eq(
        "the permissions of an existing dst (0o640 before)",
        format!("{:o}", mode(&existing)),
        "640".to_owned(),
        &hint(
            "a rename puts a new file in dst's place, with the temporary file's permissions: \
             give it the old dst's permissions first (set_permissions with its metadata's)",
            STAGE1,
        ),
    );
}

#[cfg(unix)]
#[kata_harness::test]
async fn stage1_a_destination_that_is_a_symlink_stays_one() {
    let files = TestDir::new();
    let a = files.write("a.txt", "new\n");
    let real = files.write("real.txt", "old\n");
    let link = files.path("link.txt");
    std::os::unix::fs::symlink(&real, &link).expect("cannot make a symbolic link");

    check_concat(
        &files,
        &[a],
        &link,
        &hint(
            "dst is a symbolic link: the file it points to gets the content",
            STAGE1,
        ),
    )
    .await;
    let still_a_link = std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
    check_eq(
        "link.txt (a symbolic link to real.txt) after concat_files([a.txt], link.txt)",
        if still_a_link {
            "a symbolic link"
        } else {
            "a regular file"
        },
        "a symbolic link",
        &hint(
            "renaming onto a symbolic link replaces the link itself: rename onto the file it \
             points to (tokio::fs::canonicalize(dst) gives it), and create the temporary file \
             in that file's directory",
            STAGE1,
        ),
    );
    check_bytes(
        "real.txt (the link's target)",
        TestDir::contents(&real).as_deref(),
        Some(b"new\n"),
        &hint("the file the link points to gets the new content", STAGE1),
    );
}

/// Makes a named pipe with the `mkfifo` command; `false` where there is none.
#[cfg(unix)]
fn mkfifo(path: &Path) -> bool {
    std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|status| status.success())
}

/// Feeds the named pipe `pipe` from a thread: `first` (far more than a pipe holds, so the write
/// returns only once `copy` has read most of it), then, once it has checked that `dst` is still
/// `old`, `last` and the end of the pipe.
#[cfg(unix)]
async fn look_while_the_pipe_is_half_read(
    files: &TestDir,
    pipe: &Path,
    dst: &Path,
    first: Vec<u8>,
    last: Vec<u8>,
    copy: &mut tokio::task::JoinHandle<Result<u64, ConcatError>>,
    old: &str,
) {
    let (first_written, mut first_written_rx) = tokio::sync::oneshot::channel();
    let (go_on, go_on_rx) = std::sync::mpsc::channel::<()>();
    let path = pipe.to_owned();
    std::thread::spawn(move || {
        let mut first_written = Some(first_written);
        // Opening blocks until a reader opens the pipe. A reader that opens it only to close it
        // again (to check it) breaks the pipe: start over for the next one.
        for _ in 0..3 {
            let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&path) else {
                return;
            };
            if writer.write_all(&first).is_ok() {
                if let Some(written) = first_written.take() {
                    let _ = written.send(());
                }
                let _ = go_on_rx.recv();
                let _ = writer.write_all(&last);
                return;
            }
        }
    });

    let early = completes_within(
        PATIENCE,
        "concat_files([a.txt, pipe], out.txt) reading the pipe",
        &hint("read every source to its end, the pipe too", STAGE1),
        async {
            tokio::select! {
                _ = &mut first_written_rx => None,
                result = &mut *copy => Some(result),
            }
        },
    )
    .await;
    if let Some(result) = early {
        let result = result.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        fail(
            "concat_files([a.txt, pipe], out.txt) with the pipe still open",
            "to be still reading the pipe (a named pipe, which ends when its writer closes it)",
            format_args!("it returned {}", files.short(&result)),
            &hint(
                "a named pipe is a source like any other: only a directory is refused; read it \
                 until it ends",
                STAGE1,
            ),
        );
    }

    // concat_files has copied a.txt and most of the pipe's first part by now.
    check_bytes(
        "out.txt while concat_files is still copying (a.txt done, the pipe half read)",
        TestDir::contents(dst).as_deref(),
        Some(old.as_bytes()),
        &hint(
            "dst must stay the old file, whole, until everything has been copied, then be \
             replaced at once: write into a temporary file beside dst and rename it onto dst at \
             the end",
            STAGE1,
        ),
    );
    let _ = go_on.send(());
}

#[cfg(unix)]
#[kata_harness::test]
async fn stage1_the_destination_is_never_half_written() {
    const OLD: &str = "the old content, which must stay whole until the new one is complete\n";
    let files = TestDir::new();
    let a = files.write("a.txt", "the first source\n");
    let dst = files.write("out.txt", OLD);
    // A named pipe as the second source: it gives what the test writes into it, when the test
    // writes it, so the test can look at dst while concat_files is in the middle of its work.
    let pipe = files.path("pipe");
    let first_part = random_bytes(3, MIB);
    let last_part = b"the end of the pipe\n".to_vec();
    let is_pipe = mkfifo(&pipe);
    if !is_pipe {
        // No `mkfifo` on this system: a plain file stands in, and only the result is checked.
        files.write("pipe", [first_part.as_slice(), &last_part].concat());
    }
    let mut expected = TestDir::contents(&a).unwrap_or_default();
    expected.extend_from_slice(&first_part);
    expected.extend_from_slice(&last_part);

    let sources = vec![a, pipe.clone()];
    let target = dst.clone();
    let mut copy = tokio::spawn(async move { concat_files(&sources, &target).await });
    if is_pipe {
        look_while_the_pipe_is_half_read(
            &files, &pipe, &dst, first_part, last_part, &mut copy, OLD,
        )
        .await;
    }
    let result = completes_within(
        PATIENCE,
        "concat_files([a.txt, pipe], out.txt) once the pipe is closed",
        &hint("read every source to its end, the pipe too", STAGE1),
        copy,
    )
    .await
    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
    check_eq(
        "concat_files([a.txt, pipe], out.txt)",
        files.short(&result),
        format!("Ok({})", expected.len()),
        &hint("a named pipe is a source like any other", STAGE1),
    );
    check_bytes(
        "out.txt after concat_files([a.txt, pipe], out.txt)",
        TestDir::contents(&dst).as_deref(),
        Some(&expected),
        &hint("dst is a.txt, then everything the pipe gave", STAGE1),
    );
}

/// Concatenates `sources` into `dst` under a heap measurement, then checks the result.
async fn measured_concat(files: &TestDir, sources: &[PathBuf], dst: &Path) -> HeapReport {
    let (result, report) = heap::measure_async(concat(files, sources, dst)).await;
    let call = format!(
        "concat_files({}, {})",
        names(files, sources),
        files.name(dst)
    );
    let written = result.unwrap_or_else(|error| {
        fail(
            &call,
            "Ok(..)",
            format_args!("Err({}): {error}", files.short(&error)),
            &hint("large files are files like any other", STAGE1),
        )
    });
    // Checked piece by piece, to keep the test's own memory and time small.
    let output = TestDir::contents(dst).unwrap_or_default();
    let mut at = 0;
    for source in sources {
        let data = TestDir::contents(source).expect("cannot read a test file");
        let end = (at + data.len()).min(output.len());
        check_bytes(
            &format!(
                "bytes {at}..{} of {} ({} there)",
                at + data.len(),
                files.name(dst),
                files.name(source)
            ),
            Some(&output[at..end]),
            Some(&data),
            &hint("large files are copied whole and in order too", STAGE1),
        );
        at += data.len();
    }
    check_eq(
        &format!("the bytes written, as {call} returned them"),
        written,
        output.len() as u64,
        &hint("return the number of bytes written to dst", STAGE1),
    );
    report
}

#[kata_harness::test(watchdog_secs = 20)]
async fn stage1_memory_does_not_grow_with_file_size() {
    // 2 MiB: room for a few chunks per source being read, whatever their size up to 128 KiB
    // (the reference peaks near 1.3 MiB: two sources being read, each with its file's buffer,
    // the chunk being filled and two in its channel, then the chunk being written and the output
    // file's buffer, all of 128 KiB), and a twenty-fourth of the 48 MiB being copied, so a file
    // read whole cannot fit.
    const LIMIT: usize = 2 * MIB;
    // "About the same" for 4 times the data: the peak may move by a chunk or two as the blocking
    // pool's threads come and go, but not by the 36 MiB more that is copied.
    const SAME: usize = 256 * KIB;
    let files = TestDir::new();
    let warm_up: Vec<PathBuf> = (0..3)
        .map(|i| write_large(&files, &format!("warm-up-{i}.bin"), 256 * KIB, i))
        .collect();
    let small: Vec<PathBuf> = (0..3)
        .map(|i| write_large(&files, &format!("small-{i}.bin"), 4 * MIB, 10 + i))
        .collect();
    let large: Vec<PathBuf> = (0..3)
        .map(|i| write_large(&files, &format!("large-{i}.bin"), 16 * MIB, 20 + i))
        .collect();

    // Warm up: the first copy starts the blocking pool's threads and builds lazily-initialised
    // statics that stay; they are not the copy's to pay for.
    measured_concat(&files, &warm_up, &files.path("warm-up.out")).await;
    let small_heap = measured_concat(&files, &small, &files.path("small.out")).await;
    let large_heap = measured_concat(&files, &large, &files.path("large.out")).await;
    eprintln!("peak heap: 3 x 4 MiB {small_heap:?}, 3 x 16 MiB {large_heap:?}");

    let whole = "copy in chunks, each written before the next is read (tokio::io::copy does it \
                 with a small buffer): tokio::fs::read, read_to_end or a buffer the size of the \
                 file hold the whole file in memory at once";
    heap::assert_peak_below(
        "concatenating 3 files of 16 MiB",
        large_heap,
        LIMIT,
        &hint(whole, STAGE1),
    );
    heap::assert_peak_independent(
        "concatenating 3 files",
        ("3 x 4 MiB", small_heap),
        ("3 x 16 MiB", large_heap),
        SAME,
        &hint(whole, STAGE1),
    );
}

// Errors: typed, naming the path, and nothing changed.

#[rstest]
#[case::dst_absent(false)]
#[case::dst_present(true)]
#[kata_harness::test]
async fn stage1_no_sources_is_an_error(#[case] dst_exists: bool) {
    let files = TestDir::new();
    let dst = if dst_exists {
        files.write("out.txt", "keep me\n")
    } else {
        files.path("out.txt")
    };
    expect_error(
        &files,
        &[],
        &dst,
        "Err(NoSources)",
        |error| matches!(error, ConcatError::NoSources),
        &hint(
            "with no sources there is nothing to concatenate: Err(ConcatError::NoSources), \
             before touching dst",
            STAGE1,
        ),
    )
    .await;
}

#[rstest]
#[case::first(0, true)]
#[case::in_the_middle(1, true)]
#[case::last(2, true)]
#[case::in_the_middle_and_no_dst_yet(1, false)]
#[kata_harness::test]
async fn stage1_a_missing_source_is_an_error_naming_it(
    #[case] position: usize,
    #[case] dst_exists: bool,
) {
    let files = TestDir::new();
    let mut sources = vec![
        files.write("a.txt", "A\n".repeat(1000)),
        files.write("b.txt", "B\n".repeat(1000)),
    ];
    let missing = files.path("missing.txt");
    sources.insert(position, missing.clone());
    let dst = if dst_exists {
        files.write("out.txt", "keep me\n")
    } else {
        files.path("out.txt")
    };
    let error = expect_error(
        &files,
        &sources,
        &dst,
        "Err(Source { path: missing.txt, .. })",
        |error| matches!(error, ConcatError::Source { path, .. } if *path == missing),
        &hint(
            "a source that does not exist is Err(ConcatError::Source { path, source }) with its \
             path as given and the io::Error",
            STAGE1,
        ),
    )
    .await;
    check_message_names(&files, &error, &missing, STAGE1);
}

/// A file the test cannot read, where the system enforces that (not for root, who reads
/// everything): `None` where it does not.
fn locked_file(files: &TestDir, name: &str) -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = files.write(name, "locked\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).ok()?;
        std::fs::File::open(&path).is_err().then_some(path)
    }
    #[cfg(not(unix))]
    {
        let _ = (files, name);
        None
    }
}

#[kata_harness::test]
async fn stage1_a_source_that_cannot_be_read_is_an_error_naming_it() {
    let files = TestDir::new();
    let a = files.write("a.txt", "A\n");
    let folder = files.mkdir("folder");
    let dst = files.write("out.txt", "keep me\n");
    let error = expect_error(
        &files,
        &[a.clone(), folder.clone()],
        &dst,
        "Err(Source { path: folder, .. })",
        |error| matches!(error, ConcatError::Source { path, .. } if *path == folder),
        &hint(
            "a directory is no source: Err(ConcatError::Source { path, .. }) naming it \
             (io::ErrorKind::IsADirectory says why); tokio::fs::metadata tells a directory",
            STAGE1,
        ),
    )
    .await;
    check_message_names(&files, &error, &folder, STAGE1);

    if let Some(locked) = locked_file(&files, "locked.txt") {
        expect_error(
            &files,
            &[a, locked.clone()],
            &dst,
            "Err(Source { path: locked.txt, .. })",
            |error| matches!(error, ConcatError::Source { path, .. } if *path == locked),
            &hint(
                "a source you may not read is Err(ConcatError::Source { path, .. }) naming it",
                STAGE1,
            ),
        )
        .await;
    }
}

#[cfg(target_os = "linux")]
#[kata_harness::test]
async fn stage1_a_source_that_fails_while_being_copied_changes_nothing() {
    let files = TestDir::new();
    let a = files.write("a.txt", random_bytes(4, 256 * KIB));
    let b = files.write("b.txt", "B\n");
    // A source that exists, is a regular file and opens fine, and whose first read fails: this
    // process's own memory, read at address 0, which is never mapped. Nothing checked before
    // copying can tell; the error comes after a.txt has been copied.
    let broken = PathBuf::from("/proc/self/mem");
    let dst = files.write("out.txt", "keep me\n");
    let error = expect_error(
        &files,
        &[a, broken.clone(), b],
        &dst,
        "Err(Source { path: /proc/self/mem, .. })",
        |error| matches!(error, ConcatError::Source { path, .. } if *path == broken),
        &hint(
            "a read that fails while copying is Err(ConcatError::Source { path, .. }) naming \
             that source; what was copied so far is thrown away with the temporary file",
            STAGE1,
        ),
    )
    .await;
    check_message_names(&files, &error, &broken, STAGE1);
}

#[rstest]
#[case::the_same_path("same")]
#[case::another_spelling_of_it("spelling")]
#[case::a_symlink_to_it("symlink")]
#[kata_harness::test]
async fn stage1_the_destination_cannot_be_one_of_the_sources(#[case] how: &str) {
    let files = TestDir::new();
    let a = files.write("a.txt", "A\n");
    let dst = files.write("out.txt", "keep me\n");
    let source = match how {
        "spelling" => {
            files.mkdir("sub");
            files.path("sub/../out.txt")
        }
        #[cfg(unix)]
        "symlink" => {
            let link = files.path("link-to-out.txt");
            std::os::unix::fs::symlink(&dst, &link).expect("cannot make a symbolic link");
            link
        }
        _ => dst.clone(),
    };
    let error = expect_error(
        &files,
        &[a, source.clone()],
        &dst,
        "Err(DestinationIsSource { path: out.txt })",
        |error| matches!(error, ConcatError::DestinationIsSource { path } if *path == dst),
        &hint(
            "dst among the sources is Err(ConcatError::DestinationIsSource { path: dst }), found \
             before writing: compare tokio::fs::canonicalize of dst (when it exists) and of each \
             source, so another spelling of the same file or a link to it counts too",
            STAGE1,
        ),
    )
    .await;
    check_message_names(&files, &error, &dst, STAGE1);
}

#[rstest]
#[case::a_missing_directory("missing")]
#[case::a_file_where_the_directory_should_be("file")]
#[kata_harness::test]
async fn stage1_a_missing_destination_directory_is_an_error(#[case] how: &str) {
    let files = TestDir::new();
    let a = files.write("a.txt", "A\n");
    let dir = if how == "file" {
        files.write("not-a-dir.txt", "a file\n")
    } else {
        files.path("missing")
    };
    let dst = dir.join("out.txt");
    let error = expect_error(
        &files,
        &[a],
        &dst,
        &format!("Err(DestinationDir {{ dir: {} }})", files.name(&dir)),
        |error| matches!(error, ConcatError::DestinationDir { dir: d } if *d == dir),
        &hint(
            "when dst's parent directory does not exist (or is not a directory) the result is \
             Err(ConcatError::DestinationDir { dir }) with that directory as given (dst's \
             parent); do not create it",
            STAGE1,
        ),
    )
    .await;
    check_message_names(&files, &error, &dir, STAGE1);
}

#[kata_harness::test]
async fn stage1_a_destination_that_is_a_directory_is_a_write_error() {
    let files = TestDir::new();
    let a = files.write("a.txt", "A\n");
    let dst = files.mkdir("out");
    let inside = files.write("out/inside.txt", "keep me\n");
    let error = expect_error(
        &files,
        &[a],
        &dst,
        "Err(Write { path: out, .. })",
        |error| matches!(error, ConcatError::Write { path, .. } if *path == dst),
        &hint(
            "dst is a directory: the rename onto it fails (or check first), and that is \
             Err(ConcatError::Write { path: dst, .. }); remove the temporary file",
            STAGE1,
        ),
    )
    .await;
    check_message_names(&files, &error, &dst, STAGE1);
    check_bytes(
        "out/inside.txt (dst is a directory with a file in it)",
        TestDir::contents(&inside).as_deref(),
        Some(b"keep me\n"),
        &hint("a directory given as dst is left alone", STAGE1),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: concat_read_ahead, measured with sources and a destination made for the test
// ---------------------------------------------------------------------------------------------

/// One step of a test source: wait this long (virtual time), then give these bytes.
type Step = (Duration, Vec<u8>);

/// What a test source gives.
enum Body {
    /// Steps, one after the other, then the end.
    Steps(Vec<Step>),
    /// This many bytes of [`pattern`] at once, then the end.
    Pattern(u64),
    /// An error on the first read.
    Fails(io::ErrorKind),
}

/// A source for `concat_read_ahead`. It records `read <name>` on the timeline when it is first
/// read, starts its first wait then (not when it is made), and holds a drop token.
struct Source {
    name: String,
    timeline: Timeline,
    body: Body,
    /// Current step, and how much of it has been given.
    step: usize,
    given: usize,
    sleep: Option<Pin<Box<Sleep>>>,
    started: bool,
    _token: Option<DropToken>,
}

impl Source {
    fn new(name: &str, timeline: &Timeline, body: Body) -> Self {
        Self {
            name: name.to_owned(),
            timeline: timeline.clone(),
            body,
            step: 0,
            given: 0,
            sleep: None,
            started: false,
            _token: None,
        }
    }

    /// A source that takes `delay` to give `data`, at once, then ends.
    fn slow(name: &str, timeline: &Timeline, delay: Duration, data: &str) -> Self {
        Self::new(
            name,
            timeline,
            Body::Steps(vec![(delay, data.as_bytes().to_vec())]),
        )
    }

    /// Everything this source gives, in order (not for `Pattern`).
    fn bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Steps(steps) => steps.iter().flat_map(|(_, data)| data.clone()).collect(),
            Body::Pattern(_) | Body::Fails(_) => Vec::new(),
        }
    }

    fn watched(mut self) -> (Self, DropProbe) {
        let (probe, token) = DropProbe::new();
        self._token = Some(token);
        (self, probe)
    }
}

impl AsyncRead for Source {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.started {
            this.started = true;
            this.timeline.mark(format!("read {}", this.name));
        }
        match &mut this.body {
            Body::Fails(kind) => {
                Poll::Ready(Err(io::Error::new(*kind, format!("{} broke", this.name))))
            }
            Body::Pattern(len) => {
                let offset = this.given as u64;
                let n = (*len - offset).min(buf.remaining() as u64) as usize;
                fill_pattern(offset, buf.initialize_unfilled_to(n));
                buf.advance(n);
                this.given += n;
                Poll::Ready(Ok(()))
            }
            Body::Steps(steps) => {
                let Some((delay, data)) = steps.get(this.step) else {
                    return Poll::Ready(Ok(())); // the end
                };
                if this.given == 0 {
                    let delay = *delay;
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
                    ready!(sleep.as_mut().poll(cx));
                    this.sleep = None;
                }
                let n = (data.len() - this.given).min(buf.remaining());
                buf.put_slice(&data[this.given..this.given + n]);
                this.given += n;
                if this.given == data.len() {
                    this.step += 1;
                    this.given = 0;
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// The pattern's period: a prime, so no power-of-two chunk lines up with it.
const PATTERN_PERIOD: usize = 65_521;

fn pattern_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| random_bytes(42, PATTERN_PERIOD))
}

/// Fills `out` with the pattern from `offset` on.
fn fill_pattern(offset: u64, out: &mut [u8]) {
    let block = pattern_block();
    let mut at = (offset % PATTERN_PERIOD as u64) as usize;
    let mut rest = out;
    while !rest.is_empty() {
        let n = rest.len().min(PATTERN_PERIOD - at);
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n);
        piece.copy_from_slice(&block[at..at + n]);
        rest = tail;
        at = 0;
    }
}

/// Whether `data` is the pattern from `offset` on (compared in place: no allocation).
fn is_pattern(offset: u64, data: &[u8]) -> bool {
    let block = pattern_block();
    let mut at = (offset % PATTERN_PERIOD as u64) as usize;
    let mut rest = data;
    while !rest.is_empty() {
        let n = rest.len().min(PATTERN_PERIOD - at);
        if rest[..n] != block[at..at + n] {
            return false;
        }
        rest = &rest[n..];
        at = 0;
    }
    true
}

/// A destination that records every write: when it completed (virtual time) and its bytes.
/// Each write takes `delay`; the default is none.
struct Recorder {
    timeline: Timeline,
    writes: Vec<(Duration, Vec<u8>)>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Bytes written when the last flush was called.
    flushed_at: Option<usize>,
}

impl Recorder {
    fn new(timeline: &Timeline) -> Self {
        Self {
            timeline: timeline.clone(),
            writes: Vec::new(),
            delay: Duration::ZERO,
            sleep: None,
            flushed_at: None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.writes
            .iter()
            .flat_map(|(_, data)| data.clone())
            .collect()
    }

    /// When each source (given by its length) was completely written: the time of the write
    /// that carried its last byte. `None` for a source not (completely) written.
    fn done_at(&self, lengths: &[usize]) -> Vec<Option<Duration>> {
        let mut ends = Vec::new();
        let mut total = 0;
        for (at, data) in &self.writes {
            total += data.len();
            ends.push((total, *at));
        }
        let mut end = 0;
        lengths
            .iter()
            .map(|len| {
                end += len;
                ends.iter()
                    .find(|(total, _)| *total >= end)
                    .map(|(_, at)| *at)
            })
            .collect()
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.delay.is_zero() {
            let delay = this.delay;
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        this.writes.push((this.timeline.now(), buf.to_vec()));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.flushed_at = Some(this.writes.iter().map(|(_, data)| data.len()).sum());
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A destination that keeps nothing: it checks that what arrives is `prefix` then the pattern,
/// and counts it.
struct PatternSink {
    prefix: Vec<u8>,
    received: u64,
    first_wrong: Option<u64>,
}

impl AsyncWrite for PatternSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.first_wrong.is_none() {
            let at = this.received as usize;
            let split = this.prefix.len().saturating_sub(at).min(buf.len());
            let (head, tail) = buf.split_at(split);
            let right = *head == this.prefix[at.min(this.prefix.len())..][..split]
                && is_pattern((at + split - this.prefix.len()) as u64, tail);
            if !right {
                this.first_wrong = Some(this.received);
            }
        }
        this.received += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs `concat_read_ahead`, failing the test (instead of hanging) if it never returns.
async fn read_ahead<W: AsyncWrite + Unpin>(
    sources: Vec<Source>,
    dst: &mut W,
    read_ahead: usize,
    what: &str,
) -> io::Result<u64> {
    completes_within(
        PATIENCE,
        what,
        &hint(
            "every test source ends after a few virtual seconds at most: concat_read_ahead must \
             return once all of them are written",
            STAGE2,
        ),
        concat_read_ahead(sources, dst, read_ahead),
    )
    .await
}

/// `n` sources that each take `delay` to give a few bytes; `read <i>` marks their first reads.
fn equal_sources(timeline: &Timeline, n: usize, delay: Duration) -> Vec<Source> {
    (0..n)
        .map(|i| Source::slow(&i.to_string(), timeline, delay, &format!("<{i}>")))
        .collect()
}

/// When each source was first read, in source order (`None`: never).
fn read_starts(timeline: &Timeline, n: usize) -> Vec<Option<Duration>> {
    (0..n)
        .map(|i| timeline.times(&format!("read {i}")).first().copied())
        .collect()
}

fn at_each(times: &[Option<Duration>]) -> Vec<Duration> {
    times.iter().map(|at| at.unwrap_or(Duration::MAX)).collect()
}

/// Runs `sources` through `concat_read_ahead` into a recorder and checks the result: the bytes,
/// in order, the count, the flush. Returns the recorder and each source's length.
async fn run_recorded(
    sources: Vec<Source>,
    recorder: &mut Recorder,
    k: usize,
    what: &str,
) -> Vec<usize> {
    let expected: Vec<u8> = sources.iter().flat_map(Source::bytes).collect();
    let lengths: Vec<usize> = sources.iter().map(|s| s.bytes().len()).collect();
    let result = read_ahead(sources, recorder, k, what).await;
    let written = result.unwrap_or_else(|error| {
        fail(
            what,
            format_args!("Ok({})", expected.len()),
            format_args!("Err({error:?})"),
            &hint("no source fails here", STAGE2),
        )
    });
    let bytes = recorder.bytes();
    check_bytes(
        &format!("what {what} wrote"),
        Some(&bytes),
        Some(&expected),
        &hint(
            "every source, whole, in the order given, whatever order they finish reading in: \
             drain one source's channel to its end before taking the next",
            STAGE2,
        ),
    );
    check_eq(
        &format!("the bytes written, as {what} returned them"),
        written,
        expected.len() as u64,
        &hint("return the number of bytes written to dst", STAGE2),
    );
    if recorder.flushed_at != Some(bytes.len()) {
        fail(
            &format!("dst's flush after {what}"),
            "a flush after the last write",
            match recorder.flushed_at {
                None => "no flush".to_owned(),
                Some(n) => format!("the last flush after {n} of {} bytes", bytes.len()),
            },
            &hint(
                "flush dst at the end (dst.flush().await): the caller may have given you a \
                 buffered writer, or a tokio File whose last write is still under way",
                STAGE2,
            ),
        );
    }
    lengths
}

const T: Duration = ms(100);

#[rstest]
#[case::sequential_with_0(6, 0)]
#[case::one_ahead(6, 1)]
#[case::two_ahead(6, 2)]
#[case::all_at_once(6, 5)]
#[case::more_than_there_are(3, 10)]
#[case::a_single_source(1, 2)]
#[case::no_sources(0, 1)]
#[kata_harness::test]
async fn stage2_reads_ahead_exactly_read_ahead_sources(#[case] n: usize, #[case] k: usize) {
    let timeline = Timeline::start();
    let mut recorder = Recorder::new(&timeline);
    let what = format!("concat_read_ahead({n} sources of 100 ms each, read_ahead = {k})");
    let lengths = run_recorded(equal_sources(&timeline, n, T), &mut recorder, k, &what).await;

    // Sources 0..=k start at once; each later one when the one k+1 places before it has been
    // written, which (the writer taking no time) is when it was read: rounds of 100 ms.
    let round = |i: usize| (i / (k + 1)) as u32;
    let starts: Vec<Duration> = (0..n).map(|i| T * round(i)).collect();
    let done: Vec<Duration> = (0..n).map(|i| T * (round(i) + 1)).collect();
    let rule = format!(
        "read_ahead = {k}: while one source is written, the {k} after it are already being \
         read, so at most {} are read at once; a source starts being read when the one {} \
         place(s) before it has been written, and not before",
        k + 1,
        k + 1
    );
    assert_schedule(
        &format!("when each source was first read, {what}"),
        &at_each(&read_starts(&timeline, n)),
        &starts,
        &hint(&rule, STAGE2),
    );
    assert_schedule(
        &format!("when each source was completely written, {what}"),
        &at_each(&recorder.done_at(&lengths)),
        &done,
        &hint(
            &format!(
                "{rule}; write each chunk as soon as it is its turn (no BufWriter around dst)"
            ),
            STAGE2,
        ),
    );
    let total = done.last().copied().unwrap_or_default();
    check_eq(
        &format!("virtual time {what} took"),
        timeline.now(),
        total,
        &hint(
            &format!(
                "{n} sources of 100 ms, {} at a time: ceil({n} / {}) x 100 ms",
                k + 1,
                k + 1
            ),
            STAGE2,
        ),
    );
}

#[kata_harness::test]
async fn stage2_writes_stay_in_order_when_later_sources_are_faster() {
    let timeline = Timeline::start();
    let mut recorder = Recorder::new(&timeline);
    // Each later source is faster than the one before it; `a` comes in two steps.
    let sources = vec![
        Source::new(
            "0",
            &timeline,
            Body::Steps(vec![(ms(200), b"a1 ".to_vec()), (ms(100), b"a2 ".to_vec())]),
        ),
        Source::slow("1", &timeline, ms(200), "b "),
        Source::new(
            "2",
            &timeline,
            Body::Steps(vec![(ms(10), b"c1 ".to_vec()), (ms(10), b"c2 ".to_vec())]),
        ),
        Source::slow("3", &timeline, ms(50), "d"),
    ];
    let what = "concat_read_ahead([a: 200+100 ms, b: 200 ms, c: 10+10 ms, d: 50 ms], \
                read_ahead = 1)";
    let lengths = run_recorded(sources, &mut recorder, 1, what).await;
    // a and b are read from 0; a is written at 300 and frees its place: c starts, and ends
    // reading at 320; b (read since 200) is written at 300 and frees its place: d starts, and
    // ends reading at 350, but is written only after c, at 350.
    assert_schedule(
        &format!("when each source was first read, {what}"),
        &at_each(&read_starts(&timeline, 4)),
        &[ms(0), ms(0), ms(300), ms(300)],
        &hint(
            "a source starts being read when the one read_ahead + 1 places before it has been \
             written",
            STAGE2,
        ),
    );
    assert_schedule(
        &format!("when each source was completely written, {what}"),
        &at_each(&recorder.done_at(&lengths)),
        &[ms(300), ms(300), ms(320), ms(350)],
        &hint(
            "a source that is read early waits in its channel until every source before it is \
             written; then it is written at once",
            STAGE2,
        ),
    );
}

#[kata_harness::test]
async fn stage2_a_source_keeps_its_place_until_it_is_written() {
    let timeline = Timeline::start();
    let mut recorder = Recorder::new(&timeline);
    recorder.delay = ms(50);
    let what = "concat_read_ahead(3 sources of 100 ms each, read_ahead = 1) into a destination \
                that takes 50 ms per write";
    let lengths = run_recorded(equal_sources(&timeline, 3, T), &mut recorder, 1, what).await;
    // 0 and 1 are read by 100. 0 is written from 100 to 150: only then is its place free, and
    // 2 starts (read by 250). 1 is written from 150 to 200; 2 from 250 to 300.
    let rule = "read_ahead counts the sources after the one being written, and a source keeps \
                its place until its last byte has been written: sources 0 and 1 start at once \
                (one written, one read ahead), and source 2 when source 0's write ends at \
                150 ms, not when source 0 has been read (100 ms)";
    assert_schedule(
        &format!("when each source was first read, {what}"),
        &at_each(&read_starts(&timeline, 3)),
        &[ms(0), ms(0), ms(150)],
        &hint(rule, STAGE2),
    );
    assert_schedule(
        &format!("when each source was completely written, {what}"),
        &at_each(&recorder.done_at(&lengths)),
        &[ms(150), ms(200), ms(300)],
        &hint(rule, STAGE2),
    );
}

#[kata_harness::test(watchdog_secs = 15)]
async fn stage2_a_fast_source_waiting_its_turn_is_not_read_whole() {
    // 2 MiB, as in stage 1: a few chunks per source being read is the budget (the reference
    // peaks near 650 KiB here). The fast source is 32 MiB.
    const LIMIT: usize = 2 * MIB;
    const LARGE: u64 = 32 * MIB as u64;
    let timeline = Timeline::start();
    let run = |len: u64| {
        let sources = vec![
            Source::slow("slow", &timeline, Duration::from_secs(1), "first "),
            Source::new("fast", &timeline, Body::Pattern(len)),
        ];
        let mut sink = PatternSink {
            prefix: b"first ".to_vec(),
            received: 0,
            first_wrong: None,
        };
        async move {
            let what = format!(
                "concat_read_ahead([slow: 1 s, fast: {} at once], read_ahead = 1)",
                heap::bytes(len as f64)
            );
            let result = read_ahead(sources, &mut sink, 1, &what).await;
            (what, result, sink)
        }
    };
    // Warm up: the first run builds things that stay (the timer wheel's slots and the like).
    let _ = run(MIB as u64).await;
    let ((what, result, sink), report) = heap::measure_async(run(LARGE)).await;
    eprintln!("peak heap: {report:?}");

    check_eq(
        &what,
        result.map_err(|error| error.to_string()),
        Ok(6 + LARGE),
        &hint("no source fails here", STAGE2),
    );
    if let Some(at) = sink.first_wrong {
        fail(
            &format!("what {what} wrote"),
            "\"first \", then the fast source's bytes in order",
            format_args!("a wrong byte at {at}"),
            &hint("chunks in the order they were read", STAGE2),
        );
    }
    heap::assert_peak_below(
        &format!("{what}, while the fast source waits for the slow one"),
        report,
        LIMIT,
        &hint(
            "each reader sends its chunks into a bounded channel (tokio::sync::mpsc::channel \
             with a small capacity), so a fast source waits when the writer is busy elsewhere: \
             that is backpressure. An unbounded channel, or read_to_end, buffers it whole",
            STAGE2,
        ),
    );
}

#[kata_harness::test]
async fn stage2_a_failing_source_ends_the_copy_after_the_sources_before_it() {
    let timeline = Timeline::start();
    let mut recorder = Recorder::new(&timeline);
    let (never_ending, never_ending_probe) =
        Source::slow("2", &timeline, PATIENCE * 10, "never").watched();
    let (after, after_probe) = Source::slow("3", &timeline, ms(10), "c").watched();
    let sources = vec![
        Source::slow("0", &timeline, T, "a"),
        Source::new("1", &timeline, Body::Fails(io::ErrorKind::ConnectionReset)),
        never_ending,
        after,
    ];
    let baseline = TaskBaseline::capture();
    let what = "concat_read_ahead([a: 100 ms, b: fails, c: never ends, d: 10 ms], \
                read_ahead = 3)";
    let result = completes_within(
        PATIENCE,
        what,
        &hint(
            "return b's error when its turn comes, after a is written: c never ends, so \
             waiting for every reader (or for c's turn) never returns",
            STAGE2,
        ),
        concat_read_ahead(sources, &mut recorder, 3),
    )
    .await;
    let error = match result {
        Err(error) => error,
        Ok(n) => fail(
            what,
            "Err(the error of source b)",
            format_args!("Ok({n})"),
            &hint(
                "an error while reading a source is the result: return it (with ?)",
                STAGE2,
            ),
        ),
    };
    check_eq(
        &format!("the error {what} returned"),
        (error.kind(), error.to_string()),
        (io::ErrorKind::ConnectionReset, "1 broke".to_owned()),
        &hint("return the source's own io::Error, as it came", STAGE2),
    );
    check_bytes(
        &format!("what {what} wrote"),
        Some(&recorder.bytes()),
        Some(b"a"),
        &hint(
            "the sources before the failing one are written, and nothing after it, even what \
             was already read ahead",
            STAGE2,
        ),
    );
    check_eq(
        "virtual time until the error was returned",
        timeline.now(),
        T,
        &hint(
            "return the error when its turn comes: after source a is written (100 ms), without \
             waiting for the sources after it",
            STAGE2,
        ),
    );
    baseline
        .assert_back(
            ms(1),
            "reader tasks after concat_read_ahead returned an error",
            &hint(
                "stop the readers of the sources after the failing one: a JoinHandle dropped \
                 does not stop its task, abort() does (or keep them in a JoinSet)",
                STAGE2,
            ),
        )
        .await;
    for (probe, name) in [(never_ending_probe, "c"), (after_probe, "d")] {
        probe.assert_dropped(
            &format!("source {name} after concat_read_ahead returned an error"),
            &hint("a stopped reader drops its source", STAGE2),
        );
    }
}

#[kata_harness::test]
async fn stage2_dropping_the_copy_stops_its_readers() {
    let timeline = Timeline::start();
    let mut recorder = Recorder::new(&timeline);
    let mut probes = Vec::new();
    let mut sources = Vec::new();
    for i in 0..4 {
        let (source, probe) =
            Source::slow(&i.to_string(), &timeline, Duration::from_secs(1), "x").watched();
        sources.push(source);
        probes.push(probe);
    }
    let baseline = TaskBaseline::capture();
    // Cancelled half-way through the first round of reads: the copy is dropped.
    let cancelled =
        tokio::time::timeout(ms(500), concat_read_ahead(sources, &mut recorder, 2)).await;
    if let Ok(result) = cancelled {
        fail(
            "concat_read_ahead(4 sources of 1 s, read_ahead = 2) under a 500 ms timeout",
            "still running after 500 ms (its sources take a second), then dropped",
            format_args!("it returned {result:?} before 500 ms"),
            &hint("every source must be read to its end", STAGE2),
        );
    }
    baseline
        .assert_back(
            ms(1),
            "reader tasks after the copy was dropped",
            &hint(
                "dropping the future must stop what it started: abort the reader tasks when \
                 they are dropped (a Drop impl calling JoinHandle::abort, or a JoinSet), or \
                 they read on for nobody",
                STAGE2,
            ),
        )
        .await;
    for (i, probe) in probes.iter().enumerate() {
        probe.assert_dropped(
            &format!("source {i} after the copy was dropped"),
            &hint("a stopped reader drops its source", STAGE2),
        );
    }
    check_eq(
        "bytes written before the copy was dropped",
        show(&recorder.bytes()),
        show(b""),
        &hint("no source had finished, so nothing is written", STAGE2),
    );
}
