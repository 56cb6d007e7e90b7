//! `just compare <kata>`: the learner's crate and the reference, side by side.
//!
//! Both crates run the kata's one suite with `KATA_RECORD_DIR` set, so the harness writes down,
//! per test, how it ended, the virtual and real time it took, its peak heap and the most jobs a
//! concurrency probe saw at once. On the paused clock a different virtual time means different
//! behaviour, not a slower machine, so those cells are the ones to read first. Then comes a diff
//! of the code, after a warning if the learner has not passed yet: it shows the solution.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::katas::{self, Kata};
use crate::libtest::{self, Outcomes};
use crate::record::{self, Record};
use crate::{cache, prompt, style};

/// One side of the comparison: the suite's outcomes and the harness's figures.
struct Side {
    outcomes: Outcomes,
    records: BTreeMap<String, Record>,
}

pub fn run(name: &str, yes: bool) -> Result<ExitCode> {
    let root = katas::root()?;
    let kata = katas::find(&root, name)?;
    println!(
        "{}",
        style::bold(&format!(
            "Comparing your code with the reference for kata {}",
            kata.name
        ))
    );

    let Some(yours) = side(&kata, kata.exercise_package(), "yours")? else {
        println!(
            "\n{} exercises/{} does not compile yet (the compiler's messages are above), so there \
             is nothing to compare. Fix it, or see how far you are with {}.",
            style::red("✗"),
            kata.name,
            style::bold(&format!("just test {}", kata.name))
        );
        return Ok(ExitCode::FAILURE);
    };
    cache::save(&kata, &yours.outcomes);
    let reference = side(&kata, &kata.solution_package(), "reference")?
        .context("the reference solution does not compile: please report this")?;

    let passed = yours.outcomes.values().filter(|o| o.passed).count();
    let total = reference.outcomes.len();
    print_table(&yours, &reference);
    println!();
    print_summary(&yours, &reference);

    println!();
    let all_pass = passed == total && yours.outcomes.len() == total;
    if all_pass || yes || ask_to_spoil(&kata, passed, total)? {
        print_diff(&kata)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds and runs the suite on `package` with figures recorded; `None` if it does not compile.
fn side(kata: &Kata, package: &str, who: &str) -> Result<Option<Side>> {
    let dir = kata
        .root
        .join("target")
        .join("kata")
        .join("records")
        .join(&kata.name)
        .join(who);
    // Old records would pass for this run's: start from an empty directory.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if !libtest::build(&kata.root, package, &kata.name, false)? {
        return Ok(None);
    }
    let outcomes = libtest::run(&kata.root, package, &kata.name, None, Some(&dir))?;
    Ok(Some(Side {
        outcomes,
        records: record::read_dir(&dir),
    }))
}

/// The columns of one side: result, virtual time, real time, peak heap, max concurrency.
const SIDE_WIDTH: usize = 6 + 1 + 8 + 1 + 8 + 1 + 9 + 1 + 3;

fn print_table(yours: &Side, reference: &Side) {
    let names: BTreeSet<&String> = yours
        .outcomes
        .keys()
        .chain(reference.outcomes.keys())
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 44);
    let header = format!(
        "{:<6} {:>8} {:>8} {:>9} {:>3}",
        "", "virtual", "real", "heap", "max"
    );
    println!();
    println!(
        "{}",
        style::bold(&format!(
            "{:<width$}  {:<SIDE_WIDTH$} │ reference",
            "", "yours"
        ))
    );
    println!(
        "{}",
        style::dim(&format!(
            "{:<width$}  {header:<SIDE_WIDTH$} │ {header}",
            "test"
        ))
    );
    for name in names {
        let mine = cells(name, yours);
        let theirs = cells(name, reference);
        // On the paused clock, virtual time is behaviour: a difference is worth a look.
        let differs = mine.virtual_time != theirs.virtual_time && mine.passed;
        let mine_text = mine.render(differs);
        let padding = SIDE_WIDTH.saturating_sub(mine.plain_width());
        println!(
            "{:<width$}  {mine_text}{} │ {}",
            shorten(name, width),
            " ".repeat(padding),
            theirs.render(false)
        );
    }
    println!(
        "{}",
        style::dim(
            "virtual: paused-clock time, exact and the same on any machine; real: wall time on \
             this machine; heap: peak bytes of the test; max: most jobs in flight at once"
        )
    );
}

/// One side's cells of one row.
struct Cells {
    passed: bool,
    result: &'static str,
    virtual_time: String,
    real: String,
    heap: String,
    concurrency: String,
}

