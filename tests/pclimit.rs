//! The PCLimit kata's suite, run against both `exercises/pclimit` and `solutions/pclimit`: the
//! kata's precise specification.
//!
//! The behaviour is p-limit's (the JavaScript library), translated to Rust: jobs start in call
//! order, never inside `run`, at most `concurrency` at a time; the active and pending counts are
//! exact at every step; the queue can be cleared and the limit changed while jobs run; `idle()`
//! and `scope` wait for everything. Jobs are timers on the paused clock, counted by a concurrency
//! probe or watched on a timeline, so every start time and every in-flight count is exact; two
//! tests run on a multi-threaded runtime, where calls really come from two threads and a job
//! really ends while another thread starts to wait. Stage by stage the tests reject the usual
//! wrong answers: a limit off by one, a start inside `run`, a queue that is not first in first
//! out (on one thread or on several), counts that drift, a cleared or cancelled job that keeps
//! its place or its slot, a wait that wakes only one waiter or misses the wake-up, a panic that
//! loses its message or its slot, a cancelled job that runs on.

// Dropping handles is what several tests are about; in the stub `RunHandle` has no `Drop` of its
// own yet, which is all this lint would say.
#![allow(clippy::drop_non_drop)]

kata_harness::install_allocator!();

#[path = "pclimit/support.rs"]
mod support;

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::join_all;
use kata_harness::completion::completes_within;
use kata_harness::leaks::{DropProbe, settle};
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check, check_eq, check_seq, fail};
use kata_harness::timing::{Timeline, assert_elapsed, assert_schedule};
use kata_harness::{Stage, ms};
use pclimit::{LimitError, PCLimit, RunError, scope};
use support::{
    PATIENCE, Panic, Race, Removal, calls_from_two_threads, carrying, check_counts, explode, gated,
    idle_of, joined, limiter, outcome, race_the_last_job, start_times, started, timed, watched,
};
use tokio::time::Instant;

const STAGE1: Stage = Stage::new("pclimit", 1);
const STAGE2: Stage = Stage::new("pclimit", 2);

/// Rounds of the lost wake-up race, at most (it also stops after 1.5 s of real time): a wait
/// that checks before it registers is caught within a few rounds.
const ROUNDS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Stage 1: the limiter.

#[kata_harness::test]
async fn stage1_invalid_limits_are_rejected() {
    check_eq(
        "PCLimit::new(0)",
        PCLimit::new(0).err(),
        Some(LimitError::ZeroConcurrency),
        &STAGE1.hint("a limit of 0 lets nothing run: return Err(LimitError::ZeroConcurrency)"),
    );
    let limit = limiter(3, &STAGE1.hint("PCLimit::new(3) is a valid limit"));
    check_eq(
        "set_concurrency(0)",
        limit.set_concurrency(0),
        Err(LimitError::ZeroConcurrency),
        &STAGE1.hint("set_concurrency checks its limit as PCLimit::new does: 0 is an error"),
    );
    check_eq(
        "concurrency() after a rejected set_concurrency(0)",
        limit.concurrency(),
        3,
        &STAGE1.hint("check the new limit before you store it: a rejected change changes nothing"),
    );
    let body_ran = Arc::new(AtomicBool::new(false));
    let flag = body_ran.clone();
    let scoped = scope(0, |_limit| async move {
        flag.store(true, Ordering::SeqCst);
    })
    .await;
    check_eq(
        "scope(0, ..)",
        scoped,
        Err(LimitError::ZeroConcurrency),
        &STAGE1.hint("scope makes its limiter with PCLimit::new: pass on its error"),
    );
    check_eq(
        "did scope(0, ..) run its body",
        body_ran.load(Ordering::SeqCst),
        false,
        &STAGE1.hint("make the limiter first, and return its error before calling the body"),
    );
}

#[kata_harness::test]
#[case::more_jobs_than_slots(10, 3)]
#[case::an_exact_number_of_rounds(9, 3)]
#[case::fewer_jobs_than_slots(2, 4)]
#[case::one_at_a_time(5, 1)]
#[case::many(100, 16)]
#[case::no_limit_in_practice(20, usize::MAX)]
async fn stage1_never_more_than_the_limit_and_the_limit_is_reached(
    #[case] jobs: usize,
    #[case] concurrency: usize,
) {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(
        concurrency,
        &STAGE1.hint("any limit from 1 to usize::MAX is valid"),
    );
    // Half the jobs go through a clone: clones share one limit.
    let clone = limit.clone();
    let handles: Vec<_> = (0..jobs)
        .map(|i| {
            let through = if i % 2 == 0 { &limit } else { &clone };
            through.run(timed(&probe, ms(10), i))
        })
        .collect();
    let waiting = STAGE1.hint("every job must end: a job that waits starts when a slot frees up");
    let results =
        completes_within("join_all(handles)", join_all(handles), PATIENCE, &waiting).await;

    let what = format!("{jobs} jobs of 10 ms through PCLimit::new({concurrency}) and a clone");
    probe.assert_never_above(
        &what,
        concurrency,
        &STAGE1.hint(
            "too many at once: a slot is taken when a job starts and given back when it ends; \
             compare with the limit before starting a job, and let clones share one state (an \
             Arc), not copies of it",
        ),
    );
    probe.assert_limit(
        &what,
        concurrency.min(jobs),
        &STAGE1.hint(
            "too few at once: start every waiting job a free slot allows, not one per event, and \
             give a slot back when its job ends (usize::MAX means no limit in practice: mind \
             arithmetic that overflows)",
        ),
    );
    check_eq(
        "results of join_all",
        results,
        (0..jobs).map(Ok).collect(),
        &STAGE1.hint("each handle resolves to Ok(the output of its own job)"),
    );
    assert_elapsed(
        &what,
        start.elapsed(),
        ms(10 * jobs.div_ceil(concurrency) as u64),
        &STAGE1.hint(
            "full rounds of `concurrency` jobs take ceil(jobs / concurrency) x 10 ms: later \
             means a waiting job did not start the moment a slot freed up",
        ),
    );
}

