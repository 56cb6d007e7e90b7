//! The work-queue kata's suite, run against both `exercises/work-queue` and
//! `solutions/work-queue`: the kata's precise specification.
//!
//! Jobs here are timers on the paused clock, watched by a timeline or a concurrency probe, so the
//! suite knows exactly when each job started and ended and how many ran at once. Three tests
//! leave the paused clock: two run on a multi-threaded runtime, where a wake-up can be lost and
//! jobs finish out of order, and one watches idle workers on the real clock. Stage by stage, the
//! tests reject the usual wrong answers: a pool that runs one job at a time (a worker that keeps
//! the queue's lock while its job runs) or all at once, a task per job, jobs out of push order
//! (also when two threads push), a `join` that returns early, late, never, to only one of several
//! waiters, or that looks on a timer instead of being woken, a wake-up lost between checking the
//! count and waiting, a worker killed by a panicking job, idle workers that spin, workers or jobs
//! that outlive their queue, results out of input order; then a result sent to the wrong handle,
//! a dropped handle that cancels its job, a panic reported without its message, and a handle that
//! waits for ever for a job that was dropped.

// Dropping queues and handles is what several tests are about; in the stub those types have no
// `Drop` of their own yet, which is all this lint would say.
#![allow(clippy::drop_non_drop)]

kata_harness::install_allocator!();

#[path = "work-queue/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use kata_harness::completion::{alive_tasks, completes_within, count_polls};
use kata_harness::leaks::{DropProbe, TaskBaseline, settle};
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check, check_eq, check_seq, fail};
use kata_harness::timing::{Timeline, assert_elapsed, assert_schedule};
use kata_harness::{Stage, blocking, ms, stress};
use support::{
    PATIENCE, Payload, Stuck, explode, fewer_at_once, join, join_race, never_returned,
    push_from_two_threads, queue, sleeping,
};
use tokio::time::Instant;
use work_queue::{JobError, Parity, WorkQueue, WorkQueueError, classify};

const STAGE1: Stage = Stage::new("work-queue", 1);
const STAGE2: Stage = Stage::new("work-queue", 2);

// ---------------------------------------------------------------------------------------------
// Stage 1: `concurrency` workers take jobs from one queue, in push order; `join` waits for all.

#[kata_harness::test]
async fn stage1_zero_concurrency_is_an_error() {
    let error = WorkQueue::new(0).err();
    check_eq(
        "WorkQueue::new(0)",
        error.clone(),
        Some(WorkQueueError::ZeroConcurrency),
        &STAGE1.hint(
            "a queue without workers would never run anything: return \
             Err(WorkQueueError::ZeroConcurrency) before spawning any",
        ),
    );
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    check(
        "the error's message",
        text.contains("concurrency"),
        format_args!("{text:?}"),
        "a message that names the concurrency",
        &STAGE1.hint("keep the #[error(..)] text of the given WorkQueueError"),
    );
}

#[kata_harness::test]
#[case::more_jobs_than_workers(10, 3)]
#[case::an_exact_number_of_rounds(9, 3)]
#[case::fewer_jobs_than_workers(2, 4)]
#[case::one_worker(5, 1)]
#[case::many_workers(100, 7)]
async fn stage1_runs_at_most_concurrency_jobs_and_reaches_it(
    #[case] jobs: usize,
    #[case] concurrency: usize,
) {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(concurrency, STAGE1);
    check_eq(
        "concurrency()",
        queue.concurrency(),
        concurrency,
        &STAGE1.hint("return the number of workers the queue was made with"),
    );
    for _ in 0..jobs {
        queue.push(probe.track(sleeping(ms(10))));
    }
    join(&queue, &never_returned(STAGE1)).await;

    check_eq(
        "jobs finished when join() returned",
        probe.finished(),
        jobs,
        &STAGE1.hint(
            "join() returned while jobs were still queued or running: it waits until no job is \
             left unfinished",
        ),
    );
    let what = format!("{jobs} jobs of 10 ms on {concurrency} worker(s)");
    probe.assert_never_above(
        &what,
        concurrency,
        &STAGE1.hint(
            "more jobs ran at once than there are workers: a worker awaits its job to the end \
             before it takes the next, and push() only queues a job, it never starts one",
        ),
    );
    let (most, expected) = (probe.max(), concurrency.min(jobs));
    check(
        &format!("{what}: the most jobs running at once"),
        most == expected,
        most,
        format_args!("{expected}: every worker busy while jobs are waiting"),
        &fewer_at_once(STAGE1, most, concurrency),
    );
    assert_elapsed(
        &what,
        start.elapsed(),
        ms(10 * jobs.div_ceil(concurrency) as u64),
        &STAGE1.hint(
            "full rounds of `concurrency` jobs at once: ceil(jobs / concurrency) x 10 ms, and \
             join() returns as the last one ends",
        ),
    );
}

// 2 workers, jobs 0-4 pushed at 0 ms, lasting 30, 10, 15, 10 and 10 ms:
//
//              0 ms      10 ms     20 ms     30 ms     40 ms
//              |---------|---------|---------|---------|
//   worker a   [job 0 ......................][job 4 ..]
//   worker b   [job 1 ..][job 2 .......][job 3 ..]
//
//   starts at 0, 0, 10, 25 and 30 ms; join() returns at 40 ms.

