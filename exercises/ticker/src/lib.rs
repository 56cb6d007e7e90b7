//! # Ticker
//!
//! Make a ticker that emits a [`Tick`] every 50 ms for a given total time, then reports how many
//! ticks it emitted through a callback. Read `README.md` beside this file for the stages, and
//! run `just test ticker` to see how far you are.
//!
//! Everything you need to write is in [`Ticker::start`]; the types around it are given.

use std::time::Duration;

use kata_emitter::EventEmitter;

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
    pub fn with_clock(mut self, clock: impl FnMut() -> u64 + Send + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Starts ticking and returns the emitter at once.
    ///
    /// - Stage 1: emit `Tick { count }` at 50, 100, ... ms while elapsed ≤ total, then call
    ///   `on_done(Ok(count))` exactly at `total`.
    /// - Stage 2: when `immediate` is set, also tick at 0 ms, in a way that a listener attached
    ///   *after* this call returns still hears it.
    /// - Stage 3: when a clock is set, read it once per tick; a reading divisible by 5 emits a
    ///   [`TickerError`] instead of that tick, passes it to `on_done`, and stops.
    pub fn start<F>(self, on_done: F) -> EventEmitter
    where
        F: FnOnce(TickerResult) + Send + 'static,
    {
        // Only here so the stub compiles without "never used" warnings: delete it.
        let _ = (self.total, self.immediate, self.clock, on_done);
        todo!("Ticker::start: spawn a task that ticks, and return the emitter")
    }
}

/// The stage 1 ticker: `Ticker::new(total).start(on_done)`.
pub fn ticker<F>(total: Duration, on_done: F) -> EventEmitter
where
    F: FnOnce(TickerResult) + Send + 'static,
{
    Ticker::new(total).start(on_done)
}
