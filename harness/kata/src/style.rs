//! Colour for a terminal, plain text for pipes, logs and `NO_COLOR`.

use std::io::IsTerminal;
use std::sync::OnceLock;

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED
        .get_or_init(|| std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
}

fn paint(code: &str, text: &str) -> String {
    if enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

pub fn red(text: &str) -> String {
    paint("31", text)
}

pub fn green(text: &str) -> String {
    paint("32", text)
}

pub fn yellow(text: &str) -> String {
    paint("33", text)
}

pub fn bold(text: &str) -> String {
    paint("1", text)
}

pub fn dim(text: &str) -> String {
    paint("2", text)
}

/// Whether cargo should colour its own output (compiler errors) the same way.
pub fn cargo_color() -> &'static str {
    if enabled() { "always" } else { "never" }
}

/// Colour for what cargo writes to stderr (compiler messages), which the runner captures and
/// passes on: colour when stderr is a terminal, as cargo itself would decide.
pub fn stderr_color() -> &'static str {
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        "always"
    } else {
        "never"
    }
}
