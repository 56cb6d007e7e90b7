//! How the regex-finder suite watches a search: listeners attached right after the call (as a
//! user would attach them), every event recorded in order and shown in short (files by their
//! name in the test's directory), a diagnosis of the usual mistakes at the first difference, and
//! the kata's test files (large, with long lines, fed slowly through a named pipe).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_emitter::{EventEmitter, Subscription};
use kata_harness::files::{Gate, PipeFeeder, TestDir};
use kata_harness::heap::{self, HeapReport};
use kata_harness::report::{self, Difference, check_seq, fail, first_difference};
use kata_harness::{Hint, Stage};
use regex_finder::{End, Error, FileRead, FindRegex, Match, Start, find_regex};

use crate::{STAGE1, STAGE2};

/// Long enough for any search of the suite on the paused clock: a search still going after this
/// never ends.
const PATIENCE: Duration = Duration::from_secs(60);

/// How long the listeners stay after `End` (virtual time), to hear anything emitted late.
const AFTER_END: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Events, in short
// ---------------------------------------------------------------------------------------------

/// One thing heard, in short: files by their name in the test's directory.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    Start(Vec<String>),
    FileRead(String),
    Match(String, usize, String),
    Error(String),
    End,
    /// `on_done` was called, with this many matches.
    OnDone(usize),
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Start(files) => write!(f, "Start[{}]", files.join(", ")),
            Self::FileRead(file) => write!(f, "FileRead({file})"),
            Self::Match(file, line, text) => write!(f, "Match({file}:{line} {text:?})"),
            Self::Error(file) => write!(f, "Error({file})"),
            Self::End => write!(f, "End"),
            Self::OnDone(matches) => write!(f, "on_done({matches} matches)"),
        }
    }
}

/// `Start` listing `names`.
pub fn start(names: &[&str]) -> Event {
    Event::Start(names.iter().map(|name| (*name).to_owned()).collect())
}

/// `FileRead` of `name`.
pub fn file_read(name: &str) -> Event {
    Event::FileRead(name.to_owned())
}

/// A `Match` of `text` on `line` of `name`.
pub fn found(name: &str, line: usize, text: &str) -> Event {
    Event::Match(name.to_owned(), line, text.to_owned())
}

/// An `Error` for `name`.
pub fn error(name: &str) -> Event {
    Event::Error(name.to_owned())
}

/// A path as the reports show it: its name in the test's directory. A bare name where the test
/// gave the full path (say, `path.file_name()` reported) is marked, so that it never looks right;
/// any other path is shown in full.
pub fn name(files: &TestDir, path: &Path) -> String {
    if path.is_relative() && files.path(&path.to_string_lossy()).exists() {
        return format!("{} (a bare name, not the path given)", path.display());
    }
    files.name(path)
}

/// A `Match` in short.
pub fn shorten(files: &TestDir, found: &Match) -> Event {
    Event::Match(name(files, &found.path), found.line, found.text.clone())
}

/// What was recorded, before the paths are shortened.
enum Raw {
    Start(Vec<PathBuf>),
    FileRead(PathBuf),
    Match(Match),
    Error(Error),
    End,
    OnDone(Vec<Match>),
}

/// Everything one search did, as heard by listeners attached right after the call.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    /// Every event, and stage 2's `on_done` calls, in the order they happened.
    pub events: Vec<Event>,
    /// The `Error` events in full, for their messages.
    pub errors: Vec<Error>,
    /// The argument of every `on_done` call, in short.
    pub done: Vec<Vec<Event>>,
}

impl Heard {
    fn from_raw(files: &TestDir, log: &[Raw]) -> Self {
        let short = |found: &Match| shorten(files, found);
        let mut heard = Self::default();
        for raw in log {
            heard.events.push(match raw {
                Raw::Start(paths) => Event::Start(paths.iter().map(|p| name(files, p)).collect()),
                Raw::FileRead(path) => Event::FileRead(name(files, path)),
                Raw::Match(found) => short(found),
                Raw::Error(event) => {
                    heard.errors.push(event.clone());
                    Event::Error(name(files, &event.path))
                }
                Raw::End => Event::End,
                Raw::OnDone(matches) => {
                    heard.done.push(matches.iter().map(short).collect());
                    Event::OnDone(matches.len())
                }
            });
        }
        heard
    }