fn cells(name: &str, side: &Side) -> Cells {
    let outcome = side.outcomes.get(name);
    let record = side.records.get(name);
    let passed = outcome.is_some_and(|o| o.passed);
    let result = match (outcome, record.map(|r| r.outcome.as_str())) {
        (None, _) => "absent",
        (Some(o), _) if o.passed => "✓ pass",
        (Some(_), Some("hung")) => "✗ hung",
        (Some(_), Some("deadlock")) => "✗ lock",
        (Some(_), _) => "✗ fail",
    };
    let dash = || "-".to_owned();
    Cells {
        passed,
        result,
        virtual_time: record
            .and_then(|r| r.virtual_time)
            .map_or_else(dash, virtual_time),
        real: record.and_then(|r| r.real).map_or_else(dash, real_time),
        heap: record.and_then(|r| r.peak_heap).map_or_else(dash, bytes),
        concurrency: record
            .and_then(|r| r.max_concurrency)
            .map_or_else(dash, |n| n.to_string()),
    }
}

impl Cells {
    fn plain(&self) -> String {
        format!(
            "{:<6} {:>8} {:>8} {:>9} {:>3}",
            self.result, self.virtual_time, self.real, self.heap, self.concurrency
        )
    }

    fn plain_width(&self) -> usize {
        self.plain().chars().count()
    }

    fn render(&self, virtual_differs: bool) -> String {
        let result = if self.passed {
            style::green(&format!("{:<6}", self.result))
        } else {
            style::red(&format!("{:<6}", self.result))
        };
        let virtual_time = format!("{:>8}", self.virtual_time);
        let virtual_time = if virtual_differs {
            style::yellow(&virtual_time)
        } else {
            virtual_time
        };
        format!(
            "{result} {virtual_time} {:>8} {:>9} {:>3}",
            self.real, self.heap, self.concurrency
        )
    }
}

/// The totals a reader wants after the table.
fn print_summary(yours: &Side, reference: &Side) {
    let total = reference.outcomes.len();
    let passed = yours.outcomes.values().filter(|o| o.passed).count();
    let mark = if passed == total {
        style::green("✓")
    } else {
        style::red("✗")
    };
    let reference_passed = reference.outcomes.values().filter(|o| o.passed).count();
    let theirs = if reference_passed == total {
        "all of them".to_owned()
    } else {
        // Never expected (`just ci` checks it), but a table must not claim what it did not see.
        format!("{reference_passed}, please report the others")
    };
    println!("{mark} your code passes {passed} of {total} tests (the reference: {theirs}).");
    let both_passed: Vec<(&Record, &Record)> = reference
        .records
        .iter()
        .filter(|(name, _)| yours.outcomes.get(*name).is_some_and(|o| o.passed))
        .filter_map(|(name, theirs)| Some((yours.records.get(name)?, theirs)))
        .collect();
    let timing_differs = both_passed
        .iter()
        .filter(|(mine, theirs)| mine.virtual_time != theirs.virtual_time)
        .count();
    if timing_differs > 0 {
        println!(
            "  {timing_differs} passing test(s) took a different virtual time (yellow): the \
             suite allowed it, but your schedule is not the reference's."
        );
    }
    let real = |pick: fn(&(&Record, &Record)) -> Option<Duration>| {
        both_passed.iter().filter_map(pick).sum::<Duration>()
    };
    let (mine, theirs) = (real(|p| p.0.real), real(|p| p.1.real));
    if !both_passed.is_empty() {
        println!(
            "  real time over the {} tests both pass: yours {}, the reference's {}.",
            both_passed.len(),
            real_time(mine),
            real_time(theirs)
        );
    }
    // Heap figures of identical code differ by a few KiB (lazily built statics land in
    // whichever test comes first), so only a clear excess is worth a line.
    let heaviest = reference
        .records
        .iter()
        .filter(|(name, _)| yours.outcomes.get(*name).is_some_and(|o| o.passed))
        .filter_map(|(name, theirs)| {
            Some((name, yours.records.get(name)?.peak_heap?, theirs.peak_heap?))
        })
        .filter(|&(_, mine, theirs)| mine > theirs + HEAP_SLACK)
        .max_by_key(|&(_, mine, theirs)| mine - theirs);
    if let Some((name, mine, theirs)) = heaviest {
        println!(
            "  most heap above the reference: {name} peaks at {} where the reference needs {}.",
            bytes(mine),
            bytes(theirs),
        );
    }
}

/// Heap differences smaller than this are noise, not a design difference.
const HEAP_SLACK: u64 = 64 * 1024;