#[kata_harness::test]
async fn stage1_results_come_back_in_input_order() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(2, &STAGE1.hint("PCLimit::new(2) is a valid limit"));
    let inputs = [30_u64, 10, 20, 5, 25];
    let handles = inputs.map(|x| limit.run(timed(&probe, ms(x), x * 2)));
    let all = STAGE1.hint(
        "every handle resolves once its job has ended: poll the task's JoinHandle in your \
         handle's poll, which registers the waker",
    );
    let results = completes_within("join_all(handles)", join_all(handles), PATIENCE, &all).await;
    check_eq(
        "join_all over inputs [30, 10, 20, 5, 25] (each job returns its input x 2)",
        results,
        inputs.map(|x| Ok(x * 2)).to_vec(),
        &STAGE1.hint(
            "each handle must resolve to its own job's output, whatever order the jobs finish \
             in: give every job its own way back to its handle (the JoinHandle of its task)",
        ),
    );
    assert_elapsed(
        "join_all over jobs of 30, 10, 20, 5 and 25 ms at a limit of 2",
        start.elapsed(),
        ms(55),
        &STAGE1.hint(
            "the last job ends at 55 ms, and its handle must resolve then: a handle whose poll \
             returns Pending without polling the JoinHandle is never woken, and resolves only \
             when something else happens to poll it",
        ),
    );
}

// Every PCLimit clone dropped while jobs wait and run: nothing is cancelled.
//
//             0 ms      10 ms     20 ms     30 ms
//   job 0     |=========|
//   job 1               |=========|
//   job 2                         |=========|
//   drop(limit) at 0 ms, right after the three calls

#[kata_harness::test]
async fn stage1_jobs_outlive_the_limiter() {
    let timeline = Timeline::start();
    let limit = limiter(1, &STAGE1.hint("PCLimit::new(1) is a valid limit"));
    let handles: Vec<_> = (0..3)
        .map(|index| limit.run(watched(&timeline, index, ms(10))))
        .collect();
    drop(limit);
    let all = STAGE1.hint(
        "the handles and the jobs' tasks must keep alive what they need (an Arc of the shared \
         state): dropping the last PCLimit cancels nothing",
    );
    let results = completes_within("join_all(handles)", join_all(handles), PATIENCE, &all).await;
    check_eq(
        "results of 3 jobs whose limiter was dropped right after the calls",
        results,
        vec![Ok(()); 3],
        &all,
    );
    assert_schedule(
        "start times, limit 1, after the limiter was dropped",
        &start_times(&timeline),
        &[ms(0), ms(10), ms(20)],
        &STAGE1.hint("without its PCLimit the limit still holds: one job at a time, in order"),
    );
}

// PCLimit::new(2), jobs of 30, 10, 20, 10 and 10 ms, called in that order:
//
//             0 ms      10 ms     20 ms     30 ms     40 ms
//   slot A:   job 0 ========================job 3 ===|
//   slot B:   job 1 ===|job 2 ==============job 4 ===|

#[kata_harness::test]
async fn stage1_jobs_start_in_call_order() {
    let timeline = Timeline::start();
    let limit = limiter(2, &STAGE1.hint("PCLimit::new(2) is a valid limit"));
    let handles: Vec<_> = [30, 10, 20, 10, 10]
        .into_iter()
        .enumerate()
        .map(|(index, length)| limit.run(watched(&timeline, index, ms(length))))
        .collect();
    join_all(handles).await;
    check_seq(
        "the order jobs started in",
        &started(&timeline),
        &(0..5).map(|i| format!("job {i}")).collect::<Vec<_>>(),
        &STAGE1.hint(
            "the oldest waiting job gets the next free slot: first called, first started. Keep \
             the waiting jobs in a queue of your own, in call order: tokio does not promise to \
             run tasks in the order they were spawned",
        ),
    );
    assert_schedule(
        "start times with a limit of 2",
        &start_times(&timeline),
        &[ms(0), ms(0), ms(10), ms(30), ms(30)],
        &STAGE1.hint(
            "a waiting job starts the moment a slot frees up: job 2 when job 1 ends (10 ms), \
             jobs 3 and 4 when jobs 0 and 2 end (30 ms)",
        ),
    );
}

#[kata_harness::test]
async fn stage1_jobs_start_in_call_order_when_run_is_called_from_two_threads() {
    // A multi-threaded runtime: there, a task spawned last often runs first (tokio's LIFO slot),
    // and two threads call `run` at once, which no current-thread test can show.
    let rounds = calls_from_two_threads(20, 15).await;
    for (round, orders) in rounds.iter().enumerate() {
        check(
            &format!("round {round}: 30 jobs called from two threads at a limit of 1"),
            orders.finished,
            format_args!(
                "only {} of them started within 2 s (real time)",
                orders.starts.len()
            ),
            "all of them to run, one after the other",
            &STAGE1.hint(
                "on a multi-threaded runtime too, every job ending must start the next waiting \
                 one: the job may end on another thread than the one that called run()",
            ),
        );
        check_seq(
            &format!(
                "round {round}: the order 30 jobs started in at a limit of 1, called from two \
                 threads (job ids in call order)"
            ),
            &orders.starts,
            &orders.calls,
            &STAGE1.hint(
                "\"call order\" is the order in which run() took its place in your queue. Give \
                 each call its place inside run() itself, under the lock, and hand a free slot \
                 to the oldest waiting job: not to whichever task the runtime happens to poll \
                 first, and not in the order tasks reach a semaphore",
            ),
        );
    }
}

#[kata_harness::test]
async fn stage1_work_starts_asynchronously_never_inside_run() {
    let limit = limiter(3, &STAGE1.hint("PCLimit::new(3) is a valid limit"));
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
        &STAGE1.hint(
            "run() only queues the job, even when a slot is free: never poll the job inside \
             run(). It starts once the caller yields to the runtime (no Zalgo: the same \
             behaviour whether the limiter is busy or not)",
        ),
    );
    check_counts(
        "right after run() on an idle limiter",
        &limit,
        (0, 1),
        &STAGE1.hint(
            "right after run() the job is pending, not active: hand out slots from inside the \
             runtime (the job's task, a job that ends, set_concurrency), never inside run()",
        ),
    );
    settle().await;
    check_eq(
        "has the job started, once the runtime has had a turn",
        started.load(Ordering::SeqCst),
        true,
        &STAGE1.hint(
            "with a free slot the job starts as soon as the runtime gets to it: the job's own \
             task, on its first poll, can hand the free slot to the oldest waiting job",
        ),
    );
    check_eq(
        "the job's result",
        outcome(handle, &STAGE1.hint("a job with a free slot runs and ends")).await,
        Ok(7),
        &STAGE1.hint("awaiting the handle gives Ok(the job's output)"),
    );
}

