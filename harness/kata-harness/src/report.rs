//! The one shape every failing check prints, and the checks every suite needs.
//!
//! ```text
//! ticks of ticker(120 ms): wrong schedule
//!   expected: 2 events at [50ms, 100ms]
//!   actual:   3 events at [0ns, 50ms, 100ms]
//!   hint: stage 1 ticks first at 50 ms, not at once (exercises/ticker/README.md, stage 1)
//! ```
//!
//! A learner sees this text instead of a backtrace, so it leads with *what* was checked and ends
//! with *where to look*. Every check of the harness takes its arguments in one order:
//! **what, actual, expected, hint**; the hint is a [`Hint`], which points at the README.

use std::cell::Cell;
use std::fmt::{Debug, Display};

use crate::hint::Hint;

/// What kind of failure a panic of the harness is, for the record the runner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Expected vs actual: the ordinary failed check.
    Check,
    /// The executor's thread was held: a cause that explains timing failures around it.
    Blocked,
}

thread_local! {
    /// Set by a failing check just before it panics; read (and cleared) by the panic hook.
    static FAILING: Cell<Option<Kind>> = const { Cell::new(None) };
}

/// The kind of the panic under way on this thread, if a check raised it (called by the hook).
pub(crate) fn take_kind() -> Option<Kind> {
    FAILING.with(Cell::take)
}

/// Panics with a failure report. Use it for checks the harness does not have.
#[track_caller]
pub fn fail(what: &str, actual: impl Display, expected: impl Display, hint: &Hint) -> ! {
    fail_as(Kind::Check, what, actual, expected, &hint.to_string())
}

#[track_caller]
pub(crate) fn fail_as(
    kind: Kind,
    what: &str,
    actual: impl Display,
    expected: impl Display,
    hint: &str,
) -> ! {
    FAILING.with(|failing| failing.set(Some(kind)));
    panic!("{}", format(what, actual, expected, hint))
}

/// Formats a failure report without panicking: `what`, then expected, actual and the hint.
pub fn format(what: &str, actual: impl Display, expected: impl Display, hint: &str) -> String {
    let mut out = format!("{what}\n  expected: {expected}\n  actual:   {actual}");
    if !hint.is_empty() {
        out.push_str("\n  hint: ");
        out.push_str(hint);
    }
    out
}

/// Asserts `actual == expected` with a failure report instead of `assert_eq!`'s left/right.
#[track_caller]
pub fn check_eq<T: PartialEq + Debug>(what: &str, actual: T, expected: T, hint: &Hint) {
    if actual != expected {
        fail(
            what,
            format_args!("{actual:?}"),
            format_args!("{expected:?}"),
            hint,
        );
    }
}

/// Asserts `condition`, describing what was seen (`actual`) and what was wanted (`expected`).
#[track_caller]
pub fn check(
    what: &str,
    condition: bool,
    actual: impl Display,
    expected: impl Display,
    hint: &Hint,
) {
    if !condition {
        fail(what, actual, expected, hint);
    }
}

/// Where two sequences first part ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// They are equal.
    Same,
    /// Both have an item at this index, and the items differ.
    At(usize),
    /// `actual` is `expected` cut short: it ends at this index.
    Missing { from: usize },
    /// `actual` is `expected` and more, from this index on.
    Extra { from: usize },
}

/// The first place where `actual` differs from `expected`.
pub fn first_difference<T: PartialEq>(actual: &[T], expected: &[T]) -> Difference {
    match actual.iter().zip(expected).position(|(a, e)| a != e) {
        Some(at) => Difference::At(at),
        None if actual.len() < expected.len() => Difference::Missing { from: actual.len() },
        None if actual.len() > expected.len() => Difference::Extra {
            from: expected.len(),
        },
        None => Difference::Same,
    }
}

