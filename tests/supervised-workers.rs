//! The supervised-workers suite, run against both `exercises/supervised-workers` and
//! `solutions/supervised-workers`: the kata's precise specification.
//!
//! Every test starts a pool, feeds it from producer tasks through the sender `start` returned,
//! and logs each send (when it went through) and each attempt of the work (when it started, on
//! which consumer, how it ended). Jobs are timers on the paused clock, so every instant below is
//! exact. Stage by stage the tests reject the usual wrong answers: an unbounded or oversized
//! queue, one consumer at a time (a lock held across the work) or a task per item, items out of
//! order, consumers aborted or stopped before the queue is drained, a pool that returns while its
//! queue is open or never returns because it keeps a sender, code that polls while it waits; a
//! monitor that looks on a timer instead of being woken by the failure, a failure that names the
//! wrong consumer or item, work left running after the pool stopped, a panic's message lost; a
//! failed item retried under at most once or lost under at least once, a backoff that does not
//! double, is not capped, is shared by every consumer, never starts again, or is slept in the
//! supervisor's loop, a replacement that runs beside the consumer it replaces, a retry forgotten
//! once the queue closed; a restart budget counted for ever, on fixed windows, from the wrong
//! instant or off by one, and a budget that runs out without stopping everything at once.

kata_harness::install_allocator!();

#[path = "supervised-workers/support.rs"]
mod support;

use std::time::Duration;

use kata_harness::leaks::TaskBaseline;
use kata_harness::report::{check, check_eq, check_seq, fail};
use kata_harness::timing::{At, assert_elapsed, assert_schedule};
use kata_harness::{Hint, Stage, ms};
use supervised_workers::{
    Cause, ConfigError, Delivery, Failure, Policy, Pool, PoolError, Report, Restart,
};
use support::{
    Boom, How, Job, Log, Run, attempts, attempts_of, events, failing, flaky, job, panicking, parks,
    producers, run, send, sorted, start, until,
};

const STAGE1: Stage = Stage::new("supervised-workers", 1);
const STAGE2: Stage = Stage::new("supervised-workers", 2);
const STAGE3: Stage = Stage::new("supervised-workers", 3);
const STAGE4: Stage = Stage::new("supervised-workers", 4);

/// `Pool::new(consumers, capacity)`, which the test expects to work.
fn pool(consumers: usize, capacity: usize, stage: Stage) -> Pool {
    Pool::new(consumers, capacity).unwrap_or_else(|error| {
        fail(
            &format!("Pool::new({consumers}, {capacity})"),
            format_args!("Err({error:?})"),
            "Ok(a pool)",
            &stage.hint("only 0 consumers or a capacity of 0 are errors"),
        )
    })
}

/// Three producers, a, b and c, of three 100 ms jobs each.
fn three_by_three() -> Vec<Vec<Job>> {
    vec![
        vec![job("a1", 100), job("a2", 100), job("a3", 100)],
        vec![job("b1", 100), job("b2", 100), job("b3", 100)],
        vec![job("c1", 100), job("c2", 100), job("c3", 100)],
    ]
}

/// The hint when the supervisor never returned from a run whose queue closes.
fn never_returned(stage: Stage) -> Hint {
    stage.hint(
        "the supervisor must return once the producers have dropped their senders and the \
         consumers have drained the queue: then recv() returns None, each consumer returns, and \
         join_next() returns None; a pool that keeps a Sender of its own never sees its queue \
         close",
    )
}

