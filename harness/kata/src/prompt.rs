//! Asking the learner before doing something they may regret (resetting their work, seeing the
//! solution). Only a terminal can answer: callers check [`can_ask`] first and say what flag to
//! pass instead, so nothing ever waits for input in CI.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};

/// Whether there is someone at a terminal to answer.
pub fn can_ask() -> bool {
    std::io::stdin().is_terminal()
}

/// Prints `question [y/N] ` and reads one line; only `y` or `yes` (any case) is a yes. End of
/// input (Ctrl-D) is a no.
pub fn yes_or_no(question: &str) -> Result<bool> {
    print!("{question} [y/N] ");
    std::io::stdout()
        .flush()
        .context("cannot write to the terminal")?;
    let mut answer = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if read == 0 {
        // Ctrl-D ends no line of its own.
        println!();
    }
    Ok(is_yes(&answer))
}

/// Whether an answer to `[y/N]` is a yes.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::is_yes;

    #[test]
    fn only_yes_is_yes() {
        for yes in ["y", "Y", "yes", "YES\n", " Yes \r\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "y y", "sure"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
