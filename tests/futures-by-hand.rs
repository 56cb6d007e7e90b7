//! The futures-by-hand kata's suite, run against both `exercises/futures-by-hand` and
//! `solutions/futures-by-hand`: the kata's precise specification.
//!
//! Most tests need no executor at all: they poll the kata's futures by hand (in `tokio_test`
//! mock tasks) with wakers that count their wake-ups and the clones of them still held, so each
//! clause of the waker contract is a check of its own: woken once there is progress, the waker
//! of the latest poll is the one woken, no waker kept once used or once its future is dropped.
//! Where a runtime is needed, awaiting goes through `completes_within`, so a future that
//! forgets to wake fails by name instead of hanging; the lost wake-up between two threads is
//! raced for real, on OS threads that start every round together, and a settle on a thread
//! outside the runtime wakes a waker that looks at the state at once. Stage 3's jobs are `async`
//! blocks, which are `!Unpin`, and mark on a timeline when they start, finish or are dropped.
//!
//! Stage by stage the tests reject the usual wrong answers: a yield that never wakes, keeps its
//! waker or is ready at once; a promise that wakes nobody, changes its outcome after it settled,
//! ignores its resolver's drop, or has an answer before it is done; done callbacks that run
//! inside the call that settles, out of order, after they were removed, never (when added late
//! or after one that panicked); one waker slot for many awaiters, a list of wakers that only
//! grows, a stale waker woken instead of the latest; an event that loses its waiter when it is
//! set and cleared before the waiter runs, a wake-up lost between checking and registering, and
//! a settle that wakes before it stores or while it holds its lock; a deadline that polls its
//! timer first, counts from the first poll, lets the future run past the limit, or puts it in a
//! `Box`.

kata_harness::install_allocator!();

#[path = "futures-by-hand/support.rs"]
mod support;

use std::task::Poll;
use std::time::Duration;

use futures_by_hand::{Elapsed, Event, PromiseError, deadline, promise, yield_now};
use kata_harness::completion::completes_within;
use kata_harness::heap::{self, assert_peak_below};
use kata_harness::leaks::settle;
use kata_harness::report::{check, check_eq, check_seq, fail, panic_with_string};
use kata_harness::timing::{Life, Timeline, assert_elapsed};
use kata_harness::wakers::CountingWaker;
use kata_harness::{Stage, ms};
use support::{
    Log, PATIENCE, Settle, assert_waiters_let_go, job, look_when_woken, poll_with, race_event,
    race_promise, shown,
};
use tokio::time::{Instant, sleep};
use tokio_test::task;

const STAGE1: Stage = Stage::new("futures-by-hand", 1);
const STAGE2: Stage = Stage::new("futures-by-hand", 2);
const STAGE3: Stage = Stage::new("futures-by-hand", 3);

// ---------------------------------------------------------------------------------------------
// Stage 1: a future that is Pending once, then a promise.
//
//   yield_now():  poll #1 ──► Pending, and the waker of poll #1 woken (else nobody polls again)
//                 poll #2 ──► Ready(())

#[kata_harness::test]
async fn stage1_yield_now_is_pending_once_then_ready() {
    let waker = CountingWaker::new();
    let mut yielding = task::spawn(yield_now());
    let first = poll_with(&mut yielding, &waker);
    check(
        "the first poll of yield_now()",
        first.is_pending(),
        shown(&first),
        "Poll::Pending",
        &STAGE1.hint("the first poll returns Poll::Pending: that is how a task lets others run"),
    );
    check_eq(
        "wake-ups of the first poll's waker",
        waker.wakes(),
        1,
        &STAGE1.hint(
            "Pending promises a wake-up: call cx.waker().wake_by_ref() once before returning it. \
             Without it nobody ever polls the future again, and `.await` on it never ends",
        ),
    );
    check_eq(
        "clones of that waker yield_now() still holds",
        waker.held_elsewhere(),
        0,
        &STAGE1.hint("the wake-up is already done: wake_by_ref() and keep no clone of the waker"),
    );
    let second = poll_with(&mut yielding, &waker);
    check(
        "the second poll of yield_now()",
        second.is_ready(),
        shown(&second),
        "Poll::Ready(())",
        &STAGE1.hint(
            "remember that you yielded (a bool field set at the first poll) and return \
             Poll::Ready(()) at the next poll",
        ),
    );
    check_eq(
        "wake-ups after the second poll",
        waker.wakes(),
        1,
        &STAGE1.hint("wake only when you return Pending: once Ready, nobody waits any more"),
    );
    let mut another = task::spawn(yield_now());
    let first = another.poll();
    check(
        "the first poll of a second yield_now() future",
        first.is_pending(),
        shown(&first),
        "Poll::Pending",
        &STAGE1.hint(
            "each yield_now() future keeps its state in its own fields: state shared by all \
             of them (a static) makes the second one ready at once",
        ),
    );
}

#[kata_harness::test]
async fn stage1_awaiting_yield_now_lets_another_task_run() {
    let other = tokio::spawn(async {});
    let start = Instant::now();
    let never_woken = STAGE1.hint(
        "the runtime polled yield_now() again only when the test's own timer woke the task: \
         its first poll returned Pending without waking the waker (a Pending nobody wakes is \
         a hang)",
    );
    completes_within("yield_now().await", yield_now(), ms(1000), &never_woken).await;
    assert_elapsed(
        "yield_now().await",
        start.elapsed(),
        Duration::ZERO,
        &never_woken,
    );
    check(
        "a task spawned just before yield_now().await",
        other.is_finished(),
        "had not run yet",
        "had run to its end",
        &STAGE1.hint(
            "return Pending (after waking) at the first poll: the runtime then runs the other \
             tasks before it polls again. A future that is Ready at once never lets them",
        ),
    );
}

#[kata_harness::test]
async fn stage1_result_before_settling_is_a_not_done_error() {
    let (_resolver, answer) = promise::<u32, String>();
    let hint = STAGE1.hint(
        "an unsettled promise has no outcome yet: result() says Err(PromiseError::NotDone) at \
         once (it never waits), and is_done() says false",
    );
    check_eq(
        "result() of a promise nobody settled",
        answer.result(),
        Err(PromiseError::NotDone),
        &hint,
    );
    check_eq(
        "is_done() of a promise nobody settled",
        answer.is_done(),
        false,
        &hint,
    );
}

