//! The graceful-shutdown suite, run against both `exercises/graceful-shutdown` and
//! `solutions/graceful-shutdown`: the kata's precise specification.
//!
//! Waiters, jobs and readers here are timers and scripted pipes on the paused clock, so every
//! instant below is exact, and the tests watch when futures start, finish or are *dropped*:
//! in async Rust, cancelling a future is dropping it. Stage by stage they reject the usual wrong
//! answers: a cancel that wakes one waiter or misses the children, a child whose cancel reaches
//! its parent, a waiter that spins, polls on a timer, or keeps its place (and its memory) once
//! dropped; a token looked at between sleeps instead of raced with them, work started after the
//! cancel, a drop guard that cancels late or after `disarm`; a scheduler that ignores its limit
//! or its order, starts waiting (or just spawned) jobs during close, never signals, waits for
//! ever or for the whole grace, loses the ends it drained when the deadline cuts the drain,
//! aborts without waiting, misfiles a job or a panic's message, accepts jobs after close or
//! closes twice; shielded work cut by its caller's timeout, forgotten by close, never counted
//! out when it panics, or queued behind the slot of the job that awaits it, and a handle that
//! swaps the work's panic for one of its own; and a `select!` loop that loses half a line, a
//! buffer of lines, or the beat of its ticks.

kata_harness::install_allocator!();

#[path = "graceful-shutdown/support.rs"]
mod support;

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use graceful_shutdown::{
    BadLimit, CancelToken, Cancelled, Closed, Event, Scheduler, TICK, stopwatch,
};
use kata_harness::completion::{alive_tasks, completes_within};
use kata_harness::heap::{assert_live_back, measure_async};
use kata_harness::report::{check, check_eq, fail, panic_text, panic_with_string};
use kata_harness::timing::{At, Timeline, assert_elapsed, assert_schedule, grid};
use kata_harness::wakers::CountingWaker;
use kata_harness::{Stage, ms};
use support::{
    Jobs, Lived, Named, Payload, all_at, cancel_race, cut, follow, marks, poll_once, ran, scripted,
    waiter,
};
use tokio::time::{sleep, timeout};

const STAGE1: Stage = Stage::new("graceful-shutdown", 1);
const STAGE2: Stage = Stage::new("graceful-shutdown", 2);
const STAGE3: Stage = Stage::new("graceful-shutdown", 3);
const STAGE4: Stage = Stage::new("graceful-shutdown", 4);
const STAGE5: Stage = Stage::new("graceful-shutdown", 5);

// ---------------------------------------------------------------------------------------------
// Stage 1: a cancel token that wakes every waiter, and every child, at the instant of the cancel.
//
//   token.cancel() at 2500 ms:
//   0 ms                                      2500 ms
//   |-----------------------------------------|
//   a, b, c wait on the token                 a, b, c, child and grandchild all wake
//   child waits on token.child(),
//   grandchild on child.child()

const WAITERS: [&str; 5] = ["a", "b", "c", "child", "grandchild"];

#[kata_harness::test]
async fn stage1_a_cancel_wakes_every_waiter_and_every_child_at_that_instant() {
    let timeline = Timeline::start();
    let token = CancelToken::new();
    let child = token.child();
    let grandchild = child.child();
    for name in ["a", "b", "c"] {
        waiter(&timeline, name, &token);
    }
    waiter(&timeline, "child", &child);
    waiter(&timeline, "grandchild", &grandchild);
    sleep(ms(2500)).await;
    token.cancel();
    // Looked at right away, before any other task gets to run.
    check(
        "child.is_cancelled() and grandchild.is_cancelled() as soon as the parent's cancel() \
         returned",
        child.is_cancelled() && grandchild.is_cancelled(),
        format_args!("{} and {}", child.is_cancelled(), grandchild.is_cancelled()),
        "true and true",
        &STAGE1.hint(
            "a parent's cancel reaches its children, and theirs, before cancel() returns: \
             cancel them in cancel() itself (a task that waits on the parent to cancel the \
             child is late, and costs a task per child)",
        ),
    );
    sleep(ms(500)).await;
    check_eq(
        "when each waiter woke (the token was cancelled at 2500 ms; None: never)",
        marks(&timeline, &WAITERS),
        all_at(&WAITERS, 2500),
        &STAGE1.hint(
            "cancel() wakes every waiter, not just one (Notify::notify_one wakes one, \
             notify_waiters wakes all), and cancels every child, which wakes theirs in turn",
        ),
    );
}

//   1000 ms: child a cancelled: only a's waiter wakes
//   2000 ms: the parent cancelled: the parent's waiter and child b's wake (a's already has)

#[kata_harness::test]
async fn stage1_cancelling_a_child_leaves_its_parent_and_its_siblings_alone() {
    let timeline = Timeline::start();
    let parent = CancelToken::new();
    let (a, b) = (parent.child(), parent.child());
    waiter(&timeline, "parent", &parent);
    waiter(&timeline, "a", &a);
    waiter(&timeline, "b", &b);
    sleep(ms(1000)).await;
    a.cancel();
    sleep(ms(500)).await;
    check_eq(
        "parent.is_cancelled() and b.is_cancelled() after a.cancel()",
        (parent.is_cancelled(), b.is_cancelled()),
        (false, false),
        &STAGE1.hint(
            "a child's cancel goes down to its own children, never up to its parent: the child \
             has a flag of its own, and its parent knows it only to cancel it",
        ),
    );
    sleep(ms(500)).await;
    parent.cancel();
    sleep(ms(500)).await;
    let expected = vec![
        ("parent", Some(At(ms(2000)))),
        ("a", Some(At(ms(1000)))),
        ("b", Some(At(ms(2000)))),
    ];
    check_eq(
        "when each waiter woke (a cancelled at 1000 ms, the parent at 2000 ms)",
        marks(&timeline, &["parent", "a", "b"]),
        expected,
        &STAGE1.hint(
            "cancelling a wakes a's waiters only; cancelling the parent then wakes its own and \
             b's",
        ),
    );
}

