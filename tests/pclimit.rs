//! The PCLimit kata's suite, run against both `exercises/pclimit` and `solutions/pclimit`.
//!
//! The behaviour is p-limit's (the JavaScript library), translated to Rust: jobs start in call
//! order, never inside `run`, at most `concurrency` at a time; active and pending counts are
//! exact at every step; the queue can be cleared and the limit changed while jobs run. Jobs are
//! timers on the paused clock tracked by a concurrency probe, so every start time and every
//! in-flight count below is exact.

// Dropping handles is what several tests are about; in the stub `RunHandle` has no `Drop` of its
// own yet, which is all this lint would say.
#![allow(clippy::drop_non_drop)]

// Heap counters per test: `just compare` shows each test's peak heap next to the reference's.
kata_harness::install_allocator!();

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::join_all;
use kata_harness::completion::completes_within;
use kata_harness::leaks::{DropProbe, settle};
use kata_harness::ms;
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check_eq, fail};
use kata_harness::timing::{Timeline, assert_elapsed, assert_schedule};
use pclimit::{LimitError, PCLimit, RunError, RunHandle, scope};
use rstest::rstest;

const STAGE1: &str = "exercises/pclimit/README.md, stage 1";
const STAGE2: &str = "exercises/pclimit/README.md, stage 2";

/// Long enough for any test here; a handle still pending after this never resolves.
const PATIENCE: Duration = Duration::from_secs(60);

/// `PCLimit::new` for tests that are not about its errors.
fn limiter(concurrency: usize, hint: &str) -> PCLimit {
    PCLimit::new(concurrency).unwrap_or_else(|error| {
        fail(
            &format!("PCLimit::new({concurrency})"),
            "a limiter",
            format_args!("Err({error:?})"),
            hint,
        )
    })
}

/// A job that counts itself in `probe` while it sleeps for `length` from its first poll, then
/// returns `value`.
fn timed<T>(
    probe: &ConcurrencyProbe,
    length: Duration,
    value: T,
) -> impl Future<Output = T> + use<T> {
    // `sleep` sets its deadline when it is *called*, so call it inside the job.
    probe.track(async move {
        tokio::time::sleep(length).await;
        value
    })
}

/// A job that marks `start {index}` on the timeline, then sleeps for `length`.
fn marked(timeline: &Timeline, index: usize, length: Duration) -> impl Future<Output = ()> + use<> {
    let timeline = timeline.clone();
    async move {
        timeline.mark(format!("start {index}"));
        tokio::time::sleep(length).await;
    }
}

/// Asserts `(active_count, pending_count)`.
#[track_caller]
fn check_counts(when: &str, limit: &PCLimit, expected: (usize, usize), hint: &str) {
    check_eq(
        &format!("(active_count, pending_count) {when}"),
        (limit.active_count(), limit.pending_count()),
        expected,
        hint,
    );
}

/// Awaits a handle, failing the test (instead of hanging) if it never resolves.
async fn outcome<T>(handle: RunHandle<T>, hint: &str) -> Result<T, RunError> {
    completes_within(PATIENCE, "awaiting a RunHandle", hint, handle).await
}

// ---------------------------------------------------------------------------------------------
// Stage 1: the limiter
// ---------------------------------------------------------------------------------------------

#[kata_harness::test]
async fn stage1_invalid_limits_are_rejected() {
    check_eq(
        "PCLimit::new(0)",
        PCLimit::new(0).err(),
        Some(LimitError::ZeroConcurrency),
        "a limit of 0 lets nothing run: reject it with LimitError::ZeroConcurrency (stage 1)",
    );
    let limit = limiter(3, STAGE1);
    check_eq(
        "set_concurrency(0)",
        limit.set_concurrency(0),
        Err(LimitError::ZeroConcurrency),
        "changing the limit is checked like creating it (stage 1)",
    );
    check_eq(
        "concurrency() after a rejected set_concurrency(0)",
        limit.concurrency(),
        3,
        "a rejected change leaves the limit as it was (stage 1)",
    );
    let body_ran = Arc::new(AtomicBool::new(false));
    let flag = body_ran.clone();
    let scoped = scope(
        0,
        |_limit| async move { flag.store(true, Ordering::SeqCst) },
    )
    .await;
    check_eq(
        "scope(0, ..)",
        (scoped, body_ran.load(Ordering::SeqCst)),
        (Err(LimitError::ZeroConcurrency), false),
        "scope checks the limit before it runs the body (stage 1)",
    );
}

