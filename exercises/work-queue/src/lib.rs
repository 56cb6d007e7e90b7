//! # Work queue
//!
//! Build a [`WorkQueue`]: a fixed pool of worker tasks pulling jobs from one shared queue, at
//! most `concurrency` jobs at a time. Then use it to sort numbers into evens and odds. Read
//! `README.md` beside this file for the stages, and run `just test work-queue` to see how far
//! you are.
//!
//! The error types and [`Parity`] are given; everything with `todo!()` is yours, and so are the
//! fields of [`WorkQueue`] and [`JobHandle`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Why a [`WorkQueue`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkQueueError {
    /// No workers means no job would ever run: every `join` would wait forever.
    #[error("a work queue needs at least one worker: concurrency must be 1 or more, got 0")]
    ZeroConcurrency,
}

/// Why a job's [`JobHandle`] has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The job panicked; its worker caught the panic and carried on.
    #[error("the job panicked: {message}")]
    Panicked {
        /// The panic's message (`panic!("...")`'s text).
        message: String,
    },
    /// The job never finished: its queue was dropped first.
    #[error("the job was cancelled: its work queue was dropped before it finished")]
    Cancelled,
}

/// A fixed pool of workers running pushed jobs, at most `concurrency` at a time, in push order.
///
/// It must be `Send + Sync`: the suite shares it in an `Arc`, pushes from other threads and joins
/// from several tasks at once.
#[derive(Debug)]
pub struct WorkQueue {
    // Your fields: the sending side of the queue, the workers, whatever `join` needs.
}

impl WorkQueue {
    /// Starts `concurrency` workers. Called inside a tokio runtime.
    pub fn new(concurrency: usize) -> Result<Self, WorkQueueError> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = concurrency;
        todo!("WorkQueue::new: reject 0, then spawn `concurrency` workers that pull from a queue")
    }

    /// The number of workers, which is the most jobs that ever run at once.
    pub fn concurrency(&self) -> usize {
        todo!("WorkQueue::concurrency")
    }

    /// Queues `job` and forgets it (stage 1). A panic in the job must not kill its worker. Works
    /// from any thread, also one outside the runtime: it only queues the job.
    pub fn push<F>(&self, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        drop(job);
        todo!("WorkQueue::push: send the job to the workers")
    }

    /// Queues `job` and returns a handle to its result (stage 2). Dropping the handle discards
    /// the result; the job still runs.
    pub fn submit<F>(&self, job: F) -> JobHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        drop(job);
        todo!("WorkQueue::submit: queue the job and hand back a way to receive its result")
    }

    /// Waits until no job is queued or running, counting jobs pushed while it waits; any number
    /// of tasks may wait at once. The queue stays usable afterwards.
    pub async fn join(&self) {
        todo!("WorkQueue::join: wait until no job is unfinished")
    }
}

/// The result of one submitted job: `.await` it for `Ok(output)` or the reason there is none.
#[derive(Debug)]
pub struct JobHandle<T> {
    // Your fields. (`PhantomData` only stands in for them so the stub compiles.)
    result: PhantomData<T>,
}

impl<T> Future for JobHandle<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = (self.result, cx);
        todo!("JobHandle::poll: ready with the job's result once it has one")
    }
}

/// Numbers sorted by parity, each list in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parity {
    /// The even numbers.
    pub evens: Vec<u64>,
    /// The odd numbers.
    pub odds: Vec<u64>,
}

/// Classifies `numbers` into evens and odds, each number one job on a queue of `concurrency`
/// workers (stage 1).
pub async fn classify(
    numbers: impl IntoIterator<Item = u64>,
    concurrency: usize,
) -> Result<Parity, WorkQueueError> {
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (numbers.into_iter(), concurrency);
    todo!("classify: one job per number on a WorkQueue, results in input order")
}
