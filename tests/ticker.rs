//! The ticker kata's suite, run against both `exercises/ticker` and `solutions/ticker`.
//!
//! Every test starts a ticker, attaches its listeners *after* the call (as a user would), and
//! records what happened on the paused clock, so every time below is exact. Stage by stage, the
//! tests reject the usual wrong answers: a tick too many or too few, a tick early or late, a
//! first tick emitted before anyone could listen, a callback never called or called at the wrong
//! time, and an error that keeps ticking or reaches only one of its two channels.

// Heap counters per test: `just compare` shows each test's peak heap next to the reference's.
kata_harness::install_allocator!();

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_harness::blocking;
use kata_harness::completion::completes_within;
use kata_harness::leaks::TaskBaseline;
use kata_harness::ms;
use kata_harness::report::{check_eq, fail};
use kata_harness::timing::{Timeline, assert_elapsed, assert_schedule, grid};
use rstest::rstest;
use ticker::{INTERVAL, Tick, Ticker, TickerError, TickerResult, ticker};

const STAGE1: &str = "exercises/ticker/README.md, stage 1";
const STAGE2: &str = "exercises/ticker/README.md, stage 2";
const STAGE3: &str = "exercises/ticker/README.md, stage 3";

/// Everything one ticker run did, as heard by listeners attached right after `start`.
#[derive(Debug)]
struct Run {
    /// `(virtual time, count)` of every `Tick`.
    ticks: Vec<(Duration, u32)>,
    /// `(virtual time, error)` of every `TickerError` event.
    errors: Vec<(Duration, TickerError)>,
    /// When `on_done` was called, and with what.
    done_at: Duration,
    result: TickerResult,
    /// Every event and the callback, in the order they happened.
    order: Vec<String>,
}

impl Run {
    fn tick_times(&self) -> Vec<Duration> {
        self.ticks.iter().map(|&(at, _)| at).collect()
    }

    fn tick_counts(&self) -> Vec<u32> {
        self.ticks.iter().map(|&(_, count)| count).collect()
    }
}

/// Starts `start_ticker`, listens, waits for `on_done`, then listens for one more second to
/// catch anything emitted after the end. Fails the test if `on_done` is never called.
async fn observe(
    total: Duration,
    hint: &str,
    start_ticker: impl FnOnce(Box<dyn FnOnce(TickerResult) + Send>) -> kata_emitter::EventEmitter,
) -> Run {
    let timeline = Timeline::start();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();

    let on_done_timeline = timeline.clone();
    let emitter = start_ticker(Box::new(move |result| {
        on_done_timeline.mark("done");
        let _ = done_tx.send((on_done_timeline.now(), result));
    }));

    // Listeners attached only now, after the call returned.
    let (tick_timeline, tick_log) = (timeline.clone(), ticks.clone());
    let _on_tick = emitter.on(move |tick: &Tick| {
        tick_timeline.mark("tick");
        tick_log
            .lock()
            .unwrap()
            .push((tick_timeline.now(), tick.count));
    });
    let (error_timeline, error_log) = (timeline.clone(), errors.clone());
    let _on_error = emitter.on(move |error: &TickerError| {
        error_timeline.mark("error");
        error_log
            .lock()
            .unwrap()
            .push((error_timeline.now(), error.clone()));
    });

    let limit = total + Duration::from_secs(1);
    let Ok((done_at, result)) = completes_within(limit, "on_done", hint, done_rx).await else {
        fail(
            "on_done was never called",
            "on_done to be called exactly once",
            "the ticker dropped the callback without calling it",
            hint,
        );
    };
    // Anything after the end is a bug: keep listening a while.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let ticks = ticks.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    Run {
        ticks,
        errors,
        done_at,
        result,
        order: timeline.labels(),
    }
}

fn scripted_clock(readings: Vec<u64>) -> (impl FnMut() -> u64 + Send + 'static, Arc<Mutex<usize>>) {
    let reads = Arc::new(Mutex::new(0));
    let counter = reads.clone();
    let clock = move || {
        let mut reads = counter.lock().unwrap();
        *reads += 1;
        // Past the script: a reading that is never divisible by 5.
        readings.get(*reads - 1).copied().unwrap_or(1_000_001)
    };
    (clock, reads)
}

// ---------------------------------------------------------------------------------------------
// Stage 1: tick every 50 ms while elapsed ≤ total, then on_done(Ok(count)) at total.

#[kata_harness::test]
async fn stage1_ticks_every_50ms_up_to_the_total() {
    let run = observe(ms(1000), STAGE1, |done| ticker(ms(1000), done)).await;
    assert_schedule(
        "ticks of ticker(1000 ms)",
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(1000)),
        "stage 1 ticks at 50, 100, ... 1000 ms: not at 0 ms, and not past the total \
         (exercises/ticker/README.md, stage 1)",
    );
    check_eq(
        "tick counts",
        run.tick_counts(),
        (1..=20).collect(),
        "count is 1 for the first tick, 2 for the second, ...",
    );
}