/// Asks before showing the reference to someone who has not solved the kata.
fn ask_to_spoil(kata: &Kata, passed: usize, total: usize) -> Result<bool> {
    println!(
        "{} You pass {passed} of {total} tests. The diff below shows the reference solution, \
         which gives the kata away.",
        style::yellow("!")
    );
    if !prompt::can_ask() {
        println!(
            "Not showing it without a yes: run {} to see it anyway.",
            style::bold(&format!("just compare {} --yes", kata.name))
        );
        return Ok(false);
    }
    let yes = prompt::yes_or_no("Show the diff with the solution anyway?")?;
    if !yes {
        println!(
            "Not shown. {} and the README's hints are the way on.",
            style::bold(&format!("just hint {}", kata.name))
        );
    }
    Ok(yes)
}

/// The files worth comparing: every file of the learner's `src`, and the reference's library
/// files (its `src/bin` holds benchmarks and demos, not the answer).
fn files_to_compare(kata: &Kata) -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    for dir in [
        kata.exercise_dir().join("src"),
        kata.root.join("solutions").join(&kata.name).join("src"),
    ] {
        collect(&dir, &dir, &mut files);
    }
    files.into_iter().collect()
}

fn collect(base: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "bin") {
                collect(base, &path, out);
            }
        } else if let Ok(relative) = path.strip_prefix(base) {
            out.insert(relative.to_path_buf());
        }
    }
}

/// `git diff --no-index` of each file, yours first: `-` lines are yours, `+` the reference's.
fn print_diff(kata: &Kata) -> Result<()> {
    println!(
        "{} {}",
        style::bold("Your code against the reference"),
        style::dim("(- lines are yours, + lines the reference's)")
    );
    let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
    for file in files_to_compare(kata) {
        let mine = Path::new("exercises")
            .join(&kata.name)
            .join("src")
            .join(&file);
        let theirs = Path::new("solutions")
            .join(&kata.name)
            .join("src")
            .join(&file);
        let exists = |path: &Path| kata.root.join(path).is_file();
        let (a, b) = (
            if exists(&mine) {
                mine.clone()
            } else {
                null.into()
            },
            if exists(&theirs) {
                theirs.clone()
            } else {
                null.into()
            },
        );
        let status = Command::new("git")
            .current_dir(&kata.root)
            .args(["--no-pager", "diff", "--no-index"])
            .arg(format!("--color={}", style::cargo_color()))
            .arg("--")
            .args([&a, &b])
            .stdin(Stdio::null())
            .status();
        match status {
            // `git diff` exits 1 when the files differ: that is not an error here.
            Ok(status) if status.code().is_some_and(|code| code <= 1) => {
                if status.code() == Some(0) {
                    println!("{} is the same in both.", mine.display());
                }
            }
            _ => println!(
                "(git is not available to show the diff: compare {} with {} by hand)",
                mine.display(),
                theirs.display()
            ),
        }
    }
    Ok(())
}

/// Virtual time: exact milliseconds where they are whole (they usually are).
fn virtual_time(time: Duration) -> String {
    let ms = time.as_millis();
    if !time.subsec_nanos().is_multiple_of(1_000_000) && ms < 1 {
        format!("{}µs", time.as_micros())
    } else if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", time.as_secs_f64())
    }
}

/// Real time, three significant figures.
fn real_time(time: Duration) -> String {
    let ms = time.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n_f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n_f < KIB * KIB {
        format!("{:.0} KiB", n_f / KIB)
    } else {
        format!("{:.1} MiB", n_f / KIB / KIB)
    }
}

/// Long rstest names lose their middle, not their case name.
fn shorten(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        return name.to_owned();
    }
    let keep_end = width / 2;
    let keep_start = width - keep_end - 1;
    let start: String = chars[..keep_start].iter().collect();
    let end: String = chars[chars.len() - keep_end..].iter().collect();
    format!("{start}…{end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well() {
        assert_eq!(virtual_time(Duration::from_millis(120)), "120ms");
        assert_eq!(virtual_time(Duration::ZERO), "0ms");
        assert_eq!(virtual_time(Duration::from_micros(250)), "250µs");
        assert_eq!(virtual_time(Duration::from_secs(3600)), "3600.0s");
        assert_eq!(real_time(Duration::from_micros(95)), "95µs");
        assert_eq!(real_time(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(real_time(Duration::from_millis(1500)), "1.50s");
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(14_000), "14 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }

    #[test]
    fn long_names_keep_both_ends() {
        assert_eq!(shorten("stage1_short", 20), "stage1_short");
        let short = shorten("stage1_a_very_long_test_name::case_12_many_jobs", 20);
        assert_eq!(short.chars().count(), 20);
        assert_eq!(short, "stage1_a_…_many_jobs");
    }
}
