//! Wakers that count, for testing futures written by hand without a runtime.
//!
//! A future's side of the waker contract is: when it returns `Pending`, keep the waker of the
//! latest poll and wake it once progress is possible; after that, let it go. A
//! [`CountingWaker`] makes each part observable: how often it was woken, and whether anyone
//! still holds a clone of it (so a future that keeps a waker for ever, or keeps a stale one and
//! wakes that instead, shows).
//!
//! ```
//! use std::future::Future;
//! use std::pin::pin;
//! use std::task::{Context, Poll};
//! use kata_harness::wakers::CountingWaker;
//!
//! let waker = CountingWaker::new();
//! let mut ready = pin!(std::future::ready(7));
//! assert_eq!(ready.as_mut().poll(&mut Context::from_waker(&waker.waker())), Poll::Ready(7));
//! assert_eq!(waker.wakes(), 0);
//! assert_eq!(waker.held_elsewhere(), 0);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};

#[derive(Debug, Default)]
struct Counter {
    wakes: AtomicUsize,
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that counts its wakes and knows how many clones of it are alive.
#[derive(Debug, Clone, Default)]
pub struct CountingWaker {
    counter: Arc<Counter>,
}

impl CountingWaker {
    /// A fresh waker, woken 0 times.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `Waker` to poll with; every clone of it counts as held until dropped.
    pub fn waker(&self) -> Waker {
        Waker::from(Arc::clone(&self.counter))
    }

    /// How many times any of its wakers was woken.
    pub fn wakes(&self) -> usize {
        self.counter.wakes.load(Ordering::SeqCst)
    }

    /// Wakers made from this one that are still alive somewhere (in the future under test, say).
    /// Clones of the `CountingWaker` itself do not count.
    pub fn held_elsewhere(&self) -> usize {
        let handles = Arc::strong_count(&self.counter);
        // Our own handle, and every clone of the `CountingWaker`, hold the counter too; count
        // only the `Waker`s. Clones of `CountingWaker` are rare in a test and share this count,
        // so the figure is exact when there is just one.
        handles.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_are_counted_and_held_wakers_are_seen() {
        let counting = CountingWaker::new();
        let waker = counting.waker();
        let clone = waker.clone();
        assert_eq!(counting.held_elsewhere(), 2);
        waker.wake_by_ref();
        waker.wake();
        assert_eq!(counting.wakes(), 2);
        assert_eq!(counting.held_elsewhere(), 1);
        drop(clone);
        assert_eq!(counting.held_elsewhere(), 0);
    }
}
