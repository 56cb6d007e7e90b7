//! # Graceful shutdown: reference solution
//!
//! Async Rust has three ways to stop work, and a service that shuts down well uses all three:
//!
//! - **drop** the future: it stops at the `.await` where it was waiting, and never runs again
//!   ([`CancelToken::run_until_cancelled`], `tokio::time::timeout`, `select!`);
//! - **abort** the task: `JoinHandle::abort` drops the task's future the next time the runtime
//!   gets to it, which is later than the call (the [`Scheduler`] waits for it);
//! - **ask** it: a [`CancelToken`] that the work watches and answers in its own time, with its
//!   own clean-up ([`stopwatch`]).
//!
//! Cancellation only ever happens at an `.await`: between two of them, code runs to the end, so
//! a future is never cut in the middle of a statement. What a future owns is cleaned up by its
//! `Drop`s when it is dropped, synchronously; there is no async `Drop`, so clean-up that must
//! `.await` needs either a task of its own ([`Scheduler::shield`]) or an explicit shutdown phase
//! that the owner awaits ([`Scheduler::close`]).
//!
//! The production versions of what this kata builds are tokio-util's `CancellationToken` (with
//! `child_token`, `drop_guard` and `run_until_cancelled`) and `TaskTracker`, and tokio's own
//! `JoinSet`, which the scheduler below uses.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, interval_at, sleep_until, timeout_at};

// ---------------------------------------------------------------------------------------------
// Stage 1: a cancel token.

/// A cancel signal that any number of tasks can wait for, and that reaches its children.
///
/// Clones share one signal: cancelling any clone cancels them all. A [`child`](Self::child) is
/// cancelled with its parent, but cancelling the child leaves the parent (and its siblings)
/// alone: a request can be stopped on its own, and a shutdown stops every request.
///
/// ```
/// # use std::time::Duration;
/// # use graceful_shutdown::CancelToken;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let shutdown = CancelToken::new();
/// let request = shutdown.child();
/// let worker = tokio::spawn(async move {
///     request.cancelled().await;
///     "stopped"
/// });
/// tokio::time::sleep(Duration::from_millis(100)).await;
/// shutdown.cancel();
/// assert_eq!(worker.await.unwrap(), "stopped");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    node: Arc<Node>,
}

/// One token's state, shared by its clones.
#[derive(Debug, Default)]
struct Node {
    cancelled: AtomicBool,
    /// Everyone in `cancelled().await`. `Notify` keeps its waiters in a list inside the futures
    /// themselves: a waiter that is dropped unlinks itself, so abandoned waiters cost nothing.
    waiters: Notify,
    /// Children still alive, by address. Weak, so that a dropped child is freed; a child
    /// removes itself when it is dropped, so the map never holds the dead.
    children: Mutex<HashMap<usize, Weak<Node>>>,
    parent: Weak<Node>,
}

impl CancelToken {
    /// A token that is not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels this token and every child of it, waking everyone waiting on them, now.
    /// Cancelling twice is harmless.
    pub fn cancel(&self) {
        self.node.cancel();
    }

