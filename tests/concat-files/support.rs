//! How the concat-files suite watches a copy.
//!
//! Stage 1 calls `concat_files` on real files in a [`TestDir`] and looks three ways: what `dst`
//! holds right when the call returns, what the call returned, and what the directory holds (a
//! temporary file left behind shows up there). When `dst` is wrong, [`content_hint`] reads *how*
//! it is wrong (too long, cut short, shuffled, changed) and says what that usually means.
//!
//! Stage 2 drives `concat_read_ahead` with test doubles on the paused clock: a [`Source`] that
//! follows a script (wait, give bytes, fail, panic, never end) and a [`Recorder`] destination
//! that notes every write and when it landed, and can be slow, take short writes or fill up.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use concat_files::{ConcatError, concat_files, concat_read_ahead};
use kata_harness::completion::completes_within;
use kata_harness::data::random_bytes;
use kata_harness::files::TestDir;
use kata_harness::heap::{self, HeapReport};
use kata_harness::leaks::{DropProbe, DropToken};
use kata_harness::report::{check, check_bytes, check_eq, fail, panic_with_string};
use kata_harness::timing::{Timeline, assert_schedule};
use kata_harness::{Hint, Stage};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::{STAGE1, STAGE2};

/// Long enough for any call here: a call still running after this never ends.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * KIB;

// ---------------------------------------------------------------------------------------------
// Stage 1: calls on real files
// ---------------------------------------------------------------------------------------------

/// `paths` as a report shows them: their names in the test directory.
pub fn names(files: &TestDir, paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|path| files.name(path)).collect();
    format!("[{}]", names.join(", "))
}

/// The call as a report shows it: `concat_files([a.txt, b.txt], out.txt)`.
pub fn call(files: &TestDir, sources: &[PathBuf], dst: &Path) -> String {
    format!(
        "concat_files({}, {})",
        names(files, sources),
        files.name(dst)
    )
}

/// Runs `concat_files(sources, dst)`, failing the test (instead of hanging) if it never returns.
pub async fn concat(files: &TestDir, sources: &[PathBuf], dst: &Path) -> Result<u64, ConcatError> {
    completes_within(
        &call(files, sources, dst),
        concat_files(sources, dst),
        PATIENCE,
        &STAGE1.hint(
            "every source here ends, so the call must return: look for a wait that nothing will \
             end, such as a reader task awaited while its channel is full, or a task awaited that \
             waits for the writer",
        ),
    )
    .await
}

/// What a call that should have succeeded usually means by the error it returned.
pub fn error_hint(error: &ConcatError) -> Hint {
    STAGE1.hint(match error {
        ConcatError::NoSources => "NoSources is only for an empty list of sources",
        ConcatError::Source { .. } => {
            "this source exists and can be read: open it exactly as given \
             (tokio::fs::File::open(path)); a Source error is for a missing file, a directory or \
             a read that fails, and a named pipe is a source like any other (metadata's \
             is_file() is false for it: test is_dir() instead)"
        }
        ConcatError::DestinationIsSource { .. } => {
            "dst is not one of the sources here: compare the canonical paths \
             (tokio::fs::canonicalize) of dst and of each source, and only when dst exists"
        }
        ConcatError::DestinationDir { .. } => {
            "dst's directory exists here. For a bare file name such as out.txt, dst.parent() is \
             Some(\"\"): the current directory, not a missing one"
        }
        ConcatError::Write { .. } => {
            "making the temporary file beside dst, writing it and renaming it onto dst all work \
             here: look at the io::Error inside. The temporary file goes in the directory of the \
             file dst names (\"\" means the current one), and the rename goes onto that file"
        }
    })
}

