//! Leak checks: is it gone, and is everything back where it started?
//!
//! - [`DropProbe`]: a `Weak` watching something that must be dropped (a request's buffer, a
//!   listener's closure). The rule it checks is Rust's own: memory is freed when the last owner
//!   goes, so "dropped" is the precise form of "not leaked".
//! - [`TaskBaseline`]: the number of live tokio tasks must come back to what it was.
//! - [`assert_back_to_baseline`]: the same for any count, such as an emitter's listeners.
//! - [`RssSampler`] (from `kata-heap`): process RSS over many iterations.

use std::any::Any;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::completion::alive_tasks;
use crate::hint::Hint;
use crate::report;

pub use kata_heap::RssSampler;

/// Watches a value that must be dropped by some point in the test.
#[derive(Debug)]
pub struct DropProbe {
    watched: Weak<dyn Any + Send + Sync>,
}

/// Put this inside the value a [`DropProbe`] watches; it dies with it.
#[derive(Debug, Clone)]
pub struct DropToken(#[allow(dead_code)] Arc<dyn Any + Send + Sync>);

impl DropProbe {
    /// A probe and the token it watches: move the token into the value that must be dropped.
    pub fn new() -> (Self, DropToken) {
        let token: Arc<dyn Any + Send + Sync> = Arc::new(());
        (
            Self {
                watched: Arc::downgrade(&token),
            },
            DropToken(token),
        )
    }

    /// A probe watching an existing `Arc`.
    pub fn watch<T: Any + Send + Sync>(value: &Arc<T>) -> Self {
        let weak: Weak<T> = Arc::downgrade(value);
        Self { watched: weak }
    }

    /// Whether the watched value has been dropped.
    pub fn is_dropped(&self) -> bool {
        self.watched.strong_count() == 0
    }

    /// Asserts the watched value has been dropped.
    #[track_caller]
    pub fn assert_dropped(&self, what: &str, hint: &Hint) {
        let owners = self.watched.strong_count();
        if owners != 0 {
            report::fail(
                &format!("{what}: still alive"),
                format_args!("still owned ({owners} strong reference(s) left)"),
                "dropped by now",
                hint,
            );
        }
    }
}

/// Lets the runtime run everything that is ready: spawned tasks finish or observe their abort,
/// and dropped handles get cleaned up. Costs no virtual time.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// The live tokio task count at one moment, to compare with later.
#[derive(Debug, Clone, Copy)]
pub struct TaskBaseline {
    alive: usize,
}

impl TaskBaseline {
    /// Records the current number of live tokio tasks.
    pub fn capture() -> Self {
        Self {
            alive: alive_tasks(),
        }
    }

    /// The recorded count.
    pub fn alive(&self) -> usize {
        self.alive
    }

    /// Asserts that the live task count is back to the baseline, after letting ready tasks run
    /// and waiting up to `grace` of (virtual) time for them to wind down.
    #[track_caller]
    pub fn assert_back(
        &self,
        what: &str,
        grace: Duration,
        hint: &Hint,
    ) -> impl Future<Output = ()> + use<> {
        let caller = std::panic::Location::caller();
        let baseline = self.alive;
        let (what, hint) = (what.to_owned(), hint.clone());
        async move {
            let deadline = tokio::time::Instant::now() + grace;
            loop {
                settle().await;
                let now = alive_tasks();
                if now <= baseline {
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    report::fail(
                        &format!("{what}: tasks left running (checked at {caller})"),
                        format_args!("{now} live task(s): {} more", now - baseline),
                        format_args!("{baseline} live tokio task(s), as before"),
                        &hint,
                    );
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Asserts that a count (listeners, open files, queued jobs) is back to its baseline.
#[track_caller]
pub fn assert_back_to_baseline(what: &str, now: usize, baseline: usize, hint: &Hint) {
    if now != baseline {
        report::fail(
            &format!("{what}: not back to its baseline"),
            format_args!("{now}"),
            format_args!("{baseline}, as before"),
            hint,
        );
    }
}
