//! # Supervised workers: reference solution
//!
//! Producers put items on a **bounded queue**; a fixed number of **long-lived consumers** take
//! them off one at a time and run the work on each; a **supervisor** watches the consumers and
//! decides what a failure means. It is the shape of most queue-driven services: a mail sender,
//! a thumbnailer, an indexer behind a message broker.
//!
//! The decisions that shape the code:
//!
//! - **Backpressure by a bounded channel.** `mpsc::channel(capacity)`: a producer's `send` waits
//!   while the queue is full, so producers can never run further ahead of the consumers than
//!   `capacity` items. An unbounded queue would let a fast producer fill memory instead.
//! - **Closing the queue is how the pool is told to finish.** The pool hands the only
//!   [`Sender`](mpsc::Sender) to the caller and keeps none. When the last sender is dropped, the
//!   consumers drain what is queued, `recv` returns `None`, and each consumer *returns*. Nobody is
//!   aborted, so no item is cut off half way.
//! - **The supervisor learns of a failure from the consumer's end.** The consumers run in a
//!   [`JoinSet`] owned by the supervisor task, and a failing consumer returns its failure.
//!   `join_next` wakes the supervisor the instant a consumer ends: there is no polling interval to
//!   wait for, and a replacement can never run beside the consumer it replaces, because the old
//!   one has ended by the time anyone hears of it.
//! - **Restarts are timers the supervisor waits on beside the consumers.** A failure schedules
//!   a replacement after a backoff; `select!` waits for whichever comes first, the next consumer
//!   to end or the next backoff to run out. Sleeping the backoff in the supervisor's loop instead
//!   would leave every other consumer unsupervised meanwhile.
//!
//! In production this is `tokio::sync::mpsc` plus a `JoinSet`, written much as here; the restart
//! policy is what OTP supervisors (restart intensity and period) and Kubernetes
//! (`CrashLoopBackOff`) do, and crates such as `backon` package the backoff arithmetic.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Mutex, mpsc};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

/// Why a [`Pool`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Without consumers nothing ever leaves the queue: producers would wait for ever.
    #[error("a pool needs at least one consumer: consumers must be 1 or more, got 0")]
    NoConsumers,
    /// A queue of capacity 0 holds nothing (and tokio's `mpsc::channel(0)` panics).
    #[error("the queue's capacity must be 1 or more, got 0")]
    ZeroCapacity,
}

/// What happens to the item a consumer was working on when it failed, under
/// [`Policy::Restart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The item is given up and listed in [`Report::lost`]: no item is ever worked on twice.
    AtMostOnce,
    /// The replacement consumer works on the item again, first thing: no item is ever lost, so
    /// the work must be safe to repeat.
    AtLeastOnce,
}

/// How a failed consumer is replaced, and how many failures the pool tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// What happens to the failed item.
    pub delivery: Delivery,
    /// The wait before a slot's first restart; each further failure in a row doubles it.
    pub first_backoff: Duration,
    /// The longest wait before a restart.
    pub max_backoff: Duration,
    /// Restarts allowed within any `window`; one failure more is
    /// [`PoolError::BudgetExhausted`].
    pub max_restarts: usize,
    /// The sliding window the restart budget is counted over.
    pub window: Duration,
}

impl Restart {
    /// At most once, backoff 100, 200, 400, 400, ... ms, at most 3 restarts within 1 s.
    pub const fn at_most_once() -> Self {
        Self {
            delivery: Delivery::AtMostOnce,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            max_restarts: 3,
            window: Duration::from_secs(1),
        }
    }

    /// [`at_most_once`](Self::at_most_once), but the failed item is retried.
    pub const fn at_least_once() -> Self {
        Self {
            delivery: Delivery::AtLeastOnce,
            ..Self::at_most_once()
        }
    }

    /// The wait before restarting a slot whose consumer has now failed `failures_in_a_row`
    /// times in a row: `first_backoff × 2^(failures_in_a_row − 1)`, capped at `max_backoff`
    /// (and no wait at all for 0 failures).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let restart = supervised_workers::Restart::at_least_once();
    /// let waits: Vec<_> = (1..=5).map(|n| restart.backoff(n).as_millis()).collect();
    /// assert_eq!(waits, [100, 200, 400, 400, 400]);
    /// assert_eq!(restart.backoff(u32::MAX), Duration::from_millis(400));
    /// ```
    pub fn backoff(&self, failures_in_a_row: u32) -> Duration {
        let Some(doublings) = failures_in_a_row.checked_sub(1) else {
            return Duration::ZERO;
        };
        // 2^doublings overflows a u32 after 31 doublings and the product can overflow a
        // Duration: saturate both, the cap is far below either limit anyway.
        let factor = 1_u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// What the supervisor does when a consumer fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Stop everything at the first failure and return it as [`PoolError::Failed`].
    #[default]
    FailFast,
    /// Replace the failed consumer after a backoff, within a restart budget.
    Restart(Restart),
}

/// Why a consumer's work on an item failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Cause<E> {
    /// The work returned this error.
    #[error("{0}")]
    Error(E),
    /// The work panicked with this message.
    #[error("panicked: {0}")]
    Panicked(String),
}