#[kata_harness::test]
async fn stage1_an_already_cancelled_token_is_ready_on_the_first_poll() {
    let token = CancelToken::new();
    let clone = token.clone();
    clone.cancel();
    clone.cancel(); // Twice is harmless.
    check(
        "token.is_cancelled() after a clone of it was cancelled",
        token.is_cancelled(),
        "false",
        "true",
        &STAGE1.hint("clones share one flag: keep the state behind an Arc"),
    );
    let waker = CountingWaker::new();
    let hint = STAGE1.hint(
        "look at the flag before waiting: a notification sent before anyone listened reaches \
         nobody, so a waiter that only waits for it waits for ever",
    );
    let ready = poll_once(pin!(token.cancelled()), &waker).is_ready();
    check(
        "the first poll of token.cancelled() on a cancelled token",
        ready,
        "Pending",
        "Ready",
        &hint,
    );
    let late_child = token.child();
    let ready = poll_once(pin!(late_child.cancelled()), &waker).is_ready();
    check(
        "a child made after its parent was cancelled: first poll of child.cancelled()",
        ready && late_child.is_cancelled(),
        format_args!(
            "{}, is_cancelled() = {}",
            if ready { "Ready" } else { "Pending" },
            late_child.is_cancelled()
        ),
        "Ready, is_cancelled() = true",
        &STAGE1.hint("a child of a cancelled token is born cancelled"),
    );
}

#[kata_harness::test]
async fn stage1_a_waiter_sleeps_until_the_cancel_wakes_it_once() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let mut waiting = Box::pin(token.cancelled());
    check(
        "the first poll of token.cancelled() before any cancel",
        poll_once(waiting.as_mut(), &waker).is_pending(),
        "Ready",
        "Pending",
        &STAGE1.hint("cancelled() waits until cancel() is called"),
    );
    sleep(ms(1000)).await;
    check_eq(
        "wakes of a waiter in the second before the cancel",
        waker.wakes(),
        0,
        &STAGE1.hint(
            "the waiter woke itself: it spins (wake_by_ref, yield_now) or looks at the flag on \
             a timer, which burns the CPU or answers late; register the waker and let cancel() \
             wake it (tokio::sync::Notify does both)",
        ),
    );
    token.cancel();
    check_eq(
        "wakes of the waiter by token.cancel()",
        waker.wakes(),
        1,
        &STAGE1.hint("cancel() wakes each waiter once, at once, before it returns"),
    );
    check(
        "the poll after the wake",
        poll_once(waiting.as_mut(), &waker).is_ready(),
        "Pending",
        "Ready",
        &STAGE1.hint("once woken by cancel(), cancelled() is ready"),
    );
    drop(waiting);
    check_eq(
        "wakers still held by the token after its waiter was dropped",
        waker.held_elsewhere(),
        0,
        &STAGE1.hint("a waiter that is done or dropped leaves no waker behind in the token"),
    );
}

#[kata_harness::test]
async fn stage1_abandoned_waiters_give_their_memory_back() {
    let token = CancelToken::new();
    let waker = CountingWaker::new();
    let (pending, report) = measure_async(async {
        let mut waiters: Vec<_> = (0..10_000).map(|_| Box::pin(token.cancelled())).collect();
        let pending = waiters
            .iter_mut()
            .map(|waiting| poll_once(waiting.as_mut(), &waker))
            .filter(Poll::is_pending)
            .count();
        drop(waiters);
        pending
    })
    .await;
    check_eq(
        "waiters pending on a token nobody cancelled",
        pending,
        10_000,
        &STAGE1.hint("cancelled() waits until cancel() is called"),
    );
    let hint = STAGE1.hint(
        "a dropped waiter must leave the token's list of waiters: a Vec of wakers or senders \
         that only cancel() empties grows with every request that gave up (a timeout, a \
         select! lost); tokio::sync::Notify's waiters unlink themselves when dropped",
    );
    assert_live_back(
        "10,000 waiters polled once, then dropped, on a token still alive",
        report,
        16 * 1024,
        &hint,
    );
    check_eq(
        "wakers of the 10,000 dropped waiters still held by the token",
        waker.held_elsewhere(),
        0,
        &hint,
    );
    let timeline = Timeline::start();
    waiter(&timeline, "a new waiter", &token);
    sleep(ms(100)).await;
    token.cancel();
    sleep(ms(100)).await;
    check_eq(
        "when a waiter that came after them woke (cancel at 100 ms)",
        timeline.first("a new waiter").map(At),
        Some(At(ms(100))),
        &STAGE1.hint("the token still works once abandoned waiters have left"),
    );
}

#[kata_harness::test]
async fn stage1_dropped_children_give_their_memory_back() {
    let parent = CancelToken::new();
    let kept = parent.child();
    let ((), report) = measure_async(async {
        for _ in 0..10_000 {
            let request = parent.child();
            drop(request);
        }
    })
    .await;
    assert_live_back(
        "10,000 children of a token still alive, each dropped",
        report,
        16 * 1024,
        &STAGE1.hint(
            "a parent must not keep its dropped children: hold them as Weak, and let a child \
             remove itself from its parent when it is dropped (a server's shutdown token lives \
             as long as the server, and makes a child per request)",
        ),
    );
    parent.cancel();
    check(
        "a child kept alive, after its parent's cancel",
        kept.is_cancelled(),
        "not cancelled",
        "cancelled",
        &STAGE1.hint("children still alive are still cancelled with their parent"),
    );
}

