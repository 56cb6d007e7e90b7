//! The regex-finder kata's suite, run against both `exercises/regex-finder` and
//! `solutions/regex-finder`.
//!
//! Every test writes its files into a fresh temporary directory, starts a search, attaches its
//! listeners *after* the call (as a user would), and records every event in order, then keeps
//! listening after `End` to catch anything late. Reports name files by their name in that
//! directory, so `a.txt:3 "42"` is the match `42` on line 3 of `a.txt`. Stage by stage, the tests
//! reject the usual wrong answers: a `Start` emitted before anyone could listen, an `End` that is
//! not last, lines counted from 0, one match per line, a lost last line, a search that stops at
//! the first bad file, a panic on bytes that are not UTF-8, a file read whole instead of line by
//! line, and a callback called at the wrong time, twice or never.

kata_harness::install_allocator!();

use std::any::Any;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_emitter::{EventEmitter, Subscription};
use kata_harness::files::TestDir;
use kata_harness::heap::{self, HeapReport};
use kata_harness::leaks::TaskBaseline;
use kata_harness::report::{self, check_eq, fail};
use regex::Regex;
use regex_finder::{End, Error, FileRead, FindRegex, FindRegexError, Match, Start, find_regex};
use rstest::rstest;

const STAGE1: &str = "exercises/regex-finder/README.md, stage 1";
const STAGE2: &str = "exercises/regex-finder/README.md, stage 2";

/// Long enough for any search here: a search still going after this never ends.
const PATIENCE: Duration = Duration::from_secs(60);

/// `text`, then where to read more about it.
fn hint(text: &str, stage: &str) -> String {
    format!("{text} ({stage})")
}

// ---------------------------------------------------------------------------------------------
// TestDir, events and how a search is observed
// ---------------------------------------------------------------------------------------------

/// One thing heard, in short: files by their name in the test's directory.
#[derive(Clone, PartialEq, Eq)]
enum Event {
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

/// Shortens paths in the test directory to their file name. Any other path (say, a bare file
/// name where the full path was given) is shown in full and marked, so it never looks right.
#[derive(Clone)]
struct Namer(PathBuf);

impl Namer {
    fn name(&self, path: &Path) -> String {
        match path.strip_prefix(&self.0) {
            Ok(name) if path.is_absolute() => name.display().to_string(),
            _ => format!("{} (not the path given)", path.display()),
        }
    }

