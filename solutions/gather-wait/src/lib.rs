//! # Gather and wait: reference solution
//!
//! Four ways to run several pieces of work at once and combine what they give back, each the
//! Rust answer to an `asyncio` function:
//!
//! | here | asyncio | what it is in production Rust |
//! |---|---|---|
//! | [`gather`], [`gather_settled`] | `gather()`, `gather(return_exceptions=True)` | `futures::future::try_join_all`, `join_all` |
//! | [`TaskGroup`] | `TaskGroup` | `tokio::task::JoinSet` with `abort_all` and a drain |
//! | [`as_completed`] | `as_completed()` | `futures::stream::FuturesUnordered` |
//! | [`wait`] | `wait(return_when=..., timeout=...)` | `select!` / `timeout` over `JoinHandle`s |
//!
//! Two ideas carry the whole kata:
//!
//! - **A future is lazy, a task is eager.** A future does nothing until something polls it, and
//!   many futures can be polled by one task ([`gather`], [`as_completed`]): no spawning, no
//!   `Send` or `'static` bounds, and the jobs may borrow from the caller. A spawned task starts
//!   at once and runs on its own ([`TaskGroup`], [`wait`]).
//! - **Dropping is cancelling.** A future that is dropped never runs again. So a [`gather`] that
//!   returns early cancels the jobs still running just by returning, and a stream that is
//!   dropped cancels what it still held. Tasks are different: dropping a `JoinHandle` lets the
//!   task run on, which is exactly what [`wait`] needs and exactly what a [`TaskGroup`] must not
//!   allow.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use futures::stream::{FuturesUnordered, Stream, StreamExt};
use tokio::task::{AbortHandle, Id, JoinError, JoinHandle, JoinSet};

// ---------------------------------------------------------------------------------------------
// Stage 1: gather, in the caller's task.

/// Runs every job at once, in the calling task, and returns their values in input order; or
/// the first error, as soon as it happens.
///
/// On the first `Err` the jobs still running are **dropped**, which in Rust cancels them: they
/// stop at their current `.await` and never run again. (`asyncio.gather` leaves them running.)
/// Nothing is spawned, so the jobs need neither `Send` nor `'static`: they may borrow. Like every
/// `async fn`, nothing starts before the returned future is first polled.
///
/// This is `futures::future::try_join_all`; in production code, call that.
///
/// ```
/// # use std::time::Duration;
/// # use gather_wait::gather;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let prices = vec![30, 10, 20];
/// // The jobs borrow `prices`: fine, since gather spawns nothing.
/// let doubled = gather(prices.iter().map(|price| async move {
///     tokio::time::sleep(Duration::from_millis(*price)).await;
///     Ok::<_, String>(price * 2)
/// }))
/// .await;
/// assert_eq!(doubled, Ok(vec![60, 20, 40]));
/// # }
/// ```
pub async fn gather<I, T, E>(jobs: I) -> Result<Vec<T>, E>
where
    I: IntoIterator,
    I::Item: Future<Output = Result<T, E>>,
{
    let mut finishing = indexed(jobs);
    let mut values = Vec::new();
    while let Some((index, outcome)) = finishing.next().await {
        // `?` returns, and returning drops `finishing` with every job still in it: that drop
        // is the cancellation.
        values.push((index, outcome?));
    }
    Ok(in_input_order(values))
}

/// Runs every job at once, in the calling task, and returns every outcome in input order, once
/// the last job has finished: a failure neither stops nor cancels the others.
///
/// This is `asyncio.gather(..., return_exceptions=True)`, and `futures::future::join_all`.
///
/// ```
/// # use gather_wait::gather_settled;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let quotients = gather_settled([1, 0, 2].map(|n| async move {
///     if n == 0 { Err("divided by zero") } else { Ok(10 / n) }
/// }))
/// .await;
/// assert_eq!(quotients, vec![Ok(10), Err("divided by zero"), Ok(5)]);
/// # }
/// ```
pub async fn gather_settled<I>(jobs: I) -> Vec<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future,
{
    let outcomes = indexed(jobs).collect().await;
    in_input_order(outcomes)
}

/// Every job paired with its input index, in one `FuturesUnordered`: whoever polls it polls them
/// all, and it yields each `(index, output)` as that job finishes. Only the jobs that were woken
/// are polled again, so a thousand jobs cost no more per wake-up than ten.
fn indexed<I>(
    jobs: I,
) -> FuturesUnordered<impl Future<Output = (usize, <I::Item as Future>::Output)>>
where
    I: IntoIterator,
    I::Item: Future,
{
    jobs.into_iter()
        .enumerate()
        .map(|(index, job)| async move { (index, job.await) })
        .collect()
}

/// `(input index, value)` pairs, in whatever order they finished, as values in input order.
fn in_input_order<T>(mut pairs: Vec<(usize, T)>) -> Vec<T> {
    pairs.sort_unstable_by_key(|&(index, _)| index);
    pairs.into_iter().map(|(_, value)| value).collect()
}

