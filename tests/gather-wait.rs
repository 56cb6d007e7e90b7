//! The gather-wait kata's suite, run against both `exercises/gather-wait` and
//! `solutions/gather-wait`: the kata's precise specification.
//!
//! Every job here sleeps for its length from its first poll, then returns `Ok(its index)`,
//! returns `Err(its index)` or panics. A timeline marks the instant each job started, finished
//! or was dropped (dropped is cancelled, in Rust), and a probe counts the jobs in flight; on the
//! paused clock every one of those instants is exact. Stage by stage the tests reject the usual
//! wrong answers: jobs awaited one after the other, results in the order they finished, a gather
//! that starts work before it is awaited or spawns tasks, a failure reported late or leaving the
//! other jobs running (the asyncio way); a task group that starts its tasks only in `join`, sees
//! a failure only when the tasks before it are done, aborts without waiting, loses a panic's
//! message or takes an abort for a panic, or lets its tasks outlive it; an `as_completed` in input
//! order or that cannot be cancelled; a `wait` that cancels what it leaves pending, ignores or
//! waits out its timeout, checks on a timer, misreads `ReturnWhen` (a panic not counted as an
//! exception, an abort counted as one), or accepts nothing to wait for.

kata_harness::install_allocator!();

#[path = "gather-wait/support.rs"]
mod support;

use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use gather_wait::{
    GroupError, ReturnWhen, TaskGroup, WaitError, as_completed, gather, gather_settled, wait,
};
use kata_harness::completion::{alive_tasks, completes_within, count_polls};
use kata_harness::heap::{self, assert_live_back};
use kata_harness::leaks::TaskBaseline;
use kata_harness::report::{check, check_eq, check_seq, fail};
use kata_harness::timing::assert_elapsed;
use kata_harness::{Stage, ms};
use support::{
    Ends, Jobs, Outcome, PATIENCE, STR_MESSAGE, Spec, check_life, cut, done_of, err,
    finish_pending, ok, panics, pending_of, plain, ran, string_message, waited_or_fail,
};
use tokio::time::{Instant, sleep};

const STAGE1: Stage = Stage::new("gather-wait", 1);
const STAGE2: Stage = Stage::new("gather-wait", 2);
const STAGE3: Stage = Stage::new("gather-wait", 3);

// ---------------------------------------------------------------------------------------------
// Stage 1: gather and gather_settled, in the caller's task.
//
//   gather([300 ms, 100 ms, 200 ms]), all Ok:
//
//              0 ms      100 ms    200 ms    300 ms
//     job 0:   |=============================| Ok(0)
//     job 1:   |=========| Ok(1)
//     job 2:   |===================| Ok(2)
//     gather:                                  Ok([0, 1, 2]): input order, at the longest job

#[kata_harness::test]
async fn stage1_gather_runs_the_jobs_at_once_and_keeps_input_order() {
    let jobs = Jobs::new();
    let all = gather(jobs.make(&[ok(300), ok(100), ok(200)]));
    let hint = STAGE1.hint("gather must finish once its last job has");
    let result = completes_within("gather(..)", all, PATIENCE, &hint).await;
    check_eq(
        "gather of jobs of [300, 100, 200] ms",
        result,
        Ok(vec![0, 1, 2]),
        &STAGE1.hint(
            "values in input order, not in the order the jobs finished: remember each job's \
             index and put its value back in its place",
        ),
    );
    assert_elapsed(
        "gather returned",
        jobs.now(),
        ms(300),
        &STAGE1.hint(
            "all three run at once, so gather takes as long as the longest job (300 ms), not \
             the sum (600 ms): awaiting the jobs one after the other runs them one at a time",
        ),
    );
    jobs.probe().assert_limit(
        "jobs in flight during gather",
        3,
        &STAGE1.hint(
            "poll every job from the start (a FuturesUnordered, or join_all), rather than \
             `.await`ing them in a loop",
        ),
    );
    let hint = STAGE1.hint("each job starts at 0 ms and finishes after its own length");
    for (index, finished) in [300, 100, 200].into_iter().enumerate() {
        check_life(&jobs, index, ran(0, finished), &hint);
    }
}

//   let all = gather(jobs);     sleep(1000 ms);     all.await
//   0 ms: nothing starts  .......................  1000 ms: all start   1300 ms: Ok([0, 1, 2])

#[kata_harness::test]
async fn stage1_gather_is_lazy_nothing_starts_before_it_is_awaited() {
    let jobs = Jobs::new();
    let all = gather(jobs.make(&[ok(300), ok(100), ok(200)]));
    sleep(ms(1000)).await;
    let hint = STAGE1.hint("gather must finish once its last job has");
    let result = completes_within("gather(..)", all, PATIENCE, &hint).await;
    check_eq(
        "gather awaited 1000 ms after it was made",
        result,
        Ok(vec![0, 1, 2]),
        &STAGE1.hint("the same values as when it is awaited at once"),
    );
    let hint = STAGE1.hint(
        "a future does nothing until it is polled: the jobs start when gather is first \
         awaited (1000 ms), not when gather(..) is called. Make gather an `async fn` (or return \
         a future that starts the jobs when polled), and never spawn them",
    );
    for (index, length) in [300, 100, 200].into_iter().enumerate() {
        check_life(&jobs, index, ran(1000, 1000 + length), &hint);
    }
    assert_elapsed("gather returned", jobs.now(), ms(1300), &hint);
}

