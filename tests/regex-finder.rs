//! The regex-finder kata's suite, run against both `exercises/regex-finder` and
//! `solutions/regex-finder`: the kata's precise specification.
//!
//! Every test writes its files into a fresh temporary directory, starts a search, attaches its
//! listeners *after* the call (as a user would), records every event in order, and keeps
//! listening after `End` to catch anything late. Reports name files by their name in that
//! directory: `Match(a.txt:3 "42")` is the match `42` on line 3 of `a.txt`. Stage by stage, the
//! tests reject the usual wrong answers: a `Start` emitted before anyone could listen, an `End`
//! that is not last, lines counted from 0, one match per line, a line ending kept or whitespace
//! trimmed, a lost last line or an extra empty one, a line cut where a buffer ends, files sorted,
//! deduplicated or searched side by side, a search that stops at the first bad file or panics on
//! bytes that are not UTF-8, a file read whole, file reads that block the executor (two
//! `real_time` tests read a named pipe whose writer waits for the test), and a callback called
//! before `End`, never, with another search's matches, or not at all once the caller dropped the
//! emitter.

kata_harness::install_allocator!();

#[path = "regex-finder/support.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_harness::blocking;
use kata_harness::completion::completes_within;
use kata_harness::files::{Gate, PipeFeeder, TestDir};
use kata_harness::heap;
use kata_harness::leaks::TaskBaseline;
use kata_harness::report::{self, check, check_eq, fail};
use kata_harness::{Stage, data, ms};
use regex::Regex;
use regex_finder::{End, Error, FileRead, FindRegex, FindRegexError, Match, Start, find_regex};
use support::{
    Event, GatedPipe, NEEDLE, called_once, check_events, error, file_read, find_regex_ok, finder,
    found, listen, measured_search, observe, search, search_with_callback, shorten, start,
    write_large, write_long_lines,
};

const STAGE1: Stage = Stage::new("regex-finder", 1);
const STAGE2: Stage = Stage::new("regex-finder", 2);

// ---------------------------------------------------------------------------------------------
// Stage 1: FindRegex emits Start, then for each file in turn FileRead and its Matches (or an
// Error), then End; all from a task, so that listeners attached after find() hear everything.
//
//   find() over [a.txt, missing.txt, b.txt]:
//     Start[a.txt, missing.txt, b.txt]
//     FileRead(a.txt)  Match(a.txt:1 "1")  Match(a.txt:3 "22")
//     Error(missing.txt)
//     FileRead(b.txt)  Match(b.txt:1 "3")
//     End

#[kata_harness::test]
async fn stage1_start_comes_first_with_the_files_in_the_order_given() {
    let files = TestDir::new();
    let c = files.write("c.txt", "3\n");
    let a = files.write("a.txt", "1\n");
    let b = files.write("b.txt", "2\n");
    let heard = observe(&files, STAGE1, |_| {
        finder(r"\d").file(&c).files([&a, &b]).find()
    })
    .await;

    let starts = heard
        .events
        .iter()
        .filter(|event| matches!(event, Event::Start(_)));
    let starts = starts.count();
    check(
        "a listener attached right after find() hears Start",
        starts > 0,
        format_args!("no Start; heard {}", report::list(&heard.events)),
        "Start[c.txt, a.txt, b.txt] first",
        &STAGE1.hint(
            "emit Start from the spawned task, not inside find(): an event emitted before find() \
             returns reaches nobody, because nobody could listen yet",
        ),
    );
    check_eq(
        "Start events heard",
        starts,
        1,
        &STAGE1.hint("Start is emitted once, for the whole search, not once per file"),
    );
    check_eq(
        "the first event",
        heard.events.first(),
        Some(&start(&["c.txt", "a.txt", "b.txt"])),
        &STAGE1.hint(
            "Start comes before anything else and lists the files in the order they were given: \
             .file(c) then .files([a, b]) is [c, a, b]",
        ),
    );
}