// ---------------------------------------------------------------------------------------------
// Stage 2: a task group.

/// Why a [`TaskGroup`] failed: the first task that did not return `Ok`, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError<E> {
    /// The task returned `Err(error)`.
    #[error("task {task:?} failed: {error}")]
    Failed { task: String, error: E },
    /// The task panicked; `message` is what it panicked with.
    #[error("task {task:?} panicked: {message}")]
    Panicked { task: String, message: String },
    /// The task was aborted through the [`AbortHandle`] that [`TaskGroup::spawn`] returned, so
    /// its result is missing.
    #[error("task {task:?} was cancelled before it finished")]
    Cancelled { task: String },
}

/// Named tasks that succeed together or fail together: `asyncio.TaskGroup`, built on tokio's
/// [`JoinSet`].
///
/// - [`spawn`](Self::spawn) starts a task at once (tasks are eager), whether or not anyone
///   awaits [`join`](Self::join) yet.
/// - [`join`](Self::join) returns every value in spawn order once all have succeeded; on the
///   first failure it aborts the others **and waits until they are gone** before it returns
///   that failure, named. When `join` returns, nothing of the group is left running.
/// - Dropping the group, or the `join` future half way, aborts every task at once: the
///   `JoinSet` inside does that when it is dropped. This is structured concurrency: no task of
///   the group outlives it.
///
/// In production code, use a [`JoinSet`] directly (or `tokio_util::task::TaskTracker` when
/// tasks need no results): this type is the few lines around it that a `TaskGroup` adds.
///
/// ```
/// # use std::time::Duration;
/// # use gather_wait::{GroupError, TaskGroup};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut group = TaskGroup::new();
/// group.spawn("slow", async {
///     tokio::time::sleep(Duration::from_secs(10)).await;
///     Ok(1)
/// });
/// group.spawn("broken", async { Err("no disk") });
/// // "broken" fails at once, so "slow" is aborted: no waiting for its 10 s.
/// let failed = GroupError::Failed { task: "broken".to_owned(), error: "no disk" };
/// assert_eq!(group.join().await, Err(failed));
/// # }
/// ```
pub struct TaskGroup<T, E> {
    set: JoinSet<Result<T, E>>,
    /// Each task's place in spawn order and its name, by tokio's task id: a `JoinError` carries
    /// only the id, so this is how a panic or an abort finds its task's name.
    tasks: HashMap<Id, (usize, String)>,
}

impl<T, E> Default for TaskGroup<T, E> {
    fn default() -> Self {
        Self {
            set: JoinSet::new(),
            tasks: HashMap::new(),
        }
    }
}

impl<T, E> TaskGroup<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `job` as the task `name`; it starts running at once. The handle aborts this one
    /// task, which then makes the group fail with [`GroupError::Cancelled`].
    ///
    /// `Send + 'static` because the job becomes a task: tokio may run it on another thread,
    /// and it may outlive the caller's stack frame.
    pub fn spawn<F>(&mut self, name: impl Into<String>, job: F) -> AbortHandle
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let handle = self.set.spawn(job);
        let place = self.tasks.len();
        self.tasks.insert(handle.id(), (place, name.into()));
        handle
    }

    /// Waits for every task: all values in spawn order, or the first failure once every other
    /// task has been aborted and is gone.
    pub async fn join(mut self) -> Result<Vec<T>, GroupError<E>> {
        let mut values = Vec::with_capacity(self.tasks.len());
        // `join_next_with_id` hands results over in the order tasks *finish*, so a failure is
        // seen the moment it happens, not after the tasks spawned before it.
        while let Some(joined) = self.set.join_next_with_id().await {
            let failure = match joined {
                Ok((id, Ok(value))) => {
                    values.push((self.take(id).0, value));
                    continue;
                }
                Ok((id, Err(error))) => GroupError::Failed {
                    task: self.take(id).1,
                    error,
                },
                // A JoinError is one of two things, and they must not be confused: the task
                // panicked (its payload is the message), or it was aborted (there is none).
                Err(error) if error.is_panic() => GroupError::Panicked {
                    task: self.take(error.id()).1,
                    message: panic_message(error.into_panic()),
                },
                Err(error) => GroupError::Cancelled {
                    task: self.take(error.id()).1,
                },
            };
            // `abort_all` only asks: each task stops at its next poll. Draining the set waits
            // for every one of them to be gone, so none outlives `join`.
            self.set.abort_all();
            while self.set.join_next().await.is_some() {}
            return Err(failure);
        }
        Ok(in_input_order(values))
    }

    /// The place and name of the task `id`, which has just finished.
    fn take(&mut self, id: Id) -> (usize, String) {
        self.tasks
            .remove(&id)
            .expect("every task of the set was spawned through the group")
    }
}

/// The text a task panicked with. `panic!("literal")` carries a `&'static str`,
/// `panic!("{x}")` a `String`: both are messages.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "(a panic whose payload is not text)".to_owned(),
            |message| (*message).to_owned(),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 3: as_completed and wait.