/// A finished run with nothing lost and `restarts` restarts.
fn finished(restarts: usize) -> Result<Report<Job, Boom>, PoolError<Job, Boom>> {
    Ok(Report {
        restarts,
        lost: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Stage 1: a bounded queue, long-lived consumers, and closing the queue to finish.

#[kata_harness::test]
#[case::no_consumers(0, 1, ConfigError::NoConsumers, "consumer")]
#[case::no_room_in_the_queue(3, 0, ConfigError::ZeroCapacity, "capacity")]
async fn stage1_zero_consumers_or_zero_capacity_is_a_typed_error(
    #[case] consumers: usize,
    #[case] capacity: usize,
    #[case] expected: ConfigError,
    #[case] word: &str,
) {
    let error = Pool::new(consumers, capacity).err();
    check_eq(
        &format!("Pool::new({consumers}, {capacity})"),
        error,
        Some(expected),
        &STAGE1.hint(
            "check the arguments before anything else: no consumer would leave producers waiting \
             for ever, and tokio's mpsc::channel(0) panics; return the matching ConfigError",
        ),
    );
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    check(
        "the error's message",
        text.contains(word),
        format_args!("{text:?}"),
        format_args!("a message that mentions the {word}"),
        &STAGE1.hint("keep the #[error(..)] texts of the given ConfigError"),
    );
}

// 3 producers (a, b, c) x 3 jobs of 100 ms, 3 consumers, a queue of capacity 1:
//
//                  0 ms           100 ms         200 ms         300 ms
//                  |--------------|--------------|--------------|
//   started        a1 a2 b1       c1 a3 b2       c2 b3 c3       all 9 done: Ok, at 300 ms
//   sends through  a1 a2 b1 c1    a3 b2 c2       b3 c3          (c1 waits in the queue, then c2)

#[kata_harness::test]
async fn stage1_three_producers_and_three_consumers_finish_at_300ms() {
    let hint = never_returned(STAGE1);
    let run = run(pool(3, 1, STAGE1), producers(three_by_three()), &hint).await;
    check_eq(
        "what the supervisor returned",
        run.outcome,
        finished(0),
        &STAGE1.hint("no job fails here: Ok(Report { restarts: 0, lost: [] })"),
    );
    run.log.probe.assert_limit(
        "9 jobs on 3 consumers",
        3,
        &STAGE1.hint(
            "each of the 3 consumers works on one item at a time, and all 3 work at once: more \
             means a task per item, fewer means a consumer keeps the queue's lock while it works \
             (take the item in a statement of its own, so the guard is dropped before the work)",
        ),
    );
    assert_schedule(
        "when the 9 jobs started",
        &run.log.start_times(),
        &[0, 0, 0, 100, 100, 100, 200, 200, 200].map(ms),
        &STAGE1
            .hint("a consumer takes the next item the moment its work ends: three rounds of three"),
    );
    check_eq(
        "jobs done",
        run.log.succeeded().len(),
        9,
        &STAGE1.hint("every item sent is worked on exactly once"),
    );
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(300),
        &STAGE1.hint(
            "the producers are done at 200 ms and the queue closes, but the last three items are \
             still being worked on: return when the consumers have finished them, at 300 ms",
        ),
    );
    check_eq(
        "the consumer numbers the work was called with",
        run.log.slots(),
        vec![0, 1, 2],
        &STAGE1.hint("number the consumers 0, 1, 2 and pass that number to the work"),
    );
}

// A producer's send returns when there is room: an item waits in the queue until a consumer
// takes it, so the k-th send goes through the moment item k - capacity is taken (all at 0 ms
// while there is room). 9 jobs of 100 ms, from producers a, b, c.

#[kata_harness::test]
#[case::three_consumers_one_place(3, 1, [0, 0, 0, 0, 100, 100, 100, 200, 200], 300)]
#[case::three_consumers_two_places(3, 2, [0, 0, 0, 0, 0, 100, 100, 100, 200], 300)]
#[case::two_consumers_one_place(2, 1, [0, 0, 0, 100, 100, 200, 200, 300, 300], 500)]
#[case::one_consumer_three_places(1, 3, [0, 0, 0, 0, 100, 200, 300, 400, 500], 900)]
async fn stage1_producers_wait_for_room_in_the_queue(
    #[case] consumers: usize,
    #[case] capacity: usize,
    #[case] sends: [u64; 9],
    #[case] end: u64,
) {
    let hint = never_returned(STAGE1);
    let run = run(
        pool(consumers, capacity, STAGE1),
        producers(three_by_three()),
        &hint,
    )
    .await;
    let what = format!("{consumers} consumer(s), a queue of capacity {capacity}");
    let (peak, at) = run.log.queue_peak();
    check(
        &format!("{what}: the most items waiting in the queue"),
        peak <= capacity,
        format_args!("{peak}, at {:?}", At(at)),
        format_args!("at most {capacity}"),
        &STAGE1.hint(
            "make the queue a bounded channel of exactly `capacity` places \
             (tokio::sync::mpsc::channel(capacity)): an unbounded or larger queue lets producers \
             run ahead of the consumers",
        ),
    );
    let sent: Vec<_> = run.log.sent().into_iter().map(|(at, _)| at).collect();
    assert_schedule(
        &format!("{what}: when the producers' sends went through"),
        &sent,
        &sends.map(ms),
        &STAGE1.hint(
            "a send waits while the queue is full and goes through the moment a consumer takes \
             an item: sends early means the queue holds too much (an item held in a hand-off \
             task counts too), sends late means consumers take items late",
        ),
    );
    assert_elapsed(
        &format!("{what}: when the supervisor returned"),
        run.at,
        ms(end),
        &STAGE1.hint("every consumer works at once, one item at a time"),
    );
}

// 3 producers of 3 jobs of different lengths, 3 consumers, capacity 1. Whoever is free takes the
// item at the front of the queue: jobs start in the order their sends went through.
//
//   sends through   a1 a2 b1 c1 at 0 ms, a3 at 60, b2 at 90, c2 at 150, b3 at 170, c3 at 190
//   jobs started    a1 a2 b1 at 0 ms, c1 at 60 (a2 done), a3 at 90 (b1 done), b2 at 150,
//                   c2 at 170, b3 at 190, c3 at 250; Ok at 300 ms

#[kata_harness::test]
async fn stage1_items_are_taken_in_the_order_they_were_queued() {
    let hint = never_returned(STAGE1);
    let jobs = vec![
        vec![job("a1", 150), job("a2", 60), job("a3", 100)],
        vec![job("b1", 90), job("b2", 120), job("b3", 70)],
        vec![job("c1", 110), job("c2", 80), job("c3", 50)],
    ];
    let run = run(pool(3, 1, STAGE1), producers(jobs), &hint).await;
    let sent: Vec<String> = run
        .log
        .sent()
        .into_iter()
        .map(|(at, name)| format!("{name} at {:?}", At(at)))
        .collect();
    check_seq(
        "sends, in the order they went through",
        &sent,
        &attempts(&[
            ("a1", 0),
            ("a2", 0),
            ("b1", 0),
            ("c1", 0),
            ("a3", 60),
            ("b2", 90),
            ("c2", 150),
            ("b3", 170),
            ("c3", 190),
        ]),
        &STAGE1.hint(
            "the producers share one bounded queue, and its waiting senders get room in the \
             order they came, the moment a consumer takes an item",
        ),
    );
    check_seq(
        "jobs, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[
            ("a1", 0),
            ("a2", 0),
            ("b1", 0),
            ("c1", 60),
            ("a3", 90),
            ("b2", 150),
            ("c2", 170),
            ("b3", 190),
            ("c3", 250),
        ]),
        &STAGE1.hint(
            "whichever consumer is free takes the item at the front of the one queue: first in, \
             first out, at once (an item dealt to a consumer that is still busy waits while \
             another is idle)",
        ),
    );
    assert_elapsed("when the supervisor returned", run.at, ms(300), &hint);
}

// 3 consumers, capacity 2, one producer sends a..e (100, 120, 140, 160, 180 ms) and is done at
// 0 ms: the queue is closed from the start, with d and e still in it.
//
//   10 ms a column   0         100       200       300 ms
//                    |         |         |         |
//   consumer A       aaaaaaaaaadddddddddddddddd      ends at 260
//   consumer B       bbbbbbbbbbbbeeeeeeeeeeeeeeeeee  ends at 300: Ok
//   consumer C       cccccccccccccc                  closed and empty: ends at 140

