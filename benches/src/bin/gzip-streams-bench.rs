//! Our streaming gzip and gunzip against the `gzip` tool, on one large file (`just bench-io`).
//!
//! ```text
//! bench --dir DIR [--size-mib 256] [--runs 3]
//! ```
//!
//! Makes (once) a file of `--size-mib` MiB of log-like text in DIR, then times, `--runs` times
//! each and taking the median:
//!
//! - `gzip_streaming` against `gzip -6 -c SRC > DST`, both from the same text;
//! - `gunzip_streaming` against `gzip -d -c SRC > DST`, both from the same `.gz` (ours).
//!
//! Both sides run as child processes, ours through this binary's hidden `run-ours` subcommand,
//! so both pay for a process start and both are measured the same way: wall time around the
//! child, and peak RSS from `/usr/bin/time -f %M` where it exists. Every output is checked: the
//! round trips give back the text, the tool decodes our `.gz` and we decode the tool's. The
//! result is a Markdown table on stdout.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};

/// Our streaming gzip/gunzip against `gzip -6` / `gzip -d` on a large file.
#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Args {
    /// Where to put the input file and the outputs (created if missing; the input is reused).
    #[arg(long, required = true)]
    dir: Option<PathBuf>,
    /// Size of the input, in MiB of uncompressed text.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// Runs of each side; the table shows the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[command(subcommand)]
    command: Option<Internal>,
}

