//! # Ticker: reference solution
//!
//! A ticker emits a [`Tick`] every 50 ms for a given total time, then reports the number of
//! ticks through a callback. It is the smallest program that needs both halves of async Rust's
//! event story: an [`EventEmitter`] for things that happen *many* times, and a callback (here an
//! `FnOnce`) for the one result at the end.
//!
//! The whole design follows from one decision: the ticking happens in a **spawned task**, and
//! [`Ticker::start`] returns the emitter straight away. That is what lets the caller attach
//! listeners after the call and still hear every event, including one due "immediately" (stage
//! 2): the task cannot run before the caller next yields to the runtime.

use std::time::Duration;

use kata_emitter::EventEmitter;
use tokio::time::{Instant, sleep_until};

/// Time between two ticks.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Emitted at every tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Ticks emitted so far, this one included (the first tick has `count == 1`).
    pub count: u32,
}

/// A tick whose clock timestamp was divisible by 5 (stage 3). It is both emitted as an event
/// and passed to the callback, and it ends the ticker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tick at timestamp {timestamp}: divisible by 5, so the ticker stopped after {ticks} tick(s)"
)]
pub struct TickerError {
    /// The clock's reading at the failed tick.
    pub timestamp: u64,
    /// Ticks successfully emitted before it.
    pub ticks: u32,
}

/// The callback's argument: the number of ticks, or the error that stopped the ticker.
pub type TickerResult = Result<u32, TickerError>;

/// A clock that reads a timestamp (say, milliseconds since the epoch) at each tick.
type Clock = Box<dyn FnMut() -> u64 + Send>;

/// A ticker to configure, then [`start`](Ticker::start).
///
/// ```
/// # use std::time::Duration;
/// # use ticker::{Tick, Ticker};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (done, finished) = tokio::sync::oneshot::channel();
/// let emitter = Ticker::new(Duration::from_millis(120))
///     .immediate()
///     .start(move |result| {
///         let _ = done.send(result);
///     });
/// let _listening = emitter.on(|tick: &Tick| println!("tick {}", tick.count));
/// // Ticks at 0, 50 and 100 ms, then the result at 120 ms.
/// assert_eq!(finished.await.unwrap(), Ok(3));
/// # }
/// ```
pub struct Ticker {
    total: Duration,
    immediate: bool,
    clock: Option<Clock>,
}

impl Ticker {
    /// A ticker that runs for `total`, ticking at 50, 100, ... ms while elapsed ≤ `total`.
    pub fn new(total: Duration) -> Self {
        Self {
            total,
            immediate: false,
            clock: None,
        }
    }

    /// Also tick at once, at 0 ms (stage 2).
    pub fn immediate(mut self) -> Self {
        self.immediate = true;
        self
    }

    /// Read `clock` at every tick; a reading divisible by 5 is an error (stage 3).
    ///
    /// `Send` because the clock moves into the ticker's task, which tokio may run on any thread.
    pub fn with_clock(mut self, clock: impl FnMut() -> u64 + Send + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Starts ticking in a new task and returns the emitter at once.
    ///
    /// `on_done` is called exactly once: with `Ok(ticks)` when `total` has elapsed, or with the
    /// error that stopped the ticker. The bounds say why: `FnOnce` because it is called once
    /// (the compiler then *guarantees* it is not called twice), `Send + 'static` because it moves
    /// into a spawned task that may outlive the caller and run on another thread.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn start<F>(self, on_done: F) -> EventEmitter
    where
        F: FnOnce(TickerResult) + Send + 'static,
    {
        let emitter = EventEmitter::new();
        // The task gets its own handle to the emitter; listeners added to the returned one
        // after this call hear everything, because the task only runs once the caller yields.
        tokio::spawn(self.run(emitter.clone(), on_done));
        emitter
    }

    async fn run<F>(mut self, emitter: EventEmitter, on_done: F)
    where
        F: FnOnce(TickerResult),
    {
        let start = Instant::now();
        let end = start + self.total;
        let mut next = if self.immediate {
            start
        } else {
            start + INTERVAL
        };
        let mut count = 0;

        while next <= end {
            // Sleep *until* an instant on the grid, never "for 50 ms after the last tick":
            // whatever time the listeners take is then absorbed instead of accumulating as drift.
            sleep_until(next).await;
            if let Some(clock) = &mut self.clock {
                let timestamp = clock();
                if timestamp.is_multiple_of(5) {
                    let error = TickerError {
                        timestamp,
                        ticks: count,
                    };
                    // Both channels hear about it: listeners now, the callback as the result.
                    emitter.emit(error.clone());
                    return on_done(Err(error));
                }
            }
            count += 1;
            emitter.emit(Tick { count });
            next += INTERVAL;
        }

        // The result is due at `total`, which may fall between two ticks.
        sleep_until(end).await;
        on_done(Ok(count));
    }
}

/// The stage 1 ticker: `Ticker::new(total).start(on_done)`.
pub fn ticker<F>(total: Duration, on_done: F) -> EventEmitter
where
    F: FnOnce(TickerResult) + Send + 'static,
{
    Ticker::new(total).start(on_done)
}