// Many waiters started one after another as the token is cancelled on another thread: every
// one of them wakes.

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_a_cancel_on_another_thread_reaches_every_waiter() {
    // A multi-threaded runtime, on the real clock: there a cancel on one thread can land between
    // a waiter's look at the flag and its registering for the wake-up on another. On the test's
    // one thread, tasks switch only at an `.await`, so that ordering never happens there.
    if let Err(attempt) = cancel_race(50_000, Duration::from_secs(2)).await {
        fail(
            "cancelled() calls started one after another as the token is cancelled on another \
             thread (2 threads)",
            format_args!(
                "in attempt {attempt}, a waiter was still waiting 2 s after the token was \
                 cancelled"
            ),
            "every waiter wakes once the token is cancelled",
            &STAGE1.hint(
                "a wake-up was lost: cancelled() saw the flag down, then cancel() raised it and \
                 woke the waiters on another thread before this one was registered. Register \
                 first, then look: create the Notified future (notify.notified()) before reading \
                 the flag, or use a watch channel's wait_for, which looks and waits under one \
                 lock (if other stage 1 tests fail too, start with those)",
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: stopping at the instant of the cancel: select!, and Drop guards.
//
//   token.run_until_cancelled(work of 1000 ms), cancel at 2500 ms:
//   0 ms          1000 ms                 2500 ms
//   |-------------|.......................|
//   work starts   Ok(7)                   (the cancel comes too late to matter)

/// Cancels `token` after `after` ms, from a task of its own.
fn cancel_after(token: &CancelToken, after: u64) {
    let token = token.clone();
    tokio::spawn(async move {
        sleep(ms(after)).await;
        token.cancel();
    });
}

#[kata_harness::test]
async fn stage2_run_until_cancelled_gives_the_output_of_work_that_ends_first() {
    let token = CancelToken::new();
    cancel_after(&token, 2500);
    let timeline = Timeline::start();
    let work = timeline.watch("work", async {
        sleep(ms(1000)).await;
        7
    });
    let result = token.run_until_cancelled(work).await;
    check_eq(
        "run_until_cancelled(work of 1000 ms)",
        result,
        Ok(7),
        &STAGE2.hint("when the work ends first, return Ok(its output)"),
    );
    assert_elapsed(
        "run_until_cancelled(work of 1000 ms)",
        timeline.now(),
        ms(1000),
        &STAGE2.hint("return as soon as the work ends, without waiting for the token"),
    );
}

//   token.run_until_cancelled(work of 3000 ms), cancel at 2500 ms:
//   0 ms                                    2500 ms            3000 ms
//   |---------------------------------------|..................|
//   work starts                             Err(Cancelled):    (the work would have
//                                           work dropped       ended here)

#[kata_harness::test]
async fn stage2_run_until_cancelled_drops_the_work_at_the_cancel() {
    let token = CancelToken::new();
    cancel_after(&token, 2500);
    let timeline = Timeline::start();
    let work = timeline.watch("work", sleep(ms(3000)));
    let result = token.run_until_cancelled(work).await;
    check_eq(
        "run_until_cancelled(work of 3000 ms), cancelled at 2500 ms",
        result,
        Err(Cancelled),
        &STAGE2.hint("when the token is cancelled first, return Err(Cancelled)"),
    );
    check_eq(
        "the work's life",
        Lived(timeline.life("work")),
        cut(0, 2500),
        &STAGE2.hint(
            "race the work against token.cancelled() in one tokio::select!: the branch that \
             loses is dropped at once, which is how a future is cancelled",
        ),
    );
}

#[kata_harness::test]
async fn stage2_work_handed_to_a_cancelled_token_never_starts() {
    let token = CancelToken::new();
    token.cancel();
    let timeline = Timeline::start();
    // tokio::select! polls its branches in a random order unless told otherwise: 20 rounds
    // show an order left to chance.
    for round in 0..20 {
        let name = format!("work {round}");
        let result = token
            .run_until_cancelled(timeline.watch(name.clone(), async { 7 }))
            .await;
        check_eq(
            &format!("run_until_cancelled(work ready at once) on a cancelled token, round {round}"),
            (result, timeline.life(&name).started),
            (Err(Cancelled), None),
            &STAGE2.hint(
                "look at the token before the work: `biased;` in tokio::select! polls the \
                 branches in the order written, and the work must never be polled after a \
                 cancel",
            ),
        );
    }
}

//   stopwatch(&token, on_tick), cancelled at 2500 ms:
//   0 ms         1000 ms      2000 ms   2500 ms    3000 ms
//   |------------|------------|---------|..........|
//                tick 1       tick 2    returns 2  (not 2, nor 3, at 3000 ms)

#[kata_harness::test]
#[case::between_the_second_and_third_tick(Some(2500), 2)]
#[case::after_three_ticks(Some(3500), 3)]
#[case::before_the_first_tick(Some(500), 0)]
#[case::before_the_call(None, 0)]
async fn stage2_the_stopwatch_returns_at_the_cancel(
    #[case] cancel_at: Option<u64>,
    #[case] ticks: u32,
) {
    let token = CancelToken::new();
    match cancel_at {
        Some(at) => cancel_after(&token, at),
        None => token.cancel(),
    }
    let stopped_at = cancel_at.unwrap_or(0);
    let timeline = Timeline::start();
    let marks = timeline.clone();
    let counted = completes_within(
        "stopwatch",
        stopwatch(&token, move |n| marks.mark(format!("tick {n}"))),
        ms(10_000),
        &STAGE2.hint("the stopwatch returns when its token is cancelled"),
    )
    .await;
    let when = match cancel_at {
        Some(at) => format!("cancelled at {at} ms"),
        None => "cancelled before the call".to_owned(),
    };
    assert_schedule(
        &format!("ticks of a stopwatch {when}"),
        &timeline.instants(),
        &grid(TICK, TICK, ms(stopped_at)),
        &STAGE2.hint("a tick every 1000 ms after the start, none after the cancel"),
    );
    check_eq(
        &format!("what the stopwatch {when} returned"),
        counted,
        ticks,
        &STAGE2.hint("return the ticks counted so far: the second cut short does not count"),
    );
    assert_elapsed(
        &format!("the stopwatch {when}"),
        timeline.now(),
        ms(stopped_at),
        &STAGE2.hint(
            "looking at the token after each sleep answers only when the second is over: race \
             each sleep against token.cancelled() (select!, or run_until_cancelled)",
        ),
    );
}

//   a request holds a drop guard; timeout(100 ms) drops the request:
//   0 ms              100 ms                          300 ms
//   |-----------------|...............................|
//   request starts    request dropped: the guard      (the request would have ended here)
//                     cancels, the clean-up task wakes

#[kata_harness::test]
async fn stage2_a_drop_guard_cancels_when_its_owner_is_dropped() {
    let timeline = Timeline::start();
    let token = CancelToken::new();
    waiter(&timeline, "clean-up", &token);
    let guard = token.clone().drop_guard();
    let request = timeline.watch("request", async move {
        let _guard = guard;
        sleep(ms(300)).await;
    });
    let timed_out = timeout(ms(100), request).await.is_err();
    check(
        "timeout(100 ms) around a request of 300 ms",
        timed_out,
        "Ok",
        "Err(Elapsed)",
        &STAGE2.hint("the request holds the guard and nothing else changes its length"),
    );
    check(
        "token.is_cancelled() right after the request (and its guard) was dropped",
        token.is_cancelled(),
        "false",
        "true",
        &STAGE2.hint(
            "implement Drop for DropGuard and cancel there, synchronously: Drop cannot await, \
             and a task spawned to cancel later is not \"when it is dropped\"",
        ),
    );
    sleep(ms(100)).await;
    check_eq(
        "when the clean-up task waiting on the token woke",
        timeline.first("clean-up").map(At),
        Some(At(ms(100))),
        &STAGE2.hint("the guard's cancel wakes the waiters like any cancel"),
    );
}

#[kata_harness::test]
async fn stage2_a_disarmed_guard_cancels_nothing() {
    let token = CancelToken::new();
    let guard = token.clone().drop_guard();
    let back = guard.disarm();
    drop(back.clone());
    check(
        "the token after its guard was disarmed and the returned token dropped",
        !token.is_cancelled(),
        "cancelled",
        "not cancelled",
        &STAGE2.hint(
            "disarm takes the token out of the guard (an Option), so that the guard's Drop, \
             which still runs, finds nothing to cancel",
        ),
    );
    back.cancel();
    check(
        "the original token after the token disarm returned was cancelled",
        token.is_cancelled(),
        "not cancelled",
        "cancelled",
        &STAGE2.hint("disarm gives back the very token the guard was made from"),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 3: a scheduler: at most `limit` jobs at once, and a close that stops accepting, asks
// every job to stop, drains until a deadline, aborts the rest and reports what became of each.

#[kata_harness::test]
#[case::zero(0)]
#[case::more_than_a_semaphore_holds(usize::MAX)]
async fn stage3_a_limit_that_cannot_work_is_a_typed_error(#[case] limit: usize) {
    let error = Scheduler::new(limit).err();
    check_eq(
        &format!("Scheduler::new({limit})"),
        error,
        Some(BadLimit { limit }),
        &STAGE3.hint(
            "check the limit before making anything: no slot at all would leave every job \
             waiting for ever, and tokio's Semaphore::new panics past Semaphore::MAX_PERMITS",
        ),
    );
    let text = error.map(|error| error.to_string()).unwrap_or_default();
    check(
        "the error's message",
        text.contains(&limit.to_string()),
        format_args!("{text:?}"),
        format_args!("a message that names the limit, {limit}"),
        &STAGE3.hint("keep the #[error(...)] text of BadLimit"),
    );
}

//   limit 3; jobs a 100, b 200, c 300, d 400, e 150 ms, spawned in that order at 0 ms:
//   0 ms      100 ms    200 ms    300 ms  350 ms            500 ms
//   a --------|
//   b ------------------|
//   c ----------------------------|
//             d ------------------------------------------------|
//                       e ------------------|

#[kata_harness::test]
async fn stage3_at_most_limit_jobs_run_at_once_in_the_order_spawned() {
    let hint = STAGE3.hint(
        "a job starts when a slot is free, in the order jobs were spawned: a \
         tokio::sync::Semaphore of `limit` permits is fair (first come, first served); hold \
         the permit for the whole job",
    );
    let jobs = Jobs::new(3, &hint);
    for (name, work) in [("a", 100), ("b", 200), ("c", 300), ("d", 400), ("e", 150)] {
        jobs.ignoring(name, work);
    }
    sleep(ms(600)).await;
    let lives: Vec<_> = ["a", "b", "c", "d", "e"]
        .map(|name| (name, jobs.life(name)))
        .into();
    let expected = vec![
        ("a", ran(0, 100)),
        ("b", ran(0, 200)),
        ("c", ran(0, 300)),
        ("d", ran(100, 500)),
        ("e", ran(200, 350)),
    ];
    check_eq("each job's life", lives, expected, &hint);
    let (report, at) = jobs.close(1000, &hint).await;
    check_eq(
        "close(1000 ms) at 600 ms, every job over",
        report,
        Some(Named::default().finished(&["a", "b", "c", "d", "e"])),
        &STAGE3.hint(
            "a job that returned Ok(()) is finished, whenever it ended: the report accounts \
             for every job the scheduler accepted",
        ),
    );
    assert_elapsed(
        "close with nothing left to wait for",
        at.0,
        ms(600),
        &STAGE3.hint("with every job over, close has nothing to wait for: return at once"),
    );
}

//   close(2000 ms) at 0 ms; jobs a 100, b 300, c 1000 ms, which ignore their tokens:
//   0 ms    100 ms    300 ms          1000 ms                 2000 ms
//   close   a done    b done          c done: close returns   (the deadline: no need to wait)

#[kata_harness::test]
async fn stage3_close_returns_as_soon_as_every_job_is_over() {
    let hint = STAGE3.hint(
        "wait for the jobs *or* the deadline, whichever comes first (tokio::time::timeout_at \
         around the joins): sleeping for the whole grace makes every shutdown as slow as the \
         worst case",
    );
    let jobs = Jobs::new(3, &hint);
    jobs.ignoring("a", 100);
    jobs.ignoring("b", 300);
    jobs.ignoring("c", 1000);
    jobs.let_them_start().await;
    let (report, at) = jobs.close(2000, &hint).await;
    assert_elapsed("close(2000 ms)", at.0, ms(1000), &hint);
    check_eq(
        "close(2000 ms)'s report",
        report,
        Some(Named::default().finished(&["a", "b", "c"])),
        &STAGE3.hint("every job returned Ok(()) before the deadline: all finished"),
    );
}

//   close(500 ms) at 0 ms; jobs a 100, b 300, c 1000 ms, which ignore their tokens:
//   0 ms    100 ms    300 ms     500 ms                      1000 ms
//   close   a done    b done     deadline: c aborted,        (c would have ended here)
//                                close returns

#[kata_harness::test]
async fn stage3_close_aborts_the_jobs_still_running_at_the_deadline() {
    let hint = STAGE3.hint("at the deadline, abort what is still running and report it aborted");
    let jobs = Jobs::new(3, &hint);
    jobs.ignoring("a", 100);
    jobs.ignoring("b", 300);
    jobs.ignoring("c", 1000);
    jobs.let_them_start().await;
    let (report, at) = jobs.close(500, &hint).await;
    // Looked at right away, before anything else gets to run.
    check_eq(
        "job c's life when close(500 ms) returned",
        jobs.life("c"),
        cut(0, 500),
        &STAGE3.hint(
            "abort() only asks: the task is dropped when the runtime next gets to it, after \
             close has returned. Wait for each aborted task (JoinSet::join_next, or awaiting \
             its JoinHandle) so that its clean-up has run when close returns",
        ),
    );
    assert_elapsed("close(500 ms)", at.0, ms(500), &hint);
    check_eq(
        "close(500 ms)'s report",
        report,
        Some(Named::default().finished(&["a", "b"]).aborted(&["c"])),
        &STAGE3.hint(
            "a and b ended by themselves during the grace: finished; c was cut at the deadline: \
             aborted (a JoinError that is_cancelled)",
        ),
    );
}

#[kata_harness::test]
async fn stage3_a_job_that_never_ends_is_aborted_at_the_deadline() {
    let hint = STAGE3.hint(
        "close must not wait for ever: a job that ignores its token and never ends is aborted \
         when the grace is over",
    );
    let jobs = Jobs::new(2, &hint);
    jobs.forever("endless");
    jobs.let_them_start().await;
    let (report, at) = jobs.close(300, &hint).await;
    assert_elapsed("close(300 ms)", at.0, ms(300), &hint);
    check_eq(
        "close(300 ms)'s report",
        report,
        Some(Named::default().aborted(&["endless"])),
        &hint,
    );
}

//   close(500 ms) at 200 ms; early (100 ms) is over, polite (10 s of work) watches its token:
//   0 ms     100 ms     200 ms               250 ms
//   both     early      close: polite is     polite's 50 ms of clean-up done,
//   start    done       asked to stop        it returns Err(Cancelled): close returns

#[kata_harness::test]
async fn stage3_close_asks_every_job_to_stop_before_anything_else() {
    let hint = STAGE3.hint(
        "close first cancels the token of every job (make each job's token a child of the \
         scheduler's, and cancel that one), then waits",
    );
    let jobs = Jobs::new(2, &hint);
    jobs.ignoring("early", 100);
    jobs.cooperative("polite", 10_000, 50);
    sleep(ms(200)).await;
    let (report, at) = jobs.close(500, &hint).await;
    check_eq(
        "when polite was asked to stop (close was called at 200 ms)",
        jobs.timeline.first("polite asked to stop").map(At),
        Some(At(ms(200))),
        &hint,
    );
    assert_elapsed(
        "close(500 ms) called at 200 ms",
        at.0,
        ms(250),
        &STAGE3.hint("a job that stops when asked ends close early: return when it is over"),
    );
    check_eq(
        "close(500 ms)'s report",
        report,
        Some(Named::default().finished(&["early"]).stopped(&["polite"])),
        &STAGE3.hint(
            "a job that returns Err(Cancelled) stopped because it was asked to: it is stopped, \
             not finished; and early, over before close, is in the report too",
        ),
    );
}

//   limit 1; close(500 ms) at 0 ms; a (300 ms) holds the slot, b waits for it:
//   0 ms                       300 ms
//   a -------------------------| finished: the slot is free again, but close has begun,
//   b waiting                    so b is dropped unstarted: its future is never polled

#[kata_harness::test]
async fn stage3_a_job_still_waiting_for_a_slot_never_starts() {
    let hint = STAGE3.hint(
        "once close has begun, a job still waiting for a slot gives up its place: it is never \
         started (never polled) and reported never_started, even if a slot frees up during \
         the grace",
    );
    let jobs = Jobs::new(1, &hint);
    jobs.ignoring("a", 300);
    jobs.ignoring("b", 100);
    jobs.let_them_start().await;
    let (report, at) = jobs.close(500, &hint).await;
    check_eq(
        "when job b's future started (None: never)",
        jobs.life("b").0.started.map(At),
        None,
        &hint,
    );
    check_eq(
        "close(500 ms)'s report",
        report,
        Some(Named::default().finished(&["a"]).never_started(&["b"])),
        &hint,
    );
    assert_elapsed(
        "close(500 ms)",
        at.0,
        ms(300),
        &STAGE3.hint("close returns when a, the only job that started, is over"),
    );
}

//   limit 2; a job is spawned and close(100 ms) called at once, before the job's task has run:
//   at its first poll a slot is free *and* its token is cancelled. 20 rounds, each at 0 ms:
//   0 ms
//   spawn, close: the job is never started, close returns at once

#[kata_harness::test]
async fn stage3_a_job_spawned_just_before_close_never_starts() {
    let hint = STAGE3.hint(
        "a job whose task first runs after close began must not start, even with a slot free: \
         in its task, look at the token before the slot (`biased;` first in the select!); \
         without it select! picks a ready branch at random, and the job starts half the time",
    );
    for round in 0..20 {
        let jobs = Jobs::new(2, &hint);
        jobs.ignoring("late", 100);
        let (report, at) = jobs.close(100, &hint).await;
        check_eq(
            &format!(
                "round {round}: close(100 ms) called right after spawn: its report, when the \
                 job started (None: never) and when close returned"
            ),
            (report, jobs.life("late").0.started.map(At), at),
            (
                Some(Named::default().never_started(&["late"])),
                None,
                At(ms(0)),
            ),
            &hint,
        );
    }
}

#[kata_harness::test]
async fn stage3_close_refuses_new_jobs_from_its_first_instant() {
    let hint = STAGE3.hint(
        "close stops accepting before anything else: spawn returns Err(Closed) from the \
         moment close is called, and the job is dropped, never called",
    );
    let jobs = Jobs::new(2, &hint);
    jobs.ignoring("slow", 300);
    jobs.let_them_start().await;
    let closing = tokio::spawn({
        let scheduler = jobs.scheduler.clone();
        async move { scheduler.close(ms(500)).await.is_some() }
    });
    sleep(ms(100)).await;
    let called = Arc::new(AtomicBool::new(false));
    let late = |called: &Arc<AtomicBool>| {
        let called = called.clone();
        move |_token: CancelToken| {
            called.store(true, Ordering::SeqCst);
            async { Ok::<(), Cancelled>(()) }
        }
    };
    let during = jobs.scheduler.spawn(late(&called));
    check_eq(
        "spawn at 100 ms, while close(500 ms) waits for a job",
        during.err(),
        Some(Closed),
        &hint,
    );
    let closed = completes_within("close(500 ms)", closing, ms(1000), &hint).await;
    check(
        "the first close",
        matches!(closed, Ok(true)),
        format_args!("{closed:?}"),
        "Ok(true): it returned Some(report)",
        &STAGE3.hint("the first close returns Some(report)"),
    );
    let after = jobs.scheduler.spawn(late(&called));
    check_eq(
        "spawn after close returned",
        after.err(),
        Some(Closed),
        &hint,
    );
    sleep(ms(100)).await;
    check(
        "the refused jobs",
        !called.load(Ordering::SeqCst),
        "one of them was called",
        "never called",
        &hint,
    );
    check(
        "Closed's message",
        Closed.to_string().contains("closed"),
        format_args!("{:?}", Closed.to_string()),
        "a message that says the scheduler is closed",
        &STAGE3.hint("keep the #[error(...)] text of Closed"),
    );
}

//   two closes at once, at 0 ms: close(500) first, then close(2000); a (1000 ms) ignores its token:
//   0 ms                            500 ms
//   close(2000): None, at once      close(500): a aborted, Some(report)
//                                   a third close, at 500 ms: None, at once

#[kata_harness::test]
async fn stage3_only_the_first_close_closes_the_others_return_at_once() {
    let hint = STAGE3.hint(
        "only the first close closes: decide it under the lock (a flag set once), and let \
         every later call, even one made while the first still waits, return None at once",
    );
    let jobs = Jobs::new(2, &hint);
    jobs.ignoring("a", 1000);
    jobs.let_them_start().await;
    let jobs = &jobs;
    let timed = |grace: u64| async move {
        let report = jobs.scheduler.close(ms(grace)).await;
        (
            report.map(|report| jobs.named(&report)),
            At(jobs.timeline.now()),
        )
    };
    let both = async { tokio::join!(timed(500), timed(2000)) };
    let (first, second) = completes_within("two closes at once", both, ms(5000), &hint).await;
    check_eq(
        "the second close, called while the first waited",
        second,
        (None, At(ms(0))),
        &hint,
    );
    check_eq(
        "the first close(500 ms)",
        first,
        (Some(Named::default().aborted(&["a"])), At(ms(500))),
        &STAGE3.hint("the first close does the work, whatever the others do"),
    );
    let (third, at) = jobs.close(500, &hint).await;
    check_eq(
        "a third close, after the first returned",
        (third, at),
        (None, At(ms(500))),
        &hint,
    );
}

#[kata_harness::test]
async fn stage3_no_task_is_left_when_close_returns() {
    let hint = STAGE3.hint(
        "every task the scheduler spawned must be over when close returns: joined, or \
         aborted *and* joined (abort alone leaves the task alive until the runtime gets to it)",
    );
    let baseline = alive_tasks();
    let jobs = Jobs::new(2, &hint);
    jobs.ignoring("quick", 100);
    jobs.forever("endless");
    jobs.ignoring("waiting", 100);
    jobs.let_them_start().await;
    let (report, _) = jobs.close(300, &hint).await;
    // Counted right away, before anything else gets to run.
    check_eq(
        "live tokio tasks right after close returned",
        alive_tasks(),
        baseline,
        &hint,
    );
    check_eq(
        "close(300 ms)'s report",
        report,
        Some(
            Named::default()
                .finished(&["quick"])
                .aborted(&["endless"])
                .never_started(&["waiting"]),
        ),
        &STAGE3.hint("the job waiting for a slot when close began never starts"),
    );
}

#[kata_harness::test]
async fn stage3_a_panicking_job_is_reported_with_its_message() {
    let hint = STAGE3.hint(
        "a job's panic is the job's end, not close's: take it from the JoinError \
         (is_panic, into_panic) instead of unwrapping, and get its text from the payload, \
         which is a &'static str for panic!(\"literal\") and a String for a formatted message",
    );
    let jobs = Jobs::new(3, &hint);
    jobs.panicking("paper", 100, Payload::Str("out of paper"));
    jobs.panicking("disk", 200, Payload::String("disk /var is full"));
    jobs.ignoring("fine", 300);
    jobs.let_them_start().await;
    let closing = tokio::spawn({
        let scheduler = jobs.scheduler.clone();
        async move { scheduler.close(ms(1000)).await }
    });
    let report = match completes_within("close(1000 ms)", closing, ms(2000), &hint).await {
        Ok(report) => report,
        Err(error) => fail(
            "close(1000 ms) with jobs that panicked",
            format_args!("close itself failed: {error}"),
            "a report",
            &hint,
        ),
    };
    check_eq(
        "close(1000 ms)'s report",
        report.map(|report| jobs.named(&report)),
        Some(
            Named::default()
                .finished(&["fine"])
                .panicked(&[("paper", "out of paper"), ("disk", "disk /var is full")]),
        ),
        &hint,
    );
}

//   limit 2; quitter cancels its own token at 100 ms and returns Err(Cancelled);
//   worker (10 s) watches its token; next (200 ms) waits for a slot; close(1000 ms) at 400 ms:
//   0 ms              100 ms             300 ms       400 ms           450 ms
//   quitter ----------| stopped
//   worker ------------------------------------------ asked to stop -- stopped: close returns
//                     next --------------| finished

#[kata_harness::test]
async fn stage3_a_job_that_cancels_its_own_token_stops_only_itself() {
    let hint = STAGE3.hint(
        "give each job a child of the scheduler's token, not a clone of it: a job that \
         cancels its own token must not stop the others, nor the scheduler",
    );
    let jobs = Jobs::new(2, &hint);
    jobs.custom("quitter", |token| async move {
        sleep(ms(100)).await;
        token.cancel();
        Err(Cancelled)
    });
    jobs.cooperative("worker", 10_000, 50);
    jobs.ignoring("next", 200);
    sleep(ms(400)).await;
    let (report, at) = jobs.close(1000, &hint).await;
    check_eq(
        "when worker was asked to stop (quitter cancelled its token at 100 ms, close began at \
         400 ms)",
        jobs.timeline.first("worker asked to stop").map(At),
        Some(At(ms(400))),
        &hint,
    );
    check_eq("next's life", jobs.life("next"), ran(100, 300), &hint);
    check_eq(
        "close(1000 ms)'s report",
        report,
        Some(
            Named::default()
                .finished(&["next"])
                .stopped(&["quitter", "worker"]),
        ),
        &hint,
    );
    assert_elapsed("close(1000 ms) called at 400 ms", at.0, ms(450), &hint);
}

// ---------------------------------------------------------------------------------------------
// Stage 4: shielding: work that no timeout, abort or close can cut short.
//
//   timeout(100 ms, scheduler.shield(300 ms of work)):
//   0 ms           100 ms                   300 ms
//   work starts    Err(Elapsed): the        the work finishes all the same
//                  caller stops waiting

#[kata_harness::test]
async fn stage4_shielded_work_outlives_its_callers_timeout() {
    let hint = STAGE4.hint(
        "shield runs the work in a task of its own (tokio::spawn) and hands back the task's \
         JoinHandle: dropping a JoinHandle detaches the task, it does not stop it",
    );
    let jobs = Jobs::new(1, &hint);
    let work = jobs.timeline.watch("work", async {
        sleep(ms(300)).await;
        "written"
    });
    let waited = timeout(ms(100), jobs.shield(work)).await;
    check(
        "timeout(100 ms) around 300 ms of shielded work",
        waited.is_err(),
        format_args!("{waited:?}"),
        "Err(Elapsed) at 100 ms",
        &STAGE4.hint("the caller's timeout still fires: shielding protects the work, not the wait"),
    );
    assert_elapsed(
        "timeout(100 ms) around shielded work",
        jobs.timeline.now(),
        ms(100),
        &hint,
    );
    let second = jobs.timeline.watch("second", async {
        sleep(ms(50)).await;
        7
    });
    let output = jobs.shield(second).await;
    check_eq(
        "the output of shielded work, awaited to the end",
        output,
        7,
        &STAGE4.hint("awaiting the handle gives the work's output"),
    );
    sleep(ms(300)).await;
    check_eq(
        "the life of the shielded work whose caller timed out at 100 ms",
        jobs.life("work"),
        ran(0, 300),
        &hint,
    );
}

//   close(500 ms) at 0 ms; job a (800 ms) ignores its token; shielded work s takes 1000 ms:
//   0 ms                  500 ms                  1000 ms
//   close                 a aborted               s done: close returns

#[kata_harness::test]
async fn stage4_close_waits_for_shielded_work_past_the_grace() {
    let hint = STAGE4.hint(
        "close waits for shielded work however long it takes, after the jobs: count it while \
         it runs (a guard in its task whose Drop counts it out) and wait until the count is 0",
    );
    let jobs = Jobs::new(2, &hint);
    jobs.ignoring("a", 800);
    let work = jobs.timeline.watch("s", sleep(ms(1000)));
    // The handle is dropped at once: the work is detached, and close still waits for it.
    jobs.name(jobs.shield(work).id(), "s");
    jobs.let_them_start().await;
    let (report, at) = jobs.close(500, &hint).await;
    assert_elapsed(
        "close(500 ms) with 1000 ms of shielded work",
        at.0,
        ms(1000),
        &hint,
    );
    check_eq(
        "the shielded work's life",
        jobs.life("s"),
        ran(0, 1000),
        &hint,
    );
    check_eq(
        "close(500 ms)'s report",
        report,
        Some(Named::default().aborted(&["a"]).shielded(&["s"])),
        &STAGE4.hint("shielded work is reported shielded; a is still aborted at the deadline"),
    );
}

//   close(100 ms) at 0 ms; job a, asked to stop, shields a 300 ms flush and awaits it:
//   0 ms                        100 ms                    300 ms
//   a asked to stop,            deadline: a aborted       flush done: close returns
//   starts the flush            while it awaits the flush

#[kata_harness::test]
async fn stage4_a_clean_up_shielded_by_an_aborted_job_still_completes() {
    let hint = STAGE4.hint(
        "shield must accept work while close is under way (that is when stopping jobs shield \
         their clean-up) and close must wait for it: only once close has returned is it Closed",
    );
    let jobs = Jobs::new(1, &hint);
    let (scheduler, timeline, names) =
        (jobs.scheduler.clone(), jobs.timeline.clone(), jobs.names());
    jobs.custom("a", move |token| async move {
        token.cancelled().await;
        let flush = timeline.watch("flush", sleep(ms(300)));
        match scheduler.shield(flush) {
            Ok(flushing) => {
                names.name(flushing.id(), "flush");
                flushing.await;
                Err(Cancelled)
            }
            Err(Closed) => Ok(()), // Reported finished: the report then says what went wrong.
        }
    });
    jobs.let_them_start().await;
    let (report, at) = jobs.close(100, &hint).await;
    check_eq("the flush's life", jobs.life("flush"), ran(0, 300), &hint);
    assert_elapsed("close(100 ms)", at.0, ms(300), &hint);
    check_eq(
        "close(100 ms)'s report",
        report,
        Some(Named::default().aborted(&["a"]).shielded(&["flush"])),
        &hint,
    );
}

#[kata_harness::test]
async fn stage4_shielded_work_does_not_wait_for_a_slot() {
    let hint = STAGE4.hint(
        "shielded work starts at once, without a slot: a job that awaits its own shielded work \
         while it holds the last slot would otherwise wait for ever",
    );
    let jobs = Jobs::new(1, &hint);
    let (scheduler, names) = (jobs.scheduler.clone(), jobs.names());
    jobs.custom("a", move |_token| async move {
        let work = scheduler.shield(async {
            sleep(ms(100)).await;
            5
        });
        if let Ok(work) = work {
            names.name(work.id(), "s");
            work.await;
        }
        Ok(())
    });
    sleep(ms(200)).await;
    check_eq(
        "the life of job a, which awaits 100 ms of shielded work",
        jobs.life("a"),
        ran(0, 100),
        &hint,
    );
    let (report, _) = jobs.close(500, &hint).await;
    check_eq(
        "close(500 ms)'s report",
        report,
        Some(Named::default().finished(&["a"]).shielded(&["s"])),
        &hint,
    );
}

#[kata_harness::test]
async fn stage4_shield_after_close_is_refused() {
    let hint = STAGE4.hint(
        "once close has returned, nothing would wait for new shielded work: refuse it with \
         Err(Closed), and drop the work unstarted",
    );
    let jobs = Jobs::new(1, &hint);
    let (report, _) = jobs.close(100, &hint).await;
    check_eq(
        "close(100 ms) with nothing to do",
        report,
        Some(Named::default()),
        &STAGE3.hint("a scheduler with no jobs closes at once, with an empty report"),
    );
    let refused = jobs
        .scheduler
        .shield(jobs.timeline.watch("late", async {}))
        .err();
    check_eq("shield after close", refused, Some(Closed), &hint);
    sleep(ms(100)).await;
    check_eq(
        "when the refused work started (None: never)",
        jobs.life("late").0.started.map(At),
        None,
        &hint,
    );
}

/// Shielded work that panics after 100 ms, with a formatted (`String`) message.
async fn failing_flush() -> u32 {
    sleep(ms(100)).await;
    panic_with_string(format_args!("flush failed: {} is full", "/var"))
}

//   shielded work s panics at 100 ms, a task awaits its handle; close(500 ms) at 0 ms:
//   0 ms                  100 ms
//   close                 s panics: the awaiting task gets that panic; close returns

#[kata_harness::test]
async fn stage4_shielded_work_that_panics_is_counted_out_and_its_caller_gets_the_panic() {
    let hint = STAGE4.hint(
        "shielded work counts as over however it ends, a panic included: count it out in the \
         Drop of a guard that lives in its task (Drop runs while a panic unwinds), not in a \
         line after `work.await`, which a panic never reaches",
    );
    let jobs = Jobs::new(1, &hint);
    let flush = jobs.shield(failing_flush());
    jobs.name(flush.id(), "s");
    let caller = tokio::spawn(flush);
    let (report, at) = jobs.close(500, &hint).await;
    assert_elapsed(
        "close(500 ms) with shielded work that panics at 100 ms",
        at.0,
        ms(100),
        &hint,
    );
    check_eq(
        "close(500 ms)'s report",
        report,
        Some(Named::default().shielded(&["s"])),
        &STAGE4.hint("shielded work is reported shielded, whichever way it ended"),
    );
    let caller_hint = STAGE4.hint(
        "awaiting a Shielded handle behaves like awaiting the work inline: if the work panicked, \
         the same panic (std::panic::resume_unwind(error.into_panic())), not a new one made \
         by unwrap or expect",
    );
    let got = match completes_within("awaiting the shielded work", caller, ms(1000), &caller_hint)
        .await
    {
        Ok(output) => format!("Ok({output})"),
        Err(error) => match error.try_into_panic() {
            Ok(payload) => format!("a panic: {}", panic_text(payload.as_ref())),
            Err(error) => format!("{error}"),
        },
    };
    check_eq(
        "what a task awaiting the shielded work got",
        got,
        "a panic: flush failed: /var is full".to_owned(),
        &caller_hint,
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 5: cancellation safety: a select! loop that reads lines beside a tick loses nothing.
//
//   follow_lines, a tick every 100 ms; bytes arrive "first li" at 0, "ne\nsecond" at 150,
//   " line\nlast" at 250, and the input ends at 320 ms:
//   0 ms      100 ms   150 ms         200 ms   250 ms          300 ms   320 ms
//   |---------|--------|--------------|--------|---------------|--------|
//             tick     "first line"   tick     "second line"   tick     "last", returns

/// Lines and ticks as `follow` reports them.
fn events(list: &[(u64, Option<&str>)]) -> Vec<(At, Event)> {
    list.iter()
        .map(|&(at, line)| {
            let event = line.map_or(Event::Tick, |line| Event::Line(line.to_owned()));
            (At(ms(at)), event)
        })
        .collect()
}

#[kata_harness::test]
async fn stage5_a_line_cut_by_a_tick_arrives_whole() {
    let reader = scripted(
        &[
            (0, b"first li"),
            (150, b"ne\nsecond"),
            (250, b" line\nlast"),
        ],
        320,
    );
    let run = follow(reader, ms(100), &CancelToken::new(), &STAGE5).await;
    check_eq(
        "what follow_lines reported, and when",
        run.events,
        events(&[
            (100, None),
            (150, Some("first line")),
            (200, None),
            (250, Some("second line")),
            (300, None),
            (320, Some("last")),
        ]),
        &STAGE5.hint(
            "when the tick wins the select!, the read branch is dropped with whatever it had \
             read: read_line is not cancel safe and loses half a line that way. \
             Lines::next_line is cancel safe: make the Lines once, before the loop",
        ),
    );
    check_eq(
        "follow_lines' result, and when it returned",
        (run.result, run.returned),
        (Ok(()), At(ms(320))),
        &STAGE5.hint("the end of the input ends follow_lines, with Ok(())"),
    );
}

#[kata_harness::test]
async fn stage5_lines_that_arrive_together_are_all_reported() {
    let reader = scripted(&[(50, b"a\nb\nc\n"), (130, b"d\n")], 170);
    let run = follow(reader, ms(100), &CancelToken::new(), &STAGE5).await;
    check_eq(
        "what follow_lines reported, and when",
        run.events,
        events(&[
            (50, Some("a")),
            (50, Some("b")),
            (50, Some("c")),
            (100, None),
            (130, Some("d")),
        ]),
        &STAGE5.hint(
            "a BufReader reads more than one line at a time and keeps the rest in its buffer: \
             make it once, before the loop, or the lines it read ahead are dropped with it",
        ),
    );
}

//   lines at 50, 130, 180 and 260 ms, a tick every 100 ms, the input ends at 330 ms:
//   ticks at 100, 200 and 300 ms: a line does not put the next tick off

#[kata_harness::test]
async fn stage5_ticks_keep_their_beat_while_lines_arrive() {
    let reader = scripted(
        &[(50, b"1\n"), (130, b"2\n"), (180, b"3\n"), (260, b"4\n")],
        330,
    );
    let run = follow(reader, ms(100), &CancelToken::new(), &STAGE5).await;
    let ticks: Vec<Duration> = run
        .events
        .iter()
        .filter(|(_, event)| *event == Event::Tick)
        .map(|(at, _)| at.0)
        .collect();
    assert_schedule(
        "ticks of follow_lines(every 100 ms), lines arriving at 50, 130, 180 and 260 ms",
        &ticks,
        &[ms(100), ms(200), ms(300)],
        &STAGE5.hint(
            "a sleep made inside the loop starts over each time a line wins the select!: make \
             one tokio::time::interval (interval_at, to skip the tick at 0 ms) before the loop",
        ),
    );
}

#[kata_harness::test]
async fn stage5_a_cancel_stops_the_loop_at_once() {
    let token = CancelToken::new();
    cancel_after(&token, 250);
    let reader = scripted(&[(0, b"half a li")], 10_000);
    let run = follow(reader, ms(100), &token, &STAGE5).await;
    check_eq(
        "follow_lines' result, and when it returned (cancelled at 250 ms, mid-line)",
        (run.result, run.returned),
        (Ok(()), At(ms(250))),
        &STAGE5.hint("race token.cancelled() in the same select!: return Ok(()) when it wins"),
    );
    check_eq(
        "what follow_lines reported",
        run.events,
        events(&[(100, None), (200, None)]),
        &STAGE5.hint("a half line is not a line: nothing but the ticks"),
    );
}

#[kata_harness::test]
async fn stage5_a_line_that_is_not_utf8_is_an_error() {
    let reader = scripted(&[(10, b"ok\n\xff\xfe\n")], 100);
    let run = follow(reader, ms(1000), &CancelToken::new(), &STAGE5).await;
    check_eq(
        "follow_lines' result on a line that is not UTF-8, and when it returned",
        (run.result, run.returned),
        (Err(std::io::ErrorKind::InvalidData), At(ms(10))),
        &STAGE5.hint(
            "return the read's error (next_line gives InvalidData for a line that is not \
             UTF-8): no panic, no line made up with replacement characters",
        ),
    );
    check_eq(
        "what follow_lines reported",
        run.events,
        events(&[(10, Some("ok"))]),
        &STAGE5.hint("the good line before the bad one is still reported"),
    );
}
