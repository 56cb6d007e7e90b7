//! # PCLimit: reference solution
//!
//! [`PCLimit`] limits how many futures run at once, with the ergonomics of the JavaScript
//! library p-limit: wrap each piece of work in [`PCLimit::run`] and await the handles, for
//! example all together with `join_all`, which gives the results in input order.
//!
//! How it works: `run` puts the job in a **queue of waiting jobs** and spawns a task for it. The
//! task asks for a **slot**; when one is free (fewer than `concurrency` jobs hold one), the
//! oldest waiting job gets it, runs, and gives it back when it ends. Everything else follows
//! from where the slot lives:
//!
//! - The slot is a guard ([`Slot`]) owned by the job's task, so it is returned however the job
//!   ends: finished, failed, panicked or aborted. No code path has to remember to release it.
//! - The queue is ordered by call number, so jobs start in call order whatever order the tasks
//!   happen to be polled in. It is a `VecDeque`: `run` pushes at the back, slots go to the
//!   front, and a cancelled job is found by binary search on its number (numbers only grow, so
//!   the queue stays sorted; taking one out of the middle shifts the rest, but cancelling is
//!   rare next to starting). A `BTreeMap` keyed by number works too, but allocates and
//!   rebalances as jobs come and go: on no-op jobs the whole limiter was a fifth slower with it.
//! - Slots are only handed out from inside the runtime (the new task's first poll, a finishing
//!   job, a limit change), never inside `run` itself: like p-limit up to version 6, work always
//!   starts asynchronously and a job counts as pending until then, so `run` behaves the same
//!   whether or not a slot is free. (p-limit 7 takes the slot inside the call.)
//! - A job is waiting or holds a slot, never both and never neither: a slot is handed out by
//!   taking the job out of the queue and counting it active in one step, under the lock.
//! - The limiter's state lives in an `Arc` shared by every clone, every task and every handle,
//!   so dropping the last `PCLimit` cancels nothing.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinError, JoinHandle};

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
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), pclimit::LimitError> {
/// use std::time::Duration;
/// use futures::future::join_all;
///
/// let limit = pclimit::PCLimit::new(2)?;
/// let slow_len = |s: &'static str| async move {
///     tokio::time::sleep(Duration::from_millis(10)).await;
///     s.len()
/// };
/// let handles = ["a", "bb", "ccc"].map(|s| limit.run(slow_len(s)));
/// // Nothing has started yet: `run` only queues.
/// assert_eq!((limit.active_count(), limit.pending_count()), (0, 3));
/// // Two at once, then the third: results in input order.
/// assert_eq!(join_all(handles).await, [Ok(1), Ok(2), Ok(3)]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PCLimit {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Woken whenever the limiter becomes idle: nothing running, nothing waiting.
    idle: Notify,
}

#[derive(Debug)]
struct State {
    concurrency: usize,
    /// Jobs holding a slot.
    active: usize,
    /// Jobs waiting for a slot, with their call numbers, oldest first.
    waiting: VecDeque<(u64, oneshot::Sender<Admission>)>,
    next_call: u64,
    reject_on_clear: bool,
}

/// What a waiting job is told: run now (holding this slot), or you were cleared.
#[derive(Debug)]
enum Admission {
    Start(Slot),
    Cleared,
}

