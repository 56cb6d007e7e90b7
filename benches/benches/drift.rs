//! The ticker on a real clock (`just bench`): how far each tick lands from the 50 ms grid over
//! 2 s, mean and worst, and whether the error grows (drift); against `tokio::time::interval`.
//!
//! The suite's paused clock cannot see any of this: there, every timer fires exactly on time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_benches::row;
use ticker::{INTERVAL, Tick, Ticker};
use tokio::time::Instant;

const TOTAL: Duration = Duration::from_secs(2);

/// Deviation of each tick from `start + k × 50 ms`, in order.
#[derive(Debug)]
struct Deviations(Vec<Duration>);

impl Deviations {
    fn from_ticks(start: Instant, ticks: &[(u32, Instant)]) -> Self {
        Self(
            ticks
                .iter()
                .map(|&(k, at)| {
                    let due = start + INTERVAL * k;
                    if at >= due { at - due } else { due - at }
                })
                .collect(),
        )
    }

    fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len().max(1) as u32
    }

    fn worst(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }

    /// How fast the deviation grows, in ms per second of ticking (least-squares slope): a
    /// ticker that sleeps 50 ms *after* each tick drifts by its own overhead at every tick; one
    /// that sleeps until the grid's next instant stays at 0.
    fn drift(&self) -> f64 {
        let n = self.0.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let xs = (1..=self.0.len()).map(|k| k as f64 * INTERVAL.as_secs_f64());
        let ys = self.0.iter().map(|d| d.as_secs_f64() * 1e3);
        let (mean_x, mean_y) = (xs.clone().sum::<f64>() / n, ys.clone().sum::<f64>() / n);
        let covariance: f64 = xs
            .clone()
            .zip(ys)
            .map(|(x, y)| (x - mean_x) * (y - mean_y))
            .sum();
        let variance: f64 = xs.map(|x| (x - mean_x).powi(2)).sum();
        covariance / variance
    }

    fn summary(&self) -> String {
        format!(
            "mean {:.3} ms, worst {:.3} ms, drift {:+.3} ms/s over {} ticks",
            self.mean().as_secs_f64() * 1e3,
            self.worst().as_secs_f64() * 1e3,
            self.drift(),
            self.0.len()
        )
    }
}

async fn our_ticker() -> Deviations {
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let start = Instant::now();
    let emitter = Ticker::new(TOTAL).start(move |result| {
        let _ = done_tx.send(result);
    });
    let log = ticks.clone();
    let _listening =
        emitter.on(move |tick: &Tick| log.lock().unwrap().push((tick.count, Instant::now())));
    done_rx
        .await
        .expect("the ticker calls on_done")
        .expect("no clock, no error");
    let ticks = ticks.lock().unwrap().clone();
    Deviations::from_ticks(start, &ticks)
}

async fn tokio_interval() -> Deviations {
    let start = Instant::now();
    let mut interval = tokio::time::interval_at(start + INTERVAL, INTERVAL);
    let mut ticks = Vec::new();
    for k in 1..=(TOTAL.as_millis() / INTERVAL.as_millis()) as u32 {
        interval.tick().await;
        ticks.push((k, Instant::now()));
    }
    Deviations::from_ticks(start, &ticks)
}

/// The run (of three) with the median worst deviation: one 2-second run is at the mercy of
/// whatever else the machine does in those 2 seconds.
fn median_run(run: impl Fn() -> Deviations) -> Deviations {
    let mut runs: Vec<Deviations> = (0..3).map(|_| run()).collect();
    runs.sort_by_key(Deviations::worst);
    runs.swap_remove(1)
}

fn main() {
    // A current-thread runtime, as a small program's would be; real time, not paused.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ours = median_run(|| runtime.block_on(our_ticker()));
    let peer = median_run(|| runtime.block_on(tokio_interval()));
    row(
        "Ticker on a real clock, 50 ms grid over 2 s (median of 3 runs)",
        &ours.summary(),
        "`tokio::time::interval`",
        &peer.summary(),
        ours.worst().as_secs_f64() / peer.worst().as_secs_f64().max(1e-9),
        "worst < 2 ms, no drift",
    );
}
