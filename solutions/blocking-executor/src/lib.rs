//! # Blocking the executor: reference solution
//!
//! A tokio runtime runs many tasks on few threads, and it can switch tasks only where one of
//! them returns `Pending`: at an `.await` that has to wait. A computation that never waits holds
//! its thread from its first poll to its last, and every other task on that thread (a ticker, a
//! heartbeat, a server's accept loop) waits with it. This crate computes a big factorial four
//! ways, from the one that blocks to the ones that share:
//!
//! - [`Factorial::run`] (given) is the plain blocking loop: fine on a thread of its own, a
//!   disaster inside an `async fn`.
//! - [`factorial_checkpointed`] stays on the runtime's thread but gives it back every `every`
//!   steps with [`tokio::task::yield_now`]: the cooperative fix, which costs nothing but a
//!   choice of `every`.
//! - [`offload`] and [`factorial_offloaded`] move the work to tokio's **blocking pool**
//!   ([`tokio::task::spawn_blocking`]), threads kept for exactly this, so the runtime's thread
//!   only waits for the result. [`factorial_cancellable`] adds what `spawn_blocking` lacks: a
//!   way to stop. Dropping a `JoinHandle` (or aborting it) does not stop a closure that already
//!   runs, because Rust cannot interrupt a thread; the closure has to check a flag.
//! - [`BlockingPool`] bounds how many blocking jobs run at once with a semaphore whose permit
//!   moves *into* the closure, so a slot is free only when the job has really ended.
//!
//! The big-number arithmetic ([`BigNat`], [`Factorial`], [`Progress`]) is given: the kata is
//! about scheduling, not multiplication.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Semaphore;
use tokio::task::JoinError;

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

/// `n!` on the runtime's thread, giving the thread back every `every` steps.
///
/// The loop is the blocking one with a checkpoint: after every `every` steps it awaits
/// [`tokio::task::yield_now`], which returns `Pending` once, so the runtime can run every other
/// ready task (and fire due timers) before it comes back here. `n` steps make about `n / every`
/// checkpoints: a larger `every` costs fewer switches, a smaller one keeps the others waiting
/// less. Dropping the future between two checkpoints stops the work there, like any future.
///
/// Errors come before any work: `n` above [`MAX_N`], or `every == 0`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), blocking_executor::FactorialError> {
/// use blocking_executor::{Progress, factorial_checkpointed};
///
/// let progress = Progress::new();
/// let value = factorial_checkpointed(1000, 10, progress.clone()).await?;
/// assert_eq!(value.digits(), 2568);
/// assert_eq!(progress.steps(), 1000);
/// # Ok(())
/// # }
/// ```
pub async fn factorial_checkpointed(
    n: u32,
    every: u32,
    progress: Progress,
) -> Result<BigNat, FactorialError> {
    if every == 0 {
        return Err(FactorialError::ZeroEvery);
    }
    let mut factorial = Factorial::new(n, progress)?;
    let mut since_checkpoint = 0;
    while factorial.step() {
        since_checkpoint += 1;
        if since_checkpoint == every {
            since_checkpoint = 0;
            tokio::task::yield_now().await;
        }
    }
    Ok(factorial.into_value())
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the blocking pool, and stopping work there.

/// Runs a blocking closure on tokio's blocking pool and waits for its result: what Python's
/// `asyncio.to_thread` does.
///
/// The runtime's thread does not run `job`: it parks until the pool's thread is done, free for
/// every other task meanwhile. `Send + 'static` because `job` moves to another thread and may
/// outlive the caller: dropping this future only stops *waiting*, never the closure, which runs
/// to its end (see [`factorial_cancellable`] for work that can stop).
///
/// A panic in `job` is caught on its thread and comes back as [`BlockingError::Panicked`] with
/// the panic's message.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use blocking_executor::{BlockingError, offload};
///
/// assert_eq!(offload(|| 6 * 7).await, Ok(42));
/// let failed = offload(|| -> u32 { panic!("out of coffee") }).await;
/// assert_eq!(failed, Err(BlockingError::Panicked { message: "out of coffee".into() }));
/// # }
/// ```
pub async fn offload<T, F>(job: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(job)
        .await
        .map_err(blocking_error)
}

/// What a [`JoinError`] means to the caller: the panic's message, or a job that never finished.
fn blocking_error(error: JoinError) -> BlockingError {
    if !error.is_panic() {
        // The runtime shut down before the job ran, or it was aborted before it started.
        return BlockingError::Cancelled;
    }
    let payload = error.into_panic();
    // `panic!("literal")` carries a `&'static str`, `panic!("{x}")` a `String`.
    let message = match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "(a panic whose payload is not text)".to_owned(),
            |message| (*message).to_owned(),
        ),
    };
    BlockingError::Panicked { message }
}

/// `n!` on the blocking pool: the runtime's thread stays free while it is computed.
///
/// `n` is checked first, on the caller's side: an error needs no thread.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), blocking_executor::FactorialError> {
/// use blocking_executor::{Progress, factorial_offloaded};
///
/// let value = factorial_offloaded(25, Progress::new()).await?;
/// assert_eq!(value.to_string(), "15511210043330985984000000");
/// # Ok(())
/// # }
/// ```
pub async fn factorial_offloaded(n: u32, progress: Progress) -> Result<BigNat, FactorialError> {
    let factorial = Factorial::new(n, progress)?;
    Ok(offload(move || factorial.run()).await?)
}

