//! # futures-by-hand: reference solution
//!
//! Four small futures written without `async`, to see what `.await` does underneath:
//!
//! - [`yield_now`]: a future that is `Pending` once, then `Ready` (stage 1). The smallest
//!   future that keeps the waker contract: whoever returns `Pending` makes sure the waker of
//!   that poll is woken once progress is possible; here progress is possible at once.
//! - [`promise`]: a settable slot, what Python calls a Future and JavaScript a Promise: a
//!   [`Resolver`] settles it once (resolve, reject, or abandon by being dropped), any
//!   [`Promise`] handle can cancel it, read its [`result`](Promise::result), register done
//!   callbacks, and await it (stage 1), many at a time (stage 2).
//! - [`Event`]: a flag that tasks wait for, like `asyncio.Event` (stage 2).
//! - [`deadline`]: a combinator that wraps any future, `Unpin` or not, with a time limit, like
//!   `tokio::time::timeout` (stage 3): the pin-projection lesson.
//!
//! The promise and the event share one design, and it is the whole kata in three rules:
//!
//! 1. **Keep the latest waker, one slot per waiting future.** A future may be polled with a
//!    different waker each time (it moved to another task, or a `select!` polled it), and only
//!    the latest one is sure to reach the task that waits now.
//! 2. **Check and register under one lock.** Looking at the state and storing the waker are one
//!    step: if a settle on another thread could fall between them, it would wake nobody, and
//!    the future would wait for ever (the lost wake-up).
//! 3. **Let wakers go.** Waking takes the wakers out of the state (and wakes them after the
//!    lock is released); a waiting future that is dropped takes its slot out. Nothing keeps a
//!    waker it will never use, so thousands of abandoned waiters cost nothing afterwards.
//!
//! In production: `tokio::sync::oneshot` is the promise with one awaiter,
//! `futures::future::Shared` lets many await one result, `tokio::sync::Notify` and the
//! `event-listener` crate are what events are built on, `tokio::time::timeout` is the deadline
//! and `tokio::task::yield_now` the first future.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

// ---------------------------------------------------------------------------------------------
// Stage 1: a future that is pending once.

/// A future that returns `Pending` at its first poll and `Ready(())` at the next one.
///
/// Awaiting it gives the other tasks of the runtime a turn, as `tokio::task::yield_now` does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let other = tokio::spawn(async { "the other task ran" });
/// futures_by_hand::yield_now().await;
/// assert!(other.is_finished());
/// # }
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // `Pending` promises the executor a wake-up once progress is possible. Progress is
        // possible at once, so wake now: the executor puts the task at the back of its queue
        // and polls it again after the others. Without this the task would never run again.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------------
// The waiting futures of a promise or an event.

/// The wakers of the futures waiting on one promise or event: one slot per waiting future,
/// keyed by a number that future keeps, holding the waker of its latest poll only.
///
/// A `BTreeMap` gives the memory of removed slots back, and wakes in the order the futures
/// started to wait.
#[derive(Debug, Default)]
struct Waiters {
    wakers: BTreeMap<u64, Waker>,
    next_key: u64,
}

impl Waiters {
    /// Stores `waker` in the slot of the future that holds `key`, making the slot at its first
    /// wait. A waker stored before for that future is dropped: it may belong to a task that no
    /// longer polls it.
    fn register(&mut self, key: &mut Option<u64>, waker: &Waker) {
        let key = *key.get_or_insert_with(|| {
            self.next_key += 1;
            self.next_key
        });
        match self.wakers.get_mut(&key) {
            // The same task polled again: nothing to change (and nothing to clone).
            Some(stored) if stored.will_wake(waker) => {}
            Some(stored) => stored.clone_from(waker),
            None => {
                self.wakers.insert(key, waker.clone());
            }
        }
    }

    /// Gives back the slot of a future that stops waiting.
    fn remove(&mut self, key: Option<u64>) {
        if let Some(key) = key {
            self.wakers.remove(&key);
        }
    }

    /// Empties every slot. Wake what it returns after releasing the lock: a woken task may run
    /// at once on another thread, and the first thing it does is take that lock.
    fn take_all(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.wakers).into_values().collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 1 and 2: the promise.

/// Why a promise has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromiseError<E> {
    /// The resolver rejected it with this error.
    #[error("the promise was rejected: {0}")]
    Rejected(E),
    /// A [`Promise`] handle cancelled it before it was settled.
    #[error("the promise was cancelled")]
    Cancelled,
    /// Its [`Resolver`] was dropped without settling it: nobody ever will.
    #[error("the promise was abandoned: its resolver was dropped without settling it")]
    Abandoned,
    /// Only from [`Promise::result`]: the promise is not settled yet. Awaiting never gives it;
    /// it waits instead.
    #[error("the promise is not done yet")]
    NotDone,
}