/// What a wrong `dst` (or a wrong stage 2 destination) usually means, read from how it differs
/// from `expected`: missing, too long, cut short, reordered or changed. `old` is what `dst`
/// held before the call, if it existed.
pub fn content_hint(
    stage: Stage,
    actual: Option<&[u8]>,
    expected: &[u8],
    old: Option<&[u8]>,
) -> Hint {
    let Some(actual) = actual else {
        return stage.hint(
            "dst does not exist after the call returned Ok: rename the temporary file onto dst \
             (TempPath::persist) before returning",
        );
    };
    if old == Some(actual) {
        return stage.hint(
            "dst still holds its old content: the new content must have replaced it by the time \
             the call returns (rename the temporary file onto dst, and await the rename)",
        );
    }
    let text = if actual.len() > expected.len() {
        let old_tail = old
            .filter(|old| old.len() > expected.len())
            .map(|old| &old[expected.len()..]);
        if old_tail.is_some_and(|tail| actual == [expected, tail].concat()) {
            "the new content, then the end of dst's old content: dst was written over, not \
             replaced. Write into a new temporary file and rename it onto dst"
        } else {
            "more bytes than the sources hold: of each read, write only the bytes it gave \
             (&buf[..n], n being what read returned), not the whole buffer; and copy each source \
             once"
        }
    } else if actual.len() < expected.len() {
        match stage.number() {
            1 => {
                "fewer bytes than the sources hold: a source, or the end of one, did not make it. \
                 Copy every argument where it stands (one given twice is copied twice); read each \
                 source until a read gives 0 bytes (a read may give less than the buffer holds \
                 long before the end, as a pipe does); and flush the output before the rename, so \
                 its last write has landed"
            }
            _ => {
                "fewer bytes than the sources hold: write each chunk with write_all (write may \
                 take only part of a buffer, and says how much), drain each source's channel \
                 until it ends, and flush dst at the end"
            }
        }
    } else if same_bytes_in_some_order(actual, expected) {
        "every byte is there, but in another order: write the sources in the order given, each \
         one whole before the next (a source read early waits its turn), and a source's chunks \
         in the order they were read"
    } else {
        "as many bytes as the sources hold, but not the same ones: copy bytes as they are (no \
         text decoding, no lines, no lossy UTF-8), and of each read only the bytes it gave"
    };
    stage.hint(text)
}

/// Whether `a` and `b` hold each byte value equally often: the same bytes, maybe reordered.
fn same_bytes_in_some_order(a: &[u8], b: &[u8]) -> bool {
    let count = |bytes: &[u8]| {
        let mut counts = vec![0_usize; 256];
        for &byte in bytes {
            counts[usize::from(byte)] += 1;
        }
        counts
    };
    count(a) == count(b)
}

/// Concatenates `sources` into `dst` and checks everything: the call succeeded, `dst` holds
/// exactly the sources in order right when it returned, the call returned their size, and the
/// directory holds what it held before, plus `dst`.
pub async fn check_concat(files: &TestDir, sources: &[PathBuf], dst: &Path) {
    let expected: Vec<u8> = sources
        .iter()
        .flat_map(|path| TestDir::contents(path).expect("cannot read a test file"))
        .collect();
    let old = TestDir::contents(dst);
    let mut listing = files.listing();
    if dst
        .parent()
        .is_none_or(|dir| dir == files.root() || dir == Path::new(""))
        && !listing.contains(&files.name(dst))
    {
        listing.push(files.name(dst));
        listing.sort();
    }
    let call = call(files, sources, dst);
    let result = concat(files, sources, dst).await;
    check_copied(files, &call, result, dst, &expected, old.as_deref());
    check_eq(
        &format!("the files in the directory after {call}"),
        files.listing(),
        listing,
        &STAGE1.hint(
            "the files that were there, and dst: the temporary file must become dst (a \
             rename), not stay beside it",
        ),
    );
}

/// Checks a call that should have copied `expected` into `dst`: it returned `Ok`, `dst` holds
/// exactly `expected` right away (`old` is what it held before), and the count is its length.
#[track_caller]
pub fn check_copied(
    files: &TestDir,
    call: &str,
    result: Result<u64, ConcatError>,
    dst: &Path,
    expected: &[u8],
    old: Option<&[u8]>,
) {
    let written = match result {
        Ok(written) => written,
        Err(error) => fail(
            call,
            format_args!("Err({}): {error}", files.short(&error)),
            format_args!("Ok({})", expected.len()),
            &error_hint(&error),
        ),
    };
    // Read at once: the bytes must be in dst when the call returns, not moments later.
    let actual = TestDir::contents(dst);
    check_bytes(
        &format!("{} right after {call} returned", files.name(dst)),
        &actual,
        expected,
        &content_hint(STAGE1, actual.as_deref(), expected, old),
    );
    check_eq(
        &format!("the bytes written, as {call} returned them"),
        written,
        expected.len() as u64,
        &STAGE1.hint("return the number of bytes written to dst: the sum of the sources' sizes"),
    );
}

