//! The profiling demo: RSS over requests for the leaky and the fixed handler, side by side.
//!
//! `just profile memory-leak-listener` runs it. It is the Rust counterpart of watching a Python
//! server with memory_profiler or Memray: run the same traffic through both handlers, sample the
//! process's resident memory as it goes, and plot it, in the terminal and as an SVG.
//!
//! The requests run on tokio's paused clock, like the tests: each request's "work" is a timer,
//! so thousands of requests take a moment instead of minutes, while every byte they allocate is
//! real.

// The heap figures of `measure` come from the harness's counting allocator.
kata_heap::install_allocator!();

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use kata_emitter::EventEmitter;
use memory_leak_listener::{MemoryReport, fixed_handler, leaky_handler, measure};

/// RSS over requests, leaky_handler vs fixed_handler: a plot in the terminal and an SVG.
#[derive(Parser)]
struct Args {
    /// Requests to run through each handler (after a short warm-up).
    #[arg(long, default_value_t = 5_000)]
    requests: u64,
    /// Where to write the SVG plot.
    #[arg(long, default_value = "target/memory-leak-listener/rss.svg")]
    svg: PathBuf,
}

/// One handler's line on the plot.
struct Series<'a> {
    name: &'a str,
    marker: char,
    colour: &'a str,
    report: &'a MemoryReport,
}

impl Series<'_> {
    /// `(request, RSS growth in MiB since the first sample)`.
    fn points(&self) -> Vec<(f64, f64)> {
        let samples = self.report.rss.samples();
        let first = samples.first().map_or(0, |&(_, rss)| rss);
        samples
            .iter()
            .map(|&(request, rss)| (request as f64, (rss as f64 - first as f64) / MIB))
            .collect()
    }

    fn summary(&self) -> String {
        let report = self.report;
        format!(
            "RSS {:+.1} MiB ({:.0} B/request), heap {:.0} B/request, listeners {:+}",
            report.rss.growth() as f64 / MIB,
            report.rss.slope(),
            report.heap_per_request(),
            report.listener_growth
        )
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> Result<()> {
    let args = Args::parse();
    // A current-thread runtime, like the tests': `measure`'s heap counters count this thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .context("cannot start a tokio runtime")?;

    println!(
        "{} requests through each handler, each with a {} KiB body...\n",
        args.requests,
        memory_leak_listener::BUFFER_SIZE / 1024
    );
    // The fixed handler first: what it frees goes back to the allocator, so running it after
    // the leaky one would only reuse memory the leak already holds.
    let fixed = runtime.block_on(measure(&EventEmitter::new(), fixed_handler, args.requests));
    println!("fixed_handler: {fixed}\n");
    let leaky = runtime.block_on(measure(&EventEmitter::new(), leaky_handler, args.requests));
    println!("leaky_handler: {leaky}\n");

    if leaky.rss.samples().is_empty() {
        bail!("memory-stats cannot read RSS on this platform: nothing to plot");
    }
    let series = [
        Series {
            name: "leaky_handler",
            marker: '●',
            colour: "#d62728",
            report: &leaky,
        },
        Series {
            name: "fixed_handler",
            marker: '○',
            colour: "#1f77b4",
            report: &fixed,
        },
    ];
    print!("{}", terminal_plot(&series, args.requests));

    if let Some(dir) = args.svg.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.svg, svg_plot(&series, args.requests))
        .with_context(|| format!("cannot write {}", args.svg.display()))?;
    println!("\nSVG written to {}", args.svg.display());
    Ok(())
}