#[kata_harness::test]
async fn stage1_consumers_drain_the_queue_after_it_closes() {
    let hint = never_returned(STAGE1);
    let jobs = vec![vec![
        job("a", 100),
        job("b", 120),
        job("c", 140),
        job("d", 160),
        job("e", 180),
    ]];
    let run = run(pool(3, 2, STAGE1), producers(jobs), &hint).await;
    check_eq(
        "jobs cancelled",
        run.log.dropped(),
        vec![],
        &STAGE1.hint(
            "nothing is aborted when the queue closes: each consumer finishes its item, takes \
             the next while there is one, and returns when recv() says the queue is closed and \
             empty; the supervisor waits for every consumer, not the first one to end",
        ),
    );
    check_eq(
        "jobs done, in the order they finished",
        run.log.succeeded(),
        ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        &STAGE1.hint(
            "a closed queue still hands out what it holds: stop on recv() returning None, not \
             when the queue is closed (d and e were queued before it closed)",
        ),
    );
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(300),
        &STAGE1.hint("return when the last consumer has ended, as e is done at 300 ms"),
    );
}

// One producer: x at 0 ms, then nothing until y at 20 s, and it is done at 40 s. The queue is
// open and idle for most of the run, and nobody needs to look at a clock meanwhile.
//
//   0 ms   100 ms                20 000 ms  20 100 ms                  40 000 ms
//   |------|------- idle --------|----------|---------- idle ----------|
//   x      x done                y          y done                     closed: Ok

#[kata_harness::test]
async fn stage1_the_pool_runs_until_the_queue_closes_and_sleeps_meanwhile() {
    let hint = never_returned(STAGE1);
    let before = parks();
    let producer = vec![
        send(job("x", 100)),
        until(20_000),
        send(job("y", 100)),
        until(40_000),
    ];
    let run = run(pool(2, 1, STAGE1), vec![producer], &hint).await;
    assert_schedule(
        "when x and y started",
        &run.log.start_times(),
        &[ms(0), ms(20_000)],
        &STAGE1.hint("an idle consumer waits on the queue and takes an item the moment it comes"),
    );
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(40_000),
        &STAGE1.hint(
            "an empty queue is not a closed one: the pool runs until the last sender is dropped \
             (here at 40 s), however long the queue stays idle",
        ),
    );
    let woke = parks() - before;
    check(
        "times the runtime woke up during 40 s with 2 jobs",
        woke <= 30,
        woke,
        "at most 30: a few per event, not one per tick of a timer",
        &STAGE1.hint(
            "nothing may poll: consumers wait in recv().await, the supervisor in join_next(); a \
             loop that sleeps and then looks (try_recv, try_join_next, is_finished) wakes the \
             runtime over and over and notices everything late",
        ),
    );
}

#[kata_harness::test]
async fn stage1_no_task_is_left_when_the_pool_returns() {
    let hint = never_returned(STAGE1);
    let baseline = TaskBaseline::capture();
    let run = run(pool(3, 1, STAGE1), producers(three_by_three()), &hint).await;
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(300),
        &STAGE1.hint("return when the last consumer has ended"),
    );
    baseline
        .assert_back(
            "the pool's tasks, once the supervisor returned",
            Duration::ZERO,
            &STAGE1.hint(
                "every task the pool starts must have ended when the supervisor returns: keep \
                 the consumers in a JoinSet and return only when join_next() says it is empty",
            ),
        )
        .await;
}

// The supervisor's handle is dropped at 150 ms, while c1, a3 and b2 are being worked on and
// b3 and c3 wait to be sent: everything stops at 150 ms.

#[kata_harness::test]
async fn stage1_dropping_the_supervisor_stops_the_pool() {
    let baseline = TaskBaseline::capture();
    let (log, supervisor) = start(pool(3, 1, STAGE1), producers(three_by_three()));
    let _ = tokio::time::timeout(ms(150), supervisor).await;
    let hint = STAGE1.hint(
        "the consumers belong to the supervisor's task: spawn them into a JoinSet that task \
         owns, so that aborting it (which dropping the Supervisor does) drops them too; a \
         consumer spawned with tokio::spawn runs on alone",
    );
    tokio::time::sleep(ms(200)).await;
    check_eq(
        "jobs cancelled (in any order), and when",
        sorted(log.dropped()),
        events(&[(150, "a3"), (150, "b2"), (150, "c1")]),
        &hint,
    );
    check_eq(
        "sends refused (in any order), and when",
        sorted(log.refused()),
        events(&[(150, "b3"), (150, "c3")]),
        &STAGE1.hint(
            "once the consumers are gone the queue's receiver is dropped, and a producer's send \
             fails instead of waiting for ever",
        ),
    );
    baseline
        .assert_back(
            "the pool's tasks, after the supervisor was dropped",
            Duration::ZERO,
            &hint,
        )
        .await;
}

// ---------------------------------------------------------------------------------------------
// Stage 2: fail fast: the first failure stops everything, at the instant it happens.
//
// 3 consumers, capacity 1; one producer sends a..g; d fails 50 ms into its work:
//
//   10 ms a column   0         100       200 ms
//                    |         |         |
//   consumer A       aaaaaaaaaaaaaaa         a dropped at 150 (it needed 170)
//   consumer B       bbbbbbbbbbddddd         d fails at 150: Err(Failed(consumer B, d))
//   consumer C       cccccccccccccee         e dropped at 150
//   queue            d from 0 ms, e from 100, f from 130 (dropped with the queue); g refused

fn fail_at_150ms() -> Vec<Vec<Job>> {
    vec![vec![
        job("a", 170),
        job("b", 100),
        job("c", 130),
        failing("d", 50),
        job("e", 100),
        job("f", 100),
        job("g", 100),
    ]]
}

/// The failure the pool should report for `job`, on the consumer the work saw it on.
fn failure_of(log: &Log, job: Job) -> Failure<Job, Boom> {
    let cause = Cause::Error(Boom(job.name));
    Failure {
        worker: log.worker(job.name).unwrap_or(usize::MAX),
        item: job,
        cause,
    }
}

