//! Drop probes, task and count baselines, RSS growth, and the blocking detector.

use std::sync::Arc;
use std::time::Duration;

use kata_harness::blocking;
use kata_harness::leaks::{DropProbe, RssSampler, TaskBaseline, assert_back_to_baseline};
use kata_harness::{Hint, Stage, ms};

fn h() -> Hint {
    Stage::new("sample", 1).hint("h")
}

#[test]
fn a_dropped_value_passes_the_drop_probe() {
    let (probe, token) = DropProbe::new();
    let buffer = (vec![0_u8; 1024], token);
    assert!(!probe.is_dropped());
    drop(buffer);
    probe.assert_dropped("request buffer", &h());
}

#[test]
#[should_panic(
    expected = "request buffer: still alive\n  expected: dropped by now\n  actual:   still owned (1 strong reference(s) left)"
)]
fn a_value_kept_by_a_forgotten_listener_is_caught() {
    let (probe, token) = DropProbe::new();
    let mut listeners: Vec<Box<dyn Fn() + Send>> = Vec::new();
    // A listener capturing the request's buffer, never removed: the leak of kata 3.
    listeners.push(Box::new(move || {
        let _ = &token;
    }));
    probe.assert_dropped("request buffer", &h());
    drop(listeners);
}

#[test]
fn watch_follows_an_existing_arc() {
    let value = Arc::new(5);
    let probe = DropProbe::watch(&value);
    assert!(!probe.is_dropped());
    drop(value);
    assert!(probe.is_dropped());
}

#[kata_harness::test]
async fn aborted_tasks_are_back_to_baseline() {
    let baseline = TaskBaseline::capture();
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(std::future::pending::<()>()))
        .collect();
    for worker in &workers {
        worker.abort();
    }
    baseline.assert_back("workers", ms(10), &h()).await;
}

#[kata_harness::test]
async fn tasks_that_wind_down_within_the_grace_are_fine() {
    let baseline = TaskBaseline::capture();
    tokio::spawn(tokio::time::sleep(ms(5)));
    baseline.assert_back("short task", ms(10), &h()).await;
}

#[kata_harness::test]
#[should_panic(expected = "workers: tasks left running")]
async fn leaked_tasks_are_caught() {
    let baseline = TaskBaseline::capture();
    for _ in 0..2 {
        // Detached and endless: what a queue that forgets its workers leaves behind.
        tokio::spawn(std::future::pending::<()>());
    }
    baseline.assert_back("workers", ms(100), &h()).await;
}

#[test]
#[should_panic(
    expected = "listeners: not back to its baseline\n  expected: 0, as before\n  actual:   1000"
)]
fn a_count_off_its_baseline_is_caught() {
    assert_back_to_baseline("listeners", 0, 0, &h());
    assert_back_to_baseline("listeners", 1000, 0, &h());
}

#[test]
fn rss_growth_is_seen_for_a_leak_and_not_for_steady_work() {
    if RssSampler::current().is_none() {
        eprintln!("skipped: this platform reports no RSS");
        return;
    }
    const STEP: usize = 4 << 20;
    let mut leaky = RssSampler::new();
    let mut kept = Vec::new();
    for i in 0..16 {
        // 4 MiB per iteration, touched so the pages are really resident.
        kept.push(vec![1_u8; STEP]);
        leaky.sample(i);
    }
    let mut steady = RssSampler::new();
    for i in 0..16 {
        drop(std::hint::black_box(vec![1_u8; STEP]));
        steady.sample(i);
    }
    assert!(
        leaky.slope() > STEP as f64 * 0.8,
        "leaky slope {}",
        leaky.slope()
    );
    assert!(
        steady.slope().abs() < STEP as f64 * 0.2,
        "steady slope {}",
        steady.slope()
    );
    assert!(leaky.growth() > (12 * STEP) as isize);
    drop(kept);
}

#[kata_harness::test]
async fn the_blocking_detector_catches_a_blocking_sleep() {
    let ((), report) = blocking::watch(async {
        tokio::time::sleep(ms(5)).await;
        // Blocks the runtime's only thread for 60 ms of real time.
        std::thread::sleep(ms(60));
        tokio::time::sleep(ms(5)).await;
    })
    .await;
    assert!(report.max_gap >= ms(55), "{report:?}");
    let caught = std::panic::catch_unwind(|| {
        let hint = Stage::new("sample", 1).hint("use tokio::time::sleep");
        blocking::assert_not_blocked("sleepy job", report, ms(20), &hint);
    });
    assert!(caught.is_err());
}

#[kata_harness::test]
async fn the_blocking_detector_accepts_async_code() {
    let ((), report) = blocking::watch(async {
        for _ in 0..20 {
            tokio::time::sleep(ms(50)).await;
        }
    })
    .await;
    assert!(report.beats >= 900, "{report:?}");
    blocking::assert_not_blocked("async job", report, ms(40), &h());
}

#[kata_harness::test(real_time)]
async fn the_blocking_detector_works_on_the_real_clock() {
    let ((), report) = blocking::watch(async {
        tokio::time::sleep(ms(20)).await;
        std::thread::sleep(ms(50));
        tokio::time::sleep(ms(5)).await;
    })
    .await;
    assert!(report.max_gap >= ms(40), "{report:?}");
    assert!(report.max_gap < Duration::from_secs(1), "{report:?}");
}