#[kata_harness::test]
async fn stage1_jobs_start_in_push_order() {
    let timeline = Timeline::start();
    let queue = queue(2, STAGE1);
    for (index, length) in [30, 10, 15, 10, 10].into_iter().enumerate() {
        queue.push(timeline.watch(format!("job {index}"), sleeping(ms(length))));
    }
    join(&queue, &never_returned(STAGE1)).await;
    let (starts, started): (Vec<Duration>, Vec<String>) = timeline
        .events()
        .into_iter()
        .filter(|(_, label)| label.ends_with("started"))
        .unzip();
    check_seq(
        "the order jobs started in",
        &started,
        &(0..5)
            .map(|i| format!("job {i} started"))
            .collect::<Vec<_>>(),
        &STAGE1.hint(
            "all workers take jobs from the front of one shared queue: first pushed, first \
             started (a queue per worker, or taking from the back, starts them in another order)",
        ),
    );
    assert_schedule(
        "job start times on 2 workers",
        &starts,
        &[ms(0), ms(0), ms(10), ms(25), ms(30)],
        &STAGE1.hint(
            "a worker takes the next job the moment its previous one ends, and both workers run \
             at once; starts that come one after another mean a worker keeps the queue's lock \
             while its job runs",
        ),
    );
}

// Two producer threads, outside the runtime, take turns: one pushes jobs 0, 2, 4, ..., the
// other 1, 3, 5, ... Whoever pushes, the queue is one line: jobs start in push order.

#[kata_harness::test]
async fn stage1_jobs_pushed_from_two_threads_start_in_push_order() {
    let timeline = Timeline::start();
    let queue = Arc::new(queue(2, STAGE1));
    let jobs = (0..12)
        .map(|i| timeline.watch(format!("job {i}"), sleeping(ms(10 + i % 3 * 5))))
        .collect();
    if let Err(panic) = push_from_two_threads(queue.clone(), jobs).await {
        fail(
            "push() called from a thread outside the tokio runtime",
            format_args!("panicked: {panic}"),
            "the job queued",
            &STAGE1.hint(
                "push() may be called from any thread, also one outside the runtime (a producer \
                 thread): it only puts the job in the queue, which an unbounded channel's send \
                 does anywhere; tokio::spawn or Handle::current() in push() panics there",
            ),
        );
    }
    join(&queue, &never_returned(STAGE1)).await;
    let started: Vec<String> = timeline
        .labels()
        .into_iter()
        .filter(|label| label.ends_with("started"))
        .collect();
    check_seq(
        "the order jobs pushed by two threads in turn started in",
        &started,
        &(0..12)
            .map(|i| format!("job {i} started"))
            .collect::<Vec<_>>(),
        &STAGE1.hint(
            "every push() goes to the back of the one queue the workers take from, whichever \
             thread calls it, so jobs start in the order they were pushed",
        ),
    );
}

#[kata_harness::test]
async fn stage1_uses_a_fixed_pool_of_workers_not_a_task_per_job() {
    let baseline = TaskBaseline::capture();
    let probe = ConcurrencyProbe::new();
    let queue = queue(3, STAGE1);
    for _ in 0..100 {
        queue.push(probe.track(sleeping(ms(10))));
    }
    settle().await;
    let tasks = alive_tasks() - baseline.alive();
    check(
        "tokio tasks alive with 100 jobs queued on 3 workers",
        tasks <= 2 * 3,
        tasks,
        "about 3 (the workers), not one per job",
        &STAGE1.hint(
            "spawn the workers once, in new(); push() only puts a job in the queue for them, it \
             does not spawn a task (a task per job plus a semaphore is the design this kata \
             replaces)",
        ),
    );
    join(&queue, &never_returned(STAGE1)).await;
    probe.assert_limit(
        "100 jobs on 3 workers",
        3,
        &STAGE1.hint("3 workers run 3 jobs at once, never more, never fewer while jobs wait"),
    );
}

#[kata_harness::test]
async fn stage1_join_waits_for_everything_pushed_before_it() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    for length in [5, 50, 20] {
        queue.push(probe.track(sleeping(ms(length))));
    }
    join(&queue, &never_returned(STAGE1)).await;
    check_eq(
        "jobs finished when join() returned",
        probe.finished(),
        3,
        &STAGE1.hint(
            "join() returned while jobs were still queued or running: count a job as unfinished \
             from push() until it ends, not from when a worker takes it, and not only the queued \
             ones",
        ),
    );
    // 2 workers: 5 ms and 50 ms at once, the 20 ms job from 5 ms to 25 ms; the last ends at 50.
    assert_elapsed(
        "join() after jobs of 5, 50 and 20 ms on 2 workers",
        start.elapsed(),
        ms(50),
        &STAGE1.hint("join() returns the moment the last job ends, not later"),
    );
}

// join() is woken by the last job, it does not look on a timer:
//
//              0 ms      20 ms     40 ms     60 ms     80 ms
//              |---------|---------|---------|---------|
//   worker a   [0[job 2 ............]
//   worker b   [job 1 ..............................]
//   join()     pending from 0 ms, polled again at 77 ms (and maybe as each job ends), returns