    /// The events without the `on_done` calls: what the emitter's listeners heard.
    pub fn emitted(&self) -> Vec<Event> {
        let events = self.events.iter();
        events
            .filter(|event| !matches!(event, Event::OnDone(_)))
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Listening to a search
// ---------------------------------------------------------------------------------------------

/// The callback a test hands to `find_regex`.
pub type OnDone = Box<dyn FnOnce(Vec<Match>) + Send>;

/// A search being listened to: one listener per event type, attached right after the call.
pub struct Listening<'a> {
    files: &'a TestDir,
    emitter: EventEmitter,
    log: Arc<Mutex<Vec<Raw>>>,
    /// Bumped at every event, so a test can wait for one.
    changes: tokio::sync::watch::Receiver<usize>,
    _subscriptions: Vec<Subscription>,
}

/// Starts a search with `begin` (which gets an `on_done` to pass on, or to ignore in stage 1)
/// and listens to it from right after the call.
pub fn listen(files: &TestDir, begin: impl FnOnce(OnDone) -> EventEmitter) -> Listening<'_> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (changed, changes) = tokio::sync::watch::channel(0);
    let record: Arc<dyn Fn(Raw) + Send + Sync> = {
        let log = log.clone();
        Arc::new(move |raw| {
            log.lock().unwrap().push(raw);
            changed.send_modify(|count| *count += 1);
        })
    };
    let on_done: OnDone = {
        let record = record.clone();
        Box::new(move |matches| record(Raw::OnDone(matches)))
    };
    let emitter = begin(on_done);

    // Listeners attached only now, after the call returned: one per event type.
    let subscriptions = vec![
        listener(&emitter, &record, |event: &Start| {
            Raw::Start(event.files.clone())
        }),
        listener(&emitter, &record, |read: &FileRead| {
            Raw::FileRead(read.path.clone())
        }),
        listener(&emitter, &record, |found: &Match| Raw::Match(found.clone())),
        listener(&emitter, &record, |event: &Error| Raw::Error(event.clone())),
        listener(&emitter, &record, |_: &End| Raw::End),
    ];
    Listening {
        files,
        emitter,
        log,
        changes,
        _subscriptions: subscriptions,
    }
}

/// Listens to `E`, recording each as `to_raw` says.
fn listener<E: std::any::Any + Send + Sync>(
    emitter: &EventEmitter,
    record: &Arc<dyn Fn(Raw) + Send + Sync>,
    to_raw: fn(&E) -> Raw,
) -> Subscription {
    let record = record.clone();
    emitter.on(move |event: &E| record(to_raw(event)))
}

