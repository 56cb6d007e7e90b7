//! The ticker kata's suite, run against both `exercises/ticker` and `solutions/ticker`: the
//! kata's precise specification.
//!
//! Every test starts a ticker, attaches its listeners *after* the call (as a user would), and
//! records what happened. On the paused clock every time below is exact; the two `real_time`
//! tests give the ticker listeners that really take time, which only the real clock can show.
//! Stage by stage, the tests reject the usual wrong answers: a tick too many or too few, a tick
//! early or late, ticks that drift when listeners are slow, a last tick lost to a late wake-up, a
//! first tick emitted before anyone could listen, a callback never called or called at the wrong
//! time, and an error that keeps ticking or reaches only one of its two channels.

kata_harness::install_allocator!();

#[path = "ticker/support.rs"]
mod support;

use std::time::Duration;

use kata_harness::blocking;
use kata_harness::leaks::TaskBaseline;
use kata_harness::report::{check, check_eq, fail};
use kata_harness::timing::{assert_elapsed, assert_schedule, grid};
use kata_harness::{Stage, ms};
use support::{Run, observe, observe_with, scripted_clock, slow_listener};
use ticker::{INTERVAL, Ticker, TickerError, ticker};

const STAGE1: Stage = Stage::new("ticker", 1);
const STAGE2: Stage = Stage::new("ticker", 2);
const STAGE3: Stage = Stage::new("ticker", 3);

// ---------------------------------------------------------------------------------------------
// Stage 1: tick every 50 ms while elapsed ≤ total, then on_done(Ok(count)) at total.
//
//   ticker(120 ms):  0 ms      50 ms     100 ms  120 ms
//                    |---------|---------|-------|
//                              tick 1    tick 2  on_done(Ok(2))

#[kata_harness::test]
async fn stage1_ticks_every_50ms_up_to_the_total() {
    let hint =
        STAGE1.hint("stage 1 ticks at 50, 100, ... 1000 ms: not at 0 ms, and not past the total");
    let run = observe(ms(1000), &hint, |done| ticker(ms(1000), done)).await;
    assert_schedule(
        "ticks of ticker(1000 ms)",
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(1000)),
        &hint,
    );
    check_eq(
        "tick counts",
        run.tick_counts(),
        (1..=20).collect(),
        &STAGE1.hint("count is 1 for the first tick, 2 for the second, ..."),
    );
}

#[kata_harness::test]
#[case::zero(0, 0)]
#[case::just_below_one_interval(49, 0)]
#[case::one_interval(50, 1)]
#[case::just_above_one_interval(51, 1)]
#[case::between_ticks(120, 2)]
#[case::just_below_twenty(999, 19)]
async fn stage1_tick_count_is_floor_of_total_over_50(#[case] total: u64, #[case] expected: u32) {
    let hint = STAGE1
        .hint("a tick is due at every multiple of 50 ms that is ≤ total, and at no other time");
    let run = observe(ms(total), &hint, |done| ticker(ms(total), done)).await;
    assert_schedule(
        &format!("ticks of ticker({total} ms)"),
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(total)),
        &hint,
    );
    check_eq(
        &format!("on_done's result for ticker({total} ms)"),
        run.result,
        Ok(expected),
        &STAGE1.hint("on_done gets Ok(the number of ticks emitted)"),
    );
}

#[kata_harness::test]
async fn stage1_on_done_is_called_at_exactly_the_total() {
    let hint = STAGE1.hint(
        "on_done is due when the total has passed (120 ms), not at the last tick (100 ms) nor \
         at the next one (150 ms)",
    );
    let run = observe(ms(120), &hint, |done| ticker(ms(120), done)).await;
    assert_elapsed("on_done of ticker(120 ms)", run.done_at, ms(120), &hint);
    check_eq(
        "on_done's result",
        run.result,
        Ok(2),
        &STAGE1.hint("two ticks fit in 120 ms: at 50 and 100 ms"),
    );
}

#[kata_harness::test]
async fn stage1_the_last_tick_comes_before_on_done() {
    // With total = 100 ms the last tick and on_done fall at the same instant: tick first.
    let hint = STAGE1.hint("emit the tick due at 100 ms, then call on_done");
    let run = observe(ms(100), &hint, |done| ticker(ms(100), done)).await;
    check_eq(
        "the order of events for ticker(100 ms)",
        run.order,
        vec!["tick".to_owned(), "tick".to_owned(), "done".to_owned()],
        &hint,
    );
}