/// Asserts two sequences are equal, item for item; the report names the first difference
/// (`item #3 is X, expected Y`, `2 item(s) missing from #4`) above both lists.
#[track_caller]
pub fn check_seq<T: PartialEq + Debug>(what: &str, actual: &[T], expected: &[T], hint: &Hint) {
    let detail = match first_difference(actual, expected) {
        Difference::Same => return,
        Difference::At(at) => format!(
            "item #{} is {:?}, expected {:?}",
            at + 1,
            actual[at],
            expected[at]
        ),
        Difference::Missing { from } => format!(
            "{} item(s) missing, from #{}: {:?}",
            expected.len() - from,
            from + 1,
            expected[from]
        ),
        Difference::Extra { from } => format!(
            "{} extra item(s), from #{}: {:?}",
            actual.len() - from,
            from + 1,
            actual[from]
        ),
    };
    fail(
        &format!("{what}: {detail}"),
        list(actual),
        list(expected),
        hint,
    );
}

/// Shows a list, cut in the middle when it is long, so a report stays a few lines.
pub fn list<T: Debug>(items: &[T]) -> String {
    const HEAD: usize = 8;
    const TAIL: usize = 3;
    if items.len() <= HEAD + TAIL + 1 {
        return format!("{items:?}");
    }
    let show = |items: &[T]| {
        items
            .iter()
            .map(|item| format!("{item:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[{}, ... {} more ..., {}]",
        show(&items[..HEAD]),
        items.len() - HEAD - TAIL,
        show(&items[items.len() - TAIL..])
    )
}

/// Bytes to compare: a file's content, or no file at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content<'a>(pub Option<&'a [u8]>);

impl<'a> From<&'a [u8]> for Content<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Self(Some(bytes))
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Content<'a> {
    fn from(bytes: &'a [u8; N]) -> Self {
        Self(Some(bytes))
    }
}

impl<'a> From<&'a Vec<u8>> for Content<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        Self(Some(bytes))
    }
}

impl<'a> From<&'a str> for Content<'a> {
    fn from(text: &'a str) -> Self {
        Self(Some(text.as_bytes()))
    }
}

impl<'a> From<Option<&'a [u8]>> for Content<'a> {
    fn from(bytes: Option<&'a [u8]>) -> Self {
        Self(bytes)
    }
}

impl<'a> From<&'a Option<Vec<u8>>> for Content<'a> {
    fn from(bytes: &'a Option<Vec<u8>>) -> Self {
        Self(bytes.as_deref())
    }
}

/// Bytes as a report shows them: short text as text, short binary as hex, anything longer by
/// its size and first bytes.
pub fn show_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.len() <= 80 && !text.contains(|c: char| c.is_control() && c != '\n') => {
            format!("{} bytes {text:?}", bytes.len())
        }
        _ if bytes.len() <= 16 => format!("{} bytes {bytes:02x?}", bytes.len()),
        _ => format!("{} bytes starting {:02x?}", bytes.len(), &bytes[..8]),
    }
}

fn show_content(content: Content<'_>) -> String {
    content.0.map_or_else(|| "no file".to_owned(), show_bytes)
}

/// Asserts that `actual` is `expected` byte for byte (either may be "no file"); the report
/// says where they first differ, or that one ends early.
#[track_caller]
pub fn check_bytes<'a>(
    what: &str,
    actual: impl Into<Content<'a>>,
    expected: impl Into<Content<'a>>,
    hint: &Hint,
) {
    let (actual, expected) = (actual.into(), expected.into());
    if actual == expected {
        return;
    }
    let detail = match (actual.0, expected.0) {
        (Some(a), Some(e)) => match first_difference(a, e) {
            Difference::At(at) => format!(
                ", first difference at byte {at} (0x{:02x} where 0x{:02x} was expected)",
                a[at], e[at]
            ),
            Difference::Missing { from } => format!(", the first {from} bytes right, then it ends"),
            Difference::Extra { from } => format!(", the {from} bytes expected, then more"),
            Difference::Same => String::new(),
        },
        _ => String::new(),
    };
    fail(
        what,
        format_args!("{}{detail}", show_content(actual)),
        show_content(expected),
        hint,
    );
}

