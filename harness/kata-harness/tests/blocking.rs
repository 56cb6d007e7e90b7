//! The blocking detectors: a heartbeat that sees a held thread from the first poll on, the
//! runtime's busy time, and a companion that counts its turns.

use std::time::Duration;

use kata_harness::blocking::{self, TurnCounter};
use kata_harness::ms;

#[kata_harness::test]
async fn blocking_in_the_first_poll_is_seen() {
    // No await before the blocking call: the heartbeat must count from before the first poll.
    let ((), report) = blocking::watch(async {
        std::thread::sleep(ms(60));
        tokio::time::sleep(ms(5)).await;
    })
    .await;
    assert!(report.max_gap >= ms(55), "{report:?}");
}

#[kata_harness::test]
async fn busy_time_counts_async_work_and_not_the_blocking_pool() {
    let spin = |length: Duration| {
        let started = std::time::Instant::now();
        while started.elapsed() < length {
            std::hint::spin_loop();
        }
    };
    let ((), on_the_runtime) = blocking::busy_during(async { spin(ms(60)) }).await;
    assert!(on_the_runtime >= ms(50), "{on_the_runtime:?}");
    let ((), offloaded) = blocking::busy_during(async {
        tokio::task::spawn_blocking(move || spin(ms(60)))
            .await
            .unwrap();
    })
    .await;
    assert!(offloaded < ms(20), "{offloaded:?}");
}

#[kata_harness::test]
async fn a_companion_gets_a_turn_per_yield_and_none_beside_a_busy_loop() {
    let companion = TurnCounter::spawn();
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let turns = companion.stop();
    assert!((99..=101).contains(&turns), "{turns} turns for 100 yields");

    let companion = TurnCounter::spawn();
    let mut sum = 0_u64;
    for i in 0..1_000_000_u64 {
        sum = sum.wrapping_add(std::hint::black_box(i));
    }
    std::hint::black_box(sum);
    assert_eq!(companion.turns(), 0, "no yield, no turn");
    tokio::task::yield_now().await;
    assert_eq!(companion.stop(), 1);
}

#[kata_harness::test]
async fn blocking_that_ends_in_the_same_poll_is_seen() {
    // Blocks, then finishes without ever returning Pending: the heartbeat never gets a turn.
    let ((), report) = blocking::watch(async {
        std::thread::sleep(ms(40));
    })
    .await;
    assert!(report.max_gap >= ms(35), "{report:?}");
}

#[kata_harness::test]
async fn work_on_the_runtime_costs_cpu_and_offloaded_work_does_not() {
    // A fixed amount of work, not a fixed time: on a loaded machine a time-based spin gets less
    // CPU, and its cost would vary with the load rather than with where it ran.
    fn work() {
        let mut x = 1_u64;
        for i in 0..5_000_000_u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        std::hint::black_box(x);
    }
    let alone = blocking::cost_of(work);
    let ((), here) = blocking::runtime_cost(async { work() }).await;
    let ((), offloaded) = blocking::runtime_cost(async {
        tokio::task::spawn_blocking(work).await.unwrap();
    })
    .await;
    assert!(here.figure() * 2 > alone, "{here} for {alone:?} of work");
    assert!(
        offloaded.figure() * 4 < alone,
        "{offloaded} for {alone:?} of work"
    );
    if let Some(times) = blocking::ThreadTimes::now() {
        assert!(times.cpu > Duration::ZERO, "{times:?}");
    }
}