/// The highest growth on the plot, in MiB: at least 1, so a flat line stays at the bottom.
fn top(series: &[Series<'_>]) -> f64 {
    series
        .iter()
        .flat_map(Series::points)
        .map(|(_, mib)| mib)
        .fold(1.0, f64::max)
}

/// A plot in text: one character per cell, each series read at every column (between two
/// samples, on the straight line joining them), the first series drawn on top.
fn terminal_plot(series: &[Series<'_>], requests: u64) -> String {
    const WIDTH: usize = 60;
    const HEIGHT: usize = 15;
    let top = top(series);
    let mut grid = vec![vec![' '; WIDTH]; HEIGHT];
    for line in series.iter().rev() {
        let points = line.points();
        let requests_at = |column: usize| column as f64 / (WIDTH - 1) as f64 * requests as f64;
        let heights = (0..WIDTH).map(|column| interpolate(&points, requests_at(column)));
        for (column, mib) in heights.enumerate() {
            // Row 0 is the top line of the grid; growth 0 is the bottom one.
            let above_zero = (mib.max(0.0) / top * (HEIGHT - 1) as f64).round() as usize;
            grid[HEIGHT - 1 - above_zero.min(HEIGHT - 1)][column] = line.marker;
        }
    }

    let mut out = String::from("RSS growth over requests (MiB)\n\n");
    for (row, cells) in grid.iter().enumerate() {
        let label = match row {
            0 => format!("{top:7.1}"),
            _ if row == HEIGHT / 2 => format!("{:7.1}", top / 2.0),
            _ if row == HEIGHT - 1 => format!("{:7.1}", 0.0),
            _ => String::new(),
        };
        let axis = if label.is_empty() { '│' } else { '┤' };
        let cells: String = cells.iter().collect();
        let _ = writeln!(out, "{label:>7} {axis}{}", cells.trim_end());
    }
    let _ = writeln!(out, "{:>7} └{}", "", "─".repeat(WIDTH));
    let _ = writeln!(
        out,
        "{:>8} 0{:>width$} requests",
        "",
        requests,
        width = WIDTH - 1
    );
    out.push('\n');
    for line in series {
        let _ = writeln!(
            out,
            "  {} {:<14} {}",
            line.marker,
            line.name,
            line.summary()
        );
    }
    out
}

/// The value at `x` on the line through `points` (sorted by x), flat beyond either end.
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let after = points.partition_point(|&(px, _)| px < x);
    match (
        after.checked_sub(1).and_then(|i| points.get(i)),
        points.get(after),
    ) {
        (Some(&(x0, y0)), Some(&(x1, y1))) if x1 > x0 => y0 + (y1 - y0) * (x - x0) / (x1 - x0),
        (_, Some(&(_, y))) | (Some(&(_, y)), None) => y,
        (None, None) => 0.0,
    }
}

/// The same plot as an SVG: axes, three ticks on each, a polyline per series and a legend.
fn svg_plot(series: &[Series<'_>], requests: u64) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 420.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 110.0;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let top = top(series);
    let x = |request: f64| LEFT + request / requests.max(1) as f64 * plot_w;
    let y = |mib: f64| TOP + plot_h - mib / top * plot_h;

    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="28" font-size="16">RSS growth over requests: leaky_handler vs fixed_handler</text>
"#
    );
    for mib in [top, top / 2.0, 0.0] {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{mib:.1} MiB</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y(mib) + 4.0,
            y = y(mib),
        );
    }
    for request in [0, requests / 2, requests] {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{request}</text>"#,
            x(request as f64),
            TOP + plot_h + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">requests</text>
<polyline points="{LEFT},{TOP} {LEFT},{:.1} {:.1},{:.1}" fill="none" stroke="black"/>"#,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 36.0,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
    );
    for (index, line) in series.iter().enumerate() {
        let points: Vec<String> = line
            .points()
            .iter()
            .map(|&(request, mib)| format!("{:.1},{:.1}", x(request), y(mib)))
            .collect();
        let legend_y = TOP + plot_h + 62.0 + 20.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>
<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}: {}</text>"#,
            points.join(" "),
            legend_y - 4.0,
            LEFT + 24.0,
            legend_y - 4.0,
            LEFT + 32.0,
            legend_y,
            line.name,
            line.summary(),
            colour = line.colour,
        );
    }
    svg.push_str("</svg>\n");
    svg
}
