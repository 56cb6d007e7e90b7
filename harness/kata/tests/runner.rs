//! The runner end to end: the real `kata` binary against a fixture repository whose katas are
//! solved, half done, broken and hanging (see `tests/fixture/README.md`), the way rustlings tests
//! its own CLI.
//!
//! Every test works in its own copy of the fixture, so they can run in parallel and change
//! files. The copies build in the repository's own target directory, with its profiles, so
//! tokio and the proc macros the repository has built are reused, and the copies share what
//! they build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The async-katas repository (this crate is `harness/kata`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture")
}

/// One copy of the fixture repository.
struct Fixture {
    dir: TempDir,
}

/// What one run of `kata` printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts that stdout contains every one of `parts`, showing all of it when not.
    #[track_caller]
    fn says(&self, parts: &[&str]) -> &Self {
        for part in parts {
            assert!(
                self.stdout.contains(part),
                "expected the output to contain {part:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout,
                self.stderr
            );
        }
        self
    }

    #[track_caller]
    fn never_says(&self, part: &str) -> &Self {
        assert!(
            !self.stdout.contains(part),
            "expected the output not to contain {part:?}\n--- stdout ---\n{}",
            self.stdout
        );
        self
    }

    #[track_caller]
    fn succeeded(&self, expected: bool) -> &Self {
        assert_eq!(
            self.success, expected,
            "exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kata-fixture-")
            .tempdir()
            .expect("a temporary directory");
        let root = dir.path();
        let source = fixture_source();
        let read = |name: &str| std::fs::read_to_string(source.join(name)).unwrap();
        let write = |path: PathBuf, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };

        let katas = read("katas.txt");
        write(root.join("katas.txt"), &katas);
        let harness = repo().join("harness/kata-harness").canonicalize().unwrap();
        write(
            root.join("Cargo.toml"),
            &format!(
                "[workspace]\nresolver = \"3\"\nmembers = [\"exercises/*\", \"solutions/*\"]\n\n\
                 [workspace.dependencies]\nkata-harness = {{ path = {:?} }}\n\
                 tokio = {{ version = \"1.48\", features = [\"full\", \"test-util\"] }}\n\n\
                 {}",
                harness.display().to_string(),
                profiles(),
            ),
        );
        // The repository's lock file pins the same versions its own build uses (and downloaded).
        std::fs::copy(repo().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();

        let (suite, solution, readme) = (
            read("suite.rs"),
            read("solution.rs"),
            read("kata-readme.md"),
        );
        for kata in katas.lines().filter(|line| !line.trim().is_empty()) {
            let manifest = |package: &str, lib_path: &str| {
                format!(
                    "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                     publish = false\n\n[lib]\nname = \"fixture\"\n{lib_path}\n[dependencies]\n\
                     tokio.workspace = true\n\n[dev-dependencies]\nkata-harness.workspace = true\n\n\
                     [[test]]\nname = \"{kata}\"\npath = \"../../tests/{kata}.rs\"\n"
                )
            };
            let exercise = root.join("exercises").join(kata);
            write(exercise.join("Cargo.toml"), &manifest(kata, ""));
            write(exercise.join("README.md"), &readme);
            write(
                exercise.join("src/lib.rs"),
                &read(&format!("exercises/{kata}/src/lib.rs")),
            );
            let reference = root.join("solutions").join(kata);
            write(
                reference.join("Cargo.toml"),
                &manifest(&format!("{kata}-solution"), ""),
            );
            write(reference.join("src/lib.rs"), &solution);
            write(root.join("tests").join(format!("{kata}.rs")), &suite);
        }
        Self { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `kata ARGS` in the fixture, with no terminal and no input (as CI would).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kata"));
        command
            .args(args)
            .current_dir(self.root())
            .env("CARGO_TARGET_DIR", shared_target())
            // A hang is stopped after 1 s instead of 5: the hanging kata answers quickly.
            .env("KATA_WATCHDOG_SECS", "1")
            // A leak is stopped at 64 MiB: the leaking kata answers quickly.
            .env("KATA_MEMORY_LIMIT_MIB", "64")
            .env_remove("KATA_RECORD_DIR")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        command
    }

    /// Runs `kata ARGS` in the fixture.
    fn kata(&self, args: &[&str]) -> Run {
        self.kata_with(&[], args)
    }

    /// Runs `kata ARGS` in the fixture with these environment variables.
    fn kata_with(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .expect("cannot run the kata binary");
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The repository's `[profile...]` sections, so that the fixture builds tokio and the harness
/// exactly as the repository does and finds them already built.
fn profiles() -> String {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let start = manifest
        .find("\n[profile.")
        .expect("Cargo.toml has profiles");
    manifest[start..].to_owned()
}

/// The fixture's build directory: the repository's (`target`, or `CARGO_TARGET_DIR`), shared by
/// every copy and kept between runs. The runner's own files stay in each copy's `target/kata`.
fn shared_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .to_owned()
}

#[test]
fn status_lists_the_katas_without_building_anything() {
    let fixture = Fixture::new();
    fixture.kata(&[]).succeeded(true).says(&[
        "1. solved",
        "2. half-done",
        "3. broken",
        "4. hangs",
        "2 stages, not tried yet",
        "Next: read exercises/solved/README.md, then run just test solved",
    ]);
    assert!(
        !fixture.root().join("target").exists(),
        "status answers from the cache and never builds"
    );
}

#[test]
fn a_solved_kata_passes_and_points_to_compare_not_to_the_reference() {
    let fixture = Fixture::new();
    fixture
        .kata(&["test", "solved"])
        .succeeded(true)
        .says(&[
            "Testing your code for kata solved",
            "stage 1  ✓ 3/3 tests pass",
            "stage 2  ✓ 1/1 tests pass",
            "every test of solved passes: the kata is solved",
            "just compare solved",
        ])
        .never_says("solutions/solved");
    // The cache now knows: the next kata is the half-done one.
    fixture.kata(&[]).says(&[
        "stage 1 3/3 ✓",
        "stage 2 1/1 ✓",
        "Next: read exercises/half-done/README.md, then run just test half-done",
    ]);
}

#[test]
fn a_run_of_one_stage_says_only_that_stage_passes_and_is_remembered() {
    let fixture = Fixture::new();
    for stage in ["stage1", "1"] {
        fixture
            .kata(&["test", "half-done", stage])
            .succeeded(true)
            .says(&[
                "Testing your code for kata half-done (stage 1)",
                "stage 1  ✓ 3/3 tests pass",
                "stage 2  not run this time: just test half-done 2",
                "every test (stage 1) passes",
                "Next: stage 2: read it in exercises/half-done/README.md",
            ])
            .never_says("solved")
            .never_says("compare");
    }
    // What the stage-1 run learned stays; stage 2 is not known yet.
    fixture
        .kata(&[])
        .says(&["stage 1 3/3 ✓", "stage 2 -/1"])
        .never_says("changed since the last run");
    // A full run, a change, then stage 1 again: stage 2's result is from before the change.
    fixture.kata(&["test", "half-done"]).succeeded(false);
    let lib = fixture.root().join("exercises/half-done/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, text + "// a change\n").unwrap();
    fixture.kata(&[]).says(&["changed since the last run"]);
    fixture.kata(&["test", "half-done", "1"]).succeeded(true);
    fixture.kata(&[]).says(&[
        "stage 1 3/3 ✓",
        "stage 2 0/1 *",
        "some results are from before your last change",
    ]);
}

#[test]
fn a_failing_stage_lists_every_failure_then_the_details_without_readme_hints() {
    let fixture = Fixture::new();
    let run = fixture.kata(&["test", "half-done"]);
    run.succeeded(false).says(&[
        "stage 1  ✓ 3/3 tests pass",
        "stage 2  ✗ 0/1 tests pass",
        "✗ stage2_runs_both_at_once",
        // The harness's own message: what was checked, expected, actual, the suite's hint.
        "both: the concurrency limit was never reached",
        "expected: 2 jobs in flight at some point",
        "actual:   never more than 1 at once",
        "hint: poll the two futures together: tokio::join! (exercises/fixture/README.md, stage 2)",
        "just test half-done 2",
        "just hint half-done",
    ]);
    // Its location is the suite line that failed, not the harness.
    run.says(&["at tests/half-done.rs:"]);
    // The README's hints wait until they are asked for.
    run.never_says("polls both");
    fixture
        .kata(&["test", "half-done"])
        .says(&["stage 2  ✗ 0/1"]);
    fixture.kata(&[]).says(&["stage 1 3/3 ✓", "stage 2 0/1"]);
}

#[test]
fn a_compile_error_is_shown_as_the_compiler_gives_it() {
    let fixture = Fixture::new();
    let run = fixture.kata(&["test", "broken"]);
    run.succeeded(false)
        .says(&["exercises/broken does not compile yet"]);
    assert!(
        run.stderr.contains("error[E0277]") && run.stderr.contains("src/lib.rs:6"),
        "the compiler's own message, with its location:\n{}",
        run.stderr
    );
    fixture
        .kata(&[])
        .says(&["does not compile: just test broken shows why"]);
}

#[test]
fn a_hang_is_shown_first_with_the_test_that_hung_and_how() {
    let fixture = Fixture::new();
    let run = fixture.kata(&["test", "hangs"]);
    run.succeeded(false).says(&[
        "stage 1  ✗ 0/3 tests pass",
        "stopped by the watchdog",
        // How it was stuck, and where the test is.
        "no task ran while the watchdog waited",
        "the test: tests/hangs.rs:",
    ]);
    // The other tests of the run were cut short because of the first hang, and say which.
    run.says(&["(cut short: stage1_"]);
}

#[test]
fn a_loop_that_yields_for_ever_is_not_called_a_blocked_thread() {
    Fixture::new()
        .kata(&["test", "spins", "1"])
        .succeeded(false)
        .says(&["stopped by the watchdog", "tokio kept running tasks"])
        .never_says("no task ran");
}

#[test]
fn a_leak_is_stopped_at_the_memory_ceiling() {
    Fixture::new()
        .kata(&["test", "leaks", "stage1_doubles"])
        .succeeded(false)
        .says(&[
            "stopped for using too much memory",
            "under 64.0 MiB of heap",
            "something keeps growing that should not",
        ]);
}

#[test]
fn a_crash_is_reported_naming_the_tests_that_were_running() {
    let run = Fixture::new().kata(&["test", "crashes"]);
    run.succeeded(false).says(&[
        "crashed: the test binary died while it ran",
        "the test binary killed by signal 6",
        "have no result",
    ]);
}

#[test]
fn what_the_code_prints_is_shown_and_cannot_fake_a_pass() {
    let run = Fixture::new().kata(&["test", "chatty", "stage1_doubles"]);
    run.succeeded(false).says(&[
        "stage 1  ✗ 0/2 tests pass",
        "double_later(21)",
        "what the test printed",
        "│ my debug: double_later(21)",
        // Printed by the learner's thread: shown, and not believed.
        "│ test stage1_doubles ... ok",
    ]);
}

#[test]
fn compare_lays_the_figures_side_by_side_and_guards_the_solution() {
    let fixture = Fixture::new();
    let run = fixture.kata(&["compare", "half-done"]);
    run.succeeded(true).says(&[
        "Comparing your code with the reference for kata half-done",
        "yours",
        "reference",
        "your code passes 3 of 4 tests",
        // Not solved yet and nobody to ask: the diff stays hidden.
        "Not showing it without a yes: run just compare half-done --yes",
    ]);
    run.never_says("Your code against the reference")
        // A real-clock test's time is not a schedule to compare.
        .never_says("took a different time");
    let row = |name: &str| {
        run.stdout
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{}", run.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Both pass in exactly 10 ms of virtual time, with no probe in that test.
    let exact = row("stage1_takes_10ms");
    assert!(
        exact.contains("✓ pass 10ms") && exact.ends_with("-"),
        "{exact}"
    );
    assert!(
        row("stage1_doubles_on_the_real_clock").contains("~"),
        "{}",
        row("stage1_doubles_on_the_real_clock")
    );
    // Sequential: fails, and its probe saw one job at a time where the reference had two.
    let both = row("stage2_runs_both_at_once");
    assert!(
        both.starts_with("stage2_runs_both_at_once ✗ fail"),
        "{both}"
    );
    assert!(both.contains("1 │ ✓ pass 10ms"), "{both}");
    assert!(both.ends_with(" 2"), "{both}");

    // The chart: jobs in flight over time, one row per side.
    fixture
        .kata(&["compare", "half-done", "--chart", "both_at_once"])
        .says(&[
            "stage2_runs_both_at_once: jobs in flight over time",
            "yours",
            "at most 1",
            "reference",
            "at most 2",
        ]);

    fixture.kata(&["compare", "half-done", "--yes"]).says(&[
        "Your code against the reference",
        "-(a.await, b.await)",
        "+tokio::join!(a, b)",
    ]);
    // Solved: the diff comes without asking, and comments are no difference.
    fixture
        .kata(&["compare", "solved"])
        .succeeded(true)
        .says(&["your code passes 4 of 4 tests", "-x + x", "+x * 2"])
        .never_says("in its own words");
    fixture
        .kata(&["compare", "solved", "--full"])
        .says(&["in its own words"]);
}

#[test]
fn hints_come_from_the_readme_one_at_a_time() {
    let fixture = Fixture::new();
    fixture
        .kata(&["hint", "half-done", "stage2"])
        .succeeded(true)
        .says(&[
            "Hints for Stage 2: both at once",
            "(1 of 2",
            "- `tokio::join!(a, b)` polls both.",
        ])
        .never_says("Awaiting one, then the other");
    fixture.kata(&["hint", "half-done", "2"]).says(&[
        "(2 of 2",
        "- Awaiting one, then the other, takes twice as long.",
    ]);
    fixture
        .kata(&["hint", "half-done"])
        .says(&["Hints for Stage 1: double, later"]);
    let wrong = fixture.kata(&["hint", "half-done", "7"]);
    wrong.succeeded(false);
    assert!(
        wrong
            .stderr
            .contains("kata half-done has stages 1, 2, not 7"),
        "{}",
        wrong.stderr
    );
    // Once every stage passes, there is nothing to hint at.
    fixture.kata(&["test", "solved"]).succeeded(true);
    fixture
        .kata(&["hint", "solved"])
        .says(&["Every stage of solved passes: no hint needed"]);
}

#[test]
fn test_all_runs_every_kata_then_shows_where_you_stand_and_fails_unless_all_pass() {
    let fixture = Fixture::new();
    fixture.kata(&["test", "all"]).succeeded(false).says(&[
        "testing solved",
        "testing hangs",
        "1. solved",
        "stage 1 3/3 ✓",
        "does not compile: just test broken shows why",
        "Next: stage 2 of half-done: read it in exercises/half-done/README.md",
    ]);
    // A stage for every kata that has it.
    fixture
        .kata(&["test", "all", "stage2"])
        .succeeded(false)
        .says(&["testing solved"]);
}

#[test]
fn bad_names_and_settings_get_one_clear_error() {
    let fixture = Fixture::new();
    let run = fixture.kata(&["test", "tickr"]);
    run.succeeded(false);
    assert!(
        run.stderr.contains(
            "there is no kata called `tickr`; the katas are: solved, half-done, broken, hangs"
        ),
        "{}",
        run.stderr
    );
    let run = fixture.kata_with(&[("KATA_WATCHDOG_SECS", "abc")], &["test", "solved"]);
    run.succeeded(false);
    assert!(
        run.stderr
            .contains("KATA_WATCHDOG_SECS=\"abc\" is not a time limit"),
        "{}",
        run.stderr
    );
    let run = fixture.kata(&["profile", "nosuchkata"]);
    run.succeeded(false);
    assert!(
        run.stderr.contains("there is no kata called `nosuchkata`"),
        "{}",
        run.stderr
    );
    let run = fixture.kata(&["profile", "solved"]);
    run.succeeded(false);
    assert!(
        run.stderr.contains("kata solved has no demo to profile"),
        "{}",
        run.stderr
    );
    // After the kata's name, `--help` is the demo's: it reaches the demo (here, none).
    let run = fixture.kata(&["profile", "solved", "--help"]);
    run.succeeded(false).never_says("Arguments for the demo");
    assert!(
        run.stderr.contains("kata solved has no demo to profile"),
        "{}",
        run.stderr
    );
    fixture
        .kata(&["profile", "--help"])
        .succeeded(true)
        .says(&["Arguments for the demo"]);
}

#[test]
fn a_missing_kata_is_named_with_the_command_that_restores_it() {
    let fixture = Fixture::new();
    std::fs::remove_dir_all(fixture.root().join("exercises/half-done")).unwrap();
    fixture.kata(&[]).succeeded(true).says(&[
        "missing: git checkout HEAD -- exercises/half-done",
        "1. solved",
    ]);
    let run = fixture.kata(&["test", "half-done"]);
    run.succeeded(false);
    assert!(
        run.stderr
            .contains("git checkout HEAD -- exercises/half-done"),
        "{}",
        run.stderr
    );
    // The other katas work as before.
    fixture.kata(&["test", "solved"]).succeeded(true);
}

#[test]
fn results_that_cannot_be_saved_are_reported_once_and_the_run_goes_on() {
    let fixture = Fixture::new();
    std::fs::create_dir_all(fixture.root().join("target/kata/solved.results")).unwrap();
    let run = fixture.kata(&["test", "solved"]);
    run.succeeded(true).says(&["the kata is solved"]);
    assert_eq!(
        run.stderr.matches("cannot save your results").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn arguments_reach_the_runner_as_typed_never_as_shell_code() {
    let fixture = Fixture::new();
    let just = |args: &[&str]| {
        Command::new("just")
            .arg("--justfile")
            .arg(repo().join("justfile"))
            .arg("--working-directory")
            .arg(fixture.root())
            .args(args)
            .env("KATA_RUNNER", env!("CARGO_BIN_EXE_kata"))
            .env("CARGO_TARGET_DIR", shared_target())
            .env("KATA_WATCHDOG_SECS", "1")
            .stdin(Stdio::null())
            .output()
    };
    let Ok(output) = just(&["hint", "x || echo INJECTED"]) else {
        return eprintln!("skipped: `just` is not installed here");
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.lines().any(|line| line == "INJECTED"), "{stdout}");
    assert!(
        stderr.contains("there is no kata called `x || echo INJECTED`"),
        "{stderr}"
    );
    let output = just(&["hint", "half-done", "(2)"]).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`(2)` is not a stage"), "{stderr}");
    let output = just(&["test", "solved", "doubles on the real clock"]).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("tests matching `doubles_on_the_real_clock`")
            && stdout.contains("1/1 tests pass"),
        "{stdout}"
    );
}

#[test]
fn a_state_directory_that_is_a_file_is_reported_and_the_run_goes_on() {
    let fixture = Fixture::new();
    std::fs::create_dir_all(fixture.root().join("target")).unwrap();
    std::fs::write(fixture.root().join("target/kata"), "not a directory").unwrap();
    let run = fixture.kata(&["test", "solved"]);
    run.succeeded(true).says(&["the kata is solved"]);
    assert!(
        run.stderr.contains("cannot save your results"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let fixture = Fixture::new();
    let mut child = fixture
        .command(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read nothing: close our end at once, as `just | head -0` would.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Makes the fixture a git clone with one commit, as a learner's clone would be.
fn git_init(root: &Path) {
    for args in [
        &["init", "--quiet"][..],
        &["add", "--all"],
        &[
            "-c",
            "user.name=Learner",
            "-c",
            "user.email=learner@example.com",
            "commit",
            "--quiet",
            "--message",
            "the katas",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(root)
            .status()
            .expect("git is needed for the reset tests");
        assert!(status.success(), "git {args:?}");
    }
}

#[test]
fn reset_asks_backs_up_then_restores_the_stub() {
    let fixture = Fixture::new();
    git_init(fixture.root());
    let lib = fixture.root().join("exercises/half-done/src/lib.rs");
    let stub = std::fs::read_to_string(&lib).unwrap();
    let mine = format!("{stub}\n// my work\n");
    std::fs::write(&lib, &mine).unwrap();
    let notes = fixture.root().join("exercises/half-done/src/notes.rs");
    std::fs::write(&notes, "// my notes\n").unwrap();

    // Nobody at a terminal to ask: nothing happens.
    fixture
        .kata(&["reset", "half-done"])
        .succeeded(false)
        .says(&[
            "exercises/half-done differs from your last commit:",
            "modified   exercises/half-done/src/lib.rs",
            "new        exercises/half-done/src/notes.rs",
            "Nothing was reset",
            "just reset half-done --yes",
        ]);
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), mine);
    assert!(notes.exists());

    let run = fixture.kata(&["reset", "half-done", "--yes"]);
    run.succeeded(true).says(&[
        "exercises/half-done is back as your last commit has it (1 file(s) restored, 1 new file(s) removed)",
        "Your version is in target/kata/backup/half-done-",
    ]);
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), stub);
    assert!(!notes.exists());
    // The backup holds what the learner had, both files.
    let backups: Vec<_> = std::fs::read_dir(fixture.root().join("target/kata/backup"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(backups.len(), 1);
    let backup = backups[0].path();
    assert_eq!(
        std::fs::read_to_string(backup.join("src/lib.rs")).unwrap(),
        mine
    );
    assert!(backup.join("src/notes.rs").exists());

    fixture
        .kata(&["reset", "half-done"])
        .succeeded(true)
        .says(&["nothing to reset"]);
}

#[test]
fn watch_reruns_on_enter_and_quits_on_q() {
    let fixture = Fixture::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kata"))
        .args(["watch", "half-done"])
        .current_dir(fixture.root())
        .env("CARGO_TARGET_DIR", shared_target())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Typed ahead: Enter (run again), `x` (not a key), then `q`. Keys are read as lines, so they
    // wait their turn behind the first run.
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"\nx\nq\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(
        stdout
            .matches("Testing your code for kata half-done")
            .count(),
        2,
        "the first run and one for Enter:\n{stdout}"
    );
    assert!(stdout.contains("`x` is not a key here"), "{stdout}");
    assert!(
        stdout.contains("watching exercises/half-done and tests/half-done.rs"),
        "{stdout}"
    );
}

#[test]
fn watch_reruns_when_a_file_is_saved() {
    use std::io::{BufRead as _, Write as _};
    use std::sync::mpsc;

    let fixture = Fixture::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kata"))
        .args(["watch", "half-done"])
        .current_dir(fixture.root())
        .env("CARGO_TARGET_DIR", shared_target())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Lines of output arrive on a channel, so every wait below has a deadline.
    let (lines, output) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let mut seen = String::new();
    // Every footer names the keys, whether or not file events work.
    let footers = |seen: &str| seen.matches("Enter re-runs").count();
    // The first run may build the fixture from scratch.
    let started = read_until(&output, &mut seen, |seen| footers(seen) == 1, 300);
    if !started {
        let _ = child.kill();
        panic!("no footer after the first run:\n{seen}");
    }
    if seen.contains("file events are off") {
        // A file system without events (some containers): the key tests above still hold.
        eprintln!("skipped: this machine sends no file events:\n{seen}");
        child.stdin.as_mut().unwrap().write_all(b"q\n").unwrap();
        assert!(child.wait().unwrap().success(), "{seen}");
        return;
    }
    let lib = fixture.root().join("exercises/half-done/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, text + "// saved\n").unwrap();
    let rerun = read_until(&output, &mut seen, |seen| footers(seen) == 2, 120);
    child.stdin.as_mut().unwrap().write_all(b"q\n").unwrap();
    let quit = child.wait().unwrap().success();
    assert!(rerun, "saving lib.rs did not re-run the suite:\n{seen}");
    assert!(quit, "q did not end the watch:\n{seen}");
    assert_eq!(
        seen.matches("Testing your code for kata half-done").count(),
        2,
        "one run at the start, one for the save"
    );
}

/// Reads lines from `output` into `seen` until `done(seen)`, for at most `secs` seconds; says
/// whether `done` came true.
fn read_until(
    output: &std::sync::mpsc::Receiver<String>,
    seen: &mut String,
    done: impl Fn(&str) -> bool,
    secs: u64,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done(seen) {
        match output.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => return false,
        }
    }
    true
}
