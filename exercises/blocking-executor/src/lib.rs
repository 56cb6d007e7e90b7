//! # Blocking the executor
//!
//! A heavy computation inside an `async fn` holds the runtime's thread, and every other task on
//! it waits. Compute big factorials without doing that: with checkpoints that give the thread
//! back (stage 1), on tokio's blocking pool, stoppable by dropping the future (stage 2), and
//! through a pool that caps how many such jobs run at once (stage 3). Read `README.md` beside
//! this file for the stages, and run `just test blocking-executor` to see how far you are.
//!
//! The arithmetic ([`BigNat`], [`Factorial`], [`Progress`]) and the error types are given:
//! everything with `todo!()` is yours, and so are the fields of [`BlockingPool`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Semaphore;

// ---------------------------------------------------------------------------------------------
// Given: the arithmetic, the progress counter and the error types.

/// The largest `n` whose factorial this crate computes. 10000! has 35,660 digits and takes a
/// noticeable fraction of a second in a debug build; larger factorials are a job for a real
/// big-number crate.
pub const MAX_N: u32 = 10_000;

/// One limb holds nine decimal digits.
const BASE: u64 = 1_000_000_000;

/// A natural number in base 10⁹: small, slow and enough for factorials.
#[derive(Clone, PartialEq, Eq)]
pub struct BigNat {
    /// Little-endian limbs, each below [`BASE`]; never empty, and the last one is 0 only when it
    /// is the only one.
    limbs: Vec<u32>,
}

impl BigNat {
    /// The number 1.
    pub fn one() -> Self {
        Self { limbs: vec![1] }
    }

    /// Multiplies the number by `factor` in place.
    pub fn mul_small(&mut self, factor: u32) {
        if factor == 0 {
            self.limbs = vec![0];
            return;
        }
        let mut carry = 0_u64;
        for limb in &mut self.limbs {
            // Below 10⁹ × 2³² + 2³², so it fits a u64.
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = (product % BASE) as u32;
            carry = product / BASE;
        }
        while carry > 0 {
            self.limbs.push((carry % BASE) as u32);
            carry /= BASE;
        }
    }

    /// The number of decimal digits (1 for the numbers 0 to 9).
    pub fn digits(&self) -> usize {
        let top = self.limbs.last().copied().unwrap_or(0);
        9 * (self.limbs.len() - 1) + top.checked_ilog10().map_or(1, |log| log as usize + 1)
    }
}

impl fmt::Display for BigNat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut limbs = self.limbs.iter().rev();
        if let Some(top) = limbs.next() {
            write!(f, "{top}")?;
        }
        limbs.try_for_each(|limb| write!(f, "{limb:09}"))
    }
}

impl fmt::Debug for BigNat {
    /// Short numbers in full, long ones by their size and ends: a report stays a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_string();
        if text.len() <= 40 {
            write!(f, "BigNat({text})")
        } else {
            let (head, tail) = (&text[..12], &text[text.len() - 12..]);
            write!(f, "BigNat({} digits: {head}...{tail})", text.len())
        }
    }
}

/// How far the factorials made with it have got, readable from any thread while they run.
///
/// Clones share their counts: keep one, hand a clone to [`Factorial::new`].
#[derive(Debug, Clone, Default)]
pub struct Progress {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    steps: AtomicU64,
    live: AtomicUsize,
}

impl Progress {
    /// A counter at 0 steps, with no factorial alive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Multiplications done so far, by every [`Factorial`] made with this counter.
    pub fn steps(&self) -> u64 {
        self.counters.steps.load(Ordering::SeqCst)
    }

    /// [`Factorial`]s made with this counter that have not been dropped yet: a computation that
    /// still holds its state, wherever it runs.
    pub fn live(&self) -> usize {
        self.counters.live.load(Ordering::SeqCst)
    }
}

/// `n!`, computed one multiplication at a time: `step` multiplies by 1, then 2, ..., then `n`,
/// so `n!` takes exactly `n` steps (and `0!` none).
///
/// Each step counts on the [`Progress`] it was made with, and the factorial counts as live
/// there until it is dropped.
#[derive(Debug)]
pub struct Factorial {
    n: u32,
    /// The next factor; `n + 1` once done.
    next: u32,
    value: BigNat,
    progress: Progress,
}

impl Factorial {
    /// Prepares `n!` without doing any of its work; `n` above [`MAX_N`] is an error.
    pub fn new(n: u32, progress: Progress) -> Result<Self, FactorialError> {
        if n > MAX_N {
            return Err(FactorialError::TooLarge { n });
        }
        progress.counters.live.fetch_add(1, Ordering::SeqCst);
        Ok(Self {
            n,
            next: 1,
            value: BigNat::one(),
            progress,
        })
    }

    /// The `n` of `n!`.
    pub fn n(&self) -> u32 {
        self.n
    }

    /// Whether all `n` steps are done.
    pub fn is_done(&self) -> bool {
        self.next > self.n
    }

