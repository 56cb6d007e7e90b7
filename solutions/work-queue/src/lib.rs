//! # Work queue: reference solution
//!
//! A [`WorkQueue`] runs jobs on a **fixed pool of worker tasks** that pull from one shared queue:
//! the producer/consumer pattern. The number of workers *is* the concurrency limit, so there is
//! no semaphore to forget and no task per job: pushing 100,000 jobs costs 100,000 queue entries,
//! not 100,000 tasks.
//!
//! Three decisions shape the code:
//!
//! - **Every job is wrapped before it is queued.** The wrapper catches a panic, sends the result
//!   to the job's [`JobHandle`] (if anyone still holds it) and keeps the unfinished count. The
//!   workers then only ever see futures that cannot fail, so a worker can never be killed by
//!   the work it runs.
//! - **The queue owns its workers** in a [`JoinSet`]: dropping the queue aborts them, so a
//!   forgotten queue cannot leak tasks that wait forever.
//! - **`join` counts jobs, not workers**: an atomic counter holds the number of unfinished jobs,
//!   and the job that brings it to zero wakes every `join` through a [`Notify`]. Each `join`
//!   registers for that wake-up *before* it looks at the count, so the last job cannot end
//!   unseen between the look and the wait (on a multi-threaded runtime it can).
//!
//! The queue is `Send + Sync`: share it in an `Arc`, push from any task or thread (`push` only
//! sends to a channel, so it works outside the runtime too), and `join` from as many tasks as
//! you like.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::FutureExt;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;

/// A job as the workers see it: boxed, so jobs of any type share one queue, and already wrapped
/// so it never panics and returns nothing.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

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
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), work_queue::WorkQueueError> {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// let queue = work_queue::WorkQueue::new(3)?;
/// let done = Arc::new(AtomicU32::new(0));
/// for _ in 0..10 {
///     let done = done.clone();
///     // Fire and forget: nobody gets a result, `join` still waits for it.
///     queue.push(async move {
///         done.fetch_add(1, Ordering::Relaxed);
///     });
/// }
/// let answer = queue.submit(async { 6 * 7 });
/// queue.join().await;
/// assert_eq!(done.load(Ordering::Relaxed), 10);
/// assert_eq!(answer.await, Ok(42));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WorkQueue {
    jobs: mpsc::UnboundedSender<Job>,
    unfinished: Arc<Unfinished>,
    concurrency: usize,
    /// Never read: it is here to be dropped. Dropping a `JoinSet` aborts its tasks, which is what
    /// stops the workers when the queue goes away.
    _workers: JoinSet<()>,
}

impl WorkQueue {
    /// Starts `concurrency` workers. Call it inside a tokio runtime (it spawns them).
    pub fn new(concurrency: usize) -> Result<Self, WorkQueueError> {
        if concurrency == 0 {
            return Err(WorkQueueError::ZeroConcurrency);
        }
        // Unbounded: `push` never waits and works from any thread (see the README's lesson notes
        // for the bounded alternative, which gives backpressure instead).
        let (jobs, receiver) = mpsc::unbounded_channel();
        // One receiver, many workers: the mutex lets them take turns waiting for the next job.
        let receiver = Arc::new(Mutex::new(receiver));
        let mut workers = JoinSet::new();
        for _ in 0..concurrency {
            workers.spawn(work(receiver.clone()));
        }
        Ok(Self {
            jobs,
            unfinished: Arc::default(),
            concurrency,
            _workers: workers,
        })
    }

    /// The number of workers, which is the most jobs that ever run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Queues `job` and forgets it: nobody gets its result. A panic in it is caught (the worker
    /// survives) and printed by the panic hook.
    pub fn push<F>(&self, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // A fire-and-forget job is a submitted job whose handle nobody keeps.
        drop(self.submit(job));
    }