/// What an error must leave behind: `dst` as it was, and no new file in the directory.
pub fn untouched_hint() -> Hint {
    STAGE1.hint(
        "after an error dst must be exactly what it was, or still absent: check what can be \
         checked before writing anything, write into a temporary file beside dst, and rename it \
         onto dst only once everything was copied",
    )
}

/// What a temporary file left behind usually means.
pub fn leftover_hint() -> Hint {
    STAGE1.hint(
        "no temporary file may stay behind: make it a tempfile::TempPath (or NamedTempFile), \
         which removes the file when it is dropped, on every early return (?) and when the \
         future is dropped; a remove_file on the error paths alone misses cancellation",
    )
}

/// Runs `concat_files` expecting an error that `is_expected` accepts (described by `expected`),
/// then checks that nothing changed: `dst` byte for byte, and the directory's listing.
pub async fn expect_error(
    files: &TestDir,
    sources: &[PathBuf],
    dst: &Path,
    expected: &str,
    is_expected: impl FnOnce(&ConcatError) -> bool,
    hint: &Hint,
) -> ConcatError {
    let before = TestDir::contents(dst);
    let listing = files.listing();
    let call = call(files, sources, dst);

    let error = match concat(files, sources, dst).await {
        Err(error) if is_expected(&error) => error,
        Err(error) => fail(
            &call,
            format_args!("Err({}): {error}", files.short(&error)),
            expected,
            hint,
        ),
        Ok(written) => fail(&call, format_args!("Ok({written})"), expected, hint),
    };
    let existed = if before.is_some() {
        "it existed before"
    } else {
        "it did not exist before"
    };
    check_bytes(
        &format!("{} after {call} failed ({existed})", files.name(dst)),
        &TestDir::contents(dst),
        &before,
        &untouched_hint(),
    );
    check_eq(
        &format!("the files in the directory after {call} failed"),
        files.listing(),
        listing,
        &leftover_hint(),
    );
    error
}

/// Fails unless the error's message names `path`, as the given `#[error(..)]` texts do.
#[track_caller]
pub fn check_message_names(files: &TestDir, error: &ConcatError, path: &Path) {
    let message = error.to_string();
    check(
        "the error's message",
        message.contains(&path.display().to_string()),
        format_args!("{:?}", files.short(&message).trim_matches('"')),
        format_args!("a message that names {}", files.name(path)),
        &STAGE1.hint(
            "keep the #[error(...)] texts of ConcatError, which name the path, and put the path \
             in the error as it was given",
        ),
    );
}