#[kata_harness::test]
async fn stage1_gather_runs_the_jobs_in_the_callers_task_and_spawns_none() {
    let jobs = Jobs::new();
    let baseline = alive_tasks();
    let watch_tasks = async {
        sleep(ms(50)).await;
        alive_tasks()
    };
    let (result, alive) = tokio::join!(gather(jobs.make(&[ok(300), ok(100)])), watch_tasks);
    check_eq(
        "live tokio tasks 50 ms into a gather of two jobs",
        alive,
        baseline,
        &STAGE1.hint(
            "gather polls the jobs itself, in the task that awaits it: a task per job \
             (tokio::spawn) is not needed, costs a task each, and is not cancelled when gather \
             is dropped",
        ),
    );
    check_eq(
        "gather of jobs of [300, 100] ms",
        result,
        Ok(vec![0, 1]),
        &STAGE1.hint("values in input order"),
    );
}

//   gather([Err after 300 ms, Err after 100 ms, Ok after 200 ms]):
//
//              0 ms      100 ms    200 ms    300 ms
//     job 0:   |=========x dropped (it would have failed at 300 ms)
//     job 1:   |=========| Err(1): the first failure in time
//     job 2:   |=========x dropped
//     gather:            Err(1), at 100 ms, once the other jobs are gone

#[kata_harness::test]
async fn stage1_gather_returns_the_first_failure_at_once_and_drops_the_other_jobs() {
    let jobs = Jobs::new();
    let all = gather(jobs.make(&[err(300), err(100), ok(200)]));
    let hint = STAGE1.hint("gather must return at the first failure");
    let result = completes_within("gather(..)", all, PATIENCE, &hint).await;
    jobs.mark("gather returned");
    check_eq(
        "gather of [Err after 300 ms, Err after 100 ms, Ok after 200 ms]",
        result,
        Err(1),
        &STAGE1.hint(
            "the first job to fail *in time* is job 1, at 100 ms; job 0 fails later. Stop at \
             the first Err you see as the jobs finish, not at the first in input order",
        ),
    );
    assert_elapsed(
        "gather returned",
        jobs.now(),
        ms(100),
        &STAGE1.hint(
            "return the error the moment it happens (100 ms): do not wait for the other jobs, \
             and do not await the jobs in input order",
        ),
    );
    for index in [0, 2] {
        check(
            &format!("job {index} gone when gather returned"),
            jobs.dropped_before(index, "gather returned"),
            jobs.life(index),
            "dropped, at 100 ms, before gather returned",
            &STAGE1.hint(
                "returning from gather must drop the jobs still running: in Rust dropping a \
                 future cancels it. Keep them in a value that gather owns (a FuturesUnordered) \
                 so that returning drops them",
            ),
        );
    }
    // Long enough for every job to have finished, had it been left running.
    sleep(ms(400)).await;
    let hint = STAGE1.hint(
        "asyncio's gather leaves the other jobs running after a failure; in Rust they are \
         dropped at that instant and never finish",
    );
    check_life(&jobs, 0, cut(0, 100), &hint);
    check_life(&jobs, 1, ran(0, 100), &STAGE1.hint("job 1 fails at 100 ms"));
    check_life(&jobs, 2, cut(0, 100), &hint);
}

//   gather_settled([Ok after 300 ms, Err after 100 ms, Ok after 200 ms]):
//
//              0 ms      100 ms    200 ms    300 ms
//     job 0:   |=============================| Ok(0)
//     job 1:   |=========| Err(1): noted, nothing stops
//     job 2:   |===================| Ok(2)
//     settled:                                 [Ok(0), Err(1), Ok(2)]

#[kata_harness::test]
async fn stage1_gather_settled_waits_for_every_job_and_keeps_failures_in_place() {
    let jobs = Jobs::new();
    let all = gather_settled(jobs.make(&[ok(300), err(100), ok(200)]));
    let hint = STAGE1.hint("gather_settled must finish once its last job has");
    let outcomes = completes_within("gather_settled(..)", all, PATIENCE, &hint).await;
    check_seq(
        "gather_settled of [Ok after 300 ms, Err after 100 ms, Ok after 200 ms]",
        &outcomes,
        &[Ok(0), Err(1), Ok(2)],
        &STAGE1.hint(
            "every outcome, errors included, each in its job's place in the input: a failure \
             stops nothing here",
        ),
    );
    assert_elapsed(
        "gather_settled returned",
        jobs.now(),
        ms(300),
        &STAGE1.hint("all at once, so as long as the longest job: 300 ms"),
    );
    jobs.probe().assert_limit(
        "jobs in flight during gather_settled",
        3,
        &STAGE1.hint("poll every job from the start, as gather does"),
    );
    let hint = STAGE1.hint("no job is dropped: each runs to its end");
    for (index, finished) in [300, 100, 200].into_iter().enumerate() {
        check_life(&jobs, index, ran(0, finished), &hint);
    }
}

