//! The ticker on a real clock (`just bench`): how far each tick lands from the 50 ms grid over
//! 2 s, mean and worst, and whether the error grows (drift); against `tokio::time::interval`.
//!
//! The suite's paused clock cannot see any of this: there, every timer fires exactly on time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_harness::bench::row;
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

    /// The last tick's deviation minus the first's: a drifting ticker's error grows.
    fn drift(&self) -> f64 {
        let (first, last) = (self.0.first(), self.0.last());
        match (first, last) {
            (Some(first), Some(last)) => last.as_secs_f64() - first.as_secs_f64(),
            _ => 0.0,
        }
    }

    fn summary(&self) -> String {
        format!(
            "mean {:.3} ms, worst {:.3} ms, drift {:+.3} ms over {} ticks",
            self.mean().as_secs_f64() * 1e3,
            self.worst().as_secs_f64() * 1e3,
            self.drift() * 1e3,
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

fn main() {
    // A current-thread runtime, as a small program's would be; real time, not paused.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ours = runtime.block_on(our_ticker());
    let peer = runtime.block_on(tokio_interval());
    row(
        "Ticker on a real clock, 50 ms grid over 2 s (worst deviation)",
        &ours.summary(),
        "`tokio::time::interval`",
        &peer.summary(),
        ours.worst().as_secs_f64() / peer.worst().as_secs_f64().max(1e-9),
        "worst < 2 ms, no drift",
    );
}
