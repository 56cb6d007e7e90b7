//! `just watch [kata]`: run a kata's suite again every time the learner saves.
//!
//! File events come from the OS through `notify`. One save is often a burst of events (a write,
//! a rename, a swap file), so a burst is left to settle and then answered with one run. Some
//! file systems never send events (network mounts, some containers and VMs), so Enter re-runs
//! by hand and the watch works without any events at all. Keys and file events arrive on one
//! channel, which makes the loop in [`run`] the only place that decides what happens next.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::progress::{self, Progress};
use crate::repo::{Kata, Repo};
use crate::selection::Selection;
use crate::test::Whose;
use crate::{hint, style, test};

/// How long a burst of file events must stay quiet before the suite runs.
const SETTLE: Duration = Duration::from_millis(200);

/// What the loop is asked to do, by the file watcher or by a key.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// These paths changed. They are not filtered yet: the loop knows which kata it is on.
    Changed(Vec<PathBuf>),
    /// Enter: run the suite again.
    Rerun,
    /// `h` + Enter: show the hints.
    Hint,
    /// `q` + Enter: stop watching.
    Quit,
    /// Standard input is closed: there will be no more keys.
    KeysClosed,
}

/// Watches the named kata, or the first one not solved yet, until `q` or Ctrl-C.
pub fn run(kata: Option<&str>) -> Result<ExitCode> {
    test::check_settings()?;
    let repo = Repo::here()?;
    // A named kata is watched for good; otherwise the watch follows the learner's progress.
    let follow = kata.is_none();
    let Some(mut kata) = progress::named_or_next(&repo, kata, "watch")? else {
        return Ok(ExitCode::SUCCESS);
    };

    let (sender, commands) = mpsc::channel();
    // Without file events the watch still works with Enter, so a watcher that cannot start (the
    // inotify limit, say) is reported under every run rather than ending the watch.
    let mut watcher = start_watcher(&kata, sender.clone()).map_err(|error| format!("{error:#}"));
    read_keys(sender);
    let mut keys = true;

    // The first run is an Enter pressed for the learner. Later, `pending` holds a key pressed
    // while a burst of file events settled, to handle after that burst's run.
    let mut pending = Some(Request::Rerun);
    loop {
        let Some(command) = pending.take().or_else(|| commands.recv().ok()) else {
            // Every sender is gone: standard input is closed and there is no file watcher.
            println!("No keys and no file events to wait for: the watch stops.");
            return Ok(ExitCode::FAILURE);
        };
        match command {
            Request::Quit => return Ok(ExitCode::SUCCESS),
            Request::KeysClosed => {
                keys = false;
                println!(
                    "{}",
                    style::dim("Standard input is closed, so keys are off; Ctrl-C quits.")
                );
                continue;
            }
            Request::Hint => {
                println!();
                if let Err(error) = hint::run(Some(&kata.name), None, false) {
                    eprintln!("{} {error:#}", style::red("error:"));
                }
            }
            Request::Changed(paths) => {
                if !paths.iter().any(|path| relevant(&kata, path)) {
                    continue;
                }
                pending = settle(&commands, &kata);
                run_suite(&kata);
            }
            Request::Rerun => run_suite(&kata),
        }

        if follow && solved(&kata) {
            // The run updated the cache, so `next` now skips this kata.
            match progress::next_unsolved(repo.katas()).cloned() {
                Some(next) => {
                    println!(
                        "\n{} {} is solved: now watching {}. Read {} to start it.",
                        style::green("✓"),
                        kata.name,
                        style::bold(&next.name),
                        next.readme()
                    );
                    rewatch(&mut watcher, &kata, &next);
                    kata = next;
                }
                None => {
                    println!(
                        "\n{}",
                        style::green(
                            "Every kata is solved. Well done! To keep watching one: just watch \
                             <kata>"
                        )
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        println!("{}", footer(&kata.name, watcher.as_ref().err(), keys));
    }
}

/// Moves the watch from one kata's crate to another's (the tests directory stays watched).
fn rewatch(watcher: &mut Result<RecommendedWatcher, String>, from: &Kata, to: &Kata) {
    let Ok(files) = watcher else { return };
    // Best effort: events from the old crate are filtered out anyway.
    let _ = files.unwatch(&from.exercise_dir());
    if let Err(error) = files.watch(&to.exercise_dir(), RecursiveMode::Recursive) {
        *watcher = Err(format!("cannot watch exercises/{}: {error}", to.name));
    }
}

/// Clears a terminal and runs the suite; the run prints its own report. An error (cargo
/// missing, say) is printed and the watch goes on: the next save may well fix it.
fn run_suite(kata: &Kata) {
    let mut stdout = std::io::stdout();
    if stdout.is_terminal() {
        print!("\x1b[2J\x1b[H");
        let _ = stdout.flush();
    }
    if let Err(error) = test::test_kata(kata, &Selection::everything(), Whose::Learner) {
        eprintln!("{} {error:#}", style::red("error:"));
    }
}

/// Whether every test passes (the same rule `just` uses).
fn solved(kata: &Kata) -> bool {
    Progress::of(kata).is_ok_and(|progress| progress.solved())
}

/// The short reminder under each run of what the watch is doing and which keys work.
fn footer(kata: &str, files_off: Option<&String>, keys: bool) -> String {
    const KEYS: &str = "Enter re-runs, h + Enter shows hints, q + Enter quits.";
    let text = match (files_off, keys) {
        (None, true) => {
            format!("watching exercises/{kata} and tests/{kata}.rs. Save a file to re-run; {KEYS}")
        }
        (None, false) => format!(
            "watching exercises/{kata} and tests/{kata}.rs. Save a file to re-run; Ctrl-C quits."
        ),
        (Some(why), _) => format!("file events are off ({why}), so saving does not re-run: {KEYS}"),
    };
    style::dim(&text)
}

/// Watches the kata's crate and the tests directory. The directories are watched rather than
/// the files, because many editors save by writing a new file and renaming it over the old one,
/// which would end a watch on the old file.
fn start_watcher(kata: &Kata, sender: Sender<Request>) -> Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        // Reads are not changes, and the compiler opens every source file on each run: passing
        // them on would re-run forever. A watcher error has no path to act on, so it is dropped.
        if let Ok(event) = event
            && matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            )
        {
            // The loop may be gone (it quit): nothing left to tell.
            let _ = sender.send(Request::Changed(event.paths));
        }
    })
    .context("cannot start the file watcher")?;
    let tests = kata.root.join("tests");
    // Recursive: a suite's fixtures live in tests/<kata>/.
    watcher
        .watch(&tests, RecursiveMode::Recursive)
        .context("cannot watch tests/")?;
    watcher
        .watch(&kata.exercise_dir(), RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch exercises/{}", kata.name))?;
    Ok(watcher)
}

/// Reads keys from standard input on a thread of its own, so that they can arrive while a run
/// is going. At the end of input (`just watch < /dev/null`) only file events are left.
fn read_keys(sender: Sender<Request>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let Some(command) = parse_key(&line) else {
                println!(
                    "{}",
                    style::dim(&format!(
                        "`{}` is not a key here: Enter re-runs, h + Enter shows hints, q + Enter \
                         quits.",
                        line.trim()
                    ))
                );
                continue;
            };
            let quit = command == Request::Quit;
            if sender.send(command).is_err() || quit {
                return;
            }
        }
        let _ = sender.send(Request::KeysClosed);
    });
}