#[kata_harness::test]
async fn stage1_active_and_pending_counts_are_exact_at_every_step() {
    // The sequence of p-limit's own test of activeCount and pendingCount (up to p-limit 6).
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(5, &STAGE1.hint("PCLimit::new(5) is a valid limit"));
    let counts = |text: &'static str| STAGE1.hint(text);
    check_counts(
        "on a new limiter",
        &limit,
        (0, 0),
        &counts("a new limiter has nothing running and nothing waiting"),
    );

    let first = limit.run(timed(&probe, ms(1000), ()));
    check_counts(
        "right after the first run()",
        &limit,
        (0, 1),
        &counts("a job given to run() waits until the runtime gets to it: (0 active, 1 pending)"),
    );
    settle().await;
    check_counts(
        "once the runtime has had a turn",
        &limit,
        (1, 0),
        &counts("a job that got a slot moves from pending to active in one step"),
    );
    outcome(first, &counts("a lone job runs and ends"))
        .await
        .ok();
    check_counts(
        "after the first job finished",
        &limit,
        (0, 0),
        &counts("a job that ends gives its slot back: active goes down by one"),
    );

    let immediate: Vec<_> = (0..5)
        .map(|_| limit.run(timed(&probe, ms(1000), ())))
        .collect();
    let delayed: Vec<_> = (0..3)
        .map(|_| limit.run(timed(&probe, ms(1000), ())))
        .collect();
    settle().await;
    check_counts(
        "with 8 jobs given to a limit of 5",
        &limit,
        (5, 3),
        &counts("active counts jobs holding a slot (at most the limit), pending the rest"),
    );
    let five = counts("the first five jobs end after 1000 ms");
    completes_within("the first five jobs", join_all(immediate), PATIENCE, &five).await;
    settle().await;
    check_counts(
        "once the first five have finished",
        &limit,
        (3, 0),
        &counts("when a job ends, a waiting job takes its slot: pending down, active unchanged"),
    );
    let three = counts("the last three jobs end 1000 ms after they start");
    completes_within("the last three jobs", join_all(delayed), PATIENCE, &three).await;
    check_counts(
        "once all have finished",
        &limit,
        (0, 0),
        &counts("every job that ends gives its slot back, however it ends"),
    );
    assert_elapsed(
        "three rounds of 1000 ms jobs",
        start.elapsed(),
        ms(3000),
        &counts("one job, then five, then three: each round starts when the last one ends"),
    );
}

#[kata_harness::test]
async fn stage1_a_detached_job_runs_to_the_end() {
    let limit = limiter(1, &STAGE1.hint("PCLimit::new(1) is a valid limit"));
    let probe = ConcurrencyProbe::new();
    limit.run(timed(&probe, ms(10), ())).detach();
    limit.run(timed(&probe, ms(10), ())).detach();
    tokio::time::sleep(ms(100)).await;
    check_eq(
        "detached jobs that ran to the end",
        probe.finished(),
        2,
        &STAGE1.hint(
            "detach() gives up the result, not the job: the job keeps its place and runs, and \
             its slot comes back when it ends, though nobody awaits its handle. Make detach() \
             skip what dropping a handle does",
        ),
    );
    check_counts(
        "after both finished",
        &limit,
        (0, 0),
        &STAGE1.hint("a detached job gives its slot back when it ends, like any other"),
    );
}

#[kata_harness::test]
async fn stage1_clear_queue_drops_pending_work_but_not_running_work() {
    let limit = limiter(1, &STAGE1.hint("PCLimit::new(1) is a valid limit"));
    let probe = ConcurrencyProbe::new();
    let running = limit.run(timed(&probe, ms(100), "finished"));
    let mut drop_probes = Vec::new();
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let (drop_probe, token) = DropProbe::new();
            drop_probes.push(drop_probe);
            limit.run(carrying(token, timed(&probe, ms(10), ())))
        })
        .collect();
    settle().await;
    check_counts(
        "with 1 running and 3 waiting",
        &limit,
        (1, 3),
        &STAGE1.hint("a limit of 1 runs one job; the three others wait"),
    );

    check_eq(
        "clear_queue()'s return value",
        limit.clear_queue(),
        3,
        &STAGE1.hint("clear_queue() returns how many waiting jobs it removed"),
    );
    check_counts(
        "right after clear_queue()",
        &limit,
        (1, 0),
        &STAGE1.hint("clearing removes the waiting jobs at once; the running one keeps its slot"),
    );
    let cleared_at = Instant::now();
    for (index, handle) in waiting.into_iter().enumerate() {
        check_eq(
            &format!("the handle of cleared job {index}"),
            outcome(
                handle,
                &STAGE1.hint("a cleared job's handle resolves at once"),
            )
            .await,
            Err(RunError::Cancelled),
            &STAGE1.hint(
                "a cleared job's handle resolves to Err(RunError::Cancelled): tell the job's \
                 task it will never start (dropping its \"you may start\" sender is a message \
                 too)",
            ),
        );
    }
    assert_elapsed(
        "when the cleared handles resolved, after clear_queue()",
        cleared_at.elapsed(),
        ms(0),
        &STAGE1.hint(
            "cleared handles resolve at once, not when a slot next frees up (100 ms later): \
             take the cleared jobs out of the queue and tell their tasks in clear_queue \
             itself, rather than marking them and letting the next hand-out find them",
        ),
    );
    for drop_probe in &drop_probes {
        drop_probe.assert_dropped(
            "a cleared job",
            &STAGE1.hint("a cleared job is dropped, not kept somewhere: let its task end"),
        );
    }
    check_eq(
        "the running job's result",
        outcome(running, &STAGE1.hint("the running job runs on")).await,
        Ok("finished"),
        &STAGE1.hint("clear_queue() never cancels running work"),
    );
    check_eq(
        "jobs ever started",
        probe.started(),
        1,
        &STAGE1.hint("a cleared job never starts, even when a slot frees up later"),
    );
    let later = limit.run(async { 5 });
    check_eq(
        "a job run after clear_queue()",
        outcome(
            later,
            &STAGE1.hint("the limiter keeps working after a clear"),
        )
        .await,
        Ok(5),
        &STAGE1.hint("the limiter keeps working after a clear"),
    );
    check_eq(
        "clear_queue() on an empty queue",
        limit.clear_queue(),
        0,
        &STAGE1.hint("clear_queue() counts what it removed this time: nothing is waiting now"),
    );
}

