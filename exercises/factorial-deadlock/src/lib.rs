//! # Recursive factorial deadlock
//!
//! A [`Limiter`] runs jobs with at most `concurrency` of them at once. Write a factorial whose
//! every step is a job through it, watch it deadlock when the recursion holds more slots than
//! the limiter has, fix it, and (stretch) build a limiter that reports the deadlock instead of
//! hanging. Read `README.md` beside this file for the stages, and run
//! `just test factorial-deadlock` to see how far you are.
//!
//! [`Limiter`], [`MAX_N`] and the error types are given; everything with `todo!()` is yours, and
//! so are the fields of [`CheckedLimiter`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

/// The largest `n` whose factorial fits in a `u128`: 34! ≈ 2.95 × 10³⁸, while `u128::MAX` ≈
/// 3.40 × 10³⁸ and 35! ≈ 1.03 × 10⁴⁰.
pub const MAX_N: u32 = 34;

/// Why a limiter could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A limiter without slots would never run anything: every `run` would wait forever.
    #[error("a limiter needs at least one slot: concurrency must be 1 or more, got 0")]
    Zero,
    /// More slots than tokio's semaphore can count (`Semaphore::MAX_PERMITS`).
    #[error("a limiter can have at most {max} slots, got concurrency {concurrency}", max = Semaphore::MAX_PERMITS)]
    TooLarge {
        /// The concurrency asked for.
        concurrency: usize,
    },
}

/// Why a factorial has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FactorialError {
    /// `n!` is larger than `u128::MAX`: `n` is above [`MAX_N`].
    #[error("{n}! does not fit in a u128: the largest factorial that does is {MAX_N}!")]
    Overflow {
        /// The `n` asked for.
        n: u32,
    },
}

/// Builds the guard an instrumented [`Limiter`] holds while a job runs.
type Hook = Arc<dyn Fn() -> Box<dyn Send> + Send + Sync>;

/// Runs jobs with at most `concurrency` of them at once, first come first served.
///
/// A job holds one slot from the moment it starts until it finishes (or is dropped). Clones
/// share their slots: clone a limiter to hand it to several tasks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), factorial_deadlock::LimitError> {
/// let limiter = factorial_deadlock::Limiter::new(2)?;
/// let answer = limiter.run(async { 6 * 7 }).await;
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Limiter {
    slots: Arc<Semaphore>,
    concurrency: usize,
    /// Called as each job gets its slot; what it returns is held until the job ends.
    on_start: Option<Hook>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("concurrency", &self.concurrency)
            .field("free_slots", &self.slots.available_permits())
            .field("instrumented", &self.on_start.is_some())
            .finish()
    }
}

impl Limiter {
    /// A limiter with `concurrency` slots. 0 is [`LimitError::Zero`].
    pub fn new(concurrency: usize) -> Result<Self, LimitError> {
        if concurrency == 0 {
            return Err(LimitError::Zero);
        }
        if concurrency > Semaphore::MAX_PERMITS {
            return Err(LimitError::TooLarge { concurrency });
        }
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            on_start: None,
        })
    }

    /// A limiter that calls `hook` each time a job gets its slot, and holds the guard it returns
    /// until that job ends. The test suite uses it to watch every job:
    /// `Limiter::instrumented(3, move || probe.enter())`.
    ///
    /// `Send + Sync + 'static`: the hook is shared by every clone of the limiter, which may live
    /// on several threads for as long as they like. The guard is `Send` because it is held
    /// inside the job's future, which may move between threads.
    pub fn instrumented<G: Send + 'static>(
        concurrency: usize,
        hook: impl Fn() -> G + Send + Sync + 'static,
    ) -> Result<Self, LimitError> {
        let mut limiter = Self::new(concurrency)?;
        limiter.on_start = Some(Arc::new(move || Box::new(hook()) as Box<dyn Send>));
        Ok(limiter)
    }

    /// The number of slots: the most jobs that ever run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Waits for a free slot, then runs `job` while holding it, and returns its output.
    ///
    /// The slot is given back when the job finishes, or when this future is dropped (a
    /// cancelled job frees its slot too). Waiting jobs get slots in the order they asked.
    pub async fn run<F: Future>(&self, job: F) -> F::Output {
        // `acquire` fails only on a closed semaphore, and nothing ever closes this one.
        let Ok(_slot) = self.slots.acquire().await else {
            unreachable!("the limiter's semaphore is never closed");
        };
        // Declared after the slot, so dropped before it: an observer sees the job end before its
        // slot is free, and so never counts more jobs at once than there are slots.
        let _observed = self.on_start.as_ref().map(|hook| hook());
        job.await
    }
}