#[rstest]
#[case::zero(0, 0)]
#[case::just_below_one_interval(49, 0)]
#[case::one_interval(50, 1)]
#[case::just_above_one_interval(51, 1)]
#[case::between_ticks(120, 2)]
#[case::just_below_twenty(999, 19)]
#[kata_harness::test]
async fn stage1_tick_count_is_floor_of_total_over_50(#[case] total: u64, #[case] expected: u32) {
    let run = observe(ms(total), STAGE1, |done| ticker(ms(total), done)).await;
    assert_schedule(
        &format!("ticks of ticker({total} ms)"),
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(total)),
        "a tick is due at every multiple of 50 ms that is ≤ total, and no other time",
    );
    check_eq(
        &format!("on_done's result for ticker({total} ms)"),
        run.result,
        Ok(expected),
        "on_done gets Ok(number of ticks emitted)",
    );
}

#[kata_harness::test]
async fn stage1_on_done_is_called_at_exactly_the_total() {
    let run = observe(ms(120), STAGE1, |done| ticker(ms(120), done)).await;
    assert_elapsed(
        "on_done of ticker(120 ms)",
        run.done_at,
        ms(120),
        Duration::ZERO,
        "on_done is due when the total has passed (120 ms), not at the last tick (100 ms) \
         nor at the next one (150 ms)",
    );
    check_eq("on_done's result", run.result, Ok(2), STAGE1);
}

#[kata_harness::test]
async fn stage1_the_last_tick_comes_before_on_done() {
    // With total = 100 ms the last tick and on_done fall at the same instant: tick first.
    let run = observe(ms(100), STAGE1, |done| ticker(ms(100), done)).await;
    check_eq(
        "the order of events for ticker(100 ms)",
        run.order,
        vec!["tick".to_owned(), "tick".to_owned(), "done".to_owned()],
        "emit the tick due at 100 ms, then call on_done",
    );
}

#[kata_harness::test]
async fn stage1_nothing_happens_after_on_done_and_the_task_ends() {
    let baseline = TaskBaseline::capture();
    let run = observe(ms(200), STAGE1, |done| ticker(ms(200), done)).await;
    assert_schedule(
        "ticks of ticker(200 ms), watched until 1200 ms",
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(200)),
        "after on_done the ticker must stop: no more ticks",
    );
    baseline
        .assert_back(
            Duration::ZERO,
            "the ticker's task",
            "the ticking task should return after calling on_done",
        )
        .await;
}

#[kata_harness::test]
async fn stage1_does_not_block_the_executor() {
    let (run, report) =
        blocking::watch(observe(ms(300), STAGE1, |done| ticker(ms(300), done))).await;
    blocking::assert_not_blocked(
        "ticker(300 ms)",
        report,
        ms(40),
        "wait with tokio::time::sleep or sleep_until, never a blocking sleep from std::thread: \
         a blocked thread stops every other task (and the paused clock)",
    );
    check_eq("on_done's result", run.result, Ok(6), STAGE1);
}

// ---------------------------------------------------------------------------------------------
// Stage 2: with .immediate(), also tick at 0 ms, asynchronously.

#[kata_harness::test]
async fn stage2_a_listener_attached_after_the_call_hears_the_first_tick() {
    let run = observe(ms(10), STAGE2, |done| {
        Ticker::new(ms(10)).immediate().start(done)
    })
    .await;
    if run.ticks.is_empty() {
        fail(
            "the immediate tick was not heard",
            "a listener attached right after start() hears the tick at 0 ms",
            "no tick reached it",
            "emit the first tick from the spawned task, not inside start(): a tick emitted \
             before start() returns reaches nobody, because nobody could listen yet",
        );
    }
    check_eq("ticks heard", run.ticks, vec![(ms(0), 1)], STAGE2);
    check_eq("on_done's result", run.result, Ok(1), STAGE2);
}

#[kata_harness::test]
async fn stage2_ticks_at_once_then_every_50ms() {
    let run = observe(ms(1000), STAGE2, |done| {
        Ticker::new(ms(1000)).immediate().start(done)
    })
    .await;
    assert_schedule(
        "ticks of an immediate ticker(1000 ms)",
        &run.tick_times(),
        &grid(ms(0), INTERVAL, ms(1000)),
        "stage 2 adds one tick at 0 ms, emitted from the spawned task so that listeners \
         attached after start() returns hear it; the others stay on the 50 ms grid",
    );
    check_eq(
        "tick counts",
        run.tick_counts(),
        (1..=21).collect(),
        "the immediate tick is count 1",
    );
    check_eq(
        "on_done's result",
        run.result,
        Ok(21),
        "the immediate tick counts too",
    );
    assert_elapsed("on_done", run.done_at, ms(1000), Duration::ZERO, STAGE2);
}