#[kata_harness::test]
async fn stage1_join_sleeps_until_the_last_job_ends() {
    let start = Instant::now();
    let queue = queue(2, STAGE1);
    for length in [5, 77, 40] {
        queue.push(sleeping(ms(length)));
    }
    let limit = 1_000;
    let polls = match count_polls(queue.join(), limit).await {
        Ok(((), polls)) => polls,
        Err(polls) => fail(
            "join() with jobs of 5, 77 and 40 ms queued",
            format_args!(
                "still pending after {polls} polls, at {:?}",
                start.elapsed()
            ),
            "pending until it is woken when the last job ends",
            &STAGE1.hint(
                "join() keeps itself awake (yield_now in a loop?), so no time ever passes: wait \
                 for a signal that the last job sends instead (a Notify, or a watch channel)",
            ),
        ),
    };
    assert_elapsed(
        "join() after jobs of 5, 77 and 40 ms on 2 workers",
        start.elapsed(),
        ms(77),
        &STAGE1.hint("join() returns the moment the last job ends (77 ms), not at a later check"),
    );
    check(
        "times join() was polled while it waited 77 ms for 3 jobs",
        polls <= 3 + 2,
        polls,
        "at most 5: the first poll, once per job that ends, and once more",
        &STAGE1.hint(
            "join() wakes itself up to look at the count (a sleep in a loop) instead of being \
             woken: let the job that brings the count to zero signal it (Notify::notify_waiters, \
             or a watch channel's send), and wait for that signal",
        ),
    );
}

// A job may push more jobs; join() waits for those too:
//
//              0 ms      10 ms     20 ms     30 ms
//              |---------|---------|---------|
//   worker a   [A ......][C, pushed by A ...]
//   worker b   [B .]
//   join()     called at 0 ms, returns at 30 ms

#[kata_harness::test]
async fn stage1_join_waits_for_jobs_pushed_while_it_waits() {
    let start = Instant::now();
    let timeline = Timeline::start();
    let queue = Arc::new(queue(2, STAGE1));
    let (parent, follow_up) = (queue.clone(), timeline.watch("C", sleeping(ms(20))));
    queue.push(timeline.watch("A", async move {
        tokio::time::sleep(ms(10)).await;
        parent.push(follow_up);
    }));
    queue.push(timeline.watch("B", sleeping(ms(5))));
    join(&queue, &never_returned(STAGE1)).await;
    assert_elapsed(
        "join() while job A pushes job C at 10 ms",
        start.elapsed(),
        ms(30),
        &STAGE1.hint(
            "join() returns when no job is queued or running, counting jobs pushed while it \
             waits (here by job A, before A ends): count unfinished jobs, not the jobs pushed \
             before join() was called",
        ),
    );
    check_eq(
        "job C, pushed by job A",
        timeline.life("C").to_string(),
        "started 10ms, finished 30ms, dropped never".to_owned(),
        &STAGE1.hint("a job pushed by a job goes to the back of the queue like any other"),
    );
}

// Several tasks wait on join() at once; the last job wakes them all:
//
//              0 ms      10 ms     20 ms     30 ms
//              |---------|---------|---------|
//   worker a   [job 0 ..]
//   worker b   [job 1 ............]
//   worker c   [job 2 ......................]
//   joiners a, b and c call join() at 0 ms, joiner d at 15 ms: all four return at 30 ms

