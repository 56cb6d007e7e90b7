//! `kata`: the runner behind the justfile.
//!
//! The justfile is the front door (`just`, `just test ticker`, `just verify`); this binary is what
//! answers, so that the behaviour is tested Rust rather than shell. It never runs a kata's code
//! itself: it asks cargo to build and run the kata's one suite against the learner's crate (or
//! the reference), reads libtest's report, and says what it means in a few lines.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cache;
mod compare;
mod hint;
mod katas;
mod libtest;
mod progress;
mod prompt;
mod record;
mod reset;
mod status;
mod style;
mod test;
mod verify;
mod watch;

#[derive(Parser)]
#[command(name = "kata", about = "Learn async Rust one kata at a time.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// List the katas, their stages and your progress (the default).
    Status,
    /// Run a kata's suite on your code and summarise it by stage.
    Test {
        /// The kata to test (default: the first one not solved yet; `all`: every kata).
        kata: Option<String>,
        /// Only the tests whose name contains this, e.g. `stage1`.
        filter: Option<String>,
        /// Run the suite on the reference solution instead of your code.
        #[arg(long)]
        solution: bool,
    },
    /// Re-run a kata's suite every time you save (default: the first kata not solved yet).
    Watch {
        /// The kata to watch.
        kata: Option<String>,
    },
    /// Show the hints for the stage you are on (from the kata's README).
    Hint {
        /// The kata.
        kata: String,
        /// The stage, `2` or `stage2` (default: the first one not passing yet).
        stage: Option<String>,
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
    },
    /// The stub check: every test must fail on the untouched stub and pass on the solution.
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Status) {
        Command::Status => status::run(),
        Command::Test {
            kata,
            filter,
            solution,
        } => test::run(kata.as_deref(), filter.as_deref(), solution),
        Command::Watch { kata } => watch::run(kata.as_deref()),
        Command::Hint { kata, stage } => hint::run(&kata, stage.as_deref()),
        Command::Reset { kata, yes } => reset::run(&kata, yes),
        Command::Compare { kata, yes } => compare::run(&kata, yes),
        Command::Verify => verify::run(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{} {error:#}", style::red("error:"));
            ExitCode::FAILURE
        }
    }
}