/// What a line typed on standard input asks for, if anything.
fn parse_key(line: &str) -> Option<Request> {
    match line.trim().to_ascii_lowercase().as_str() {
        "" => Some(Request::Rerun),
        "h" | "hint" => Some(Request::Hint),
        "q" | "quit" => Some(Request::Quit),
        _ => None,
    }
}

/// Waits until the kata's files have had no event for [`SETTLE`]. Returns a key pressed in the
/// meantime, for the loop to handle after the run (Enter is dropped: the run is coming anyway).
fn settle(commands: &Receiver<Request>, kata: &Kata) -> Option<Request> {
    let mut quiet_until = Instant::now() + SETTLE;
    loop {
        match commands.recv_timeout(quiet_until.saturating_duration_since(Instant::now())) {
            Ok(Request::Changed(paths)) => {
                if paths.iter().any(|path| relevant(kata, path)) {
                    quiet_until = Instant::now() + SETTLE;
                }
            }
            Ok(Request::Rerun) => {}
            Ok(key) => return Some(key),
            // Quiet for long enough, or nothing can send any more: run now either way.
            Err(_) => return None,
        }
    }
}

/// Whether a change to `path` can change the kata's result: its suite, or a Rust source or
/// manifest in its crate. Build output (`target`), hidden files and editors' swap, backup and
/// lock files (`.lib.rs.swp`, `lib.rs~`, vim's `4913`, emacs's `.#lib.rs`) cannot.
fn relevant(kata: &Kata, path: &Path) -> bool {
    if let Ok(file) = path.strip_prefix(kata.root.join("tests")) {
        let own_fixture = file.starts_with(&kata.name)
            && file.extension().is_some_and(|ext| ext == "rs")
            && !file
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        return file == Path::new(&format!("{}.rs", kata.name)) || own_fixture;
    }
    let Ok(file) = path.strip_prefix(kata.exercise_dir()) else {
        return false;
    };
    let name = file
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    let source = matches!(
        Path::new(name).extension().and_then(|ext| ext.to_str()),
        Some("rs" | "toml")
    );
    source
        && !name.starts_with('.')
        && !file
            .components()
            .any(|component| component.as_os_str() == "target")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticker() -> Kata {
        Kata {
            name: "ticker".to_owned(),
            root: PathBuf::from("/k"),
        }
    }

    #[test]
    fn the_kata_sources_and_suite_are_relevant() {
        for path in [
            "/k/exercises/ticker/src/lib.rs",
            "/k/exercises/ticker/src/deep/er.rs",
            "/k/exercises/ticker/Cargo.toml",
            "/k/tests/ticker.rs",
            "/k/tests/ticker/support.rs",
        ] {
            assert!(relevant(&ticker(), Path::new(path)), "{path}");
        }
    }

    #[test]
    fn other_files_and_editor_litter_are_not() {
        for path in [
            "/k/tests/pclimit.rs",
            "/k/tests/pclimit/support.rs",
            "/k/tests/ticker/.support.rs.swp",
            "/k/tests/.ticker.rs.swp",
            "/k/exercises/tickers/src/lib.rs",
            "/k/exercises/pclimit/src/lib.rs",
            "/k/solutions/ticker/src/lib.rs",
            "/k/exercises/ticker/target/debug/build/out.rs",
            "/k/exercises/ticker/README.md",
            "/k/exercises/ticker/src",
            "/k/exercises/ticker/src/.lib.rs.swp",
            "/k/exercises/ticker/src/.lib.rs.swx",
            "/k/exercises/ticker/src/lib.rs~",
            "/k/exercises/ticker/src/4913",
            "/k/exercises/ticker/src/.#lib.rs",
            "/k/exercises/ticker/src/#lib.rs#",
            "/elsewhere/exercises/ticker/src/lib.rs",
        ] {
            assert!(!relevant(&ticker(), Path::new(path)), "{path}");
        }
    }

    #[test]
    fn keys_are_enter_h_and_q() {
        assert_eq!(parse_key(""), Some(Request::Rerun));
        assert_eq!(parse_key("  \r"), Some(Request::Rerun));
        assert_eq!(parse_key("h"), Some(Request::Hint));
        assert_eq!(parse_key("H "), Some(Request::Hint));
        assert_eq!(parse_key("q"), Some(Request::Quit));
        assert_eq!(parse_key("quit"), Some(Request::Quit));
        assert_eq!(parse_key("x"), None);
        assert_eq!(parse_key("hq"), None);
    }

    #[test]
    fn a_burst_settles_into_one_and_keeps_a_key_for_later() {
        let (sender, commands) = mpsc::channel();
        let changed = |path: &str| Request::Changed(vec![PathBuf::from(path)]);
        sender
            .send(changed("/k/exercises/ticker/src/lib.rs"))
            .unwrap();
        sender
            .send(changed("/k/exercises/ticker/src/.lib.rs.swp"))
            .unwrap();
        sender.send(Request::Rerun).unwrap();
        assert_eq!(settle(&commands, &ticker()), None);
        assert!(commands.try_recv().is_err(), "the burst was drained");

        sender.send(changed("/k/tests/ticker.rs")).unwrap();
        sender.send(Request::Quit).unwrap();
        sender.send(changed("/k/tests/ticker.rs")).unwrap();
        assert_eq!(settle(&commands, &ticker()), Some(Request::Quit));
    }

    #[test]
    fn the_footer_names_what_works() {
        let both = footer("ticker", None, true);
        assert!(
            both.contains("exercises/ticker and tests/ticker.rs"),
            "{both}"
        );
        assert!(both.contains("q + Enter quits"), "{both}");
        assert!(footer("ticker", None, false).contains("Ctrl-C quits"));
        let why = "inotify limit".to_owned();
        assert!(footer("ticker", Some(&why), true).contains("file events are off (inotify limit)"));
    }
}