    /// Does one multiplication and returns `true`, or returns `false` when there is none left.
    pub fn step(&mut self) -> bool {
        if self.is_done() {
            return false;
        }
        self.value.mul_small(self.next);
        self.next += 1;
        self.progress.counters.steps.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Does every step left, without ever stopping: **blocking** work.
    pub fn run(mut self) -> BigNat {
        while self.step() {}
        self.into_value()
    }

    /// The product so far: `n!` once [`is_done`](Self::is_done).
    pub fn into_value(mut self) -> BigNat {
        std::mem::replace(&mut self.value, BigNat::one())
    }
}

impl Drop for Factorial {
    fn drop(&mut self) {
        self.progress.counters.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a factorial has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactorialError {
    /// `n` is above [`MAX_N`].
    #[error("{n}! is too large: this kata computes factorials up to {MAX_N}!")]
    TooLarge {
        /// The `n` asked for.
        n: u32,
    },
    /// A checkpoint every 0 steps would never do a step.
    #[error("a checkpoint every 0 steps is no checkpoint: `every` must be 1 or more")]
    ZeroEvery,
    /// The blocking job that computed it failed.
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}

/// Why a job on the blocking pool has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockingError {
    /// The job panicked; its thread caught the panic, and the runtime carries on.
    #[error("the blocking job panicked: {message}")]
    Panicked {
        /// The panic's message (what `panic!` was given).
        message: String,
    },
    /// The job was stopped, or never started, before it had a result.
    #[error("the blocking job was cancelled before it finished")]
    Cancelled,
}

/// Why a [`BlockingPool`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// A pool without slots would never run a job: every `run` would wait forever.
    #[error("a blocking pool needs at least one slot: the limit must be 1 or more, got 0")]
    ZeroLimit,
    /// More slots than tokio's semaphore can count.
    #[error("a blocking pool can have at most {max} slots, got {limit}", max = Semaphore::MAX_PERMITS)]
    TooLarge {
        /// The limit asked for.
        limit: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Stage 1: checkpoints.

/// `n!` on the runtime's thread, giving the thread back every `every` steps (stage 1).
///
/// Await [`tokio::task::yield_now`] once after every `every` steps. Errors come before any
/// work: `n` above [`MAX_N`] ([`Factorial::new`] checks it), or `every == 0`
/// ([`FactorialError::ZeroEvery`]).
pub async fn factorial_checkpointed(
    n: u32,
    every: u32,
    progress: Progress,
) -> Result<BigNat, FactorialError> {
    // Only here so the stub compiles without "never used" warnings: delete it.
    let _ = (n, every, progress);
    todo!(
        "factorial_checkpointed: check `every`, make the Factorial, step with a yield every `every` steps"
    )
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the blocking pool, and stopping work there.

/// Runs a blocking closure on tokio's blocking pool and waits for its result (stage 2).
///
/// A panic in `job` comes back as [`BlockingError::Panicked`] with the panic's message; a job
/// that never finished as [`BlockingError::Cancelled`].
pub async fn offload<T, F>(job: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let _ = job;
    todo!("offload: spawn_blocking, await the JoinHandle, turn a JoinError into a BlockingError")
}

/// `n!` on the blocking pool, leaving the runtime's thread free (stage 2). `n` above [`MAX_N`] is
/// an error before any work.
pub async fn factorial_offloaded(n: u32, progress: Progress) -> Result<BigNat, FactorialError> {
    let _ = (n, progress);
    todo!("factorial_offloaded: make the Factorial here, run it on the blocking pool")
}

/// `n!` on the blocking pool, stopped by dropping this future (stage 2): once the future is
/// dropped, the loop does at most the step it was doing, then drops its [`Factorial`].
pub async fn factorial_cancellable(n: u32, progress: Progress) -> Result<BigNat, FactorialError> {
    let _ = (n, progress);
    todo!(
        "factorial_cancellable: a loop on the blocking pool that checks a flag the future's drop sets"
    )
}

// ---------------------------------------------------------------------------------------------
// Stage 3: a bounded blocking pool.

/// Runs blocking jobs on tokio's blocking pool, at most `limit` of them at once, first come
/// first served (stage 3). Clones share their slots.
#[derive(Debug, Clone)]
pub struct BlockingPool {
    // Your fields.
}

impl BlockingPool {
    /// A pool of `limit` slots: 0 is [`PoolError::ZeroLimit`], more than
    /// [`Semaphore::MAX_PERMITS`] is [`PoolError::TooLarge`].
    pub fn new(limit: usize) -> Result<Self, PoolError> {
        let _ = limit;
        todo!("BlockingPool::new: reject 0 and too many, then make the slots")
    }

    /// The most jobs that run at once.
    pub fn limit(&self) -> usize {
        todo!("BlockingPool::limit")
    }

    /// Waits for a slot, then runs `job` on the blocking pool and waits for its result.
    ///
    /// Dropping this future while the job waits for a slot means it never runs. Dropping it
    /// while the job runs stops the waiting only: the job keeps its slot until it ends.
    pub async fn run<T, F>(&self, job: F) -> Result<T, BlockingError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _ = job;
        todo!("BlockingPool::run: take a slot, then offload the job with the slot inside it")
    }
}