#[rstest]
#[case::zero(0, 1)]
#[case::just_below_one_interval(49, 1)]
#[case::one_interval(50, 2)]
#[case::between_ticks(120, 3)]
#[kata_harness::test]
async fn stage2_tick_count_is_one_more(#[case] total: u64, #[case] expected: u32) {
    let run = observe(ms(total), STAGE2, |done| {
        Ticker::new(ms(total)).immediate().start(done)
    })
    .await;
    assert_schedule(
        &format!("ticks of an immediate ticker({total} ms)"),
        &run.tick_times(),
        &grid(ms(0), INTERVAL, ms(total)),
        STAGE2,
    );
    check_eq(
        &format!("on_done's result for ticker({total} ms)"),
        run.result,
        Ok(expected),
        STAGE2,
    );
    assert_elapsed("on_done", run.done_at, ms(total), Duration::ZERO, STAGE2);
}

// ---------------------------------------------------------------------------------------------
// Stage 3: with .with_clock(..), a reading divisible by 5 is an error on both channels.

/// Ticks at 0, 50, 100, 150 read clean timestamps; the tick at 200 ms reads 1010.
async fn run_with_error_at_200ms() -> Run {
    let (clock, _) = scripted_clock(vec![1001, 1002, 1003, 1004, 1010, 1011]);
    observe(ms(1000), STAGE3, |done| {
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
        "emit the error as an event at the failing tick, with the timestamp and the ticks so far",
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
        "pass the same error to on_done, straight away",
    );
    assert_elapsed(
        "on_done",
        run.done_at,
        ms(200),
        Duration::ZERO,
        "on_done is called at the failing tick, not at the total",
    );
    let message = run.result.unwrap_err().to_string();
    if !message.contains("1010") {
        fail(
            "the TickerError's message",
            "a message that names the timestamp, 1010",
            format_args!("{message:?}"),
            "keep the #[error(...)] text of TickerError, which prints the timestamp",
        );
    }
}

#[kata_harness::test]
async fn stage3_the_ticker_stops_at_the_error() {
    let baseline = TaskBaseline::capture();
    let run = run_with_error_at_200ms().await;
    assert_schedule(
        "ticks of a ticker whose tick at 200 ms fails",
        &run.tick_times(),
        &[ms(0), ms(50), ms(100), ms(150)],
        "the failing tick is not emitted as a Tick, and nothing is emitted after it",
    );
    check_eq(
        "the order of events",
        run.order,
        ["tick", "tick", "tick", "tick", "error", "done"]
            .map(String::from)
            .to_vec(),
        "error event, then on_done, then nothing",
    );
    baseline
        .assert_back(
            Duration::ZERO,
            "the ticker's task",
            "return from the task after the error",
        )
        .await;
}

#[kata_harness::test]
async fn stage3_the_immediate_tick_can_fail_too() {
    let (clock, _) = scripted_clock(vec![1005]);
    let run = observe(ms(500), STAGE3, |done| {
        Ticker::new(ms(500))
            .immediate()
            .with_clock(clock)
            .start(done)
    })
    .await;
    check_eq(
        "ticks",
        run.ticks,
        vec![],
        "the first reading is 1005: no tick at all",
    );
    check_eq(
        "TickerError events",
        run.errors,
        vec![(
            ms(0),
            TickerError {
                timestamp: 1005,
                ticks: 0,
            },
        )],
        STAGE3,
    );
    check_eq(
        "on_done's result",
        run.result,
        Err(TickerError {
            timestamp: 1005,
            ticks: 0,
        }),
        STAGE3,
    );
}

#[kata_harness::test]
async fn stage3_the_clock_is_read_once_per_tick() {
    // Readings 1, 2, 3, 4, 6, 7, ...: never divisible by 5.
    let readings: Vec<u64> = (1..100_u64).filter(|n| !n.is_multiple_of(5)).collect();
    let (clock, reads) = scripted_clock(readings);
    let run = observe(ms(500), STAGE3, |done| {
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
        "no reading is divisible by 5: tick as in stage 2",
    );
    check_eq(
        "clock readings",
        *reads.lock().unwrap(),
        11,
        "read the clock exactly once per tick: reading it twice checks a different timestamp \
         from the one you report",
    );
}

#[kata_harness::test]
async fn stage3_a_failing_last_tick_ends_at_the_total() {
    let (clock, _) = scripted_clock(vec![1, 2, 3, 4, 6, 10]);
    let run = observe(ms(300), STAGE3, |done| {
        Ticker::new(ms(300)).with_clock(clock).start(done)
    })
    .await;
    // Not immediate: readings at 50..300 ms; the sixth, at 300 ms, is 10.
    assert_schedule(
        "ticks",
        &run.tick_times(),
        &grid(ms(50), INTERVAL, ms(250)),
        STAGE3,
    );
    check_eq(
        "on_done's result",
        run.result,
        Err(TickerError {
            timestamp: 10,
            ticks: 5,
        }),
        STAGE3,
    );
    assert_elapsed("on_done", run.done_at, ms(300), Duration::ZERO, STAGE3);
}