#[kata_harness::test]
async fn stage1_nothing_happens_after_on_done_and_the_task_ends() {
    let hint =
        STAGE1.hint("after on_done the ticker must stop: no more ticks, and its task returns");
    let baseline = TaskBaseline::capture();
    let run = observe(ms(200), &hint, |done| ticker(ms(200), done)).await;
    assert_schedule(
        "ticks of ticker(200 ms), watched until 1200 ms",
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(200)),
        &hint,
    );
    baseline
        .assert_back("the ticker's task", Duration::ZERO, &hint)
        .await;
}

#[kata_harness::test]
async fn stage1_does_not_block_the_executor() {
    let hint = STAGE1.hint(
        "wait with tokio::time::sleep or sleep_until, never a blocking sleep from std::thread: a \
         blocked thread stops every other task (and the paused clock)",
    );
    let (run, report) =
        blocking::watch(observe(ms(300), &hint, |done| ticker(ms(300), done))).await;
    blocking::assert_not_blocked("ticker(300 ms)", report, ms(40), &hint);
    check_eq(
        "on_done's result",
        run.result,
        Ok(6),
        &STAGE1.hint("six ticks fit in 300 ms"),
    );
}

// On the real clock, with a listener that takes 30 ms at every tick:
//
//   on the grid:     tick at 50 ▒▒▒ 100 ▒▒▒ 150 ▒▒▒ ... 500        (10 ticks, none late)
//   50 ms after:     tick at 50 ▒▒▒ 130 ▒▒▒ 210 ▒▒▒ ... 770        (each 30 ms later than the last)

#[kata_harness::test(real_time)]
async fn stage1_slow_listeners_do_not_make_the_ticks_drift() {
    // Real time: on the paused clock a listener takes no time at all, so sleeping "50 ms after
    // the last tick" and sleeping until the grid's next instant look the same there.
    const COST: Duration = ms(30);
    // Scheduling noise on a loaded machine; the drift of the wrong version is 30 ms per tick.
    const LATE: Duration = ms(25);
    let hint = STAGE1.hint(
        "sleep until the next instant on the grid (start + n x 50 ms, tokio::time::sleep_until), \
         not for 50 ms after each tick: a listener that takes 30 ms then makes every tick 30 ms \
         later than the one before",
    );
    let run = observe_with(ms(500), &hint, (slow_listener(COST), ms(100)), |done| {
        ticker(ms(500), done)
    })
    .await;
    for (number, at) in run.tick_times().into_iter().enumerate() {
        let due = INTERVAL * (number as u32 + 1);
        check(
            &format!(
                "tick #{} of ticker(500 ms), whose listener takes 30 ms (real time)",
                number + 1
            ),
            at < due + LATE,
            format_args!(
                "at {at:.1?}, {:.1?} after it was due",
                at.saturating_sub(due)
            ),
            format_args!("at {due:?}, give or take {LATE:?}"),
            &hint,
        );
    }
}

#[kata_harness::test(real_time)]
async fn stage1_a_late_wake_up_does_not_lose_the_last_tick() {
    // Real time: a timer wakes a little after its instant on a real clock (tokio rounds up to
    // the millisecond), never on the paused one.
    let hint = STAGE1.hint(
        "decide whether a tick is due from its place on the grid (n x 50 ms ≤ total), not from \
         the clock after waking: a wake-up a millisecond late finds elapsed > total at the tick \
         due exactly at the total, and that tick is lost",
    );
    let run = observe_with(ms(500), &hint, (slow_listener(ms(1)), ms(100)), |done| {
        ticker(ms(500), done)
    })
    .await;
    check_eq(
        "ticks of ticker(500 ms) on the real clock",
        run.ticks.len(),
        10,
        &hint,
    );
    check_eq("on_done's result", run.result, Ok(10), &hint);
}

// ---------------------------------------------------------------------------------------------
// Stage 2: with .immediate(), also tick at 0 ms, asynchronously.
//
//   immediate ticker(120 ms):  0 ms    50 ms   100 ms  120 ms
//                              |-------|-------|-------|
//                              tick 1  tick 2  tick 3  on_done(Ok(3))