impl PCLimit {
    /// A limiter that runs at most `concurrency` jobs at once.
    pub fn new(concurrency: usize) -> Result<Self, LimitError> {
        if concurrency == 0 {
            return Err(LimitError::ZeroConcurrency);
        }
        let state = State {
            concurrency,
            active: 0,
            waiting: VecDeque::new(),
            next_call: 0,
            reject_on_clear: false,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                idle: Notify::new(),
            }),
        })
    }

    /// Makes [`clear_queue`](Self::clear_queue) fail the cleared handles with
    /// [`RunError::Cleared`] instead of [`RunError::Cancelled`], so callers can tell the two
    /// apart (p-limit's `rejectOnClear`).
    pub fn reject_on_clear(self) -> Self {
        self.shared.lock().reject_on_clear = true;
        self
    }

    /// Queues `job` and returns a handle to its result. The job starts once a slot is free and
    /// every job queued before it has started; never inside this call.
    ///
    /// `Send + 'static`: the job runs in its own task, which may run on another thread and
    /// outlive the caller, so it may not borrow from the caller's stack.
    pub fn run<F>(&self, job: F) -> RunHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (admit, admission) = oneshot::channel();
        let call = {
            let mut state = self.shared.lock();
            let call = state.next_call;
            state.next_call += 1;
            state.waiting.push_back((call, admit));
            call
        };
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            // The first time the runtime gets to us, fill any free slots (perhaps with an older
            // job than this one). This is the "asynchronous start".
            shared.fill_slots();
            let _slot = match admission.await {
                Ok(Admission::Start(slot)) => slot,
                Ok(Admission::Cleared) => return Err(RunError::Cleared),
                // Our entry was removed without a word: the queue was cleared.
                Err(_) => return Err(RunError::Cancelled),
            };
            // `_slot` lives until the end of this block: it is released when the job finishes,
            // and also when it panics (unwinding drops it) or the task is aborted.
            Ok(job.await)
        });
        RunHandle {
            task: Some(task),
            call,
            shared: self.shared.clone(),
        }
    }

    /// Jobs running now (holding a slot).
    pub fn active_count(&self) -> usize {
        self.shared.lock().active
    }

    /// Jobs waiting for a slot.
    pub fn pending_count(&self) -> usize {
        self.shared.lock().waiting.len()
    }

    /// The current limit.
    pub fn concurrency(&self) -> usize {
        self.shared.lock().concurrency
    }

    /// Changes the limit while jobs run. Raising it starts waiting jobs at once; lowering it
    /// cancels nothing: running jobs finish, and no new job starts until fewer than the new
    /// limit are running.
    pub fn set_concurrency(&self, concurrency: usize) -> Result<(), LimitError> {
        if concurrency == 0 {
            return Err(LimitError::ZeroConcurrency);
        }
        self.shared.lock().concurrency = concurrency;
        self.shared.fill_slots();
        Ok(())
    }

    /// Removes every waiting job; running jobs are not touched. Returns how many were removed.
    /// Their handles resolve to [`RunError::Cancelled`], or [`RunError::Cleared`] after
    /// [`reject_on_clear`](Self::reject_on_clear).
    pub fn clear_queue(&self) -> usize {
        let (cleared, reject) = {
            let mut state = self.shared.lock();
            (std::mem::take(&mut state.waiting), state.reject_on_clear)
        };
        let count = cleared.len();
        for (_, admit) in cleared {
            if reject {
                let _ = admit.send(Admission::Cleared);
            }
            // Otherwise dropping `admit` is the message: the job's task sees its channel close.
        }
        self.shared.notify_if_idle();
        count
    }

    /// Waits until no job is running or waiting.
    pub async fn idle(&self) {
        loop {
            // Created before the check, so a wake-up between the check and the await is not
            // lost (`notify_waiters` reaches every `Notified` that exists at the time).
            let notified = self.shared.idle.notified();
            if self.shared.lock().is_idle() {
                return;
            }
            notified.await;
        }
    }
}

