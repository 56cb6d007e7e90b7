//! The work-queue kata's suite, run against both `exercises/work-queue` and
//! `solutions/work-queue`.
//!
//! Jobs in these tests are timers on the paused clock, tracked by a concurrency probe, so the
//! suite knows exactly how many ran at once and when each started. It rejects the usual wrong
//! answers: a queue that runs jobs one by one or all at once, a `join` that returns early or
//! never, a worker killed by a panicking job, a task per job instead of a pool, and workers that
//! outlive their queue.

// Dropping queues and handles is what several tests are about; in the stub those types have no
// `Drop` of their own yet, which is all this lint would say.
#![allow(clippy::drop_non_drop)]

// Heap counters per test: `just compare` shows each test's peak heap next to the reference's.
kata_harness::install_allocator!();

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kata_harness::completion::{alive_tasks, completes_within};
use kata_harness::leaks::{DropProbe, TaskBaseline, settle};
use kata_harness::ms;
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check_eq, fail};
use kata_harness::timing::{Timeline, assert_elapsed, assert_schedule};
use rstest::rstest;
use work_queue::{JobError, Parity, WorkQueue, WorkQueueError, classify};

const STAGE1: &str = "exercises/work-queue/README.md, stage 1";
const STAGE2: &str = "exercises/work-queue/README.md, stage 2";

/// Long enough for any test here; a `join` still waiting after this never returns.
const PATIENCE: Duration = Duration::from_secs(60);

/// A job that counts itself in `probe` while it sleeps for `length` from its first poll.
fn timed_job(probe: &ConcurrencyProbe, length: Duration) -> impl Future<Output = ()> + use<> {
    // `sleep` sets its deadline when it is *called*, so call it inside the job, not here.
    probe.track(async move { tokio::time::sleep(length).await })
}

/// Panics with a literal (`&str` payload) or a formatted message (`String` payload).
fn explode(template: &str) -> u32 {
    if template.contains("{}") {
        panic!("boom {}", 7);
    }
    panic!("boom");
}

/// `WorkQueue::new` for tests that are not about its errors.
fn queue(concurrency: usize, hint: &str) -> WorkQueue {
    WorkQueue::new(concurrency).unwrap_or_else(|error| {
        fail(
            &format!("WorkQueue::new({concurrency})"),
            "a queue",
            format_args!("Err({error:?})"),
            hint,
        )
    })
}

/// Waits for `queue.join()`, failing the test (instead of hanging) if it never returns.
async fn join(queue: &WorkQueue, hint: &str) {
    completes_within(PATIENCE, "join()", hint, queue.join()).await;
}

// ---------------------------------------------------------------------------------------------
// Stage 1: a fixed pool of workers, push and join
// ---------------------------------------------------------------------------------------------

#[kata_harness::test]
async fn stage1_zero_concurrency_is_an_error() {
    let error = WorkQueue::new(0).err();
    check_eq(
        "WorkQueue::new(0)",
        error.clone(),
        Some(WorkQueueError::ZeroConcurrency),
        "a queue without workers would never run anything: return \
         Err(WorkQueueError::ZeroConcurrency) before spawning (stage 1)",
    );
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    if !text.contains("concurrency") {
        fail(
            "the error's message",
            "a message that names the concurrency",
            format_args!("{text:?}"),
            STAGE1,
        );
    }
}