#[kata_harness::test]
async fn stage2_a_listener_attached_after_the_call_hears_the_first_tick() {
    let hint = STAGE2.hint(
        "emit the first tick from the spawned task, not inside start(): a tick emitted before \
         start() returns reaches nobody, because nobody could listen yet",
    );
    let run = observe(ms(10), &hint, |done| {
        Ticker::new(ms(10)).immediate().start(done)
    })
    .await;
    if run.ticks.is_empty() {
        fail(
            "the immediate tick was not heard",
            "no tick reached it",
            "a listener attached right after start() hears the tick at 0 ms",
            &hint,
        );
    }
    check_eq("ticks heard", run.ticks, vec![(ms(0), 1)], &hint);
    check_eq(
        "on_done's result",
        run.result,
        Ok(1),
        &STAGE2.hint("a 10 ms immediate ticker ticks once, at 0 ms"),
    );
}

#[kata_harness::test]
async fn stage2_ticks_at_once_then_every_50ms() {
    let hint = STAGE2.hint(
        "stage 2 adds one tick at 0 ms, emitted from the spawned task so that listeners attached \
         after start() returns hear it; the others stay on the 50 ms grid",
    );
    let run = observe(ms(1000), &hint, |done| {
        Ticker::new(ms(1000)).immediate().start(done)
    })
    .await;
    assert_schedule(
        "ticks of an immediate ticker(1000 ms)",
        &run.tick_times(),
        &grid(ms(0), INTERVAL, ms(1000)),
        &hint,
    );
    check_eq(
        "tick counts",
        run.tick_counts(),
        (1..=21).collect(),
        &STAGE2.hint("the immediate tick is count 1"),
    );
    check_eq(
        "on_done's result",
        run.result,
        Ok(21),
        &STAGE2.hint("the immediate tick counts too"),
    );
    assert_elapsed(
        "on_done",
        run.done_at,
        ms(1000),
        &STAGE2.hint("on_done is still due at the total"),
    );
}