    /// Queues `job` and returns a handle to its result. Dropping the handle discards the result;
    /// the job still runs.
    ///
    /// `Send + 'static`: the job moves to a worker task, which may run on another thread and
    /// outlive the caller's stack frame, so it can neither borrow from the caller nor hold
    /// anything that must stay on one thread.
    pub fn submit<F>(&self, job: F) -> JobHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (result_tx, result_rx) = oneshot::channel();
        // Counted from now until the wrapper below finishes *or is dropped*, so a job that never
        // runs (its queue was dropped) cannot leave `join` waiting.
        let unfinished = UnfinishedJob::new(&self.unfinished);
        let wrapped =
            async move {
                let result = AssertUnwindSafe(job).catch_unwind().await.map_err(|panic| {
                    JobError::Panicked {
                        message: panic_message(&*panic),
                    }
                });
                // The handle may be gone: then the result is simply discarded.
                let _ = result_tx.send(result);
                drop(unfinished);
            };
        // Sending fails only if every worker is gone, which cannot happen while `self` lives;
        // even then the job is dropped, its handle says `Cancelled`, and the count is released.
        let _ = self.jobs.send(Box::pin(wrapped));
        JobHandle { result: result_rx }
    }

    /// Waits until no job is queued or running: every job pushed or submitted so far, and any
    /// pushed while it waits (by a job, say), has finished or panicked. Any number of tasks may
    /// wait at once; the queue stays usable: push more and `join` again.
    pub async fn join(&self) {
        loop {
            // Created *before* the count is read: `notify_waiters` reaches every `Notified` that
            // exists when it is called, polled or not. Read first and register second, and on a
            // multi-threaded runtime the last job can end (and notify nobody) in between; this
            // `join` would then wait for a wake-up that already happened.
            let none_left = self.unfinished.none_left.notified();
            if self.unfinished.count.load(Ordering::Acquire) == 0 {
                return;
            }
            none_left.await;
        }
    }
}

/// One worker: take the next job, run it to completion, repeat until the queue is gone.
async fn work(jobs: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        // The lock is held across `recv().await` on purpose: only one worker at a time waits on
        // the queue, and the others wait for the lock, so each job goes to exactly one worker.
        // That is why this is a `tokio::sync::Mutex` (a `std` guard must not be held across an
        // `.await`). The guard is a temporary of this `let` statement, so it is dropped at the
        // `;`, *before* the job runs. Written as `while let Some(job) =
        // jobs.lock().await.recv().await { job.await }`, or as a `match` on that expression,
        // the guard would live to the end of the loop body, and the pool would run one job at
        // a time.
        let next = jobs.lock().await.recv().await;
        match next {
            Some(job) => job.await,
            None => return,
        }
    }
}

/// The result of one submitted job: `.await` it for `Ok(output)` or the reason there is none.
#[derive(Debug)]
pub struct JobHandle<T> {
    result: oneshot::Receiver<Result<T, JobError>>,
}

impl<T> Future for JobHandle<T> {
    type Output = Result<T, JobError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `oneshot::Receiver` is `Unpin`, so `Pin::new` may pin a plain `&mut` to it (and the
        // `mut self` above is what lets us take one). Polling it, rather than `try_recv`,
        // registers `cx`'s waker: the task awaiting this handle is woken when the result comes.
        // The sender is dropped unsent only when the job itself was dropped unfinished.
        Pin::new(&mut self.result)
            .poll(cx)
            .map(|received| received.unwrap_or(Err(JobError::Cancelled)))
    }
}

/// The jobs pushed and not yet finished, and the signal that there are none left.
#[derive(Debug, Default)]
struct Unfinished {
    count: AtomicUsize,
    none_left: Notify,
}

/// One job counted as unfinished; the count goes down when this guard drops, however the job
/// ends (finished, panicked, or dropped with its queue).
struct UnfinishedJob(Arc<Unfinished>);

impl UnfinishedJob {
    fn new(unfinished: &Arc<Unfinished>) -> Self {
        unfinished.count.fetch_add(1, Ordering::AcqRel);
        Self(unfinished.clone())
    }
}

impl Drop for UnfinishedJob {
    fn drop(&mut self) {
        // The last job out wakes the joiners, *after* the count is down: a joiner woken before
        // would look, still see this job, and go back to waiting for a wake-up already sent.
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

/// The text of a panic: `panic!("literal")` carries a `&str`, `panic!("{x}")` a `String`.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
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
/// workers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let parity = work_queue::classify([7, 2, 9, 4, 4], 2).await.unwrap();
/// assert_eq!(parity.evens, [2, 4, 4]);
/// assert_eq!(parity.odds, [7, 9]);
/// # }
/// ```
pub async fn classify(
    numbers: impl IntoIterator<Item = u64>,
    concurrency: usize,
) -> Result<Parity, WorkQueueError> {
    let queue = WorkQueue::new(concurrency)?;
    // Handles are awaited in submission order, so the output keeps the input's order however
    // the workers interleave: no shared vector, no sorting afterwards.
    let handles: Vec<_> = numbers
        .into_iter()
        .map(|n| queue.submit(async move { (n, n % 2 == 0) }))
        .collect();
    let mut parity = Parity::default();
    for handle in handles {
        // These jobs cannot panic and `queue` outlives them, so every handle holds a result.
        let Ok((n, even)) = handle.await else {
            unreachable!("a parity job cannot fail");
        };
        if even {
            parity.evens.push(n);
        } else {
            parity.odds.push(n);
        }
    }
    Ok(parity)
}
