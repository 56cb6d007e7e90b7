//! `kata`: the runner behind the justfile.
//!
//! The justfile is the front door (`just`, `just test ticker`, `just verify`); this binary is what
//! answers, so that the behaviour is tested Rust rather than shell. It never runs a kata's code
//! itself: it asks cargo to build the kata's one suite against the learner's crate (or the
//! reference), runs the test binary, and reads what happened from the records the harness writes
//! for every test, never from what the binary prints (a learner's `println!` could say anything).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bar;
mod cache;
mod cargo;
mod compare;
mod hint;
mod json;
mod mutants;
mod output;
mod profile;
mod progress;
mod prompt;
mod repo;
mod reset;
mod selection;
mod status;
mod style;
mod suite;
mod summary;
mod test;
mod verify;
mod watch;

#[derive(Parser)]
#[command(name = "kata", about = "Learn async Rust one kata at a time.")]
struct Cli {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Subcommand)]
enum Action {
    /// List the katas, their stages and your progress (the default).
    Status,
    /// Run a kata's suite on your code and summarise it by stage.
    Test {
        /// The kata to test (default: the first one not solved yet; `all`: every kata).
        kata: Option<String>,
        /// Stages (`2`, `stage2`) and test names (any part of one) to run; default: all.
        only: Vec<String>,
        /// Run the suite on the reference solution instead of your code.
        #[arg(long)]
        solution: bool,
    },
    /// Re-run a kata's suite every time you save (default: the first kata not solved yet).
    Watch {
        /// The kata to watch.
        kata: Option<String>,
    },
    /// Show one more hint for the stage you are on (from the kata's README).
    Hint {
        /// The kata (default: the first one not solved yet).
        kata: Option<String>,
        /// The stage, `2` or `stage2` (default: the first one not passing yet).
        stage: Option<String>,
        /// Every hint of the stage at once.
        #[arg(long)]
        all: bool,
    },
    /// Put a kata's stub back as git has it, after asking; your version is backed up first.
    Reset {
        /// The kata to reset.
        kata: String,
        /// Do not ask (your version is still backed up).
        #[arg(long)]
        yes: bool,
    },
    /// Your code against the reference: the same suite on both, figures per test, then a diff.
    Compare {
        /// The kata to compare.
        kata: String,
        /// Show the diff against the solution without asking, even if your code does not pass.
        #[arg(long)]
        yes: bool,
        /// The whole diff, comments and blank lines included (default: the code only).
        #[arg(long)]
        full: bool,
        /// Draw a test's jobs in flight over time, yours above the reference's.
        #[arg(long, value_name = "TEST")]
        chart: Option<String>,
    },
    /// Run a kata's demo (a release build), e.g. the memory-leak-listener's RSS plot.
    Profile {
        /// The kata whose demo to run.
        kata: String,
        /// Arguments for the demo.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The stub check: every test must fail on the untouched stub and pass on the solution.
    Verify,
    /// The wrong solutions of `solutions/<kata>/mutants.md`, each applied to the reference in
    /// turn: every one must be rejected by the tests it names.
    Mutants {
        /// The kata (default: every kata with a mutants.md).
        kata: Option<String>,
        /// Only the wrong solutions whose title contains this.
        only: Option<String>,
    },
}

/// `kata profile <kata> --help` is the demo's help, not this command's: everything after the
/// kata's name belongs to the demo, so a `--` goes in front of it (clap would otherwise take a
/// `--help` or `-h` there as its own). `kata profile --help` still shows this command's help.
fn demo_arguments_as_given(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let is_profile = args.get(1).is_some_and(|arg| arg == "profile");
    let named_a_kata = args
        .get(2)
        .is_some_and(|arg| !arg.to_string_lossy().starts_with('-'));
    let demo_has_arguments = args.get(3).is_some_and(|arg| arg != "--");
    if is_profile && named_a_kata && demo_has_arguments {
        args.insert(3, "--".into());
    }
    args
}

fn main() -> ExitCode {
    output::end_quietly_on_a_closed_pipe();
    let cli = Cli::parse_from(demo_arguments_as_given(std::env::args_os().collect()));
    let result = match cli.action.unwrap_or(Action::Status) {
        Action::Status => status::run(),
        Action::Test {
            kata,
            only,
            solution,
        } => test::run(kata.as_deref(), &only, solution),
        Action::Watch { kata } => watch::run(kata.as_deref()),
        Action::Hint { kata, stage, all } => hint::run(kata.as_deref(), stage.as_deref(), all),
        Action::Reset { kata, yes } => reset::run(&kata, yes),
        Action::Compare {
            kata,
            yes,
            full,
            chart,
        } => compare::run(&kata, compare::Options { yes, full, chart }),
        Action::Profile { kata, args } => profile::run(&kata, &args),
        Action::Verify => verify::run(),
        Action::Mutants { kata, only } => mutants::run(kata.as_deref(), only.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{} {error:#}", style::red("error:"));
            ExitCode::FAILURE
        }
    }
}