    fn found(&self, found: &Match) -> Event {
        Event::Match(self.name(&found.path), found.line, found.text.clone())
    }
}

/// Shorthands for expected events.
fn start(names: &[&str]) -> Event {
    Event::Start(names.iter().map(|name| (*name).to_owned()).collect())
}
fn file_read(name: &str) -> Event {
    Event::FileRead(name.to_owned())
}
fn found(name: &str, line: usize, text: &str) -> Event {
    Event::Match(name.to_owned(), line, text.to_owned())
}
fn error(name: &str) -> Event {
    Event::Error(name.to_owned())
}

/// Everything one search did, as heard by listeners attached right after the call.
#[derive(Debug, Default)]
struct Heard {
    /// Every event, and stage 2's `on_done`, in the order they happened.
    events: Vec<Event>,
    /// The `Error` events in full, for their messages.
    errors: Vec<Error>,
    /// The argument of every `on_done` call, in short.
    done: Vec<Vec<Event>>,
}

type OnDone = Box<dyn FnOnce(Vec<Match>) + Send>;

/// Starts a search with `begin` (which gets an `on_done` to pass on, or to ignore in stage 1),
/// listens from right after the call, waits for `End`, then keeps listening for a virtual second
/// to catch anything emitted late. Fails the test if `End` never comes.
async fn observe(files: &TestDir, hint: &str, begin: impl FnOnce(OnDone) -> EventEmitter) -> Heard {
    let namer = Namer(files.root().to_owned());
    let heard = Arc::new(Mutex::new(Heard::default()));
    let ended = Arc::new(tokio::sync::Notify::new());

    let on_done: OnDone = {
        let (heard, namer) = (heard.clone(), namer.clone());
        Box::new(move |matches: Vec<Match>| {
            let short: Vec<Event> = matches.iter().map(|m| namer.found(m)).collect();
            let mut heard = heard.lock().unwrap();
            heard.events.push(Event::OnDone(short.len()));
            heard.done.push(short);
        })
    };
    let emitter = begin(on_done);

    // Listeners attached only now, after the call returned.
    let _subscriptions = [
        record(&emitter, &heard, &namer, |heard, namer, event: &Start| {
            let names = event.files.iter().map(|path| namer.name(path)).collect();
            heard.events.push(Event::Start(names));
        }),
        record(&emitter, &heard, &namer, |heard, namer, read: &FileRead| {
            heard.events.push(Event::FileRead(namer.name(&read.path)));
        }),
        record(&emitter, &heard, &namer, |heard, namer, event: &Match| {
            heard.events.push(namer.found(event));
        }),
        record(&emitter, &heard, &namer, |heard, namer, event: &Error| {
            heard.events.push(Event::Error(namer.name(&event.path)));
            heard.errors.push(event.clone());
        }),
        record(&emitter, &heard, &namer, |heard, _, _: &End| {
            heard.events.push(Event::End);
        }),
        {
            let ended = ended.clone();
            emitter.on(move |_: &End| ended.notify_one())
        },
    ];

    if tokio::time::timeout(PATIENCE, ended.notified())
        .await
        .is_err()
    {
        let events = heard.lock().unwrap().events.clone();
        fail(
            "End was never emitted",
            "End, once every file has been searched",
            format_args!(
                "the search stopped after {} event(s): {}",
                events.len(),
                report::list(&events)
            ),
            &format!(
                "emit End after the last file, whatever happened to the files before it; a \
                 panic in the search task also ends it silently ({hint})"
            ),
        );
    }
    // Anything after End is a bug: keep listening a while. The paused clock does not move while
    // a file operation is in flight, so a search still running gets to finish first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::mem::take(&mut *heard.lock().unwrap())
}

/// Listens to `E`, recording each one into `heard`.
fn record<E: Any + Send + Sync>(
    emitter: &EventEmitter,
    heard: &Arc<Mutex<Heard>>,
    namer: &Namer,
    log: impl Fn(&mut Heard, &Namer, &E) + Send + Sync + 'static,
) -> Subscription {
    let (heard, namer) = (heard.clone(), namer.clone());
    emitter.on(move |event: &E| log(&mut heard.lock().unwrap(), &namer, event))
}

/// `FindRegex::new(pattern)` for tests that are not about its errors.
fn finder(pattern: &str, stage: &str) -> FindRegex {
    FindRegex::new(pattern).unwrap_or_else(|error| {
        fail(
            &format!("FindRegex::new({pattern:?})"),
            "Ok(a FindRegex): the pattern is valid",
            format_args!("Err({error:?})"),
            &hint("compile the pattern with regex::Regex::new", stage),
        )
    })
}

/// A stage 1 search of `paths` for `pattern`, observed.
async fn search(files: &TestDir, paths: &[&PathBuf], pattern: &str) -> Heard {
    observe(files, STAGE1, |_| {
        finder(pattern, STAGE1).files(paths.iter().copied()).find()
    })
    .await
}

/// A stage 2 search of `paths` for `pattern` through `find_regex`, observed.
async fn search_with_callback(files: &TestDir, paths: &[&PathBuf], pattern: &str) -> Heard {
    observe(files, STAGE2, |on_done| {
        find_regex(paths.iter().copied(), pattern, on_done).unwrap_or_else(|error| {
            fail(
                &format!("find_regex(.., {pattern:?}, ..)"),
                "Ok(the emitter): the pattern is valid",
                format_args!("Err({error:?})"),
                &hint("compile the pattern as FindRegex::new does", STAGE2),
            )
        })
    })
    .await
}

/// Asserts the events are exactly `expected`, naming the first difference.
#[track_caller]
fn check_events(what: &str, actual: &[Event], expected: &[Event], hint: &str) {
    if actual == expected {
        return;
    }
    let at = actual
        .iter()
        .zip(expected)
        .position(|(a, e)| a != e)
        .unwrap_or(actual.len().min(expected.len()));
    let detail = match (actual.get(at), expected.get(at)) {
        (Some(a), Some(e)) => format!("event #{} is {a:?}, expected {e:?}", at + 1),
        (None, Some(e)) => format!(
            "{} event(s) missing, from #{}: {e:?}",
            expected.len() - at,
            at + 1
        ),
        (Some(a), None) => format!(
            "{} extra event(s), from #{}: {a:?}",
            actual.len() - at,
            at + 1
        ),
        (None, None) => "the events differ".to_owned(),
    };
    let hint = diagnose(actual, expected).unwrap_or_else(|| hint.to_owned());
    fail(
        &format!("{what}: {detail}"),
        report::list(expected),
        report::list(actual),
        &hint,
    );
}

/// A hint for the mistakes any search can show, whatever the test is about: they explain a
/// difference better than the test's own hint does.
fn diagnose(actual: &[Event], expected: &[Event]) -> Option<String> {
    let is_start = |event: Option<&Event>| matches!(event, Some(Event::Start(_)));
    if is_start(expected.first()) && !is_start(actual.first()) {
        return Some(hint(
            "Start must be the first event a listener hears: emit it from the spawned task, \
             not inside find() or find_regex(), which return before anyone can listen",
            STAGE1,
        ));
    }
    if let Some(end) = actual.iter().position(|event| *event == Event::End)
        && actual[end + 1..]
            .iter()
            .any(|event| !matches!(event, Event::OnDone(_)))
    {
        return Some(hint(
            "End must be the last event: emit it once the last file is done, and nothing after",
            STAGE1,
        ));
    }
    let first_difference = actual.iter().zip(expected).find(|(a, e)| a != e);
    if let Some((Event::Match(file, ..), Event::FileRead(due))) = first_difference
        && file == due
    {
        return Some(hint(
            &format!(
                "FileRead({file}) comes before {file}'s matches: emit it as soon as the file is \
                 open, then search it"
            ),
            STAGE1,
        ));
    }
    if let Some((Event::Match(file, line, text), Event::Match(due_file, due_line, due_text))) =
        first_difference
        && (file, text) == (due_file, due_text)
    {
        return Some(hint(
            &format!(
                "{text:?} is on line {due_line} of {file}, not line {line}: count lines from 1, \
                 every line (empty ones too), starting again at 1 for each file"
            ),
            STAGE1,
        ));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Stage 1: FindRegex emits Start, FileRead, Match, Error and End
// ---------------------------------------------------------------------------------------------

#[kata_harness::test]
async fn stage1_start_comes_first_with_the_files_in_the_order_given() {
    let files = TestDir::new();
    let c = files.write("c.txt", "3\n");
    let a = files.write("a.txt", "1\n");
    let b = files.write("b.txt", "2\n");
    let heard = observe(&files, STAGE1, |_| {
        finder(r"\d", STAGE1).file(&c).files([&a, &b]).find()
    })
    .await;

    let starts = heard
        .events
        .iter()
        .filter(|event| matches!(event, Event::Start(_)))
        .count();
    if starts == 0 {
        fail(
            "a listener attached right after find() did not hear Start",
            format_args!("{:?} first", start(&["c.txt", "a.txt", "b.txt"])),
            format_args!("no Start; heard {}", report::list(&heard.events)),
            &hint(
                "emit Start from the spawned task, not inside find(): an event emitted before \
                 find() returns reaches nobody, because nobody could listen yet",
                STAGE1,
            ),
        );
    }
    check_eq(
        "Start events heard",
        starts,
        1,
        &hint("Start is emitted once, for the whole search", STAGE1),
    );
    check_eq(
        "the first event",
        heard.events.first(),
        Some(&start(&["c.txt", "a.txt", "b.txt"])),
        &hint(
            "Start comes before anything else and lists the files in the order they were \
             given: .file(c) then .files([a, b]) is [c, a, b]",
            STAGE1,
        ),
    );
}

#[kata_harness::test]
async fn stage1_end_comes_last_and_the_task_ends() {
    let files = TestDir::new();
    let a = files.write("a.txt", "1 2\n3\n");
    let b = files.write("b.txt", "4");
    let baseline = TaskBaseline::capture();
    let heard = search(&files, &[&a, &b], r"\d").await;

    let ends = heard.events.iter().filter(|e| **e == Event::End).count();
    check_eq(
        "End events heard",
        ends,
        1,
        &hint("End is emitted once, when the whole search is over", STAGE1),
    );
    check_eq(
        "the last event",
        heard.events.last(),
        Some(&Event::End),
        &hint(
            "End comes after the last file's last match: nothing is emitted after it",
            STAGE1,
        ),
    );
    baseline
        .assert_back(
            Duration::ZERO,
            "the search's task",
            &hint("the search task returns after emitting End", STAGE1),
        )
        .await;
}

#[rstest]
#[case::one_match("abc 42 def\n", &[(1, "42")], "a line with one number")]
#[case::several_on_a_line(
    "1 22 333\n",
    &[(1, "1"), (1, "22"), (1, "333")],
    "every match on a line is its own Match event, in the order they appear: \
     regex.find_iter(line), not regex.find(line)"
)]
#[case::lines_count_from_1(
    "a\nb 5\n",
    &[(2, "5")],
    "line numbers start at 1, like an editor's: the second line is line 2"
)]
#[case::empty_lines_count(
    "\n\n\n9\n",
    &[(4, "9")],
    "an empty line is still a line: count it"
)]
#[case::last_line_without_newline(
    "1\n22",
    &[(1, "1"), (2, "22")],
    "the last line need not end with a newline: it is a line all the same"
)]
#[case::no_match("none here\nat all\n", &[], "a file without matches gives FileRead and nothing else")]
#[case::empty_file("", &[], "an empty file gives FileRead and nothing else")]
#[kata_harness::test]
async fn stage1_finds_every_match_with_its_line_and_text(
    #[case] contents: &str,
    #[case] matches: &[(usize, &str)],
    #[case] why: &str,
) {
    let files = TestDir::new();
    let a = files.write("a.txt", contents);
    let heard = search(&files, &[&a], r"\d+").await;

    let mut expected = vec![start(&["a.txt"]), file_read("a.txt")];
    expected.extend(
        matches
            .iter()
            .map(|&(line, text)| found("a.txt", line, text)),
    );
    expected.push(Event::End);
    check_events(
        &format!("events of a search of {contents:?} for \\d+"),
        &heard.events,
        &expected,
        &hint(why, STAGE1),
    );
}