#[kata_harness::test]
async fn stage1_every_task_waiting_on_join_returns() {
    let timeline = Timeline::start();
    let queue = Arc::new(queue(3, STAGE1));
    for length in [10, 20, 30] {
        queue.push(sleeping(ms(length)));
    }
    let names = ["a", "b", "c", "d"];
    let mut joiners = tokio::task::JoinSet::new();
    for (name, from) in names.into_iter().zip([0, 0, 0, 15]) {
        let (queue, timeline) = (queue.clone(), timeline.clone());
        joiners.spawn(async move {
            tokio::time::sleep(ms(from)).await;
            queue.join().await;
            timeline.mark(format!("joiner {name} returned"));
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let returned: Vec<Option<Duration>> = names
        .iter()
        .map(|name| timeline.first(&format!("joiner {name} returned")))
        .collect();
    let hint = if returned.contains(&None) {
        STAGE1.hint(
            "every task waiting in join() must be woken when the last job ends, not just one: \
             Notify::notify_waiters (not notify_one), or a watch channel, wakes them all; a \
             single stored Waker or oneshot keeps only the latest waiter",
        )
    } else {
        STAGE1.hint("each join() returns the moment the last job ends, at 30 ms")
    };
    check_eq(
        "when each of 4 tasks waiting in join() returned (None: still waiting after 1 s)",
        returned,
        vec![Some(ms(30)); 4],
        &hint,
    );
}

// Many join() calls in flight as the last job ends, on 4 threads: every one returns.

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_join_never_misses_the_last_job_on_many_threads() {
    // A multi-threaded runtime, on the real clock (see `join_race`): there the last job can end
    // on one thread between a join()'s look at the unfinished count and its registering for the
    // wake-up on another. On the test's one thread, tasks switch only at an `.await`, so that
    // ordering never happens there.
    if let Err(Stuck { attempt }) = join_race(600, Duration::from_secs(1)).await {
        fail(
            "join() calls started one after another as the last job of a queue ends on another \
             thread (4 threads)",
            format_args!(
                "in attempt {attempt}, a join() call was still waiting 2 s after every job had \
                 ended"
            ),
            "every join() returns once the jobs are done",
            &STAGE1.hint(
                "a wake-up was lost: join() saw the count above zero, then the last job ended \
                 and signalled on another thread before join() was registered for the signal. \
                 Register first, then look: create the Notified future (notify.notified()) \
                 before reading the count, or use a watch channel's wait_for, which looks and \
                 waits under one lock; and signal only after the count has reached zero (if \
                 other join() tests fail too, start with those)",
            ),
        );
    }
}

#[kata_harness::test]
async fn stage1_the_queue_is_usable_again_after_join() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    join(
        &queue,
        &STAGE1.hint("join() on a queue with no jobs returns at once"),
    )
    .await;
    assert_elapsed(
        "join() with nothing pushed",
        start.elapsed(),
        Duration::ZERO,
        &STAGE1.hint("nothing to wait for: join() returns at once"),
    );
    for round in 1..=3 {
        for _ in 0..4 {
            queue.push(probe.track(sleeping(ms(10))));
        }
        join(
            &queue,
            &STAGE1.hint("join() returns once the jobs pushed since the last join() have finished"),
        )
        .await;
        check_eq(
            &format!("jobs finished after join() number {round}"),
            probe.finished(),
            4 * round,
            &STAGE1.hint(
                "after join() the workers are still there: they wait for more jobs, they do not \
                 stop when the queue is empty",
            ),
        );
    }
    assert_elapsed(
        "three rounds of 4 jobs of 10 ms on 2 workers, each followed by join()",
        start.elapsed(),
        ms(60),
        &STAGE1.hint("each round takes 20 ms: both workers busy, join() returning as it ends"),
    );
}

// A join() dropped half way (given up by a timeout) changes nothing:
//
//              0 ms      20 ms     40 ms     60 ms
//              |---------|---------|---------|
//   worker a   [job 0 .......][job 2 .......]
//   worker b   [job 1 .......][job 3 .......]
//   join() #1  given up at 10 ms
//   join() #2  returns at 60 ms

#[kata_harness::test]
async fn stage1_a_join_given_up_half_way_changes_nothing() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    for _ in 0..4 {
        queue.push(probe.track(sleeping(ms(30))));
    }
    let given_up = tokio::time::timeout(ms(10), queue.join()).await;
    check(
        "join() given up after 10 ms of 60",
        given_up.is_err(),
        "it had returned",
        "still waiting",
        &STAGE1.hint("join() returns when the jobs end, at 60 ms"),
    );
    join(
        &queue,
        &STAGE1.hint(
            "a join() that was dropped before it returned must leave nothing behind that stops \
             the next join() from returning",
        ),
    )
    .await;
    assert_elapsed(
        "a second join() after the first was given up at 10 ms",
        start.elapsed(),
        ms(60),
        &STAGE1.hint("the second join() returns as the last job ends, at 60 ms"),
    );
    probe.assert_limit(
        "4 jobs of 30 ms on 2 workers",
        2,
        &STAGE1.hint("dropping a join() does not touch the jobs or the workers"),
    );
}

// Panicking jobs on 2 workers: "boom" (a &str), "boom 7" (a String), a panic after 5 ms, a
// panic that is not text; then 4 jobs of 10 ms, which start at 0, 5, 10 and 15 ms.

#[kata_harness::test]
async fn stage1_a_panicking_job_does_not_kill_its_worker() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    queue.push(async {
        explode(Payload::Literal);
    });
    queue.push(async {
        explode(Payload::Formatted);
    });
    queue.push(async {
        tokio::time::sleep(ms(5)).await;
        explode(Payload::Literal);
    });
    queue.push(async {
        explode(Payload::NotText);
    });
    for _ in 0..4 {
        queue.push(probe.track(sleeping(ms(10))));
    }
    join(
        &queue,
        &STAGE1.hint(
            "join() never returned after jobs panicked: a worker killed by a panic runs nothing \
             more, and a panicked job must still count as finished. Catch the panic around each \
             job (futures::FutureExt::catch_unwind on AssertUnwindSafe(job)) and count the job \
             done however it ends (a guard whose Drop decrements)",
        ),
    )
    .await;
    probe.assert_limit(
        "4 jobs of 10 ms on 2 workers, after 4 panicking jobs",
        2,
        &STAGE1.hint(
            "a worker whose job panicked must live on to run the next one: catch the panic \
             around each job, not around the worker",
        ),
    );
    assert_elapsed(
        "4 panicking jobs (one after 5 ms) and 4 jobs of 10 ms on 2 workers",
        start.elapsed(),
        ms(25),
        &STAGE1.hint(
            "both workers keep taking jobs after a panic: the jobs of 10 ms start at 0, 5, 10 \
             and 15 ms",
        ),
    );
}