#[kata_harness::test]
async fn stage1_clear_queue_can_reject_with_a_distinct_error() {
    let limit = limiter(1, &STAGE1.hint("PCLimit::new(1) is a valid limit")).reject_on_clear();
    let running = limit.run(tokio::time::sleep(ms(100)));
    let waiting = limit.run(async { 1 });
    settle().await;
    check_eq(
        "clear_queue() on a reject_on_clear() limiter",
        limit.clear_queue(),
        1,
        &STAGE1.hint("reject_on_clear() changes the cleared handles' error, not what is cleared"),
    );
    check_eq(
        "the handle of a job cleared by a reject_on_clear() limiter",
        outcome(
            waiting,
            &STAGE1.hint("a cleared job's handle resolves at once"),
        )
        .await,
        Err(RunError::Cleared),
        &STAGE1.hint(
            "with reject_on_clear(), cleared handles fail with RunError::Cleared, so a caller \
             can tell \"the queue was cleared\" from other cancellations: remember the mode, \
             and send the waiting job that answer instead of dropping its sender",
        ),
    );
    check_eq(
        "the running job",
        outcome(running, &STAGE1.hint("the running job runs on")).await,
        Ok(()),
        &STAGE1.hint("clear_queue() never touches running work"),
    );
}

// A job handed a slot is no longer waiting, even before its task runs:
//
//   PCLimit::new(1): job 0 running, job 1 waiting
//   set_concurrency(2)   job 1 gets the second slot (in the reference: its task has not run yet)
//   clear_queue()        returns 0: nothing waits; job 1 runs, and no slot is lost
//
// A limiter that hands out the new slot a moment later may instead clear job 1 (returning 1):
// what clear_queue() says and what happens to job 1 must agree, and no slot may be lost.

#[kata_harness::test]
async fn stage1_clear_queue_never_takes_back_a_job_that_was_given_a_slot() {
    let limit = limiter(1, &STAGE1.hint("PCLimit::new(1) is a valid limit"));
    let (first_gate, first_job) = gated(0);
    let (second_gate, second_job) = gated(1);
    let first = limit.run(first_job);
    let second = limit.run(second_job);
    settle().await;
    check_counts(
        "with 1 running and 1 waiting",
        &limit,
        (1, 1),
        &STAGE1.hint("a limit of 1 runs one job; the other waits"),
    );
    check_eq(
        "set_concurrency(2)",
        limit.set_concurrency(2),
        Ok(()),
        &STAGE1.hint("2 is a valid limit"),
    );
    // No await between the two calls: whatever set_concurrency started has not run yet.
    let cleared = limit.clear_queue();
    check(
        "clear_queue() right after set_concurrency(2), with one job waiting",
        cleared <= 1,
        format_args!("it returned {cleared}"),
        "0 (the job already has a slot) or 1 (it was still waiting)",
        &STAGE1.hint("clear_queue() counts the waiting jobs it removed: one at most waited"),
    );
    check_counts(
        "right after set_concurrency(2) and clear_queue()",
        &limit,
        (2 - cleared, 0),
        &STAGE1.hint(
            "a job is either waiting (clear_queue removes and counts it) or holds a slot \
             (active), never both and never neither: move it from the queue to the active count \
             in one step, under one lock",
        ),
    );
    settle().await;
    first_gate.open();
    second_gate.open();
    check_eq(
        "the first job, which was running",
        outcome(first, &STAGE1.hint("the running job runs on")).await,
        Ok(0),
        &STAGE1.hint("clear_queue() never touches running work"),
    );
    let expected = if cleared == 0 {
        Ok(1)
    } else {
        Err(RunError::Cancelled)
    };
    check_eq(
        &format!("the second job, after clear_queue() returned {cleared}"),
        outcome(second, &STAGE1.hint("every handle resolves")).await,
        expected,
        &STAGE1.hint(
            "clear_queue() said whether it removed the job; the job must agree: removed means \
             cancelled, not removed means it runs",
        ),
    );
    let (gates, jobs): (Vec<_>, Vec<_>) = (0..2).map(gated).unzip();
    let handles: Vec<_> = jobs.into_iter().map(|job| limit.run(job)).collect();
    settle().await;
    check_counts(
        "two new jobs at a limit of 2, after all that",
        &limit,
        (2, 0),
        &STAGE1.hint(
            "no slot may be lost: a slot given to a job is given back when that job ends, or \
             when it is cleared or cancelled before it starts",
        ),
    );
    gates.into_iter().for_each(support::Gate::open);
    join_all(handles).await;
}

// 10 jobs of 100 ms, PCLimit::new(2), set_concurrency(5) at 50 ms:
//
//             0 ms    50 ms   100 ms  150 ms  200 ms  250 ms
//   jobs 0-1  |=======|=======|
//   jobs 2-4          |=======|=======|
//   jobs 5-6                  |=======|=======|
//   jobs 7-9                          |=======|=======|
//   in flight 2       5       5       5       3       0