/// What a promise settled to, as awaiting it, [`Promise::result`] and done callbacks see it.
pub type Outcome<T, E> = Result<T, PromiseError<E>>;

/// Names a done callback, to remove it with [`Promise::remove_done_callback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

type Callback<T, E> = Box<dyn FnOnce(&Outcome<T, E>) + Send>;

/// A new unsettled promise: the [`Resolver`] settles it, the [`Promise`] (clone it freely)
/// waits for it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use futures_by_hand::{PromiseError, promise};
///
/// let (resolver, answer) = promise::<u32, String>();
/// assert_eq!(answer.result(), Err(PromiseError::NotDone));
/// answer.add_done_callback(|outcome| println!("settled: {outcome:?}"));
///
/// let waiter = tokio::spawn(answer.clone());
/// resolver.resolve(42).expect("nobody cancelled it");
/// assert_eq!(waiter.await.unwrap(), Ok(42));
/// assert_eq!(answer.result(), Ok(42));
/// # }
/// ```
pub fn promise<T, E>() -> (Resolver<T, E>, Promise<T, E>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            outcome: None,
            waiters: Waiters::default(),
            callbacks: VecDeque::new(),
            next_callback: 0,
            delivering: false,
        }),
    });
    let resolver = Resolver {
        shared: Arc::clone(&shared),
    };
    (resolver, Promise { shared, key: None })
}

/// What the resolver and every promise handle share.
struct Shared<T, E> {
    state: Mutex<State<T, E>>,
}

struct State<T, E> {
    /// `None` until settled; settled once, never changed after.
    outcome: Option<Outcome<T, E>>,
    waiters: Waiters,
    /// Done callbacks not yet run, in the order they were added.
    callbacks: VecDeque<(CallbackId, Callback<T, E>)>,
    next_callback: u64,
    /// Whether a task that runs the callbacks exists (waiting for the outcome, or running them).
    delivering: bool,
}

impl<T, E> Shared<T, E> {
    fn lock(&self) -> MutexGuard<'_, State<T, E>> {
        // Nothing runs user code under this lock, so a poisoned lock still holds a sound state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Settles the promise with `outcome(value)` and wakes every waiter, unless it is already
    /// settled: then `value` comes back, untouched.
    fn settle<V>(&self, value: V, outcome: impl FnOnce(V) -> Outcome<T, E>) -> Result<(), V> {
        // Storing the outcome and taking the wakers are one step under the lock: an awaiter
        // polled on another thread either sees the outcome or has its waker taken here.
        let wakers = {
            let mut state = self.lock();
            if state.outcome.is_some() {
                return Err(value);
            }
            state.outcome = Some(outcome(value));
            state.waiters.take_all()
        };
        for waker in wakers {
            waker.wake();
        }
        Ok(())
    }

    /// The next callback to run, or `None` once there is none left; then the task that runs
    /// them ends, and the next callback added starts another.
    fn next_callback(&self) -> Option<Callback<T, E>> {
        let mut state = self.lock();
        let next = state.callbacks.pop_front().map(|(_, callback)| callback);
        state.delivering = next.is_some();
        next
    }
}

/// Settles its promise, once: [`resolve`](Self::resolve), [`reject`](Self::reject), or drop it
/// to abandon the promise (every awaiter then gets [`PromiseError::Abandoned`] instead of
/// waiting for ever).
///
/// Settling takes `self`, so the compiler already forbids settling twice; what can still
/// happen is that a [`Promise`] handle cancelled it first.
pub struct Resolver<T, E> {
    shared: Arc<Shared<T, E>>,
}

impl<T, E> Resolver<T, E> {
    /// Settles the promise with `value`; `Err(value)` if it was cancelled first.
    pub fn resolve(self, value: T) -> Result<(), T> {
        self.shared.settle(value, Ok)
    }

    /// Settles the promise with [`PromiseError::Rejected`]`(error)`; `Err(error)` if it was
    /// cancelled first.
    pub fn reject(self, error: E) -> Result<(), E> {
        self.shared
            .settle(error, |error| Err(PromiseError::Rejected(error)))
    }
}

impl<T, E> Drop for Resolver<T, E> {
    fn drop(&mut self) {
        // After `resolve` or `reject` this finds the promise settled and does nothing.
        let _ = self.shared.settle((), |()| Err(PromiseError::Abandoned));
    }
}

