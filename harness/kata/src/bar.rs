//! A progress bar for runs over several katas, drawn on stderr when it is a terminal.
//!
//! Building and running every suite takes a while the first time; a bar that says which kata
//! is building tells the learner that something is happening. In a log or a pipe it draws
//! nothing: a plain line per kata is printed by the caller instead.

use std::io::{IsTerminal, Write};

/// Progress through `total` steps.
pub struct ProgressBar {
    total: usize,
    done: usize,
    drawn: bool,
}

const WIDTH: usize = 24;

/// The bar's text after `done` of `total` steps, working on `label`.
pub fn render(done: usize, total: usize, label: &str) -> String {
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!(
        "[{}{}] {done}/{total} {label}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled)
    )
}

impl ProgressBar {
    pub fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            drawn: std::io::stderr().is_terminal(),
        }
    }

    /// Whether the bar is drawn (stderr is a terminal); callers print plain lines otherwise.
    pub fn is_drawn(&self) -> bool {
        self.drawn
    }

    /// Shows that step `done + 1` (called `label`) is under way.
    pub fn start(&self, label: &str) {
        if self.drawn {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K{}", render(self.done, self.total, label));
            let _ = stderr.flush();
        }
    }

    /// Marks one step done.
    pub fn step(&mut self) {
        self.done = (self.done + 1).min(self.total);
    }

    /// Clears the bar, so what follows starts on a clean line.
    pub fn clear(&self) {
        if self.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn the_bar_fills_in_proportion() {
        assert_eq!(
            render(0, 8, "ticker"),
            format!("[{}] 0/8 ticker", "-".repeat(24))
        );
        assert_eq!(
            render(2, 8, "concat-files"),
            format!("[{}{}] 2/8 concat-files", "#".repeat(6), "-".repeat(18))
        );
        assert_eq!(
            render(8, 8, "done"),
            format!("[{}] 8/8 done", "#".repeat(24))
        );
        assert_eq!(render(0, 0, ""), format!("[{}] 0/0 ", "#".repeat(24)));
    }
}