#[rstest]
#[case::more_jobs_than_workers(10, 3)]
#[case::an_exact_number_of_rounds(9, 3)]
#[case::fewer_jobs_than_workers(2, 4)]
#[case::one_worker(5, 1)]
#[case::many_workers(100, 7)]
#[kata_harness::test]
async fn stage1_runs_at_most_concurrency_jobs_and_reaches_it(
    #[case] jobs: usize,
    #[case] concurrency: usize,
) {
    let probe = ConcurrencyProbe::new();
    let start = tokio::time::Instant::now();
    let queue = queue(concurrency, STAGE1);
    check_eq(
        "concurrency()",
        queue.concurrency(),
        concurrency,
        "return the number the queue was made with",
    );
    for _ in 0..jobs {
        queue.push(timed_job(&probe, ms(10)));
    }
    join(&queue, STAGE1).await;

    let limit = concurrency.min(jobs);
    probe.assert_limit(
        limit,
        &format!("{jobs} jobs on {concurrency} worker(s)"),
        "each worker runs one job at a time, and every worker is busy while jobs are waiting \
         (stage 1)",
    );
    check_eq(
        "jobs finished when join() returned",
        probe.finished(),
        jobs,
        "join() waits for every pushed job (stage 1)",
    );
    let rounds = jobs.div_ceil(concurrency) as u64;
    assert_elapsed(
        &format!("{jobs} jobs of 10 ms on {concurrency} worker(s)"),
        start.elapsed(),
        ms(10 * rounds),
        Duration::ZERO,
        "full rounds of `concurrency` jobs at once: ceil(jobs / concurrency) x 10 ms (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_jobs_start_in_push_order() {
    let timeline = Timeline::start();
    let queue = queue(2, STAGE1);
    // Job lengths chosen so each start time is distinct from a wrong order's.
    for (index, length) in [30, 10, 20, 10, 10].into_iter().enumerate() {
        let timeline = timeline.clone();
        queue.push(async move {
            timeline.mark(format!("start {index}"));
            tokio::time::sleep(ms(length)).await;
        });
    }
    join(&queue, STAGE1).await;

    check_eq(
        "the order jobs started in",
        timeline.labels(),
        (0..5).map(|i| format!("start {i}")).collect(),
        "workers take jobs from the front of one queue: first pushed, first started (stage 1)",
    );
    let starts = timeline.instants();
    // 2 workers: jobs 0 and 1 at once; job 2 when job 1 ends (10 ms); jobs 3 and 4 when jobs 0
    // and 2 both end (30 ms).
    assert_schedule(
        "job start times on 2 workers",
        &starts,
        &[ms(0), ms(0), ms(10), ms(30), ms(30)],
        "a worker takes the next job as soon as its previous one ends (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_uses_a_fixed_pool_of_workers_not_a_task_per_job() {
    let baseline = TaskBaseline::capture();
    let probe = ConcurrencyProbe::new();
    let queue = queue(3, STAGE1);
    for _ in 0..100 {
        queue.push(timed_job(&probe, ms(10)));
    }
    settle().await;
    let tasks = alive_tasks() - baseline.alive();
    if tasks > 3 {
        fail(
            "tokio tasks alive with 100 jobs queued on 3 workers",
            "at most 3: the workers",
            format_args!("{tasks}"),
            "spawn the workers once in new(); push() only puts a job in the queue, it does not \
             spawn (stage 1)",
        );
    }
    join(&queue, STAGE1).await;
    probe.assert_limit(3, "100 jobs on 3 workers", STAGE1);
}

#[kata_harness::test]
async fn stage1_join_waits_for_everything_pushed_before_it() {
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    for length in [5, 50, 20] {
        queue.push(timed_job(&probe, ms(length)));
    }
    join(&queue, STAGE1).await;
    check_eq(
        "jobs finished when join() returned",
        probe.finished(),
        3,
        "join() waits until no job is queued *or running* (stage 1)",
    );
    // 2 workers: 5 ms and 50 ms at once, the 20 ms job from 5 ms to 25 ms; the last ends at 50.
    assert_elapsed(
        "join() after jobs of 5, 50 and 20 ms on 2 workers",
        start.elapsed(),
        ms(50),
        Duration::ZERO,
        "join() returns as soon as the last job ends, not later (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_the_queue_is_usable_again_after_join() {
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    join(
        &queue,
        "join() on a queue with no jobs returns at once (stage 1)",
    )
    .await;
    assert_elapsed(
        "join() with nothing pushed",
        start.elapsed(),
        Duration::ZERO,
        Duration::ZERO,
        "nothing to wait for: return at once (stage 1)",
    );
    for round in 1..=3 {
        for _ in 0..4 {
            queue.push(timed_job(&probe, ms(10)));
        }
        join(&queue, STAGE1).await;
        check_eq(
            &format!("jobs finished after join() number {round}"),
            probe.finished(),
            4 * round,
            "after join() the workers are still there: later pushes run too (stage 1)",
        );
    }
    // Three rounds of 4 jobs on 2 workers: 20 ms each.
    assert_elapsed(
        "three rounds of push + join",
        start.elapsed(),
        ms(60),
        Duration::ZERO,
        STAGE1,
    );
}

#[kata_harness::test]
async fn stage1_a_panicking_job_does_not_kill_its_worker() {
    let start = tokio::time::Instant::now();
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE1);
    queue.push(async { panic!("a job that fails") });
    queue.push(async { panic!("another job that fails") });
    for _ in 0..4 {
        queue.push(timed_job(&probe, ms(10)));
    }
    join(
        &queue,
        "a panicking job still counts as done, or join() waits for it forever (stage 1)",
    )
    .await;
    probe.assert_limit(
        2,
        "4 jobs on 2 workers after two panics",
        "catch the panic around each job (futures::FutureExt::catch_unwind), so the worker \
         lives on to run the next one (stage 1)",
    );
    assert_elapsed(
        "4 jobs of 10 ms on 2 workers after two panics",
        start.elapsed(),
        ms(20),
        Duration::ZERO,
        STAGE1,
    );
}

#[kata_harness::test]
async fn stage1_dropping_an_idle_queue_stops_its_workers() {
    let baseline = TaskBaseline::capture();
    let queue = queue(4, STAGE1);
    settle().await;
    drop(queue);
    baseline
        .assert_back(
            Duration::ZERO,
            "tokio tasks after dropping a queue of 4 workers",
            "the queue owns its workers: when it is dropped they must end, for example by \
             keeping them in a tokio::task::JoinSet, which aborts its tasks on drop (stage 1)",
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
        let job = timed_job(&probe, Duration::from_secs(1));
        queue.push(async move {
            let _token = token;
            job.await;
        });
    }
    settle().await;
    check_eq("jobs running", probe.current(), 2, STAGE1);
    drop(queue);
    baseline
        .assert_back(
            Duration::ZERO,
            "tokio tasks after dropping a queue with jobs running and queued",
            "dropping the queue stops its workers at once, even mid-job (stage 1)",
        )
        .await;
    for (index, drop_probe) in drop_probes.iter().enumerate() {
        drop_probe.assert_dropped(
            &format!("job {index} after its queue was dropped"),
            "running jobs are cancelled and queued jobs are dropped with the queue, not kept \
             somewhere alive (stage 1)",
        );
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    check_eq(
        "jobs ever started",
        probe.started(),
        2,
        "queued jobs must not start after their queue is gone (stage 1)",
    );
}

#[kata_harness::test]
async fn stage1_classifies_0_to_100_000_exactly() {
    let parity = completes_within(PATIENCE, "classify", STAGE1, classify(0..100_000, 3))
        .await
        .unwrap_or_else(|error| {
            fail(
                "classify(0..100_000, 3)",
                "Ok(..)",
                format_args!("{error:?}"),
                STAGE1,
            )
        });
    let evens: Vec<u64> = (0..100_000).step_by(2).collect();
    let odds: Vec<u64> = (1..100_000).step_by(2).collect();
    if parity != (Parity { evens, odds }) {
        fail(
            "classify(0..100_000, 3)",
            "evens 0, 2, .., 99998 and odds 1, 3, .., 99999 (50,000 each, in order)",
            format_args!(
                "{} evens starting {:?}, {} odds starting {:?}",
                parity.evens.len(),
                &parity.evens[..parity.evens.len().min(5)],
                parity.odds.len(),
                &parity.odds[..parity.odds.len().min(5)],
            ),
            "every number exactly once, in the list its parity says, in input order (stage 1)",
        );
    }
}

#[kata_harness::test]
async fn stage1_classify_keeps_input_order() {
    // A permutation of 0..1000 (7 is coprime with 1000), so input order is not sorted order.
    let numbers: Vec<u64> = (0..1000).map(|i| (i * 7 + 3) % 1000).collect();
    let parity = classify(numbers.clone(), 4).await;
    let expected = Parity {
        evens: numbers.iter().copied().filter(|n| n % 2 == 0).collect(),
        odds: numbers.iter().copied().filter(|n| n % 2 == 1).collect(),
    };
    check_eq(
        "classify of a shuffled list",
        parity,
        Ok(expected),
        "keep each list in the order the numbers came in, not sorted and not in the order \
         workers finished (stage 1)",
    );
    check_eq(
        "classify with concurrency 0",
        classify(0..10, 0).await,
        Err(WorkQueueError::ZeroConcurrency),
        STAGE1,
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: handles
// ---------------------------------------------------------------------------------------------

#[kata_harness::test]
async fn stage2_each_handle_gets_its_own_result() {
    let timeline = Timeline::start();
    let queue = queue(3, STAGE2);
    // Later jobs are shorter, so they finish first: results must still match their handles.
    let lengths = [60, 50, 40, 35, 5, 1];
    let handles: Vec<_> = (0..6u64)
        .map(|i| {
            let timeline = timeline.clone();
            let length = ms(lengths[i as usize]);
            queue.submit(async move {
                tokio::time::sleep(length).await;
                timeline.mark(format!("done {i}"));
                i * 100
            })
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(completes_within(PATIENCE, "a job's handle", STAGE2, handle).await);
    }
    check_eq(
        "results of 6 jobs, awaited in submission order",
        results,
        (0..6u64).map(|i| Ok(i * 100)).collect(),
        "each handle receives its own job's output (a oneshot channel per job does it) (stage 2)",
    );
    // 3 workers: jobs 0-2 at once; job 3 at 40 ms (ends at 75), job 4 at 50 (ends at 55),
    // job 5 at 55 (ends at 56); job 0 ends at 60.
    check_eq(
        "the order jobs finished in",
        timeline.labels(),
        ["done 2", "done 1", "done 4", "done 5", "done 0", "done 3"]
            .map(String::from)
            .to_vec(),
        STAGE2,
    );
}

#[kata_harness::test]
async fn stage2_dropping_a_handle_discards_the_result_but_the_job_runs() {
    let finished = Arc::new(Mutex::new(Vec::new()));
    let queue = queue(2, STAGE2);
    for i in 0..4 {
        let finished = finished.clone();
        let handle = queue.submit(async move {
            tokio::time::sleep(ms(10)).await;
            finished.lock().unwrap().push(i);
            i
        });
        drop(handle);
    }
    join(
        &queue,
        "join() waits for submitted jobs too, held or not (stage 2)",
    )
    .await;
    check_eq(
        "jobs that ran to the end, their handles dropped at once",
        finished.lock().unwrap().clone(),
        vec![0, 1, 2, 3],
        "dropping a handle only means nobody wants the result: the job still runs, and sending \
         its result to nobody must not fail or panic (stage 2)",
    );
}

#[rstest]
#[case::with_a_literal_message("boom", "boom")]
#[case::with_a_formatted_message("boom {}", "boom 7")]
#[kata_harness::test]
async fn stage2_a_panicking_job_is_reported_through_its_handle(
    #[case] template: &'static str,
    #[case] message: &'static str,
) {
    let probe = ConcurrencyProbe::new();
    let queue = queue(2, STAGE2);
    let before = queue.submit(async { 1 });
    let failing = queue.submit(async move { explode(template) });
    let after: Vec<_> = (0..4)
        .map(|i| {
            queue.submit(probe.track(async move {
                tokio::time::sleep(ms(10)).await;
                i
            }))
        })
        .collect();

    let outcome = completes_within(PATIENCE, "the panicking job's handle", STAGE2, failing).await;
    check_eq(
        &format!("the handle of a job that called panic!({template:?})"),
        outcome,
        Err::<u32, _>(JobError::Panicked {
            message: message.to_owned(),
        }),
        "catch the panic and send Err(JobError::Panicked) with its message: the payload is a \
         &str for a literal and a String for a formatted message (stage 2)",
    );
    check_eq("the job before it", before.await, Ok(1), STAGE2);
    for (i, handle) in after.into_iter().enumerate() {
        check_eq(&format!("job {i} after it"), handle.await, Ok(i), STAGE2);
    }
    probe.assert_limit(2, "jobs after the panic", STAGE2);
    join(&queue, STAGE2).await;
}

#[kata_harness::test]
async fn stage2_handles_of_jobs_dropped_with_their_queue_say_cancelled() {
    let queue = queue(1, STAGE2);
    let running = queue.submit(tokio::time::sleep(Duration::from_secs(1)));
    let queued = queue.submit(async { 5 });
    settle().await;
    drop(queue);
    check_eq(
        "the handle of the job running when the queue was dropped",
        completes_within(PATIENCE, "a cancelled job's handle", STAGE2, running).await,
        Err(JobError::Cancelled),
        "when the job is dropped before it sends a result, its handle resolves to \
         Err(JobError::Cancelled) instead of waiting forever (stage 2)",
    );
    check_eq(
        "the handle of the job still queued when the queue was dropped",
        completes_within(PATIENCE, "a cancelled job's handle", STAGE2, queued).await,
        Err(JobError::Cancelled),
        STAGE2,
    );
}
