//! `concat_files` against `cat`, on the same files, measured the same way (`just bench-io`).
//!
//! `bench --dir DIR [--size-mib 256] [--runs 5]` writes four source files of pseudo-random bytes,
//! `--size-mib` in all, into `DIR` (kept for the next run if their sizes are right), then runs
//! each side `--runs` times as a child process, after one unmeasured warm-up run:
//!
//! - ours: this same binary's hidden `run-ours SRC... DST`, which calls [`concat_files`] on a
//!   current-thread tokio runtime;
//! - `cat SRC... > DST`, through `sh -c`.
//!
//! The two take turns, run after run, so that whatever else the machine is doing weighs on both
//! alike, and each run writes a fresh output file. It prints a Markdown table on stdout: the
//! median wall time, the throughput, ours / cat, and the peak RSS that `/usr/bin/time -f %M`
//! reports (left out, with a note, where there is no `/usr/bin/time`). It checks that both outputs
//! are the same bytes, and never asks anything: it is made to run unattended.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Parser, Subcommand};
use concat_files::concat_files;
use kata_harness::data::Xorshift;

/// concat_files against cat: wall time, throughput and peak RSS, as a Markdown table.
#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Hidden>,
    #[command(flatten)]
    bench: Bench,
}

#[derive(Args)]
struct Bench {
    /// Where to put the source files (created if missing, reused if their sizes are right) and
    /// the outputs.
    #[arg(long, required = true)]
    dir: Option<PathBuf>,
    /// Total size of the four source files, in MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// Measured runs per side (the median is reported), after one warm-up run.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[derive(Subcommand)]
enum Hidden {
    /// Runs concat_files(SRC..., DST) once: the measured side of the benchmark.
    #[command(hide = true)]
    RunOurs {
        /// The sources, then the destination.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<PathBuf>,
    },
}

const MIB: u64 = 1024 * 1024;
const SOURCES: u64 = 4;
const TIME: &str = "/usr/bin/time";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Hidden::RunOurs { paths }) => run_ours(paths),
        None => bench(&cli.bench),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_ours(mut paths: Vec<PathBuf>) -> Result<()> {
    let dst = paths.pop().context("no destination")?;
    // One thread, as a command-line tool would have it: the file I/O runs on tokio's blocking
    // pool either way, and worker threads would only add cross-thread wake-ups (measured here, a
    // multi-threaded runtime makes the run about a quarter slower).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    runtime.block_on(concat_files(&paths, &dst))?;
    Ok(())
}

/// One side of the comparison: what it is called, where it writes, how to run it once.
struct Side<'a> {
    name: &'static str,
    out: &'a Path,
    command: Box<dyn Fn() -> Command + 'a>,
}

/// One side of the comparison, measured.
struct Measured {
    name: &'static str,
    median: Duration,
    /// Peak RSS in KiB, the largest over the runs.
    peak_rss_kib: Option<u64>,
}