#[kata_harness::test]
async fn stage2_a_failure_stops_the_pool_at_that_instant_naming_consumer_and_item() {
    let hint = STAGE2.hint(
        "the supervisor must return at the first failure: wait on the consumers with \
         JoinSet::join_next() and return the first Err",
    );
    let run = run(pool(3, 1, STAGE2), producers(fail_at_150ms()), &hint).await;
    let expected = failure_of(&run.log, failing("d", 50));
    let text = run.outcome.as_ref().err().map(ToString::to_string);
    check_eq(
        "what the supervisor returned",
        run.outcome,
        Err(PoolError::Failed(expected.clone())),
        &STAGE2.hint(
            "a consumer whose work returns Err ends, returning a Failure with its own number, \
             the item (cloned before the work took it) and Cause::Error(the error); under \
             FailFast the supervisor returns it as PoolError::Failed",
        ),
    );
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(150),
        &STAGE2.hint(
            "react the instant the consumer ends: join_next() wakes the supervisor then; a \
             monitor that looks every so often (sleep, then try_join_next or is_finished) \
             returns at its next look, one that waits for the others returns once the queue is \
             drained, and one that awaits the consumers one by one waits for the first",
        ),
    );
    let text = text.unwrap_or_default();
    let worker = format!("consumer {}", expected.worker);
    check(
        "the error's message",
        text.contains(&worker) && text.contains("d went wrong"),
        format_args!("{text:?}"),
        format_args!("a message that names {worker}, the item d and the cause, \"d went wrong\""),
        &STAGE2.hint("keep the #[error(..)] texts of the given PoolError and Failure"),
    );
}

#[kata_harness::test]
async fn stage2_everything_else_stops_at_the_failure() {
    let hint = STAGE2.hint("the supervisor must return at the first failure");
    let baseline = TaskBaseline::capture();
    let run = run(pool(3, 1, STAGE2), producers(fail_at_150ms()), &hint).await;
    assert_elapsed("when the supervisor returned", run.at, ms(150), &hint);
    baseline
        .assert_back(
            "the pool's tasks, once the supervisor returned",
            Duration::ZERO,
            &STAGE2.hint(
                "returning from the supervisor's task drops its JoinSet, which aborts every \
                 consumer: none may outlive the failure",
            ),
        )
        .await;
    tokio::time::sleep(ms(1000)).await;
    let hint = STAGE2.hint(
        "at the failure, stop the other consumers at once (dropping the JoinSet aborts them, \
         and their work is dropped at its next .await): no work goes on, nothing new starts",
    );
    check_eq(
        "jobs cancelled (in any order), and when",
        sorted(run.log.dropped()),
        events(&[(150, "a"), (150, "e")]),
        &hint,
    );
    check_eq(
        "jobs that ever started",
        run.log.started(),
        ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        &hint,
    );
    check_eq(
        "sends refused, and when",
        run.log.refused(),
        vec![(ms(150), "g".to_owned())],
        &STAGE2.hint(
            "when the consumers are gone the queue's receiver must go too, so a producer \
             waiting for room is told at once (its send fails) instead of waiting for ever: \
             keep no receiver alive anywhere else",
        ),
    );
}

#[kata_harness::test]
#[case::early(7)]
#[case::in_the_middle(150)]
#[case::late(2_345)]
async fn stage2_a_failure_is_seen_the_instant_it_happens(#[case] after: u64) {
    let hint = STAGE2.hint("the supervisor must return at the first failure");
    let jobs = vec![vec![job("w", 5_000), failing("x", after)]];
    let run = run(pool(2, 1, STAGE2), producers(jobs), &hint).await;
    check_eq(
        "what the supervisor returned",
        run.outcome.clone().err(),
        Some(PoolError::Failed(failure_of(&run.log, failing("x", after)))),
        &STAGE2.hint("x fails: return PoolError::Failed naming its consumer and x"),
    );
    assert_elapsed(
        &format!("when the supervisor returned (x fails after {after} ms)"),
        run.at,
        ms(after),
        &STAGE2.hint(
            "be woken by the failure, do not look for it: join_next() returns the instant any \
             consumer ends, whichever it is; a timer-driven check sees it only at its next tick, \
             and awaiting the consumers in turn only once the first (busy with w) has ended",
        ),
    );
}

// 3 consumers, capacity 1: x, y and z all fail at 100 ms, w waits in the queue and v's sender
// for room. Nobody is left to take an item: the supervisor must still return, at 100 ms.

#[kata_harness::test]
async fn stage2_every_consumer_failing_at_once_still_returns_at_once() {
    let hint = STAGE2.hint(
        "with every consumer gone the queue stays full and the producer waits: the supervisor \
         must not wait for the producers or the queue, only for the consumers",
    );
    let jobs = vec![vec![
        failing("x", 100),
        failing("y", 100),
        failing("z", 100),
        job("w", 100),
        job("v", 100),
    ]];
    let run = run(pool(3, 1, STAGE2), producers(jobs), &hint).await;
    assert_elapsed("when the supervisor returned", run.at, ms(100), &hint);
    let failure = match &run.outcome {
        Err(PoolError::Failed(failure)) => Some(failure.clone()),
        _ => None,
    };
    let expected = failure
        .as_ref()
        .filter(|failure| ["x", "y", "z"].contains(&failure.item.name))
        .map(|failure| failure_of(&run.log, failure.item.clone()));
    check(
        "what the supervisor returned",
        expected.is_some() && failure == expected,
        format_args!("{:?}", run.outcome),
        "Err(Failed(..)) naming x, y or z and the consumer it failed on",
        &STAGE2.hint("report whichever of the three failures the supervisor saw first"),
    );
    check_eq(
        "sends refused, and when",
        run.log.refused(),
        vec![(ms(100), "v".to_owned())],
        &STAGE2.hint(
            "the producer waiting for room is released when the queue's receiver goes, with \
             the consumers, at 100 ms",
        ),
    );
}

