//! `#[kata_harness::test]`: the paused clock, the watchdog, and rstest cases, with no boilerplate.

use std::time::Duration;

use kata_harness::ms;
use rstest::rstest;

#[kata_harness::test]
async fn the_clock_is_paused() {
    let start = tokio::time::Instant::now();
    let real = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(600));
    assert!(real.elapsed() < ms(500));
}

#[kata_harness::test]
async fn the_body_runs_on_a_thread_named_after_the_test() {
    let name = std::thread::current().name().map(str::to_owned);
    assert_eq!(
        name.as_deref(),
        Some("the_body_runs_on_a_thread_named_after_the_test"),
        "libtest's name for the test, so a panic message names it as a learner knows it"
    );
}

#[kata_harness::test(real_time)]
async fn real_time_can_be_asked_for() {
    let real = std::time::Instant::now();
    tokio::time::sleep(ms(15)).await;
    assert!(real.elapsed() >= ms(15));
}

#[kata_harness::test(virtual_limit_secs = 1)]
#[should_panic(expected = "never finished (deadlock)")]
async fn the_virtual_limit_can_be_set() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

#[rstest]
#[case(50, 1)]
#[case(120, 2)]
#[kata_harness::test]
async fn rstest_cases_run_under_the_harness(#[case] total: u64, #[case] expected: u64) {
    let start = tokio::time::Instant::now();
    let mut ticks = 0;
    let mut interval = tokio::time::interval_at(start + ms(50), ms(50));
    while start.elapsed() + ms(50) <= ms(total) {
        interval.tick().await;
        ticks += 1;
    }
    assert_eq!(ticks, expected);
}