#[kata_harness::test]
async fn stage1_resolve_wakes_the_awaiter_with_the_value() {
    let (resolver, answer) = promise::<u32, String>();
    let mut awaiter = task::spawn(answer.clone());
    let first = awaiter.poll();
    check(
        "the awaiter's first poll, before anything settled",
        first.is_pending(),
        shown(&first),
        "Poll::Pending",
        &STAGE1.hint("until the promise is settled, poll stores the waker and returns Pending"),
    );
    check_eq(
        "resolver.resolve(7)",
        resolver.resolve(7),
        Ok(()),
        &STAGE1.hint("resolve says Ok(()) when it settled the promise"),
    );
    check(
        "the awaiter, after resolve(7)",
        awaiter.is_woken(),
        "not woken: it would wait for ever",
        "woken",
        &STAGE1.hint(
            "settling wakes the waker the awaiter's last poll stored: take it out of the state \
             and call wake() on it",
        ),
    );
    check_eq(
        "the awaiter's next poll",
        awaiter.poll(),
        Poll::Ready(Ok(7)),
        &STAGE1.hint("once settled, poll returns Ready with a clone of the outcome"),
    );
    check_eq(
        "result() after resolve(7)",
        answer.result(),
        Ok(7),
        &STAGE1.hint(
            "resolve takes self, so the resolver is dropped right after it: its Drop must leave \
             a settled promise alone (settle only if nothing did before)",
        ),
    );
    check_eq(
        "is_done() after resolve(7)",
        answer.is_done(),
        true,
        &STAGE1.hint("a settled promise is done"),
    );
}

#[kata_harness::test]
async fn stage1_reject_wakes_the_awaiter_with_the_error() {
    let (resolver, answer) = promise::<u32, String>();
    let mut awaiter = task::spawn(answer.clone());
    let _ = awaiter.poll();
    check_eq(
        "resolver.reject(\"no answer\")",
        resolver.reject("no answer".to_owned()),
        Ok(()),
        &STAGE1.hint("reject says Ok(()) when it settled the promise"),
    );
    check(
        "the awaiter, after reject",
        awaiter.is_woken(),
        "not woken: it would wait for ever",
        "woken",
        &STAGE1.hint("reject settles the promise like resolve: it wakes the stored waker too"),
    );
    let rejected = Err(PromiseError::Rejected("no answer".to_owned()));
    let hint = STAGE1.hint("a rejected promise settles to Err(PromiseError::Rejected(the error))");
    check_eq(
        "the awaiter's next poll",
        awaiter.poll(),
        Poll::Ready(rejected.clone()),
        &hint,
    );
    check_eq("result() after reject", answer.result(), rejected, &hint);
}

#[kata_harness::test]
async fn stage1_cancel_settles_the_promise_and_resolve_gives_its_value_back() {
    let (resolver, answer) = promise::<u32, String>();
    let mut awaiter = task::spawn(answer.clone());
    let _ = awaiter.poll();
    check_eq(
        "cancel() of an unsettled promise",
        answer.cancel(),
        true,
        &STAGE1.hint("cancel returns true when it is the call that settled the promise"),
    );
    check(
        "the awaiter, after cancel()",
        awaiter.is_woken(),
        "not woken: it would wait for ever",
        "woken",
        &STAGE1.hint("cancel settles the promise like resolve: it wakes the stored waker too"),
    );
    check_eq(
        "the awaiter's next poll",
        awaiter.poll(),
        Poll::Ready(Err(PromiseError::Cancelled)),
        &STAGE1.hint("a cancelled promise settles to Err(PromiseError::Cancelled)"),
    );
    check_eq(
        "cancel() a second time",
        answer.cancel(),
        false,
        &STAGE1.hint("a settled promise cannot be cancelled: false, and nothing changes"),
    );
    check_eq(
        "resolver.resolve(7) after cancel()",
        resolver.resolve(7),
        Err(7),
        &STAGE1.hint(
            "the promise is settled already: give the value back as Err(7), as \
             oneshot::Sender::send does, and change nothing",
        ),
    );
    check_eq(
        "result() after cancel(), then resolve(7)",
        answer.result(),
        Err(PromiseError::Cancelled),
        &STAGE1.hint("a promise settles once: the first settle wins, the others change nothing"),
    );
}

#[kata_harness::test]
async fn stage1_a_settled_promise_cannot_be_cancelled() {
    let (resolver, answer) = promise::<u32, String>();
    let _ = resolver.resolve(7);
    check_eq(
        "cancel() after resolve(7)",
        answer.cancel(),
        false,
        &STAGE1.hint("cancel on a settled promise returns false: it did not cancel anything"),
    );
    check_eq(
        "result() after resolve(7), then cancel()",
        answer.result(),
        Ok(7),
        &STAGE1.hint("a promise settles once: cancel must not replace the outcome"),
    );
}

#[kata_harness::test]
async fn stage1_dropping_the_resolver_abandons_the_promise() {
    let (resolver, answer) = promise::<u32, String>();
    let mut awaiter = task::spawn(answer.clone());
    let _ = awaiter.poll();
    drop(resolver);
    check(
        "the awaiter, after drop(resolver)",
        awaiter.is_woken(),
        "not woken: it would wait for ever, for a resolver that is gone",
        "woken",
        &STAGE1.hint(
            "nobody can settle the promise once its resolver is gone: implement Drop for \
             Resolver, settling with Err(PromiseError::Abandoned) (which wakes the awaiters)",
        ),
    );
    let hint = STAGE1.hint("an abandoned promise settles to Err(PromiseError::Abandoned)");
    check_eq(
        "the awaiter's next poll",
        awaiter.poll(),
        Poll::Ready(Err(PromiseError::Abandoned)),
        &hint,
    );
    check_eq(
        "result() after drop(resolver)",
        answer.result(),
        Err(PromiseError::Abandoned),
        &hint,
    );
}