#[kata_harness::test]
#[case::a_str_payload(How::PanicStr)]
#[case::a_string_payload(How::PanicString)]
async fn stage2_a_panic_is_a_failure_with_its_message(#[case] how: How) {
    let hint = STAGE2.hint("a panicking consumer is a failed consumer: return at the panic");
    let jobs = vec![vec![panicking("P", 60, how), job("q", 100)]];
    let run = run(pool(2, 1, STAGE2), producers(jobs), &hint).await;
    check_eq(
        "what the supervisor returned",
        run.outcome.clone().err(),
        Some(PoolError::Failed(Failure {
            worker: run.log.worker("P").unwrap_or(usize::MAX),
            item: panicking("P", 60, how),
            cause: Cause::Panicked("P panicked".to_owned()),
        })),
        &STAGE2.hint(
            "catch the panic around the work (futures::FutureExt::catch_unwind, with \
             std::panic::AssertUnwindSafe) and turn it into Cause::Panicked(its message): the \
             payload is a &str for panic!(\"literal\") and a String for a formatted message, so \
             downcast to both",
        ),
    );
    assert_elapsed("when the supervisor returned", run.at, ms(60), &hint);
    check_eq(
        "jobs cancelled, and when",
        run.log
            .dropped()
            .into_iter()
            .filter(|(_, k)| k == "q")
            .collect::<Vec<_>>(),
        vec![(ms(60), "q".to_owned())],
        &STAGE2.hint("a panic stops the pool like any failure: q is dropped at 60 ms"),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 3: restart a failed consumer after a backoff; at most once or at least once.

#[kata_harness::test]
async fn stage3_backoff_doubles_from_the_first_up_to_the_cap() {
    let failures = [0, 1, 2, 3, 4, 5, 6, 33, 40, u32::MAX];
    let default: Vec<u64> = failures
        .iter()
        .map(|&n| Restart::at_least_once().backoff(n).as_millis() as u64)
        .collect();
    check_seq(
        &format!("Restart::at_least_once().backoff(n) in ms, for n in {failures:?}"),
        &default,
        &[0, 100, 200, 400, 400, 400, 400, 400, 400, 400],
        &STAGE3.hint(
            "first_backoff x 2^(n - 1), capped at max_backoff, and no wait for n = 0; compute \
             the power without overflowing (1_u32.checked_shl, Duration::saturating_mul): n \
             may be large",
        ),
    );
    let custom = Restart {
        first_backoff: ms(30),
        max_backoff: ms(1000),
        ..Restart::at_most_once()
    };
    let custom: Vec<u64> = failures
        .iter()
        .map(|&n| custom.backoff(n).as_millis() as u64)
        .collect();
    check_seq(
        &format!("backoff(n) in ms from 30 ms up to 1000 ms, for n in {failures:?}"),
        &custom,
        &[0, 30, 60, 120, 240, 480, 960, 1000, 1000, 1000],
        &STAGE3.hint("use the Restart's own first_backoff and max_backoff, not the defaults"),
    );
}

fn restart(restart: Restart) -> Policy {
    Policy::Restart(restart)
}

/// 2 consumers, capacity 1; c fails once, 50 ms into its work.
fn c_fails_once() -> Vec<Vec<Job>> {
    vec![vec![
        job("a", 100),
        job("b", 280),
        flaky("c", 50, 1),
        job("d", 100),
        job("e", 100),
    ]]
}

/// Checks that `later` ran on the consumer slot `earlier` ran on.
fn check_same_slot(log: &Log, earlier: &str, later: &str, hint: &Hint) {
    check_eq(
        &format!("the consumer slot of {later}, and of {earlier} before it"),
        log.worker(later),
        log.worker(earlier),
        hint,
    );
}

// At most once: c is given up, and c's replacement takes the next item, d, 100 ms later.
//
//   10 ms a column   0         100       200       300       400 ms
//                    |         |         |         |         |
//   consumer A       aaaaaaaaaaccccc..........dddddddddd       c fails at 150 (lost), d at 250
//   consumer B       bbbbbbbbbbbbbbbbbbbbbbbbbbbbeeeeeeeeee    Ok at 380 ms
//   (a dot is the backoff: 100 ms)

#[kata_harness::test]
async fn stage3_at_most_once_gives_the_item_up_and_the_replacement_takes_the_next() {
    let hint = never_returned(STAGE3);
    let policy = restart(Restart::at_most_once());
    let run = run(
        pool(2, 1, STAGE3).policy(policy),
        producers(c_fails_once()),
        &hint,
    )
    .await;
    check_seq(
        "attempts, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[("a", 0), ("b", 0), ("c", 100), ("d", 250), ("e", 280)]),
        &STAGE3.hint(
            "at most once: the failed item is not tried again; its consumer is replaced \
             first_backoff (100 ms) after the failure, and the replacement takes the next item \
             from the queue",
        ),
    );
    check_same_slot(
        &run.log,
        "c",
        "d",
        &STAGE3.hint("the replacement takes over the failed consumer's number"),
    );
    let lost = failure_of(&run.log, flaky("c", 50, 1));
    check_eq(
        "what the supervisor returned",
        run.outcome,
        Ok(Report {
            restarts: 1,
            lost: vec![lost],
        }),
        &STAGE3.hint(
            "count the restart, and list the given-up failure (consumer, item, cause) in \
             Report::lost",
        ),
    );
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(380),
        &STAGE3.hint("return when every consumer, the replacement too, has ended"),
    );
}

// At least once: c's replacement tries c again first, 100 ms after the failure.
//
//   10 ms a column   0         100       200       300       400 ms
//                    |         |         |         |         |
//   consumer A       aaaaaaaaaaccccc..........ccccceeeeeeeeee  c fails at 150, c#2 at 250
//   consumer B       bbbbbbbbbbbbbbbbbbbbbbbbbbbbdddddddddd    Ok at 400 ms

#[kata_harness::test]
async fn stage3_at_least_once_retries_the_item_when_the_backoff_ends() {
    let hint = never_returned(STAGE3);
    let policy = restart(Restart::at_least_once());
    let run = run(
        pool(2, 1, STAGE3).policy(policy),
        producers(c_fails_once()),
        &hint,
    )
    .await;
    check_seq(
        "attempts, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[
            ("a", 0),
            ("b", 0),
            ("c", 100),
            ("c#2", 250),
            ("d", 280),
            ("e", 300),
        ]),
        &STAGE3.hint(
            "at least once: hand the failed item to the replacement, which works on it first, \
             when the backoff (100 ms) ends; putting it back at the end of the queue would need \
             a sender, and a pool that keeps a sender never sees its queue close",
        ),
    );
    check_same_slot(
        &run.log,
        "c",
        "c#2",
        &STAGE3.hint("the replacement takes over the failed consumer's number"),
    );
    check_eq(
        "what the supervisor returned",
        run.outcome,
        finished(1),
        &STAGE3.hint("nothing is lost at least once: Report { restarts: 1, lost: [] }"),
    );
    assert_elapsed("when the supervisor returned", run.at, ms(400), &hint);
}

