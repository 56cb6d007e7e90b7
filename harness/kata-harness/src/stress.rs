//! Running a piece of a test on a multi-threaded runtime, to shake out races.
//!
//! Kata tests run on one thread, where tasks take turns in a fixed order: a lost wake-up that
//! needs two threads to interleave just so (a waiter that checks a condition, then registers
//! for a wake-up, while another thread sets the condition and wakes nobody in between) never
//! shows there. [`on_multi_thread`] runs a future on a fresh runtime with real worker threads,
//! many times if asked, so such a race has a real chance to happen, and the test's watchdog
//! still bounds it.

use std::future::Future;

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

    #[test]
    #[should_panic(expected = "inside")]
    fn a_panic_inside_comes_back() {
        crate::run_test(crate::TestConfig::new("inside"), || async {
            on_multi_thread(2, || async { panic!("inside") }).await;
        });
    }
}
