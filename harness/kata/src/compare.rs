//! `just compare <kata>`: the learner's crate and the reference, side by side.
//!
//! Both crates run the kata's one suite, and the harness records, per test, how it ended, the
//! time it took on its clock, its peak heap and the most jobs a concurrency probe saw at once.
//! Only differences that mean something are pointed at: on the paused clock a different virtual
//! time is different behaviour (a real-clock test's time is this machine's and is not compared);
//! a heap figure differs by a few KiB from run to run, so only a clear excess is named; real time
//! is named only when the gap is far beyond a shared machine's noise. Then comes the code, with
//! comments and blank lines left out (so the stub's doc comments are no "difference"), after a
//! warning if the learner has not passed yet: it shows the solution.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kata_record::{Clock, Record};

use crate::cargo::Noise;
use crate::repo::{Kata, Repo};
use crate::selection::Selection;
use crate::suite::{SuiteRun, Verdict};
use crate::test::{self, Ran, Whose};
use crate::{prompt, style};

/// What the learner asked for besides the table.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Show the diff without asking.
    pub yes: bool,
    /// The whole diff, comments included.
    pub full: bool,
    /// Draw this test's concurrency over time.
    pub chart: Option<String>,
}

/// One side of the comparison: what each test did.
struct Side {
    run: SuiteRun,
}

impl Side {
    fn passed(&self, name: &str) -> bool {
        self.result(name)
            .is_some_and(|(verdict, _)| verdict.passed())
    }

    fn result(&self, name: &str) -> Option<(Verdict, Option<&Record>)> {
        self.run
            .results
            .iter()
            .find(|r| r.name == name)
            .map(|r| (r.verdict, r.record.as_ref()))
    }

    fn record(&self, name: &str) -> Option<&Record> {
        self.result(name).and_then(|(_, record)| record)
    }
}

