//! "This completes within T" and "this deadlocks", measured in virtual time.
//!
//! On the paused clock an idle runtime jumps straight to its next timer, so waiting for a
//! deadlock costs nothing: if the future has not finished when the virtual limit passes, nothing
//! could have made it finish. Both checks report how many tokio tasks are still alive, which is
//! usually the first clue to *who* is stuck.

use std::future::Future;
use std::time::Duration;

use crate::hint::Hint;
use crate::report;

/// Tokio tasks alive on the current runtime (spawned and not yet finished or dropped).
///
/// Panics outside a tokio runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Awaits `future`, failing the test if it has not finished within `limit` of virtual time.
#[track_caller]
pub fn completes_within<F: Future>(
    what: &str,
    future: F,
    limit: Duration,
    hint: &Hint,
) -> impl Future<Output = F::Output> + use<F> {
    // `#[track_caller]` does not reach into an async body, so capture the location here.
    let caller = std::panic::Location::caller();
    let (what, hint) = (what.to_owned(), hint.clone());
    async move {
        match tokio::time::timeout(limit, future).await {
            Ok(output) => output,
            Err(_) => report::fail(
                &format!("{what}: did not finish (checked at {caller})"),
                format_args!(
                    "still waiting after {limit:?}; {} tokio task(s) alive",
                    alive_tasks()
                ),
                format_args!("to finish within {limit:?} of virtual time"),
                &hint,
            ),
        }
    }
}

/// Awaits `future` and counts how often it was polled; gives up (with the count) after `limit`
/// polls without an answer.
///
/// On the paused clock a timer that fires every millisecond and a wake-up at the right instant
/// can end at the same virtual time; the number of polls tells them apart. Code that waits to be
/// woken is polled a handful of times, code that checks on a timer or spins on `yield_now`
/// hundreds: `Err(polls)` stops such a future before it runs away.
pub async fn count_polls<F: Future>(future: F, limit: usize) -> Result<(F::Output, usize), usize> {
    let mut future = std::pin::pin!(future);
    let mut polls = 0;
    std::future::poll_fn(|cx| {
        polls += 1;
        match future.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => std::task::Poll::Ready(Ok((output, polls))),
            std::task::Poll::Pending if polls >= limit => std::task::Poll::Ready(Err(polls)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await
}

/// What [`assert_deadlocks`] saw when the limit passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlock {
    /// Tokio tasks still alive when the future was given up on.
    pub alive_tasks: usize,
}

/// Asserts that `future` never finishes: it is still pending after `limit` of virtual time.
///
/// Used by katas that *demonstrate* a deadlock. The future is dropped afterwards; tasks it
/// spawned stay stuck until the test's runtime shuts down.
#[track_caller]
pub fn assert_deadlocks<F: Future>(
    what: &str,
    future: F,
    limit: Duration,
    hint: &Hint,
) -> impl Future<Output = Deadlock> + use<F>
where
    F::Output: std::fmt::Debug,
{
    let caller = std::panic::Location::caller();
    let (what, hint) = (what.to_owned(), hint.clone());
    async move {
        match tokio::time::timeout(limit, future).await {
            Err(_) => Deadlock {
                alive_tasks: alive_tasks(),
            },
            Ok(output) => report::fail(
                &format!("{what}: finished, but a deadlock was expected (checked at {caller})"),
                format_args!("finished with {output:?}"),
                format_args!("still pending after {limit:?} of virtual time"),
                &hint,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint::Stage;
    use crate::ms;

    fn h() -> Hint {
        Stage::new("sample", 1).hint("h")
    }

    #[crate::test]
    async fn a_finishing_future_passes_and_returns_its_output() {
        let out = completes_within(
            "sleep",
            async {
                tokio::time::sleep(ms(99)).await;
                7
            },
            ms(100),
            &h(),
        )
        .await;
        assert_eq!(out, 7);
    }

    #[test]
    #[should_panic(expected = "stuck: did not finish")]
    fn a_stuck_future_is_caught_and_alive_tasks_are_counted() {
        crate::run_test(crate::TestConfig::new("stuck"), || async {
            let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
            // A task that waits forever, to be counted.
            let _stuck = tokio::spawn(std::future::pending::<()>());
            tokio::task::yield_now().await;
            completes_within("stuck", rx, ms(100), &h()).await.ok();
        });
    }

    #[test]
    fn the_report_counts_alive_tasks() {
        let panic = std::panic::catch_unwind(|| {
            crate::run_test(crate::TestConfig::new("count"), || async {
                for _ in 0..3 {
                    tokio::spawn(std::future::pending::<()>());
                }
                completes_within("count", std::future::pending::<()>(), ms(10), &h()).await;
            });
        })
        .expect_err("must fail");
        let text = panic.downcast_ref::<String>().expect("a String message");
        assert!(text.contains("3 tokio task(s) alive"), "{text}");
    }

    #[crate::test]
    async fn polls_are_counted_and_a_spinning_future_is_stopped() {
        let (value, polls) = count_polls(
            async {
                tokio::time::sleep(ms(100)).await;
                7
            },
            10,
        )
        .await
        .unwrap();
        assert_eq!(
            (value, polls),
            (7, 2),
            "once to start the timer, once when it fired"
        );
        let spinning = async {
            loop {
                tokio::task::yield_now().await;
            }
        };
        assert_eq!(count_polls(spinning, 50).await.err(), Some(50));
    }

    #[crate::test]
    async fn a_real_deadlock_is_recognised() {
        // Two tasks each holding one lock and awaiting the other's: the classic lock-order deadlock.
        let a = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let b = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let (a2, b2) = (a.clone(), b.clone());
        let first = tokio::spawn(async move {
            let _a = a2.lock().await;
            tokio::time::sleep(ms(1)).await;
            let _b = b2.lock().await;
        });
        let second = tokio::spawn(async move {
            let _b = b.lock().await;
            tokio::time::sleep(ms(1)).await;
            let _a = a.lock().await;
        });
        let report = assert_deadlocks(
            "lock order",
            async {
                first.await.unwrap();
                second.await.unwrap();
            },
            ms(1000),
            &h(),
        )
        .await;
        assert_eq!(report, Deadlock { alive_tasks: 2 });
    }

    #[test]
    #[should_panic(expected = "ok: finished, but a deadlock was expected")]
    fn a_future_that_finishes_is_not_a_deadlock() {
        crate::run_test(crate::TestConfig::new("ok"), || async {
            let finishes = async { tokio::time::sleep(ms(5)).await };
            assert_deadlocks("ok", finishes, ms(100), &h()).await;
        });
    }
}
