//! # Recursive factorial deadlock: reference solution
//!
//! A [`Limiter`] runs jobs with at most `concurrency` of them at once: a job holds one *slot*
//! from the moment it starts until it ends. That is all a limiter promises, and it is enough to
//! deadlock a program that looks innocent:
//!
//! - [`factorial_naive`] makes every step a job, and the job for `n` awaits the job for `n - 1`
//!   **while it holds its own slot**. `n!` then holds `n` slots at once (the job for 1 is a job
//!   too; `0!` and `1!` take one). With fewer slots, the last job waits in the queue for a slot
//!   that only a job waiting on it could free: nothing can ever move again.
//! - [`factorial`] never holds a slot while it waits. Each step is still a job, but a job only
//!   multiplies; the waiting happens between jobs, outside the limiter. One slot is enough for
//!   any `n`, so it cannot deadlock.
//! - [`CheckedLimiter`] turns the hang into an error. It knows which jobs are waiting on work of
//!   the same limiter (a task-local records the job being polled), so it can see the moment when
//!   every slot is held by such a job while more work queues behind them, and answer the queued
//!   runs with [`Deadlock`] at once, without a timer.
//!
//! Results are `u128`, and [`MAX_N`]` = 34` is the largest `n` whose factorial fits: larger `n`
//! are [`FactorialError::Overflow`], never a wrapped number or a panic.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Semaphore, oneshot};

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
/// `max(n, 1)` slots and deadlocks with fewer: the job for 1 waits for a slot that only a job
/// waiting on it could free.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use factorial_deadlock::{Limiter, factorial_naive};
///
/// let limiter = Limiter::new(4).unwrap();
/// assert_eq!(factorial_naive(4, &limiter).await, Ok(24));
/// // 5! needs 5 slots at once: on 4 it waits for ever (here, until the timeout gives up).
/// let five = tokio::time::timeout(Duration::from_secs(60), factorial_naive(5, &limiter));
/// assert!(five.await.is_err());
/// # }
/// ```
pub async fn factorial_naive(n: u32, limiter: &Limiter) -> Result<u128, FactorialError> {
    // Checked before any job starts: a huge `n` must not first recurse a billion levels deep.
    if n > MAX_N {
        return Err(FactorialError::Overflow { n });
    }
    Ok(naive(n, limiter).await)
}

/// The recursion of [`factorial_naive`], for an `n` known to fit.
async fn naive(n: u32, limiter: &Limiter) -> u128 {
    limiter
        .run(async move {
            if n <= 1 {
                return 1;
            }
            // Still inside this job, so still holding its slot, while the job for n - 1 waits
            // for one. That is the deadlock. `Box::pin`: an async fn that awaits itself would be
            // a future containing itself, of infinite size; the box makes it a pointer.
            let smaller = Box::pin(naive(n - 1, limiter)).await;
            // Cannot overflow: n <= MAX_N.
            u128::from(n) * smaller
        })
        .await
}