#[kata_harness::test]
async fn stage1_a_line_ending_is_not_part_of_the_line() {
    let files = TestDir::new();
    let a = files.write("a.txt", "x 1\r\ny 22\nz 333");
    let heard = search(&files, &[&a], r"\d+$").await;
    check_events(
        "events of a search for \\d+$ (a number at the end of a line)",
        &heard.events,
        &[
            start(&["a.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "1"),
            found("a.txt", 2, "22"),
            found("a.txt", 3, "333"),
            Event::End,
        ],
        &hint(
            "match each line without its line ending (\\n or \\r\\n), as BufRead::lines gives \
             it: otherwise `$` never matches before the newline",
            STAGE1,
        ),
    );
}

#[kata_harness::test]
async fn stage1_searches_several_files_in_the_order_given() {
    let files = TestDir::new();
    let b = files.write("b.txt", "b 1\nb 2 3\n");
    let empty = files.write("empty.txt", "");
    let none = files.write("none.txt", "nothing\n");
    let a = files.write("a.txt", "\na 4");
    let heard = search(&files, &[&b, &empty, &none, &a], r"\d").await;
    check_events(
        "events of a search of four files",
        &heard.events,
        &[
            start(&["b.txt", "empty.txt", "none.txt", "a.txt"]),
            file_read("b.txt"),
            found("b.txt", 1, "1"),
            found("b.txt", 2, "2"),
            found("b.txt", 2, "3"),
            file_read("empty.txt"),
            file_read("none.txt"),
            file_read("a.txt"),
            found("a.txt", 2, "4"),
            Event::End,
        ],
        &hint(
            "search the files one after another, in the order given (not sorted), each with \
             its own line numbers starting at 1; a file with no match still gets its FileRead",
            STAGE1,
        ),
    );
}

#[kata_harness::test]
async fn stage1_each_file_is_read_before_its_matches() {
    let files = TestDir::new();
    let a = files.write("a.txt", "1\n2\n");
    let b = files.write("b.txt", "3\n");
    let heard = search(&files, &[&a, &b], r"\d").await;
    let mut current = None;
    for (at, event) in heard.events.iter().enumerate() {
        match event {
            Event::FileRead(name) => current = Some(name.clone()),
            Event::Match(name, ..) if current.as_ref() != Some(name) => fail(
                &format!(
                    "event #{} is {event:?}, but the last FileRead was not {name}",
                    at + 1
                ),
                format_args!("FileRead({name}) before {name}'s matches"),
                format_args!("{}", report::list(&heard.events)),
                &hint(
                    "emit FileRead as soon as the file is open, then its matches as you find \
                     them",
                    STAGE1,
                ),
            ),
            _ => {}
        }
    }
    check_eq(
        "FileRead events",
        heard
            .events
            .iter()
            .filter(|event| matches!(event, Event::FileRead(_)))
            .cloned()
            .collect::<Vec<_>>(),
        vec![file_read("a.txt"), file_read("b.txt")],
        &hint("one FileRead per file, in order", STAGE1),
    );
}

#[kata_harness::test]
async fn stage1_no_files_is_start_then_end() {
    let files = TestDir::new();
    let heard = search(&files, &[], "x").await;
    check_events(
        "events of a search of no files",
        &heard.events,
        &[start(&[]), Event::End],
        &hint("with no files, the search still starts and ends", STAGE1),
    );
}

#[kata_harness::test]
async fn stage1_a_missing_file_is_an_error_and_the_search_carries_on() {
    let files = TestDir::new();
    let a = files.write("a.txt", "1\n");
    let missing = files.path("missing.txt");
    let b = files.write("b.txt", "2\n");
    let heard = search(&files, &[&a, &missing, &b], r"\d").await;
    check_events(
        "events of a search of [a.txt, missing.txt, b.txt]",
        &heard.events,
        &[
            start(&["a.txt", "missing.txt", "b.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "1"),
            error("missing.txt"),
            file_read("b.txt"),
            found("b.txt", 1, "2"),
            Event::End,
        ],
        &hint(
            "a file that cannot be opened gets an Error event naming it (and no FileRead: it \
             was never open), then the search goes on with the next file",
            STAGE1,
        ),
    );
    let message = &heard.errors[0].error;
    if message.trim().is_empty() {
        fail(
            "the Error event's message for missing.txt",
            "a message saying what went wrong",
            "an empty message",
            &hint("put the io::Error's text in `error`", STAGE1),
        );
    }
}

/// A file the test cannot read, where the system enforces that (not for root, who reads
/// everything): `None` where it does not.
fn locked_file(files: &TestDir, name: &str) -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = files.write(name, "5\n");
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
async fn stage1_an_unreadable_file_is_an_error_and_the_search_carries_on() {
    let files = TestDir::new();
    let dir = files.mkdir("folder");
    let locked = locked_file(&files, "locked.txt");
    let b = files.write("b.txt", "2\n");
    let mut paths = vec![&dir];
    paths.extend(&locked);
    paths.push(&b);
    let heard = search(&files, &paths, r"\d").await;

    // Some systems open a directory and fail at its first read, others fail to open it: a
    // FileRead for it is allowed, not required.
    let events: Vec<Event> = heard
        .events
        .into_iter()
        .filter(|event| *event != file_read("folder"))
        .collect();
    let mut names = vec!["folder"];
    let mut expected = vec![error("folder")];
    if locked.is_some() {
        names.push("locked.txt");
        expected.push(error("locked.txt"));
    }
    names.push("b.txt");
    expected.insert(0, start(&names));
    expected.extend([file_read("b.txt"), found("b.txt", 1, "2"), Event::End]);
    check_events(
        &format!(
            "events of a search of [{}] (folder is a directory{})",
            names.join(", "),
            if locked.is_some() {
                ", locked.txt may not be read"
            } else {
                ""
            }
        ),
        &events,
        &expected,
        &hint(
            "a file that cannot be opened or read is an Error event for that file; then go on \
             with the next file",
            STAGE1,
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_file_that_is_not_utf8_is_reported_and_the_others_searched() {
    let files = TestDir::new();
    let bad = files.write("bad.txt", b"ok 1\n\xff\xfe 2\nok 3\n");
    let good = files.write("good.txt", "ok 4\n");
    let heard = search(&files, &[&bad, &good], r"\d").await;
    check_events(
        "events of a search of [bad.txt (line 2 is not UTF-8), good.txt]",
        &heard.events,
        &[
            start(&["bad.txt", "good.txt"]),
            file_read("bad.txt"),
            found("bad.txt", 1, "1"),
            error("bad.txt"),
            file_read("good.txt"),
            found("good.txt", 1, "4"),
            Event::End,
        ],
        &hint(
            "the matches before the bad line count; at the bad line emit an Error for the file \
             and move on to the next file (no panic, no unwrap on the line)",
            STAGE1,
        ),
    );
    let message = &heard.errors[0].error;
    let says_utf8 = Regex::new(r"(?i)utf-?8").unwrap().is_match(message);
    let says_line = Regex::new(r"(?i)\bline 2\b").unwrap().is_match(message);
    if !(says_utf8 && says_line) {
        fail(
            "the Error event's message for bad.txt",
            "a message that says the file is not UTF-8, and at which line (\"line 2\")",
            format_args!("{message:?}"),
            &hint(
                "e.g. \"line 2 is not valid UTF-8\": count lines as you read them; read raw \
                 bytes with read_until(b'\\n', ..) and check them with std::str::from_utf8",
                STAGE1,
            ),
        );
    }
}

#[rstest]
#[case::unclosed_group("(unclosed")]
#[case::unclosed_class("[a-")]
#[case::nothing_to_repeat("*oops")]
#[kata_harness::test]
async fn stage1_an_invalid_pattern_is_an_error_at_construction(#[case] pattern: &str) {
    let result = FindRegex::new(pattern);
    let Err(FindRegexError::InvalidPattern {
        pattern: reported,
        reason,
    }) = &result
    else {
        fail(
            &format!("FindRegex::new({pattern:?})"),
            "Err(FindRegexError::InvalidPattern { .. })",
            format_args!("{result:?}"),
            &hint(
                "compile the pattern in new(), and turn regex::Error into InvalidPattern",
                STAGE1,
            ),
        );
    };
    check_eq(
        "InvalidPattern's pattern",
        reported.as_str(),
        pattern,
        &hint("`pattern` is the pattern exactly as given", STAGE1),
    );
    if reason.trim().is_empty() {
        fail(
            "InvalidPattern's reason",
            "what the regex parser said about the pattern",
            "an empty reason",
            &hint("put the regex::Error's text in `reason`", STAGE1),
        );
    }
    let message = result.unwrap_err().to_string();
    if !message.contains(pattern) {
        fail(
            "the error's message",
            format_args!("a message that names the pattern, {pattern:?}"),
            format_args!("{message:?}"),
            &hint(
                "keep the #[error(...)] text of FindRegexError, which prints it",
                STAGE1,
            ),
        );
    }
}

/// Writes about `size` bytes of 64-byte lines with `NEEDLE-<n>` on 4 of them; returns the path
/// and the expected matches.
fn write_large(files: &TestDir, name: &str, size: usize) -> (PathBuf, Vec<Event>) {
    const LINE: usize = 64;
    let lines = size / LINE;
    let needles = [1, lines / 3, 2 * lines / 3, lines];
    let path = files.path(name);
    let file = std::fs::File::create(&path).expect("cannot create a test file");
    let mut out = std::io::BufWriter::new(file);
    for number in 1..=lines {
        if needles.contains(&number) {
            writeln!(
                out,
                "{number:08} NEEDLE-{number:<12} and some text to fill the line"
            )
            .unwrap();
        } else {
            writeln!(
                out,
                "{number:08} the quick brown fox jumps over the lazy dog, twice"
            )
            .unwrap();
        }
    }
    out.flush().expect("cannot write a test file");
    let matches = needles
        .iter()
        .map(|&n| found(name, n, &format!("NEEDLE-{n}")))
        .collect();
    (path, matches)
}

/// Searches `path` for `pattern` under a heap measurement, and checks it found `matches`.
async fn measured_search(
    files: &TestDir,
    path: &PathBuf,
    matches: Vec<Event>,
    pattern: &str,
) -> HeapReport {
    let (heard, report) = heap::measure_async(search(files, &[path], pattern)).await;
    let name = Namer(files.root().to_owned()).name(path);
    let mut expected = vec![start(&[&name]), file_read(&name)];
    expected.extend(matches);
    expected.push(Event::End);
    check_events(
        &format!("events of a search of {name}"),
        &heard.events,
        &expected,
        &hint("every line of a large file is searched too", STAGE1),
    );
    report
}

#[kata_harness::test(watchdog_secs = 15)]
async fn stage1_reads_files_line_by_line_not_whole() {
    const MIB: usize = 1024 * 1024;
    const LIMIT: usize = MIB;
    const SAME: usize = 64 * 1024;
    let files = TestDir::new();
    let warm_up = files.write("warm-up.txt", "NEEDLE-1\n");
    let (small, small_matches) = write_large(&files, "small.txt", 8 * MIB);
    let (large, large_matches) = write_large(&files, "large.txt", 32 * MIB);
    let pattern = "NEEDLE-[0-9]+";

    // Warm up: the first search builds things that stay (the blocking pool's thread, lazily
    // initialised statics), which are not the search's to pay for.
    search(&files, &[&warm_up], pattern).await;
    let small_heap = measured_search(&files, &small, small_matches, pattern).await;
    let large_heap = measured_search(&files, &large, large_matches, pattern).await;
    eprintln!("peak heap: 8 MiB file {small_heap:?}, 32 MiB file {large_heap:?}");

    let whole = "read the file line by line through a tokio::io::BufReader, into a buffer you \
                 reuse for every line; tokio::fs::read_to_string, read_to_end or collecting the \
                 lines hold the whole file in memory at once";
    heap::assert_peak_below(
        "searching a 32 MiB file",
        large_heap,
        LIMIT,
        &hint(whole, STAGE1),
    );
    heap::assert_peak_independent(
        "searching a file",
        ("an 8 MiB file", small_heap),
        ("a 32 MiB file", large_heap),
        SAME,
        &hint(whole, STAGE1),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: find_regex reports progress as events and the result through a callback
// ---------------------------------------------------------------------------------------------

/// TestDir for stage 2: a.txt (3 matches), missing.txt (an Error), b.txt (1 match).
fn stage2_files(files: &TestDir) -> [PathBuf; 3] {
    [
        files.write("a.txt", "x 1 2\ny\n3"),
        files.path("missing.txt"),
        files.write("b.txt", "4\n"),
    ]
}

/// Checks that `on_done` was called exactly once, and returns its argument.
#[track_caller]
fn called_once(heard: &Heard) -> Vec<Event> {
    match heard.done.as_slice() {
        [matches] => matches.clone(),
        [] => fail(
            "on_done was never called",
            "on_done called exactly once, after End",
            format_args!(
                "never called; the events were {}",
                report::list(&heard.events)
            ),
            &hint(
                "call on_done with the matches when the search is over, even if there are \
                 none or some files failed",
                STAGE2,
            ),
        ),
        calls => fail(
            "on_done was called more than once",
            "on_done called exactly once",
            format_args!("{} calls", calls.len()),
            &hint("call on_done once, at the end", STAGE2),
        ),
    }
}

#[kata_harness::test]
async fn stage2_on_done_gets_every_match_in_order() {
    let files = TestDir::new();
    let [a, missing, b] = stage2_files(&files);
    let heard = search_with_callback(&files, &[&a, &missing, &b], r"\d").await;
    check_events(
        "the matches given to on_done",
        &called_once(&heard),
        &[
            found("a.txt", 1, "1"),
            found("a.txt", 1, "2"),
            found("a.txt", 3, "3"),
            found("b.txt", 1, "4"),
        ],
        &hint(
            "on_done gets every Match of the search, in the order they were emitted, with the \
             same path, line and text",
            STAGE2,
        ),
    );
}

#[kata_harness::test]
async fn stage2_on_done_is_called_once_after_end() {
    let files = TestDir::new();
    let [a, missing, b] = stage2_files(&files);
    let heard = search_with_callback(&files, &[&a, &missing, &b], r"\d").await;
    let matches = called_once(&heard).len();
    let last_two = &heard.events[heard.events.len().saturating_sub(2)..];
    check_events(
        "the last two things that happened",
        last_two,
        &[Event::End, Event::OnDone(matches)],
        &hint(
            "emit End first, then call on_done: End's listeners run before the callback, and \
             nothing comes after it",
            STAGE2,
        ),
    );
}

#[kata_harness::test]
async fn stage2_the_emitter_still_reports_live_progress() {
    let files = TestDir::new();
    let [a, missing, b] = stage2_files(&files);
    let heard = search_with_callback(&files, &[&a, &missing, &b], r"\d").await;
    let events: Vec<Event> = heard
        .events
        .into_iter()
        .filter(|event| !matches!(event, Event::OnDone(_)))
        .collect();
    check_events(
        "events heard from find_regex's emitter, attached right after the call",
        &events,
        &[
            start(&["a.txt", "missing.txt", "b.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "1"),
            found("a.txt", 1, "2"),
            found("a.txt", 3, "3"),
            error("missing.txt"),
            file_read("b.txt"),
            found("b.txt", 1, "4"),
            Event::End,
        ],
        &hint(
            "find_regex emits the same events as stage 1's search, Start included, as they \
             happen: run the same search and collect the matches beside it",
            STAGE2,
        ),
    );
}

#[kata_harness::test]
async fn stage2_on_done_is_called_even_without_matches() {
    let files = TestDir::new();
    let missing = files.path("missing.txt");
    let empty = files.write("empty.txt", "");
    let heard = search_with_callback(&files, &[&missing, &empty], r"\d").await;
    check_eq(
        "on_done's matches for [missing.txt, empty.txt]",
        called_once(&heard),
        vec![],
        &hint("no matches is a result too: on_done(vec![])", STAGE2),
    );
}

#[kata_harness::test]
async fn stage2_an_invalid_pattern_is_an_error_and_on_done_is_never_called() {
    let files = TestDir::new();
    let a = files.write("a.txt", "1\n");
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let result = find_regex([&a], "(unclosed", move |_| *counter.lock().unwrap() += 1);
    let Err(FindRegexError::InvalidPattern { pattern, .. }) = &result else {
        fail(
            "find_regex(.., \"(unclosed\", ..)",
            "Err(FindRegexError::InvalidPattern { .. })",
            format_args!("{result:?}"),
            &hint(
                "check the pattern before starting anything, as FindRegex::new does",
                STAGE2,
            ),
        );
    };
    check_eq(
        "InvalidPattern's pattern",
        pattern.as_str(),
        "(unclosed",
        &hint("the pattern exactly as given", STAGE2),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    check_eq(
        "on_done calls",
        *calls.lock().unwrap(),
        0,
        &hint(
            "with an invalid pattern there is no search, so no callback: the error is the \
             result",
            STAGE2,
        ),
    );
}
