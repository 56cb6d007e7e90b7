//! Running a piece of a test on a multi-threaded runtime, to shake out races.
//!
//! Kata tests run on one thread, where tasks take turns in a fixed order: a lost wake-up that
//! needs two threads to interleave just so (a waiter that checks a condition, then registers
//! for a wake-up, while another thread sets the condition and wakes nobody in between) never
//! shows there. [`on_multi_thread`] runs a future on a fresh runtime with real worker threads,
//! many times if asked, so such a race has a real chance to happen, and the test's watchdog
//! still bounds it. Inside it, [`race_calls`] starts call after call of a waiting method while
//! another thread makes the condition true, and tells whether any call was left waiting.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Runs `make()`'s future on a new multi-threaded runtime with `workers` worker threads, on the
/// real clock, and returns its output. A panic inside comes back as a panic here.
///
/// The work runs on the test's blocking pool, which holds the paused clock still meanwhile (so
/// the test's virtual limit does not fire while the threads race).
pub async fn on_multi_thread<M, F>(workers: usize, make: M) -> F::Output
where
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build()
            .expect("kata-harness: cannot build a multi-threaded runtime")
            .block_on(make())
    })
    .await;
    joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// One attempt at a lost wake-up: calls `call()` again and again, polling each call once, until
/// one is ready at once (and calls `pending()` after each that is not, to tell the other thread
/// a call is waiting); then says whether the last `kept` calls still waiting all finished within
/// `stuck` of real time. `false` means a wake-up was lost: a call registered too late.
///
/// Another thread makes the condition true meanwhile (sets the flag, finishes the last job); the
/// race it may lose is the few nanoseconds between a call checking the condition and registering
/// its waker. The calls live in a ring of `kept` pinned slots, so that starting one costs no
/// allocation: the more calls per microsecond, the better the odds of one landing in that gap.
/// A call pushed out of the ring is dropped, an abandoned waiter, which a correct waiter allows.
/// Give up (return `true`) after `stuck` without a ready call: the condition never became true,
/// and other tests say why.
///
/// `stuck` is real time, far beyond any scheduling delay of a loaded machine (a woken call is
/// ready within microseconds), and costs nothing unless a wake-up was lost.
pub async fn race_calls<F: Future<Output = ()>>(
    kept: usize,
    stuck: Duration,
    call: impl Fn() -> F,
    pending: impl Fn(),
) -> bool {
    let kept = kept.max(1);
    let mut slots: Vec<Pin<Box<Option<F>>>> = (0..kept).map(|_| Box::pin(None)).collect();
    let calling = Instant::now();
    for made in 0.. {
        let mut slot = slots[made % kept].as_mut();
        // Drops the call that was here, `kept` calls ago: an abandoned waiter.
        slot.set(Some(call()));
        let first = std::future::poll_fn(|cx| {
            Poll::Ready(slot.as_mut().as_pin_mut().map(|call| call.poll(cx)))
        });
        if first.await.is_some_and(|poll| poll.is_ready()) {
            slot.set(None);
            break;
        }
        pending();
        if made % 64 == 0 && calling.elapsed() > stuck {
            break;
        }
    }
    let rest = async {
        for slot in &mut slots {
            if let Some(call) = slot.as_mut().as_pin_mut() {
                call.await;
            }
        }
    };
    tokio::time::timeout(stuck, rest).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[crate::test]
    async fn the_future_runs_on_several_threads() {
        let threads = on_multi_thread(4, || async {
            let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
            let done = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (seen, done) = (seen.clone(), done.clone());
                    tokio::spawn(async move {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        seen.lock().unwrap().insert(std::thread::current().id());
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let threads = seen.lock().unwrap().len();
            assert_eq!(done.load(Ordering::SeqCst), 64);
            threads
        })
        .await;
        assert!(threads > 1, "{threads} thread(s)");
    }

    /// A flag whose waiters register *after* checking it, with a gap, loses wake-ups that a
    /// waiter registering first does not. Real threads race here (on a loaded machine, slowly):
    /// the watchdog gets room.
    #[crate::test(watchdog_secs = 60)]
    async fn race_calls_tells_a_lost_wake_up_from_none() {
        use std::sync::atomic::AtomicBool;
        use tokio::sync::Notify;

        async fn wait(flag: &AtomicBool, notify: &Notify, register_first: bool) {
            loop {
                if register_first {
                    // Right: register (a `Notified` counts every `notify_waiters` from its
                    // creation on), then look at the flag.
                    let notified = notify.notified();
                    if flag.load(Ordering::Acquire) {
                        return;
                    }
                    notified.await;
                } else {
                    // Wrong: look, then register, with a gap that makes the race easy to lose.
                    if flag.load(Ordering::Acquire) {
                        return;
                    }
                    for _ in 0..2_000 {
                        std::hint::spin_loop();
                    }
                    notify.notified().await;
                }
            }
        }

        for register_first in [true, false] {
            let lost = on_multi_thread(2, move || async move {
                for _ in 0..50 {
                    let flag = Arc::new(AtomicBool::new(false));
                    let notify = Arc::new(Notify::new());
                    let armed = Arc::new(AtomicBool::new(false));
                    let setter = {
                        let (flag, notify, armed) = (flag.clone(), notify.clone(), armed.clone());
                        tokio::task::spawn_blocking(move || {
                            while !armed.load(Ordering::Acquire) {
                                std::thread::yield_now();
                            }
                            flag.store(true, Ordering::Release);
                            notify.notify_waiters();
                        })
                    };
                    let returned = race_calls(
                        8,
                        Duration::from_millis(200),
                        || wait(&flag, &notify, register_first),
                        || armed.store(true, Ordering::Release),
                    )
                    .await;
                    setter.await.unwrap();
                    if !returned {
                        return true;
                    }
                }
                false
            })
            .await;
            assert_eq!(lost, !register_first, "register_first = {register_first}");
        }
    }

    #[test]
    #[should_panic(expected = "inside")]
    fn a_panic_inside_comes_back() {
        crate::run_test(crate::TestConfig::new("inside"), || async {
            on_multi_thread(2, || async { panic!("inside") }).await;
        });
    }
}
