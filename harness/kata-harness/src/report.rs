//! The one shape every failing check prints.
//!
//! ```text
//! ticks of ticker(120 ms): wrong schedule
//!   expected: 2 events at [50ms, 100ms]
//!   actual:   3 events at [0ns, 50ms, 100ms]
//!   hint: stage 1 ticks first at 50 ms, not at once (exercises/ticker/README.md, stage 1)
//! ```
//!
//! A learner sees this text instead of a backtrace, so it leads with *what* was checked and ends
//! with *where to look*. The runner (`just test`) finds the message by its first line.

use std::fmt::{Debug, Display};

/// Panics with a failure report. Use it for checks the harness does not have.
#[track_caller]
pub fn fail(what: &str, expected: impl Display, actual: impl Display, hint: &str) -> ! {
    panic!("{}", format(what, expected, actual, hint))
}

/// Formats a failure report without panicking (for messages built in several steps).
pub fn format(what: &str, expected: impl Display, actual: impl Display, hint: &str) -> String {
    let mut out = format!("{what}\n  expected: {expected}\n  actual:   {actual}");
    if !hint.is_empty() {
        out.push_str("\n  hint: ");
        out.push_str(hint);
    }
    out
}

/// Asserts `actual == expected` with a failure report instead of `assert_eq!`'s left/right.
#[track_caller]
pub fn check_eq<T: PartialEq + Debug>(what: &str, actual: T, expected: T, hint: &str) {
    if actual != expected {
        fail(
            what,
            format_args!("{expected:?}"),
            format_args!("{actual:?}"),
            hint,
        );
    }
}

/// Shows a list, cut in the middle when it is long, so a report stays a few lines.
pub fn list<T: Debug>(items: &[T]) -> String {
    const HEAD: usize = 8;
    const TAIL: usize = 3;
    if items.len() <= HEAD + TAIL + 1 {
        return format!("{items:?}");
    }
    let head: Vec<String> = items[..HEAD]
        .iter()
        .map(|item| format!("{item:?}"))
        .collect();
    let tail: Vec<String> = items[items.len() - TAIL..]
        .iter()
        .map(|item| format!("{item:?}"))
        .collect();
    format!(
        "[{}, ... {} more ..., {}]",
        head.join(", "),
        items.len() - HEAD - TAIL,
        tail.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_has_what_expected_actual_and_hint() {
        let text = format("ticks", 3, 4, "read stage 1");
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
    #[should_panic(expected = "count\n  expected: 2\n  actual:   3")]
    fn check_eq_reports_both_sides() {
        check_eq("count", 3, 2, "");
    }
}