#[kata_harness::test]
async fn stage1_raising_the_limit_starts_waiting_jobs_at_once() {
    let probe = ConcurrencyProbe::new();
    let limit = limiter(2, &STAGE1.hint("PCLimit::new(2) is a valid limit"));
    let handles: Vec<_> = (0..10)
        .map(|_| limit.run(timed(&probe, ms(100), ())))
        .collect();
    tokio::time::sleep(ms(50)).await;
    check_eq(
        "set_concurrency(5)",
        limit.set_concurrency(5),
        Ok(()),
        &STAGE1.hint("5 is a valid limit"),
    );
    check_eq(
        "concurrency() after set_concurrency(5)",
        limit.concurrency(),
        5,
        &STAGE1.hint("concurrency() reads the limit set_concurrency stored"),
    );
    settle().await;
    check_counts(
        "at 50 ms, just after raising the limit from 2 to 5",
        &limit,
        (5, 5),
        &STAGE1.hint(
            "raising the limit starts waiting jobs right away, not when a running job ends: \
             set_concurrency hands out the new free slots itself",
        ),
    );
    join_all(handles).await;
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
        &STAGE1.hint(
            "after the raise, 5 slots: each job that ends hands its slot to the oldest waiting \
             job at the same instant",
        ),
    );
}

// Jobs of 10, 20, 30, 40, 10, 10, 10 and 10 ms at PCLimit::new(4), set_concurrency(1) at 5 ms:
//
//             0    10   20   30   40   50   60   70   80 ms
//   job 0     |====|
//   job 1     |=========|
//   job 2     |==============|
//   job 3     |===================|
//   jobs 4-7                      |====|====|====|====|
//   in flight 4    3    2    1    1    1    1    1    0

#[kata_harness::test]
async fn stage1_lowering_the_limit_lets_running_work_drain() {
    let probe = ConcurrencyProbe::new();
    let timeline = Timeline::start();
    let limit = limiter(4, &STAGE1.hint("PCLimit::new(4) is a valid limit"));
    let handles: Vec<_> = [10, 20, 30, 40, 10, 10, 10, 10]
        .into_iter()
        .enumerate()
        .map(|(index, length)| limit.run(probe.track(watched(&timeline, index, ms(length)))))
        .collect();
    tokio::time::sleep(ms(5)).await;
    check_eq(
        "set_concurrency(1)",
        limit.set_concurrency(1),
        Ok(()),
        &STAGE1.hint("1 is a valid limit"),
    );
    check_counts(
        "at 5 ms, just after lowering the limit from 4 to 1",
        &limit,
        (4, 4),
        &STAGE1.hint("lowering the limit cancels nothing: the 4 running jobs keep running"),
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
        &STAGE1.hint(
            "running jobs drain (4, 3, 2, 1) and the next job starts only when fewer than the \
             new limit run, at 40 ms: compare the active count with the limit as it is now, \
             not with a number of free slots counted under the old limit",
        ),
    );
    assert_schedule(
        "start times",
        &start_times(&timeline),
        &[ms(0), ms(0), ms(0), ms(0), ms(40), ms(50), ms(60), ms(70)],
        &STAGE1.hint("after lowering to 1, one job at a time, each when the one before ends"),
    );
}

// scope(2, ..) whose body runs a 5 ms job, awaits it, and detaches jobs of 10, 30 and 20 ms:
//
//             0 ms 5    10             30   35
//   slot A:   5 ==|30 ms ====================|
//   slot B:   10 ms ===|20 ms ========|
//   the body returns at 5 ms (with 42); scope returns at 35 ms, when the last job ends

#[kata_harness::test]
async fn stage1_the_scoped_form_waits_for_everything_started_inside() {
    let start = Instant::now();
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
    let waits = STAGE1.hint("scope returns once the body and every job are done");
    let output = completes_within("scope(2, ..)", scoped, PATIENCE, &waits).await;
    check_eq(
        "scope's output",
        output,
        Ok(Ok(42)),
        &STAGE1.hint("scope returns Ok(whatever the body returned)"),
    );
    check_eq(
        "when the body itself returned",
        *body_returned_at.lock().unwrap(),
        Some(ms(5)),
        &STAGE1.hint("the body's own handle resolves when its 5 ms job ends"),
    );
    check_eq(
        "jobs finished when scope returned",
        probe.finished(),
        4,
        &STAGE1.hint(
            "scope waits, after the body returns, for every job started through its limiter, \
             detached ones too: wait until the limiter is idle",
        ),
    );
    assert_elapsed(
        "scope with jobs of 5, 10, 30 and 20 ms at a limit of 2",
        start.elapsed(),
        ms(35),
        &STAGE1.hint(
            "scope returns the moment the last job ends (35 ms): not before, and not later by \
             a timer that checks now and then",
        ),
    );
}

// Two waiters at once, and a body that returns while its jobs have not even started:
//
//             0 ms                20 ms               40 ms
//   job 0     |===================|
//   job 1     |=======================================|
//   idle() x2 waiting ............................... returns at 40 ms (both)
//   scope     body returns at 0 ms (job 2 only queued) ..... returns at 40 ms

#[kata_harness::test]
async fn stage1_idle_wakes_every_waiter() {
    let start = Instant::now();
    let limit = limiter(2, &STAGE1.hint("PCLimit::new(2) is a valid limit"));
    let timeline = Timeline::start();
    limit.run(tokio::time::sleep(ms(20))).detach();
    limit.run(tokio::time::sleep(ms(40))).detach();
    let waiters: Vec<_> = ["idle() 1", "idle() 2"]
        .into_iter()
        .map(|name| tokio::spawn(timeline.watch(name, idle_of(limit.clone()))))
        .collect();
    let scope_timeline = timeline.clone();
    let scoped = scope(1, |inner| async move {
        inner.run(tokio::time::sleep(ms(40))).detach();
        // A waiter of the scope's own limiter, beside the scope itself.
        tokio::spawn(scope_timeline.watch("idle() in scope", idle_of(inner)));
    });
    let everyone = STAGE1.hint(
        "wake every waiter when the limiter empties (Notify::notify_waiters, not notify_one, \
         which wakes only one)",
    );
    check_eq(
        "scope(1, ..)'s output",
        completes_within("scope(1, ..)", scoped, PATIENCE, &everyone).await,
        Ok(()),
        &STAGE1.hint("scope returns Ok(whatever the body returned)"),
    );
    assert_elapsed(
        "scope(1, ..) whose body only queued a 40 ms job and returned at once",
        start.elapsed(),
        ms(40),
        &STAGE1.hint(
            "a job given to run() but not started yet counts as work: idle() and scope wait \
             for pending jobs too, not only for running ones",
        ),
    );
    for waiter in waiters {
        joined("two idle() waiters", waiter, &everyone).await;
    }
    for name in ["idle() 1", "idle() 2", "idle() in scope"] {
        check_eq(
            &format!("when {name} returned"),
            timeline.life(name).finished,
            Some(ms(40)),
            &everyone,
        );
    }
}

