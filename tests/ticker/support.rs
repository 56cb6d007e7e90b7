//! How the ticker suite watches a ticker: listeners attached after the call, as a user would
//! attach them, and a scripted clock for stage 3.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_emitter::EventEmitter;
use kata_harness::Hint;
use kata_harness::completion::completes_within;
use kata_harness::report::fail;
use kata_harness::timing::Timeline;
use ticker::{Tick, TickerError, TickerResult};

/// The callback a test hands to the ticker.
pub type OnDone = Box<dyn FnOnce(TickerResult) + Send>;

/// Everything one ticker run did, as heard by listeners attached right after `start`.
#[derive(Debug)]
pub struct Run {
    /// `(time since start, count)` of every `Tick`.
    pub ticks: Vec<(Duration, u32)>,
    /// `(time since start, error)` of every `TickerError` event.
    pub errors: Vec<(Duration, TickerError)>,
    /// When `on_done` was called, and with what.
    pub done_at: Duration,
    pub result: TickerResult,
    /// Every event and the callback, in the order they happened: "tick", "error", "done".
    pub order: Vec<String>,
}

impl Run {
    pub fn tick_times(&self) -> Vec<Duration> {
        self.ticks.iter().map(|&(at, _)| at).collect()
    }

    pub fn tick_counts(&self) -> Vec<u32> {
        self.ticks.iter().map(|&(_, count)| count).collect()
    }
}

/// What the listeners do at each tick, besides recording it.
pub type OnTick = Box<dyn Fn() + Send + Sync>;

/// Starts a ticker with `start_ticker`, listens, waits for `on_done`, then listens for one more
/// second to catch anything emitted after the end. Fails the test if `on_done` is never called.
pub async fn observe(
    total: Duration,
    hint: &Hint,
    start_ticker: impl FnOnce(OnDone) -> EventEmitter,
) -> Run {
    let after = Duration::from_secs(1);
    observe_with(total, hint, (Box::new(|| {}), after), start_ticker).await
}

/// [`observe`], with a tick listener that also runs `on_tick` (one that takes real time, say),
/// listening for `after` once `on_done` was called.
pub async fn observe_with(
    total: Duration,
    hint: &Hint,
    (on_tick, after): (OnTick, Duration),
    start_ticker: impl FnOnce(OnDone) -> EventEmitter,
) -> Run {
    let timeline = Timeline::start();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();

    let on_done_timeline = timeline.clone();
    let emitter = start_ticker(Box::new(move |result| {
        on_done_timeline.mark("done");
        let _ = done_tx.send((on_done_timeline.now(), result));
    }));

    // Listeners attached only now, after the call returned.
    let (tick_timeline, tick_log) = (timeline.clone(), ticks.clone());
    let _on_tick = emitter.on(move |tick: &Tick| {
        tick_timeline.mark("tick");
        tick_log
            .lock()
            .unwrap()
            .push((tick_timeline.now(), tick.count));
        on_tick();
    });
    let (error_timeline, error_log) = (timeline.clone(), errors.clone());
    let _on_error = emitter.on(move |error: &TickerError| {
        error_timeline.mark("error");
        error_log
            .lock()
            .unwrap()
            .push((error_timeline.now(), error.clone()));
    });

    let limit = total + Duration::from_secs(1);
    let Ok((done_at, result)) = completes_within("on_done", done_rx, limit, hint).await else {
        fail(
            "on_done was never called",
            "the ticker dropped the callback without calling it",
            "on_done to be called exactly once",
            hint,
        );
    };
    // Anything after the end is a bug: keep listening a while.
    tokio::time::sleep(after).await;

    let ticks = ticks.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    Run {
        ticks,
        errors,
        done_at,
        result,
        order: timeline.labels(),
    }
}

/// A tick listener that takes `cost` of real time, as a slow listener would (logging to a slow
/// disk, say). A real sleep on purpose: only the real clock shows what a ticker does when its
/// listeners take time, because on the paused clock nothing but timers takes any.
pub fn slow_listener(cost: Duration) -> OnTick {
    Box::new(move || std::thread::sleep(cost))
}

/// A clock that returns `readings` one per call, then readings never divisible by 5; and a
/// count of how often it was read.
pub fn scripted_clock(
    readings: Vec<u64>,
) -> (impl FnMut() -> u64 + Send + 'static, Arc<Mutex<usize>>) {
    let reads = Arc::new(Mutex::new(0));
    let counter = reads.clone();
    let clock = move || {
        let mut reads = counter.lock().unwrap();
        *reads += 1;
        readings.get(*reads - 1).copied().unwrap_or(1_000_001)
    };
    (clock, reads)
}
