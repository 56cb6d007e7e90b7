//! # PCLimit
//!
//! Build [`PCLimit`], a concurrency limiter with the ergonomics of the JavaScript library
//! p-limit: wrap each piece of work in [`PCLimit::run`], get a handle back, and await the handles
//! (all together with `join_all` gives the results in input order). Read `README.md` beside this
//! file for the stages, and run `just test pclimit` to see how far you are.
//!
//! The error types are given; everything with `todo!()` is yours, and so are the fields of
//! [`PCLimit`] and [`RunHandle`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An invalid concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A limit of 0 would let nothing run: every handle would wait forever.
    #[error("the concurrency limit must be at least 1, got 0 (nothing could ever run)")]
    ZeroConcurrency,
}

/// Why a [`RunHandle`] has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The job panicked. Only its own caller sees this; its slot went back to the limiter.
    #[error("the job panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The job was cancelled: its handle was aborted or dropped, or the queue was cleared.
    #[error("the job was cancelled before it finished")]
    Cancelled,
    /// The job was still waiting when [`PCLimit::clear_queue`] ran on a limiter made with
    /// [`PCLimit::reject_on_clear`].
    #[error("the job was removed from the queue by clear_queue() before it started")]
    Cleared,
}

/// A concurrency limiter: at most `concurrency` jobs run at once, started in call order.
///
/// Cloning is cheap and clones share one limit.
#[derive(Debug, Clone)]
pub struct PCLimit {
    // Your fields: shared state (the limit, the running count, the waiting jobs) behind an Arc.
}

impl PCLimit {
    /// A limiter that runs at most `concurrency` jobs at once.
    pub fn new(concurrency: usize) -> Result<Self, LimitError> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = concurrency;
        todo!("PCLimit::new: reject 0, then set up the shared state")
    }

    /// Makes [`clear_queue`](Self::clear_queue) fail the cleared handles with
    /// [`RunError::Cleared`] instead of [`RunError::Cancelled`].
    pub fn reject_on_clear(self) -> Self {
        todo!("PCLimit::reject_on_clear: remember the mode")
    }

    /// Queues `job` and returns a handle to its result. The job starts once a slot is free and
    /// every job queued before it has started; never inside this call.
    pub fn run<F>(&self, job: F) -> RunHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        drop(job);
        todo!("PCLimit::run: queue the job, spawn a task that waits for a slot, return a handle")
    }

    /// Jobs running now (holding a slot).
    pub fn active_count(&self) -> usize {
        todo!("PCLimit::active_count")
    }

    /// Jobs waiting for a slot.
    pub fn pending_count(&self) -> usize {
        todo!("PCLimit::pending_count")
    }

    /// The current limit.
    pub fn concurrency(&self) -> usize {
        todo!("PCLimit::concurrency")
    }

    /// Changes the limit while jobs run. Raising it starts waiting jobs at once; lowering it
    /// cancels nothing: running jobs finish, and no new job starts until fewer than the new
    /// limit are running.
    pub fn set_concurrency(&self, concurrency: usize) -> Result<(), LimitError> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = concurrency;
        todo!("PCLimit::set_concurrency: check, store, and start waiting jobs if slots are free")
    }

    /// Removes every waiting job; running jobs are not touched. Returns how many were removed.
    /// Their handles resolve to [`RunError::Cancelled`], or [`RunError::Cleared`] after
    /// [`reject_on_clear`](Self::reject_on_clear).
    pub fn clear_queue(&self) -> usize {
        todo!("PCLimit::clear_queue")
    }

    /// Waits until no job is running or waiting.
    pub async fn idle(&self) {
        todo!("PCLimit::idle")
    }
}

/// The scoped form: runs `body` with a fresh limiter and returns only once every job started
/// through it has finished (what `async with PCLimit(n) as limit:` gives in Python).
pub async fn scope<F, Fut, T>(concurrency: usize, body: F) -> Result<T, LimitError>
where
    F: FnOnce(PCLimit) -> Fut,
    Fut: Future<Output = T>,
{
    // Only here so the stub compiles without 'never used' warnings: delete it.
    let _ = (concurrency, body);
    todo!("scope: make a limiter, run the body, wait until the limiter is idle")
}

/// The result of one job given to [`PCLimit::run`]: `.await` it for `Ok(output)`.
///
/// Like any Rust future, dropping it cancels it: a waiting job leaves the queue, a running job
/// is aborted and its slot returned. Call [`detach`](Self::detach) to let the job run without
/// keeping its result.
#[derive(Debug)]
#[must_use = "dropping a RunHandle cancels its job; call .detach() to let it run unobserved"]
pub struct RunHandle<T> {
    // Your fields. (`PhantomData` only stands in for them so the stub compiles.)
    output: PhantomData<T>,
}

impl<T> RunHandle<T> {
    /// Cancels the job: a waiting job leaves the queue at once; a running job is stopped at its
    /// next `.await` and its slot returned. Awaiting the handle then gives
    /// [`RunError::Cancelled`].
    pub fn abort(&self) {
        todo!("RunHandle::abort (stage 2)")
    }

    /// Lets the job run to the end with nobody waiting for its result.
    pub fn detach(self) {
        todo!("RunHandle::detach")
    }
}

// A future written by hand: README.md's "Writing `RunHandle::poll` by hand" explains the
// `Pin<&mut Self>` receiver and how to poll a future you hold (with `mut self`, as there).
impl<T> Future for RunHandle<T> {
    type Output = Result<T, RunError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Only here so the stub compiles without 'never used' warnings: delete it.
        let _ = (self.output, cx);
        todo!("RunHandle::poll: ready with the job's result once it has one")
    }
}