#[kata_harness::test]
#[case::resolve(Settle::Resolve)]
#[case::reject(Settle::Reject)]
#[case::cancel(Settle::Cancel)]
#[case::abandon(Settle::Abandon)]
async fn stage1_settling_wakes_the_awaiter_once_and_lets_its_waker_go(#[case] how: Settle) {
    let waker = CountingWaker::new();
    let (resolver, answer) = promise();
    let mut awaiter = task::spawn(answer.clone());
    let _ = poll_with(&mut awaiter, &waker);
    check_eq(
        "clones of the awaiter's waker held while it waits",
        waker.held_elsewhere(),
        1,
        &STAGE1.hint(
            "a Pending poll stores one clone of cx.waker() in the promise's shared state, so \
             that whoever settles it can wake the awaiter",
        ),
    );
    how.apply(resolver, &answer);
    check_eq(
        &format!("wake-ups of the awaiter's waker after {}", how.call()),
        waker.wakes(),
        1,
        &STAGE1.hint(
            "every way of settling wakes the awaiters, once: let resolve, reject, cancel and \
             the resolver's Drop share one settle function",
        ),
    );
    check_eq(
        &format!(
            "clones of the awaiter's waker still held after {}",
            how.call()
        ),
        waker.held_elsewhere(),
        0,
        &STAGE1.hint(
            "take the wakers out of the state when you settle and wake them by value \
             (waker.wake()): a waker kept after its wake-up keeps its task alive for nothing",
        ),
    );
    check_eq(
        &format!("the awaiter's next poll, after {}", how.call()),
        poll_with(&mut awaiter, &waker),
        Poll::Ready(how.outcome()),
        &STAGE1.hint("poll returns Ready with the outcome once the promise is settled"),
    );
}

#[kata_harness::test]
async fn stage1_the_latest_waker_is_the_one_woken() {
    let (earlier, latest) = (CountingWaker::new(), CountingWaker::new());
    let (resolver, answer) = promise::<u32, String>();
    let mut awaiter = task::spawn(answer.clone());
    let _ = poll_with(&mut awaiter, &earlier);
    let _ = poll_with(&mut awaiter, &latest);
    check_eq(
        "clones of the first poll's waker held once the second poll brought another",
        earlier.held_elsewhere(),
        0,
        &STAGE1.hint(
            "a poll replaces the awaiter's stored waker (the future may have moved to another \
             task, which the old waker does not reach): store the new one in the same slot, \
             and the old one is dropped",
        ),
    );
    let _ = resolver.resolve(7);
    check_eq(
        "wake-ups of the second (latest) poll's waker",
        latest.wakes(),
        1,
        &STAGE1.hint("wake the waker of the latest poll: only that one reaches the waiting task"),
    );
    check_eq(
        "wake-ups of the first poll's waker",
        earlier.wakes(),
        0,
        &STAGE1.hint("a waker replaced by a later poll is gone: it must not be woken"),
    );
}

#[kata_harness::test]
async fn stage1_a_dropped_awaiter_lets_its_waker_go() {
    let waker = CountingWaker::new();
    let (_resolver, answer) = promise::<u32, String>();
    let mut awaiter = task::spawn(answer.clone());
    let _ = poll_with(&mut awaiter, &waker);
    drop(awaiter);
    check_eq(
        "clones of the waker of an awaiter dropped before the promise settled",
        waker.held_elsewhere(),
        0,
        &STAGE1.hint(
            "an awaiter is dropped before the end when a select! takes another branch or a \
             timeout fires: implement Drop for Promise to take its waker out of the state",
        ),
    );
}

//   awaiting task:   0 ms awaits the promise ─────────────── 100 ms Ok(7)
//   resolving task:  0 ms sleeps ──────────────────────────── 100 ms resolve(7)

#[kata_harness::test]
async fn stage1_a_task_awaiting_a_promise_finishes_when_another_task_resolves_it() {
    let timeline = Timeline::start();
    let (resolver, answer) = promise::<u32, String>();
    let awaiting = tokio::spawn(timeline.watch("awaiter", answer));
    tokio::spawn(async move {
        sleep(ms(100)).await;
        let _ = resolver.resolve(7);
    });
    let got = completes_within(
        "a task awaiting a promise that another task resolves at 100 ms",
        awaiting,
        PATIENCE,
        &STAGE1.hint(
            "the awaiting task was never woken: its poll must store cx.waker(), and resolve \
             must wake what is stored",
        ),
    )
    .await;
    check_eq(
        "what the awaiting task got",
        got.ok(),
        Some(Ok(7)),
        &STAGE1.hint("awaiting a resolved promise gives Ok(the value)"),
    );
    let finished = timeline.life("awaiter").finished.unwrap_or_default();
    assert_elapsed(
        "when the awaiting task finished",
        finished,
        ms(100),
        &STAGE1.hint("the awaiter is woken by the resolve itself, at 100 ms: no polling loop"),
    );
}

// Done callbacks run after the call that settles the promise returns, on the runtime, in the
// order they were added, each once:
//
//   add 1, 2, 3 ── resolve(7) called ── resolve(7) returned ── next turns: callback 1, 2, 3

#[kata_harness::test]
async fn stage1_done_callbacks_run_after_the_settling_call_in_order() {
    let log = Log::default();
    let (resolver, answer) = promise::<u32, String>();
    for name in ["callback 1", "callback 2", "callback 3"] {
        answer.add_done_callback(log.callback(name, Some(answer.clone())));
    }
    // Whatever runs the callbacks gets a turn to start waiting before the promise settles.
    settle().await;
    log.push("resolve(7) called");
    let _ = resolver.resolve(7);
    log.push("resolve(7) returned");
    check_seq(
        "what happened until resolve(7) returned",
        &log.entries(),
        &["resolve(7) called", "resolve(7) returned"].map(String::from),
        &STAGE1.hint(
            "callbacks never run inside the call that settles: hand them to a task \
             (tokio::spawn) that runs them when the runtime next gets a turn, as asyncio's \
             call_soon does",
        ),
    );
    settle().await;
    let ran: Vec<String> = (1..=3)
        .map(|n| format!("callback {n}: Ok(7), result() = Ok(7)"))
        .collect();
    check_seq(
        "what the callbacks saw, once the runtime had a turn",
        &log.entries()[2..],
        &ran,
        &STAGE1.hint(
            "each callback runs once, in the order it was added (a VecDeque: push_back, \
             pop_front), with the outcome, when the promise already reads as done; run them \
             outside the lock, so that a callback can call result()",
        ),
    );
}

