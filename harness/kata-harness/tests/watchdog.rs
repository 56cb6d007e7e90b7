//! The watchdog's promise: no test can hang. Each way of hanging a test fails it within a few
//! seconds of real time, with a message that names the test.
//!
//! These tests use a 2-second watchdog so the file runs quickly; the default is 5 seconds. Run
//! with `--nocapture` to see how long each case took to fail.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kata_harness::{TestConfig, ms, run_test};

const LIMIT: Duration = Duration::from_secs(2);

/// Runs a hanging body under the watchdog; returns the failure message and the real time taken.
fn hang<F>(name: &'static str, body: impl FnOnce() -> F + Send + 'static) -> (String, Duration)
where
    F: Future<Output = ()> + 'static,
{
    let started = Instant::now();
    let panic = catch_unwind(AssertUnwindSafe(|| {
        run_test(TestConfig::new(name).watchdog(LIMIT), body);
    }))
    .expect_err("a hanging test must fail");
    let took = started.elapsed();
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    eprintln!("{name}: failed after {took:.2?}");
    (message, took)
}

/// How a hung test was stuck, in the words of the watchdog's hint.
const IN_ONE_POLL: &str = "no task ran while the watchdog waited";
const KEPT_POLLING: &str = "tokio kept running tasks, but the test never finished";

/// A hang caught by the real-time watchdog: the right words, the test's name, how it was
/// stuck, in time.
///
/// The first hang of the process waits the full limit; later ones (these tests run in parallel,
/// so which come later varies) wait 1 s and name the test that hung first.
fn assert_watchdog(name: &str, message: &str, took: Duration, stuck: &str) {
    // The message names the test as libtest does: the name of the thread it runs on.
    let test = std::thread::current().name().unwrap_or(name).to_owned();
    assert!(
        message.starts_with(&format!("{test}: stopped by the watchdog")),
        "{message}"
    );
    assert!(message.contains(&format!("hint: {stuck}")), "{message}");
    let shortened = message.contains("already hung)");
    let limit = if shortened {
        Duration::from_secs(1)
    } else {
        LIMIT
    };
    let late = Duration::from_millis(1500);
    assert!(
        took >= limit && took < limit + late,
        "took {took:?} for a limit of {limit:?}"
    );
}

#[test]
fn a_busy_loop_is_stopped() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    let (message, took) = hang("busy_loop", || async {
        // No .await inside: tokio never gets the thread back.
        while !RELEASE.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    RELEASE.store(true, Ordering::Relaxed); // let the abandoned thread end and free its core
    assert_watchdog("busy_loop", &message, took, IN_ONE_POLL);
}

#[test]
#[allow(clippy::await_holding_lock)] // the bug this test is about
fn a_std_mutex_held_across_an_await_is_stopped() {
    let (message, took) = hang("std_mutex_deadlock", || async {
        let lock = std::sync::Arc::new(std::sync::Mutex::new(0));
        let other = lock.clone();
        // Holding a std guard across an await: the classic mistake (the test body may, since it
        // need not be `Send`; `tokio::spawn` would refuse it at compile time).
        let guard = lock.lock().unwrap();
        // This task blocks the runtime's only thread on the lock; the holder never runs again.
        tokio::spawn(async move { *other.lock().unwrap() += 1 })
            .await
            .unwrap();
        drop(guard);
    });
    assert_watchdog("std_mutex_deadlock", &message, took, IN_ONE_POLL);
}

#[test]
fn a_never_ending_spawn_blocking_is_stopped() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    let (message, took) = hang("endless_spawn_blocking", || async {
        // A blocking job holds the paused clock still, so the virtual limit cannot fire.
        tokio::task::spawn_blocking(|| {
            while !RELEASE.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .await
        .unwrap();
    });
    RELEASE.store(true, Ordering::Relaxed);
    assert_watchdog("endless_spawn_blocking", &message, took, IN_ONE_POLL);
}

#[test]
fn a_yield_now_livelock_is_stopped() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    let (message, took) = hang("yield_livelock", || async {
        // Always busy, never idle: the paused clock never advances, so no timeout ever fires.
        let spinner = tokio::spawn(async {
            while !RELEASE.load(Ordering::Relaxed) {
                tokio::task::yield_now().await;
            }
        });
        spinner.await.unwrap();
    });
    RELEASE.store(true, Ordering::Relaxed);
    assert_watchdog("yield_livelock", &message, took, KEPT_POLLING);
}

#[test]
fn a_loop_that_awaits_a_billion_times_is_not_called_a_busy_loop() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    let (message, took) = hang("billion_awaits", || async {
        // It yields on every step, through a semaphore as a limiter would: tokio keeps running
        // it, it just never ends.
        let limiter = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let mut steps = 0_u64;
        while !RELEASE.load(Ordering::Relaxed) && steps < 4_000_000_000 {
            let _slot = limiter.acquire().await.unwrap();
            tokio::task::yield_now().await;
            steps += 1;
        }
    });
    RELEASE.store(true, Ordering::Relaxed);
    assert_watchdog("billion_awaits", &message, took, KEPT_POLLING);
}

#[test]
fn an_async_deadlock_fails_at_once_in_real_time() {
    let (message, took) = hang("async_deadlock", || async {
        let (_keep_sender, receiver) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(std::future::pending::<()>());
        let _ = receiver.await;
    });
    assert!(
        message
            .starts_with("an_async_deadlock_fails_at_once_in_real_time: never finished (deadlock)"),
        "{message}"
    );
    assert!(message.contains("1 tokio task(s) still alive"), "{message}");
    assert!(
        took < Duration::from_millis(500),
        "took {took:?}: the paused clock should jump"
    );
}

#[test]
fn a_passing_test_is_not_slowed_down() {
    let started = Instant::now();
    run_test(TestConfig::new("quick"), || async {
        // An hour of virtual time costs nothing real.
        tokio::time::sleep(Duration::from_secs(3599)).await;
    });
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
#[should_panic(expected = "the test's own message")]
fn a_failing_assertion_keeps_its_own_message() {
    run_test(TestConfig::new("own_message"), || async {
        panic!("the test's own message")
    });
}

#[test]
fn a_real_time_test_sees_real_time() {
    run_test(TestConfig::new("real").paused(false), || async {
        let started = Instant::now();
        tokio::time::sleep(ms(20)).await;
        assert!(started.elapsed() >= ms(20));
    });
}
