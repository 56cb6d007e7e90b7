//! Every cargo command the runner runs is built here, and so is the one place that builds a
//! kata's suite and finds its test binary.
//!
//! A build asks cargo for JSON messages (`--message-format=json-render-diagnostics`): one line per
//! crate built, and the test binary's path at the end, while the compiler's own messages still
//! come as the compiler writes them, colours included. The runner forwards those messages
//! and, between them, says the build is alive: a progress line in a terminal, a line every few
//! seconds in a log. A learner's first build compiles syn, tokio and the harness (ten to twenty
//! seconds on two cores, longer on a slow machine), and a silent wait looks like a hang.

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

/// What a build of several suites came to: the binaries that were built, by their crate's
/// directory, and the compiler's messages.
#[derive(Debug, Default)]
pub struct Builds {
    pub binaries: Vec<(PathBuf, PathBuf)>,
    pub success: bool,
    pub messages: String,
}

impl Builds {
    /// The test binary of the crate in `dir`, if it was built.
    pub fn binary(&self, dir: &Path) -> Option<&Path> {
        let same = |a: &Path, b: &Path| {
            a == b
                || a.canonicalize()
                    .ok()
                    .is_some_and(|a| b.canonicalize().ok() == Some(a))
        };
        self.binaries
            .iter()
            .find(|(crate_dir, _)| same(crate_dir, dir))
            .map(|(_, binary)| binary.as_path())
    }
}

/// Something the build said, from either of cargo's two outputs.
enum Said {
    Crate(String),
    Binary { crate_dir: PathBuf, path: PathBuf },
    Line(String),
    Done,
}

/// Builds the `suite` test target of `package` and returns its binary.
pub fn build_suite(root: &Path, package: &str, suite: &str, noise: Noise) -> Result<Built> {
    let builds = build_suites(root, &[package.to_owned()], &[suite.to_owned()], noise)?;
    if !builds.success {
        return Ok(Built::Failed {
            messages: builds.messages,
        });
    }
    match builds.binaries.into_iter().next() {
        Some((_, binary)) => Ok(Built::Binary(binary)),
        None => anyhow::bail!("cargo built {package} but named no test binary `{suite}`"),
    }
}

/// Builds the test targets called `suites` of every package of `packages` in one cargo run:
/// one dependency graph, so cargo builds what they share once, two at a time on two cores, and
/// `--keep-going`, so one crate that does not compile costs only its own binary.
pub fn build_suites(
    root: &Path,
    packages: &[String],
    suites: &[String],
    noise: Noise,
) -> Result<Builds> {
    let mut command = cargo(root);
    command.args(["build", "--quiet", "--keep-going"]);
    for package in packages {
        command.args(["--package", package]);
    }
    for suite in suites {
        command.args(["--test", suite]);
    }
    let mut child = command
        .arg("--message-format=json-render-diagnostics")
        .args(["--color", style::stderr_color()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo: is Rust installed (https://rustup.rs)?")?;
    let (said, hear) = mpsc::channel();
    let stdout = child.stdout.take().context("cargo's output")?;
    let stderr = child.stderr.take().context("cargo's messages")?;
    let wanted = suites.to_vec();
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
    let mut builds = Builds::default();
    let hear_line = |line: String, alive: &mut Alive, builds: &mut Builds| {
        alive.clear();
        if noise == Noise::Shown {
            eprintln!("{line}");
        }
        builds.messages.push_str(&line);
        builds.messages.push('\n');
    };
    loop {
        match hear.recv_timeout(Duration::from_millis(250)) {
            Ok(Said::Crate(name)) => alive.built(&name),
            Ok(Said::Binary { crate_dir, path }) => builds.binaries.push((crate_dir, path)),
            Ok(Said::Line(line)) => hear_line(line, &mut alive, &mut builds),
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
            hear_line(line, &mut alive, &mut builds);
        }
    }
    builds.success = status.success();
    Ok(builds)
}

/// What one JSON line of cargo's says, for a build of the test targets `wanted`: a crate built,
/// or one of the suites' binaries; `None` for the other messages.
fn artifact(message: &Json, wanted: &[String]) -> Option<Said> {
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
    let crate_dir = message
        .get("manifest_path")
        .and_then(Json::as_str)
        .and_then(|manifest| Path::new(manifest).parent())
        .map(Path::to_path_buf);
    Some(
        match (message.get("executable").and_then(Json::as_str), crate_dir) {
            (Some(path), Some(crate_dir)) if is_test && wanted.contains(&name) => Said::Binary {
                crate_dir,
                path: PathBuf::from(path),
            },
            _ => Said::Crate(name),
        },
    )
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
            "building: {} crate(s) compiled{}, {}s (a first build takes up to a minute; later ones reuse it)",
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
                r#"{{"reason":"compiler-artifact","manifest_path":"/k/exercises/ticker/Cargo.toml","target":{{"kind":["{kind}"],"name":"{name}"}},"executable":{exe}}}"#
            ))
            .unwrap()
        };
        let wanted = ["ticker".to_owned()];
        assert!(matches!(
            artifact(&line("test", "ticker", "\"/t/ticker-1\""), &wanted),
            Some(Said::Binary { crate_dir, path })
                if path == Path::new("/t/ticker-1") && crate_dir == Path::new("/k/exercises/ticker")
        ));
        assert!(matches!(
            artifact(&line("lib", "ticker", "null"), &wanted),
            Some(Said::Crate(name)) if name == "ticker"
        ));
        assert!(matches!(
            artifact(&line("test", "other", "\"/t/other\""), &wanted),
            Some(Said::Crate(name)) if name == "other"
        ));
        let finished = Json::parse(r#"{"reason":"build-finished","success":true}"#).unwrap();
        assert!(artifact(&finished, &wanted).is_none());
    }
}