#[kata_harness::test(real_time)]
async fn stage1_idle_workers_wait_without_spinning() {
    // Real time: workers that poll an empty queue in a loop (try_recv, then yield_now) keep a
    // task ready at all times, and the paused clock moves only when no task is: every other test
    // would hang instead of saying why. On the real clock, the runtime's busy time shows it.
    let queue = queue(4, STAGE1);
    settle().await;
    let ((), busy) = blocking::busy_during(tokio::time::sleep(ms(200))).await;
    check(
        "time the runtime's thread was busy during 200 ms with 4 idle workers (real time)",
        busy < ms(50),
        format_args!("{busy:.1?}"),
        "well under 50 ms: idle workers wait for a job without running",
        &STAGE1.hint(
            "idle workers keep polling the queue: wait for the next job with recv().await, \
             which sleeps until a job is sent, instead of try_recv() and yield_now() in a loop",
        ),
    );
    drop(queue);
}

#[kata_harness::test]
async fn stage1_dropping_an_idle_queue_stops_its_workers() {
    let baseline = TaskBaseline::capture();
    let queue = queue(4, STAGE1);
    settle().await;
    drop(queue);
    baseline
        .assert_back(
            "tokio tasks after dropping a queue of 4 idle workers",
            Duration::ZERO,
            &STAGE1.hint(
                "the queue owns its workers: when it is dropped they must end, for example by \
                 keeping them in a tokio::task::JoinSet, which aborts its tasks on drop",
            ),
        )
        .await;
}