/// `n!`, with every multiplication a job through `limiter`, never holding a slot while it waits
/// (stage 2).
///
/// Job `k` (for k = 1..=n) multiplies the product so far by `k` and ends. The next job starts
/// only after it, from out here, where no slot is held: one slot is enough for any `n`, so no
/// concurrency can deadlock it, and a busy limiter only makes it wait its turn.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use factorial_deadlock::{FactorialError, Limiter, factorial};
///
/// let one_slot = Limiter::new(1).unwrap();
/// assert_eq!(factorial(5, &one_slot).await, Ok(120));
/// assert_eq!(factorial(35, &one_slot).await, Err(FactorialError::Overflow { n: 35 }));
/// # }
/// ```
pub async fn factorial(n: u32, limiter: &Limiter) -> Result<u128, FactorialError> {
    let mut product: u128 = 1;
    for k in 1..=n {
        // `checked_mul` says when the product leaves u128: at k = 35, after 35 quick jobs, so
        // even n = u32::MAX fails fast.
        product = limiter
            .run(async move { product.checked_mul(u128::from(k)) })
            .await
            .ok_or(FactorialError::Overflow { n })?;
    }
    Ok(product)
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

/// A job of a [`CheckedLimiter`], unique within it.
type JobId = u64;

/// The id of the next [`CheckedLimiter`]: ids tell limiters apart in the task-local, so a run
/// of one limiter inside a job of another is not taken for waiting on the same limiter.
static NEXT_LIMITER: AtomicU64 = AtomicU64::new(0);

/// The [`CheckedLimiter`] job being polled right now.
#[derive(Debug, Clone, Copy)]
struct CurrentJob {
    limiter: u64,
    job: JobId,
}

tokio::task_local! {
    /// Set while a `CheckedLimiter` polls one of its jobs: a `run` that starts in here is work
    /// that job waits on.
    static CURRENT_JOB: CurrentJob;
}

/// A [`Limiter`] that notices the recursive deadlock and says so instead of hanging (stage 3).
///
/// A job *waits on limiter work* while a `run` of the same limiter that it started (awaited in
/// the job's own task) is pending. When every slot is held by a job waiting on limiter work and
/// at least one run is queued, no slot can ever be freed: each queued run then returns
/// `Err(`[`Deadlock`]`)` at once. No timer is involved, and jobs that are merely slow are never
/// reported, since a job that is not waiting on the limiter will finish and free its slot.
///
/// Clones share their slots. The limiter is `Send + Sync`, and `run`'s future is `Send` whenever
/// the job is: its state is an `Arc` of a `std::sync::Mutex` that is never held across an
/// `.await`.
///
/// Limitations: only waits it can see count. Work of this limiter awaited through another task
/// (`tokio::spawn` and a `JoinHandle`) or through a job of *another* limiter is invisible, and
/// such a deadlock still hangs. And a job counts as waiting as long as a run it started is
/// pending, even if it could also finish some other way (a `timeout` around the inner run).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use factorial_deadlock::{CheckedLimiter, Deadlock};
///
/// let limiter = CheckedLimiter::new(1).unwrap();
/// // The only job awaits a run of its own limiter, which can never get a slot: told at once.
/// let nested = limiter.run(async { limiter.run(async { 7 }).await });
/// assert_eq!(nested.await, Ok(Err(Deadlock { held: 1, queued: 1 })));
/// // The error has travelled back up, the slot is free again.
/// assert_eq!(limiter.run(async { 7 }).await, Ok(7));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CheckedLimiter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// This limiter's id, shared by its clones.
    limiter: u64,
    concurrency: usize,
    /// Only locked for short, synchronous bookkeeping: never across an `.await`, and never while
    /// dropping something whose `Drop` locks it again.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The jobs holding a slot, each with the number of runs of this limiter it is awaiting.
    running: HashMap<JobId, usize>,
    /// Runs waiting for a slot, first come first served, each with the channel that will tell
    /// it the outcome: a slot of its own, or the deadlock.
    queue: VecDeque<(JobId, oneshot::Sender<Result<(), Deadlock>>)>,
    next_job: JobId,
}