// idle() must not poll: it returns at the instant the last job ends, even when no timer is due
// then. The jobs here end when the test opens their gates.
//
//             0 ms          10 ms          20 ms
//   job 0     |=============| gate opened
//   job 1     |============================| gate opened
//   idle()    waiting ..................... returns at 20 ms, with the last job

#[kata_harness::test]
async fn stage1_idle_returns_the_instant_the_last_job_ends() {
    let limit = limiter(2, &STAGE1.hint("PCLimit::new(2) is a valid limit"));
    let timeline = Timeline::start();
    let at_once = STAGE1.hint(
        "idle() on a limiter with nothing running or waiting returns at once: check before you \
         wait",
    );
    completes_within("idle() on a new limiter", limit.idle(), ms(0), &at_once).await;
    let (gates, jobs): (Vec<_>, Vec<_>) = (0..2).map(gated).unzip();
    let handles: Vec<_> = jobs.into_iter().map(|job| limit.run(job)).collect();
    let waiter = tokio::spawn(timeline.watch("idle()", idle_of(limit.clone())));
    let start = Instant::now();
    for (at, gate) in [ms(10), ms(20)].into_iter().zip(gates) {
        tokio::time::sleep_until(start + at).await;
        // Any timer of the code under test that was due now has fired: the gate opens after it.
        settle().await;
        gate.open();
    }
    join_all(handles).await;
    let waits = STAGE1.hint("idle() returns once nothing runs or waits");
    joined("idle()", waiter, &waits).await;
    assert_elapsed(
        "when idle() returned",
        timeline.life("idle()").finished.unwrap_or(PATIENCE),
        ms(20),
        &STAGE1.hint(
            "idle() returns the moment the last job ends, not at a later timer tick: have the \
             code that frees the last slot wake the waiters, instead of checking every few \
             milliseconds",
        ),
    );
}

// idle() waits for jobs that are queued but not started, and returns when the last of them is
// removed with nothing running (no slot is freed then: the removal itself must wake it).

#[kata_harness::test]
#[case::by_clear_queue(Removal::ClearQueue)]
#[case::by_abort(Removal::Abort)]
#[case::by_dropping_its_handle(Removal::DropHandle)]
async fn stage1_idle_returns_when_the_last_waiting_job_is_removed(#[case] how: Removal) {
    let limit = limiter(1, &STAGE1.hint("PCLimit::new(1) is a valid limit"));
    // The runtime has not had a turn: the job is queued, not started.
    let handle = limit.run(async { 1 });
    let mut idle = pin!(limit.idle());
    check(
        "idle() polled right after run()",
        futures::poll!(idle.as_mut()).is_pending(),
        "it returned at once",
        "it waits: one job is pending",
        &STAGE1.hint(
            "idle() waits for pending jobs too, not only for running ones: right after run() \
             the job is pending, and the limiter is not idle",
        ),
    );
    let handle = match how {
        Removal::ClearQueue => {
            limit.clear_queue();
            Some(handle)
        }
        Removal::Abort => {
            handle.abort();
            Some(handle)
        }
        Removal::DropHandle => {
            drop(handle);
            None
        }
    };
    check(
        &format!("idle() polled again, after {how} removed the only job"),
        futures::poll!(idle.as_mut()).is_ready(),
        "it still waits",
        "it returns: nothing runs or waits any more",
        &STAGE1.hint(
            "removing the last waiting job can empty the limiter as surely as a job that ends: \
             after clear_queue(), abort() or a dropped handle, wake the idle() waiters if \
             nothing is left",
        ),
    );
    if let Some(handle) = handle {
        check_eq(
            &format!("the handle of the job removed by {how}"),
            outcome(handle, &STAGE1.hint("a removed job's handle resolves")).await,
            Err(RunError::Cancelled),
            &STAGE1.hint("a job removed before it started resolves to Err(RunError::Cancelled)"),
        );
    }
}