impl Listening<'_> {
    /// The emitter the search returned.
    pub fn emitter(&self) -> &EventEmitter {
        &self.emitter
    }

    /// What was heard so far.
    pub fn heard(&self) -> Heard {
        Heard::from_raw(self.files, &self.log.lock().unwrap())
    }

    /// Waits until the events heard so far satisfy `ready`, for at most `limit`; `false` if
    /// they never did.
    pub async fn wait_for(&mut self, limit: Duration, ready: impl Fn(&[Event]) -> bool) -> bool {
        let wait = async {
            while !ready(&self.heard().events) {
                if self.changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok() && ready(&self.heard().events)
    }

    /// Waits for `End` (failing the test, with a hint of `stage`, if it never comes), keeps
    /// listening for a virtual second to catch anything emitted late, and returns everything
    /// heard.
    pub async fn finish(self, stage: Stage) -> Heard {
        self.finish_after(PATIENCE, AFTER_END, stage).await
    }

    /// [`finish`](Self::finish), waiting at most `limit` for `End` and listening `after` it.
    pub async fn finish_after(mut self, limit: Duration, after: Duration, stage: Stage) -> Heard {
        if !self
            .wait_for(limit, |events| events.contains(&Event::End))
            .await
        {
            let events = self.heard().events;
            fail(
                "End was never emitted",
                format_args!(
                    "the search stopped after {} event(s): {}",
                    events.len(),
                    report::list(&events)
                ),
                "End, once every file has been searched",
                &stage.hint(
                    "emit End once every file is done, whatever happened to them: a search task \
                     that panics (an unwrap on a line that is not UTF-8) or leaves early (a `?` on \
                     one file's error) never gets there",
                ),
            );
        }
        // Anything after End is a bug: keep listening a while. The paused clock does not move
        // while a file operation is in flight, so a search still running gets to finish first.
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
        self.heard()
    }
}

/// Starts a search with `begin`, waits for its `End`, listens a virtual second more, and returns
/// everything heard.
pub async fn observe(
    files: &TestDir,
    stage: Stage,
    begin: impl FnOnce(OnDone) -> EventEmitter,
) -> Heard {
    listen(files, begin).finish(stage).await
}

/// `FindRegex::new(pattern)`, for tests that are not about its errors.
pub fn finder(pattern: &str) -> FindRegex {
    FindRegex::new(pattern).unwrap_or_else(|error| {
        fail(
            &format!("FindRegex::new({pattern:?})"),
            format_args!("Err({error:?})"),
            "Ok(a FindRegex): the pattern is valid",
            &STAGE1.hint(
                "a valid pattern must give Ok: compile it with regex::Regex::new and keep the \
                 Regex in the FindRegex",
            ),
        )
    })
}

/// `find_regex(paths, pattern, on_done)`, for tests that are not about its errors.
pub fn find_regex_ok(paths: &[&PathBuf], pattern: &str, on_done: OnDone) -> EventEmitter {
    find_regex(paths.iter().copied(), pattern, on_done).unwrap_or_else(|error| {
        fail(
            &format!("find_regex(.., {pattern:?}, ..)"),
            format_args!("Err({error:?})"),
            "Ok(the emitter): the pattern is valid",
            &STAGE2
                .hint("a valid pattern must give Ok(emitter): compile it as FindRegex::new does"),
        )
    })
}

/// A stage 1 search of `paths` for `pattern`, observed to its end.
pub async fn search(files: &TestDir, paths: &[&PathBuf], pattern: &str) -> Heard {
    observe(files, STAGE1, |_| {
        finder(pattern).files(paths.iter().copied()).find()
    })
    .await
}

/// A stage 2 search of `paths` for `pattern` through `find_regex`, observed to its end.
pub async fn search_with_callback(files: &TestDir, paths: &[&PathBuf], pattern: &str) -> Heard {
    observe(files, STAGE2, |on_done| {
        find_regex_ok(paths, pattern, on_done)
    })
    .await
}

/// Checks that `on_done` was called exactly once, and returns its argument.
#[track_caller]
pub fn called_once(heard: &Heard) -> Vec<Event> {
    match heard.done.as_slice() {
        [matches] => matches.clone(),
        [] => fail(
            "on_done was never called",
            format_args!(
                "never called; the events were {}",
                report::list(&heard.events)
            ),
            "on_done called exactly once, after End",
            &STAGE2.hint(
                "call on_done with the matches once the search is over, even when there are none \
                 or some files failed: a search that ends without calling it leaves its caller \
                 waiting for ever",
            ),
        ),
        calls => fail(
            "on_done was called more than once",
            format_args!("{} calls", calls.len()),
            "on_done called exactly once",
            &STAGE2.hint("call on_done once, at the very end"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing events
// ---------------------------------------------------------------------------------------------

/// Asserts the events are exactly `expected`, naming the first difference. When the difference
/// looks like one of the usual mistakes (see [`diagnose`]), the hint speaks of that mistake
/// instead of the test's own `hint`.
#[track_caller]
pub fn check_events(what: &str, actual: &[Event], expected: &[Event], hint: &Hint) {
    let hint = diagnose(actual, expected, hint).unwrap_or_else(|| hint.clone());
    check_seq(what, actual, expected, &hint);
}

/// The file an event is about.
fn file_of(event: &Event) -> Option<&str> {
    match event {
        Event::FileRead(file) | Event::Match(file, ..) | Event::Error(file) => Some(file),
        _ => None,
    }
}

/// The file and line a `Match` is on.
fn line_of(event: &Event) -> Option<(&str, usize)> {
    match event {
        Event::Match(file, line, _) => Some((file, *line)),
        _ => None,
    }
}

/// A hint for the mistakes any search can show, whatever the test is about: at the first
/// difference they explain more than the test's own hint does.
pub fn diagnose(actual: &[Event], expected: &[Event], hint: &Hint) -> Option<Hint> {
    let at = match first_difference(actual, expected) {
        Difference::Same => return None,
        Difference::At(at) => at,
        Difference::Missing { from } | Difference::Extra { from } => from,
    };
    let is_start = |event: Option<&Event>| matches!(event, Some(Event::Start(_)));
    if is_start(expected.first()) && !is_start(actual.first()) {
        return Some(hint.instead(
            "Start must be the first event a listener hears: emit it from the spawned task, not \
             inside find() or find_regex(), which return before anyone can listen",
        ));
    }
    if let Some(end) = actual.iter().position(|event| *event == Event::End)
        && actual[end + 1..]
            .iter()
            .any(|event| !matches!(event, Event::OnDone(_)))
    {
        return Some(hint.instead(
            "End must be the last event, and come once: emit it after the last file is done, and \
             nothing after it",
        ));
    }
    let (got, due) = (actual.get(at), expected.get(at));
    // The match due here is on the line of the one before it, and what came is not on that line.
    let due_line = due.and_then(line_of);
    let another_on_the_line = due_line.is_some()
        && at > 0
        && line_of(&expected[at - 1]) == due_line
        && got.and_then(line_of) != due_line;
    let text = match (got, due) {
        (Some(Event::Start(_)), Some(Event::Start(_))) => {
            "Start lists the files exactly as they were given: in that order (not sorted), the \
             same file as often as it was given, each path as it was given (not canonicalized, \
             not just its name)"
                .to_owned()
        }
        (Some(Event::Match(file, ..)), Some(Event::FileRead(due_file))) if file == due_file => {
            format!(
                "FileRead({file}) comes before {file}'s matches: emit it as soon as the file is \
                 open, then search it"
            )
        }
        (Some(Event::FileRead(file)), Some(Event::Error(due_file))) if file == due_file => {
            format!(
                "{file} cannot be opened, so it gets an Error and no FileRead: emit FileRead only \
                 once File::open has succeeded"
            )
        }
        (
            Some(Event::Match(file, line, text)),
            Some(Event::Match(due_file, due_line, due_text)),
        ) if (file, text) == (due_file, due_text) && line != due_line => {
            format!(
                "{text:?} is on line {due_line} of {file}, not line {line}: count lines from 1, \
                 every line (empty ones too), starting again at 1 for each file"
            )
        }
        (
            Some(Event::Match(file, line, text)),
            Some(Event::Match(due_file, due_line, due_text)),
        ) if (file, line) == (due_file, due_line) && text.ends_with(['\r', '\n']) => {
            format!(
                "the match {text:?} holds the line ending: match each line without its \"\\n\" \
                 (or \"\\r\\n\"), so that it ends as {due_text:?}"
            )
        }
        (
            Some(Event::Match(file, line, text)),
            Some(Event::Match(due_file, due_line, due_text)),
        ) if (file, line) == (due_file, due_line) && text.contains(due_text.as_str()) => {
            format!(
                "a Match's text is what the pattern matched ({due_text:?}: found.as_str()), not \
                 the whole line ({text:?})"
            )
        }
        _ if another_on_the_line => {
            "every match on a line is its own Match event, left to right: regex.find_iter(line), \
             not regex.find(line), which gives only the first"
                .to_owned()
        }
        // The search went on to another file, and this one never had its FileRead.
        (Some(got), Some(Event::FileRead(file)))
            if file_of(got).is_some_and(|other| other != file)
                && !actual.contains(&file_read(file)) =>
        {
            format!(
                "{file} opens, so it gets its FileRead, even when it is empty or nothing in it \
                 matches: emit FileRead right after the open, not with a first line or match"
            )
        }
        (Some(got), Some(due))
            if file_of(got).is_some()
                && file_of(due).is_some()
                && file_of(got) != file_of(due)
                && actual[at..].contains(due)
                && expected[at..]
                    .iter()
                    .any(|event| file_of(event) == file_of(got)) =>
        {
            "search the files one after another, in the order given: all of one file's events \
             (FileRead and its matches, or its Error) before anything of the next file"
                .to_owned()
        }
        _ => return None,
    };
    Some(hint.instead(text))
}

// ---------------------------------------------------------------------------------------------
// Test files
// ---------------------------------------------------------------------------------------------

/// The pattern that finds the needles of [`write_large`].
pub const NEEDLE: &str = "NEEDLE-[0-9]+";

/// Writes a file of `half` twice (so about twice its size), with a needle on its first line, one in the
/// middle and one on its last line (without a newline); returns its path and the matches a search
/// for [`NEEDLE`] finds in it.
pub fn write_large(files: &TestDir, name: &str, half: &[u8]) -> (PathBuf, Vec<Event>) {
    let mut contents = b"NEEDLE-1 at the start\n".to_vec();
    contents.extend_from_slice(half);
    contents.extend_from_slice(b"\nin the middle: NEEDLE-2\n");
    contents.extend_from_slice(half);
    contents.extend_from_slice(b"\nNEEDLE-3 at the end, without a newline");
    let matches = needles(name, &contents, "NEEDLE-");
    (files.write(name, &contents), matches)
}

/// The expected match of every `needle` followed by digits in `contents`, with its line.
fn needles(name: &str, contents: &[u8], needle: &str) -> Vec<Event> {
    let text = std::str::from_utf8(contents).expect("test files are UTF-8");
    text.match_indices(needle)
        .map(|(at, _)| {
            let line = text[..at].matches('\n').count() + 1;
            let digits = text[at + needle.len()..]
                .chars()
                .take_while(char::is_ascii_digit);
            found(
                name,
                line,
                &format!("{needle}{}", digits.collect::<String>()),
            )
        })
        .collect()
}

/// Writes lines far longer than any reader's buffer: on line 1, `NEEDLE` across every power of
/// two from 4 KiB to 64 KiB (where a reader that reads fixed-size chunks cuts); on line 2, 80 KB
/// of `é` whose two bytes straddle every such boundary (a chunk decoded alone is not UTF-8); on
/// line 3, `NEEDLE` again. Returns the path and the matches of `NEEDLE|END`.
pub fn write_long_lines(files: &TestDir, name: &str) -> (PathBuf, Vec<Event>) {
    let mut line1 = vec![b'.'; 70_000];
    for boundary in [4096, 8192, 16_384, 32_768, 65_536] {
        line1[boundary - 3..boundary + 3].copy_from_slice(b"NEEDLE");
    }
    let mut contents = line1;
    contents.extend_from_slice(b"END\n#");
    // Line 2 starts at an even offset, so after the '#' every `é` starts at an odd one and every
    // even offset falls between its two bytes.
    contents.extend_from_slice("é".repeat(40_000).as_bytes());
    contents.extend_from_slice(b" END\nNEEDLE");
    let mut matches = vec![found(name, 1, "NEEDLE"); 5];
    matches.extend([
        found(name, 1, "END"),
        found(name, 2, "END"),
        found(name, 3, "NEEDLE"),
    ]);
    (files.write(name, &contents), matches)
}

/// Searches `path` for [`NEEDLE`] under a heap measurement, and checks it found `matches`.
pub async fn measured_search(
    files: &TestDir,
    path: &PathBuf,
    matches: &[Event],
    hint: &Hint,
) -> HeapReport {
    let (heard, report) = heap::measure_async(search(files, &[path], NEEDLE)).await;
    let name = name(files, path);
    let mut expected = vec![start(&[&name]), file_read(&name)];
    expected.extend_from_slice(matches);
    expected.push(Event::End);
    check_events(
        &format!("events of a search of {name} for {NEEDLE}"),
        &heard.events,
        &expected,
        hint,
    );
    report
}

/// The writer of a named pipe that opens it, and then writes each later part, when the test says
/// [`go`](Self::go), or after `fallback` of real time if the go never comes. The harness's
/// `PipeFeeder` (with `Gate::Test`) does the writing; this adds the go for the open and the
/// fallback. A search that waits for the pipe on the runtime's own thread keeps the test, a task
/// on that thread, from saying go: the writer then gives up waiting after `fallback`, and that
/// wait is what a heartbeat beside the search sees.
pub struct GatedPipe {
    go: std::sync::mpsc::Sender<()>,
}

impl GatedPipe {
    /// Starts the writer of the pipe at `path`; it waits for the first go before opening it.
    pub fn start(path: &Path, parts: &[&str], fallback: Duration) -> Self {
        let (go, told) = std::sync::mpsc::channel::<()>();
        let path = path.to_owned();
        let parts: Vec<Vec<u8>> = parts.iter().map(|part| part.as_bytes().to_vec()).collect();
        let later = parts.len().saturating_sub(1);
        std::thread::spawn(move || {
            // A timeout is a go, and so is the test's end (the sender dropped).
            let _ = told.recv_timeout(fallback);
            let feeder = PipeFeeder::start(&path, parts, Gate::Test);
            for _ in 0..later {
                let _ = told.recv_timeout(fallback);
                feeder.release();
            }
        });
        Self { go }
    }

    /// Lets the writer open the pipe (the first time), or write its next part.
    pub fn go(&self) {
        let _ = self.go.send(());
    }
}