impl<T, E> fmt::Debug for Resolver<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// A handle on a promise: await it (each clone is an awaiter of its own), read its result,
/// cancel it, or register done callbacks.
///
/// It is a *settable slot*, not a computation: awaiting it only waits, and dropping an awaiter
/// only stops that one waiting (its waker goes with it); the promise is settled by its
/// [`Resolver`], or cancelled by any handle.
#[must_use = "futures do nothing unless polled"]
pub struct Promise<T, E> {
    shared: Arc<Shared<T, E>>,
    /// This handle's slot among the waiters, from its first `Pending` on.
    key: Option<u64>,
}

impl<T, E> Promise<T, E> {
    /// Whether the promise is settled (resolved, rejected, cancelled or abandoned).
    pub fn is_done(&self) -> bool {
        self.shared.lock().outcome.is_some()
    }

    /// Cancels the promise if it is not settled yet: every awaiter and callback gets
    /// [`PromiseError::Cancelled`], and the resolver's `resolve` gives its value back.
    /// Returns whether it was this call that cancelled it.
    pub fn cancel(&self) -> bool {
        self.shared
            .settle((), |()| Err(PromiseError::Cancelled))
            .is_ok()
    }

    /// Removes a done callback that has not run yet, so it never runs; returns whether it was
    /// still there.
    pub fn remove_done_callback(&self, id: CallbackId) -> bool {
        let mut state = self.shared.lock();
        let Some(at) = state.callbacks.iter().position(|(added, _)| *added == id) else {
            return false;
        };
        state.callbacks.remove(at);
        true
    }
}

impl<T: Clone, E: Clone> Promise<T, E> {
    /// The outcome, if the promise is settled; [`PromiseError::NotDone`] if not (it does not
    /// wait: await the promise for that).
    pub fn result(&self) -> Outcome<T, E> {
        self.shared
            .lock()
            .outcome
            .clone()
            .unwrap_or(Err(PromiseError::NotDone))
    }
}

impl<T, E> Promise<T, E>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    /// Registers `callback` to run once the promise is settled, with its outcome.
    ///
    /// Callbacks run **after** the call that settles the promise has returned, never inside
    /// it (nor inside this call, for a promise already settled): a task of the runtime runs
    /// them, in the order they were added, each exactly once. That is what asyncio does too
    /// (`call_soon`), and for the same reason: code that settles a promise must not find
    /// arbitrary callbacks running in the middle of its own work. A callback that panics does
    /// not stop the ones after it.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`: the callbacks run on it.
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(&Outcome<T, E>) + Send + 'static,
    ) -> CallbackId {
        let (id, start) = {
            let mut state = self.shared.lock();
            let id = CallbackId(state.next_callback);
            state.next_callback += 1;
            state.callbacks.push_back((id, Box::new(callback)));
            let start = !state.delivering;
            state.delivering = true;
            (id, start)
        };
        if start {
            // One task per promise runs its callbacks, one after the other: that is what keeps
            // them in order. It waits like any awaiter, so settling spawns nothing.
            tokio::spawn(run_callbacks(self.clone()));
        }
        id
    }
}

/// The task that runs a promise's done callbacks: it awaits the promise, then runs whatever
/// callbacks are there, including ones added meanwhile.
async fn run_callbacks<T: Clone, E: Clone>(promise: Promise<T, E>) {
    let shared = Arc::clone(&promise.shared);
    let outcome = promise.await;
    while let Some(callback) = shared.next_callback() {
        // As asyncio does, a callback that fails is reported (the panic hook prints it) and
        // the others still run.
        let _ = catch_unwind(AssertUnwindSafe(|| callback(&outcome)));
    }
}