/// Checks, 64 KiB at a time, that `actual` gives the bytes `expected` gives, without holding
/// more than two blocks (so it checks outputs of hundreds of MiB, and a test of memory stays a
/// test of the code under test). The report names the block where they first differ, with
/// [`check_bytes`]'s detail; `unreadable` is the hint when `actual` fails to read (a gzip
/// decoder over output that is not gzip, a file cut short).
#[track_caller]
pub fn check_stream(
    what: &str,
    mut actual: impl std::io::Read,
    mut expected: impl std::io::Read,
    hint: &Hint,
    unreadable: &Hint,
) {
    const BLOCK: usize = 64 * 1024;
    let (mut a, mut e) = (vec![0; BLOCK], vec![0; BLOCK]);
    let mut offset = 0;
    loop {
        let got = read_full(&mut actual, &mut a).unwrap_or_else(|error| {
            fail(
                &format!("{what}: cannot be read past byte {offset}"),
                error,
                "the whole output, readable to its end",
                unreadable,
            )
        });
        let want = read_full(&mut expected, &mut e).expect("the expected bytes cannot be read");
        if a[..got] != e[..want] {
            check_bytes(
                &format!("{what}, the 64 KiB from byte {offset} on"),
                &a[..got],
                &e[..want],
                hint,
            );
        }
        if want == 0 {
            return;
        }
        offset += want;
    }
}

/// Reads until `buf` is full or the reader ends; returns how much it read.
fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The text of a panic's payload: what `panic!` was given, whatever its type.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(a panic with a payload that is not text)".to_owned())
}

/// Panics with a `String` payload, for suites that test how code handles one: the compiler
/// folds `panic!("boom {}", 7)` into a `&'static str`, so only this makes a real `String`.
pub fn panic_with_string(message: impl Display) -> ! {
    std::panic::panic_any(message.to_string())
}

#[cfg(test)]
mod tests {