/// Sets its flag when dropped: the one thing that still happens when a future is cancelled.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `n!` on the blocking pool, stopped by dropping this future.
///
/// A bare `spawn_blocking` cannot be stopped: aborting or dropping its `JoinHandle` only gives
/// up on the result, and the closure computes to its end on a pool thread nobody waits for:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), blocking_executor::FactorialError> {
/// use std::time::Duration;
/// use blocking_executor::{Factorial, Progress};
///
/// let progress = Progress::new();
/// let factorial = Factorial::new(3000, progress.clone())?;
/// let handle = tokio::task::spawn_blocking(move || factorial.run());
/// while progress.steps() == 0 {
///     tokio::time::sleep(Duration::from_millis(1)).await;
/// }
/// handle.abort(); // too late: the closure runs, and nothing tells it to stop
/// while progress.live() > 0 {
///     tokio::time::sleep(Duration::from_millis(1)).await;
/// }
/// assert_eq!(progress.steps(), 3000, "every step was done anyway");
/// # Ok(())
/// # }
/// ```
///
/// So the loop checks a flag before every step, and a guard in this future's state sets the
/// flag when the future is dropped (finished, cancelled by `select!` or a timeout, or its task
/// aborted): the closure then stops after at most the step it was doing, and drops its state.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use blocking_executor::{MAX_N, Progress, factorial_cancellable};
///
/// let progress = Progress::new();
/// let computing = factorial_cancellable(MAX_N, progress.clone());
/// // Give up after 5 ms: the timeout drops the future, and the loop stops.
/// let gave_up = tokio::time::timeout(Duration::from_millis(5), computing).await;
/// assert!(gave_up.is_err());
/// while progress.live() > 0 {
///     tokio::time::sleep(Duration::from_millis(1)).await;
/// }
/// assert!(progress.steps() < u64::from(MAX_N));
/// # }
/// ```
pub async fn factorial_cancellable(n: u32, progress: Progress) -> Result<BigNat, FactorialError> {
    let mut factorial = Factorial::new(n, progress)?;
    let cancelled = Arc::new(AtomicBool::new(false));
    // Lives in this future's state: dropped, and so setting the flag, whenever the future is.
    let _cancel_on_drop = CancelOnDrop(cancelled.clone());
    let finished = offload(move || {
        while !cancelled.load(Ordering::SeqCst) {
            if !factorial.step() {
                return Some(factorial.into_value());
            }
        }
        None
    })
    .await?;
    // `None` only when the flag was set, which only a drop does: then nobody is left to see it.
    Ok(finished.ok_or(BlockingError::Cancelled)?)
}

// ---------------------------------------------------------------------------------------------
// Stage 3: a bounded blocking pool.

/// Runs blocking jobs on tokio's blocking pool, at most `limit` of them at once, first come
/// first served: a cap on threads like Python's `ThreadPoolExecutor(max_workers=...)` set as
/// the loop's default executor.
///
/// Tokio's own pool is large (512 threads by default) because it serves every `spawn_blocking`
/// and file operation; a pool for one kind of heavy job should be much smaller. A semaphore
/// holds the slots. The permit is taken on the async side, so a queued job costs no thread, and
/// then **moves into the closure**: a caller that stops waiting cannot free a slot whose job
/// still runs.
///
/// Clones share their slots.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use blocking_executor::{BlockingPool, Factorial, Progress};
///
/// let pool = BlockingPool::new(2)?;
/// let jobs = [10, 20, 30].map(|n| {
///     let factorial = Factorial::new(n, Progress::new()).unwrap();
///     pool.run(move || factorial.run().digits())
/// });
/// let digits = futures::future::try_join_all(jobs).await?;
/// assert_eq!(digits, [7, 19, 33]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BlockingPool {
    slots: Arc<Semaphore>,
    limit: usize,
}

impl BlockingPool {
    /// A pool of `limit` slots: from 1 to [`Semaphore::MAX_PERMITS`].
    pub fn new(limit: usize) -> Result<Self, PoolError> {
        if limit == 0 {
            return Err(PoolError::ZeroLimit);
        }
        if limit > Semaphore::MAX_PERMITS {
            return Err(PoolError::TooLarge { limit });
        }
        Ok(Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
        })
    }

    /// The most jobs that run at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits for a slot, then runs `job` on the blocking pool and waits for its result.
    ///
    /// Dropping this future while the job waits for a slot takes it out of the queue: it never
    /// runs. Dropping it while the job runs stops the waiting only: the job runs on, and keeps
    /// its slot until it ends.
    pub async fn run<T, F>(&self, job: F) -> Result<T, BlockingError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the pool never closes its semaphore");
        offload(move || {
            // Dropped when the job ends, even by a panic: only then is the slot free.
            let _slot = permit;
            job()
        })
        .await
    }
}
