//! # Supervised workers
//!
//! Producers put items on a bounded queue; a fixed number of long-lived consumers take them off
//! and work on them; a supervisor watches the consumers and decides what a failure means: stop
//! everything, or replace the consumer after a backoff, within a budget. Read `README.md` beside
//! this file for the stages, and run `just test supervised-workers` to see how far you are.
//!
//! You write [`Pool::new`], [`Pool::start`] (and the consumer and supervisor tasks it starts)
//! and [`Restart::backoff`]; the types around them, and the [`Supervisor`] handle, are given.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
    pub fn backoff(&self, failures_in_a_row: u32) -> Duration {
        let _ = (self, failures_in_a_row);
        todo!("Restart::backoff: first_backoff doubled for each failure after the first, capped")
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
        let _ = (consumers, capacity);
        todo!("Pool::new: check the arguments, then keep them (policy: FailFast)")
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
        let _ = (self.consumers, self.capacity, self.policy, work);
        todo!("Pool::start: a bounded queue, the consumers in a JoinSet, and the supervisor task")
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