#[derive(Subcommand)]
enum Internal {
    /// Runs one of our functions once (what the benchmark times as a child process).
    #[command(hide = true)]
    RunOurs {
        direction: Direction,
        src: PathBuf,
        dst: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Direction {
    Gzip,
    Gunzip,
}

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Internal::RunOurs {
            direction,
            src,
            dst,
        }) => run_ours(direction, &src, &dst),
        None => bench(
            args.dir.as_deref().expect("clap requires --dir"),
            args.size_mib,
            args.runs.max(1),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The child process: one call of our function, on a current-thread runtime like the tests'
/// (the compressing happens on the blocking pool either way).
fn run_ours(direction: Direction, src: &Path, dst: &Path) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    runtime.block_on(async {
        match direction {
            Direction::Gzip => gzip_streams::gzip_streaming(src, dst).await,
            Direction::Gunzip => gzip_streams::gunzip_streaming(src, dst).await,
        }
    })?;
    Ok(())
}

/// One timed child process.
struct Run {
    time: Duration,
    /// Peak resident memory in bytes, if `/usr/bin/time` could tell.
    rss: Option<u64>,
}

/// The median of several runs of one side.
struct Side {
    time: Duration,
    rss: Option<u64>,
}

fn median(mut runs: Vec<Run>) -> Side {
    runs.sort_by_key(|run| run.time);
    let middle = &runs[runs.len() / 2];
    let mut rss: Vec<u64> = runs.iter().filter_map(|run| run.rss).collect();
    rss.sort_unstable();
    Side {
        time: middle.time,
        rss: rss.get(rss.len() / 2).copied(),
    }
}

const TIME: &str = "/usr/bin/time";

/// Runs `program args`, its stdout into `stdout`, under `/usr/bin/time -f %M` when there is one.
fn timed(program: &Path, args: &[&Path], stdout: Option<&Path>, with_time: bool) -> Result<Run> {
    let mut command = if with_time {
        let mut command = Command::new(TIME);
        command.args(["-f", "%M"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args).stderr(Stdio::piped());
    if let Some(path) = stdout {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        command.stdout(file);
    }
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let time = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "{} failed: {}",
        program.display(),
        stderr.trim()
    );
    // `time` writes its figure (KiB) as the last line of stderr.
    let rss = with_time
        .then(|| stderr.lines().last()?.trim().parse::<u64>().ok())
        .flatten()
        .map(|kib| kib * 1024);
    Ok(Run { time, rss })
}

fn bench(dir: &Path, size_mib: u64, runs: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let gzip = PathBuf::from("gzip");
    let version = Command::new(&gzip)
        .arg("--version")
        .output()
        .context("this benchmark compares with the `gzip` tool, and there is none here")?;
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("gzip")
        .to_owned();
    let with_time = Path::new(TIME).is_file();
    if !with_time {
        eprintln!("note: no {TIME}, so no peak RSS figures");
    }
    let ours = std::env::current_exe().context("cannot find this program's own path")?;

    let input = dir.join(format!("input-{size_mib}MiB.txt"));
    make_input(&input, size_mib * 1024 * 1024)?;
    let size = std::fs::metadata(&input)?.len();
    let [ours_gz, tool_gz, ours_out, tool_out] =
        ["ours.gz", "tool.gz", "ours.out", "tool.out"].map(|name| dir.join(name));
    let (run_ours, gz, gunzip, dash_c, dash_d, level) = (
        Path::new("run-ours"),
        Path::new("gzip"),
        Path::new("gunzip"),
        Path::new("-c"),
        Path::new("-d"),
        Path::new("-6"),
    );

    eprintln!("{runs} run(s) of each side on {}...", input.display());
    let (mut ours_gzip, mut tool_gzip, mut ours_gunzip, mut tool_gunzip) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Alternate the sides, so a disturbance on the machine is shared rather than one-sided.
    for _ in 0..runs {
        ours_gzip.push(timed(
            &ours,
            &[run_ours, gz, &input, &ours_gz],
            None,
            with_time,
        )?);
        tool_gzip.push(timed(
            &gzip,
            &[level, dash_c, &input],
            Some(&tool_gz),
            with_time,
        )?);
    }
    for _ in 0..runs {
        ours_gunzip.push(timed(
            &ours,
            &[run_ours, gunzip, &ours_gz, &ours_out],
            None,
            with_time,
        )?);
        tool_gunzip.push(timed(
            &gzip,
            &[dash_d, dash_c, &ours_gz],
            Some(&tool_out),
            with_time,
        )?);
    }

    // Everything decodes to the input: ours and the tool's decoding of our .gz above, and ours
    // of the tool's .gz here.
    same_contents(&ours_out, &input).context("our gzip then our gunzip")?;
    same_contents(&tool_out, &input).context("our gzip then `gzip -d`")?;
    timed(&ours, &[run_ours, gunzip, &tool_gz, &ours_out], None, false)?;
    same_contents(&ours_out, &input).context("`gzip -6` then our gunzip")?;

    let (ours_gzip, tool_gzip) = (median(ours_gzip), median(tool_gzip));
    let (ours_gunzip, tool_gunzip) = (median(ours_gunzip), median(tool_gunzip));
    let ours_size = std::fs::metadata(&ours_gz)?.len();
    let tool_size = std::fs::metadata(&tool_gz)?.len();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);

    println!(
        "{size_mib} MiB of log-like text, median of {runs} run(s), each a child process; \
         {cores} core(s).\n"
    );
    println!("| | ours | `{version}` | ours / `gzip` |");
    println!("|---|---:|---:|---:|");
    let throughput =
        |side: &Side| format!("{:.0} MiB/s", size as f64 / MIB / side.time.as_secs_f64());
    let rows = [
        ("gzip -6", &ours_gzip, &tool_gzip),
        ("gunzip", &ours_gunzip, &tool_gunzip),
    ];
    for (what, ours, tool) in rows {
        println!(
            "| {what}: time | {:.2} s | {:.2} s | {:.2}x |",
            ours.time.as_secs_f64(),
            tool.time.as_secs_f64(),
            ours.time.as_secs_f64() / tool.time.as_secs_f64()
        );
        println!(
            "| {what}: throughput (uncompressed) | {} | {} | |",
            throughput(ours),
            throughput(tool)
        );
        if let (Some(ours_rss), Some(tool_rss)) = (ours.rss, tool.rss) {
            println!(
                "| {what}: peak RSS | {:.1} MiB | {:.1} MiB | {:.2}x |",
                ours_rss as f64 / MIB,
                tool_rss as f64 / MIB,
                ours_rss as f64 / tool_rss as f64
            );
        }
    }
    println!(
        "| compressed size | {:.1} MiB ({:.1}%) | {:.1} MiB ({:.1}%) | {:.3}x |",
        ours_size as f64 / MIB,
        100.0 * ours_size as f64 / size as f64,
        tool_size as f64 / MIB,
        100.0 * tool_size as f64 / size as f64,
        ours_size as f64 / tool_size as f64
    );
    Ok(())
}

/// Writes `size` bytes of deterministic log-like text to `path`, unless it is already there. One
/// MiB of text, over and over: deflate looks back 32 KiB at most, so the repeats do not make it
/// compress better than the text itself does.
fn make_input(path: &Path, size: u64) -> Result<()> {
    if std::fs::metadata(path).is_ok_and(|meta| meta.len() == size) {
        return Ok(());
    }
    eprintln!("making {} ({} MiB)...", path.display(), size >> 20);
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let block = kata_harness::data::text(1 << 20);
    let mut written = 0;
    while written < size {
        let n = (size - written).min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        written += n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Checks that two files have the same contents, reading both in chunks.
fn same_contents(a: &Path, b: &Path) -> Result<()> {
    let open = |path: &Path| -> Result<BufReader<File>> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(BufReader::with_capacity(1 << 20, file))
    };
    let (mut left, mut right) = (open(a)?, open(b)?);
    let (mut x, mut y) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    let mut offset = 0_u64;
    loop {
        let n = read_full(&mut left, &mut x)?;
        let m = read_full(&mut right, &mut y)?;
        if x[..n] != y[..m] {
            bail!(
                "{} and {} differ after byte {offset}",
                a.display(),
                b.display()
            );
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