// 1 consumer, at least once, x fails its first 4 attempts (100 ms each), then y:
//
//   50 ms a column   0         500       1000      1500 ms
//                    |         |         |         |
//   consumer A       xx..xx....xx........xx........xxyy   x fails at 100, 300, 600, 1100
//                    attempts at 0, 200, 500, 1000, 1500 (waits of 100, 200, 400, 400 ms)

#[kata_harness::test]
async fn stage3_a_slot_that_keeps_failing_waits_100_200_400_400_ms() {
    let hint = never_returned(STAGE3);
    let policy = restart(Restart {
        max_restarts: 10,
        ..Restart::at_least_once()
    });
    let jobs = vec![vec![flaky("x", 100, 4), job("y", 100)]];
    let run = run(pool(1, 1, STAGE3).policy(policy), producers(jobs), &hint).await;
    check_seq(
        "attempts, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[
            ("x", 0),
            ("x#2", 200),
            ("x#3", 500),
            ("x#4", 1000),
            ("x#5", 1500),
            ("y", 1600),
        ]),
        &STAGE3.hint(
            "count a slot's failures in a row: the n-th waits backoff(n), 100, 200, 400, then \
             400 again (the cap), measured from the failure",
        ),
    );
    check_eq(
        "what the supervisor returned",
        run.outcome,
        finished(4),
        &STAGE3.hint("four failures, four restarts"),
    );
}

// 1 consumer, at least once: x fails once, then y fails once. x#2 succeeded in between, so y's
// failure is the first in a row again: 100 ms, not 200.
//
//   10 ms a column   0         100       200       300       400       500       600 ms
//                    |         |         |         |         |         |         |
//   consumer A       xxxxxxxxxx..........xxxxxxxxxxyyyyyyyyyy..........yyyyyyyyyy
//   x fails at 100, x#2 at 200, y fails at 400, y#2 at 500: Ok at 600 ms

#[kata_harness::test]
async fn stage3_an_item_done_starts_the_backoff_again_from_100ms() {
    let hint = never_returned(STAGE3);
    let policy = restart(Restart::at_least_once());
    let jobs = vec![vec![flaky("x", 100, 1), flaky("y", 100, 1)]];
    let run = run(pool(1, 1, STAGE3).policy(policy), producers(jobs), &hint).await;
    check_seq(
        "attempts, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[("x", 0), ("x#2", 200), ("y", 300), ("y#2", 500)]),
        &STAGE3.hint(
            "failures in a row are counted per slot, from its last item done: a consumer that \
             finished an item before failing starts its slot's backoff again from first_backoff",
        ),
    );
    check_eq(
        "what the supervisor returned",
        run.outcome,
        finished(2),
        &STAGE3.hint("two failures, two restarts"),
    );
}

// 3 consumers, at least once: p fails at 100 ms and q at 120 ms, each once; r runs on.
//
//   10 ms a column   0         100       200       300       400       500 ms
//                    |         |         |         |         |         |
//   consumer A       pppppppppp..........ppppppppppssssssssss        p#2 at 200, s at 300
//   consumer B       qqqqqqqqqqqq..........qqqqqqqqqqqqtttttttttt    q#2 at 220, t at 340
//   consumer C       rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr   Ok at 450 ms

#[kata_harness::test]
async fn stage3_each_slot_backs_off_on_its_own_clock() {
    let hint = never_returned(STAGE3);
    let policy = restart(Restart::at_least_once());
    let jobs = vec![vec![
        flaky("p", 100, 1),
        flaky("q", 120, 1),
        job("r", 450),
        job("s", 100),
        job("t", 100),
    ]];
    let run = run(pool(3, 1, STAGE3).policy(policy), producers(jobs), &hint).await;
    check_seq(
        "attempts, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[
            ("p", 0),
            ("q", 0),
            ("r", 0),
            ("p#2", 200),
            ("q#2", 220),
            ("s", 300),
            ("t", 340),
        ]),
        &STAGE3.hint(
            "each failure gets its own timer, and the supervisor waits on it beside the \
             consumers (tokio::select! over join_next() on both); sleeping the backoff in the \
             supervisor's loop makes q's restart wait for p's, a restart looked at only when a \
             consumer ends waits for r, and one backoff counter for every slot makes q wait \
             200 ms",
        ),
    );
    check_eq(
        "what the supervisor returned",
        run.outcome,
        finished(2),
        &STAGE3.hint("two failures, two restarts"),
    );
    assert_elapsed("when the supervisor returned", run.at, ms(450), &hint);
}

#[kata_harness::test]
async fn stage3_a_replacement_never_runs_beside_the_consumer_it_replaces() {
    let hint = never_returned(STAGE3);
    let policy = restart(Restart::at_most_once());
    let jobs = vec![vec![
        flaky("a", 50, 1),
        job("b", 100),
        job("c", 100),
        job("d", 100),
        job("e", 100),
        job("f", 100),
        job("g", 100),
    ]];
    let run = run(pool(2, 1, STAGE3).policy(policy), producers(jobs), &hint).await;
    let hint = STAGE3.hint(
        "a failed consumer ends (it returns its Failure), and the supervisor hears of it from \
         join_next(), when it is gone: start the replacement only then, never while the old \
         consumer still takes items",
    );
    check_eq(
        "two attempts at once on one consumer slot",
        run.log.slot_clash(),
        None,
        &hint,
    );
    run.log
        .probe
        .assert_never_above("7 jobs on 2 consumers, one of them replaced", 2, &hint);
    check_eq(
        "jobs done",
        run.log.succeeded().len(),
        6,
        &STAGE3.hint("every item but the failed one is done, at most once"),
    );
}