impl<T: Clone, E: Clone> Future for Promise<T, E> {
    type Output = Outcome<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Promise` is `Unpin` (an `Arc` and a number), so it may be used as a plain `&mut`.
        let this = self.get_mut();
        let mut state = this.shared.lock();
        if let Some(outcome) = &state.outcome {
            return Poll::Ready(outcome.clone());
        }
        // Still under the lock that saw "not settled": no settle can fall in between.
        state.waiters.register(&mut this.key, cx.waker());
        Poll::Pending
    }
}

impl<T, E> Clone for Promise<T, E> {
    /// Another handle on the same promise, and so another awaiter (with no waker yet).
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            key: None,
        }
    }
}

impl<T, E> Drop for Promise<T, E> {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.shared.lock().waiters.remove(self.key);
        }
    }
}

impl<T, E> fmt::Debug for Promise<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("done", &self.is_done())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the event.

/// A flag that tasks can wait for, like `asyncio.Event`: [`set`](Self::set) releases every
/// waiter, [`clear`](Self::clear) makes later waiters wait again. Clones share the flag.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ready = futures_by_hand::Event::new();
/// let waiter = tokio::spawn(ready.wait());
/// ready.set();
/// waiter.await.unwrap();
/// assert!(ready.is_set());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Event {
    shared: Arc<Mutex<EventState>>,
}

#[derive(Debug, Default)]
struct EventState {
    set: bool,
    /// How many times the flag went from clear to set: a waiter that saw another number
    /// when it started waiting was released, even if the flag is clear again now.
    sets: u64,
    waiters: Waiters,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, EventState> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.lock().set
    }

    /// Sets the flag and releases every waiter; those that start waiting while it is set
    /// finish at their first poll.
    pub fn set(&self) {
        let wakers = {
            let mut state = self.lock();
            if state.set {
                return;
            }
            state.set = true;
            state.sets += 1;
            state.waiters.take_all()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Clears the flag: waiters that start waiting from now on wait for the next `set`. A
    /// waiter that was waiting when the flag was set stays released, even if it has not run
    /// yet.
    pub fn clear(&self) {
        self.lock().set = false;
    }

    /// A future that finishes once the flag is set. Like every future it does nothing until
    /// polled: it starts waiting at its first poll.
    pub fn wait(&self) -> EventWait {
        EventWait {
            event: self.clone(),
            key: None,
            sets_seen: None,
        }
    }
}

/// The future of [`Event::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct EventWait {
    event: Event,
    key: Option<u64>,
    /// The event's count of sets when this future started waiting.
    sets_seen: Option<u64>,
}

impl Future for EventWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.event.lock();
        let seen = *this.sets_seen.get_or_insert(state.sets);
        // Set now, or set (and maybe cleared again) since this future started waiting.
        if state.set || state.sets != seen {
            return Poll::Ready(());
        }
        state.waiters.register(&mut this.key, cx.waker());
        Poll::Pending
    }
}

impl Drop for EventWait {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.event.lock().waiters.remove(self.key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 3: the deadline.

/// The error of a [`deadline`] that passed before its future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the deadline of {after:?} passed before the future finished")]
pub struct Elapsed {
    /// The time limit that passed.
    pub after: Duration,
}

/// Runs `future` with a time limit of `after`, counted from this call: `Ok(output)` if it
/// finishes in time, `Err(Elapsed)` once the limit has passed, and then the future is dropped
/// with the `Deadline` (which cancels it). A future that is ready exactly at the limit wins:
/// it is polled before the timer, as in `tokio::time::timeout`.
///
/// Any future will do, `Unpin` or not (an `async` block is not): the `Deadline` stores it
/// inline, with no `Box`, and reaches it through pin projection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use futures_by_hand::{Elapsed, deadline};
///
/// let quick = async {
///     tokio::time::sleep(Duration::from_millis(100)).await;
///     7
/// };
/// assert_eq!(deadline(Duration::from_millis(200), quick).await, Ok(7));
///
/// let never = std::future::pending::<u32>();
/// let after = Duration::from_millis(200);
/// assert_eq!(deadline(after, never).await, Err(Elapsed { after }));
/// # }
/// ```
///
/// # Panics
/// Outside a tokio runtime with a timer, like `tokio::time::sleep`.
pub fn deadline<F: Future>(after: Duration, future: F) -> Deadline<F> {
    Deadline {
        future,
        // Made now, so the limit counts from the call, not from the first poll.
        sleep: tokio::time::sleep(after),
        after,
    }
}

pin_project! {
    /// The future of [`deadline`].
    ///
    /// `F` may be `!Unpin`, and so may `Sleep`: once the `Deadline` is pinned, neither field
    /// may move. `pin_project!` writes the one safe way to reach them: `project()` turns
    /// `Pin<&mut Deadline<F>>` into a `Pin<&mut F>` and a `Pin<&mut Sleep>` (the fields marked
    /// `#[pin]`) and a plain `&mut Duration` (the one that is not).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Deadline<F> {
        #[pin]
        future: F,
        #[pin]
        sleep: Sleep,
        after: Duration,
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The future first: one that is ready exactly at the limit wins.
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        // Polling the timer registers this task's waker with it: the task is woken at the
        // limit even if the future never wakes it again.
        ready!(this.sleep.poll(cx));
        Poll::Ready(Err(Elapsed { after: *this.after }))
    }
}
