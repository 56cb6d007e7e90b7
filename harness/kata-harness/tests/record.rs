//! The records the runner reads: one file per test, with how it ended, where, why, and what it
//! cost. The runner trusts nothing else, so every way a test can end must be recorded as itself.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use kata_harness::probe::ConcurrencyProbe;
use kata_harness::record::{Outcome, Record, Stuck};
use kata_harness::report::check_eq;
use kata_harness::{Stage, TestConfig, ms, run_test};

kata_harness::install_allocator!();

/// The only record in `dir`.
fn only_record(dir: &Path) -> Record {
    let records = kata_record::read_dir(dir);
    assert_eq!(records.len(), 1, "one record per test: {records:?}");
    records.into_values().next().unwrap()
}

/// Runs a failing body under `config` (recorded into a new directory) and returns its record.
fn record_of<F>(config: TestConfig, body: impl FnOnce() -> F + Send + 'static) -> Record
where
    F: Future<Output = ()> + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        run_test(config.record_to(dir.path()), body);
    }));
    assert!(result.is_err(), "the test must fail");
    only_record(dir.path())
}

#[test]
fn a_passing_test_records_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    run_test(
        TestConfig::new("record::passing").record_to(dir.path()),
        || async {
            let probe = ConcurrencyProbe::new();
            let jobs: Vec<_> = (0..3)
                .map(|_| {
                    tokio::spawn(probe.track(async {
                        let buffer = std::hint::black_box(vec![1_u8; 1 << 20]);
                        tokio::time::sleep(ms(1000)).await;
                        drop(buffer);
                    }))
                })
                .collect();
            for job in jobs {
                job.await.unwrap();
            }
        },
    );
    let record = only_record(dir.path());
    assert_eq!(record.outcome, Outcome::Passed);
    assert_eq!(
        record.virtual_time,
        Some(ms(1000)),
        "exact, on the paused clock"
    );
    assert_eq!(record.max_concurrency, Some(3));
    assert_eq!(
        record.concurrency,
        vec![(0, 3), (1000, 0)],
        "the probe's levels over time, in ms"
    );
    assert_eq!(record.clock, Some(kata_harness::record::Clock::Paused));
    let peak = record.peak_heap.unwrap();
    assert!((3 << 20..4 << 20).contains(&peak), "3 MiB at once: {peak}");
    assert!(
        record.real.unwrap() < ms(1000),
        "a virtual second is not a real one: {:?}",
        record.real
    );
    // This test runs on libtest's thread, which carries the test's name.
    assert_eq!(record.test, "a_passing_test_records_its_figures");
    assert_eq!((record.message, record.location), (None, None));
}

#[test]
fn a_failed_check_is_recorded_with_its_message_and_the_suite_line() {
    let record = record_of(TestConfig::new("record::check"), || async {
        tokio::time::sleep(ms(20)).await;
        check_eq("ticks", 3, 2, &Stage::new("ticker", 1).hint("count again"));
    });
    assert_eq!(record.outcome, Outcome::CheckFailed);
    assert_eq!(record.virtual_time, Some(ms(20)));
    let message = record.message.unwrap();
    assert!(
        message.starts_with("ticks\n  expected: 2\n  actual:   3\n"),
        "{message}"
    );
    assert!(
        message.ends_with("(exercises/ticker/README.md, stage 1)"),
        "{message}"
    );
    let location = record.location.unwrap();
    assert!(
        location.starts_with("harness/kata-harness/tests/record.rs:"),
        "{location}"
    );
}

#[test]
fn todo_is_not_started_and_other_panics_are_panics() {
    let record = record_of(TestConfig::new("record::todo"), || async { todo!() });
    assert_eq!(record.outcome, Outcome::NotStarted);
    let record = record_of(TestConfig::new("record::panic"), || async {
        let empty: Vec<u8> = Vec::new();
        let _ = std::hint::black_box(&empty)[3];
    });
    assert_eq!(record.outcome, Outcome::Panicked);
    assert!(record.message.unwrap().contains("index out of bounds"));
}

#[test]
fn a_blocked_executor_is_recorded_as_the_cause_it_is() {
    let record = record_of(TestConfig::new("record::blocked"), || async {
        let ((), report) = kata_harness::blocking::watch(async {
            std::thread::sleep(ms(30));
        })
        .await;
        let hint = Stage::new("ticker", 1).hint("use tokio::time::sleep");
        kata_harness::blocking::assert_not_blocked("ticker", report, ms(10), &hint);
    });
    assert_eq!(record.outcome, Outcome::Blocked);
}

#[test]
fn a_deadlock_is_recorded_with_its_virtual_time() {
    let config = TestConfig::new("record::deadlock").virtual_limit(ms(500));
    let record = record_of(config, || async {
        std::future::pending::<()>().await;
    });
    assert_eq!(record.outcome, Outcome::Deadlock);
    assert_eq!(record.virtual_time, Some(ms(500)));
    assert!(record.max_concurrency.is_none(), "no probe, no figure");
    assert!(
        record
            .message
            .unwrap()
            .contains("never finished (deadlock)")
    );
}

#[test]
fn a_hang_is_recorded_with_how_it_was_stuck() {
    let config = TestConfig::new("record::hang").watchdog(ms(1500));
    let record = record_of(config, || async {
        let started = std::time::Instant::now();
        while started.elapsed() < ms(3000) {
            std::hint::spin_loop();
        }
    });
    assert_eq!(record.outcome, Outcome::Hung);
    assert_eq!(record.stuck, Some(Stuck::InOnePoll));
    assert_eq!(record.virtual_time, None, "its clock never stopped");
}

#[test]
fn a_test_that_fills_memory_is_stopped_and_recorded() {
    let config = TestConfig::new("record::memory").memory_limit(64 << 20);
    let started = std::time::Instant::now();
    let record = record_of(config, || async {
        // A leak of 1 MiB per await, the kind that filled a 4 GiB machine in seconds.
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            kept.push(vec![1; 1 << 20]);
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(record.outcome, Outcome::OutOfMemory);
    assert!(
        started.elapsed() < ms(3000),
        "stopped at once: {:?}",
        started.elapsed()
    );
    let peak = record.peak_heap.unwrap();
    assert!(
        (64 << 20..66 << 20).contains(&peak),
        "stopped at the ceiling: {peak}"
    );
    let message = record.message.unwrap();
    assert!(
        message.contains("stopped for using too much memory"),
        "{message}"
    );
    assert!(message.contains("under 64.0 MiB"), "{message}");
}

#[test]
fn a_running_record_is_written_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run_test(
        TestConfig::new("record::running").record_to(dir.path()),
        move || async move {
            let records = kata_record::read_dir(&path);
            assert_eq!(records.len(), 1);
            assert_eq!(records.values().next().unwrap().outcome, Outcome::Running);
        },
    );
    assert_eq!(only_record(dir.path()).outcome, Outcome::Passed);
}