    /// A reader that gives its bytes three at a time, then fails if asked to.
    struct Trickle<'a>(&'a [u8], bool);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() && self.1 {
                return Err(std::io::Error::other("cut short"));
            }
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// The message of the panic `check` ends in.
    fn panic_message(check: impl FnOnce()) -> String {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check))
            .expect_err("the check passed");
        panic_text(payload.as_ref())
    }

    #[test]
    fn check_stream_compares_whole_streams_in_blocks() {
        let big: Vec<u8> = (0..200_000_u32).map(|i| (i % 251) as u8).collect();
        let hint = crate::Stage::new("kata", 1).hint("h");
        check_stream("same", Trickle(&big, false), &big[..], &hint, &hint);
        let mut changed = big.clone();
        changed[150_000] ^= 1;
        let message = panic_message(|| {
            check_stream("the output", &changed[..], &big[..], &hint, &hint);
        });
        assert!(
            message.contains("the 64 KiB from byte 131072 on")
                && message.contains("first difference at byte 18928"),
            "{message}"
        );
        let message = panic_message(|| {
            check_stream("short", &big[..1000], &big[..], &hint, &hint);
        });
        assert!(
            message.contains("the first 1000 bytes right, then it ends"),
            "{message}"
        );
        let message = panic_message(|| {
            check_stream("broken", Trickle(&big[..10], true), &big[..], &hint, &hint);
        });
        assert!(
            message.contains("broken: cannot be read past byte 0"),
            "{message}"
        );
    }
    use super::*;
    use crate::hint::Stage;

    const T: Stage = Stage::new("sample", 1);

    #[test]
    fn a_report_has_what_expected_actual_and_hint() {
        let text = format("ticks", 4, 3, "read stage 1");
        assert_eq!(
            text,
            "ticks\n  expected: 3\n  actual:   4\n  hint: read stage 1"
        );
    }

    #[test]
    fn long_lists_are_cut() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            list(&items),
            "[0, 1, 2, 3, 4, 5, 6, 7, ... 89 more ..., 97, 98, 99]"
        );
        assert_eq!(list(&[1, 2]), "[1, 2]");
    }

    #[test]
    #[should_panic(
        expected = "count\n  expected: 2\n  actual:   3\n  hint: look (exercises/sample/README.md, stage 1)"
    )]
    fn check_eq_reports_both_sides_and_the_hint() {
        check_eq("count", 3, 2, &T.hint("look"));
    }

    #[test]
    fn first_differences_are_found() {
        assert_eq!(first_difference(&[1, 2], &[1, 2]), Difference::Same);
        assert_eq!(first_difference(&[1, 3, 4], &[1, 2]), Difference::At(1));
        assert_eq!(
            first_difference(&[1], &[1, 2, 3]),
            Difference::Missing { from: 1 }
        );
        assert_eq!(
            first_difference(&[1, 2, 3], &[1]),
            Difference::Extra { from: 1 }
        );
        assert_eq!(first_difference::<u8>(&[], &[]), Difference::Same);
    }

    #[test]
    #[should_panic(expected = "events: item #2 is 5, expected 2")]
    fn check_seq_names_the_first_different_item() {
        check_seq("events", &[1, 5, 3], &[1, 2, 3], &T.hint("order"));
    }

    #[test]
    #[should_panic(expected = "events: 2 item(s) missing, from #2: 2")]
    fn check_seq_names_what_is_missing() {
        check_seq("events", &[1], &[1, 2, 3], &T.hint("order"));
    }

    #[test]
    #[should_panic(expected = "events: 1 extra item(s), from #3: 9")]
    fn check_seq_names_what_is_extra() {
        check_seq("events", &[1, 2, 9], &[1, 2], &T.hint("order"));
    }

    #[test]
    fn bytes_are_shown_by_what_they_are() {
        assert_eq!(show_bytes(b"hi\n"), "3 bytes \"hi\\n\"");
        assert_eq!(show_bytes(&[0, 0xff]), "2 bytes [00, ff]");
        assert_eq!(
            show_bytes(&[7; 100]),
            "100 bytes starting [07, 07, 07, 07, 07, 07, 07, 07]"
        );
    }

    #[test]
    #[should_panic(expected = "first difference at byte 1 (0x78 where 0x62 was expected)")]
    fn check_bytes_finds_the_first_different_byte() {
        check_bytes("out", b"axc", b"abc", &T.hint("h"));
    }

    #[test]
    #[should_panic(expected = "actual:   2 bytes \"ab\", the first 2 bytes right, then it ends")]
    fn check_bytes_sees_a_short_file() {
        check_bytes("out", &b"ab".to_vec(), "abc", &T.hint("h"));
    }

    #[test]
    #[should_panic(expected = "expected: no file\n  actual:   3 bytes \"abc\"")]
    fn check_bytes_knows_no_file() {
        check_bytes("out", "abc", Content(None), &T.hint("h"));
    }

    #[test]
    fn equal_bytes_pass_whatever_their_form() {
        check_bytes("out", "abc", &b"abc".to_vec(), &T.hint("h"));
        check_bytes("out", Content(None), &None, &T.hint("h"));
    }

    #[test]
    fn a_string_payload_is_a_string() {
        let payload = std::panic::catch_unwind(|| panic_with_string(format_args!("boom {}", 7)))
            .expect_err("it panics");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("boom 7")
        );
        assert_eq!(panic_text(payload.as_ref()), "boom 7");
        let literal = std::panic::catch_unwind(|| panic!("boom")).expect_err("it panics");
        assert!(literal.downcast_ref::<&str>().is_some());
        assert_eq!(panic_text(literal.as_ref()), "boom");
    }
}
