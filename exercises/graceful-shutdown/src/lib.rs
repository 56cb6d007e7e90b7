//! # Graceful shutdown
//!
//! Stop async work three ways (drop it, abort it, ask it), shield what must finish, and build a
//! scheduler that closes well: it stops accepting, asks every job to stop, waits until a
//! deadline, aborts the rest and reports what became of each job. Read `README.md` beside this
//! file for the stages, and run `just test graceful-shutdown` to see how far you are.
//!
//! The public types are given: keep their names, fields and signatures (the suite uses them).
//! The private fields of [`CancelToken`], [`Scheduler`] and [`Shielded`] are placeholders:
//! replace them with your own design. Every `todo!()` is yours.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncRead;

// ---------------------------------------------------------------------------------------------
// Stage 1: a cancel token.

/// A cancel signal that any number of tasks can wait for, and that reaches its children.
///
/// Clones share one signal: cancelling any clone cancels them all. A [`child`](Self::child) is
/// cancelled with its parent, but cancelling the child leaves the parent (and its siblings)
/// alone.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    // A placeholder: clones must share one state, so it will live behind an `Arc`.
    _state: Arc<()>,
}

impl CancelToken {
    /// A token that is not cancelled yet.
    pub fn new() -> Self {
        todo!("CancelToken::new: a fresh, shared state")
    }

    /// Cancels this token and every child of it, waking everyone waiting on them, now.
    /// Cancelling twice is harmless.
    pub fn cancel(&self) {
        todo!("CancelToken::cancel: set the flag, wake every waiter, cancel the children")
    }

    /// Whether the token has been cancelled (by itself, a clone or an ancestor).
    pub fn is_cancelled(&self) -> bool {
        todo!("CancelToken::is_cancelled")
    }

    /// Waits until the token is cancelled; ready at once if it already is.
    ///
    /// Dropping the future before it is ready must lose nothing, and free its place among the
    /// waiters.
    pub async fn cancelled(&self) {
        todo!("CancelToken::cancelled: wait for cancel() without spinning or polling a timer")
    }

    /// A new token that is cancelled when this one is (at once if it already is), and that can
    /// be cancelled on its own without touching this one.
    pub fn child(&self) -> CancelToken {
        todo!("CancelToken::child: a token of its own that this one cancels")
    }

    /// A guard that cancels this token when it is dropped (stage 2).
    pub fn drop_guard(self) -> DropGuard {
        todo!("CancelToken::drop_guard (stage 2)")
    }

    /// Runs `work` until it finishes (`Ok(output)`) or the token is cancelled (`Err(Cancelled)`),
    /// whichever comes first (stage 2). On cancel, `work` is dropped at once; if the token is
    /// already cancelled, `work` is never polled at all.
    pub async fn run_until_cancelled<F: Future>(&self, work: F) -> Result<F::Output, Cancelled> {
        drop(work);
        todo!("CancelToken::run_until_cancelled (stage 2): race the work against the token")
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: stopping at the instant of the cancel.

/// Work stopped by a cancel before it finished: what [`CancelToken::run_until_cancelled`]
/// returns then, and what a scheduled job returns when it stops because it was asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled before it finished")]
pub struct Cancelled;

/// Cancels its token when dropped, unless [`disarm`](Self::disarm)ed. Made by
/// [`CancelToken::drop_guard`].
#[derive(Debug)]
#[must_use = "a guard dropped at once cancels its token at once"]
pub struct DropGuard {
    /// `Some` until disarmed: `Drop` runs on a disarmed guard too, and must do nothing then.
    token: Option<CancelToken>,
}

impl DropGuard {
    /// Gives the token back without cancelling it.
    pub fn disarm(self) -> CancelToken {
        let _ = &self.token;
        todo!("DropGuard::disarm (stage 2); and write `impl Drop for DropGuard` yourself")
    }
}

/// How often the [`stopwatch`] ticks.
pub const TICK: Duration = Duration::from_secs(1);

/// Counts seconds until `token` is cancelled: calls `on_tick(n)` at 1 s, 2 s, ... after the
/// start, and returns the number of ticks at the instant of the cancel.
pub async fn stopwatch(token: &CancelToken, mut on_tick: impl FnMut(u32)) -> u32 {
    let _ = (token, &mut on_tick);
    todo!("stopwatch (stage 2): tick every second, return at the cancel")
}

// ---------------------------------------------------------------------------------------------
// Stage 3: a scheduler that closes well.

/// A job's number in its scheduler: jobs and shielded work are numbered 0, 1, 2, ... in the
/// order the scheduler accepted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job #{}", self.0)
    }
}