#[kata_harness::test]
async fn stage1_done_callbacks_run_once_even_those_added_by_a_callback() {
    let log = Log::default();
    let (resolver, answer) = promise::<u32, String>();
    answer.add_done_callback(log.callback("callback 1", None));
    let (inner, inner_log) = (answer.clone(), log.clone());
    answer.add_done_callback(move |outcome| {
        inner_log.push(format!("callback 2: {outcome:?}"));
        inner.add_done_callback(inner_log.callback("callback 3, added by callback 2", None));
    });
    let _ = resolver.resolve(7);
    settle().await;
    answer.cancel();
    let mut awaiter = task::spawn(answer.clone());
    let _ = awaiter.poll();
    settle().await;
    check_seq(
        "what the callbacks saw, by the end",
        &log.entries(),
        &[
            "callback 1: Ok(7)",
            "callback 2: Ok(7)",
            "callback 3, added by callback 2: Ok(7)",
        ]
        .map(String::from),
        &STAGE1.hint(
            "every callback runs exactly once: take each out of the list as it runs (nothing \
             else settles or polls them again), and a callback added while they run, even by \
             one of them, runs too, after them",
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_removed_callback_never_runs() {
    let log = Log::default();
    let (resolver, answer) = promise::<u32, String>();
    let ids: Vec<_> = (1..=4)
        .map(|n| answer.add_done_callback(log.callback(&format!("callback {n}"), None)))
        .collect();
    let stable = STAGE1.hint(
        "a CallbackId names one callback for good: give each a number of its own (not its \
         place in the list, which shifts when another is removed)",
    );
    check_eq(
        "remove_done_callback(id of callback 2)",
        answer.remove_done_callback(ids[1]),
        true,
        &STAGE1.hint("removing a callback that has not run returns true"),
    );
    check_eq(
        "remove_done_callback(id of callback 2), a second time",
        answer.remove_done_callback(ids[1]),
        false,
        &STAGE1.hint("a callback can be removed once: the second time it is not there (false)"),
    );
    check_eq(
        "remove_done_callback(id of callback 4), after callback 2 was removed",
        answer.remove_done_callback(ids[3]),
        true,
        &stable,
    );
    let _ = resolver.resolve(7);
    settle().await;
    check_seq(
        "the callbacks that ran",
        &log.entries(),
        &["callback 1: Ok(7)", "callback 3: Ok(7)"].map(String::from),
        &stable.and("a removed callback never runs, and the others all do"),
    );
    check_eq(
        "remove_done_callback(id of callback 1), after it ran",
        answer.remove_done_callback(ids[0]),
        false,
        &STAGE1.hint("a callback that ran is gone: removing it returns false"),
    );
}

#[kata_harness::test]
async fn stage1_a_callback_added_after_settling_runs_later() {
    let log = Log::default();
    let (resolver, answer) = promise::<u32, String>();
    let _ = resolver.resolve(7);
    log.push("add_done_callback called");
    answer.add_done_callback(log.callback("late callback", Some(answer.clone())));
    log.push("add_done_callback returned");
    settle().await;
    check_seq(
        "what happened",
        &log.entries(),
        &[
            "add_done_callback called",
            "add_done_callback returned",
            "late callback: Ok(7), result() = Ok(7)",
        ]
        .map(String::from),
        &STAGE1.hint(
            "a callback added to a settled promise still runs, but later, like the others, \
             never inside add_done_callback: a callback that sometimes runs at once and \
             sometimes later is a trap for whoever calls it",
        ),
    );
}

#[kata_harness::test]
#[case::reject(Settle::Reject)]
#[case::cancel(Settle::Cancel)]
#[case::abandon(Settle::Abandon)]
async fn stage1_callbacks_hear_how_the_promise_was_settled(#[case] how: Settle) {
    let log = Log::default();
    let (resolver, answer) = promise();
    answer.add_done_callback(log.callback("callback", None));
    how.apply(resolver, &answer);
    settle().await;
    check_seq(
        &format!("what the callback saw after {}", how.call()),
        &log.entries(),
        &[format!("callback: {:?}", how.outcome())],
        &STAGE1.hint(
            "every way of settling runs the callbacks with the outcome: reject, cancel and the \
             resolver's drop too",
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_panicking_callback_does_not_stop_the_others() {
    let log = Log::default();
    let (resolver, answer) = promise::<u32, String>();
    answer.add_done_callback(log.callback("callback 1", None));
    answer.add_done_callback(|_| panic_with_string(format_args!("callback {} failed", 2)));
    answer.add_done_callback(log.callback("callback 3", None));
    let _ = resolver.resolve(7);
    settle().await;
    answer.add_done_callback(log.callback("callback 4, added afterwards", None));
    settle().await;
    check_seq(
        "the callbacks that ran, when callback 2 panics",
        &log.entries(),
        &[
            "callback 1: Ok(7)",
            "callback 3: Ok(7)",
            "callback 4, added afterwards: Ok(7)",
        ]
        .map(String::from),
        &STAGE1.hint(
            "run each callback inside std::panic::catch_unwind (with AssertUnwindSafe) and go \
             on with the next: asyncio reports a failing callback and runs the others, and a \
             panic must not leave the promise unable to run the ones added later",
        ),
    );
}

// A waker is code, and it may run at once on the thread that settles: some executors poll the
// task right inside wake(). So a settle stores the outcome first and wakes after it has let go
// of its lock; and it may come from any thread, even one outside the runtime:
//
//   test:         poll ── Pending (waker W stored) ............ callback runs on the runtime
//   OS thread:                      resolve(7) ── W woken: result() = Ok(7) ── returns

#[kata_harness::test]
async fn stage1_a_settle_outside_the_runtime_wakes_with_the_outcome_stored() {
    let log = Log::default();
    let (resolver, answer) = promise::<u32, String>();
    answer.add_done_callback(log.callback("callback", None));
    let seen = answer.clone();
    let woken = look_when_woken(
        answer.clone(),
        move || {
            let _ = resolver.resolve(7);
        },
        move || format!("result() said {:?}", seen.result()),
    );
    check_eq(
        "an awaiter of a promise resolved on a thread outside the runtime",
        woken,
        "woken, and result() said Ok(7) in the wake-up".to_owned(),
        &STAGE1.hint(
            "a woken task may look at the promise at once, on the settling thread: store the \
             outcome before waking, and wake after the lock is let go (take the wakers out \
             under the lock, drop the guard, then wake them; a std Mutex locked twice on one \
             thread deadlocks). Settling spawns nothing, so it works outside the runtime",
        ),
    );
    settle().await;
    check_seq(
        "what the done callback saw, once the runtime had a turn",
        &log.entries(),
        &["callback: Ok(7)".to_owned()],
        &STAGE1.hint(
            "a promise settled outside the runtime still runs its callbacks: the task that \
             runs them is spawned by add_done_callback and waits like any awaiter",
        ),
    );
}

// Stage 1 on two threads. A wake-up is lost when poll looks at the state (not settled yet),
// lets go of the lock, and only then stores its waker: a resolve on another thread in between
// finds no waker to wake, and the awaiter waits for ever. One thread never interleaves them,
// so this test races them for real: round after round, thread 0 starts awaiting a fresh
// promise at the instant thread 1 resolves it (the lockstep threads of support.rs, real clock).

#[kata_harness::test(watchdog_secs = 10)]
async fn stage1_no_wake_up_is_lost_when_another_thread_resolves() {
    let raced = race_promise(20_000).await;
    if let Some(round) = raced.lost {
        fail(
            &format!(
                "{} rounds of: thread 0 polls an awaiter for the first time while thread 1 \
                 resolves the promise",
                raced.rounds
            ),
            format_args!(
                "in round {round}, the awaiter returned Pending and was never woken: it would \
                 wait for ever"
            ),
            "an awaiter that returns Pending woken by the resolve",
            &STAGE1.hint(
                "the awaiter's waker was stored after the resolve had looked for it: in poll, \
                 look at the outcome and store the waker under one lock (one MutexGuard), and \
                 settle under that same lock",
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: many awaiters, and an event.

#[kata_harness::test]
async fn stage2_one_settle_wakes_every_awaiter() {
    let (resolver, answer) = promise::<u32, String>();
    let mut awaiters: Vec<_> = (0..5).map(|_| task::spawn(answer.clone())).collect();
    let first: Vec<bool> = awaiters.iter_mut().map(|a| a.poll().is_pending()).collect();
    check_seq(
        "awaiters 1 to 5 pending at their first poll",
        &first,
        &[true; 5],
        &STAGE2.hint("an unsettled promise is pending for every awaiter"),
    );
    let _ = resolver.resolve(7);
    let woken: Vec<bool> = awaiters.iter().map(|a| a.is_woken()).collect();
    check_seq(
        "awaiters 1 to 5 woken by resolve(7)",
        &woken,
        &[true; 5],
        &STAGE2.hint(
            "keep a waker per awaiter, not one per promise: a single Option<Waker> holds only \
             the waker of the awaiter polled last, and the others wait for ever. Give each \
             awaiter a key to its own slot (a map from key to waker)",
        ),
    );
    let got: Vec<_> = awaiters.iter_mut().map(|a| a.poll()).collect();
    check_seq(
        "what awaiters 1 to 5 got",
        &got,
        &vec![Poll::Ready(Ok(7)); 5],
        &STAGE2.hint("each awaiter gets its own clone of the outcome"),
    );
}

#[kata_harness::test]
async fn stage2_each_awaiter_keeps_only_its_latest_waker() {
    let wakers = [(); 4].map(|()| CountingWaker::new());
    let [a, b, c, d] = &wakers;
    let (resolver, answer) = promise::<u32, String>();
    let (mut first, mut second) = (task::spawn(answer.clone()), task::spawn(answer.clone()));
    let mut third = task::spawn(answer.clone());
    let _ = (poll_with(&mut first, a), poll_with(&mut first, b));
    let _ = (poll_with(&mut second, c), poll_with(&mut third, d));
    drop(third);
    let held = || wakers.each_ref().map(CountingWaker::held_elsewhere);
    let what = "wakers A and B (awaiter 1's first and second poll), C (awaiter 2), D (awaiter 3, \
                then dropped)";
    check_eq(
        &format!("clones held of {what}"),
        held(),
        [0, 1, 1, 0],
        &STAGE2.hint(
            "one slot per awaiter: its next poll replaces its waker (pushing to a list keeps \
             the stale one), and its Drop removes the slot",
        ),
    );
    let _ = resolver.resolve(7);
    check_eq(
        &format!("wake-ups of {what}, after resolve(7)"),
        wakers.each_ref().map(CountingWaker::wakes),
        [0, 1, 1, 0],
        &STAGE2.hint(
            "wake the latest waker of each awaiter still waiting, once: not a stale waker, \
             not the waker of an awaiter that was dropped",
        ),
    );
    check_eq(
        &format!("clones held of {what}, after resolve(7)"),
        held(),
        [0; 4],
        &STAGE2.hint("settling empties every slot: the wakers go once they are woken"),
    );
}

#[kata_harness::test]
async fn stage2_ten_thousand_dropped_awaiters_give_their_memory_back() {
    let (_resolver, answer) = promise::<u32, String>();
    assert_waiters_let_go(
        "awaiters of a promise nobody settles",
        || answer.clone(),
        &STAGE2.hint(
            "an awaiter dropped before the promise settles must take its slot with it (Drop \
             for Promise): a list of wakers that only grows keeps every awaiter that ever \
             waited, for as long as the promise lives",
        ),
    );
}

//   awaiter 1:  0 ms ───────────────────────────────────── 100 ms Ok(7)
//   awaiter 2:        20 ms ────────────────────────────── 100 ms Ok(7)
//   awaiter 3:              40 ms ──── 60 ms dropped (its 20 ms timeout)
//   awaiter 4:                                  80 ms ──── 100 ms Ok(7)
//   resolver:   sleeps ─────────────────────────────────── 100 ms resolve(7)

#[kata_harness::test]
async fn stage2_awaiters_on_several_tasks_finish_together_when_resolved() {
    let timeline = Timeline::start();
    let (resolver, answer) = promise::<u32, String>();
    let awaiters: Vec<_> = [(1, 0), (2, 20), (3, 40), (4, 80)]
        .into_iter()
        .map(|(n, start)| {
            let awaiter = timeline.watch(format!("awaiter {n}"), answer.clone());
            tokio::spawn(async move {
                sleep(ms(start)).await;
                if n == 3 {
                    tokio::time::timeout(ms(20), awaiter).await.ok()
                } else {
                    Some(awaiter.await)
                }
            })
        })
        .collect();
    tokio::spawn(async move {
        sleep(ms(100)).await;
        let _ = resolver.resolve(7);
    });
    let hint = STAGE2.hint(
        "every awaiter still waiting is woken by the one resolve, at 100 ms; the one dropped at \
         60 ms is simply gone",
    );
    let got = completes_within(
        "four tasks awaiting one promise, resolved at 100 ms",
        futures::future::join_all(awaiters),
        PATIENCE,
        &hint,
    )
    .await;
    let got: Vec<_> = got.into_iter().map(Result::ok).collect();
    let [ok, dropped] = [Some(Some(Ok(7))), Some(None)];
    check_seq(
        "what the four tasks got",
        &got,
        &[ok.clone(), ok.clone(), dropped, ok],
        &hint,
    );
    let lives: Vec<Life> = (1..=4)
        .map(|n| timeline.life(&format!("awaiter {n}")))
        .collect();
    let life = |started: u64, finished: Option<u64>, dropped: Option<u64>| Life {
        started: Some(ms(started)),
        finished: finished.map(ms),
        dropped: dropped.map(ms),
    };
    check_seq(
        "when awaiters 1 to 4 started, finished or were dropped",
        &lives,
        &[
            life(0, Some(100), None),
            life(20, Some(100), None),
            life(40, None, Some(60)),
            life(80, Some(100), None),
        ],
        &hint,
    );
}

// An event: set() releases every waiter; clear() makes the ones that start later wait.
//
//   waiter 1:  0 ms ──────── 100 ms released
//   set():                   100 ms     clear(): 150 ms
//   waiter 2:                                      200 ms ──────── 300 ms released
//   set():                                                         300 ms
//   waiter 3:                                                             350 ms: set, done at once

#[kata_harness::test]
async fn stage2_an_event_releases_its_waiters_when_set() {
    let timeline = Timeline::start();
    let event = Event::new();
    let waiters: Vec<_> = [(1, 0), (2, 200), (3, 350)]
        .into_iter()
        .map(|(n, start)| {
            let waiter = timeline.watch(format!("waiter {n}"), event.wait());
            tokio::spawn(async move {
                sleep(ms(start)).await;
                waiter.await;
            })
        })
        .collect();
    let switch = event.clone();
    tokio::spawn(async move {
        sleep(ms(100)).await;
        switch.set();
        sleep(ms(50)).await;
        switch.clear();
        sleep(ms(150)).await;
        switch.set();
    });
    let hint = STAGE2.hint(
        "wait() finishes at once when the event is set, and otherwise stores its waker; set() \
         wakes every stored waker; clear() only lowers the flag, so waiter 2 waits for the next \
         set()",
    );
    completes_within(
        "three waiters of an event set at 100 ms, cleared at 150 ms, set at 300 ms",
        futures::future::join_all(waiters),
        PATIENCE,
        &hint,
    )
    .await;
    let finished: Vec<_> = (1..=3)
        .map(|n| timeline.life(&format!("waiter {n}")).finished)
        .collect();
    check_seq(
        "when waiters 1, 2, 3 (started at 0, 200, 350 ms) finished",
        &finished,
        &[Some(ms(100)), Some(ms(300)), Some(ms(350))],
        &hint,
    );
}

#[kata_harness::test]
async fn stage2_an_event_starts_clear_and_set_wakes_its_waiter() {
    let event = Event::new();
    check_eq(
        "is_set() of a new event",
        event.is_set(),
        false,
        &STAGE2.hint("a new event is clear"),
    );
    let waker = CountingWaker::new();
    let mut waiter = task::spawn(event.wait());
    let first = poll_with(&mut waiter, &waker);
    check(
        "the first poll of wait() on a clear event",
        first.is_pending(),
        shown(&first),
        "Poll::Pending",
        &STAGE2.hint("a clear event keeps its waiters waiting: store the waker, return Pending"),
    );
    event.set();
    check_eq(
        "is_set() after set()",
        event.is_set(),
        true,
        &STAGE2.hint("set() raises the flag"),
    );
    check_eq(
        "wake-ups of the waiter's waker after set()",
        waker.wakes(),
        1,
        &STAGE2.hint("set() wakes every waker stored by a waiting wait(), once"),
    );
    check_eq(
        "clones of the waiter's waker still held after set()",
        waker.held_elsewhere(),
        0,
        &STAGE2.hint("set() takes the wakers out as it wakes them"),
    );
    let next = poll_with(&mut waiter, &waker);
    check_eq(
        "the waiter's next poll",
        shown(&next),
        shown(&Poll::Ready(())),
        &STAGE2.hint("a released waiter is Ready"),
    );
    let mut late = task::spawn(event.wait());
    let first = late.poll();
    check_eq(
        "the first poll of wait() on a set event",
        shown(&first),
        shown(&Poll::Ready(())),
        &STAGE2.hint("waiting on a set event finishes at the first poll"),
    );
}

#[kata_harness::test]
async fn stage2_set_releases_every_waiter_and_clear_holds_the_later_ones() {
    let event = Event::new();
    let mut waiters: Vec<_> = (0..3).map(|_| task::spawn(event.wait())).collect();
    for waiter in &mut waiters {
        let _ = waiter.poll();
    }
    event.clear();
    event.set();
    let woken: Vec<bool> = waiters.iter().map(|w| w.is_woken()).collect();
    check_seq(
        "waiters 1 to 3 woken by set()",
        &woken,
        &[true; 3],
        &STAGE2.hint(
            "a slot per waiter, each woken by set(), not one waker for the event; and clear() \
             on a clear event changes nothing: the waiters still wait, and keep their slots",
        ),
    );
    event.clear();
    check_eq(
        "is_set() after clear()",
        event.is_set(),
        false,
        &STAGE2.hint("clear() lowers the flag"),
    );
    let mut later = task::spawn(event.wait());
    let first = later.poll();
    check(
        "the first poll of wait() after clear()",
        first.is_pending(),
        shown(&first),
        "Poll::Pending",
        &STAGE2.hint("after clear(), a new waiter waits for the next set()"),
    );
    event.set();
    check(
        "that waiter, after the next set()",
        later.is_woken(),
        "not woken",
        "woken",
        &STAGE2.hint("set() after clear() wakes the waiters again"),
    );
}

//   waiter:  poll ── Pending ... set() ── clear() ... poll ── Ready (it was waiting when set came)

#[kata_harness::test]
async fn stage2_a_set_then_clear_before_the_waiter_runs_still_releases_it() {
    let event = Event::new();
    let mut waiter = task::spawn(event.wait());
    let _ = waiter.poll();
    event.set();
    event.clear();
    check(
        "the waiter, after set() then clear()",
        waiter.is_woken(),
        "not woken",
        "woken by set()",
        &STAGE2.hint("set() wakes the waiters even if clear() follows at once"),
    );
    let next = waiter.poll();
    check_eq(
        "the waiter's next poll, after set() then clear()",
        shown(&next),
        shown(&Poll::Ready(())),
        &STAGE2.hint(
            "the waiter was waiting when set() came, so it is released, although the flag is \
             clear again by the time it runs: looking only at the flag in poll misses it. \
             Count the sets (a number set() increases) and let a waiter finish when the count \
             has changed since it started waiting",
        ),
    );
    let mut later = task::spawn(event.wait());
    let first = later.poll();
    check(
        "the first poll of a waiter that starts after set() then clear()",
        first.is_pending(),
        shown(&first),
        "Poll::Pending",
        &STAGE2.hint("a waiter that starts after the clear() was not there for the set()"),
    );
}

#[kata_harness::test]
async fn stage2_event_waiters_keep_only_their_latest_waker() {
    let wakers = [(); 3].map(|()| CountingWaker::new());
    let [a, b, c] = &wakers;
    let event = Event::new();
    let (mut first, mut second) = (task::spawn(event.wait()), task::spawn(event.wait()));
    let _ = (poll_with(&mut first, a), poll_with(&mut first, b));
    let _ = poll_with(&mut second, c);
    drop(second);
    let what = "wakers A and B (waiter 1's first and second poll), C (waiter 2, then dropped)";
    check_eq(
        &format!("clones held of {what}"),
        wakers.each_ref().map(CountingWaker::held_elsewhere),
        [0, 1, 0],
        &STAGE2.hint(
            "one slot per waiter: its next poll replaces its waker, and its Drop (Drop for \
             EventWait) removes the slot",
        ),
    );
    event.set();
    check_eq(
        &format!("wake-ups of {what}, after set()"),
        wakers.each_ref().map(CountingWaker::wakes),
        [0, 1, 0],
        &STAGE2.hint("set() wakes the latest waker of each waiter still waiting, once"),
    );
}

#[kata_harness::test]
async fn stage2_ten_thousand_dropped_event_waiters_give_their_memory_back() {
    let event = Event::new();
    assert_waiters_let_go(
        "waiters of an event nobody sets",
        || event.wait(),
        &STAGE2.hint(
            "a waiter dropped before the event is set must take its slot with it (Drop for \
             EventWait): a list of wakers that only grows keeps every waiter that ever waited",
        ),
    );
}

// As with the promise: a waker woken by set() finds the flag set, and may look at it at once.

#[kata_harness::test]
async fn stage2_a_set_outside_the_runtime_wakes_with_the_flag_raised() {
    let event = Event::new();
    let (setter, seen) = (event.clone(), event.clone());
    let woken = look_when_woken(
        event.wait(),
        move || setter.set(),
        move || format!("is_set() said {}", seen.is_set()),
    );
    check_eq(
        "a waiter of an event set on a thread outside the runtime",
        woken,
        "woken, and is_set() said true in the wake-up".to_owned(),
        &STAGE2.hint(
            "a woken task may look at the event at once, on the setting thread: raise the \
             flag before waking, and wake after the lock is let go (take the wakers out under \
             the lock, drop the guard, then wake them)",
        ),
    );
}

// Stage 2 on two threads: the same race as stage 1's, with an event that thread 1 sets while
// thread 0 starts waiting (the lockstep threads of support.rs, real clock).

#[kata_harness::test(watchdog_secs = 10)]
async fn stage2_no_wake_up_is_lost_when_another_thread_sets_the_event() {
    let raced = race_event(20_000).await;
    if let Some(round) = raced.lost {
        fail(
            &format!(
                "{} rounds of: thread 0 polls a waiter for the first time while thread 1 sets \
                 the event",
                raced.rounds
            ),
            format_args!(
                "in round {round}, the waiter returned Pending and was never woken: it would \
                 wait for ever"
            ),
            "a waiter that returns Pending woken by the set()",
            &STAGE2.hint(
                "the waiter's waker was stored after set() had looked for it: in poll, look at \
                 the flag (and the count of sets) and store the waker under one lock, and set \
                 under that same lock",
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 3: deadline(after, future) over futures that are not Unpin.
//
//   deadline(200 ms, a job of 100 ms):  0 ms ── job ── 100 ms Ok(7)          200 ms: nothing

#[kata_harness::test]
async fn stage3_a_future_done_in_time_gives_its_output() {
    let timeline = Timeline::start();
    let limited = deadline(ms(200), job(&timeline, Some(ms(100))));
    let hint = STAGE3.hint(
        "poll the future first, and return Ready(Ok(output)) as soon as it is ready: the timer \
         matters only while the future is pending",
    );
    let got = completes_within(
        "deadline(200 ms, a job of 100 ms)",
        limited,
        PATIENCE,
        &hint,
    )
    .await;
    check_eq(
        "what deadline(200 ms, a job of 100 ms) gave",
        got,
        Ok(7),
        &hint,
    );
    assert_elapsed("when it gave it", timeline.now(), ms(100), &hint);
    check_eq(
        "the job's life",
        timeline.life("job"),
        Life {
            started: Some(ms(0)),
            finished: Some(ms(100)),
            dropped: None,
        },
        &hint,
    );
}

//   deadline(200 ms, a job of 300 ms):  0 ms ── job ──────── 200 ms Err(Elapsed), job dropped
//   deadline(200 ms, a job that never wakes its task): the same

#[kata_harness::test]
#[case::a_job_of_300ms(Some(300))]
#[case::a_job_that_never_wakes(None)]
async fn stage3_at_the_deadline_the_future_is_dropped_and_elapsed_returned(
    #[case] job_ms: Option<u64>,
) {
    let timeline = Timeline::start();
    let name = match job_ms {
        Some(_) => "deadline(200 ms, a job of 300 ms)",
        None => "deadline(200 ms, a job that never wakes its task)",
    };
    let limited = deadline(ms(200), job(&timeline, job_ms.map(ms)));
    let got = completes_within(
        name,
        limited,
        PATIENCE,
        &STAGE3.hint(
            "the deadline never fired: poll the Sleep (made with tokio::time::sleep) whenever \
             the future is pending, with the same Context, so that the timer wakes the task at \
             the limit even if the future never does",
        ),
    )
    .await;
    let hint = STAGE3.hint(
        "once the Sleep is ready and the future still pending, return \
         Ready(Err(Elapsed { after })) at once; dropping the Deadline then drops the future",
    );
    check_eq(
        &format!("what {name} gave"),
        got,
        Err(Elapsed { after: ms(200) }),
        &hint,
    );
    assert_elapsed("when it gave it", timeline.now(), ms(200), &hint);
    check_eq(
        "the job's life",
        timeline.life("job"),
        Life {
            started: Some(ms(0)),
            finished: None,
            dropped: Some(ms(200)),
        },
        &STAGE3.hint(
            "the job must stop at the limit: keep it inside the Deadline (not in a spawned \
             task, which would run on) and poll it no more once the limit has passed",
        ),
    );
}

//   deadline(200 ms, a job of 200 ms):  0 ms ── job ── 200 ms: job ready, timer due: Ok(7)

#[kata_harness::test]
async fn stage3_a_future_ready_exactly_at_the_deadline_wins() {
    let timeline = Timeline::start();
    let limited = deadline(ms(200), job(&timeline, Some(ms(200))));
    let hint = STAGE3.hint(
        "at 200 ms the job and the timer are both ready: poll the future before the Sleep, so \
         that the output wins, as tokio::time::timeout does",
    );
    let got = completes_within(
        "deadline(200 ms, a job of 200 ms)",
        limited,
        PATIENCE,
        &hint,
    )
    .await;
    check_eq(
        "what deadline(200 ms, a job of 200 ms) gave",
        got,
        Ok(7),
        &hint,
    );
    assert_elapsed("when it gave it", timeline.now(), ms(200), &hint);
}

#[kata_harness::test]
async fn stage3_a_ready_future_wins_even_a_zero_deadline() {
    let mut zero = task::spawn(deadline(Duration::ZERO, std::future::ready(7)));
    check_eq(
        "the first poll of deadline(0 ms, ready(7))",
        zero.poll(),
        Poll::Ready(Ok(7)),
        &STAGE3.hint(
            "poll the future first: a future that is ready gives its output, even when the \
             limit has already passed",
        ),
    );
}

//   made at 0 ms, awaited from 50 ms:  deadline(200 ms, a job of 300 ms)
//   0 ms made ── 50 ms first poll, the job starts ── 200 ms Err(Elapsed), job dropped (not 250)

#[kata_harness::test]
async fn stage3_the_deadline_counts_from_the_call() {
    let timeline = Timeline::start();
    let limited = deadline(ms(200), job(&timeline, Some(ms(300))));
    sleep(ms(50)).await;
    let hint = STAGE3.hint(
        "the limit counts from the call to deadline(), as tokio::time::timeout's does: make \
         the Sleep in deadline(), not at the first poll",
    );
    let got = completes_within(
        "deadline(200 ms, a job of 300 ms), awaited from 50 ms",
        limited,
        PATIENCE,
        &hint,
    )
    .await;
    check_eq("what it gave", got, Err(Elapsed { after: ms(200) }), &hint);
    assert_elapsed("when it gave it", timeline.now(), ms(200), &hint);
    check_eq(
        "the job's life",
        timeline.life("job"),
        Life {
            started: Some(ms(50)),
            finished: None,
            dropped: Some(ms(200)),
        },
        &hint,
    );
}

#[kata_harness::test]
async fn stage3_the_deadline_keeps_the_future_inline() {
    // The job's state holds 8 KiB across its await: a Box of it shows on the heap.
    let job = async {
        let state = [7_u8; 8192];
        sleep(ms(100)).await;
        std::hint::black_box(&state)[8191]
    };
    let (got, report) = heap::measure_async(async { deadline(ms(200), job).await }).await;
    check_eq(
        "what deadline(200 ms, a job of 100 ms with 8 KiB of state) gave",
        got,
        Ok(7),
        &STAGE3.hint("a job done in time gives Ok(its output)"),
    );
    assert_peak_below(
        "the heap of deadline(200 ms, a job with 8 KiB of state)",
        report,
        4096,
        &STAGE3.hint(
            "keep the future in a field of the Deadline, with no Box::pin and no spawned task: \
             mark it #[pin] in pin_project_lite::pin_project! and reach it with \
             self.project(), which turns Pin<&mut Deadline> into Pin<&mut F>",
        ),
    );
}