#[kata_harness::test]
async fn stage1_dropping_a_busy_queue_drops_its_jobs() {
    let baseline = TaskBaseline::capture();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    let mut drop_probes = Vec::new();
    for _ in 0..5 {
        let (drop_probe, token) = DropProbe::new();
        drop_probes.push(drop_probe);
        let job = probe.track(sleeping(Duration::from_secs(1)));
        queue.push(async move {
            let _token = token;
            job.await;
        });
    }
    settle().await;
    check_eq(
        "jobs running before the queue is dropped",
        probe.current(),
        2,
        &STAGE1.hint("2 workers run 2 jobs at once"),
    );
    drop(queue);
    baseline
        .assert_back(
            "tokio tasks after dropping a queue with jobs running and queued",
            Duration::ZERO,
            &STAGE1.hint(
                "dropping the queue stops its workers at once, even mid-job: abort them (a \
                 JoinSet does it when dropped), do not let them drain the queue first; a job \
                 spawned as a task of its own survives its worker's abort",
            ),
        )
        .await;
    for (index, drop_probe) in drop_probes.iter().enumerate() {
        drop_probe.assert_dropped(
            &format!("job {index} after its queue was dropped"),
            &STAGE1.hint(
                "running jobs are cancelled and queued jobs are dropped with the queue: nothing \
                 else may keep them (or the queue's receiver) alive",
            ),
        );
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    check_eq(
        "jobs ever started",
        probe.started(),
        2,
        &STAGE1.hint("queued jobs must not start after their queue is gone"),
    );
}

// A queue shared with a joiner task lives as long as the joiner holds it; a joiner cancelled
// while it waits takes the queue down with it, if it held the last reference.

#[kata_harness::test]
async fn stage1_a_queue_dropped_while_a_join_is_pending() {
    let baseline = TaskBaseline::capture();
    let shared = Arc::new(queue(2, STAGE1));
    shared.push(sleeping(ms(20)));
    let joiner = tokio::spawn({
        let queue = shared.clone();
        async move {
            queue.join().await;
            Instant::now()
        }
    });
    let start = Instant::now();
    drop(shared);
    let returned = completes_within(
        "join() in a task that holds the queue's last reference",
        joiner,
        PATIENCE,
        &STAGE1.hint("the joiner's reference keeps the queue alive: its join() returns at 20 ms"),
    )
    .await
    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
    assert_elapsed(
        "join() in a task that holds the queue's last reference",
        returned - start,
        ms(20),
        &STAGE1.hint("join() returns when the job ends"),
    );

    let (drop_probe, token) = DropProbe::new();
    let queue = Arc::new(queue(2, STAGE1));
    queue.push(async move {
        let _token = token;
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let joiner = tokio::spawn(async move { queue.join().await });
    tokio::time::sleep(ms(5)).await;
    joiner.abort();
    let cancelled = completes_within(
        "a joiner task aborted while join() waits",
        joiner,
        PATIENCE,
        &STAGE1.hint("a pending join() is dropped like any future: at once"),
    )
    .await;
    check(
        "a joiner task aborted while join() waits",
        cancelled.as_ref().is_err_and(|error| error.is_cancelled()),
        format_args!("{cancelled:?}"),
        "Err(cancelled)",
        &STAGE1.hint("a pending join() is dropped like any future: at once"),
    );
    baseline
        .assert_back(
            "tokio tasks after a joiner holding the last reference to its queue was aborted",
            Duration::ZERO,
            &STAGE1.hint(
                "the queue went with the joiner: its workers must stop as for any dropped queue",
            ),
        )
        .await;
    drop_probe.assert_dropped(
        "the job running when the queue went with its joiner",
        &STAGE1.hint("dropping the queue cancels its running jobs"),
    );
}

#[kata_harness::test]
async fn stage1_classifies_0_to_100_000_exactly() {
    let hint = STAGE1
        .hint("every number exactly once, in the list its parity says, each list in input order");
    let parity = completes_within(
        "classify(0..100_000, 3)",
        classify(0..100_000, 3),
        PATIENCE,
        &hint,
    )
    .await
    .unwrap_or_else(|error| {
        fail(
            "classify(0..100_000, 3)",
            format_args!("Err({error:?})"),
            "Ok(..)",
            &hint,
        )
    });
    let evens: Vec<u64> = (0..100_000).step_by(2).collect();
    let odds: Vec<u64> = (1..100_000).step_by(2).collect();
    check_seq(
        "the evens of classify(0..100_000, 3)",
        &parity.evens,
        &evens,
        &hint,
    );
    check_seq(
        "the odds of classify(0..100_000, 3)",
        &parity.odds,
        &odds,
        &hint,
    );
}

#[kata_harness::test]
#[case::shuffled((0..1000).map(|i| (i * 7 + 3) % 1000).collect())]
#[case::empty(vec![])]
#[case::repeated_numbers(vec![4, 4, 7, 0, 7, 4, 0])]
#[case::the_largest_numbers(vec![u64::MAX, 0, u64::MAX - 1, 1, u64::MAX])]
async fn stage1_classify_keeps_every_number_in_input_order(#[case] numbers: Vec<u64>) {
    let expected = Parity {
        evens: numbers.iter().copied().filter(|n| n % 2 == 0).collect(),
        odds: numbers.iter().copied().filter(|n| n % 2 == 1).collect(),
    };
    check_eq(
        &format!("classify({}, 4)", kata_harness::report::list(&numbers)),
        classify(numbers.clone(), 4).await,
        Ok(expected),
        &STAGE1.hint(
            "keep every number, repeats included, each list in the order the numbers came in: \
             not sorted, not deduplicated, not in the order jobs finished, and not indexed by \
             the number's value",
        ),
    );
    check_eq(
        "classify(0..10, 0)",
        classify(0..10, 0).await,
        Err(WorkQueueError::ZeroConcurrency),
        &STAGE1.hint("classify passes WorkQueue::new's error on"),
    );
}

#[kata_harness::test]
async fn stage1_classify_keeps_input_order_on_many_threads() {
    // On a multi-threaded runtime (real clock) jobs on different threads finish in an order of
    // their own, so results collected as they come are out of input order.
    let numbers: Vec<u64> = (0..100_000).map(|i| (i * 7919) % 100_000).collect();
    let input = numbers.clone();
    let parity = stress::on_multi_thread(4, move || classify(input, 4)).await;
    let hint = STAGE1.hint(
        "results collected as jobs finish (a channel, a shared Vec) come in finishing order, \
         which is input order only on one thread: keep each result in its input position (an \
         index per job, or the handles awaited in order)",
    );
    let parity = parity.unwrap_or_else(|error| {
        fail(
            "classify on 4 threads",
            format_args!("Err({error:?})"),
            "Ok(..)",
            &hint,
        )
    });
    check_seq(
        "the evens of classify(a shuffled 0..100_000, 4) on 4 threads",
        &parity.evens,
        &numbers
            .iter()
            .copied()
            .filter(|n| n % 2 == 0)
            .collect::<Vec<_>>(),
        &hint,
    );
    check_seq(
        "the odds of classify(a shuffled 0..100_000, 4) on 4 threads",
        &parity.odds,
        &numbers
            .iter()
            .copied()
            .filter(|n| n % 2 == 1)
            .collect::<Vec<_>>(),
        &hint,
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: submit(job) returns a handle to the job's own result.
//
//   3 workers, jobs 0-5 lasting 60, 50, 40, 35, 5 and 1 ms, each returning its number x 100:
//
//              0 ms      20 ms     40 ms     60 ms     80 ms
//              |---------|---------|---------|---------|
//   worker a   [job 0 ......................]
//   worker b   [job 1 .................]4 5              (job 4 from 50 to 55 ms, job 5 to 56 ms)
//   worker c   [job 2 ............][job 3 ..........]
//
//   jobs finish in the order 2, 1, 4, 5, 0, 3; handle i gives Ok(i x 100) all the same.

#[kata_harness::test]
async fn stage2_each_handle_gets_its_own_result() {
    let timeline = Timeline::start();
    let queue = queue(3, STAGE2);
    let lengths = [60, 50, 40, 35, 5, 1];
    // Each handle is awaited in a task of its own, which notes when it resolved.
    let waiters: Vec<_> = (0..6u64)
        .map(|i| {
            let length = ms(lengths[i as usize]);
            let handle = queue.submit(timeline.watch(format!("job {i}"), async move {
                tokio::time::sleep(length).await;
                i * 100
            }));
            let timeline = timeline.clone();
            tokio::spawn(async move {
                let result = handle.await;
                timeline.mark(format!("handle {i} resolved"));
                result
            })
        })
        .collect();
    let woken = STAGE2.hint(
        "a handle must wake the task awaiting it when its job ends: poll the oneshot Receiver \
         (that registers the task's waker), not try_recv(), which only looks",
    );
    let mut results = Vec::new();
    for (i, waiter) in waiters.into_iter().enumerate() {
        let what = format!("the handle of job {i}, awaited in a task of its own");
        let result = completes_within(&what, waiter, PATIENCE, &woken).await;
        results.push(result.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic())));
    }
    check_eq(
        "results of 6 jobs, each awaited through its handle",
        results,
        (0..6u64).map(|i| Ok(i * 100)).collect(),
        &STAGE2.hint(
            "each handle receives its own job's output, however the jobs' ends interleave: one \
             oneshot channel per job, its sender moved into the job's wrapper",
        ),
    );
    let finished: Vec<String> = timeline
        .labels()
        .into_iter()
        .filter(|label| label.ends_with("finished"))
        .collect();
    check_seq(
        "the order jobs finished in",
        &finished,
        &[2, 1, 4, 5, 0, 3].map(|i| format!("job {i} finished")),
        &STAGE2.hint("submitted jobs run on the workers in submission order, like pushed ones"),
    );
    check_eq(
        "when each handle resolved, and when its job finished",
        (0..6)
            .map(|i| timeline.first(&format!("handle {i} resolved")))
            .collect::<Vec<_>>(),
        (0..6)
            .map(|i| timeline.life(&format!("job {i}")).finished)
            .collect(),
        &woken,
    );
}

// push and submit feed one queue: jobs start in call order, on the same 2 workers:
//
//              0 ms      10 ms     20 ms     30 ms
//              |---------|---------|---------|
//   worker a   [a ......][c ......][e ......]
//   worker b   [b ...........][d ......]
//
//   push(a), submit(b), push(c), submit(d), push(e): starts at 0, 0, 10, 15 and 20 ms

#[kata_harness::test]
async fn stage2_pushed_and_submitted_jobs_share_one_queue() {
    let timeline = Timeline::start();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE2);
    let job = |name: &str, length: u64| {
        timeline.watch(name.to_owned(), probe.track(sleeping(ms(length))))
    };
    queue.push(job("a", 10));
    let b = queue.submit(job("b", 15));
    queue.push(job("c", 10));
    let d = queue.submit(job("d", 10));
    queue.push(job("e", 10));
    join(
        &queue,
        &STAGE2.hint("join() waits for pushed and submitted jobs alike"),
    )
    .await;
    let hint = STAGE2.hint(
        "submit() puts its job in the same queue as push(), taken by the same workers: one \
         channel, not one per kind of job",
    );
    probe.assert_never_above("pushed and submitted jobs on 2 workers", 2, &hint);
    let starts: Vec<_> = ["a", "b", "c", "d", "e"]
        .map(|name| timeline.life(name).started.unwrap_or(Duration::MAX))
        .to_vec();
    assert_schedule(
        "the starts of a, b, c, d and e (pushed, submitted, pushed, submitted, pushed)",
        &starts,
        &[ms(0), ms(0), ms(10), ms(15), ms(20)],
        &hint,
    );
    check_eq(
        "the handles of b and d, awaited after join()",
        (b.await, d.await),
        (Ok(()), Ok(())),
        &STAGE2.hint("a handle keeps its result until it is awaited, even long after the job"),
    );
}

#[kata_harness::test]
async fn stage2_dropping_a_handle_discards_the_result_but_the_job_runs() {
    let timeline = Timeline::start();
    let queue = queue(2, STAGE2);
    for i in 0..4 {
        drop(queue.submit(timeline.watch(format!("job {i}"), async move {
            tokio::time::sleep(ms(10)).await;
            i
        })));
    }
    join(
        &queue,
        &STAGE2.hint(
            "join() waits for submitted jobs too, held or not; if it never returned, a worker \
             may have died sending a result to a dropped handle: ignore that send's error",
        ),
    )
    .await;
    check_eq(
        "the four jobs whose handles were dropped at once",
        (0..4)
            .map(|i| timeline.life(&format!("job {i}")).to_string())
            .collect(),
        [
            "started 0ms, finished 10ms",
            "started 0ms, finished 10ms",
            "started 10ms, finished 20ms",
            "started 10ms, finished 20ms",
        ]
        .map(|life| format!("{life}, dropped never"))
        .to_vec(),
        &STAGE2.hint(
            "dropping a handle only means nobody wants the result: the job still runs to its \
             end, and sending its result to nobody must neither fail nor panic",
        ),
    );
}

// A handle dropped while its job runs: the job still runs to its end.
//
//              0 ms      10 ms     20 ms     30 ms
//              |---------|---------|---------|
//   worker     [job 0 ............][job 1 ..]
//   handle 0   dropped at 5 ms
//   join()     returns at 30 ms

#[kata_harness::test]
async fn stage2_dropping_a_handle_while_its_job_runs() {
    let start = Instant::now();
    let timeline = Timeline::start();
    let queue = queue(1, STAGE2);
    let first = queue.submit(timeline.watch("job 0", async {
        tokio::time::sleep(ms(20)).await;
        0
    }));
    let second = queue.submit(timeline.watch("job 1", async {
        tokio::time::sleep(ms(10)).await;
        1
    }));
    tokio::time::sleep(ms(5)).await;
    drop(first);
    join(
        &queue,
        &STAGE2.hint("join() waits for a job whose handle was dropped while it ran"),
    )
    .await;
    check_eq(
        "job 0, its handle dropped at 5 ms",
        timeline.life("job 0").to_string(),
        "started 0ms, finished 20ms, dropped never".to_owned(),
        &STAGE2.hint(
            "dropping a handle does not cancel its job, even mid-way: do not watch the result \
             channel (Sender::closed) to stop the job; a JobHandle is not an abort switch",
        ),
    );
    assert_elapsed(
        "join() after jobs of 20 and 10 ms on 1 worker",
        start.elapsed(),
        ms(30),
        &STAGE2.hint("job 1 starts when job 0 ends, at 20 ms, and ends at 30 ms"),
    );
    check_eq(
        "the handle of job 1",
        second.await,
        Ok(1),
        &STAGE2.hint("the next job and its handle are not affected"),
    );
}

#[kata_harness::test]
#[case::with_a_literal_message(Payload::Literal, "boom")]
#[case::with_a_formatted_message(Payload::Formatted, "boom 7")]
async fn stage2_a_panicking_job_is_reported_through_its_handle(
    #[case] payload: Payload,
    #[case] message: &'static str,
) {
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE2);
    let before = queue.submit(async { 1 });
    let failing = queue.submit(async move { explode(payload) });
    let after: Vec<_> = (0..4)
        .map(|i| {
            queue.submit(probe.track(async move {
                tokio::time::sleep(ms(10)).await;
                i
            }))
        })
        .collect();
    let outcome = completes_within(
        "the panicking job's handle",
        failing,
        PATIENCE,
        &STAGE2.hint("a panicking job's handle gets Err(JobError::Panicked { .. }), at once"),
    )
    .await;
    check_eq(
        &format!("the handle of a job that panicked with a {payload:?} message"),
        outcome,
        Err(JobError::Panicked {
            message: message.to_owned(),
        }),
        &STAGE2.hint(
            "catch the panic and send Err(JobError::Panicked { message }) with its text: the \
             payload is a &str for panic!(\"literal\") and a String for a formatted message, so \
             try downcast_ref::<&str>() and downcast_ref::<String>()",
        ),
    );
    let others = STAGE2.hint("a panic is its own job's business: the others run as before");
    check_eq("the job before it", before.await, Ok(1), &others);
    for (i, handle) in after.into_iter().enumerate() {
        check_eq(&format!("job {i} after it"), handle.await, Ok(i), &others);
    }
    probe.assert_limit("4 jobs of 10 ms after the panic, on 2 workers", 2, &others);
}

#[kata_harness::test]
async fn stage2_a_panic_that_is_not_text_is_reported_too() {
    let queue = queue(1, STAGE2);
    let failing = queue.submit(async { explode(Payload::NotText) });
    let next = queue.submit(async { 2 });
    let outcome = completes_within(
        "the handle of a job that called std::panic::panic_any(42)",
        failing,
        PATIENCE,
        &STAGE2.hint("a panic is caught whatever its payload"),
    )
    .await;
    check(
        "the handle of a job that called std::panic::panic_any(42)",
        matches!(outcome, Err(JobError::Panicked { .. })),
        format_args!("{outcome:?}"),
        "Err(JobError::Panicked { message: any text you like })",
        &STAGE2.hint(
            "a payload that is neither &str nor String still makes a Panicked error, with a \
             message of your own such as \"a panic without a message\": never unwrap the \
             downcast",
        ),
    );
    check_eq(
        "the next job's handle",
        completes_within(
            "the next job's handle",
            next,
            PATIENCE,
            &STAGE2.hint("the worker lives on"),
        )
        .await,
        Ok(2),
        &STAGE2.hint("the worker survives any panic and runs the next job"),
    );
}

#[kata_harness::test]
async fn stage2_handles_of_jobs_dropped_with_their_queue_say_cancelled() {
    let queue = queue(1, STAGE2);
    let running = queue.submit(sleeping(Duration::from_secs(1)));
    let awaited = queue.submit(sleeping(Duration::from_secs(1)));
    let queued = queue.submit(async { 5 });
    // Someone is already waiting on this one when the queue goes.
    let waiter = tokio::spawn(awaited);
    settle().await;
    drop(queue);
    let hint = STAGE2.hint(
        "when a job is dropped before it sends a result, its handle resolves to \
         Err(JobError::Cancelled) instead of waiting forever: a oneshot Receiver sees its Sender \
         dropped",
    );
    check_eq(
        "the handle of the job running when the queue was dropped",
        completes_within("a cancelled job's handle", running, PATIENCE, &hint).await,
        Err(JobError::Cancelled),
        &hint,
    );
    check_eq(
        "the handle of a job still queued when the queue was dropped",
        completes_within("a cancelled job's handle", queued, PATIENCE, &hint).await,
        Err(JobError::Cancelled),
        &hint,
    );
    check_eq(
        "a handle another task was awaiting when the queue was dropped",
        completes_within(
            "a cancelled job's handle, awaited in another task",
            waiter,
            PATIENCE,
            &STAGE2.hint(
                "a handle already waiting must be woken when its job is dropped, not only \
                 answer Cancelled when polled again",
            ),
        )
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic())),
        Err(JobError::Cancelled),
        &hint,
    );
}