/// One consumer's failure: which consumer, on which item, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consumer {worker} failed on {item:?}: {cause}")]
pub struct Failure<T, E> {
    /// The consumer's slot, `0..consumers` (a replacement takes over its slot's number).
    pub worker: usize,
    /// The item it was working on.
    pub item: T,
    /// What went wrong.
    pub cause: Cause<E>,
}

/// Why a pool stopped before its queue was closed and drained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError<T, E> {
    /// Under [`Policy::FailFast`]: the first failure.
    #[error("the pool stopped at the first failure: {0}")]
    Failed(Failure<T, E>),
    /// Under [`Policy::Restart`]: a failure when the budget had no restart left.
    #[error(
        "the pool stopped: restart budget exhausted after {restarts} restart(s), then {failure}"
    )]
    BudgetExhausted {
        /// The failure that found no restart left.
        failure: Failure<T, E>,
        /// Restarts made before it, over the whole run.
        restarts: usize,
    },
}

/// How a pool ended when its queue was closed and every item taken off it was dealt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<T, E> {
    /// Consumers started again after a failure.
    pub restarts: usize,
    /// Under [`Delivery::AtMostOnce`], the failures whose items were given up, in order.
    pub lost: Vec<Failure<T, E>>,
}

/// The result of a pool's run.
pub type Outcome<T, E> = Result<Report<T, E>, PoolError<T, E>>;

/// A pool to configure, then [`start`](Pool::start).
///
/// ```
/// # use supervised_workers::Pool;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let (queue, supervisor) = Pool::new(3, 1).unwrap().start(|_worker, n: u64| async move {
///     tokio::time::sleep(std::time::Duration::from_millis(n)).await;
///     Ok::<(), std::io::Error>(())
/// });
/// tokio::spawn(async move {
///     for n in [30, 10, 20, 40] {
///         queue.send(n).await.unwrap();
///     }
///     // `queue` is dropped here: the queue closes, and the consumers finish once it is empty.
/// });
/// let report = supervisor.await.unwrap();
/// assert_eq!(report.restarts, 0);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    consumers: usize,
    capacity: usize,
    policy: Policy,
}

impl Pool {
    /// A pool of `consumers` consumers on a queue that holds at most `capacity` items, failing
    /// fast (see [`policy`](Self::policy)).
    pub fn new(consumers: usize, capacity: usize) -> Result<Self, ConfigError> {
        if consumers == 0 {
            return Err(ConfigError::NoConsumers);
        }
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        Ok(Self {
            consumers,
            capacity,
            policy: Policy::FailFast,
        })
    }

    /// What the supervisor does when a consumer fails.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Starts the consumers and their supervisor; returns the queue's sender and the
    /// supervisor's handle.
    ///
    /// Send items with the sender (clone it for several producers) and drop every clone when
    /// there are no more: the consumers finish what is queued, and the supervisor returns
    /// `Ok(report)` once they all have. `work(worker, item)` runs on one item; an `Err` or a
    /// panic is a failure of that consumer, which the policy deals with.
    ///
    /// The bounds say where things go: the work is shared by every consumer task (`Sync`, in an
    /// `Arc`), its futures and the items move into tasks that may run on other threads and
    /// outlive this call (`Send + 'static`), and an item is cloned before its work starts so that
    /// a failure can still name it (and, at least once, retry it).
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn start<T, E, W, F>(self, work: W) -> (mpsc::Sender<T>, Supervisor<T, E>)
    where
        T: Clone + Send + 'static,
        E: Send + 'static,
        W: Fn(usize, T) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let (queue, receiver) = mpsc::channel(self.capacity);
        let shared = Shared {
            queue: Arc::new(Mutex::new(receiver)),
            work: Arc::new(work),
        };
        let mut consumers = JoinSet::new();
        for worker in 0..self.consumers {
            consumers.spawn(consume(worker, shared.clone(), None));
        }
        let task = tokio::spawn(supervise(consumers, shared, self.policy, self.consumers));
        (queue, Supervisor { task })
    }
}

/// The running pool: `.await` it for the [`Outcome`]. Dropping it stops the pool at once:
/// the supervisor's task is aborted, and with it the consumers and anything they were doing.
#[derive(Debug)]
#[must_use = "dropping the supervisor stops the pool"]
pub struct Supervisor<T, E> {
    task: JoinHandle<Outcome<T, E>>,
}

impl<T, E> Future for Supervisor<T, E> {
    type Output = Outcome<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task)
            .poll(cx)
            .map(|joined| match joined {
                Ok(outcome) => outcome,
                // Only `Drop` aborts the task, so an error here is a panic: pass it on.
                Err(error) => std::panic::resume_unwind(error.into_panic()),
            })
    }
}

impl<T, E> Drop for Supervisor<T, E> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What every consumer shares: the receiving end of the queue and the work.
struct Shared<T, W> {
    /// One receiver for several consumers: the mutex lets them take turns waiting on it.
    queue: Arc<Mutex<mpsc::Receiver<T>>>,
    work: Arc<W>,
}

