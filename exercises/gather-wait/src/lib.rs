//! # Gather and wait
//!
//! Run several pieces of work at once and combine what they give back, four ways: [`gather`]
//! (and [`gather_settled`]), a [`TaskGroup`], [`as_completed`] and [`wait`]. Read `README.md`
//! beside this file for the stages, and run `just test gather-wait` to see how far you are.
//!
//! The error types, [`ReturnWhen`] and [`Waited`] are given; everything with `todo!()` is yours,
//! and so are the fields of [`TaskGroup`].

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use futures::stream::Stream;
use tokio::task::{AbortHandle, JoinError, JoinHandle};

// ---------------------------------------------------------------------------------------------
// Stage 1: gather, in the caller's task.

/// Runs every job at once, in the calling task, and returns their values in input order; or
/// the first error, as soon as it happens, with the jobs still running dropped.
pub async fn gather<I, T, E>(jobs: I) -> Result<Vec<T>, E>
where
    I: IntoIterator,
    I::Item: Future<Output = Result<T, E>>,
{
    // Only here so the stub compiles without "never used" warnings: delete it.
    let _ = jobs;
    todo!("gather: poll every job at once, keep input order, stop at the first Err")
}

/// Runs every job at once, in the calling task, and returns every outcome in input order once
/// the last job has finished.
pub async fn gather_settled<I>(jobs: I) -> Vec<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future,
{
    // Only here so the stub compiles without "never used" warnings: delete it.
    let _ = jobs;
    todo!("gather_settled: poll every job at once, keep every outcome, in input order")
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

/// Named tasks that succeed together or fail together: `asyncio.TaskGroup`, in tokio.
pub struct TaskGroup<T, E> {
    // Your fields. (`PhantomData` only stands in for them so the stub compiles.)
    results: PhantomData<fn() -> Result<T, E>>,
}

impl<T, E> Default for TaskGroup<T, E> {
    fn default() -> Self {
        todo!("TaskGroup::default: an empty group")
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
    pub fn spawn<F>(&mut self, name: impl Into<String>, job: F) -> AbortHandle
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        // Only here so the stub compiles without "never used" warnings: delete it.
        let _ = (self.results, name.into(), job);
        todo!("TaskGroup::spawn: start the task now, and remember its name")
    }

    /// Waits for every task: all values in spawn order, or the first failure once every other
    /// task has been aborted and is gone.
    pub async fn join(self) -> Result<Vec<T>, GroupError<E>> {
        todo!("TaskGroup::join: collect the results; on the first failure abort, drain, report")
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 3: as_completed and wait.

/// A stream of `(input index, output)`, one item per job, in the order the jobs finish. The
/// jobs run in whichever task polls the stream; dropping the stream cancels the unfinished ones.
pub fn as_completed<I>(jobs: I) -> impl Stream<Item = (usize, <I::Item as Future>::Output)>
where
    I: IntoIterator,
    I::Item: Future,
{
    // Only here so the stub compiles (`todo!()` alone is not a Stream): replace both lines.
    let _ = jobs;
    futures::stream::poll_fn(|_| todo!("as_completed: a stream of the jobs, as they finish"))
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
/// first, and hands back both the finished tasks and the ones still running, without cancelling
/// anything. `None`: no timeout.
///
/// # Errors
/// [`WaitError::NoTasks`] for an empty `tasks`.
pub async fn wait<T, E>(
    tasks: Vec<JoinHandle<Result<T, E>>>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> Result<Waited<Result<T, E>>, WaitError> {
    // Only here so the stub compiles without "never used" warnings: delete it.
    let _ = (tasks, return_when, timeout);
    todo!("wait: race the tasks' completions against the timeout; cancel nothing")
}