#[kata_harness::test]
async fn stage1_end_comes_last_once_and_the_task_ends() {
    let files = TestDir::new();
    let a = files.write("a.txt", "1 2\n3\n");
    let b = files.write("b.txt", "4");
    let baseline = TaskBaseline::capture();
    let heard = search(&files, &[&a, &b], r"\d").await;

    let ends = heard.events.iter().filter(|event| **event == Event::End);
    check_eq(
        "End events heard",
        ends.count(),
        1,
        &STAGE1.hint("End is emitted once, for the whole search, not once per file"),
    );
    check_eq(
        "the last event",
        heard.events.last(),
        Some(&Event::End),
        &STAGE1.hint("End comes after the last file's last match: nothing is emitted after it"),
    );
    baseline
        .assert_back(
            "the search's task",
            Duration::ZERO,
            &STAGE1.hint("the search task returns once it has emitted End: no loop, no waiting"),
        )
        .await;
}

#[kata_harness::test]
#[case::one_match("abc 42 def\n", &[(1, "42")], "a Match's text is the matched text, not the line")]
#[case::several_on_a_line(
    "1 22 333\n",
    &[(1, "1"), (1, "22"), (1, "333")],
    "every match on a line is its own Match event, left to right: regex.find_iter(line), not \
     regex.find(line)"
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
#[case::match_at_the_end_of_a_line(
    "x 7\ny 88\n",
    &[(1, "7"), (2, "88")],
    "a match can end where the line ends: match the line's text up to its last character"
)]
#[case::last_line_without_newline(
    "1\n22",
    &[(1, "1"), (2, "22")],
    "the last line need not end with a newline: it is a line all the same, and whole"
)]
#[case::no_match(
    "none here\nat all\n",
    &[],
    "a file without matches gives FileRead and nothing else"
)]
#[case::empty_file("", &[], "an empty file gives FileRead and nothing else: it has no lines")]
async fn stage1_finds_every_match_with_its_line_and_text(
    #[case] contents: &str,
    #[case] matches: &[(usize, &str)],
    #[case] why: &'static str,
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
        &STAGE1.hint(why),
    );
}