    /// Whether the token has been cancelled (by itself, a clone or an ancestor).
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.load(Ordering::SeqCst)
    }

    /// Waits until the token is cancelled; ready at once if it already is.
    ///
    /// Cancel safe: dropping the future before it is ready loses nothing and frees its place
    /// in the waiters' list.
    pub async fn cancelled(&self) {
        // Register *before* looking at the flag. Looking first leaves a gap: a cancel on
        // another thread between the look and the registration would wake nobody, and this
        // waiter would sleep for ever. A `Notified` receives `notify_waiters` from the moment it
        // is created, polled or not.
        let notified = pin!(self.node.waiters.notified());
        if !self.is_cancelled() {
            notified.await;
        }
    }

    /// A new token that is cancelled when this one is (at once if it already is), and that can
    /// be cancelled on its own without touching this one.
    pub fn child(&self) -> CancelToken {
        let child = Arc::new(Node {
            cancelled: AtomicBool::new(false),
            waiters: Notify::new(),
            children: Mutex::default(),
            parent: Arc::downgrade(&self.node),
        });
        lock(&self.node.children).insert(address(&child), Arc::downgrade(&child));
        // A cancel that took the children just before this one was added does not know it:
        // it set the flag first, so looking at the flag after adding catches that case.
        if self.is_cancelled() {
            child.cancel();
        }
        CancelToken { node: child }
    }

    /// A guard that cancels this token when it is dropped (stage 2).
    ///
    /// `Drop` is how Rust runs clean-up when a future is cancelled, but `drop` cannot `.await`.
    /// Cancelling a token is synchronous, so it fits in a `Drop`: the async part of the clean-up
    /// is left to whoever waits on the token.
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { token: Some(self) }
    }

    /// Runs `work` until it finishes (`Ok(output)`) or the token is cancelled (`Err(Cancelled)`),
    /// whichever comes first (stage 2). On cancel, `work` is dropped at once, at the `.await`
    /// where it was waiting; if the token is already cancelled, `work` is never polled at all.
    pub async fn run_until_cancelled<F: Future>(&self, work: F) -> Result<F::Output, Cancelled> {
        tokio::select! {
            // `biased`: look at the token first, so that work never starts after a cancel.
            // Without it `select!` picks a branch at random, and a ready `work` would win half
            // the time.
            biased;
            () = self.cancelled() => Err(Cancelled),
            output = work => Ok(output),
        }
    }
}

impl Node {
    fn cancel(&self) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return; // Already cancelled: the children were cancelled then.
        }
        self.waiters.notify_waiters();
        // Take the children out before cancelling them: a child dropped in the loop below
        // removes itself from this map, which must not be locked then.
        let children = std::mem::take(&mut *lock(&self.children));
        for child in children.into_values().filter_map(|child| child.upgrade()) {
            child.cancel();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A child that goes away leaves its parent's map: a parent that lives for the whole
        // program (a server's shutdown token) would otherwise keep every request's child.
        if let Some(parent) = self.parent.upgrade() {
            lock(&parent.children).remove(&(std::ptr::from_ref(self) as usize));
        }
    }
}

/// The key of a node in its parent's map: its address, unique while it is alive.
fn address(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
}

/// Locks a mutex; nothing here panics while holding one, so a poisoned lock is still good.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
    pub fn disarm(mut self) -> CancelToken {
        self.token.take().expect("only disarm takes the token")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}

/// How often the [`stopwatch`] ticks.
pub const TICK: Duration = Duration::from_secs(1);

/// Counts seconds until `token` is cancelled: calls `on_tick(n)` at 1 s, 2 s, ... after the
/// start, and returns the number of ticks at the instant of the cancel.
///
/// The sleep and the token are awaited together: checking the token between sleeps would
/// return only when the current second is over, up to a whole tick late.
///
/// ```
/// # use std::time::Duration;
/// # use graceful_shutdown::{CancelToken, stopwatch};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let token = CancelToken::new();
/// let canceller = token.clone();
/// tokio::spawn(async move {
///     tokio::time::sleep(Duration::from_millis(2500)).await;
///     canceller.cancel();
/// });
/// let start = tokio::time::Instant::now();
/// assert_eq!(stopwatch(&token, |n| println!("{n} s")).await, 2);
/// assert_eq!(start.elapsed(), Duration::from_millis(2500));
/// # }
/// ```
pub async fn stopwatch(token: &CancelToken, mut on_tick: impl FnMut(u32)) -> u32 {
    let start = Instant::now();
    let mut ticks = 0;
    // Each second is a sleep raced against the token: the cancel drops the sleep, at once.
    // Sleeping until an instant of the grid (not "1 s from now") keeps the ticks from drifting.
    while token
        .run_until_cancelled(sleep_until(start + TICK * (ticks + 1)))
        .await
        .is_ok()
    {
        ticks += 1;
        on_tick(ticks);
    }
    ticks
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

/// A limit a scheduler cannot have: it runs between 1 and [`Semaphore::MAX_PERMITS`] jobs
/// at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a scheduler cannot run {limit} jobs at once: the limit must be between 1 and {max}",
    max = Semaphore::MAX_PERMITS
)]
pub struct BadLimit {
    pub limit: usize,
}