/// `n!`, with every step a job through `limiter`, recursing **while holding the slot** (stage 1).
///
/// The job for `n` awaits the job for `n - 1` from inside itself, so all `n` jobs hold their
/// slots at once (`0!` and `1!` are one job). It completes when `limiter` has at least
/// `max(n, 1)` slots and deadlocks with fewer. `n` above [`MAX_N`] is
/// [`FactorialError::Overflow`], found before any job starts.
pub async fn factorial_naive(n: u32, limiter: &Limiter) -> Result<u128, FactorialError> {
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (n, limiter);
    todo!("factorial_naive: one job per step, the job for n awaiting the job for n - 1")
}

/// `n!`, with every multiplication a job through `limiter`, never holding a slot while it waits
/// (stage 2).
///
/// Job `k` (for k = 1..=n) multiplies by `k`; no job waits for another, so one slot is enough
/// for any `n` and no concurrency can deadlock it. A product that leaves `u128` is
/// [`FactorialError::Overflow`], never a wrapped number or a panic.
pub async fn factorial(n: u32, limiter: &Limiter) -> Result<u128, FactorialError> {
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (n, limiter);
    todo!("factorial: one job per multiplication, awaited one after another outside the limiter")
}

/// What a [`CheckedLimiter`] answers instead of hanging: every slot is held by a job that waits
/// on work of the same limiter, and that work is queued behind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "deadlock: every slot is held by a job waiting on work queued behind it \
     ({held} {} held, {queued} {} queued)",
    plural(*held, "slot", "slots"),
    plural(*queued, "run", "runs")
)]
pub struct Deadlock {
    /// Slots held by waiting jobs: all of them, the limiter's concurrency.
    pub held: usize,
    /// Runs that were waiting for a slot when the deadlock was found, including the one that
    /// completed it. Each of them gets this error.
    pub queued: usize,
}

/// `one` or `many`, to agree with `count`.
fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}

/// A [`Limiter`] that notices the recursive deadlock and says so instead of hanging (stage 3).
///
/// A job *waits on limiter work* while a `run` of the same limiter that it started (awaited in
/// the job's own task) is pending. When every slot is held by a job waiting on limiter work and
/// at least one run is queued, no slot can ever be freed: each queued run then returns
/// `Err(`[`Deadlock`]`)` at once. No timer is involved, and jobs that are merely slow are never
/// reported.
///
/// Clones share their slots. The limiter is `Send + Sync`, and `run`'s future is `Send` whenever
/// the job is: the suite runs it in tasks on two threads at once.
///
/// Limitations: only waits it can see count. Work of this limiter awaited through another task
/// (`tokio::spawn` and a `JoinHandle`) or through a job of *another* limiter is invisible, and
/// such a deadlock still hangs.
#[derive(Debug, Clone)]
pub struct CheckedLimiter {
    // Your fields: the slots, the queue, which jobs are waiting on the limiter. Clones share
    // them, so keep them behind an `Arc` (a `std::sync::Mutex` inside, locked only for short
    // bookkeeping and never across an `.await`).
}

impl CheckedLimiter {
    /// A checked limiter with `concurrency` slots. 0 is [`LimitError::Zero`].
    pub fn new(concurrency: usize) -> Result<Self, LimitError> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = concurrency;
        todo!("CheckedLimiter::new: reject 0, then set up the slots and an empty queue")
    }

    /// Waits for a free slot, then runs `job` while holding it and returns `Ok(output)`; or
    /// returns `Err(Deadlock)` at once if the limiter finds that the slot can never come.
    ///
    /// Slots are handed out in the order runs asked for them. Dropping this future gives back
    /// its slot, or its place in the queue.
    pub async fn run<F: Future>(&self, job: F) -> Result<F::Output, Deadlock> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        drop(job);
        todo!(
            "CheckedLimiter::run: a slot or a place in line; Err(Deadlock) when the line can never move"
        )
    }
}