#[kata_harness::test]
async fn stage1_the_line_ending_is_not_part_of_the_line_but_whitespace_is() {
    let files = TestDir::new();
    let a = files.write("a.txt", "  x 1 \t\r\ny 22\nz\t\n 333 ");
    // Whitespace at the start of a line, whitespace at its end, or a number at its end.
    let heard = search(&files, &[&a], r"^\s+|\s+$|\d+$").await;
    check_events(
        r"events of a search of a.txt for ^\s+|\s+$|\d+$",
        &heard.events,
        &[
            start(&["a.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "  "),
            found("a.txt", 1, " \t"),
            found("a.txt", 2, "22"),
            found("a.txt", 3, "\t"),
            found("a.txt", 4, " "),
            found("a.txt", 4, " "),
            Event::End,
        ],
        &STAGE1.hint(
            "match each line without its line ending, \"\\n\" or \"\\r\\n\", and nothing else: \
             keep the \"\\r\" and `$` never matches before it; trim() the line and the \
             whitespace at its ends is lost",
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_pattern_can_match_the_empty_string() {
    let files = TestDir::new();
    // Lines: "a", "", " ", "" (ended by \r\n), "b"; nothing after the last newline.
    let a = files.write("a.txt", "a\n\n \n\r\nb\n");
    let heard = search(&files, &[&a], "^$").await;
    check_events(
        "events of a search of a.txt for ^$ (empty lines)",
        &heard.events,
        &[
            start(&["a.txt"]),
            file_read("a.txt"),
            found("a.txt", 2, ""),
            found("a.txt", 4, ""),
            Event::End,
        ],
        &STAGE1.hint(
            "a pattern that matches the empty string gives a Match with empty text: ^$ finds \
             the empty lines, and only them (an empty line is not skipped, \" \" is not empty, \
             and there is no line after the file's last newline)",
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_line_longer_than_any_buffer_is_one_line() {
    let files = TestDir::new();
    let (long, matches) = write_long_lines(&files, "long.txt");
    let heard = search(&files, &[&long], "NEEDLE|END").await;
    let mut expected = vec![start(&["long.txt"]), file_read("long.txt")];
    expected.extend(matches);
    expected.push(Event::End);
    check_events(
        "events of a search for NEEDLE|END in lines of 70 KB and 80 KB, with NEEDLE across \
         every power of two from 4 KiB to 64 KiB and `é`s across each",
        &heard.events,
        &expected,
        &STAGE1.hint(
            "a line ends at its newline, however far: read_until(b'\\n', ..) or next_line() keep \
             reading until they find it; a loop of fixed-size reads cuts matches and two-byte \
             characters where one read ends",
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
        &STAGE1.hint(
            "search the files one after another, in the order given (not sorted), each with its \
             own line numbers starting at 1; a file with no match still gets its FileRead",
        ),
    );
}

#[kata_harness::test]
async fn stage1_each_file_is_announced_before_its_matches() {
    let files = TestDir::new();
    let a = files.write("a.txt", "1\n2\n");
    let b = files.write("b.txt", "3\n");
    let heard = search(&files, &[&a, &b], r"\d").await;
    check_events(
        "events of a search of [a.txt, b.txt]",
        &heard.events,
        &[
            start(&["a.txt", "b.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "1"),
            found("a.txt", 2, "2"),
            file_read("b.txt"),
            found("b.txt", 1, "3"),
            Event::End,
        ],
        &STAGE1.hint(
            "one FileRead per file, emitted as soon as the file is open and before any of its \
             matches (not once per line, not at its end)",
        ),
    );
}

#[kata_harness::test]
async fn stage1_the_same_file_given_twice_is_searched_twice() {
    let files = TestDir::new();
    let a = files.write("a.txt", "1\nx 2\n");
    let b = files.write("b.txt", "3\n");
    let heard = search(&files, &[&a, &b, &a], r"\d").await;
    check_events(
        "events of a search of [a.txt, b.txt, a.txt]",
        &heard.events,
        &[
            start(&["a.txt", "b.txt", "a.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "1"),
            found("a.txt", 2, "2"),
            file_read("b.txt"),
            found("b.txt", 1, "3"),
            file_read("a.txt"),
            found("a.txt", 1, "1"),
            found("a.txt", 2, "2"),
            Event::End,
        ],
        &STAGE1.hint(
            "the files are a list, not a set: search each entry in turn, as `grep x a b a` does; \
             no HashSet, no dedup(), and line numbers start again at 1 the second time too",
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_relative_path_is_reported_as_given() {
    // A bare file name is read from the current directory: under `cargo test`, the crate's own
    // directory, where Cargo.toml is. The expected lines come from the file itself.
    let files = TestDir::new();
    let manifest = std::fs::read_to_string("Cargo.toml")
        .expect("the suite runs in the crate's directory, as `cargo test` does");
    let lines = manifest.lines().enumerate();
    let packages = lines.filter(|(_, line)| *line == "[package]");
    let mut expected = vec![start(&["Cargo.toml"]), file_read("Cargo.toml")];
    expected.extend(packages.map(|(at, _)| found("Cargo.toml", at + 1, "[package]")));
    expected.push(Event::End);

    let heard = observe(&files, STAGE1, |_| {
        finder(r"^\[package\]$").file("Cargo.toml").find()
    })
    .await;
    check_events(
        "events of a search of \"Cargo.toml\" (a bare file name) for ^\\[package\\]$",
        &heard.events,
        &expected,
        &STAGE1.hint(
            "report every path exactly as it was given: open it as it is (the OS reads a \
             relative path from the current directory) and do not canonicalize it or make it \
             absolute",
        ),
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
        &STAGE1.hint("with no files the search still starts and ends: Start[], then End"),
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
        &STAGE1.hint(
            "a file that cannot be opened gets an Error event naming it (and no FileRead: it \
             was never open); then the search goes on with the next file",
        ),
    );
    let message = &heard.errors[0].error;
    check(
        "the Error event's message for missing.txt",
        !message.trim().is_empty(),
        "an empty message",
        "a message saying what went wrong",
        &STAGE1.hint("put the io::Error's text in `error` (format!(\"cannot open it: {e}\"))"),
    );
}

#[kata_harness::test]
async fn stage1_a_directory_or_an_unreadable_file_is_an_error() {
    let files = TestDir::new();
    let dir = files.mkdir("folder");
    // None where the system lets the test read it anyway (root, or not Unix).
    let locked = files.write_unreadable("locked.txt", "5\n");
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
        .filter(|e| *e != file_read("folder"))
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
            "events of a search of [{}] (folder is a directory)",
            names.join(", ")
        ),
        &events,
        &expected,
        &STAGE1.hint(
            "a path that cannot be opened or read (a directory fails at its first read on \
             Linux) is an Error event for that file; then go on with the next file",
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_file_that_is_not_utf8_is_reported_and_the_others_searched() {
    let files = TestDir::new();
    let bad = files.write("bad.txt", b"ok 1\n\xff\xfe 2\nok 3\n\xc3 4\n");
    let good = files.write("good.txt", "ok 5\n");
    let heard = search(&files, &[&bad, &good], r"\d").await;
    check_events(
        "events of a search of [bad.txt (lines 2 and 4 are not UTF-8), good.txt]",
        &heard.events,
        &[
            start(&["bad.txt", "good.txt"]),
            file_read("bad.txt"),
            found("bad.txt", 1, "1"),
            error("bad.txt"),
            file_read("good.txt"),
            found("good.txt", 1, "5"),
            Event::End,
        ],
        &STAGE1.hint(
            "the matches before the first bad line stand; at the bad line emit one Error for the \
             file and go on with the next file: no panic (no unwrap on the line), no lossy \
             decoding, no searching the rest of the file",
        ),
    );
    let message = &heard.errors[0].error;
    let says_utf8 = Regex::new(r"(?i)utf-?8").unwrap().is_match(message);
    let says_line = Regex::new(r"(?i)\bline\W{0,3}2\b")
        .unwrap()
        .is_match(message);
    check(
        "the Error event's message for bad.txt",
        says_utf8 && says_line,
        format_args!("{message:?}"),
        "a message that says the file is not UTF-8, and at which line (\"line 2\")",
        &STAGE1.hint(
            "e.g. \"line 2 is not valid UTF-8\": count the lines as you read them, and name the \
             one that failed std::str::from_utf8 (reading it with lines() gives an InvalidData \
             error that does not say which line)",
        ),
    );
}

#[kata_harness::test]
async fn stage1_several_failing_files_in_a_row_are_each_reported() {
    let files = TestDir::new();
    let missing1 = files.path("missing-1.txt");
    let missing2 = files.path("missing-2.txt");
    let bad = files.write("bad.txt", b"\xff 1\n");
    let good = files.write("good.txt", "2\n");
    let missing3 = files.path("missing-3.txt");
    let heard = search(
        &files,
        &[&missing1, &missing2, &bad, &good, &missing3],
        r"\d",
    )
    .await;
    check_events(
        "events of a search of [missing-1.txt, missing-2.txt, bad.txt, good.txt, missing-3.txt]",
        &heard.events,
        &[
            start(&[
                "missing-1.txt",
                "missing-2.txt",
                "bad.txt",
                "good.txt",
                "missing-3.txt",
            ]),
            error("missing-1.txt"),
            error("missing-2.txt"),
            file_read("bad.txt"),
            error("bad.txt"),
            file_read("good.txt"),
            found("good.txt", 1, "2"),
            error("missing-3.txt"),
            Event::End,
        ],
        &STAGE1.hint(
            "each file's failure is that file's alone: an Error for every one that fails, in \
             order, even two in a row or the last one, and End after all of them",
        ),
    );
}

#[kata_harness::test]
#[case::unclosed_group("(unclosed")]
#[case::unclosed_class("[a-")]
#[case::nothing_to_repeat("*oops")]
async fn stage1_an_invalid_pattern_is_an_error_at_construction(#[case] pattern: &str) {
    let result = FindRegex::new(pattern);
    let Err(FindRegexError::InvalidPattern {
        pattern: reported,
        reason,
    }) = &result
    else {
        fail(
            &format!("FindRegex::new({pattern:?})"),
            format_args!("{result:?}"),
            "Err(FindRegexError::InvalidPattern { .. })",
            &STAGE1.hint(
                "compile the pattern in new() with regex::Regex::new, and turn its Err into \
                 InvalidPattern: a bad pattern is the caller's mistake, known before anything runs",
            ),
        );
    };
    check_eq(
        "InvalidPattern's pattern",
        reported.as_str(),
        pattern,
        &STAGE1.hint("`pattern` is the pattern exactly as given, not the regex's own rendering"),
    );
    check(
        "InvalidPattern's reason",
        !reason.trim().is_empty(),
        "an empty reason",
        "what the regex parser said about the pattern",
        &STAGE1.hint("put the regex::Error's text in `reason` (error.to_string())"),
    );
    let message = result.unwrap_err().to_string();
    check(
        "the error's message",
        message.contains(pattern),
        format_args!("{message:?}"),
        format_args!("a message that names the pattern, {pattern:?}"),
        &STAGE1.hint("keep the given #[error(...)] text of FindRegexError, which prints it"),
    );
}

#[kata_harness::test(watchdog_secs = 20)]
async fn stage1_reads_files_line_by_line_not_whole() {
    const MIB: usize = 1024 * 1024;
    let files = TestDir::new();
    // Log-like text, written twice into each file: 8 MiB and 32 MiB.
    let log = data::text(16 * MIB);
    let warm_up = files.write("warm-up.txt", "NEEDLE-0\n");
    let (small, small_matches) = write_large(&files, "small.txt", &log[..4 * MIB]);
    let (large, large_matches) = write_large(&files, "large.txt", &log);
    drop(log);

    // Warm up: the first search builds things that stay (the blocking pool's thread, lazily
    // initialised statics), which are not the search's to pay for.
    search(&files, &[&warm_up], NEEDLE).await;
    let hint = STAGE1.hint(
        "every line of a large file is searched, up to its last (which has no newline): a \
         search that loses lines, or counts them wrong, on a large file shows it here",
    );
    let small_heap = measured_search(&files, &small, &small_matches, &hint).await;
    let large_heap = measured_search(&files, &large, &large_matches, &hint).await;
    eprintln!("peak heap: 8 MiB file {small_heap:?}, 32 MiB file {large_heap:?}");

    let whole = STAGE1.hint(
        "read the file line by line through a tokio::io::BufReader, into a buffer you reuse for \
         every line: tokio::fs::read_to_string, read_to_end, collecting the lines or a huge \
         BufReader hold much of the file in memory at once",
    );
    heap::assert_peak_below("searching a 32 MiB file", large_heap, MIB, &whole);
    heap::assert_peak_independent(
        "searching a file",
        ("an 8 MiB file", small_heap),
        ("a 32 MiB file", large_heap),
        64 * 1024,
        &whole,
    );
}

// On the real clock, slow.txt is a named pipe whose writer waits for the test's go before it
// opens the pipe, and again before the second line:
//
//   the test:   starts the search, waits 100 ms, go ... hears slow.txt:1, waits 100 ms, go
//   writer:                                      opens, "1\n"                          "2\n", closes
//   search:     open(slow.txt) ................. FileRead, slow.txt:1, read ........... slow.txt:2
//   heartbeat:  a beat every 1 ms all along
//
// A search that waits for the pipe on the runtime's thread (std::fs) keeps the test, which runs
// on that thread too, from saying go: the writer gives up waiting after 1 s, and the heartbeat is
// late by as much.

#[kata_harness::test(real_time)]
async fn stage1_a_slow_file_does_not_block_the_executor() {
    // Real time: on the paused clock the clock stands still while tokio::fs works on the
    // blocking pool, so the heartbeat cannot tell a read that waits there from one that holds
    // the runtime's thread. Only a writer that really waits shows where the search waits.
    const FALLBACK: Duration = ms(1000);
    // Far above the scheduling noise of a loaded machine (300 ms seen at a load of 10 on two
    // cores), far below the 1 s or more that a blocking open or read holds the thread.
    const LIMIT: Duration = ms(600);
    let files = TestDir::new();
    let Some(slow) = files.fifo("slow.txt") else {
        return eprintln!("skipped: no mkfifo here");
    };
    let writer = GatedPipe::start(&slow, &["1\n", "2\n"], FALLBACK);
    let line_1 = found("slow.txt", 1, "1");
    let (heard, report) = blocking::watch(async {
        let mut listening = listen(&files, |_| finder(r"\d").file(&slow).find());
        // The search gets to the open and waits there, for the writer.
        tokio::time::sleep(ms(100)).await;
        writer.go();
        listening
            .wait_for(ms(3000), |events| events.contains(&line_1))
            .await;
        // The search reads on, and waits for the second line.
        tokio::time::sleep(ms(100)).await;
        writer.go();
        listening.finish_after(ms(3000), ms(50), STAGE1).await
    })
    .await;
    blocking::assert_not_blocked(
        "searching slow.txt, a pipe whose writer waits for the test's go before each line",
        report,
        LIMIT,
        &STAGE1.hint(
            "open and read files with tokio::fs (File::open, then a tokio::io::BufReader): \
             std::fs::File and std::io::BufReader wait for the disk, or a pipe's writer, on the \
             runtime's own thread, and every other task waits with them",
        ),
    );
    check_events(
        "events of a search of slow.txt",
        &heard.events,
        &[
            start(&["slow.txt"]),
            file_read("slow.txt"),
            found("slow.txt", 1, "1"),
            found("slow.txt", 2, "2"),
            Event::End,
        ],
        &STAGE1.hint(
            "a file whose lines come slowly is searched like any other: wait for each line, \
             and the end of the file is when the writer closes it",
        ),
    );
}

// On the real clock, slow.txt is a named pipe that gives its first line at once and its second
// only when the test says so:
//
//   slow.txt:  "1\n" ......... held by the test ......... "2\n", closes
//   search:    FileRead(slow.txt), slow.txt:1 ............ slow.txt:2, FileRead(b.txt), b.txt:1
//   the test:  hears slow.txt:1, waits 200 ms:            releases "2\n"
//              nothing of b.txt meanwhile

#[kata_harness::test(real_time)]
async fn stage1_files_are_searched_one_after_another() {
    // Real time: the test must wait a while to see that nothing of b.txt comes, and on the
    // paused clock no time passes while slow.txt's read waits on the blocking pool. b.txt, if
    // it were searched beside slow.txt, would be done in microseconds; 200 ms is far more.
    let files = TestDir::new();
    let Some(slow) = files.fifo("slow.txt") else {
        return eprintln!("skipped: no mkfifo here");
    };
    let b = files.write("b.txt", "3\n");
    let feeder = PipeFeeder::start(&slow, vec![b"1\n".to_vec(), b"2\n".to_vec()], Gate::Test);
    let hint = STAGE1.hint(
        "search the files one after another: open b.txt only once slow.txt is done, never side \
         by side (a task per file, join_all): the events of one file must not mix with the next",
    );
    let mut listening = listen(&files, |_| finder(r"\d").files([&slow, &b]).find());
    let line_1 = found("slow.txt", 1, "1");
    if !listening
        .wait_for(ms(3000), |events| events.contains(&line_1))
        .await
    {
        fail(
            "the match on slow.txt's first line was not heard",
            format_args!("after 3 s: {}", report::list(&listening.heard().events)),
            "Match(slow.txt:1 \"1\") as soon as the pipe gave its first line",
            &STAGE1.hint(
                "search each line as soon as it is read: a pipe gives its lines one by one, and \
                 the end of the file only when its writer closes it",
            ),
        );
    }
    tokio::time::sleep(ms(200)).await;
    check_events(
        "events heard while slow.txt waits for its second line",
        &listening.heard().events,
        &[start(&["slow.txt", "b.txt"]), file_read("slow.txt"), line_1],
        &hint,
    );
    feeder.release();
    let heard = listening.finish_after(ms(3000), ms(50), STAGE1).await;
    check_events(
        "events of a search of [slow.txt, b.txt]",
        &heard.events,
        &[
            start(&["slow.txt", "b.txt"]),
            file_read("slow.txt"),
            found("slow.txt", 1, "1"),
            found("slow.txt", 2, "2"),
            file_read("b.txt"),
            found("b.txt", 1, "3"),
            Event::End,
        ],
        &hint,
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: find_regex reports progress as events and the result through a callback.
//
//   find_regex([a.txt, missing.txt, b.txt], \d, on_done):
//     Start  FileRead(a.txt)  Match x4  Error(missing.txt)  FileRead(b.txt)  Match  End
//                                                                      then on_done([5 matches])

/// The files of stage 2: a.txt (4 matches, neither sorted nor distinct), missing.txt (an Error),
/// b.txt (1 match).
fn stage2_files(files: &TestDir) -> [std::path::PathBuf; 3] {
    [
        files.write("a.txt", "x 2 1\ny\n5 5"),
        files.path("missing.txt"),
        files.write("b.txt", "4\n"),
    ]
}

/// The five matches of a search of [`stage2_files`] for `\d`.
fn stage2_matches() -> Vec<Event> {
    vec![
        found("a.txt", 1, "2"),
        found("a.txt", 1, "1"),
        found("a.txt", 3, "5"),
        found("a.txt", 3, "5"),
        found("b.txt", 1, "4"),
    ]
}

#[kata_harness::test]
async fn stage2_on_done_gets_every_match_in_order() {
    let files = TestDir::new();
    let [a, missing, b] = stage2_files(&files);
    let heard = search_with_callback(&files, &[&a, &missing, &b], r"\d").await;
    check_events(
        "the matches given to on_done",
        &called_once(&heard),
        &stage2_matches(),
        &STAGE2.hint(
            "on_done gets every Match of the search, in the order they were emitted, with the \
             same path, line and text: collect each one beside emitting it",
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
        &STAGE2.hint(
            "emit End first, then call on_done, from the search task: the caller's End \
             listeners run first, and nothing comes after the callback (a listener of your own \
             on End would run before the caller's)",
        ),
    );
}

#[kata_harness::test]
async fn stage2_the_emitter_still_reports_live_progress() {
    let files = TestDir::new();
    let [a, missing, b] = stage2_files(&files);
    let heard = search_with_callback(&files, &[&a, &missing, &b], r"\d").await;
    check_events(
        "events heard from find_regex's emitter, attached right after the call",
        &heard.emitted(),
        &[
            start(&["a.txt", "missing.txt", "b.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "2"),
            found("a.txt", 1, "1"),
            found("a.txt", 3, "5"),
            found("a.txt", 3, "5"),
            error("missing.txt"),
            file_read("b.txt"),
            found("b.txt", 1, "4"),
            Event::End,
        ],
        &STAGE2.hint(
            "find_regex emits the same events as stage 1's search, Start included, as they \
             happen: run the same search and collect the matches beside it",
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
        &STAGE2.hint("no matches is a result too: on_done(vec![]), not silence"),
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
            format_args!("{result:?}"),
            "Err(FindRegexError::InvalidPattern { .. })",
            &STAGE2.hint(
                "check the pattern before starting anything, as FindRegex::new does (or build \
                 the FindRegex first and return its error with `?`)",
            ),
        );
    };
    check_eq(
        "InvalidPattern's pattern",
        pattern.as_str(),
        "(unclosed",
        &STAGE2.hint("`pattern` is the pattern exactly as given"),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    check_eq(
        "on_done calls",
        *calls.lock().unwrap(),
        0,
        &STAGE2.hint(
            "with an invalid pattern there is no search, so no callback: the Err is the result",
        ),
    );
}

#[kata_harness::test]
async fn stage2_the_search_goes_on_when_the_caller_drops_the_emitter() {
    let files = TestDir::new();
    let [a, missing, b] = stage2_files(&files);
    let baseline = TaskBaseline::capture();
    let (done, result) = tokio::sync::oneshot::channel();
    let emitter = find_regex_ok(
        &[&a, &missing, &b],
        r"\d",
        Box::new(move |matches| {
            let _ = done.send(matches);
        }),
    );
    drop(emitter);

    let hint = STAGE2.hint(
        "the search task holds its own clone of the emitter and runs to the end whether anyone \
         listens or not (emit returning 0 is no reason to stop): the caller who only wants the \
         result drops the emitter and waits for on_done",
    );
    let called = completes_within("on_done, the emitter dropped", result, ms(60_000), &hint);
    let Ok(matches) = called.await else {
        fail(
            "on_done once the caller dropped the emitter",
            "never called: the search dropped on_done",
            "on_done called with every match",
            &hint,
        );
    };
    let matches: Vec<Event> = matches.iter().map(|found| shorten(&files, found)).collect();
    check_events(
        "the matches given to on_done",
        &matches,
        &stage2_matches(),
        &hint,
    );
    baseline
        .assert_back(
            "the search's task",
            Duration::ZERO,
            &STAGE2.hint("the search task returns once it has called on_done"),
        )
        .await;
}

#[kata_harness::test]
async fn stage2_the_search_leaves_no_listener_of_its_own() {
    let files = TestDir::new();
    let [a, missing, b] = stage2_files(&files);
    let listening = listen(&files, |on_done| {
        find_regex_ok(&[&a, &missing, &b], r"\d", on_done)
    });
    let emitter = listening.emitter().clone();
    let heard = listening.finish(STAGE2).await;
    called_once(&heard);
    // The suite's listeners are gone with `listening`: anything left is the search's own.
    check_eq(
        "listeners left on the emitter after on_done: [Start, FileRead, Match, Error, End]",
        [
            emitter.listener_count::<Start>(),
            emitter.listener_count::<FileRead>(),
            emitter.listener_count::<Match>(),
            emitter.listener_count::<Error>(),
            emitter.listener_count::<End>(),
        ],
        [0; 5],
        &STAGE2.hint(
            "collect the matches in the search task itself, not with a listener of your own on \
             the emitter: a detached listener stays for the emitter's whole life (and one on End \
             runs before the caller's)",
        ),
    );
}

// Two searches at once, on the paused clock; slow.txt is a named pipe that gives its second
// line only when the test says so:
//
//   first  = find_regex([a, slow]):  a.txt:1-2, slow.txt:1 ... (held) ... slow.txt:2, End, on_done
//   second = find_regex([b]):                    b.txt:1-2, End, on_done
//   each on_done gets its own matches, and only those

#[kata_harness::test]
async fn stage2_two_searches_at_once_keep_their_results_apart() {
    let files = TestDir::new();
    let Some(slow) = files.fifo("slow.txt") else {
        return eprintln!("skipped: no mkfifo here");
    };
    let a = files.write("a.txt", "1\n2\n");
    let b = files.write("b.txt", "7\n8\n");
    let feeder = PipeFeeder::start(&slow, vec![b"3\n".to_vec(), b"4\n".to_vec()], Gate::Test);
    let hint = STAGE2.hint(
        "each call of find_regex is a search of its own: keep its matches in its own task (no \
         static, no shared list, no shared emitter), so that two searches at once never see \
         each other's",
    );

    let mut first = listen(&files, |on_done| {
        find_regex_ok(&[&a, &slow], r"\d", on_done)
    });
    let slow_1 = found("slow.txt", 1, "3");
    if !first
        .wait_for(ms(60_000), |events| events.contains(&slow_1))
        .await
    {
        fail(
            "the first search's match on slow.txt's first line was not heard",
            report::list(&first.heard().events),
            "Match(slow.txt:1 \"3\") as soon as the pipe gave its first line",
            &STAGE2.hint("find_regex searches each line as soon as it is read, as stage 1 does"),
        );
    }
    let second = listen(&files, |on_done| find_regex_ok(&[&b], r"\d", on_done));
    // No time may pass while slow.txt's read is held: do not listen after End.
    let second = second
        .finish_after(ms(60_000), Duration::ZERO, STAGE2)
        .await;
    check_events(
        "everything the second search did, while the first waits for slow.txt",
        &second.events,
        &[
            start(&["b.txt"]),
            file_read("b.txt"),
            found("b.txt", 1, "7"),
            found("b.txt", 2, "8"),
            Event::End,
            Event::OnDone(2),
        ],
        &hint,
    );
    check_events(
        "the matches given to the second search's on_done",
        &called_once(&second),
        &[found("b.txt", 1, "7"), found("b.txt", 2, "8")],
        &hint,
    );

    feeder.release();
    let first = first.finish(STAGE2).await;
    check_events(
        "the matches given to the first search's on_done",
        &called_once(&first),
        &[
            found("a.txt", 1, "1"),
            found("a.txt", 2, "2"),
            found("slow.txt", 1, "3"),
            found("slow.txt", 2, "4"),
        ],
        &hint,
    );
    check_events(
        "events heard from the first search",
        &first.emitted(),
        &[
            start(&["a.txt", "slow.txt"]),
            file_read("a.txt"),
            found("a.txt", 1, "1"),
            found("a.txt", 2, "2"),
            file_read("slow.txt"),
            found("slow.txt", 1, "3"),
            found("slow.txt", 2, "4"),
            Event::End,
        ],
        &hint,
    );
}