#[kata_harness::test]
async fn stage1_nothing_to_gather_is_nothing_at_once() {
    let start = Instant::now();
    let hint = STAGE1.hint(
        "with no jobs there is nothing to wait for: return an empty Vec at once (no error: \
         asyncio's gather() of nothing is [] too)",
    );
    let none: Vec<std::future::Ready<Outcome>> = Vec::new();
    let result = completes_within("gather of no jobs", gather(none), PATIENCE, &hint).await;
    check_eq("gather of no jobs", result, Ok(vec![]), &hint);
    let none: Vec<std::future::Ready<Outcome>> = Vec::new();
    let all = gather_settled(none);
    let outcomes = completes_within("gather_settled of no jobs", all, PATIENCE, &hint).await;
    check_eq("gather_settled of no jobs", outcomes, vec![], &hint);
    assert_elapsed("both returned", start.elapsed(), Duration::ZERO, &hint);
}

#[kata_harness::test]
async fn stage1_ten_thousand_jobs_leave_nothing_behind() {
    const JOBS: usize = 10_000;
    const FAILING: usize = 5_000;
    let hint = STAGE1.hint("gather must finish once its last job has");
    let (_, all_ok) = heap::measure_async(async {
        let all = gather((0..JOBS).map(|index| plain(index, ok(1 + index as u64 % 97))));
        let result = completes_within("gather of 10,000 jobs", all, PATIENCE, &hint).await;
        check(
            "gather of 10,000 jobs",
            result.as_deref() == Ok(&(0..JOBS).collect::<Vec<_>>()[..]),
            "another result",
            "Ok([0, 1, ..., 9999])",
            &STAGE1.hint("values in input order"),
        );
    })
    .await;
    assert_live_back(
        "the heap after a gather of 10,000 jobs (the result dropped)",
        all_ok,
        16 << 10,
        &STAGE1.hint("gather must keep nothing once it returns: no leaked or forgotten job"),
    );

    let start = Instant::now();
    let (_, failed) = heap::measure_async(async {
        let all = gather((0..JOBS).map(|index| {
            let spec = if index == FAILING { err(10) } else { ok(1000) };
            plain(index, spec)
        }));
        let result = completes_within("gather of 10,000 jobs", all, PATIENCE, &hint).await;
        check_eq(
            "gather of 10,000 jobs whose job 5000 fails at 10 ms",
            result,
            Err(FAILING),
            &STAGE1.hint("the first failure, as soon as it happens"),
        );
    })
    .await;
    assert_elapsed(
        "gather returned",
        start.elapsed(),
        ms(10),
        &STAGE1.hint("return the error the moment it happens"),
    );
    assert_live_back(
        "the heap right after a gather of 10,000 jobs failed at 10 ms",
        failed,
        16 << 10,
        &STAGE1.hint(
            "the 9,999 jobs still sleeping must be freed when gather returns: dropped, not \
             left running in tasks of their own and not forgotten (std::mem::forget)",
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: a TaskGroup.
//
//   spawn jobs of [300 ms, 100 ms, 200 ms] at 0 ms; join() first awaited at 150 ms:
//
//              0 ms      100 ms  150 ms  200 ms    300 ms
//     job 0:   |=============================| Ok(0)
//     job 1:   |=========| Ok(1)
//     job 2:   |===================| Ok(2)
//     test:    spawn x 3 ....... join() ................ Ok([0, 1, 2]) at 300 ms

#[kata_harness::test]
async fn stage2_tasks_start_when_spawned_not_when_joined() {
    let jobs = Jobs::new();
    let mut group = TaskGroup::new();
    for (index, job) in jobs
        .make(&[ok(300), ok(100), ok(200)])
        .into_iter()
        .enumerate()
    {
        group.spawn(format!("job {index}"), job);
    }
    sleep(ms(150)).await;
    let hint = STAGE2.hint("join must return once every task has finished");
    let result = completes_within("join()", group.join(), PATIENCE, &hint).await;
    check_eq(
        "join() of tasks of [300, 100, 200] ms",
        result,
        Ok(vec![0, 1, 2]),
        &STAGE2.hint("values in spawn order, whatever order the tasks finished in"),
    );
    assert_elapsed(
        "join() returned",
        jobs.now(),
        ms(300),
        &STAGE2.hint("the longest task ends at 300 ms; join returns then"),
    );
    let hint = STAGE2.hint(
        "a spawned task runs by itself, whether or not anyone awaits it: spawn each job \
         (JoinSet::spawn) in `spawn`, not in `join`, so they all start at 0 ms",
    );
    for (index, finished) in [300, 100, 200].into_iter().enumerate() {
        check_life(&jobs, index, ran(0, finished), &hint);
    }
}

//   tasks of [Ok after 300 ms, Err after 100 ms, Ok after 200 ms], join() awaited at 0 ms:
//
//              0 ms      100 ms    200 ms    300 ms
//     job 0:   |=========x aborted, and gone before join returns
//     job 1:   |=========| Err(1)
//     job 2:   |=========x aborted, and gone before join returns
//     join:              Err(Failed { task: "job 1", error: 1 }), live tasks back as before

#[kata_harness::test]
async fn stage2_the_first_failure_aborts_the_others_and_join_waits_until_they_are_gone() {
    let jobs = Jobs::new();
    let baseline = TaskBaseline::capture().alive();
    let mut group = TaskGroup::new();
    for (index, job) in jobs
        .make(&[ok(300), err(100), ok(200)])
        .into_iter()
        .enumerate()
    {
        group.spawn(format!("job {index}"), job);
    }
    let hint = STAGE2.hint("join must return at the first failure");
    let result = completes_within("join()", group.join(), PATIENCE, &hint).await;
    let alive = alive_tasks();
    jobs.mark("join returned");
    let failed = GroupError::Failed {
        task: "job 1".to_owned(),
        error: 1,
    };
    check_eq(
        "join() of [Ok after 300 ms, Err after 100 ms, Ok after 200 ms]",
        result.clone(),
        Err(failed),
        &STAGE2.hint(
            "the first failure, with the name its task was spawned with: keep each task's name \
             by its task id (JoinSet::join_next_with_id)",
        ),
    );
    assert_elapsed(
        "join() returned",
        jobs.now(),
        ms(100),
        &STAGE2.hint(
            "take results in the order tasks finish (JoinSet::join_next), not in spawn order: \
             awaiting job 0 first sees job 1's failure only at 300 ms",
        ),
    );
    let message = result.map_or_else(|error| error.to_string(), |_| String::new());
    check(
        "the error's message",
        message.contains("job 1"),
        format_args!("{message:?}"),
        "a message that names the task, \"job 1\"",
        &STAGE2.hint("keep the #[error(...)] text of GroupError, which prints the task's name"),
    );
    check_eq(
        "live tokio tasks the moment join() returned",
        alive,
        baseline,
        &STAGE2.hint(
            "abort the other tasks (JoinSet::abort_all), then *wait* until they are gone: an \
             aborted task only stops at its next poll, so drain the set (join_next until None) \
             before returning. Abort without waiting and they still run when join returns",
        ),
    );
    let hint = STAGE2.hint(
        "on the first failure the other tasks are aborted at that instant, and gone before join \
         returns: none of them finishes",
    );
    for index in [0, 2] {
        check(
            &format!("job {index} gone when join returned"),
            jobs.dropped_before(index, "join returned"),
            jobs.life(index),
            "dropped, at 100 ms, before join returned",
            &hint,
        );
    }
    sleep(ms(400)).await;
    check_life(&jobs, 0, cut(0, 100), &hint);
    check_life(&jobs, 1, ran(0, 100), &STAGE2.hint("job 1 fails at 100 ms"));
    check_life(&jobs, 2, cut(0, 100), &hint);
}

#[kata_harness::test]
#[case::panic_with_a_str(Ends::PanicsWithStr, STR_MESSAGE.to_owned())]
#[case::panic_with_a_string(Ends::PanicsWithString, string_message(1))]
async fn stage2_a_panic_comes_back_with_its_message(#[case] ends: Ends, #[case] message: String) {
    let jobs = Jobs::new();
    let mut group = TaskGroup::new();
    for (index, job) in jobs
        .make(&[ok(300), panics(100, ends), ok(200)])
        .into_iter()
        .enumerate()
    {
        group.spawn(format!("job {index}"), job);
    }
    let hint = STAGE2.hint("a panic is a failure: join must return at once");
    let result = completes_within("join()", group.join(), PATIENCE, &hint).await;
    check_eq(
        "join() of [Ok after 300 ms, a panic after 100 ms, Ok after 200 ms]",
        result,
        Err(GroupError::Panicked {
            task: "job 1".to_owned(),
            message,
        }),
        &STAGE2.hint(
            "tokio catches a task's panic: JoinError::is_panic() says so, and into_panic() \
             hands over the payload. `panic!(\"literal\")` carries a &'static str, a formatted \
             panic a String: downcast to both",
        ),
    );
    assert_elapsed(
        "join() returned",
        jobs.now(),
        ms(100),
        &STAGE2.hint("the panic is the first failure, at 100 ms"),
    );
    sleep(ms(400)).await;
    let hint = STAGE2.hint("a panic aborts the other tasks as an Err does");
    check_life(&jobs, 0, cut(0, 100), &hint);
    check_life(&jobs, 2, cut(0, 100), &hint);
}

//   tasks of [300, 100, 200] ms, all Ok; job 1 aborted through its handle at 50 ms:
//
//              0 ms   50 ms
//     job 1:   |======x aborted: JoinError, is_cancelled(), not a panic
//     jobs 0, 2 ======x aborted by the group
//     join:           Err(Cancelled { task: "job 1" })

#[kata_harness::test]
async fn stage2_a_task_aborted_through_its_handle_is_cancelled_not_panicked() {
    let jobs = Jobs::new();
    let mut group = TaskGroup::new();
    let handles: Vec<_> = jobs
        .make(&[ok(300), ok(100), ok(200)])
        .into_iter()
        .enumerate()
        .map(|(index, job)| group.spawn(format!("job {index}"), job))
        .collect();
    let abort_job_1 = async {
        sleep(ms(50)).await;
        handles[1].abort();
    };
    let hint = STAGE2.hint("an aborted task is a missing result: join must return at once");
    let (result, ()) = tokio::join!(
        completes_within("join()", group.join(), PATIENCE, &hint),
        abort_job_1
    );
    check_eq(
        "join() when job 1 was aborted at 50 ms",
        result,
        Err(GroupError::Cancelled {
            task: "job 1".to_owned(),
        }),
        &STAGE2.hint(
            "a JoinError is a panic or a cancellation: ask is_panic() / is_cancelled() before \
             anything else (into_panic() on a cancelled task panics)",
        ),
    );
    assert_elapsed(
        "join() returned",
        jobs.now(),
        ms(50),
        &STAGE2.hint("the abort is the first failure, at 50 ms"),
    );
    sleep(ms(400)).await;
    let hint = STAGE2.hint("one task's abort fails the group: the others are aborted then");
    for index in 0..3 {
        check_life(&jobs, index, cut(0, 50), &hint);
    }
}

//   tasks of [300, 100, 200] ms; at 150 ms the group (or the join() in progress) is dropped:
//
//              0 ms      100 ms  150 ms
//     job 1:   |=========| Ok(1)
//     job 0:   |=================x aborted
//     job 2:   |=================x aborted

#[kata_harness::test]
#[case::the_group(false)]
#[case::its_join_half_way(true)]
async fn stage2_dropping_the_group_aborts_every_task_at_once(#[case] while_joining: bool) {
    let jobs = Jobs::new();
    let baseline = TaskBaseline::capture();
    let mut group = TaskGroup::new();
    for (index, job) in jobs
        .make(&[ok(300), ok(100), ok(200)])
        .into_iter()
        .enumerate()
    {
        group.spawn(format!("job {index}"), job);
    }
    if while_joining {
        // join() for 150 ms, then give up on it: the join future is dropped half way.
        let joined = tokio::time::timeout(ms(150), group.join()).await;
        check(
            "join() given up after 150 ms",
            joined.is_err(),
            "it returned",
            "still waiting for jobs 0 and 2",
            &STAGE2.hint("join waits for every task: jobs 0 and 2 run until 300 and 200 ms"),
        );
    } else {
        sleep(ms(150)).await;
        // In the stub `TaskGroup` has no `Drop` of its own yet, which is all this lint says.
        #[allow(clippy::drop_non_drop)]
        drop(group);
    }
    let hint = STAGE2.hint(
        "no task may outlive its group: when the group is dropped (and join owns the group, so \
         dropping join drops it), every task still running is aborted. A JoinSet does that \
         when it is dropped; a Vec of JoinHandles does not (a dropped JoinHandle detaches)",
    );
    baseline
        .assert_back("the group's tasks", Duration::ZERO, &hint)
        .await;
    sleep(ms(400)).await;
    check_life(&jobs, 0, cut(0, 150), &hint);
    check_life(&jobs, 1, ran(0, 100), &STAGE2.hint("job 1 ends at 100 ms"));
    check_life(&jobs, 2, cut(0, 150), &hint);
}

#[kata_harness::test]
async fn stage2_an_empty_group_joins_at_once() {
    let start = Instant::now();
    let hint = STAGE2.hint("with no task, join has nothing to wait for: Ok(vec![]) at once");
    let group: TaskGroup<usize, usize> = TaskGroup::new();
    let result = completes_within("join() of no tasks", group.join(), PATIENCE, &hint).await;
    check_eq("join() of no tasks", result, Ok(vec![]), &hint);
    assert_elapsed("join() returned", start.elapsed(), Duration::ZERO, &hint);
}

// ---------------------------------------------------------------------------------------------
// Stage 3: as_completed and wait.
//
//   as_completed([500 ms, 400 ms, 300 ms]):
//
//              0 ms                 300 ms    400 ms    500 ms
//     yields:                       (2, Ok(2)) (1, Ok(1)) (0, Ok(0)), then the end

#[kata_harness::test]
async fn stage3_as_completed_yields_each_job_as_it_finishes() {
    let jobs = Jobs::new();
    let mut finishing = pin!(as_completed(jobs.make(&[ok(500), ok(400), ok(300)])));
    let mut seen = Vec::new();
    let hint = STAGE3.hint("the stream must end once every job has finished");
    while let Some(item) =
        completes_within("the next item", finishing.next(), PATIENCE, &hint).await
    {
        seen.push((jobs.now(), item));
    }
    check_seq(
        "(when, item) of as_completed over jobs of [500, 400, 300] ms",
        &seen,
        &[
            (ms(300), (2, Ok(2))),
            (ms(400), (1, Ok(1))),
            (ms(500), (0, Ok(0))),
        ],
        &STAGE3.hint(
            "one item per job, (its input index, its output), the moment it finishes: \
             completion order, not input order (a FuturesUnordered, not a FuturesOrdered)",
        ),
    );
    assert_elapsed(
        "the stream ended",
        jobs.now(),
        ms(500),
        &STAGE3.hint("the stream ends (None) right after its last item"),
    );
    jobs.probe().assert_limit(
        "jobs in flight",
        3,
        &STAGE3.hint("all the jobs run at once, polled by the stream"),
    );
}

#[kata_harness::test]
async fn stage3_as_completed_is_lazy() {
    let jobs = Jobs::new();
    let finishing = as_completed(jobs.make(&[ok(500), ok(400), ok(300)]));
    sleep(ms(100)).await;
    let hint = STAGE3.hint("the stream must end once every job has finished");
    let items: Vec<_> = completes_within("collect()", finishing.collect(), PATIENCE, &hint).await;
    check_eq(
        "as_completed polled from 100 ms on",
        items,
        vec![(2, Ok(2)), (1, Ok(1)), (0, Ok(0))],
        &STAGE3.hint("completion order"),
    );
    let hint = STAGE3.hint(
        "a stream is lazy like a future: the jobs start at its first poll (100 ms), not when \
         as_completed(..) is called. Do not spawn them",
    );
    for (index, length) in [500, 400, 300].into_iter().enumerate() {
        check_life(&jobs, index, ran(100, 100 + length), &hint);
    }
}

//   as_completed([500 ms, 400 ms, 300 ms]): take the first item, then drop the stream:
//
//              0 ms                 300 ms
//     job 2:   |====================| (2, Ok(2)) taken
//     jobs 0, 1 ====================x dropped with the stream

#[kata_harness::test]
async fn stage3_dropping_as_completed_drops_the_jobs_still_running() {
    let jobs = Jobs::new();
    let mut finishing = Box::pin(as_completed(jobs.make(&[ok(500), ok(400), ok(300)])));
    let hint = STAGE3.hint("the first job finishes at 300 ms");
    let first = completes_within("the first item", finishing.next(), PATIENCE, &hint).await;
    check_eq("the first item", first, Some((2, Ok(2))), &hint);
    drop(finishing);
    sleep(ms(400)).await;
    let hint = STAGE3.hint(
        "dropping the stream must drop the jobs it still holds: keep them inside the stream \
         (a FuturesUnordered does), not in tasks that outlive it",
    );
    check_life(&jobs, 0, cut(0, 300), &hint);
    check_life(&jobs, 1, cut(0, 300), &hint);
    check_life(
        &jobs,
        2,
        ran(0, 300),
        &STAGE3.hint("job 2 finishes at 300 ms"),
    );
}

#[kata_harness::test]
async fn stage3_as_completed_of_nothing_ends_at_once() {
    let start = Instant::now();
    let none: Vec<std::future::Ready<Outcome>> = Vec::new();
    let mut finishing = pin!(as_completed(none));
    let hint = STAGE3.hint("no jobs, no items: the stream ends at once (None), as in asyncio");
    let first = completes_within("the first item", finishing.next(), PATIENCE, &hint).await;
    check_eq("the first item of as_completed([])", first, None, &hint);
    assert_elapsed("the stream ended", start.elapsed(), Duration::ZERO, &hint);
}

//   wait(tasks of [0 ms, 100 ms, 200 ms], AllCompleted, timeout 150 ms):
//
//              0 ms      100 ms  150 ms  200 ms
//     task 0:  | Ok(0)
//     task 1:  |=========| Ok(1)
//     task 2:  |===================| Ok(2): still runs after wait returned, and finishes
//     wait:                      done [0, 1], pending [2]

#[kata_harness::test]
async fn stage3_wait_with_a_timeout_returns_what_finished_and_leaves_the_rest_running() {
    let jobs = Jobs::new();
    let tasks = jobs.spawn(&[ok(0), ok(100), ok(200)]);
    let hint = STAGE3.hint("wait must return at its timeout, 150 ms");
    let waited = completes_within(
        "wait(.., AllCompleted, Some(150 ms))",
        wait(tasks, ReturnWhen::AllCompleted, Some(ms(150))),
        PATIENCE,
        &hint,
    )
    .await;
    let waited = waited_or_fail(waited, &hint);
    assert_elapsed(
        "wait returned",
        jobs.now(),
        ms(150),
        &STAGE3.hint(
            "at the timeout (150 ms), with whatever has finished by then: race the tasks \
             against the deadline (tokio::time::timeout around the collecting, or select!)",
        ),
    );
    check_seq(
        "done",
        &done_of(&waited),
        &[(0, "Ok(0)".to_owned()), (1, "Ok(1)".to_owned())],
        &STAGE3.hint("done: (index, outcome) of each task seen finishing, in finishing order"),
    );
    check_seq(
        "pending",
        &pending_of(&waited),
        &[2],
        &STAGE3.hint("pending: (index, handle) of each task still running, in input order"),
    );
    let hint = STAGE3.hint(
        "wait cancels nothing: a task it leaves pending keeps running (await borrowed handles, \
         `&mut JoinHandle`, and hand the handles back; never abort them)",
    );
    let rest = finish_pending(waited.pending, &hint).await;
    check_seq(
        "the pending task, awaited",
        &rest,
        &[(2, "Ok(2)".to_owned())],
        &hint,
    );
    check_life(&jobs, 2, ran(0, 200), &hint);
}

/// Jobs for the table below: Ok at 300, Ok at 100, Err at 200, Ok at 400.
const MIXED: &[Spec] = &[ok(300), ok(100), err(200), ok(400)];
/// Jobs that all succeed: at 300, 100 and 200 ms.
const ALL_OK: &[Spec] = &[ok(300), ok(100), ok(200)];

//   MIXED, every task spawned at 0 ms:
//
//              0 ms      100 ms    200 ms    300 ms    400 ms
//     task 0:  |=============================| Ok(0)
//     task 1:  |=========| Ok(1)
//     task 2:  |===================| Err(2)
//     task 3:  |=======================================| Ok(3)
//
//   FirstCompleted returns at 100 ms, FirstException at 200, AllCompleted at 400; a timeout
//   (50, 150, 250 or 1000 ms) returns then if it comes first. Every pending task still finishes.

#[kata_harness::test]
#[case::first_completed(MIXED, ReturnWhen::FirstCompleted, None, 100, &[(1, "Ok(1)")], &[0, 2, 3])]
#[case::first_completed_long_before_the_timeout(MIXED, ReturnWhen::FirstCompleted, Some(1000), 100, &[(1, "Ok(1)")], &[0, 2, 3])]
#[case::first_completed_after_the_timeout(MIXED, ReturnWhen::FirstCompleted, Some(50), 50, &[], &[0, 1, 2, 3])]
#[case::first_exception(MIXED, ReturnWhen::FirstException, None, 200, &[(1, "Ok(1)"), (2, "Err(2)")], &[0, 3])]
#[case::first_exception_after_the_timeout(MIXED, ReturnWhen::FirstException, Some(150), 150, &[(1, "Ok(1)")], &[0, 2, 3])]
#[case::first_exception_when_none_fails(ALL_OK, ReturnWhen::FirstException, None, 300, &[(1, "Ok(1)"), (2, "Ok(2)"), (0, "Ok(0)")], &[])]
#[case::all_completed(MIXED, ReturnWhen::AllCompleted, None, 400, &[(1, "Ok(1)"), (2, "Err(2)"), (0, "Ok(0)"), (3, "Ok(3)")], &[])]
#[case::all_completed_after_the_timeout(MIXED, ReturnWhen::AllCompleted, Some(250), 250, &[(1, "Ok(1)"), (2, "Err(2)")], &[0, 3])]
async fn stage3_wait_returns_when_return_when_says_or_at_the_timeout(
    #[case] specs: &[Spec],
    #[case] return_when: ReturnWhen,
    #[case] timeout: Option<u64>,
    #[case] returns_at: u64,
    #[case] done: &[(usize, &str)],
    #[case] pending: &[usize],
) {
    let jobs = Jobs::new();
    let call = format!("wait(.., {return_when:?}, {:?})", timeout.map(ms));
    let hint = STAGE3.hint("wait must return when return_when says, or at the timeout");
    let waited = completes_within(
        &call,
        wait(jobs.spawn(specs), return_when, timeout.map(ms)),
        PATIENCE,
        &hint,
    )
    .await;
    let waited = waited_or_fail(waited, &hint);
    assert_elapsed(
        &format!("{call} returned"),
        jobs.now(),
        ms(returns_at),
        &STAGE3.hint(
            "FirstCompleted stops at the first task to finish, FirstException at the first Err \
             or panic (at the end when none fails), AllCompleted at the last; the timeout, if \
             sooner, stops any of them. Never sleep out the timeout: race it",
        ),
    );
    let expected: Vec<_> = done.iter().map(|&(i, o)| (i, o.to_owned())).collect();
    check_seq(
        &format!("done of {call}"),
        &done_of(&waited),
        &expected,
        &STAGE3.hint("each task seen finishing, in the order they finished"),
    );
    check_seq(
        &format!("pending of {call}"),
        &pending_of(&waited),
        pending,
        &STAGE3.hint("every task not in done, in input order, with its handle"),
    );
    let hint = STAGE3.hint("wait cancels nothing: each pending task still finishes on time");
    let _ = finish_pending(waited.pending, &hint).await;
    for &index in pending {
        let length = specs[index].length.as_millis() as u64;
        check_life(&jobs, index, ran(0, length), &hint);
    }
}

#[kata_harness::test]
async fn stage3_first_exception_counts_a_panic() {
    let jobs = Jobs::new();
    let tasks = jobs.spawn(&[ok(300), panics(150, Ends::PanicsWithStr), ok(200)]);
    let hint = STAGE3.hint("wait must return at the panic, 150 ms");
    let waited = completes_within(
        "wait(.., FirstException, None)",
        wait(tasks, ReturnWhen::FirstException, None),
        PATIENCE,
        &hint,
    )
    .await;
    let waited = waited_or_fail(waited, &hint);
    let hint = STAGE3.hint(
        "a panic is an exception too: the handle gives Err(JoinError) with is_panic(). \
         Stop there, as for a task that returned Err",
    );
    assert_elapsed("wait returned", jobs.now(), ms(150), &hint);
    check_seq(
        "done",
        &done_of(&waited),
        &[(1, "panicked".to_owned())],
        &hint,
    );
    check_seq("pending", &pending_of(&waited), &[0, 2], &hint);
}

//   tasks of [300 ms, 200 ms], all Ok; task 0 aborted from elsewhere at 100 ms:
//
//              0 ms      100 ms    200 ms
//     task 0:  |=========x aborted: a JoinError, but cancelled, not an exception
//     task 1:  |===================| Ok(1)
//     wait:                        FirstException found none: returns when all are done

#[kata_harness::test]
async fn stage3_first_exception_does_not_count_a_task_aborted_from_elsewhere() {
    let jobs = Jobs::new();
    let tasks = jobs.spawn(&[ok(300), ok(200)]);
    let abort_task_0 = tasks[0].abort_handle();
    let aborter = async {
        sleep(ms(100)).await;
        abort_task_0.abort();
    };
    let hint = STAGE3.hint("with nothing failing, wait must return once all have finished");
    let (waited, ()) = tokio::join!(
        completes_within(
            "wait(.., FirstException, None)",
            wait(tasks, ReturnWhen::FirstException, None),
            PATIENCE,
            &hint,
        ),
        aborter
    );
    let waited = waited_or_fail(waited, &hint);
    let hint = STAGE3.hint(
        "an exception is an Err or a panic; a task aborted from elsewhere ends with a JoinError \
         that is_cancelled(), which is no exception (asyncio agrees): note it in done and go on",
    );
    assert_elapsed("wait returned", jobs.now(), ms(200), &hint);
    check_seq(
        "done",
        &done_of(&waited),
        &[(0, "cancelled".to_owned()), (1, "Ok(1)".to_owned())],
        &hint,
    );
}

//   tasks finishing at 101 ms and 307 ms; wait(.., FirstCompleted, Some(1000 ms)):
//   woken once, by task 0's end at 101 ms: not at every tick of a timer that checks on them

#[kata_harness::test]
async fn stage3_wait_is_woken_by_the_tasks_not_by_a_timer() {
    let jobs = Jobs::new();
    let tasks = jobs.spawn(&[ok(101), ok(307)]);
    let hint = STAGE3.hint("wait must return at the first finish, 101 ms");
    let (waited, polls) = completes_within(
        "wait(.., FirstCompleted, Some(1000 ms))",
        count_polls(
            wait(tasks, ReturnWhen::FirstCompleted, Some(ms(1000))),
            10_000,
        ),
        PATIENCE,
        &hint,
    )
    .await
    .unwrap_or_else(|polls| {
        fail(
            "wait(.., FirstCompleted, Some(1000 ms))",
            format_args!("still pending after {polls} polls"),
            "to return at the first finish, woken a handful of times",
            &hint,
        )
    });
    let waited = waited_or_fail(waited, &hint);
    assert_elapsed(
        "wait returned",
        jobs.now(),
        ms(101),
        &STAGE3.hint("at the instant task 0 finished: 101 ms, not at the next check"),
    );
    check_eq(
        "done",
        done_of(&waited),
        vec![(0, "Ok(0)".to_owned())],
        &STAGE3.hint("task 0 finishes first"),
    );
    check(
        "times wait's future was polled over 101 ms",
        polls <= 10,
        polls,
        "a handful (at most 10): once at the start, then once when task 0 finished",
        &STAGE3.hint(
            "do not check the tasks on a timer (sleep, is_finished(), again): await the handles \
             themselves, so each finish wakes you, and race them against the deadline",
        ),
    );
}

#[kata_harness::test]
async fn stage3_wait_on_nothing_is_an_error() {
    let start = Instant::now();
    let hint = STAGE3.hint(
        "with no tasks nothing could ever complete: return Err(WaitError::NoTasks) at once \
         (asyncio raises ValueError), before anything else",
    );
    let none: Vec<tokio::task::JoinHandle<Outcome>> = Vec::new();
    let waited = completes_within(
        "wait(vec![], AllCompleted, None)",
        wait(none, ReturnWhen::AllCompleted, None),
        PATIENCE,
        &hint,
    )
    .await;
    check_eq(
        "wait(vec![], AllCompleted, None)",
        waited.map(|waited| (done_of(&waited), pending_of(&waited))),
        Err(WaitError::NoTasks),
        &hint,
    );
    assert_elapsed("wait returned", start.elapsed(), Duration::ZERO, &hint);
    let message = WaitError::NoTasks.to_string();
    check(
        "WaitError::NoTasks's message",
        message.contains("at least one task"),
        format_args!("{message:?}"),
        "a message that says wait needs a task",
        &STAGE3.hint("keep the #[error(...)] text of WaitError"),
    );
}