/// A stream of `(input index, output)`, one item per job, in the order the jobs **finish**.
///
/// The jobs run in whichever task polls the stream, all at once; nothing starts before its
/// first poll. Dropping the stream drops (cancels) the jobs that have not finished.
///
/// This is `futures::stream::FuturesUnordered` with an index added to each output.
///
/// ```
/// # use std::time::Duration;
/// # use futures::StreamExt;
/// # use gather_wait::as_completed;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let finishing = as_completed([300, 100, 200].map(|ms| async move {
///     tokio::time::sleep(Duration::from_millis(ms)).await;
///     ms
/// }));
/// let order: Vec<_> = finishing.collect().await;
/// assert_eq!(order, vec![(1, 100), (2, 200), (0, 300)]);
/// # }
/// ```
pub fn as_completed<I>(jobs: I) -> impl Stream<Item = (usize, <I::Item as Future>::Output)>
where
    I: IntoIterator,
    I::Item: Future,
{
    indexed(jobs)
}

/// When [`wait`] returns (besides its timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnWhen {
    /// As soon as one task has finished, whatever its outcome.
    FirstCompleted,
    /// As soon as one task has returned `Err` or panicked; when none does, once all finished.
    /// (A task aborted from elsewhere is not an exception, as in asyncio.)
    FirstException,
    /// Once every task has finished.
    #[default]
    AllCompleted,
}

impl ReturnWhen {
    fn stops_at<T, E>(self, outcome: &Result<Result<T, E>, JoinError>) -> bool {
        match self {
            ReturnWhen::FirstCompleted => true,
            ReturnWhen::FirstException => match outcome {
                Ok(result) => result.is_err(),
                Err(error) => error.is_panic(),
            },
            ReturnWhen::AllCompleted => false,
        }
    }
}

/// What [`wait`] saw: the tasks that finished and the ones still running.
#[derive(Debug)]
pub struct Waited<T> {
    /// `(input index, what awaiting its handle gave)` for each task seen finishing, in the
    /// order they finished.
    pub done: Vec<(usize, Result<T, JoinError>)>,
    /// `(input index, handle)` of each task still running, in input order. They were **not**
    /// cancelled: await them, abort them, or drop the handles and let them run.
    pub pending: Vec<(usize, JoinHandle<T>)>,
}

/// [`wait`] was given nothing to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// An empty list of tasks: nothing could ever complete. (asyncio raises `ValueError`.)
    #[error("wait() needs at least one task: with none, nothing could ever complete")]
    NoTasks,
}

/// Waits for running tasks until `return_when` says to stop or `timeout` passes, whichever comes
/// first, and hands back both the finished tasks and the ones still running, **without
/// cancelling** anything: `asyncio.wait`.
///
/// The tasks are woken into `done` by their own completion (no timer checks on them), and the
/// timeout is a race against that, not a sleep before it. A `timeout` of `None` waits as long
/// as `return_when` needs.
///
/// # Errors
/// [`WaitError::NoTasks`] for an empty `tasks`.
///
/// ```
/// # use std::time::Duration;
/// # use gather_wait::{ReturnWhen, wait};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let tasks = [100, 300].map(|ms| {
///     tokio::spawn(async move {
///         tokio::time::sleep(Duration::from_millis(ms)).await;
///         Ok::<_, String>(ms)
///     })
/// });
/// let waited = wait(tasks.into(), ReturnWhen::FirstCompleted, None).await.unwrap();
/// assert_eq!(waited.done.len(), 1);
/// // The slow task was not cancelled: it still finishes.
/// let (index, slow) = waited.pending.into_iter().next().unwrap();
/// assert_eq!((index, slow.await.unwrap()), (1, Ok(300)));
/// # }
/// ```
pub async fn wait<T, E>(
    tasks: Vec<JoinHandle<Result<T, E>>>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> Result<Waited<Result<T, E>>, WaitError> {
    if tasks.is_empty() {
        return Err(WaitError::NoTasks);
    }
    let mut pending: Vec<(usize, JoinHandle<_>)> = tasks.into_iter().enumerate().collect();
    let mut done = Vec::new();
    {
        // Await *borrowed* handles: when this block ends, the borrows end and the tasks not
        // finished keep running (dropping a JoinHandle, or a borrow of one, never aborts).
        let mut finishing: FuturesUnordered<_> = pending
            .iter_mut()
            .map(|(index, handle)| async move { (*index, handle.await) })
            .collect();
        let collect = async {
            while let Some((index, outcome)) = finishing.next().await {
                let stop = return_when.stops_at(&outcome);
                done.push((index, outcome));
                if stop {
                    break;
                }
            }
        };
        match timeout {
            // The deadline races the tasks; whichever comes first ends the wait.
            Some(limit) => {
                let _ = tokio::time::timeout(limit, collect).await;
            }
            None => collect.await,
        }
    }
    let mut finished = vec![false; pending.len()];
    for &(index, _) in &done {
        finished[index] = true;
    }
    pending.retain(|&(index, _)| !finished[index]);
    Ok(Waited { done, pending })
}