#[rstest]
#[case::more_jobs_than_slots(10, 3)]
#[case::an_exact_number_of_rounds(9, 3)]
#[case::fewer_jobs_than_slots(2, 4)]
#[case::one_at_a_time(5, 1)]
#[case::many(100, 16)]
#[kata_harness::test]
async fn stage1_never_more_than_the_limit_and_the_limit_is_reached(
    #[case] jobs: usize,
    #[case] concurrency: usize,
) {
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(concurrency, STAGE1);
    // Half the jobs go through a clone: clones share one limit.
    let clone = limit.clone();
    let handles: Vec<_> = (0..jobs)
        .map(|i| {
            let through = if i % 2 == 0 { &limit } else { &clone };
            through.run(timed(&probe, ms(10), i))
        })
        .collect();
    let results = completes_within(PATIENCE, "join_all(handles)", STAGE1, join_all(handles)).await;

    probe.assert_limit(
        concurrency.min(jobs),
        &format!("{jobs} jobs through PCLimit::new({concurrency}) and its clone"),
        "a job holds a slot from its start to its end, and a waiting job starts as soon as a \
         slot is free; clones must share the slots (stage 1)",
    );
    check_eq(
        "results of join_all",
        results,
        (0..jobs).map(Ok).collect(),
        "each handle resolves to Ok(its job's output) (stage 1)",
    );
    assert_elapsed(
        &format!("{jobs} jobs of 10 ms with a limit of {concurrency}"),
        start.elapsed(),
        ms(10 * jobs.div_ceil(concurrency) as u64),
        Duration::ZERO,
        "full rounds of `concurrency` jobs: ceil(jobs / concurrency) x 10 ms (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_results_come_back_in_input_order() {
    let probe = ConcurrencyProbe::new();
    let limit = limiter(2, STAGE1);
    let inputs = [30u64, 10, 20, 5, 25];
    let results = join_all(inputs.map(|x| limit.run(timed(&probe, ms(x), x * 2)))).await;
    check_eq(
        "join_all over inputs [30, 10, 20, 5, 25] (each job returns its input x 2)",
        results,
        inputs.map(|x| Ok(x * 2)).to_vec(),
        "the handles are awaited in input order, so each must resolve to its own job's output, \
         whatever order the jobs finish in (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_jobs_start_in_call_order() {
    let timeline = Timeline::start();
    let limit = limiter(2, STAGE1);
    let handles: Vec<_> = [30, 10, 20, 10, 10]
        .into_iter()
        .enumerate()
        .map(|(index, length)| limit.run(marked(&timeline, index, ms(length))))
        .collect();
    join_all(handles).await;
    check_eq(
        "the order jobs started in",
        timeline.labels(),
        (0..5).map(|i| format!("start {i}")).collect(),
        "the oldest waiting job gets the next free slot: first called, first started. Spawned \
         tasks are not guaranteed to run in spawn order, so keep your own queue (stage 1)",
    );
    let starts = timeline.instants();
    assert_schedule(
        "start times with a limit of 2",
        &starts,
        &[ms(0), ms(0), ms(10), ms(30), ms(30)],
        "job 2 starts when job 1 ends (10 ms); jobs 3 and 4 when jobs 0 and 2 end (30 ms) \
         (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_work_starts_asynchronously_never_inside_run() {
    let limit = limiter(3, STAGE1);
    let started = Arc::new(AtomicBool::new(false));
    let flag = started.clone();
    let handle = limit.run(async move {
        flag.store(true, Ordering::SeqCst);
        tokio::time::sleep(ms(10)).await;
        7
    });
    check_eq(
        "has the job started, right after run() returned",
        started.load(Ordering::SeqCst),
        false,
        "run() only queues the job; it starts once the caller yields to the runtime, even \
         when a slot is free (p-limit's rule: never sometimes-sync, sometimes-async) (stage 1)",
    );
    check_counts(
        "right after run() on an idle limiter",
        &limit,
        (0, 1),
        "until the runtime gets to it, the job is pending, not active: do not take a slot \
         inside run() (stage 1)",
    );
    settle().await;
    check_eq(
        "has the job started, once the runtime has had a turn",
        started.load(Ordering::SeqCst),
        true,
        STAGE1,
    );
    check_eq(
        "the job's result",
        outcome(handle, STAGE1).await,
        Ok(7),
        STAGE1,
    );
}

#[kata_harness::test]
async fn stage1_active_and_pending_counts_are_exact_at_every_step() {
    // The sequence of p-limit's own test of activeCount and pendingCount.
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(5, STAGE1);
    let hint = "active = jobs holding a slot, pending = jobs waiting for one (stage 1)";
    check_counts("on a new limiter", &limit, (0, 0), hint);

    let first = limit.run(timed(&probe, ms(1000), ()));
    check_counts("right after the first run()", &limit, (0, 1), hint);
    settle().await;
    check_counts("once the runtime has had a turn", &limit, (1, 0), hint);
    outcome(first, hint).await.ok();
    check_counts("after the first job finished", &limit, (0, 0), hint);

    let immediate: Vec<_> = (0..5)
        .map(|_| limit.run(timed(&probe, ms(1000), ())))
        .collect();
    let delayed: Vec<_> = (0..3)
        .map(|_| limit.run(timed(&probe, ms(1000), ())))
        .collect();
    settle().await;
    check_counts("with 8 jobs given to a limit of 5", &limit, (5, 3), hint);
    completes_within(PATIENCE, "the first five jobs", hint, join_all(immediate)).await;
    settle().await;
    check_counts("once the first five have finished", &limit, (3, 0), hint);
    completes_within(PATIENCE, "the last three jobs", hint, join_all(delayed)).await;
    check_counts("once all have finished", &limit, (0, 0), hint);
    assert_elapsed(
        "three rounds of 1000 ms jobs",
        start.elapsed(),
        ms(3000),
        Duration::ZERO,
        hint,
    );
}

#[kata_harness::test]
async fn stage1_a_detached_job_runs_to_the_end() {
    let limit = limiter(1, STAGE1);
    let probe = ConcurrencyProbe::new();
    limit.run(timed(&probe, ms(10), ())).detach();
    limit.run(timed(&probe, ms(10), ())).detach();
    tokio::time::sleep(ms(100)).await;
    check_eq(
        "detached jobs that ran to the end",
        probe.finished(),
        2,
        "detach() gives up the result, not the job: it keeps its place and runs (stage 1)",
    );
    check_counts("after both finished", &limit, (0, 0), STAGE1);
}

#[kata_harness::test]
async fn stage1_clear_queue_drops_pending_work_but_not_running_work() {
    let limit = limiter(1, STAGE1);
    let probe = ConcurrencyProbe::new();
    let running = limit.run(timed(&probe, ms(100), "finished"));
    let mut drop_probes = Vec::new();
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let (drop_probe, token) = DropProbe::new();
            drop_probes.push(drop_probe);
            let job = timed(&probe, ms(10), ());
            limit.run(async move {
                let _token = token;
                job.await;
            })
        })
        .collect();
    settle().await;
    check_counts("with 1 running and 3 waiting", &limit, (1, 3), STAGE1);

    check_eq(
        "clear_queue()'s return value",
        limit.clear_queue(),
        3,
        "clear_queue() returns how many waiting jobs it removed (stage 1)",
    );
    check_counts(
        "right after clear_queue()",
        &limit,
        (1, 0),
        "clearing removes waiting jobs only; the running one keeps its slot (stage 1)",
    );
    for (index, handle) in waiting.into_iter().enumerate() {
        check_eq(
            &format!("the handle of cleared job {index}"),
            outcome(handle, STAGE1).await,
            Err(RunError::Cancelled),
            "a cleared job's handle resolves to Err(RunError::Cancelled) instead of waiting \
             forever (stage 1)",
        );
    }
    for drop_probe in &drop_probes {
        drop_probe.assert_dropped(
            "a cleared job",
            "clear_queue() drops the jobs it removes (stage 1)",
        );
    }
    check_eq(
        "the running job's result",
        outcome(running, STAGE1).await,
        Ok("finished"),
        "clear_queue() never cancels running work (stage 1)",
    );
    check_eq(
        "jobs ever started",
        probe.started(),
        1,
        "cleared jobs never start (stage 1)",
    );
    let later = limit.run(async { 5 });
    check_eq(
        "a job run after clear_queue()",
        outcome(later, STAGE1).await,
        Ok(5),
        "the limiter keeps working after a clear (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_clear_queue_can_reject_with_a_distinct_error() {
    let limit = limiter(1, STAGE1).reject_on_clear();
    let running = limit.run(tokio::time::sleep(ms(100)));
    let waiting = limit.run(async { 1 });
    settle().await;
    check_eq("clear_queue()", limit.clear_queue(), 1, STAGE1);
    check_eq(
        "the handle of a job cleared by a reject_on_clear() limiter",
        outcome(waiting, STAGE1).await,
        Err(RunError::Cleared),
        "with reject_on_clear(), cleared handles fail with RunError::Cleared, so a caller can \
         tell \"the queue was cleared\" from other cancellations (stage 1)",
    );
    check_eq(
        "the running job",
        outcome(running, STAGE1).await,
        Ok(()),
        STAGE1,
    );
}

#[kata_harness::test]
async fn stage1_raising_the_limit_starts_waiting_jobs_at_once() {
    let probe = ConcurrencyProbe::new();
    let limit = limiter(2, STAGE1);
    let handles: Vec<_> = (0..10)
        .map(|_| limit.run(timed(&probe, ms(100), ())))
        .collect();
    tokio::time::sleep(ms(50)).await;
    check_eq(
        "set_concurrency(5)",
        limit.set_concurrency(5),
        Ok(()),
        STAGE1,
    );
    check_eq("concurrency()", limit.concurrency(), 5, STAGE1);
    settle().await;
    check_counts(
        "at 50 ms, just after raising the limit from 2 to 5",
        &limit,
        (5, 5),
        "raising the limit starts waiting jobs right away, not when a running job ends \
         (stage 1)",
    );
    join_all(handles).await;
    // Jobs 0-1 at 0 ms; 2-4 at 50 ms; 5-6 at 100 ms; 7-9 at 150 ms; the last end at 250 ms.
    check_eq(
        "jobs in flight over time, 10 jobs of 100 ms, limit 2 raised to 5 at 50 ms",
        probe.levels_over_time(),
        vec![
            (ms(0), 2),
            (ms(50), 5),
            (ms(100), 5),
            (ms(150), 5),
            (ms(200), 3),
            (ms(250), 0),
        ],
        STAGE1,
    );
}

#[kata_harness::test]
async fn stage1_lowering_the_limit_lets_running_work_drain() {
    let probe = ConcurrencyProbe::new();
    let timeline = Timeline::start();
    let limit = limiter(4, STAGE1);
    let handles: Vec<_> = [10, 20, 30, 40, 10, 10, 10, 10]
        .into_iter()
        .enumerate()
        .map(|(index, length)| limit.run(probe.track(marked(&timeline, index, ms(length)))))
        .collect();
    tokio::time::sleep(ms(5)).await;
    check_eq(
        "set_concurrency(1)",
        limit.set_concurrency(1),
        Ok(()),
        STAGE1,
    );
    check_counts(
        "at 5 ms, just after lowering the limit from 4 to 1",
        &limit,
        (4, 4),
        "lowering the limit cancels nothing: the 4 running jobs keep running (stage 1)",
    );
    join_all(handles).await;
    check_eq(
        "jobs in flight over time, limit 4 lowered to 1 at 5 ms",
        probe.levels_over_time(),
        vec![
            (ms(0), 4),
            (ms(10), 3),
            (ms(20), 2),
            (ms(30), 1),
            (ms(40), 1),
            (ms(50), 1),
            (ms(60), 1),
            (ms(70), 1),
            (ms(80), 0),
        ],
        "running jobs drain (4, 3, 2, 1) and the next job starts only when fewer than the new \
         limit run: at 40 ms, when the last of the four ends (stage 1)",
    );
    let starts = timeline.instants();
    assert_schedule(
        "start times",
        &starts,
        &[ms(0), ms(0), ms(0), ms(0), ms(40), ms(50), ms(60), ms(70)],
        STAGE1,
    );
}

#[kata_harness::test]
async fn stage1_the_scoped_form_waits_for_everything_started_inside() {
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let body_probe = probe.clone();
    let body_returned_at = Arc::new(std::sync::Mutex::new(None));
    let returned_at = body_returned_at.clone();
    let scoped = scope(2, |limit| async move {
        let answer = limit.run(timed(&body_probe, ms(5), 42));
        for length in [10, 30, 20] {
            limit.run(timed(&body_probe, ms(length), 0)).detach();
        }
        let answer = answer.await;
        *returned_at.lock().unwrap() = Some(start.elapsed());
        answer
    });
    let output = completes_within(PATIENCE, "scope(2, ..)", STAGE1, scoped).await;
    check_eq(
        "scope's output",
        output,
        Ok(Ok(42)),
        "scope returns Ok(whatever the body returned) (stage 1)",
    );
    check_eq(
        "when the body itself returned",
        *body_returned_at.lock().unwrap(),
        Some(ms(5)),
        STAGE1,
    );
    // Limit 2: the 5 ms and 10 ms jobs at 0; 30 ms at 5 (ends 35); 20 ms at 10 (ends 30).
    check_eq(
        "jobs finished when scope returned",
        probe.finished(),
        4,
        "scope waits for every job started through its limiter, detached ones too, after the \
         body returns (stage 1)",
    );
    assert_elapsed(
        "scope with jobs of 5, 10, 30 and 20 ms at a limit of 2",
        start.elapsed(),
        ms(35),
        Duration::ZERO,
        "scope returns when the last job ends: no earlier, and no later (stage 1)",
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: individual results, failures and cancellation
// ---------------------------------------------------------------------------------------------

#[kata_harness::test]
async fn stage2_each_caller_gets_its_own_result_or_error() {
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(2, STAGE2);
    let expected: Vec<Result<u32, String>> = (0..6)
        .map(|i| {
            if i % 3 == 1 {
                Err(format!("job {i} failed"))
            } else {
                Ok(i)
            }
        })
        .collect();
    let handles: Vec<_> = expected
        .iter()
        .cloned()
        .map(|result| limit.run(timed(&probe, ms(10), result)))
        .collect();
    let results = join_all(handles).await;
    check_eq(
        "results of jobs 0-5, where jobs 1 and 4 return Err",
        results,
        expected.into_iter().map(Ok).collect(),
        "a job's own Err is its caller's business: the handle gives Ok(Err(..)) to that caller \
         only, and the other jobs are unaffected (stage 2)",
    );
    probe.assert_limit(2, "6 jobs, 2 of them failing, at a limit of 2", STAGE2);
    assert_elapsed(
        "6 jobs of 10 ms at a limit of 2",
        start.elapsed(),
        ms(30),
        Duration::ZERO,
        "a failed job returns its slot like any other (stage 2)",
    );
}

/// Panics with a literal (`&str` payload) or a formatted message (`String` payload).
fn explode(formatted: bool) -> u32 {
    if formatted {
        panic!("job {} exploded", 2);
    }
    panic!("job exploded");
}

#[kata_harness::test]
async fn stage2_a_panicking_job_affects_only_its_caller_and_returns_its_slot() {
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(1, STAGE2);
    let literal = limit.run(async { explode(false) });
    let formatted = limit.run(async { explode(true) });
    let healthy = limit.run(timed(&probe, ms(10), 3));
    let hint = "a panic inside a spawned task does not unwind into your code: awaiting the \
                task's JoinHandle gives a JoinError whose into_panic() holds the payload, a &str \
                for panic!(\"literal\") and a String for panic!(\"{x}\") (stage 2)";
    check_eq(
        "the handle of a job that called panic!(\"job exploded\")",
        outcome(literal, hint).await,
        Err(RunError::Panicked {
            message: "job exploded".to_owned(),
        }),
        hint,
    );
    check_eq(
        "the handle of a job that called panic!(\"job {} exploded\", 2)",
        outcome(formatted, hint).await,
        Err(RunError::Panicked {
            message: "job 2 exploded".to_owned(),
        }),
        hint,
    );
    check_eq(
        "the job after them, at a limit of 1",
        outcome(healthy, STAGE2).await,
        Ok(3),
        "a panicking job must still give back its slot, or the next job never starts; a guard \
         whose Drop returns the slot does it, since unwinding runs Drop (stage 2)",
    );
    assert_elapsed(
        "the job after two panics",
        start.elapsed(),
        ms(10),
        Duration::ZERO,
        STAGE2,
    );
    check_counts("at the end", &limit, (0, 0), STAGE2);
}

#[kata_harness::test]
async fn stage2_cancelling_a_waiting_job_removes_it_from_the_queue() {
    let timeline = Timeline::start();
    let limit = limiter(1, STAGE2);
    let running = limit.run(marked(&timeline, 0, ms(100)));
    let (dropped_probe, token) = DropProbe::new();
    let dropped_job = marked(&timeline, 1, ms(10));
    let dropped = limit.run(async move {
        let _token = token;
        dropped_job.await;
    });
    let aborted = limit.run(marked(&timeline, 2, ms(10)));
    let kept = limit.run(marked(&timeline, 3, ms(10)));
    settle().await;
    check_counts("with 1 running and 3 waiting", &limit, (1, 3), STAGE2);

    drop(dropped);
    aborted.abort();
    settle().await;
    check_counts(
        "after dropping one waiting handle and aborting another",
        &limit,
        (1, 1),
        "a cancelled waiting job leaves the queue: dropping its handle or calling abort() \
         takes it out of pending_count (stage 2)",
    );
    dropped_probe.assert_dropped(
        "the job whose handle was dropped while it waited",
        "removing the job from the queue drops it (stage 2)",
    );
    check_eq(
        "the aborted handle",
        outcome(aborted, STAGE2).await,
        Err(RunError::Cancelled),
        "awaiting an aborted handle gives Err(RunError::Cancelled) (stage 2)",
    );
    outcome(running, STAGE2).await.ok();
    outcome(kept, STAGE2).await.ok();
    check_eq(
        "jobs that started",
        timeline.labels(),
        vec!["start 0".to_owned(), "start 3".to_owned()],
        "cancelled jobs never start; the next waiting job takes the slot (stage 2)",
    );
    assert_schedule(
        "start times",
        &timeline.instants(),
        &[ms(0), ms(100)],
        STAGE2,
    );
}

#[rstest]
#[case::by_abort(true)]
#[case::by_dropping_its_handle(false)]
#[kata_harness::test]
async fn stage2_a_cancelled_running_job_frees_its_slot(#[case] abort: bool) {
    let timeline = Timeline::start();
    let limit = limiter(1, STAGE2);
    let (running_probe, token) = DropProbe::new();
    let long_job = marked(&timeline, 0, Duration::from_secs(10));
    let running = limit.run(async move {
        let _token = token;
        long_job.await;
    });
    let next = limit.run(marked(&timeline, 1, ms(10)));
    tokio::time::sleep(ms(100)).await;
    let how = if abort {
        "abort()"
    } else {
        "dropping its handle"
    };
    let running = if abort {
        running.abort();
        Some(running)
    } else {
        drop(running);
        None
    };
    settle().await;
    running_probe.assert_dropped(
        &format!("the running job cancelled by {how}"),
        "cancelling a running job aborts its task, which drops the job (stage 2)",
    );
    check_counts(
        &format!("after cancelling the running job by {how}"),
        &limit,
        (1, 0),
        "the cancelled job's slot goes to the next waiting job at once (stage 2)",
    );
    if let Some(running) = running {
        check_eq(
            "the aborted running job's handle",
            outcome(running, STAGE2).await,
            Err(RunError::Cancelled),
            STAGE2,
        );
    }
    outcome(next, STAGE2).await.ok();
    assert_schedule(
        "start times",
        &timeline.instants(),
        &[ms(0), ms(100)],
        "the next job starts when the running one is cancelled, not 10 s later (stage 2)",
    );
}

#[kata_harness::test]
async fn stage2_individual_results_with_deterministic_delays() {
    // The source exercise: `async_work` sleeps a random 0.5-1.5 s and returns the delay. Here the
    // delays are fixed, so every finish time is known.
    async fn async_work(delay: Duration) -> Duration {
        tokio::time::sleep(delay).await;
        delay
    }
    let delays = [1200, 500, 900, 1500, 700, 1100, 600, 1300].map(ms);
    let timeline = Timeline::start();
    let limit = limiter(3, STAGE2);
    let handles = delays.iter().enumerate().map(|(index, &delay)| {
        let timeline = timeline.clone();
        limit.run(async move {
            let slept = async_work(delay).await;
            timeline.mark(format!("done {index}"));
            slept
        })
    });
    let results = completes_within(PATIENCE, "join_all", STAGE2, join_all(handles)).await;
    check_eq(
        "each caller's result",
        results,
        delays.map(Ok).to_vec(),
        "each handle gives back its own job's delay, in input order (stage 2)",
    );
    // Limit 3: jobs 0-2 at 0 ms; 3 at 500 (ends 2000); 4 at 900 (ends 1600); 5 at 1200 (ends
    // 2300); 6 at 1600 (ends 2200); 7 at 2000 (ends 3300).
    check_eq(
        "the order jobs finished in",
        timeline.labels(),
        [1, 2, 0, 4, 3, 6, 5, 7]
            .map(|i| format!("done {i}"))
            .to_vec(),
        STAGE2,
    );
    assert_schedule(
        "finish times",
        &timeline.instants(),
        &[500, 900, 1200, 1600, 2000, 2200, 2300, 3300].map(ms),
        STAGE2,
    );
}