#[kata_harness::test]
async fn stage1_idle_never_misses_the_last_job_ending() {
    // A multi-threaded runtime: a job that ends on one thread while another thread checks "is
    // it idle?" and then registers for the wake-up is a race that one thread, taking turns,
    // never runs. See `race_the_last_job` for how the race is set up and judged.
    let what = "idle() called on three threads as the last job ends on a fourth";
    match race_the_last_job(ROUNDS, Duration::from_millis(1500)).await {
        Race::AllWoken { .. } => {}
        Race::Lost { round } => fail(
            &format!("{what}, round {round}"),
            "a wait that began before the job ended was still waiting after it, with nothing \
             left to run",
            "every wait that began before the end to be woken by it",
            &STAGE1.hint(
                "a wake-up was lost between checking the counts and registering for the \
                 wake-up: register first (create the Notify::notified() future before the \
                 check), then check, then await it",
            ),
        ),
        Race::NeverIdle { round } => fail(
            &format!("{what}, round {round}"),
            "no call of idle() returned within 2 s (real time) of the job's end",
            "idle() to return at once once nothing runs or waits",
            &STAGE1.hint(
                "check the counts (nothing active, nothing pending) each time idle() is polled, \
                 and on a multi-threaded runtime too: the job may end on another thread",
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: individual results, failures and cancellation.

#[kata_harness::test]
async fn stage2_each_caller_gets_its_own_result_or_error() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(2, &STAGE2.hint("PCLimit::new(2) is a valid limit"));
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
        &STAGE2.hint(
            "a job's own Err is its output like any other: its handle gives Ok(Err(..)) to that \
             caller only, and the other jobs are unaffected",
        ),
    );
    probe.assert_limit(
        "6 jobs, 2 of them failing, at a limit of 2",
        2,
        &STAGE2.hint("jobs that return Err hold and return their slots like any other job"),
    );
    assert_elapsed(
        "6 jobs of 10 ms at a limit of 2",
        start.elapsed(),
        ms(30),
        &STAGE2.hint("a failed job returns its slot the moment it ends, like any other"),
    );
}

#[kata_harness::test]
#[case::literal(Panic::Literal, Some("job exploded"))]
#[case::formatted(Panic::Formatted, Some("job 2 exploded"))]
#[case::not_text(Panic::NotText, None)]
async fn stage2_a_panicking_job_affects_only_its_caller_and_returns_its_slot(
    #[case] how: Panic,
    #[case] message: Option<&str>,
) {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let limit = limiter(1, &STAGE2.hint("PCLimit::new(1) is a valid limit"));
    let at_once = limit.run(async move { explode(how) });
    let after_an_await = limit.run(async move {
        tokio::time::sleep(ms(5)).await;
        explode(how)
    });
    let healthy = limit.run(timed(&probe, ms(10), 3));
    let resolves = STAGE2.hint("the handle of a job that panicked resolves, with an error");
    for (when, handle) in [("at once", at_once), ("after an await", after_an_await)] {
        let result = outcome(handle, &resolves).await;
        let what = format!("the handle of a job that panicked {when} ({how:?} payload)");
        match message {
            Some(message) => check_eq(
                &what,
                result,
                Err(RunError::Panicked {
                    message: message.to_owned(),
                }),
                &STAGE2.hint(match how {
                    Panic::Formatted => {
                        "panic!(\"job {} exploded\", n) gives a String payload, not a &str: try \
                         downcast_ref::<String>() as well as downcast_ref::<&str>() on the \
                         JoinError's into_panic()"
                    }
                    Panic::Literal | Panic::NotText => {
                        "a panic inside a spawned task does not unwind into your code: awaiting \
                         the task's JoinHandle gives a JoinError, and try_into_panic() gives the \
                         payload; panic!(\"literal\") gives a &'static str"
                    }
                }),
            ),
            None => check(
                &what,
                matches!(result, Err(RunError::Panicked { .. })),
                format_args!("{result:?}"),
                "Err(RunError::Panicked { .. }), with any message",
                &STAGE2.hint(
                    "a panic payload need not be text (panic_any(42)): still a \
                     RunError::Panicked, with a message of your choice; never unwrap the \
                     downcast",
                ),
            ),
        }
    }
    check_eq(
        "the job after them, at a limit of 1",
        outcome(healthy, &STAGE2.hint("the next job starts and ends")).await,
        Ok(3),
        &STAGE2.hint(
            "a panicking job must still give back its slot, or the next job never starts: a \
             guard whose Drop returns the slot does it, since unwinding runs Drop",
        ),
    );
    assert_elapsed(
        "the job after two panics (one at 0 ms, one at 5 ms)",
        start.elapsed(),
        ms(15),
        &STAGE2.hint("a panicking job gives its slot back the moment it panics"),
    );
    check_counts(
        "at the end",
        &limit,
        (0, 0),
        &STAGE2.hint("a panicking job leaves the active count as it found it"),
    );
}

#[kata_harness::test]
async fn stage2_cancelling_a_waiting_job_removes_it_from_the_queue() {
    let timeline = Timeline::start();
    let limit = limiter(1, &STAGE2.hint("PCLimit::new(1) is a valid limit"));
    let running = limit.run(watched(&timeline, 0, ms(100)));
    let (dropped_probe, token) = DropProbe::new();
    let dropped = limit.run(carrying(token, watched(&timeline, 1, ms(10))));
    let aborted = limit.run(watched(&timeline, 2, ms(10)));
    let kept = limit.run(watched(&timeline, 3, ms(10)));
    settle().await;
    check_counts(
        "with 1 running and 3 waiting",
        &limit,
        (1, 3),
        &STAGE2.hint("a limit of 1 runs one job; the three others wait"),
    );

    let cancelled_at = Instant::now();
    drop(dropped);
    aborted.abort();
    settle().await;
    check_counts(
        "after dropping one waiting handle and aborting another",
        &limit,
        (1, 1),
        &STAGE2.hint(
            "a cancelled waiting job leaves the queue at once: dropping its handle or calling \
             abort() takes it out of pending_count (give each call a key to find it by)",
        ),
    );
    dropped_probe.assert_dropped(
        "the job whose handle was dropped while it waited",
        &STAGE2.hint(
            "dropping a handle cancels its job: the job is dropped, not kept in a task that \
             waits on (Drop for RunHandle does what abort() does)",
        ),
    );
    check_eq(
        "the aborted handle",
        outcome(aborted, &STAGE2.hint("an aborted handle resolves at once")).await,
        Err(RunError::Cancelled),
        &STAGE2.hint("awaiting an aborted handle gives Err(RunError::Cancelled)"),
    );
    assert_elapsed(
        "when the aborted waiting handle resolved, after abort()",
        cancelled_at.elapsed(),
        ms(0),
        &STAGE2.hint(
            "an aborted waiting job resolves at once, not when a slot next frees up (100 ms \
             later): remove it from the queue in abort() and abort its task there",
        ),
    );
    let rest = STAGE2.hint("the running job and the one kept waiting both run");
    outcome(running, &rest).await.ok();
    outcome(kept, &rest).await.ok();
    check_seq(
        "jobs that started",
        &started(&timeline),
        &["job 0".to_owned(), "job 3".to_owned()],
        &STAGE2.hint("cancelled jobs never start; the next waiting job takes the free slot"),
    );
    assert_schedule(
        "start times",
        &start_times(&timeline),
        &[ms(0), ms(100)],
        &STAGE2.hint("job 3 starts when job 0 ends, at 100 ms"),
    );
}

// PCLimit::new(1): job 0 (10 s) is cancelled at 100 ms, and job 1 takes its slot then.
//
//             0 ms                100 ms    110 ms
//   job 0     |===================x cancelled
//   job 1                         |=========|

#[kata_harness::test]
#[case::by_abort(true)]
#[case::by_dropping_its_handle(false)]
async fn stage2_a_cancelled_running_job_frees_its_slot(#[case] abort: bool) {
    let timeline = Timeline::start();
    let limit = limiter(1, &STAGE2.hint("PCLimit::new(1) is a valid limit"));
    let (running_probe, token) = DropProbe::new();
    let running = limit.run(carrying(
        token,
        watched(&timeline, 0, Duration::from_secs(10)),
    ));
    let next = limit.run(watched(&timeline, 1, ms(10)));
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
        &STAGE2.hint(
            "cancelling a running job aborts its task (JoinHandle::abort), which drops the job \
             at its next .await",
        ),
    );
    check_counts(
        &format!("after cancelling the running job by {how}"),
        &limit,
        (1, 0),
        &STAGE2.hint(
            "the cancelled job's slot goes to the next waiting job at once: a slot held by a \
             guard inside the job's task is given back when the aborted task is dropped",
        ),
    );
    if let Some(running) = running {
        check_eq(
            "the aborted running job's handle",
            outcome(running, &STAGE2.hint("an aborted handle resolves at once")).await,
            Err(RunError::Cancelled),
            &STAGE2.hint("an aborted task's JoinError is a cancellation: Err(RunError::Cancelled)"),
        );
    }
    outcome(next, &STAGE2.hint("the next job runs")).await.ok();
    assert_schedule(
        "start times",
        &start_times(&timeline),
        &[ms(0), ms(100)],
        &STAGE2.hint("the next job starts when the running one is cancelled, not 10 s later"),
    );
    check_counts(
        "once the next job has ended",
        &limit,
        (0, 0),
        &STAGE2.hint("a cancelled job gives back its slot once, and is counted nowhere after"),
    );
}

// A job cancelled after it was given a slot but before its task ran: the slot must come back.
//
//   PCLimit::new(1): job 0 running, job 1 waiting
//   set_concurrency(2)       job 1 gets the second slot (its task has not run yet)
//   abort() or drop job 1    its slot comes back: a new job can use it

#[kata_harness::test]
#[case::by_abort(true)]
#[case::by_dropping_its_handle(false)]
async fn stage2_a_job_cancelled_before_its_task_ran_gives_its_slot_back(#[case] abort: bool) {
    let limit = limiter(1, &STAGE2.hint("PCLimit::new(1) is a valid limit"));
    let (gate, job) = gated(0);
    let first = limit.run(job);
    let (second_probe, token) = DropProbe::new();
    let second = limit.run(carrying(token, async { 1 }));
    settle().await;
    check_eq(
        "set_concurrency(2)",
        limit.set_concurrency(2),
        Ok(()),
        &STAGE2.hint("2 is a valid limit"),
    );
    // No await since set_concurrency: the second job may hold a slot, but its task has not run.
    let how = if abort {
        "abort()"
    } else {
        "dropping its handle"
    };
    if abort {
        second.abort();
        check_eq(
            "the handle of the job aborted right after set_concurrency(2)",
            outcome(second, &STAGE2.hint("an aborted handle resolves at once")).await,
            Err(RunError::Cancelled),
            &STAGE2.hint("abort() before the job ran: Err(RunError::Cancelled)"),
        );
    } else {
        drop(second);
    }
    settle().await;
    second_probe.assert_dropped(
        &format!("the job cancelled by {how} before its task ran"),
        &STAGE2.hint("a cancelled job is dropped, whether or not it had a slot yet"),
    );
    let (third_gate, third_job) = gated(3);
    let third = limit.run(third_job);
    settle().await;
    check_counts(
        &format!("job 0 running and a new job, after job 1 was cancelled by {how}"),
        &limit,
        (2, 0),
        &STAGE2.hint(
            "a slot handed to a job whose task never got to run is lost unless something \
             returns it: send the slot itself (a guard) with the \"you may start\" message, so \
             that dropping the message returns it",
        ),
    );
    gate.open();
    third_gate.open();
    let both = STAGE2.hint("both jobs run and end");
    check_eq(
        "the first job",
        outcome(first, &both).await,
        Ok(0),
        &STAGE2.hint("cancelling one job touches no other"),
    );
    check_eq(
        "the new job",
        outcome(third, &both).await,
        Ok(3),
        &STAGE2.hint("a new job runs in the freed slot"),
    );
    check_counts(
        "at the end",
        &limit,
        (0, 0),
        &STAGE2.hint("every slot comes back, and no count is left behind"),
    );
}

// The source exercise: `async_work` sleeps a random 0.5-1.5 s and returns the delay. Here the
// delays are fixed, so every finish time is known. PCLimit::new(3):
//
//   job:     0     1     2     3     4     5     6     7
//   delay:   1200  500   900   1500  700   1100  600   1300
//   starts:  0     0     0     500   900   1200  1600  2000
//   ends:    1200  500   900   2000  1600  2300  2200  3300

#[kata_harness::test]
async fn stage2_individual_results_with_deterministic_delays() {
    async fn async_work(delay: Duration) -> Duration {
        tokio::time::sleep(delay).await;
        delay
    }
    let delays = [1200, 500, 900, 1500, 700, 1100, 600, 1300].map(ms);
    let timeline = Timeline::start();
    let limit = limiter(3, &STAGE2.hint("PCLimit::new(3) is a valid limit"));
    let handles = delays.iter().enumerate().map(|(index, &delay)| {
        limit.run(timeline.watch(format!("job {index}"), async_work(delay)))
    });
    let all = STAGE2.hint("every job runs and ends");
    let results = completes_within("join_all", join_all(handles), PATIENCE, &all).await;
    check_eq(
        "each caller's result",
        results,
        delays.map(Ok).to_vec(),
        &STAGE2.hint("each handle gives back its own job's delay, in input order"),
    );
    let finished: Vec<_> = timeline
        .events()
        .into_iter()
        .filter(|(_, label)| label.ends_with(" finished"))
        .collect();
    check_seq(
        "the order jobs finished in",
        &finished
            .iter()
            .map(|(_, label)| label.as_str())
            .collect::<Vec<_>>(),
        &[1, 2, 0, 4, 3, 6, 5, 7]
            .map(|i| format!("job {i} finished"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &STAGE2.hint("with 3 slots, each job starts when one of the three before it ends"),
    );
    assert_schedule(
        "finish times",
        &finished.iter().map(|&(at, _)| at).collect::<Vec<_>>(),
        &[500, 900, 1200, 1600, 2000, 2200, 2300, 3300].map(ms),
        &STAGE2.hint("each waiting job starts the moment a slot frees up, in call order"),
    );
}