/// What became of every job a scheduler accepted, as [`Scheduler::close`] returns it. Every
/// job is in exactly one list; each list is in [`JobId`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// Returned `Ok(())`: the job did all its work.
    pub finished: Vec<JobId>,
    /// Returned `Err(Cancelled)`: the job stopped because it was asked to.
    pub stopped: Vec<JobId>,
    /// Still running at the deadline, so aborted.
    pub aborted: Vec<JobId>,
    /// Not started when close began (waiting for a slot, or its task not run yet): never
    /// polled, never run.
    pub never_started: Vec<JobId>,
    /// Panicked, with the panic's message.
    pub panicked: Vec<(JobId, String)>,
    /// Shielded work ([`Scheduler::shield`]), which close waited for, however long it took.
    pub shielded: Vec<JobId>,
}

/// A limit a scheduler cannot have: it runs between 1 and `tokio::sync::Semaphore::MAX_PERMITS`
/// jobs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a scheduler cannot run {limit} jobs at once: the limit must be between 1 and {max}",
    max = tokio::sync::Semaphore::MAX_PERMITS
)]
pub struct BadLimit {
    pub limit: usize,
}

/// The scheduler is closing or closed: it accepts no new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the scheduler is closed and accepts no new work")]
pub struct Closed;

/// Runs jobs, at most `limit` at once, and closes gracefully. Cheap to clone: clones share the
/// jobs (a job can hold one, to shield its clean-up).
#[derive(Debug, Clone)]
pub struct Scheduler {
    // A placeholder: clones share the jobs, so they will live behind an `Arc`.
    _shared: Arc<()>,
}

impl Scheduler {
    /// A scheduler that runs at most `limit` jobs at once.
    pub fn new(limit: usize) -> Result<Self, BadLimit> {
        let _ = limit;
        todo!("Scheduler::new (stage 3)")
    }

    /// Accepts a job: `job(token)` is called and its future run as soon as a slot is free, in
    /// the order jobs were spawned. The job should watch `token` and return `Err(Cancelled)`
    /// when it stops because of it.
    ///
    /// # Errors
    /// [`Closed`] once [`close`](Self::close) has begun; the job is dropped, never called.
    pub fn spawn<F, Fut>(&self, job: F) -> Result<JobId, Closed>
    where
        F: FnOnce(CancelToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Cancelled>> + Send + 'static,
    {
        let _ = job;
        todo!("Scheduler::spawn (stage 3)")
    }

    /// Runs `work` in a task of its own, which no timeout, abort or close can cut short, and
    /// gives back a handle to await its output (stage 4). Close waits for it; it takes no slot.
    ///
    /// # Errors
    /// [`Closed`] once close has returned (while close is under way, work is still accepted).
    pub fn shield<F>(&self, work: F) -> Result<Shielded<F::Output>, Closed>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        drop(work);
        todo!("Scheduler::shield (stage 4)")
    }

    /// Closes the scheduler: stops accepting jobs, cancels every job's token, waits until every
    /// job has ended or `grace` has passed, aborts the jobs still running then (and waits until
    /// they are gone), waits for shielded work, and reports what became of every job.
    ///
    /// Returns at once, with `None`, if close was called before: only the first call closes.
    pub async fn close(&self, grace: Duration) -> Option<CloseReport> {
        let _ = grace;
        todo!("Scheduler::close (stage 3): stop accepting, signal, drain, abort, report")
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 4: shielding.

/// The handle of shielded work: await it for the work's output. Dropping it does not stop the
/// work; the scheduler's close waits for it.
#[derive(Debug)]
pub struct Shielded<T> {
    id: JobId,
    // A placeholder for what you await the output from.
    _output: PhantomData<fn() -> T>,
}

impl<T> Shielded<T> {
    /// The work's number in the scheduler's report.
    pub fn id(&self) -> JobId {
        self.id
    }
}

impl<T> Future for Shielded<T> {
    type Output = T;

    /// The work's output; if the work panicked, the same panic, here.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let _ = cx;
        todo!("Shielded::poll (stage 4)")
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 5: cancellation safety in a select! loop.

/// What [`follow_lines`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole line, without its `\n` (or the last bytes before the end, if they have none).
    Line(String),
    /// A tick of the `every` grid.
    Tick,
}

/// Reads `reader` line by line and ticks every `every`, both at once, until the reader ends or
/// `token` is cancelled; reports each line and each tick through `on_event`, as it happens.
///
/// # Errors
/// What reading fails with; a line that is not UTF-8 is `InvalidData`.
pub async fn follow_lines<R>(
    reader: R,
    every: Duration,
    token: &CancelToken,
    mut on_event: impl FnMut(Event),
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
{
    let _ = (reader, every, token, &mut on_event);
    todo!("follow_lines (stage 5): one select! over the lines, the ticks and the token")
}