/// The scheduler is closing or closed: it accepts no new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the scheduler is closed and accepts no new work")]
pub struct Closed;

/// Runs jobs, at most `limit` at once, and closes gracefully: it stops accepting, asks every
/// job to stop, waits for them until a deadline, aborts the rest, and reports what became of
/// each. Cheap to clone: clones share the jobs (a job can hold one, to shield its clean-up).
///
/// ```
/// # use std::time::Duration;
/// # use graceful_shutdown::{Cancelled, Scheduler};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let scheduler = Scheduler::new(2).unwrap();
/// let polite = scheduler
///     .spawn(|token| async move {
///         token.cancelled().await;
///         Err(Cancelled) // stopped when asked
///     })
///     .unwrap();
/// let stubborn = scheduler
///     .spawn(|_token| async move {
///         tokio::time::sleep(Duration::from_secs(60)).await;
///         Ok(())
///     })
///     .unwrap();
/// tokio::task::yield_now().await; // let both start
/// let report = scheduler.close(Duration::from_millis(500)).await.unwrap();
/// assert_eq!(report.stopped, [polite]);
/// assert_eq!(report.aborted, [stubborn]);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The parent of every job's token: cancelling it is close's signal.
    token: CancelToken,
    /// One permit per job that may run at once. Tokio's semaphore is fair: jobs get a slot in
    /// the order they asked for one.
    slots: Arc<Semaphore>,
    state: Mutex<State>,
    /// Woken when the last shielded work ends.
    shields_done: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Close has begun: no new jobs.
    closing: bool,
    /// Close has returned: no new shielded work either.
    closed: bool,
    next_id: u64,
    /// The jobs' tasks, until they are joined.
    jobs: JoinSet<Ended>,
    /// Which job each task runs: a task that panicked or was aborted says only its task id.
    tasks: HashMap<tokio::task::Id, JobId>,
    /// Shielded work not yet ended.
    shields_running: usize,
    /// What became of the jobs joined so far.
    report: CloseReport,
}

/// How a job's task ended, when it ended by itself.
#[derive(Debug)]
enum Ended {
    Finished,
    Stopped,
    NeverStarted,
}

impl Scheduler {
    /// A scheduler that runs at most `limit` jobs at once.
    pub fn new(limit: usize) -> Result<Self, BadLimit> {
        if limit == 0 || limit > Semaphore::MAX_PERMITS {
            return Err(BadLimit { limit });
        }
        Ok(Self {
            shared: Arc::new(Shared {
                token: CancelToken::new(),
                slots: Arc::new(Semaphore::new(limit)),
                state: Mutex::default(),
                shields_done: Notify::new(),
            }),
        })
    }

