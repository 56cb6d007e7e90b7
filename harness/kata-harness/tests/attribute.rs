//! `#[kata_harness::test]`: the paused clock, the watchdog, and cases, with no boilerplate.

use std::time::Duration;

use kata_harness::ms;

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

#[kata_harness::test]
#[case(50, 1)]
#[case(120, 2)]
async fn cases_run_under_the_harness(#[case] total: u64, #[case] expected: u64) {
    let start = tokio::time::Instant::now();
    let mut ticks = 0;
    let mut interval = tokio::time::interval_at(start + ms(50), ms(50));
    while start.elapsed() + ms(50) <= ms(total) {
        interval.tick().await;
        ticks += 1;
    }
    assert_eq!(ticks, expected);
}

/// The name libtest gives each case, which `just test <kata> <words>` filters on and reports.
fn test_name() -> String {
    std::thread::current().name().unwrap_or_default().to_owned()
}

// Named as rstest names them, so names in READMEs and mutants.md stay valid: numbered from 1, the
// description after `case::`, zero-padded from ten cases on.
#[kata_harness::test]
#[case::first("case_1_first")]
#[case("case_2")]
async fn cases_are_named_by_number_and_description(#[case] expected: &str) {
    assert_eq!(
        test_name(),
        format!("cases_are_named_by_number_and_description::{expected}")
    );
}

#[kata_harness::test]
#[case(1)]
#[case(2)]
#[case(3)]
#[case(4)]
#[case(5)]
#[case(6)]
#[case(7)]
#[case(8)]
#[case(9)]
#[case::tenth(10)]
async fn ten_cases_or_more_are_numbered_with_two_digits(#[case] n: u32) {
    let expected = if n < 10 {
        format!("case_0{n}")
    } else {
        "case_10_tenth".to_owned()
    };
    assert_eq!(
        test_name(),
        format!("ten_cases_or_more_are_numbered_with_two_digits::{expected}")
    );
}

// The case values are evaluated in the test, on its paused runtime, and may name the suite's items.
const START_AFTER: Duration = Duration::from_millis(30);

#[kata_harness::test]
#[case::a_constant(START_AFTER, 30)]
#[case::a_runtime_value(tokio::time::Instant::now().elapsed(), 0)]
async fn case_values_may_name_items_and_use_the_runtime(#[case] wait: Duration, #[case] ms: u64) {
    assert_eq!(wait, Duration::from_millis(ms));
}

#[kata_harness::test(virtual_limit_secs = 1)]
#[case(2)]
#[should_panic(expected = "never finished (deadlock)")]
async fn options_and_should_panic_apply_to_every_case(#[case] secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}