fn bench(args: &Bench) -> Result<()> {
    let dir = args.dir.as_deref().context("--dir is required")?;
    ensure!(
        args.size_mib >= SOURCES,
        "--size-mib must be at least {SOURCES}"
    );
    ensure!(args.runs >= 1, "--runs must be at least 1");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sources = make_sources(dir, args.size_mib * MIB)?;
    let time = Path::new(TIME).is_file();
    if !time {
        eprintln!("no {TIME} here: peak RSS is left out");
    }

    let ours_out = dir.join("out-ours.bin");
    let cat_out = dir.join("out-cat.bin");
    let this = std::env::current_exe().context("cannot find this program's path")?;
    let ours = Side {
        name: "concat_files",
        out: &ours_out,
        command: Box::new(|| {
            let mut command = Command::new(&this);
            command.arg("run-ours").args(&sources).arg(&ours_out);
            command
        }),
    };
    let cat = Side {
        name: "cat",
        out: &cat_out,
        command: Box::new(|| {
            let mut command = Command::new("sh");
            // `exec`, so that the measured process is cat itself once the redirection is set up.
            command
                .args(["-c", r#"out=$1; shift; exec cat -- "$@" > "$out""#, "sh"])
                .arg(&cat_out)
                .args(&sources);
            command
        }),
    };
    let [ours, cat] = measure([ours, cat], args.runs, time)?;

    ensure!(
        same_bytes(&ours_out, &cat_out)?,
        "concat_files's output differs from cat's"
    );
    for out in [&ours_out, &cat_out] {
        std::fs::remove_file(out).with_context(|| format!("cannot remove {}", out.display()))?;
    }

    println!(
        "{SOURCES} files of pseudo-random bytes, {} MiB in all, in the page cache; the median of \
         {} runs each after a warm-up, the two taking turns, each run a child process writing a \
         new file. Both outputs are checked to be the same bytes.",
        args.size_mib, args.runs
    );
    println!();
    println!("| command | wall time (median) | throughput | time / cat's | peak RSS |");
    println!("|---|---|---|---|---|");
    for side in [&ours, &cat] {
        let seconds = side.median.as_secs_f64();
        let rss = side.peak_rss_kib.map_or_else(
            || "n/a".to_owned(),
            |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
        );
        println!(
            "| `{}` | {:.3} s | {:.0} MiB/s | {:.2}x | {rss} |",
            side.name,
            seconds,
            args.size_mib as f64 / seconds,
            seconds / cat.median.as_secs_f64(),
        );
    }
    Ok(())
}

/// Writes the source files (or keeps those already there with the right size).
fn make_sources(dir: &Path, total: u64) -> Result<Vec<PathBuf>> {
    (0..SOURCES)
        .map(|i| {
            let size = total / SOURCES + if i == SOURCES - 1 { total % SOURCES } else { 0 };
            let path = dir.join(format!("source-{i}.bin"));
            if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
                return Ok(path);
            }
            eprintln!("writing {} ({} MiB)...", path.display(), size / MIB);
            let file =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::with_capacity(MIB as usize, file);
            // Pseudo-random: no pattern a file system could compress or dedupe.
            let mut random = Xorshift::new(i);
            let mut block = vec![0; MIB as usize];
            let mut written = 0;
            while written < size {
                let n = (size - written).min(MIB) as usize;
                random.fill(&mut block[..n]);
                out.write_all(&block[..n])?;
                written += n as u64;
            }
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// Runs every side once to warm up, then `runs` times measured, taking turns (ours, cat, ours,
/// ...) so that whatever else the machine is doing weighs on both alike. Returns each side's
/// median wall time and peak RSS.
fn measure<const N: usize>(sides: [Side<'_>; N], runs: usize, time: bool) -> Result<[Measured; N]> {
    eprintln!(
        "running {} ({runs} runs each, in turns)...",
        sides.each_ref().map(|side| side.name).join(", ")
    );
    let mut times = vec![Vec::with_capacity(runs); N];
    let mut peaks = [None; N];
    for run in 0..=runs {
        for (i, side) in sides.iter().enumerate() {
            let (elapsed, rss) = run_once(side, time)?;
            if run > 0 {
                times[i].push(elapsed);
                peaks[i] = peaks[i].max(rss);
            }
        }
    }
    Ok(std::array::from_fn(|i| {
        times[i].sort_unstable();
        Measured {
            name: sides[i].name,
            median: times[i][times[i].len() / 2],
            peak_rss_kib: peaks[i],
        }
    }))
}

/// Runs one side once, writing a new file: its wall time, and its peak RSS in KiB when
/// `/usr/bin/time` is there to say.
fn run_once(side: &Side<'_>, time: bool) -> Result<(Duration, Option<u64>)> {
    let out = side.out;
    match std::fs::remove_file(out) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).context(format!("cannot remove {}", out.display())),
    }
    let rss_file = out.with_extension("rss");
    let inner = (side.command)();
    let mut child = if time {
        let mut wrapped = Command::new(TIME);
        wrapped
            .args(["-f", "%M", "-o"])
            .arg(&rss_file)
            .arg(inner.get_program())
            .args(inner.get_args());
        wrapped
    } else {
        inner
    };
    let start = Instant::now();
    let status = child
        .status()
        .with_context(|| format!("cannot run {}", side.name))?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("{} failed ({status})", side.name);
    }
    if !time {
        return Ok((elapsed, None));
    }
    let text = std::fs::read_to_string(&rss_file)
        .with_context(|| format!("cannot read {}", rss_file.display()))?;
    let _ = std::fs::remove_file(&rss_file);
    let kib = text
        .trim()
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .with_context(|| format!("{TIME} wrote {text:?}, not a number"))?;
    Ok((elapsed, Some(kib)))
}

/// Whether two files hold the same bytes, compared a block at a time.
fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let open =
        |path: &Path| File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let (mut a, mut b) = (open(a)?, open(b)?);
    let (mut block_a, mut block_b) = (vec![0; MIB as usize], vec![0; MIB as usize]);
    loop {
        let n = read_full(&mut a, &mut block_a)?;
        let m = read_full(&mut b, &mut block_b)?;
        if block_a[..n] != block_b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much it read.
fn read_full(file: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
