//! Small helpers for the reference solutions' benchmarks (`just bench`).
//!
//! Each benchmark is a `[[bench]] harness = false` target of this crate. It times our code
//! and a peer on the same work in the same run, takes the median of several runs, and prints
//! rows of one Markdown table that `just bench` gathers into `BENCHMARKS.md`:
//! `| row | ours | peer | peer's figure | ours / peer | target |`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The median wall time of each of `contenders` over `runs` rounds (after one unmeasured
/// warm-up round). Each round runs every contender once, in turn, so a burst of load from
/// another process hits all of them alike instead of the one that happened to be running: the
/// ratios between them are what a benchmark on a shared machine can trust.
pub fn median_times_in_turns(runs: usize, contenders: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    let runs = runs.max(1);
    let mut times = vec![Vec::with_capacity(runs); contenders.len()];
    for round in 0..=runs {
        for (run, times) in contenders.iter_mut().zip(&mut times) {
            let start = Instant::now();
            run();
            if round > 0 {
                times.push(start.elapsed());
            }
        }
    }
    times
        .into_iter()
        .map(|mut times| {
            times.sort_unstable();
            times[times.len() / 2]
        })
        .collect()
}

/// Runs a Python asyncio peer from `benches/python/peers.py` with `args`, and returns the
/// median time it printed; `None` (with the reason on stderr) when `python3` is missing or the
/// script fails.
pub fn python_peer(args: &[&str]) -> Option<Duration> {
    let script = workspace_root().join("benches/python/peers.py");
    let output = match Command::new("python3").arg(&script).args(args).output() {
        Ok(output) => output,
        Err(error) => {
            eprintln!("skipping the Python peer: cannot run python3 ({error})");
            return None;
        }
    };
    if !output.status.success() {
        eprintln!(
            "skipping the Python peer: {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let seconds: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(seconds))
}

/// The repository's root: benchmarks run with the crate's directory as their working directory.
pub fn workspace_root() -> PathBuf {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    crate_dir
        .ancestors()
        .find(|dir| dir.join("katas.txt").is_file())
        .map(PathBuf::from)
        .unwrap_or(crate_dir)
}

/// One row of the benchmark table; `ratio` is ours / peer (below 1 means we are faster).
pub fn row(what: &str, ours: &str, peer: &str, peers_figure: &str, ratio: f64, target: &str) {
    println!("| {what} | {ours} | {peer} | {peers_figure} | {ratio:.2}x | {target} |");
}

/// A duration per item, in the unit that reads best: `85 ns`, `1.2 µs`.
pub fn per_item(total: Duration, items: usize) -> String {
    let nanos = total.as_secs_f64() * 1e9 / items as f64;
    if nanos < 1000.0 {
        format!("{nanos:.0} ns")
    } else {
        format!("{:.2} µs", nanos / 1000.0)
    }
}

/// A duration for people: `12.3 ms`, `1.52 s`.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{:.1} ms", seconds * 1000.0)
    }
}