#[kata_harness::test]
#[case::zero(0, 1)]
#[case::just_below_one_interval(49, 1)]
#[case::one_interval(50, 2)]
#[case::between_ticks(120, 3)]
async fn stage2_tick_count_is_one_more(#[case] total: u64, #[case] expected: u32) {
    let hint =
        STAGE2.hint("an immediate ticker ticks at 0 ms and at every multiple of 50 ms ≤ total");
    let run = observe(ms(total), &hint, |done| {
        Ticker::new(ms(total)).immediate().start(done)
    })
    .await;
    assert_schedule(
        &format!("ticks of an immediate ticker({total} ms)"),
        &run.tick_times(),
        &grid(ms(0), INTERVAL, ms(total)),
        &hint,
    );
    check_eq(
        &format!("on_done's result for ticker({total} ms)"),
        run.result,
        Ok(expected),
        &STAGE2.hint("floor(total / 50) + 1 ticks: the one at 0 ms counts"),
    );
    assert_elapsed(
        "on_done",
        run.done_at,
        ms(total),
        &STAGE2.hint("on_done is due at the total, even when that is 0 ms"),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 3: with .with_clock(..), a reading divisible by 5 is an error on both channels.
//
//   readings:  1001    1002    1003    1004    1010
//              0 ms    50 ms   100 ms  150 ms  200 ms
//              tick 1  tick 2  tick 3  tick 4  error(1010, 4 ticks) + on_done(Err), then nothing

/// Ticks at 0, 50, 100, 150 read clean timestamps; the tick at 200 ms reads 1010.
async fn run_with_error_at_200ms() -> Run {
    let (clock, _) = scripted_clock(vec![1001, 1002, 1003, 1004, 1010, 1011]);
    let hint = STAGE3.hint("the ticker must still call on_done when a tick fails");
    observe(ms(1000), &hint, |done| {
        Ticker::new(ms(1000))
            .immediate()
            .with_clock(clock)
            .start(done)
    })
    .await
}

#[kata_harness::test]
async fn stage3_the_error_reaches_the_listeners() {
    let run = run_with_error_at_200ms().await;
    check_eq(
        "TickerError events",
        run.errors,
        vec![(
            ms(200),
            TickerError {
                timestamp: 1010,
                ticks: 4,
            },
        )],
        &STAGE3.hint(
            "emit the error as an event at the failing tick, with the timestamp and the ticks \
             emitted before it",
        ),
    );
}

#[kata_harness::test]
async fn stage3_the_error_reaches_on_done() {
    let run = run_with_error_at_200ms().await;
    check_eq(
        "on_done's result",
        run.result.clone(),
        Err(TickerError {
            timestamp: 1010,
            ticks: 4,
        }),
        &STAGE3.hint("pass the same error to on_done"),
    );
    assert_elapsed(
        "on_done",
        run.done_at,
        ms(200),
        &STAGE3.hint("on_done is called at the failing tick, straight away, not at the total"),
    );
    let message = run.result.unwrap_err().to_string();
    check(
        "the TickerError's message",
        message.contains("1010"),
        format_args!("{message:?}"),
        "a message that names the timestamp, 1010",
        &STAGE3.hint("keep the #[error(...)] text of TickerError, which prints the timestamp"),
    );
}

#[kata_harness::test]
async fn stage3_the_ticker_stops_at_the_error() {
    let hint = STAGE3.hint(
        "the failing tick is not emitted as a Tick; after the error event and on_done, nothing: \
         return from the task",
    );
    let baseline = TaskBaseline::capture();
    let run = run_with_error_at_200ms().await;
    assert_schedule(
        "ticks of a ticker whose tick at 200 ms fails",
        &run.tick_times(),
        &[ms(0), ms(50), ms(100), ms(150)],
        &hint,
    );
    check_eq(
        "the order of events",
        run.order,
        ["tick", "tick", "tick", "tick", "error", "done"]
            .map(String::from)
            .to_vec(),
        &hint,
    );
    baseline
        .assert_back("the ticker's task", Duration::ZERO, &hint)
        .await;
}

#[kata_harness::test]
async fn stage3_the_immediate_tick_can_fail_too() {
    let hint = STAGE3.hint(
        "the clock is read at the immediate tick too: its first reading, 1005, fails it, so \
         there is no tick at all",
    );
    let (clock, _) = scripted_clock(vec![1005]);
    let run = observe(ms(500), &hint, |done| {
        Ticker::new(ms(500))
            .immediate()
            .with_clock(clock)
            .start(done)
    })
    .await;
    check_eq("ticks", run.ticks, vec![], &hint);
    let error = TickerError {
        timestamp: 1005,
        ticks: 0,
    };
    check_eq(
        "TickerError events",
        run.errors,
        vec![(ms(0), error.clone())],
        &hint,
    );
    check_eq("on_done's result", run.result, Err(error), &hint);
}

#[kata_harness::test]
async fn stage3_the_clock_is_read_once_per_tick() {
    // Readings 1, 2, 3, 4, 6, 7, ...: never divisible by 5.
    let readings: Vec<u64> = (1..100_u64).filter(|n| !n.is_multiple_of(5)).collect();
    let (clock, reads) = scripted_clock(readings);
    let hint = STAGE3.hint(
        "read the clock exactly once per tick: reading it twice checks one timestamp and \
         reports another",
    );
    let run = observe(ms(500), &hint, |done| {
        Ticker::new(ms(500))
            .immediate()
            .with_clock(clock)
            .start(done)
    })
    .await;
    check_eq(
        "on_done's result",
        run.result,
        Ok(11),
        &STAGE3.hint("no reading is divisible by 5: tick as in stage 2"),
    );
    check_eq("clock readings", *reads.lock().unwrap(), 11, &hint);
}

#[kata_harness::test]
async fn stage3_a_failing_last_tick_ends_at_the_total() {
    // Not immediate: readings at 50..300 ms; the sixth, at 300 ms (the total), is 10.
    let hint = STAGE3.hint(
        "the tick due at the total reads the clock like any other: its reading, 10, fails it",
    );
    let (clock, _) = scripted_clock(vec![1, 2, 3, 4, 6, 10]);
    let run = observe(ms(300), &hint, |done| {
        Ticker::new(ms(300)).with_clock(clock).start(done)
    })
    .await;
    assert_schedule(
        "ticks",
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(250)),
        &hint,
    );
    check_eq(
        "on_done's result",
        run.result,
        Err(TickerError {
            timestamp: 10,
            ticks: 5,
        }),
        &hint,
    );
    assert_elapsed("on_done", run.done_at, ms(300), &hint);
}