// By hand: `derive(Clone)` would ask for `T: Clone` and `W: Clone`, and only the `Arc`s are
// cloned.
impl<T, W> Clone for Shared<T, W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            work: self.work.clone(),
        }
    }
}

/// How one consumer ended.
struct Exit<T, E> {
    worker: usize,
    /// Items it finished before it ended: a success ends a slot's run of failures.
    processed: usize,
    /// `Ok` when it found the queue closed and empty.
    result: Result<(), Failure<T, E>>,
}

/// One consumer: take an item (the one to retry first, if any), work on it, repeat until the
/// queue is closed and empty, or until an item fails.
async fn consume<T, E, W, F>(
    worker: usize,
    shared: Shared<T, W>,
    mut retry: Option<T>,
) -> Exit<T, E>
where
    T: Clone,
    W: Fn(usize, T) -> F,
    F: Future<Output = Result<(), E>>,
{
    let mut processed = 0;
    loop {
        let item = match retry.take() {
            Some(item) => item,
            None => {
                // The lock is held across `recv().await` on purpose (one consumer waits on the
                // queue, the others wait for the lock), but the guard is a temporary of this
                // statement: it is dropped at the `;`, before the work starts. Held across the
                // work, it would let one consumer work at a time.
                let next = shared.queue.lock().await.recv().await;
                let Some(item) = next else {
                    return Exit {
                        worker,
                        processed,
                        result: Ok(()),
                    };
                };
                item
            }
        };
        // A panic in the work is a failure like an `Err`, caught here so that the failure can
        // still name the item.
        let cause = match AssertUnwindSafe((shared.work)(worker, item.clone()))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => {
                processed += 1;
                continue;
            }
            Ok(Err(error)) => Cause::Error(error),
            Err(panic) => Cause::Panicked(panic_message(panic.as_ref())),
        };
        return Exit {
            worker,
            processed,
            result: Err(Failure {
                worker,
                item,
                cause,
            }),
        };
    }
}

/// The supervisor: waits for consumers to end and for backoffs to run out, whichever comes
/// first, until every consumer has ended because the queue closed, or the policy gives up.
async fn supervise<T, E, W, F>(
    mut consumers: JoinSet<Exit<T, E>>,
    shared: Shared<T, W>,
    policy: Policy,
    slots: usize,
) -> Outcome<T, E>
where
    T: Clone + Send + 'static,
    E: Send + 'static,
    W: Fn(usize, T) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send + 'static,
{
    let mut report = Report {
        restarts: 0,
        lost: Vec::new(),
    };
    // Replacements waiting out their backoff: each yields its slot and the item to retry.
    let mut backoffs: JoinSet<(usize, Option<T>)> = JoinSet::new();
    let mut failures_in_a_row = vec![0_u32; slots];
    // The instants of the failures that were restarted within the last window, oldest first.
    let mut recent: VecDeque<Instant> = VecDeque::new();

    loop {
        // `join_next` returns `None` on an empty set, which disables its branch; when both sets
        // are empty, every slot has ended because the queue closed.
        tokio::select! {
            Some(joined) = consumers.join_next() => {
                let exit = unwrap_joined(joined);
                let Err(failure) = exit.result else { continue };
                let Policy::Restart(restart) = policy else {
                    // Returning drops both sets, which aborts every other consumer now.
                    return Err(PoolError::Failed(failure));
                };
                let now = Instant::now();
                while recent.front().is_some_and(|&at| now - at >= restart.window) {
                    recent.pop_front();
                }
                if recent.len() >= restart.max_restarts {
                    return Err(PoolError::BudgetExhausted {
                        failure,
                        restarts: report.restarts,
                    });
                }
                // The restart is decided, and counted against the budget, now: counting it
                // when the replacement starts would let failures during a backoff slip past.
                recent.push_back(now);
                report.restarts += 1;

                let in_a_row = &mut failures_in_a_row[exit.worker];
                *in_a_row = if exit.processed > 0 { 1 } else { *in_a_row + 1 };
                let wait = restart.backoff(*in_a_row);
                let retry = match restart.delivery {
                    Delivery::AtLeastOnce => Some(failure.item),
                    Delivery::AtMostOnce => {
                        report.lost.push(failure);
                        None
                    }
                };
                let worker = exit.worker;
                backoffs.spawn(async move {
                    tokio::time::sleep(wait).await;
                    (worker, retry)
                });
            }
            Some(waited) = backoffs.join_next() => {
                let (worker, retry) = unwrap_joined(waited);
                consumers.spawn(consume(worker, shared.clone(), retry));
            }
            else => return Ok(report),
        }
    }
}

/// A task of ours that ended: only a panic can make it an error (nothing aborts them while the
/// supervisor lives), and a panic is passed on.
fn unwrap_joined<R>(joined: Result<R, JoinError>) -> R {
    joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// The text of a panic: `panic!("literal")` carries a `&str`, a formatted one a `String`.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