impl CheckedLimiter {
    /// A checked limiter with `concurrency` slots. 0 is [`LimitError::Zero`].
    pub fn new(concurrency: usize) -> Result<Self, LimitError> {
        if concurrency == 0 {
            return Err(LimitError::Zero);
        }
        let shared = Shared {
            limiter: NEXT_LIMITER.fetch_add(1, Ordering::Relaxed),
            concurrency,
            state: Mutex::default(),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Waits for a free slot, then runs `job` while holding it and returns `Ok(output)`; or
    /// returns `Err(Deadlock)` at once if the limiter finds that the slot can never come.
    ///
    /// Slots are handed out in the order runs asked for them. Dropping this future gives back
    /// its slot, or its place in the queue.
    pub async fn run<F: Future>(&self, job: F) -> Result<F::Output, Deadlock> {
        // Started inside one of our own jobs: that job now waits on us, until we are done.
        let parent = CURRENT_JOB
            .try_with(|current| (current.limiter == self.shared.limiter).then_some(current.job))
            .ok()
            .flatten();
        let _waited_on = parent.map(|job| WaitedOn::new(&self.shared, job));

        let slot = self.acquire().await?;
        let current = CurrentJob {
            limiter: self.shared.limiter,
            job: slot.job,
        };
        Ok(CURRENT_JOB.scope(current, job).await)
    }

    /// A slot at once if one is free, otherwise a place at the back of the queue.
    async fn acquire(&self) -> Result<Slot, Deadlock> {
        let (job, outcome) = {
            let mut state = self.shared.lock();
            let job = state.next_job;
            state.next_job += 1;
            // A free slot means nobody is queued: a released slot goes straight to the first in
            // line, never back to a pool where a newcomer could take it.
            if state.running.len() < self.shared.concurrency {
                state.running.insert(job, 0);
                return Ok(Slot {
                    shared: self.shared.clone(),
                    job,
                });
            }
            let (sender, outcome) = oneshot::channel();
            state.queue.push_back((job, sender));
            // Queueing is the one moment the deadlock can start: every other change frees a slot,
            // starts a job that is not waiting yet, or ends a wait.
            state.report_deadlock(self.shared.concurrency);
            (job, outcome)
        };
        InLine {
            shared: self.shared.clone(),
            job,
            outcome,
            settled: false,
        }
        .wait()
        .await
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few lines of bookkeeping that cannot panic halfway, so a
        // poisoned lock still holds consistent state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    /// Frees `job`'s slot by handing it to the first run in line, if there is one.
    fn release(&mut self, job: JobId) {
        self.running.remove(&job);
        while let Some((next, sender)) = self.queue.pop_front() {
            // Fails only if that run was dropped meanwhile; then the next one gets the slot.
            if sender.send(Ok(())).is_ok() {
                self.running.insert(next, 0);
                return;
            }
        }
    }

    /// If every slot is held by a job awaiting this limiter and a run is queued, no slot can ever
    /// be freed: answer every queued run with the deadlock.
    fn report_deadlock(&mut self, concurrency: usize) {
        let stuck = self.running.len() == concurrency
            && !self.queue.is_empty()
            && self.running.values().all(|&awaited| awaited > 0);
        if stuck {
            let deadlock = Deadlock {
                held: concurrency,
                queued: self.queue.len(),
            };
            for (_, sender) in self.queue.drain(..) {
                // A run dropped meanwhile no longer needs to know.
                let _ = sender.send(Err(deadlock));
            }
        }
    }
}

/// A held slot of a [`CheckedLimiter`]. Dropping it (the job ended or was cancelled) hands the
/// slot to the first run in line.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    job: JobId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.lock().release(self.job);
    }
}

/// Marks a running job as waiting on one more run of its limiter, until dropped.
#[derive(Debug)]
struct WaitedOn {
    shared: Arc<Shared>,
    job: JobId,
}

impl WaitedOn {
    fn new(shared: &Arc<Shared>, job: JobId) -> Self {
        // The job is running: it is the one polling us, from inside its slot.
        if let Some(awaited) = shared.lock().running.get_mut(&job) {
            *awaited += 1;
        }
        Self {
            shared: shared.clone(),
            job,
        }
    }
}

impl Drop for WaitedOn {
    fn drop(&mut self) {
        // The job may have ended first (if it let this run escape in its output); job ids are
        // never reused, so a missing entry simply means there is nothing left to count.
        if let Some(awaited) = self.shared.lock().running.get_mut(&self.job) {
            *awaited -= 1;
        }
    }
}

/// A run waiting in the queue for its outcome.
#[derive(Debug)]
struct InLine {
    shared: Arc<Shared>,
    job: JobId,
    outcome: oneshot::Receiver<Result<(), Deadlock>>,
    /// Set once the outcome is received; until then, dropping must clean up after us.
    settled: bool,
}

impl InLine {
    async fn wait(mut self) -> Result<Slot, Deadlock> {
        let outcome = (&mut self.outcome).await;
        self.settled = true;
        match outcome {
            Ok(Ok(())) => Ok(Slot {
                shared: self.shared.clone(),
                job: self.job,
            }),
            Ok(Err(deadlock)) => Err(deadlock),
            // The sender leaves the queue only by sending, or in our own `drop`.
            Err(_) => unreachable!("a queued run is always told its outcome"),
        }
    }
}

impl Drop for InLine {
    /// The run was cancelled while queued: leave the queue, or pass on a slot that was handed
    /// over after our last poll, or it would be held by nobody forever.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut state = self.shared.lock();
        if let Some(at) = state.queue.iter().position(|&(job, _)| job == self.job) {
            // Dropping the removed sender under the lock is fine: it only wakes our receiver.
            state.queue.remove(at);
        } else if let Ok(Ok(())) = self.outcome.try_recv() {
            state.release(self.job);
        }
    }
}