    /// Accepts a job: `job(token)` is called and its future run as soon as a slot is free, in
    /// the order jobs were spawned. The job should watch `token` (its own child of the
    /// scheduler's) and return `Err(Cancelled)` when it stops because of it.
    ///
    /// `Send + 'static` because the job runs in a task of its own, which may run on any thread
    /// and outlive this call.
    ///
    /// # Errors
    /// [`Closed`] once [`close`](Self::close) has begun; the job is dropped, never called.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn spawn<F, Fut>(&self, job: F) -> Result<JobId, Closed>
    where
        F: FnOnce(CancelToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Cancelled>> + Send + 'static,
    {
        let mut state = lock(&self.shared.state);
        if state.closing {
            return Err(Closed);
        }
        // Join the tasks already over, so that a long-lived scheduler does not keep every
        // finished task (a JoinSet holds a task until it is joined).
        while let Some(joined) = state.jobs.try_join_next_with_id() {
            state.record(joined);
        }
        let id = state.next_id();
        let token = self.shared.token.child();
        let slots = Arc::clone(&self.shared.slots);
        let task = state.jobs.spawn(async move {
            let _slot = tokio::select! {
                // A job still waiting for a slot when close begins gives up its place: it has
                // not started, so it is dropped without ever being polled. `biased`: a job
                // spawned just before close finds both ready at once, and must not start.
                biased;
                () = token.cancelled() => return Ended::NeverStarted,
                slot = slots.acquire_owned() => {
                    slot.expect("the scheduler never closes its semaphore")
                }
            };
            match job(token).await {
                Ok(()) => Ended::Finished,
                Err(Cancelled) => Ended::Stopped,
            }
            // `_slot` is dropped here, or when the task is aborted: either way the slot is freed.
        });
        state.tasks.insert(task.id(), id);
        Ok(id)
    }

    /// Runs `work` in a task of its own, which no timeout, abort or close can cut short, and
    /// gives back a handle to await its output (stage 4).
    ///
    /// This is what "shield" means in tokio: a spawned task is not cancelled when the future
    /// that spawned it is dropped. Dropping the handle only detaches it. The scheduler still
    /// counts the work, so that [`close`](Self::close) waits for it. Shielded work does not
    /// take a slot: a job that awaits its own shielded clean-up while holding the last slot
    /// would otherwise wait for ever.
    ///
    /// # Errors
    /// [`Closed`] once close has returned. While close is under way shielded work is still
    /// accepted: that is when stopping jobs need it, for their clean-up.
    pub fn shield<F>(&self, work: F) -> Result<Shielded<F::Output>, Closed>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let guard = {
            let mut state = lock(&self.shared.state);
            if state.closed {
                return Err(Closed);
            }
            state.shields_running += 1;
            ShieldCount {
                id: state.next_id(),
                shared: Arc::clone(&self.shared),
            }
        };
        let id = guard.id;
        let handle = tokio::spawn(async move {
            // Counted until the work ends, whichever way: the count goes down in `Drop`.
            let _counted = guard;
            work.await
        });
        Ok(Shielded { id, handle })
    }

    /// Closes the scheduler: stops accepting jobs, cancels every job's token, waits until every
    /// job has ended or `grace` has passed, aborts the jobs still running then (and waits until
    /// they are gone), waits for shielded work, and reports what became of every job.
    ///
    /// Returns at once, with `None`, if close was called before: only the first call closes.
    ///
    /// Cancel safety: dropping this future part way aborts the jobs it was waiting for (a
    /// dropped `JoinSet` aborts its tasks) and loses the report.
    pub async fn close(&self, grace: Duration) -> Option<CloseReport> {
        let deadline = Instant::now() + grace;
        // 1. Stop accepting, and take the jobs: from now on they are close's business.
        let mut jobs = {
            let mut state = lock(&self.shared.state);
            if state.closing {
                return None;
            }
            state.closing = true;
            std::mem::take(&mut state.jobs)
        };
        // 2. Signal: running jobs see their token cancelled, waiting jobs give up their place.
        self.shared.token.cancel();
        // 3. Drain until the deadline, recording each job as it ends.
        let drain = async {
            while let Some(joined) = jobs.join_next_with_id().await {
                lock(&self.shared.state).record(joined);
            }
        };
        // `join_next_with_id` is cancel safe: when the deadline wins, no job's end is lost.
        if timeout_at(deadline, drain).await.is_err() {
            // 4. Abort the rest, then wait for them: `abort` only asks, and a task is dropped
            //    (its `Drop`s run, its slot is freed) when the runtime next gets to it.
            jobs.abort_all();
            while let Some(joined) = jobs.join_next_with_id().await {
                lock(&self.shared.state).record(joined);
            }
        }
        // 5. Shielded work is never cut: wait for it, however long it takes.
        loop {
            let all_done = self.shared.shields_done.notified();
            {
                let mut state = lock(&self.shared.state);
                if state.shields_running == 0 {
                    state.closed = true;
                    let mut report = std::mem::take(&mut state.report);
                    report.sort();
                    return Some(report);
                }
            }
            all_done.await;
        }
    }
}