// 3 consumers, at least once: x, y and z fail at 100, 110 and 120 ms, with w in the queue and
// v's producer waiting for room. Nobody takes an item for 100 ms; then the replacements do.
//
//   10 ms a column   0         100       200       300       400       500 ms
//                    |         |         |         |         |         |
//   consumer A       xxxxxxxxxx..........xxxxxxxxxxwwwwwwwwww      x#2 at 200, w at 300
//   consumer B       yyyyyyyyyyy..........yyyyyyyyyyyvvvvvvvvvv    y#2 at 210, v at 320; Ok at 420
//   consumer C       zzzzzzzzzzzz..........zzzzzzzzzzzz            z#2 at 220

#[kata_harness::test]
async fn stage3_every_consumer_failing_at_once_is_replaced_and_the_queue_drains() {
    let hint = STAGE3.hint(
        "with every consumer failed the queue stays full: a failing consumer that puts its \
         item back (send on a full queue) waits for ever, and so does its supervisor; hand \
         the item to the replacement instead",
    );
    let policy = restart(Restart::at_least_once());
    let jobs = vec![vec![
        flaky("x", 100, 1),
        flaky("y", 110, 1),
        flaky("z", 120, 1),
        job("w", 100),
        job("v", 100),
    ]];
    let run = run(pool(3, 1, STAGE3).policy(policy), producers(jobs), &hint).await;
    check_seq(
        "attempts, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[
            ("x", 0),
            ("y", 0),
            ("z", 0),
            ("x#2", 200),
            ("y#2", 210),
            ("z#2", 220),
            ("w", 300),
            ("v", 320),
        ]),
        &STAGE3.hint("each replacement retries its item 100 ms after its own failure"),
    );
    check_eq(
        "what the supervisor returned",
        run.outcome,
        finished(3),
        &STAGE3.hint("three failures, three restarts, within the budget of 3"),
    );
    assert_elapsed("when the supervisor returned", run.at, ms(420), &hint);
}

// 2 consumers, at least once; a and b are sent and the queue closes at 0 ms. a fails at 100 ms;
// at 150 ms b is done and no consumer runs, but a's retry is still due at 200 ms.
//
//   10 ms a column   0         100       200       300 ms
//                    |         |         |         |
//   consumer A       aaaaaaaaaa..........aaaaaaaaaa  a#2 at 200; Ok at 300 ms
//   consumer B       bbbbbbbbbbbbbbb                 closed and empty: ends at 150

#[kata_harness::test]
async fn stage3_a_retry_is_still_due_after_the_queue_closed() {
    let hint = never_returned(STAGE3);
    let policy = restart(Restart::at_least_once());
    let jobs = vec![vec![flaky("a", 100, 1), job("b", 150)]];
    let run = run(pool(2, 1, STAGE3).policy(policy), producers(jobs), &hint).await;
    check_seq(
        "attempts, in the order they started",
        &attempts_of(&run.log),
        &attempts(&[("a", 0), ("b", 0), ("a#2", 200)]),
        &STAGE3.hint(
            "a slot waiting out its backoff has not ended: the supervisor returns only when no \
             consumer runs *and* no restart is pending (a select! whose else branch comes when \
             both JoinSets are empty)",
        ),
    );
    check_eq(
        "what the supervisor returned",
        run.outcome,
        finished(1),
        &STAGE3.hint("a was retried: nothing lost"),
    );
    assert_elapsed("when the supervisor returned", run.at, ms(300), &hint);
}

// ---------------------------------------------------------------------------------------------
// Stage 4: a restart budget over a sliding window.
//
// 3 consumers, at least once, at most 2 restarts within 1 s; x always fails:
//
//   10 ms a column   0         100       200       300       400       500       600 ms
//                    |         |         |         |         |         |         |
//   consumer A       xxxxxxxxxx..........xxxxxxxxxx....................xxxxxxxxxx
//   consumer B       yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
//   consumer C       zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
//   x fails at 100, 300 and 600 ms; y and z are dropped at 600, w with the queue, v refused;
//   the third failure within 1 s finds no restart left: BudgetExhausted at 600 ms

#[kata_harness::test]
async fn stage4_the_failure_past_the_budget_stops_the_pool_at_that_instant() {
    let hint = STAGE4.hint("the supervisor must return when a failure finds the budget used up");
    let baseline = TaskBaseline::capture();
    let policy = restart(Restart {
        max_restarts: 2,
        ..Restart::at_least_once()
    });
    let jobs = vec![vec![
        failing("x", 100),
        job("y", 1000),
        job("z", 1000),
        job("w", 100),
        job("v", 100),
    ]];
    let run = run(pool(3, 1, STAGE4).policy(policy), producers(jobs), &hint).await;
    check_eq(
        "what the supervisor returned",
        run.outcome,
        Err(PoolError::BudgetExhausted {
            failure: failure_of(&run.log, failing("x", 100)),
            restarts: 2,
        }),
        &STAGE4.hint(
            "remember when each restart was decided; at a failure, forget those a window or \
             more ago, and if max_restarts are left, return BudgetExhausted with this failure \
             and the restarts made so far",
        ),
    );
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(600),
        &STAGE4.hint("the budget runs out at the third failure, at 600 ms: return then"),
    );
    baseline
        .assert_back(
            "the pool's tasks, once the supervisor returned",
            Duration::ZERO,
            &STAGE4.hint(
                "returning drops the consumers and any replacement waiting out a backoff: keep \
                 both in JoinSets the supervisor owns",
            ),
        )
        .await;
    tokio::time::sleep(ms(1000)).await;
    check_eq(
        "jobs cancelled (in any order), and when",
        sorted(run.log.dropped()),
        events(&[(600, "y"), (600, "z")]),
        &STAGE4.hint("a budget run out stops everything at once, like a failure under FailFast"),
    );
    check_eq(
        "sends refused, and when",
        run.log.refused(),
        vec![(ms(600), "v".to_owned())],
        &STAGE4.hint("the queue goes with the consumers: v's producer is told at 600 ms"),
    );
}