/// Writes `size` bytes of pseudo-random data to `name`: one random block, repeated with its
/// number stamped on each copy, so a chunk out of place is a difference too.
pub fn write_large(files: &TestDir, name: &str, size: usize, seed: u64) -> PathBuf {
    use std::io::Write;
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

/// Concatenates `sources` into `dst` under a heap measurement, then checks the result piece by
/// piece (to keep the test's own memory and time small).
pub async fn measured_concat(files: &TestDir, sources: &[PathBuf], dst: &Path) -> HeapReport {
    let (result, report) = heap::measure_async(concat(files, sources, dst)).await;
    let call = call(files, sources, dst);
    let written = result.unwrap_or_else(|error| {
        fail(
            &call,
            format_args!("Err({}): {error}", files.short(&error)),
            "Ok(..)",
            &error_hint(&error),
        )
    });
    let output = TestDir::contents(dst).unwrap_or_default();
    let mut at = 0;
    for source in sources {
        let data = TestDir::contents(source).expect("cannot read a test file");
        let piece = &output[at.min(output.len())..(at + data.len()).min(output.len())];
        check_bytes(
            &format!(
                "bytes {at}..{} of {} ({} there)",
                at + data.len(),
                files.name(dst),
                files.name(source)
            ),
            piece,
            &data,
            &content_hint(STAGE1, Some(piece), &data, None),
        );
        at += data.len();
    }
    check_eq(
        &format!("the bytes written, as {call} returned them"),
        written,
        output.len() as u64,
        &STAGE1.hint("return the number of bytes written to dst"),
    );
    report
}

/// The permission bits of `path`.
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("cannot read a test file's metadata")
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------------------------------------------
// Stage 2: sources and destinations made for the test
// ---------------------------------------------------------------------------------------------

/// What a source panics with.
#[derive(Debug, Clone)]
pub enum Payload {
    /// `panic!("literal")`: a `&'static str`.
    Str(&'static str),
    /// `panic!("{}", x)`: a `String` (made with `report::panic_with_string`, since rustc folds
    /// a literal argument into a `&'static str`).
    String(String),
}

impl Payload {
    pub fn text(&self) -> &str {
        match self {
            Self::Str(text) => text,
            Self::String(text) => text,
        }
    }
}

/// One step of a test source's script.
#[derive(Debug, Clone)]
pub enum Act {
    /// Wait this long (virtual time).
    Wait(Duration),
    /// Give these bytes, in as many reads as the reader's buffer needs.
    Give(Vec<u8>),
    /// Give this many bytes of [`fill_pattern`]'s pattern, without storing them.
    Pattern(u64),
    /// Not ready once (`Pending`, woken at once), as a socket between two packets.
    Yield,
    /// Fail every read from here on, with an error of this kind saying "<name> broke".
    Fail(io::ErrorKind),
    /// Panic, inside `poll_read`.
    Panic(Payload),
    /// Never give anything again (and never wake).
    Never,
}

/// A source for `concat_read_ahead` that follows a script, then ends. It marks `read <name>` on
/// the timeline when it is first read, starts its first wait only then (not when it is made),
/// and can carry a drop token, to tell when it was dropped.
pub struct Source {
    name: String,
    timeline: Timeline,
    script: Vec<Act>,
    /// The current step, and how much of it has been given.
    step: usize,
    given: u64,
    sleep: Option<Pin<Box<Sleep>>>,
    started: bool,
    _token: Option<DropToken>,
}

impl Source {
    pub fn new(name: &str, timeline: &Timeline, script: Vec<Act>) -> Self {
        Self {
            name: name.to_owned(),
            timeline: timeline.clone(),
            script,
            step: 0,
            given: 0,
            sleep: None,
            started: false,
            _token: None,
        }
    }

    /// A source that takes `delay` to give `data`, at once, then ends.
    pub fn slow(name: &str, timeline: &Timeline, delay: Duration, data: &str) -> Self {
        let script = vec![Act::Wait(delay), Act::Give(data.as_bytes().to_vec())];
        Self::new(name, timeline, script)
    }

    /// Every byte its `Give` steps hold, in order.
    pub fn bytes(&self) -> Vec<u8> {
        self.script
            .iter()
            .flat_map(|act| match act {
                Act::Give(data) => data.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The source, and a probe that tells when it has been dropped.
    pub fn watched(mut self) -> (Self, DropProbe) {
        let (probe, token) = DropProbe::new();
        self._token = Some(token);
        (self, probe)
    }

    fn next_step(&mut self) {
        self.step += 1;
        self.given = 0;
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
        loop {
            let Some(act) = this.script.get(this.step) else {
                return Poll::Ready(Ok(())); // the end
            };
            match act {
                Act::Wait(delay) => {
                    let delay = *delay;
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
                    ready!(sleep.as_mut().poll(cx));
                    this.sleep = None;
                    this.next_step();
                }
                Act::Give(data) if this.given as usize >= data.len() => this.next_step(),
                Act::Give(data) => {
                    let from = this.given as usize;
                    let n = (data.len() - from).min(buf.remaining());
                    buf.put_slice(&data[from..from + n]);
                    this.given += n as u64;
                    return Poll::Ready(Ok(()));
                }
                Act::Pattern(len) if this.given >= *len => this.next_step(),
                Act::Pattern(len) => {
                    let n = (*len - this.given).min(buf.remaining() as u64) as usize;
                    fill_pattern(this.given, buf.initialize_unfilled_to(n));
                    buf.advance(n);
                    this.given += n as u64;
                    return Poll::Ready(Ok(()));
                }
                Act::Yield => {
                    this.next_step();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Act::Fail(kind) => {
                    let error = io::Error::new(*kind, format!("{} broke", this.name));
                    return Poll::Ready(Err(error));
                }
                Act::Panic(Payload::Str(text)) => std::panic::panic_any(*text),
                Act::Panic(Payload::String(text)) => panic_with_string(text),
                Act::Never => return Poll::Pending,
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
pub fn fill_pattern(offset: u64, out: &mut [u8]) {
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

/// What a [`Recorder`] saw; shared, so a test can read it after the recorder was moved away.
#[derive(Debug, Default)]
struct Log {
    /// When each write landed (virtual time), and the bytes it took.
    writes: Vec<(Duration, Vec<u8>)>,
    /// Bytes written when the last flush was called.
    flushed_at: Option<usize>,
}

/// What a [`Recorder`] saw, readable from anywhere.
#[derive(Debug, Clone)]
pub struct RecorderLog(Arc<Mutex<Log>>);

impl RecorderLog {
    /// Every byte that landed, in order.
    pub fn bytes(&self) -> Vec<u8> {
        let log = self.0.lock().unwrap();
        log.writes
            .iter()
            .flat_map(|(_, data)| data.clone())
            .collect()
    }

    /// How many bytes had landed when `flush` was last called (`None`: never called).
    pub fn flushed_at(&self) -> Option<usize> {
        self.0.lock().unwrap().flushed_at
    }

    /// When each source (given by its length) was completely written: the time of the write
    /// that carried its last byte. `None` for a source not (completely) written.
    pub fn done_at(&self, lengths: &[usize]) -> Vec<Option<Duration>> {
        let log = self.0.lock().unwrap();
        let mut ends = Vec::new();
        let mut total = 0;
        for (at, data) in &log.writes {
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

/// A destination that records every write: when it landed (virtual time) and its bytes. By
/// default every write takes no time and all it is given; [`taking`](Self::taking),
/// [`short_writes`](Self::short_writes) and [`full_after`](Self::full_after) change that.
pub struct Recorder {
    log: RecorderLog,
    timeline: Timeline,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    short_writes: Option<usize>,
    writes: usize,
    room: Option<usize>,
}

impl Recorder {
    pub fn new(timeline: &Timeline) -> Self {
        Self {
            log: RecorderLog(Arc::default()),
            timeline: timeline.clone(),
            delay: Duration::ZERO,
            sleep: None,
            short_writes: None,
            writes: 0,
            room: None,
        }
    }

    /// Every write takes `delay` (virtual time) before it lands.
    pub fn taking(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Each write takes only part of what it is offered: 1, 2, ... up to `max` bytes, in turn.
    pub fn short_writes(mut self, max: usize) -> Self {
        self.short_writes = Some(max);
        self
    }

    /// Takes `bytes` bytes in all, then fails every write with `StorageFull`, "dst is full" (a
    /// write that does not fit takes what fits, as a disk would).
    pub fn full_after(mut self, bytes: usize) -> Self {
        self.room = Some(bytes);
        self
    }

    /// What it saw, to read later.
    pub fn log(&self) -> RecorderLog {
        self.log.clone()
    }
}

/// The error a full [`Recorder`] fails its writes with.
pub fn full_error() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "dst is full")
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
        let mut n = buf.len();
        if let Some(max) = this.short_writes {
            n = n.min(this.writes % max + 1);
        }
        if let Some(room) = &mut this.room {
            if *room == 0 && !buf.is_empty() {
                return Poll::Ready(Err(full_error()));
            }
            n = n.min(*room);
            *room -= n;
        }
        this.writes += 1;
        let mut log = this.log.0.lock().unwrap();
        log.writes.push((this.timeline.now(), buf[..n].to_vec()));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut log = self.log.0.lock().unwrap();
        log.flushed_at = Some(log.writes.iter().map(|(_, data)| data.len()).sum());
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A destination that keeps nothing: it checks that what arrives is `prefix` then the pattern,
/// and counts it.
pub struct PatternSink {
    pub prefix: Vec<u8>,
    pub received: u64,
    pub first_wrong: Option<u64>,
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
pub async fn read_ahead<W: AsyncWrite + Unpin>(
    sources: Vec<Source>,
    dst: &mut W,
    read_ahead: usize,
    what: &str,
) -> io::Result<u64> {
    completes_within(
        what,
        concat_read_ahead(sources, dst, read_ahead),
        PATIENCE,
        &STAGE2.hint(
            "every source here ends within a few virtual seconds, so the copy must return: look \
             for a wait nothing will end, such as a reader's JoinHandle awaited while its \
             channel is full and nobody drains it",
        ),
    )
    .await
}

/// `n` sources that each take `delay` to give a few bytes; `read <i>` marks their first reads.
pub fn equal_sources(timeline: &Timeline, n: usize, delay: Duration) -> Vec<Source> {
    (0..n)
        .map(|i| Source::slow(&i.to_string(), timeline, delay, &format!("<{i}>")))
        .collect()
}

/// When each of the sources `0..n` was first read, in source order (`Duration::MAX`: never).
pub fn read_starts(timeline: &Timeline, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            timeline
                .first(&format!("read {i}"))
                .unwrap_or(Duration::MAX)
        })
        .collect()
}

/// Each source's `done_at`, `Duration::MAX` for one never completely written.
pub fn done_times(log: &RecorderLog, lengths: &[usize]) -> Vec<Duration> {
    log.done_at(lengths)
        .into_iter()
        .map(|at| at.unwrap_or(Duration::MAX))
        .collect()
}

/// Runs `sources` through `concat_read_ahead` into `recorder` and checks the result: the bytes,
/// in order, the count, the flush. Returns each source's length.
pub async fn run_recorded(
    sources: Vec<Source>,
    recorder: &mut Recorder,
    k: usize,
    what: &str,
) -> Vec<usize> {
    let expected: Vec<u8> = sources.iter().flat_map(Source::bytes).collect();
    let lengths: Vec<usize> = sources.iter().map(|s| s.bytes().len()).collect();
    let log = recorder.log();
    let written = read_ahead(sources, recorder, k, what)
        .await
        .unwrap_or_else(|error| {
            fail(
                what,
                format_args!("Err({error:?})"),
                format_args!("Ok({})", expected.len()),
                &STAGE2.hint(
                    "no source fails here and dst takes every write: an error can only come \
                     from the copy itself (a closed channel, a JoinError turned into an error)",
                ),
            )
        });
    let bytes = log.bytes();
    check_bytes(
        &format!("what {what} wrote"),
        &bytes,
        &expected,
        &content_hint(STAGE2, Some(&bytes), &expected, None),
    );
    check_eq(
        &format!("the bytes written, as {what} returned them"),
        written,
        expected.len() as u64,
        &STAGE2.hint("return the number of bytes written to dst"),
    );
    let flushed = log.flushed_at();
    check(
        &format!("dst's flush after {what}"),
        flushed == Some(bytes.len()),
        match flushed {
            None => "no flush".to_owned(),
            Some(n) => format!("the last flush after {n} of {} bytes", bytes.len()),
        },
        "a flush after the last write",
        &STAGE2.hint(
            "flush dst at the end (dst.flush().await): the caller may have given you a buffered \
             writer, or a tokio File whose last write is still under way",
        ),
    );
    lengths
}

/// Checks when each source was first read and completely written.
#[track_caller]
pub fn check_schedule(
    what: &str,
    (timeline, log, lengths): (&Timeline, &RecorderLog, &[usize]),
    starts: &[Duration],
    done: &[Duration],
    (start_hint, done_hint): (&Hint, &Hint),
) {
    assert_schedule(
        &format!("when each source was first read, {what}"),
        &read_starts(timeline, lengths.len()),
        starts,
        start_hint,
    );
    assert_schedule(
        &format!("when each source was completely written, {what}"),
        &done_times(log, lengths),
        done,
        done_hint,
    );
}
