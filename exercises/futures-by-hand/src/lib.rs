//! # futures-by-hand
//!
//! Write four futures without `async`, to see what `.await` does underneath: [`yield_now`]
//! (pending once, then ready), a [`promise`] that a [`Resolver`] settles and any number of
//! [`Promise`] handles await, an [`Event`] that tasks wait for, and [`deadline`], which limits
//! any future in time. Read `README.md` beside this file first: it explains `poll`, `Context`,
//! the waker contract and `Pin`, and gives the stages. Run `just test futures-by-hand`.
//!
//! The types and signatures are given; the bodies that say `todo!()` are yours, and so are the
//! private fields (add what you need). You will also write some `Drop` impls of your own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Stage 1: a future that is pending once.

/// A future that returns `Pending` at its first poll and `Ready(())` at the next one.
pub fn yield_now() -> YieldNow {
    todo!("yield_now: return a YieldNow that has not yielded yet")
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let _ = (self.yielded, cx);
        todo!("YieldNow::poll: Pending (and a wake-up) the first time, Ready(()) the next")
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

/// A new unsettled promise: the [`Resolver`] settles it, the [`Promise`] (clone it freely)
/// waits for it.
pub fn promise<T, E>() -> (Resolver<T, E>, Promise<T, E>) {
    todo!("promise: make the shared state, and hand it to a Resolver and a Promise")
}

/// What the resolver and every promise handle share: add what you need (the outcome once
/// settled, the wakers of the awaiters, the done callbacks).
struct State<T, E> {
    outcome: Option<Outcome<T, E>>,
}

/// Settles its promise, once: [`resolve`](Self::resolve), [`reject`](Self::reject), or drop it
/// to abandon the promise (every awaiter then gets [`PromiseError::Abandoned`]).
pub struct Resolver<T, E> {
    shared: Arc<Mutex<State<T, E>>>,
}

impl<T, E> Resolver<T, E> {
    /// Settles the promise with `value`; `Err(value)` if it was cancelled first.
    pub fn resolve(self, value: T) -> Result<(), T> {
        let _ = (&self.shared, value);
        todo!("Resolver::resolve: settle with Ok(value) and wake the awaiters")
    }

    /// Settles the promise with [`PromiseError::Rejected`]`(error)`; `Err(error)` if it was
    /// cancelled first.
    pub fn reject(self, error: E) -> Result<(), E> {
        let _ = (&self.shared, error);
        todo!("Resolver::reject: settle with Err(Rejected(error)) and wake the awaiters")
    }
}

impl<T, E> fmt::Debug for Resolver<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// A handle on a promise: await it (each clone is an awaiter of its own), read its result,
/// cancel it, or register done callbacks.
#[must_use = "futures do nothing unless polled"]
pub struct Promise<T, E> {
    shared: Arc<Mutex<State<T, E>>>,
}

impl<T, E> Promise<T, E> {
    /// Whether the promise is settled (resolved, rejected, cancelled or abandoned).
    pub fn is_done(&self) -> bool {
        todo!("Promise::is_done")
    }

    /// Cancels the promise if it is not settled yet: every awaiter and callback gets
    /// [`PromiseError::Cancelled`]. Returns whether it was this call that cancelled it.
    pub fn cancel(&self) -> bool {
        todo!("Promise::cancel: settle with Err(Cancelled) unless already settled")
    }

    /// Removes a done callback that has not run yet, so it never runs; returns whether it was
    /// still there.
    pub fn remove_done_callback(&self, id: CallbackId) -> bool {
        let _ = id;
        todo!("Promise::remove_done_callback")
    }
}

impl<T: Clone, E: Clone> Promise<T, E> {
    /// The outcome, if the promise is settled; [`PromiseError::NotDone`] if not (it does not
    /// wait: await the promise for that).
    pub fn result(&self) -> Outcome<T, E> {
        let _ = self.shared.lock().map(|state| state.outcome.is_some());
        todo!("Promise::result: a clone of the outcome, or Err(NotDone)")
    }
}

impl<T, E> Promise<T, E>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    /// Registers `callback` to run once the promise is settled, with its outcome: after the
    /// call that settles it has returned (never inside it, nor inside this call), on the
    /// runtime, in the order callbacks were added, each exactly once.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`: the callbacks run on it.
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(&Outcome<T, E>) + Send + 'static,
    ) -> CallbackId {
        let _ = callback;
        todo!("Promise::add_done_callback (stage 1, last part)")
    }
}

impl<T: Clone, E: Clone> Future for Promise<T, E> {
    type Output = Outcome<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let _ = cx;
        todo!("Promise::poll: Ready(outcome) once settled, else store the waker and Pending")
    }
}

impl<T, E> Clone for Promise<T, E> {
    /// Another handle on the same promise, and so another awaiter.
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T, E> fmt::Debug for Promise<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the event.

/// A flag that tasks can wait for, like `asyncio.Event`: [`set`](Self::set) releases every
/// waiter, [`clear`](Self::clear) makes later waiters wait again. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Event {
    shared: Arc<Mutex<EventState>>,
}

/// What the clones of an event share: add what you need.
#[derive(Debug, Default)]
struct EventState {
    set: bool,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Self {
        todo!("Event::new")
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        let _ = self.shared.lock().map(|state| state.set);
        todo!("Event::is_set")
    }

    /// Sets the flag and releases every waiter.
    pub fn set(&self) {
        todo!("Event::set: raise the flag and wake every waiter")
    }

    /// Clears the flag: waiters that start waiting from now on wait for the next `set`.
    pub fn clear(&self) {
        todo!("Event::clear")
    }

    /// A future that finishes once the flag is set.
    pub fn wait(&self) -> EventWait {
        todo!("Event::wait: a future that waits for this event")
    }
}

/// The future of [`Event::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct EventWait {
    event: Event,
}

impl Future for EventWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let _ = (&self.event, cx);
        todo!("EventWait::poll (stage 2)")
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
/// finishes in time, `Err(Elapsed)` once the limit has passed. A future that is ready exactly
/// at the limit wins.
pub fn deadline<F: Future>(after: Duration, future: F) -> Deadline<F> {
    let _ = (after, future);
    todo!("deadline (stage 3): a Deadline with the future and a tokio::time::Sleep")
}

/// The future of [`deadline`]. Its fields are yours: it needs the future and a timer, both
/// reached through pin projection (`pin_project_lite::pin_project!`, see the README).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Deadline<F> {
    future: F,
    after: Duration,
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let _ = (&self.future, self.after, cx);
        todo!("Deadline::poll (stage 3): the future first, then the timer")
    }
}
