//! Every cargo command the runner runs is built here, and so is the one place that builds a
//! kata's suite and finds its test binary.
//!
//! A build asks cargo for JSON messages (`--message-format=json-render-diagnostics`): one line per
//! crate built, and the test binary's path at the end, while the compiler's own messages still
//! come as the compiler writes them, colours included. The runner forwards those messages
//! and, between them, says the build is alive: a progress line in a terminal, a line every few
//! seconds in a log. A learner's first build compiles tokio and takes a minute or more; a
//! silent minute looks like a hang.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::json::Json;
use crate::style;

/// A `cargo` command in the repository's root (`$CARGO` when cargo runs the runner itself).
pub fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root).stdin(Stdio::null());
    command
}

/// How much of a build the learner sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// The compiler's messages and signs of life (a single kata's run).
    Shown,
    /// Nothing (`just test all` draws its own bar).
    Quiet,
}

/// What a build of a suite came to.
#[derive(Debug)]
pub enum Built {
    /// The test binary.
    Binary(PathBuf),
    /// It did not compile; the compiler's messages, as it wrote them.
    Failed { messages: String },
}

/// Something the build said, from either of cargo's two outputs.
enum Said {
    Crate(String),
    Binary(PathBuf),
    Line(String),
    Done,
}

/// Builds the `suite` test target of `package` and returns its binary.
pub fn build_suite(root: &Path, package: &str, suite: &str, noise: Noise) -> Result<Built> {
    let mut child = cargo(root)
        .args([
            "test",
            "--no-run",
            "--quiet",
            "--package",
            package,
            "--test",
            suite,
        ])
        .arg("--message-format=json-render-diagnostics")
        .args(["--color", style::stderr_color()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo: is Rust installed (https://rustup.rs)?")?;
    let (said, hear) = mpsc::channel();
    let stdout = child.stdout.take().context("cargo's output")?;
    let stderr = child.stderr.take().context("cargo's messages")?;
    let wanted = suite.to_owned();
    let json_said = said.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(said) = Json::parse(&line).and_then(|message| artifact(&message, &wanted)) {
                let _ = json_said.send(said);
            }
        }
        let _ = json_said.send(Said::Done);
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said.send(Said::Line(line));
        }
    });

    let mut alive = Alive::new(noise);
    let mut binary = None;
    let mut messages = String::new();
    loop {
        match hear.recv_timeout(Duration::from_millis(250)) {
            Ok(Said::Crate(name)) => alive.built(&name),
            Ok(Said::Binary(path)) => binary = Some(path),
            Ok(Said::Line(line)) => {
                alive.clear();
                if noise == Noise::Shown {
                    eprintln!("{line}");
                }
                messages.push_str(&line);
                messages.push('\n');
            }
            Ok(Said::Done) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => alive.tick(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    alive.clear();
    let _ = reader.join();
    let status = child.wait().context("cargo did not finish")?;
    // The last of the compiler's messages may still be on their way.
    while let Ok(said) = hear.recv_timeout(Duration::from_millis(50)) {
        if let Said::Line(line) = said {
            if noise == Noise::Shown {
                eprintln!("{line}");
            }
            messages.push_str(&line);
            messages.push('\n');
        }
    }
    Ok(match (status.success(), binary) {
        (true, Some(path)) => Built::Binary(path),
        (true, None) => anyhow::bail!("cargo built {package} but named no test binary `{suite}`"),
        (false, _) => Built::Failed { messages },
    })
}

/// What one JSON line of cargo's says, for a build of the suite `wanted`: a crate built, or the
/// suite's binary; `None` for the other messages.
fn artifact(message: &Json, wanted: &str) -> Option<Said> {
    if message.get("reason").and_then(Json::as_str) != Some("compiler-artifact") {
        return None;
    }
    let name = message
        .at(&["target", "name"])
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    let is_test = message
        .at(&["target", "kind"])
        .and_then(Json::as_array)
        .is_some_and(|kinds| kinds.iter().any(|kind| kind.as_str() == Some("test")));
    Some(match message.get("executable").and_then(Json::as_str) {
        Some(path) if is_test && name == wanted => Said::Binary(PathBuf::from(path)),
        _ => Said::Crate(name),
    })
}

/// Signs that a build is alive: a redrawn line in a terminal, a line every few seconds in a log.
struct Alive {
    noise: Noise,
    terminal: bool,
    started: Instant,
    last_said: Instant,
    crates: usize,
    last_crate: String,
    drawn: bool,
}

/// How often a build in a log says it is still going.
const EVERY: Duration = Duration::from_secs(5);

impl Alive {
    fn new(noise: Noise) -> Self {
        let now = Instant::now();
        Self {
            noise,
            terminal: std::io::stderr().is_terminal(),
            started: now,
            last_said: now,
            crates: 0,
            last_crate: String::new(),
            drawn: false,
        }
    }

    fn built(&mut self, name: &str) {
        if !name.is_empty() {
            self.crates += 1;
            self.last_crate = name.to_owned();
        }
        self.tick();
    }

    fn tick(&mut self) {
        if self.noise == Noise::Quiet {
            return;
        }
        let elapsed = self.started.elapsed();
        // A warm build takes a second: say nothing unless it takes longer.
        if elapsed < Duration::from_millis(1500) {
            return;
        }
        let text = format!(
            "building: {} crate(s) compiled{}, {}s (the first build of a kata takes a minute or two)",
            self.crates,
            if self.last_crate.is_empty() {
                String::new()
            } else {
                format!(", the last {}", self.last_crate)
            },
            elapsed.as_secs()
        );
        if self.terminal {
            eprint!("\r\x1b[K{}", style::dim(&text));
            let _ = std::io::stderr().flush();
            self.drawn = true;
        } else if self.last_said.elapsed() >= EVERY {
            eprintln!("{text}");
            self.last_said = Instant::now();
        }
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

/// Runs `cargo ARGS` with the learner's terminal, for commands whose output is the point
/// (`just profile`).
pub fn run_in_view<I, S>(root: &Path, args: I) -> Result<bool>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let status = cargo(root)
        .args(args)
        .stdin(Stdio::inherit())
        .status()
        .context("cannot run cargo: is Rust installed (https://rustup.rs)?")?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_s_binary_is_found_among_the_artifacts() {
        let line = |kind: &str, name: &str, exe: &str| {
            Json::parse(&format!(
                r#"{{"reason":"compiler-artifact","target":{{"kind":["{kind}"],"name":"{name}"}},"executable":{exe}}}"#
            ))
            .unwrap()
        };
        assert!(matches!(
            artifact(&line("test", "ticker", "\"/t/ticker-1\""), "ticker"),
            Some(Said::Binary(path)) if path == Path::new("/t/ticker-1")
        ));
        assert!(matches!(
            artifact(&line("lib", "ticker", "null"), "ticker"),
            Some(Said::Crate(name)) if name == "ticker"
        ));
        assert!(matches!(
            artifact(&line("test", "other", "\"/t/other\""), "ticker"),
            Some(Said::Crate(name)) if name == "other"
        ));
        let finished = Json::parse(r#"{"reason":"build-finished","success":true}"#).unwrap();
        assert!(artifact(&finished, "ticker").is_none());
    }
}