impl State {
    fn next_id(&mut self) -> JobId {
        let id = JobId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Files a joined job under what became of it.
    fn record(&mut self, joined: Result<(tokio::task::Id, Ended), JoinError>) {
        let task = match &joined {
            Ok((task, _)) => *task,
            Err(error) => error.id(),
        };
        let id = self.tasks.remove(&task).expect("every job's task is known");
        let report = &mut self.report;
        match joined {
            Ok((_, Ended::Finished)) => report.finished.push(id),
            Ok((_, Ended::Stopped)) => report.stopped.push(id),
            Ok((_, Ended::NeverStarted)) => report.never_started.push(id),
            Err(error) => match error.try_into_panic() {
                Ok(payload) => report.panicked.push((id, panic_message(payload.as_ref()))),
                Err(_) => report.aborted.push(id),
            },
        }
    }
}

impl CloseReport {
    fn sort(&mut self) {
        self.finished.sort_unstable();
        self.stopped.sort_unstable();
        self.aborted.sort_unstable();
        self.never_started.sort_unstable();
        self.panicked.sort_unstable();
        self.shielded.sort_unstable();
    }
}

/// A panic's message: `panic!("literal")` carries a `&'static str`, `panic!("{x}")` a `String`.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else {
        "(a panic whose payload is not text)".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 4: shielding.

/// Counts a shielded work as running while it lives; its `Drop` files it in the report and
/// wakes close when it was the last. A guard, so that the count goes down however the work ends
/// (returns, panics, or is dropped when the runtime shuts down).
struct ShieldCount {
    id: JobId,
    shared: Arc<Shared>,
}

impl Drop for ShieldCount {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.report.shielded.push(self.id);
        state.shields_running -= 1;
        if state.shields_running == 0 {
            self.shared.shields_done.notify_waiters();
        }
    }
}

/// The handle of shielded work: await it for the work's output. Dropping it (a timeout around
/// it, say) does not stop the work; it runs on, and the scheduler's close waits for it.
#[derive(Debug)]
pub struct Shielded<T> {
    id: JobId,
    handle: JoinHandle<T>,
}

impl<T> Shielded<T> {
    /// The work's number in the scheduler's report.
    pub fn id(&self) -> JobId {
        self.id
    }
}

impl<T> Future for Shielded<T> {
    type Output = T;

    /// The work's output; if the work panicked, the same panic, here, as if it had been
    /// awaited inline.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match ready!(Pin::new(&mut self.handle).poll(cx)) {
            Ok(output) => Poll::Ready(output),
            Err(error) => match error.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                // Nothing aborts shielded work; only a runtime that shuts down drops it.
                Err(_) => panic!("shielded work was dropped: its runtime shut down"),
            },
        }
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
/// One `select!` waits on the three. Every time one branch wins, the others are *dropped*, so
/// each must be **cancel safe**: dropping it part way must lose nothing. `Lines::next_line` is
/// (a half-read line stays in the `BufReader`'s buffer for the next call); `read_line` is not
/// (the half it read is gone with the future). The tick comes from one `Interval` made before
/// the loop: a `sleep` made inside it would start over whenever a line arrives.
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
    let mut lines = BufReader::new(reader).lines();
    let mut ticks = interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            // The token first, then the tick: a tick is ready once per period, so it cannot
            // starve the lines, while a flood of lines first would starve the ticks.
            biased;
            () = token.cancelled() => return Ok(()),
            _ = ticks.tick() => on_event(Event::Tick),
            line = lines.next_line() => match line? {
                Some(line) => on_event(Event::Line(line)),
                None => return Ok(()),
            },
        }
    }
}