/// A restart policy with a constant 100 ms backoff and `budget` restarts per second.
fn budget(max_restarts: usize) -> Policy {
    restart(Restart {
        delivery: Delivery::AtMostOnce,
        first_backoff: ms(100),
        max_backoff: ms(100),
        max_restarts,
        window: ms(1000),
    })
}

/// A run's outcome in a few words: how it ended, the restarts, the items named.
fn summary(run: &Run) -> String {
    match &run.outcome {
        Ok(report) => {
            let lost: Vec<&str> = report.lost.iter().map(|f| f.item.name).collect();
            format!("Ok after {} restart(s), lost {lost:?}", report.restarts)
        }
        Err(PoolError::BudgetExhausted { failure, restarts }) => format!(
            "BudgetExhausted after {restarts} restart(s), at {}",
            failure.item.name
        ),
        Err(PoolError::Failed(failure)) => format!("Failed at {}", failure.item.name),
    }
}

// 1 consumer, at most once, a constant 100 ms backoff, 1 s windows. A restart counts from the
// failure that asked for it; at a failure, the restarts of the last second (more recent than
// exactly 1 s ago) are counted:
//
//   old restarts leave it:  f1 fails at 100 ms; f2 at 1000 (1 in the window: 100);
//                           f3 at 1150 (1: 1000, 100 has left); f4 at 1300 (2: 1000, 1150)
//   the window slides:      f1 fails at 900, f2 at 1100, f3 at 1300 (2: 900, 1100)
//   exactly 1 s ago is out: f1 fails at 100; f2 at 1100 (0: 100 is exactly 1 s ago)
//   no restart allowed:     f1 fails at 100

#[kata_harness::test]
#[case::old_restarts_leave_the_window(
    2,
    vec![
        failing("f1", 100),
        job("ok", 700),
        failing("f2", 100),
        failing("f3", 50),
        failing("f4", 50),
    ],
    "BudgetExhausted after 3 restart(s), at f4",
    1300
)]
#[case::the_window_slides(
    2,
    vec![job("ok", 800), failing("f1", 100), failing("f2", 100), failing("f3", 100)],
    "BudgetExhausted after 2 restart(s), at f3",
    1300
)]
#[case::exactly_one_window_ago_is_out(
    1,
    vec![failing("f1", 100), job("ok", 800), failing("f2", 100)],
    "Ok after 2 restart(s), lost [\"f1\", \"f2\"]",
    1200
)]
#[case::no_restart_allowed(
    0,
    vec![failing("f1", 100), job("ok", 100)],
    "BudgetExhausted after 0 restart(s), at f1",
    100
)]
async fn stage4_the_budget_counts_restarts_in_a_sliding_window(
    #[case] max_restarts: usize,
    #[case] jobs: Vec<Job>,
    #[case] expected: &str,
    #[case] end: u64,
) {
    let hint = STAGE4.hint("the supervisor must return when the budget is used up");
    let run = run(
        pool(1, 1, STAGE4).policy(budget(max_restarts)),
        vec![jobs.into_iter().map(send).collect()],
        &hint,
    )
    .await;
    check_eq(
        &format!("how the pool ended, with {max_restarts} restart(s) allowed per second"),
        summary(&run),
        expected.to_owned(),
        &STAGE4.hint(
            "a failure at t may restart when fewer than max_restarts restarts were decided in \
             (t - window, t]: record the instant of each failure that restarted, drop those \
             `window` or more before t, compare what is left with max_restarts; a count that \
             never forgets, windows on a fixed grid, or instants taken when the replacement \
             starts all count differently",
        ),
    );
    assert_elapsed(
        "when the supervisor returned",
        run.at,
        ms(end),
        &STAGE4.hint("return at the failure that used up the budget, or when the queue is drained"),
    );
}

// 3 consumers, at least once, at most 2 restarts: x, y and z all fail at 100 ms. Two are
// restarted, the third finds no restart left: BudgetExhausted at 100 ms, and the two
// replacements waiting for 200 ms never start.

#[kata_harness::test]
async fn stage4_every_consumer_failing_at_once_exhausts_the_budget_at_once() {
    let hint = STAGE4.hint(
        "three failures at one instant: the third finds the budget used up, and the supervisor \
         must return then, not wait for the producers or the queue",
    );
    let baseline = TaskBaseline::capture();
    let policy = restart(Restart {
        max_restarts: 2,
        ..Restart::at_least_once()
    });
    let jobs = vec![vec![
        failing("x", 100),
        failing("y", 100),
        failing("z", 100),
        job("w", 100),
        job("v", 100),
    ]];
    let run = run(pool(3, 1, STAGE4).policy(policy), producers(jobs), &hint).await;
    assert_elapsed("when the supervisor returned", run.at, ms(100), &hint);
    let failure = match &run.outcome {
        Err(PoolError::BudgetExhausted {
            failure,
            restarts: 2,
        }) => Some(failure.clone()),
        _ => None,
    };
    let expected = failure
        .as_ref()
        .filter(|failure| ["x", "y", "z"].contains(&failure.item.name))
        .map(|failure| failure_of(&run.log, failure.item.clone()));
    check(
        "what the supervisor returned",
        expected.is_some() && failure == expected,
        format_args!("{:?}", run.outcome),
        "Err(BudgetExhausted { failure: x, y or z on its consumer, restarts: 2 })",
        &STAGE4.hint("two restarts fit in the budget; the third failure exhausts it"),
    );
    baseline
        .assert_back(
            "the pool's tasks, once the supervisor returned",
            Duration::ZERO,
            &STAGE4.hint(
                "the two replacements waiting out their backoff must go with the supervisor: \
                 keep them in a JoinSet it owns (or as timers in its own loop)",
            ),
        )
        .await;
    tokio::time::sleep(ms(1000)).await;
    check_eq(
        "attempts that ever started",
        run.log.started(),
        ["x", "y", "z"].map(String::from).to_vec(),
        &STAGE4.hint("after BudgetExhausted nothing starts: no replacement, no retry"),
    );
}