pub fn run(name: &str, options: Options) -> Result<ExitCode> {
    test::check_settings()?;
    let repo = Repo::here()?;
    let kata = repo.kata(name)?.clone();
    println!(
        "{}",
        style::bold(&format!(
            "Comparing your code with the reference for kata {}",
            kata.name
        ))
    );
    let everything = Selection::everything();
    let yours = match test::build_run_and_save(&kata, Whose::Learner, &everything, Noise::Shown)? {
        Ran::Ran(run) => Side { run },
        Ran::DoesNotCompile { .. } => {
            println!(
                "\n{} exercises/{} does not compile yet (the compiler's messages are above), so \
                 there is nothing to compare. Fix it, or see how far you are with {}.",
                style::red("✗"),
                kata.name,
                style::bold(&format!("just test {}", kata.name))
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let reference = match test::build_and_run(&kata, Whose::Reference, &everything, Noise::Shown)? {
        Ran::Ran(run) => Side { run },
        Ran::DoesNotCompile { .. } => {
            bail!("the reference solution does not compile: please report this")
        }
    };

    if let Some(test) = &options.chart {
        return chart(test, &yours, &reference);
    }
    print_table(&yours, &reference);
    println!();
    print_summary(&yours, &reference);

    println!();
    let total = reference.run.results.len();
    let passed = yours.run.passed();
    if passed == total || options.yes || ask_to_spoil(&kata, passed, total)? {
        print_diff(&kata, options.full)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The columns of one side: result, time, peak heap, max concurrency.
const SIDE_WIDTH: usize = 6 + 1 + 9 + 1 + 9 + 1 + 3;

fn names(yours: &Side, reference: &Side) -> Vec<String> {
    let listed: BTreeSet<&String> = yours
        .run
        .listed
        .iter()
        .chain(&reference.run.listed)
        .collect();
    // In the suite's order, as the runs give it.
    let mut names: Vec<String> = reference
        .run
        .results
        .iter()
        .map(|r| r.name.clone())
        .collect();
    for name in listed {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn print_table(yours: &Side, reference: &Side) {
    let names = names(yours, reference);
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 44);
    let header = format!("{:<6} {:>9} {:>9} {:>3}", "", "time", "heap", "max");
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
    for name in &names {
        let mine = cells(name, yours);
        let theirs = cells(name, reference);
        // On the paused clock, virtual time is behaviour: a difference is worth a look.
        let differs = mine.passed && mine.paused && theirs.paused && mine.time != theirs.time;
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
            "time: on the paused clock, exact and the same on any machine (a `~` marks a \
             real-clock test: this machine's time, noise included); heap: peak bytes of the \
             test; max: most jobs in flight at once (`--chart <test>` draws them over time)"
        )
    );
}

/// One side's cells of one row.
struct Cells {
    passed: bool,
    paused: bool,
    result: &'static str,
    time: String,
    heap: String,
    concurrency: String,
}

fn cells(name: &str, side: &Side) -> Cells {
    let result = side.result(name);
    let record = side.record(name);
    let passed = side.passed(name);
    let word = match result.map(|(verdict, _)| verdict) {
        None => "absent",
        Some(Verdict::Passed) => "✓ pass",
        Some(Verdict::Failed(kata_record::Outcome::Hung)) => "✗ hung",
        Some(Verdict::Failed(kata_record::Outcome::Deadlock)) => "✗ lock",
        Some(Verdict::Failed(kata_record::Outcome::NotStarted)) => "✗ todo",
        Some(Verdict::Crashed) => "✗ died",
        Some(_) => "✗ fail",
    };
    let paused = record.is_none_or(|r| r.clock != Some(Clock::Real));
    let dash = || "-".to_owned();
    Cells {
        passed,
        paused,
        result: word,
        time: record
            .and_then(|r| r.virtual_time)
            .map_or_else(dash, |time| {
                if paused {
                    virtual_time(time)
                } else {
                    format!("~{}", real_time(time))
                }
            }),
        heap: record.and_then(|r| r.peak_heap).map_or_else(dash, bytes),
        concurrency: record
            .and_then(|r| r.max_concurrency)
            .map_or_else(dash, |n| n.to_string()),
    }
}

impl Cells {
    fn plain(&self) -> String {
        format!(
            "{:<6} {:>9} {:>9} {:>3}",
            self.result, self.time, self.heap, self.concurrency
        )
    }

    fn plain_width(&self) -> usize {
        self.plain().chars().count()
    }

    fn render(&self, time_differs: bool) -> String {
        let result = if self.passed {
            style::green(&format!("{:<6}", self.result))
        } else {
            style::red(&format!("{:<6}", self.result))
        };
        let time = format!("{:>9}", self.time);
        let time = if time_differs {
            style::yellow(&time)
        } else {
            time
        };
        format!("{result} {time} {:>9} {:>3}", self.heap, self.concurrency)
    }
}

/// Heap differences smaller than this are noise (lazily built statics land in whichever test
/// comes first), not a design difference.
const HEAP_SLACK: u64 = 64 * 1024;
/// Real time is named only past this ratio and this much time: a shared machine's run-to-run
/// noise is easily 50% on small figures.
const REAL_RATIO: f64 = 3.0;
const REAL_FLOOR: Duration = Duration::from_millis(200);

/// The totals a reader wants after the table: only the differences that mean something.
fn print_summary(yours: &Side, reference: &Side) {
    let total = reference.run.results.len();
    let passed = yours.run.passed();
    let mark = if passed == total {
        style::green("✓")
    } else {
        style::red("✗")
    };
    let reference_passed = reference.run.passed();
    let theirs = if reference_passed == total {
        "all of them".to_owned()
    } else {
        // Never expected (`just ci` checks it), but a table must not claim what it did not see.
        format!("{reference_passed}, please report the others")
    };
    println!("{mark} your code passes {passed} of {total} tests (the reference: {theirs}).");

    let both: Vec<(&str, &Record, &Record)> = reference
        .run
        .results
        .iter()
        .filter(|r| r.verdict.passed() && yours.passed(&r.name))
        .filter_map(|r| Some((r.name.as_str(), yours.record(&r.name)?, r.record.as_ref()?)))
        .collect();
    let schedule_differs: Vec<&str> = both
        .iter()
        .filter(|(_, mine, theirs)| {
            mine.clock == Some(Clock::Paused)
                && theirs.clock == Some(Clock::Paused)
                && mine.virtual_time != theirs.virtual_time
        })
        .map(|(name, ..)| *name)
        .collect();
    if !schedule_differs.is_empty() {
        println!(
            "  {} passing test(s) took a different time on the paused clock (yellow), where time \
             is exact: your schedule is not the reference's, though the suite allows it.",
            schedule_differs.len()
        );
    }
    let concurrency_differs = both
        .iter()
        .find(|(_, mine, theirs)| mine.max_concurrency != theirs.max_concurrency);
    if let Some((name, mine, theirs)) = concurrency_differs {
        println!(
            "  {name} ran at most {} job(s) at once, the reference {}: {} draws both over time.",
            mine.max_concurrency.unwrap_or(0),
            theirs.max_concurrency.unwrap_or(0),
            style::bold("--chart <test>")
        );
    }
    let heaviest = both
        .iter()
        .filter_map(|(name, mine, theirs)| Some((*name, mine.peak_heap?, theirs.peak_heap?)))
        .filter(|&(_, mine, theirs)| mine > theirs + HEAP_SLACK && mine > theirs * 3 / 2)
        .max_by_key(|&(_, mine, theirs)| mine - theirs);
    if let Some((name, mine, theirs)) = heaviest {
        println!(
            "  most heap above the reference: {name} peaks at {} where the reference needs {}.",
            bytes(mine),
            bytes(theirs),
        );
    }
    let real = |pick: fn(&(&str, &Record, &Record)) -> Option<Duration>| {
        both.iter().filter_map(pick).sum::<Duration>()
    };
    let (mine, theirs) = (real(|p| p.1.real), real(|p| p.2.real));
    if mine > REAL_FLOOR && mine.as_secs_f64() > theirs.as_secs_f64() * REAL_RATIO {
        println!(
            "  real time over the tests both pass: yours {}, the reference's {} ({:.1}x). Real \
             time is noisy on a shared machine, but not by that much: something in your code is \
             slow.",
            real_time(mine),
            real_time(theirs),
            mine.as_secs_f64() / theirs.as_secs_f64().max(1e-9)
        );
    }
}

/// Draws one test's jobs in flight over time, both sides on one time axis.
fn chart(test: &str, yours: &Side, reference: &Side) -> Result<ExitCode> {
    let names = names(yours, reference);
    let name = names
        .iter()
        .find(|name| name.as_str() == test)
        .or_else(|| names.iter().find(|name| name.contains(test)))
        .with_context(|| format!("no test of this kata is called (or contains) `{test}`"))?;
    let series = |side: &Side| {
        side.record(name)
            .map(|r| r.concurrency.clone())
            .unwrap_or_default()
    };
    let (mine, theirs) = (series(yours), series(reference));
    if mine.is_empty() && theirs.is_empty() {
        println!("{name} uses no concurrency probe, so there is nothing to draw.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\n{}",
        style::bold(&format!("{name}: jobs in flight over time"))
    );
    for line in draw(&[("yours", &mine), ("reference", &theirs)], 60) {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows of block characters, one per series, sampled on one time axis `width` columns wide,
/// then the axis. Each series is a step function: `(ms, level)` holds until the next point.
pub fn draw(series: &[(&str, &[(u64, u64)])], width: usize) -> Vec<String> {
    const BLOCKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let end = series
        .iter()
        .filter_map(|(_, points)| points.last().map(|&(at, _)| at))
        .max()
        .unwrap_or(0)
        .max(1);
    let top = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|&(_, level)| level))
        .max()
        .unwrap_or(0)
        .max(1);
    let label = series.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let level_at = |points: &[(u64, u64)], at: u64| {
        points
            .iter()
            .take_while(|&&(time, _)| time <= at)
            .last()
            .map_or(0, |&(_, level)| level)
    };
    let mut lines: Vec<String> = series
        .iter()
        .map(|(name, points)| {
            let row: String = (0..width)
                .map(|column| {
                    let at = end * column as u64 / (width as u64 - 1).max(1);
                    let level = level_at(points, at);
                    BLOCKS[(level * 8).div_ceil(top) as usize]
                })
                .collect();
            let most = points.iter().map(|&(_, level)| level).max().unwrap_or(0);
            format!("{name:<label$} │{row}│ at most {most}")
        })
        .collect();
    let end_label = format!("{end} ms");
    lines.push(format!(
        "{:<label$}  0 ms{}{end_label}",
        "",
        " ".repeat(width.saturating_sub(4 + end_label.len()))
    ));
    lines
}

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
            "Not shown. {} gives one more hint each time you ask.",
            style::bold(&format!("just hint {}", kata.name))
        );
    }
    Ok(yes)
}

/// The files worth comparing: every file of the learner's `src`, and the reference's.
fn files_to_compare(kata: &Kata) -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    for dir in [
        kata.exercise_dir().join("src"),
        kata.solution_dir().join("src"),
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
            collect(base, &path, out);
        } else if let Ok(relative) = path.strip_prefix(base) {
            out.insert(relative.to_path_buf());
        }
    }
}

/// The code of a Rust file without its comment lines and blank lines, so that a diff shows
/// what the code does differently, not how it is explained.
pub fn code_only(source: &str) -> String {
    source
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// `git diff --no-index` of each file, yours first: `-` lines are yours, `+` the reference's.
fn print_diff(kata: &Kata, full: bool) -> Result<()> {
    println!(
        "{} {}",
        style::bold("Your code against the reference"),
        style::dim(if full {
            "(- lines are yours, + lines the reference's)"
        } else {
            "(- lines are yours, + lines the reference's; comments, blank lines and indentation \
             left out: --full shows them)"
        })
    );
    let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
    let scratch = kata.state_dir().join("compare").join(&kata.name);
    for file in files_to_compare(kata) {
        let mine = Path::new("exercises")
            .join(&kata.name)
            .join("src")
            .join(&file);
        let theirs = Path::new("solutions")
            .join(&kata.name)
            .join("src")
            .join(&file);
        let side = |path: &Path, who: &str| -> Result<PathBuf> {
            let source = kata.root.join(path);
            if !source.is_file() {
                return Ok(null.into());
            }
            if full {
                return Ok(path.to_owned());
            }
            let copy = scratch.join(who).join(&file);
            std::fs::create_dir_all(copy.parent().unwrap_or(&scratch))
                .with_context(|| format!("cannot create {}", scratch.display()))?;
            let text = std::fs::read_to_string(&source)
                .with_context(|| format!("cannot read {}", path.display()))?;
            std::fs::write(&copy, code_only(&text))
                .with_context(|| format!("cannot write {}", copy.display()))?;
            Ok(copy)
        };
        let (a, b) = (side(&mine, "yours")?, side(&theirs, "reference")?);
        if !full {
            println!("{}", style::bold(&format!("src/{}", file.display())));
        }
        let status = Command::new("git")
            .current_dir(&kata.root)
            .args(["--no-pager", "diff", "--no-index"])
            .arg(format!("--color={}", style::cargo_color()))
            .args(if full { &[][..] } else { &["--no-prefix"][..] })
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

/// Long case names (`stage1_what::case_3_how`) lose their middle, not their case name.
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

    #[test]
    fn code_only_leaves_out_comments_blank_lines_and_indentation() {
        let source = "//! The kata.\n\n/// Doc.\npub fn f() {\n    // why\n    todo!()\n}\n";
        assert_eq!(code_only(source), "pub fn f() {\ntodo!()\n}\n");
    }

    #[test]
    fn a_chart_puts_both_sides_on_one_time_axis() {
        let yours: &[(u64, u64)] = &[(0, 1), (10, 0)];
        let theirs: &[(u64, u64)] = &[(0, 2), (5, 0)];
        let lines = draw(&[("yours", yours), ("reference", theirs)], 11);
        assert_eq!(
            lines,
            vec![
                "yours     │▄▄▄▄▄▄▄▄▄▄ │ at most 1",
                "reference │█████      │ at most 2",
                "           0 ms  10 ms",
            ]
        );
    }
}