/// The scoped form: runs `body` with a fresh limiter and returns only once every job started
/// through it has finished (what `async with PCLimit(n) as limit:` gives in Python).
pub async fn scope<F, Fut, T>(concurrency: usize, body: F) -> Result<T, LimitError>
where
    F: FnOnce(PCLimit) -> Fut,
    Fut: Future<Output = T>,
{
    let limit = PCLimit::new(concurrency)?;
    let output = body(limit.clone()).await;
    // Detached jobs may still be running or waiting: the scope is not over until they are.
    limit.idle().await;
    Ok(output)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a panic happened while it was locked (every update
        // is a single assignment), so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands free slots to the oldest waiting jobs.
    fn fill_slots(self: &Arc<Self>) {
        self.update(|_| {});
    }

    /// Applies `change` to the state, then hands free slots to the oldest waiting jobs, and wakes
    /// `idle()` waiters if nothing is left. One lock per slot handed out: this runs for every
    /// job that starts or ends, so it is the limiter's hot path.
    fn update(self: &Arc<Self>, change: impl FnOnce(&mut State)) {
        let mut change = Some(change);
        loop {
            let admit = {
                let mut state = self.lock();
                if let Some(change) = change.take() {
                    change(&mut state);
                }
                let next = if state.active < state.concurrency {
                    state.waiting.pop_front()
                } else {
                    None
                };
                let Some((_, admit)) = next else {
                    let idle = state.is_idle();
                    drop(state);
                    if idle {
                        self.idle.notify_waiters();
                    }
                    return;
                };
                state.active += 1;
                admit
            };
            // Sent with the lock released: if the job's task is gone, `send` gives the slot
            // back, and dropping it takes the lock again to return it.
            let _ = admit.send(Admission::Start(Slot {
                shared: self.clone(),
            }));
        }
    }

    fn notify_if_idle(&self) {
        if self.lock().is_idle() {
            self.idle.notify_waiters();
        }
    }
}

impl State {
    fn is_idle(&self) -> bool {
        self.active == 0 && self.waiting.is_empty()
    }

    /// Takes job `call` out of the queue if it is still waiting.
    fn remove_waiting(&mut self, call: u64) -> Option<oneshot::Sender<Admission>> {
        let index = self
            .waiting
            .binary_search_by_key(&call, |&(call, _)| call)
            .ok()?;
        self.waiting.remove(index).map(|(_, admit)| admit)
    }
}

/// One of the limiter's `concurrency` slots, held by a running job and returned on drop.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.update(|state| state.active -= 1);
    }
}

/// The result of one job given to [`PCLimit::run`]: `.await` it for `Ok(output)`.
///
/// Like any Rust future, dropping it cancels it: a waiting job leaves the queue, a running job
/// is aborted and its slot returned. Call [`detach`](Self::detach) to let the job run without
/// keeping its result.
#[derive(Debug)]
#[must_use = "dropping a RunHandle cancels its job; call .detach() to let it run unobserved"]
pub struct RunHandle<T> {
    /// `None` once detached.
    task: Option<JoinHandle<Result<T, RunError>>>,
    call: u64,
    shared: Arc<Shared>,
}

impl<T> RunHandle<T> {
    /// Cancels the job: a waiting job leaves the queue at once; a running job is stopped at its
    /// next `.await` and its slot returned. Awaiting the handle then gives
    /// [`RunError::Cancelled`].
    pub fn abort(&self) {
        let removed = self.shared.lock().remove_waiting(self.call).is_some();
        if removed {
            self.shared.notify_if_idle();
        }
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Lets the job run to the end with nobody waiting for its result.
    pub fn detach(mut self) {
        // Dropping a tokio `JoinHandle` detaches its task.
        self.task.take();
    }
}

impl<T> Future for RunHandle<T> {
    type Output = Result<T, RunError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            // Only reachable by polling after `detach`, which consumed the handle: impossible.
            return Poll::Ready(Err(RunError::Cancelled));
        };
        // `RunHandle` is `Unpin` (a `JoinHandle`, a number, an `Arc`), so the pinned `self`
        // gives a plain `&mut`, and `Pin::new` may pin the `JoinHandle`, which is `Unpin` too.
        // Polling it is what registers `cx`'s waker with the task: never return `Pending`
        // without it.
        let joined = ready!(Pin::new(task).poll(cx));
        // The task is over: nothing left to cancel when the handle is dropped.
        self.task = None;
        Poll::Ready(joined.unwrap_or_else(|error| Err(run_error(error))))
    }
}

impl<T> Drop for RunHandle<T> {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.abort();
        }
    }
}

/// A task that did not return: it panicked (tokio caught the panic) or was aborted.
fn run_error(error: JoinError) -> RunError {
    match error.try_into_panic() {
        Ok(panic) => {
            let message = if let Some(text) = panic.downcast_ref::<&str>() {
                (*text).to_owned()
            } else if let Some(text) = panic.downcast_ref::<String>() {
                text.clone()
            } else {
                "a panic without a message".to_owned()
            };
            RunError::Panicked { message }
        }
        Err(_cancelled) => RunError::Cancelled,
    }
}
