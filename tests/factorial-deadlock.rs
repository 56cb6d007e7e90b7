//! The factorial-deadlock kata's suite, run against both `exercises/factorial-deadlock` and
//! `solutions/factorial-deadlock`: the kata's precise specification.
//!
//! Every job runs through a limiter the suite controls, so it can count the jobs and the slots
//! they hold at once (`Limiter::instrumented` with a concurrency probe). On the paused clock a
//! deadlock shows at once, so stage 1 checks both sides of the naive recursion's threshold:
//! exactly enough slots completes with every one of them held, one slot fewer hangs. Stage 2
//! rejects a fix that still holds a slot while it waits (even only when the limiter looks big
//! enough), bypasses the limiter, runs one job for everything, wraps on overflow or runs on past
//! it. Stage 3 rejects a checked limiter that hangs, guesses with a timer, looks only at held
//! slots, only at queued runs or counts waits instead of waiting jobs, answers only one queued
//! run, takes another limiter's work for its own, forgets that a wait ended, or keeps a slot, a
//! place in line or a wait after a run is cancelled half way or its job panics; and, on two
//! threads, one that loses a wake-up (often, not always: a race of nanoseconds).

kata_harness::install_allocator!();

#[path = "factorial-deadlock/support.rs"]
mod support;

use std::time::Duration;

use factorial_deadlock::CheckedLimiter;
use factorial_deadlock::{Deadlock, FactorialError, LimitError, factorial, factorial_naive};
use kata_harness::completion::{assert_deadlocks, completes_within};
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check, check_eq, fail, panic_text, panic_with_string};
use kata_harness::timing::{Timeline, assert_elapsed, assert_schedule};
use kata_harness::{Stage, ms};
use support::{PATIENCE, assert_whole, checked, checked_naive, factorial_of, watched};
use tokio::time::{Instant, sleep, sleep_until, timeout};

const STAGE1: Stage = Stage::new("factorial-deadlock", 1);
const STAGE2: Stage = Stage::new("factorial-deadlock", 2);
const STAGE3: Stage = Stage::new("factorial-deadlock", 3);

const SECOND: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Stage 1: factorial_naive. Every step is a job, and the job for n awaits the job for n - 1
// inside itself, holding its slot; the job for n ≤ 1 is a job too. 5! on 5 slots:
//
//   slot 1   job 5  ├─ awaits job 4 ──────────────────────────────┤ 120
//   slot 2   job 4     ├─ awaits job 3 ───────────────────────┤ 24
//   slot 3   job 3        ├─ awaits job 2 ────────────────┤ 6
//   slot 4   job 2           ├─ awaits job 1 ─────────┤ 2
//   slot 5   job 1              ├─────────────────┤ 1
//                                  all 5 slots held at once while job 1 runs

#[kata_harness::test]
#[case::zero(0)]
#[case::one(1)]
#[case::two(2)]
#[case::three(3)]
#[case::five(5)]
#[case::ten(10)]
#[case::twenty(20)]
#[case::the_largest_that_fits_in_u128(34)]
async fn stage1_is_exact_with_exactly_enough_slots(#[case] n: u32) {
    let slots = n.max(1) as usize;
    let limiter = watched(slots, &ConcurrencyProbe::new());
    let what = format!("factorial_naive({n}) with {slots} slot(s)");
    let result = completes_within(
        &what,
        factorial_naive(n, &limiter),
        PATIENCE,
        &STAGE1.hint(
            "with max(n, 1) slots every job of the recursion gets one, so it must finish: if it \
             hangs, some job needs a slot more than that (a base case at 0 below the job for 1 \
             makes n! one job deeper) or waits on something besides the job for n - 1",
        ),
    )
    .await;
    check_eq(
        &format!("the result of {what}"),
        result,
        Ok(factorial_of(n)),
        &STAGE1.hint(
            "n! = n x (n - 1)!, with 0! = 1! = 1: a wrong 0! or 1! is the base case; any other \
             wrong value multiplies the wrong two numbers (n and what the job for n - 1 returned)",
        ),
    );
}

// One slot fewer, and the job for 1 waits for a slot only the jobs above it could free:
//
//   5! on 4 slots:   slot 1   job 5  awaits job 4 ─┐
//                    slot 2   job 4  awaits job 3  │  each holds its slot until the job
//                    slot 3   job 3  awaits job 2  │  it awaits has ended
//                    slot 4   job 2  awaits job 1 ─┘
//                    queue    job 1: waits for ever

#[kata_harness::test]
#[case::two(2)]
#[case::three(3)]
#[case::five(5)]
#[case::eight(8)]
async fn stage1_deadlocks_with_one_slot_too_few(#[case] n: u32) {
    let slots = n as usize - 1;
    let probe = ConcurrencyProbe::new();
    let limiter = watched(slots, &probe);
    let what = format!("factorial_naive({n}) with {slots} slot(s)");
    assert_deadlocks(
        &what,
        factorial_naive(n, &limiter),
        PATIENCE,
        &STAGE1.hint(
            "it finished with one slot too few, so some step ran outside a job: the job for n \
             must await the job for n - 1 inside itself, holding its slot, and the job for n ≤ 1 \
             is a job too. Computing (n - 1)! before or after limiter.run is stage 2's fix",
        ),
    )
    .await;
    let stuck = STAGE1.hint(
        "the deadlock comes from every slot being held by a job that awaits the job below it: the \
         jobs for n down to 2 hold all n - 1 slots, and the job for 1 never starts",
    );
    probe.assert_limit(&format!("jobs of {what}, once stuck"), slots, &stuck);
    check_eq(
        &format!("jobs started by {what}"),
        probe.started(),
        slots,
        &stuck,
    );
}

#[kata_harness::test]
#[case::zero(0)]
#[case::one(1)]
#[case::two(2)]
#[case::five(5)]
#[case::ten(10)]
async fn stage1_holds_one_slot_per_step_all_at_once(#[case] n: u32) {
    let slots = n.max(1) as usize;
    let probe = ConcurrencyProbe::new();
    let limiter = watched(slots, &probe);
    let what = format!("factorial_naive({n}) with {slots} slot(s)");
    let hint = STAGE1.hint("with max(n, 1) slots the recursion must finish");
    // Its value is stage1_is_exact_with_exactly_enough_slots's business.
    let _ = completes_within(&what, factorial_naive(n, &limiter), PATIENCE, &hint).await;
    check_eq(
        &format!("jobs run by {what}"),
        probe.started(),
        slots,
        &STAGE1.hint(
            "one job per step: the jobs for n, n - 1, ..., 1, and a single job for 0! and for 1!. \
             More means a step is split in two or 1! recurses to 0!; fewer means a step (often \
             the base case) runs outside limiter.run",
        ),
    );
    probe.assert_limit(
        &format!("jobs of {what} in flight at once"),
        slots,
        &STAGE1.hint(
            "each job holds its slot while it awaits the job below it, so at the bottom of the \
             recursion all of them are in flight at once: fewer means a job ended before the one \
             below it started. Await the job for n - 1 inside the job for n",
        ),
    );
}

#[kata_harness::test]
#[case::one_spare_slot(5, 6)]
#[case::many_spare_slots(5, 100)]
#[case::ten_deep(10, 64)]
async fn stage1_more_slots_than_needed_work_too(#[case] n: u32, #[case] slots: usize) {
    let probe = ConcurrencyProbe::new();
    let limiter = watched(slots, &probe);
    let what = format!("factorial_naive({n}) with {slots} slots");
    let hint = STAGE1.hint("more slots than the recursion needs can only help: it must finish");
    let result = completes_within(&what, factorial_naive(n, &limiter), PATIENCE, &hint).await;
    check_eq(
        &format!("the result of {what}"),
        result,
        Ok(factorial_of(n)),
        &STAGE1.hint("the number of slots never changes the value: n! = n x (n - 1)!"),
    );
    check_eq(
        &format!("the most jobs at once in {what}"),
        probe.max(),
        n as usize,
        &STAGE1.hint(
            "the recursion is n jobs deep whatever the limit: one job per step, each holding its \
             slot while it awaits the next, so all n at once at the bottom. Fewer means a job ended \
             before the one below it started",
        ),
    );
}

#[kata_harness::test]
#[case::just_too_large(35, 35)]
#[case::much_too_large(100, 100)]
#[case::the_largest_u32(u32::MAX, 100)]
async fn stage1_a_factorial_too_large_for_u128_is_an_error(#[case] n: u32, #[case] slots: usize) {
    let probe = ConcurrencyProbe::new();
    let limiter = watched(slots, &probe);
    let what = format!("factorial_naive({n}) with {slots} slots");
    let result = completes_within(
        &what,
        factorial_naive(n, &limiter),
        PATIENCE,
        &STAGE1.hint(
            "check n against MAX_N (34) before any job starts: a recursion that finds the \
             overflow on the way needs n slots, and for n = u32::MAX it never gets them",
        ),
    )
    .await;
    check_eq(
        &format!("the result of {what}"),
        result,
        Err(FactorialError::Overflow { n }),
        &STAGE1.hint(
            "34! is the largest factorial in a u128: from 35 on, return \
             Err(FactorialError::Overflow { n }) with the n asked for, never a wrapped number \
             or a panic",
        ),
    );
    check_eq(
        &format!("jobs started by {what}"),
        probe.started(),
        0,
        &STAGE1.hint(
            "the overflow is known from n alone: return the error before the first limiter.run",
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: factorial. One job per factor k = 1..=n, each one multiplication, awaited one after
// another from outside the limiter. No job waits for another, so one free slot is enough:
//
//   slot 1   k=1 ┤ k=2 ┤ k=3 ┤ ... ┤ k=n ┤   between two jobs the product so far is carried
//                                            out here, where no slot is held

#[kata_harness::test]
#[case::one_slot(1)]
#[case::two_slots(2)]
#[case::three_slots(3)]
#[case::four_slots(4)]
#[case::eight_slots(8)]
async fn stage2_is_exact_for_every_n_with_any_number_of_slots(#[case] slots: usize) {
    let limiter = watched(slots, &ConcurrencyProbe::new());
    for n in 0..=34 {
        let what = format!("factorial({n}) with {slots} slot(s)");
        let result = completes_within(
            &what,
            factorial(n, &limiter),
            ms(1),
            &STAGE2.hint(
                "factorial must finish with any number of slots, even 1, without the clock \
                 moving: if it hangs, a job awaits another job while it holds its slot (the \
                 naive recursion, or a loop inside one big job); if it sleeps, drop the timer",
            ),
        )
        .await;
        check_eq(
            &format!("the result of {what}"),
            result,
            Ok(factorial_of(n)),
            &STAGE2.hint(
                "n! = 1 x 2 x ... x n, and 0! = 1: check the loop's bounds (1..=n) and that each \
                 job multiplies the product so far, which it returns to the next",
            ),
        );
    }
}

#[kata_harness::test]
#[case::one_slot(1)]
#[case::three_slots(3)]
async fn stage2_runs_one_job_per_factor(#[case] slots: usize) {
    for n in 0..=34 {
        let probe = ConcurrencyProbe::new();
        let limiter = watched(slots, &probe);
        let what = format!("factorial({n}) with {slots} slot(s)");
        let hint = STAGE2.hint("factorial must finish with any number of slots");
        // Its value is stage2_is_exact_for_every_n_with_any_number_of_slots's business.
        let _ = completes_within(&what, factorial(n, &limiter), PATIENCE, &hint).await;
        check_eq(
            &format!("jobs run through the limiter by {what}"),
            probe.started(),
            n as usize,
            &STAGE2.hint(
                "the fix still does its work through the limiter, one job per factor k = 1..=n \
                 (n jobs for n!, none for 0!): one job for everything, or a product computed \
                 outside the limiter, bypasses it; a loop from 2 skips the job for k = 1",
            ),
        );
    }
}

// The other work on the limiter keeps 7 of its 8 slots until factorial(8) is done:
//
//   slots 1-7   other work ──────────────────────────────┤ let go once factorial returns
//   slot 8      k=1 ┤ k=2 ┤ ... ┤ k=8 ┤
//
// A factorial that holds a slot while it waits needs two free slots and waits for ever.

#[kata_harness::test]
async fn stage2_needs_only_one_free_slot() {
    let limiter = watched(8, &ConcurrencyProbe::new());
    let (open, gate) = tokio::sync::watch::channel(false);
    let others = futures::future::join_all((0..7).map(|_| {
        let mut gate = gate.clone();
        limiter.run(async move {
            let _ = gate.wait_for(|open| *open).await;
        })
    }));
    let what = "factorial(8) on a limiter with 8 slots, 7 of them busy";
    let then_open = async {
        let result = completes_within(
            what,
            factorial(8, &limiter),
            ms(1),
            &STAGE2.hint(
                "factorial must get by with whatever single slot is free: the naive recursion \
                 (even only when the limiter looks big enough for n) holds one slot while its \
                 next job waits for another",
            ),
        )
        .await;
        let _ = open.send(true);
        result
    };
    let (_, result) = futures::join!(others, then_open);
    check_eq(
        &format!("the result of {what}"),
        result,
        Ok(factorial_of(8)),
        &STAGE2.hint("8! = 40320, whatever else the limiter is busy with"),
    );
}

// Two jobs of 10 s take both slots before factorial asks for one:
//
//   slot 1   other job (10 s) ───────────────┤ k=1 ┤ k=2 ┤ ... ┤ k=20 ┤   all at 10 s
//   slot 2   other job (10 s) ───────────────┤
//            0 s                             10 s

#[kata_harness::test]
async fn stage2_waits_its_turn_on_a_busy_limiter() {
    let start = Instant::now();
    let limiter = watched(2, &ConcurrencyProbe::new());
    let both = async {
        tokio::join!(
            limiter.run(sleep(10 * SECOND)),
            limiter.run(sleep(10 * SECOND)),
            async {
                let result = factorial(20, &limiter).await;
                (result, start.elapsed())
            },
        )
    };
    let what = "factorial(20) on a limiter with 2 slots, both busy for 10 s";
    let hint = STAGE2.hint(
        "once the slots free up, factorial needs only one of them: if it hangs, a job awaits \
         another job",
    );
    let (_, _, (result, finished_at)) = completes_within(what, both, PATIENCE, &hint).await;
    check_eq(
        &format!("the result of {what}"),
        result,
        Ok(factorial_of(20)),
        &STAGE2.hint("20! = 2432902008176640000, whatever else the limiter is busy with"),
    );
    assert_elapsed(
        &format!("the end of {what}"),
        finished_at,
        10 * SECOND,
        &STAGE2.hint(
            "its jobs wait for a free slot like any others, then run back to back: finishing \
             before 10 s means some step bypassed the limiter",
        ),
    );
}

#[kata_harness::test]
#[case::just_too_large(35)]
#[case::much_too_large(100)]
#[case::the_largest_u32(u32::MAX)]
async fn stage2_a_factorial_too_large_for_u128_is_an_error(#[case] n: u32) {
    let probe = ConcurrencyProbe::new();
    let runaway = STAGE2.hint(
        "stop at the first factor whose product leaves u128 (k = 35): a loop that goes on after \
         the overflow runs four billion jobs for n = u32::MAX",
    );
    let limiter = support::watched_with_budget(2, &probe, 1000, &runaway);
    let what = format!("factorial({n}) with 2 slots");
    let hint = STAGE2.hint("the overflow is found within 35 jobs: it needs no timer");
    let result = completes_within(&what, factorial(n, &limiter), ms(1), &hint).await;
    check_eq(
        &format!("the result of {what}"),
        result,
        Err(FactorialError::Overflow { n }),
        &STAGE2.hint(
            "multiply with u128::checked_mul and turn its None into \
             Err(FactorialError::Overflow { n }), with the n asked for: never a wrapped or \
             saturated number, never a panic",
        ),
    );
    check(
        &format!("jobs run by {what}"),
        probe.started() <= 35,
        probe.started(),
        "at most 35",
        &runaway,
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 3: CheckedLimiter::run answers Err(Deadlock) where Limiter would hang: when a run joins
// the queue and every slot is held by a job that awaits a run of the same limiter.

#[kata_harness::test]
async fn stage3_zero_slots_is_an_error() {
    check_eq(
        "CheckedLimiter::new(0)",
        CheckedLimiter::new(0).err(),
        Some(LimitError::Zero),
        &STAGE3
            .hint("a limiter without slots would never run anything: return Err(LimitError::Zero)"),
    );
}

// Five runs asked for at once on 2 slots; their jobs take 30, 10, 20, 10 and 10 ms:
//
//   slot 1   run 0 (30 ms) ──────────────┤ run 3 ┤
//   slot 2   run 1 ┤ run 2 (20 ms) ──────┤ run 4 ┤
//           0      10                    30      40 ms

#[kata_harness::test]
async fn stage3_runs_at_most_concurrency_jobs_in_call_order() {
    let timeline = Timeline::start();
    let probe = ConcurrencyProbe::new();
    // Runs 0, 2 and 4 go through a clone: clones share their slots.
    let limiter = checked(2);
    let limiters = [limiter.clone(), limiter];
    let runs = [30, 10, 20, 10, 10]
        .into_iter()
        .enumerate()
        .map(|(i, length)| {
            let (timeline, probe) = (timeline.clone(), probe.clone());
            limiters[i % 2].run(async move {
                timeline.mark(format!("run {i} starts"));
                probe.track(sleep(ms(length))).await;
                i
            })
        });
    let what = "5 runs on a CheckedLimiter with 2 slots and its clone";
    let hint = STAGE3.hint("a freed slot must go to a waiting run: nothing here waits for ever");
    let results = completes_within(what, futures::future::join_all(runs), PATIENCE, &hint).await;
    check_eq(
        &format!("the results of {what}"),
        results,
        (0..5).map(Ok).collect(),
        &STAGE3.hint(
            "run returns Ok(the job's output) unless there is a deadlock: these jobs wait on a \
             timer, not on the limiter, so a full limiter with runs in line is no deadlock",
        ),
    );
    probe.assert_limit(
        what,
        2,
        &STAGE3.hint(
            "a job holds a slot while it runs: at most `concurrency` at once, whichever clone of \
             the limiter it went through (clones share their slots: keep the state behind an \
             Arc), and a run in line starts as soon as a slot is free",
        ),
    );
    check_eq(
        &format!("the order the jobs of {what} started in"),
        timeline.labels(),
        (0..5).map(|i| format!("run {i} starts")).collect(),
        &STAGE3.hint("slots go to waiting runs first come, first served: keep them in a FIFO"),
    );
    assert_schedule(
        &format!("the start times of the jobs of {what}"),
        &timeline.instants(),
        &[ms(0), ms(0), ms(10), ms(30), ms(30)],
        &STAGE3.hint(
            "a freed slot goes at once to the first run in line, and a newcomer never takes a \
             slot while others wait",
        ),
    );
}

// The naive recursion for 5! on 3 slots:
//
//   slot 1   job 5  awaits a run of the limiter ─┐
//   slot 2   job 4  awaits a run of the limiter  │  every slot is held by a waiting job
//   slot 3   job 3  awaits a run of the limiter ─┘
//   queue    the run for job 2 joins the line: Err(Deadlock { held: 3, queued: 1 }) at 0 s,
//            and the error travels back up through jobs 3, 4 and 5

#[kata_harness::test]
#[case::one_slot(2, 1)]
#[case::the_source_exercise(5, 3)]
#[case::one_slot_too_few(5, 4)]
#[case::ten_deep(10, 7)]
async fn stage3_reports_the_naive_deadlock_at_once(#[case] n: u32, #[case] slots: usize) {
    let start = Instant::now();
    let limiter = checked(slots);
    let what = format!("the naive recursion for {n}! on a CheckedLimiter with {slots} slot(s)");
    let result = completes_within(
        &what,
        checked_naive(n, &limiter),
        PATIENCE,
        &STAGE3.hint(
            "instead of hanging, run must notice that every slot is held by a job waiting on a \
             run of the same limiter while a run is in line, and return Err(Deadlock): a \
             task-local set while each job is polled tells a run which job started it",
        ),
    )
    .await;
    check_eq(
        &format!("the result of {what}"),
        result,
        Err(Deadlock {
            held: slots,
            queued: 1,
        }),
        &STAGE3.hint(
            "held is the concurrency (every slot), queued the runs in line when the deadlock was \
             found, the one that just joined included: here only the run for the job below the \
             slots. Return that error from the run, and let it travel up through the jobs",
        ),
    );
    assert_elapsed(
        &format!("time until {what} was reported"),
        start.elapsed(),
        Duration::ZERO,
        &STAGE3.hint(
            "no timer: the deadlock is certain the moment that run joins the line, so report \
             it then",
        ),
    );
}

#[kata_harness::test]
#[case::zero(0, 1)]
#[case::one(1, 1)]
#[case::exactly_enough(5, 5)]
#[case::more_than_enough(5, 8)]
#[case::the_largest(34, 34)]
async fn stage3_the_naive_recursion_works_with_enough_slots(#[case] n: u32, #[case] slots: usize) {
    let limiter = checked(slots);
    let what = format!("the naive recursion for {n}! on a CheckedLimiter with {slots} slot(s)");
    let hint = STAGE3.hint("with max(n, 1) slots every job gets a slot at once: it must finish");
    let result = completes_within(&what, checked_naive(n, &limiter), PATIENCE, &hint).await;
    check_eq(
        &format!("the result of {what}"),
        result,
        Ok(factorial_of(n)),
        &STAGE3.hint(
            "with max(n, 1) slots nothing ever queues, so there is no deadlock to report: a \
             deadlock needs a run in line",
        ),
    );
}

// Six runs of 10 s on 3 slots: a full limiter with runs in line, and no job waits on it.
//
//   slots 1-3   runs 0, 1, 2 ──────────┤ runs 3, 4, 5 ──────────┤
//              0 s                     10 s                     20 s

#[kata_harness::test]
async fn stage3_slow_jobs_holding_every_slot_are_not_a_deadlock() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let limiter = checked(3);
    let runs = (0..6).map(|i| {
        limiter.run(probe.track(async move {
            sleep(10 * SECOND).await;
            i
        }))
    });
    let what = "6 runs of 10 s on a CheckedLimiter with 3 slots";
    let hint = STAGE3.hint(
        "a full limiter with runs in line is no deadlock while its jobs wait on something else \
         (a timer here): they will end and free their slots. A deadlock needs every slot held \
         by a job that waits on a run of this limiter, and a limiter cannot tell that from a \
         timer: no timeout, no \"no progress for a while\"",
    );
    let results = completes_within(what, futures::future::join_all(runs), PATIENCE, &hint).await;
    check_eq(
        &format!("the results of {what}"),
        results,
        (0..6).map(Ok).collect(),
        &hint,
    );
    probe.assert_limit(
        what,
        3,
        &STAGE3.hint("three slots: three jobs at once, never more"),
    );
    assert_elapsed(
        &format!("the end of {what}"),
        start.elapsed(),
        20 * SECOND,
        &STAGE3.hint("two rounds of three jobs of 10 s each: 20 s"),
    );
}

// Only one of the three slots is held by a job waiting on the limiter:
//
//   slot 1   A (10 s) ─────────────────┤ C's inner job (1 s) ┤ D (1 s) ┤
//   slot 2   B (12 s) ─────────────────────────────────────────────────┤
//   slot 3   C: awaits a run of its own, in line behind A ───┤
//   queue    C's run (0 s), then D (0 s)
//           0 s                        10 s                  11 s      12 s

#[kata_harness::test]
async fn stage3_a_queue_behind_a_slow_job_is_not_a_deadlock() {
    let timeline = Timeline::start();
    let limiter = checked(3);
    let slow = |label: &'static str, length: Duration| {
        let timeline = timeline.clone();
        limiter.run(async move {
            sleep(length).await;
            timeline.mark(format!("{label} ends"));
        })
    };
    let (inner, d) = (timeline.clone(), timeline.clone());
    let hint = STAGE3.hint(
        "a job waiting on a queued run is no deadlock while another slot is held by a job that \
         is not waiting on the limiter (A, B): that one will end and pass its slot on. A \
         deadlock needs every slot held by a waiting job, not just one",
    );
    let all = async {
        tokio::join!(
            slow("A", 10 * SECOND),
            slow("B", 12 * SECOND),
            limiter.run(async {
                limiter
                    .run(async move {
                        inner.mark("C's inner job starts");
                        sleep(SECOND).await;
                        7
                    })
                    .await
            }),
            limiter.run(async move {
                d.mark("D starts");
                sleep(SECOND).await;
            }),
        )
    };
    let (a, b, c, d) = completes_within("A, B, C and D", all, PATIENCE, &hint).await;
    check_eq(
        "the results of A, B, C and D",
        (a, b, c, d),
        (Ok(()), Ok(()), Ok(Ok(7)), Ok(())),
        &hint,
    );
    check_eq(
        "what happened, and when",
        timeline.events(),
        vec![
            (10 * SECOND, "A ends".to_owned()),
            (10 * SECOND, "C's inner job starts".to_owned()),
            (11 * SECOND, "D starts".to_owned()),
            (12 * SECOND, "B ends".to_owned()),
        ],
        &STAGE3.hint(
            "A's slot goes to C's inner run, first in line, at 10 s; D, in line behind it, gets \
             the slot that run frees at 11 s",
        ),
    );
}

// A job that awaited a run of its own waits on the limiter no longer once that run has ended:
//
//   slot 1   A: its own run ends at once, then it sleeps until 10 s ─┤
//   slot 2   B: sleeps 1 s, then awaits a run of its own (in line) ──┴ B's inner job, 10 s
//           0 s   1 s                                                10 s
//
// At 1 s, A waits on a timer, not on the limiter: no deadlock.

#[kata_harness::test]
async fn stage3_a_job_stops_waiting_when_its_run_ends() {
    let timeline = Timeline::start();
    let limiter = checked(2);
    let marks = timeline.clone();
    let all = async {
        tokio::join!(
            limiter.run(async {
                let inner = limiter.run(async { 1 }).await;
                sleep(10 * SECOND).await;
                inner
            }),
            limiter.run(async {
                sleep(SECOND).await;
                limiter
                    .run(async move {
                        marks.mark("B's inner job starts");
                        2
                    })
                    .await
            }),
        )
    };
    let hint = STAGE3.hint(
        "a job waits on limiter work only while its run is pending: when that run ends, stop \
         counting the job as waiting (a guard dropped with the run does it however it ends)",
    );
    let (a, b) = completes_within("A and B", all, PATIENCE, &hint).await;
    check_eq(
        "the results of A and B",
        (a, b),
        (Ok(Ok(1)), Ok(Ok(2))),
        &hint,
    );
    check_eq(
        "what happened, and when",
        timeline.events(),
        vec![(10 * SECOND, "B's inner job starts".to_owned())],
        &STAGE3.hint("B's inner run waits in line until A's slot is free, at 10 s"),
    );
}

// A job that awaits two runs at once is one waiting job, not two:
//
//   slot 1   B (10 s) ──────────────────────┤ x (1 s) ┤ y (1 s) ┤
//   slot 2   A: awaits its runs x and y at once, both in line ──┤
//           0 s                             10 s      11 s      12 s
//
// Two waits, but one of the two slots is held by B, which waits on a timer: no deadlock.

#[kata_harness::test]
async fn stage3_a_job_awaiting_two_runs_is_one_waiting_job() {
    let timeline = Timeline::start();
    let limiter = checked(2);
    let inner = |label: &'static str| {
        let timeline = timeline.clone();
        limiter.run(async move {
            timeline.mark(format!("{label} starts"));
            sleep(SECOND).await;
        })
    };
    let all = async {
        tokio::join!(
            limiter.run(sleep(10 * SECOND)),
            limiter.run(async { tokio::join!(inner("x"), inner("y")) }),
        )
    };
    let hint = STAGE3.hint(
        "count the jobs that wait, not the runs they wait on: A awaits two runs, but B's slot \
         is held by a job that waits on a timer, so B will free it",
    );
    let (b, a) = completes_within("A and B", all, PATIENCE, &hint).await;
    check_eq(
        "the results of A and B",
        (a, b),
        (Ok((Ok(()), Ok(()))), Ok(())),
        &hint,
    );
    assert_schedule(
        "the starts of A's runs x and y",
        &timeline.instants(),
        &[10 * SECOND, 11 * SECOND],
        &STAGE3.hint("x gets B's slot at 10 s; y, in line behind it, gets it at 11 s"),
    );
}

// A job of `first` awaits a run of `second`: that is not work of `first`.
//
//   second (1 slot)   busy (10 s) ──────────────┤ the run of first's job (1 s) ┤
//   first (1 slot)    a job awaiting a run of second ──────────────────────────┤ queued run ┤
//                     0 s                       10 s                           11 s        12 s

#[kata_harness::test]
async fn stage3_work_on_another_limiter_is_not_a_deadlock() {
    let timeline = Timeline::start();
    let (first, second) = (checked(1), checked(1));
    let (marks_x, marks_y) = (timeline.clone(), timeline.clone());
    let all = async {
        tokio::join!(
            second.run(sleep(10 * SECOND)),
            first.run(async {
                second
                    .run(async move {
                        marks_x.mark("the run of second starts");
                        sleep(SECOND).await;
                    })
                    .await
            }),
            first.run(async move {
                marks_y.mark("the queued run of first starts");
                sleep(SECOND).await;
            }),
        )
    };
    let hint = STAGE3.hint(
        "a job waits on *limiter work* only while it awaits a run of the same limiter: give \
         each limiter an id (shared by its clones) and ignore the jobs of other limiters",
    );
    let (busy, job, queued) = completes_within("runs on two limiters", all, PATIENCE, &hint).await;
    check_eq(
        "the results",
        (busy, job, queued),
        (Ok(()), Ok(Ok(())), Ok(())),
        &hint,
    );
    check_eq(
        "what happened, and when",
        timeline.events(),
        vec![
            (10 * SECOND, "the run of second starts".to_owned()),
            (11 * SECOND, "the queued run of first starts".to_owned()),
        ],
        &STAGE3.hint(
            "second's slot is free at 10 s; first's job ends with its run, at 11 s, and hands \
             its slot to the run in line",
        ),
    );
}

// Every run in line gets the error, including one that belongs to no job:
//
//   slot 1   A: sleeps 1 s, then awaits a run of its own ─┐
//   slot 2   B: sleeps 2 s, then awaits a run of its own ─┤ at 2 s every slot is held by a
//   queue    C (0 s), A's run (1 s), B's run (2 s) ───────┘ waiting job: all three runs get
//                                                           Err(Deadlock { held: 2, queued: 3 })

#[kata_harness::test]
async fn stage3_every_queued_run_gets_the_deadlock() {
    let start = Instant::now();
    let limiter = &checked(2);
    let nested = |after: Duration| {
        limiter.run(async move {
            sleep(after).await;
            limiter.run(async { 1 }).await
        })
    };
    let deadlock = Deadlock { held: 2, queued: 3 };
    let hint = STAGE3.hint(
        "when B starts waiting, every slot is held by a job waiting on the limiter: answer every \
         run in line, not only the one that just joined (C too, though it belongs to no job), \
         each with Err(Deadlock { held: 2, queued: 3 })",
    );
    let all = async { tokio::join!(nested(SECOND), nested(2 * SECOND), limiter.run(async { 3 })) };
    let (a, b, c) = completes_within("A, B and C", all, PATIENCE, &hint).await;
    check_eq("C, in line behind A and B", c, Err(deadlock), &hint);
    check_eq(
        "A and B, whose own runs were refused",
        (a, b),
        (Ok(Err(deadlock)), Ok(Err(deadlock))),
        &hint,
    );
    assert_elapsed(
        "time until the deadlock was reported",
        start.elapsed(),
        2 * SECOND,
        &STAGE3.hint("at 2 s, when B's run joins the line: not before, and with no timer after"),
    );
}

#[kata_harness::test]
async fn stage3_the_limiter_works_again_after_a_deadlock() {
    let limiter = checked(3);
    let hint = STAGE3.hint(
        "the naive recursion for 5! on 3 slots is a deadlock, every time: if a later round hangs, \
         an earlier one left a slot held or a job counted as waiting (let Drop give them back, \
         however a job ends)",
    );
    for round in 1..=2 {
        let what = format!("the naive recursion for 5! on 3 slots, round {round}");
        let result = completes_within(&what, checked_naive(5, &limiter), PATIENCE, &hint).await;
        check_eq(
            &format!("the result of {what}"),
            result,
            Err(Deadlock { held: 3, queued: 1 }),
            &STAGE3.hint(
                "a reported deadlock must leave the limiter as it found it, ready to find the \
                 next one: the same recursion, the same error",
            ),
        );
    }
    assert_whole(&limiter, 3, "two reported deadlocks").await;
}

// ---------------------------------------------------------------------------------------------
// Stage 3, cancelled half way: a run dropped while in line, after it was handed a slot, while
// its job runs, or while it is the inner run a job waits on, leaves no held slot, no place in
// line and no wait behind it.

//   limiter with 1 slot:
//   slot     A (10 s) ─────────────────────────┤ N ┤
//   queue    G: dropped at 5 s (a timeout gives up on it)
//            N: asked at 0 s, behind G, gets the slot at 10 s

#[kata_harness::test]
async fn stage3_a_run_cancelled_in_line_gives_up_its_place() {
    let start = Instant::now();
    let limiter = checked(1);
    let hint = STAGE3.hint(
        "dropping a run's future cancels it: a run dropped while in line must leave the line \
         (a guard for its place, whose Drop takes it out), or the slot handed to it is lost",
    );
    let all = async {
        tokio::join!(
            limiter.run(sleep(10 * SECOND)),
            timeout(5 * SECOND, limiter.run(async { 1 })),
            async {
                let result = limiter.run(async { 2 }).await;
                (result, start.elapsed())
            },
        )
    };
    let (_, g, n) = completes_within("A, G and N on 1 slot", all, PATIENCE, &hint).await;
    if let Ok(result) = g {
        fail(
            "G, in line behind a 10 s job on 1 slot, given up after 5 s",
            format_args!("it finished first, with {result:?}"),
            "still waiting for its slot when it was dropped",
            &STAGE3.hint(
                "its slot comes only at 10 s, and nothing here is a deadlock: the job holding \
                 the slot waits on a timer, not on the limiter",
            ),
        );
    }
    check_eq("N, in line behind G", n, (Ok(2), 10 * SECOND), &hint);
    assert_whole(&limiter, 1, "a run was cancelled in line").await;
}

//   limiter with 1 slot:
//   slot     A: sleeps 2 s, then awaits a run of its own: Err(Deadlock { held: 1, queued: 1 })
//   queue    G: from 0 s, dropped at 1 s
//            A's run, at 2 s: alone in line

#[kata_harness::test]
async fn stage3_a_run_cancelled_in_line_is_not_counted_in_a_deadlock() {
    let limiter = checked(1);
    let all = async {
        tokio::join!(
            limiter.run(async {
                sleep(2 * SECOND).await;
                limiter.run(async { 1 }).await
            }),
            timeout(SECOND, limiter.run(async { 2 })),
        )
    };
    let hint = STAGE3.hint("A's run completes a deadlock at 2 s: it must be reported");
    let (a, _) = completes_within("A and G on 1 slot", all, PATIENCE, &hint).await;
    check_eq(
        "A, whose run joined the line at 2 s",
        a,
        Ok(Err(Deadlock { held: 1, queued: 1 })),
        &STAGE3.hint(
            "G was dropped at 1 s: it is no longer in line, and `queued` counts only the runs \
             really waiting. Take a cancelled run out of the queue when it is dropped",
        ),
    );
    assert_whole(&limiter, 1, "a run was cancelled in line").await;
}

#[kata_harness::test]
async fn stage3_a_run_cancelled_after_it_was_handed_a_slot_passes_it_on() {
    let limiter = checked(1);
    // Boxed, so each can be polled and dropped at the moment of our choosing.
    let mut holder = Box::pin(limiter.run(sleep(SECOND)));
    let mut handed_a_slot = Box::pin(limiter.run(async { 3 }));
    let first_polls = (
        futures::poll!(holder.as_mut()).is_pending(),
        futures::poll!(handed_a_slot.as_mut()).is_pending(),
    );
    check_eq(
        "a 1 s run, then a second run on a limiter with 1 slot, each polled once",
        first_polls,
        (true, true),
        &STAGE3.hint(
            "the first runs its 1 s job, the second waits in line: a run that finds a free slot \
             takes it, one that finds none waits",
        ),
    );
    let hint = STAGE3.hint("a 1 s job on a free slot ends at 1 s");
    let held = completes_within("the 1 s run", holder, PATIENCE, &hint).await;
    check_eq("the 1 s run", held, Ok(()), &hint);
    // Its slot went to the second run, which is dropped before it is polled again.
    drop(handed_a_slot);
    let hint = STAGE3.hint(
        "a run dropped after its slot was handed to it, but before it noticed, must pass that \
         slot on (to the next in line, or back to the free slots): its place-in-line guard's \
         Drop sees the slot it was sent, and gives it back",
    );
    let after = completes_within(
        "a run after a run was dropped holding a slot it never used",
        limiter.run(async { 4 }),
        ms(1),
        &hint,
    )
    .await;
    check_eq("that run", after, Ok(4), &hint);
    assert_whole(&limiter, 1, "a run was dropped with a slot it never used").await;
}

//   limiter with 2 slots:
//   slot 1   A: a 10 s job, dropped at 1 s ┤ C (1 s) ┤
//   slot 2   B (3 s) ─────────────────────────────────────┤
//   queue    C: asked at 0 s, gets A's slot when A is dropped
//           0 s                            1 s       2 s  3 s

#[kata_harness::test]
async fn stage3_a_run_cancelled_while_its_job_runs_gives_back_its_slot() {
    let start = Instant::now();
    let limiter = checked(2);
    let hint = STAGE3.hint(
        "dropping a run whose job is running cancels the job: its slot must go to the first run \
         in line at once, so hold it in a guard whose Drop hands it on",
    );
    let all = async {
        tokio::join!(
            timeout(SECOND, limiter.run(sleep(10 * SECOND))),
            limiter.run(sleep(3 * SECOND)),
            limiter.run(async {
                let started = start.elapsed();
                sleep(SECOND).await;
                started
            }),
        )
    };
    let (a, _, c) = completes_within("A, B and C on 2 slots", all, PATIENCE, &hint).await;
    check(
        "A, a 10 s job given up after 1 s",
        a.is_err(),
        format_args!("it finished, with {a:?}"),
        "dropped by the timeout at 1 s",
        &STAGE3.hint("a 10 s job on a free slot cannot end at 1 s"),
    );
    check_eq("when C's job started", c, Ok(SECOND), &hint);
    assert_whole(&limiter, 2, "a run was cancelled while its job ran").await;
}

//   limiter with 2 slots:
//   slot 1   B: sleeps 2 s, then awaits a run of its own, in line ─────────────────────┴ B's run
//   slot 2   A: awaits a run of its own (in line), drops it at 1 s, sleeps until 10 s ─┤
//           0 s      1 s      2 s                                                      10 s
//
// After 1 s A waits on a timer, not on the limiter: at 2 s only B waits, so no deadlock.

#[kata_harness::test]
async fn stage3_an_inner_run_cancelled_in_line_ends_its_jobs_wait() {
    let start = Instant::now();
    let limiter = checked(2);
    let all = async {
        tokio::join!(
            limiter.run(async {
                sleep(2 * SECOND).await;
                limiter.run(async move { start.elapsed() }).await
            }),
            limiter.run(async {
                let inner = timeout(SECOND, limiter.run(async { 1 })).await;
                sleep_until(start + 10 * SECOND).await;
                inner.is_err()
            }),
        )
    };
    let hint = STAGE3.hint(
        "A dropped its run at 1 s, so from then on it waits on nothing of the limiter: an inner \
         run that is dropped must stop counting against its job (a guard whose Drop does it), \
         or at 2 s B's run sees two waiting jobs and reports a deadlock that is not there",
    );
    let (b, a) = completes_within("A and B on 2 slots", all, PATIENCE, &hint).await;
    check_eq("A, which gave up on its run", a, Ok(true), &hint);
    check_eq(
        "B's run: when its job started",
        b,
        Ok(Ok(10 * SECOND)),
        &hint,
    );
    assert_whole(&limiter, 2, "an inner run was cancelled in line").await;
}

//   limiter with 2 slots:
//   slot 1   A: awaits a run of its own, drops it at 1 s, then sleeps until 10 s ──────┤
//   slot 2   A's run (a 5 s job) ─┤ B, from 2 s: at 3 s awaits a run of its own ───────┴ B's run
//           0 s                   1 s  2 s  3 s                                        10 s

#[kata_harness::test]
async fn stage3_an_inner_run_cancelled_while_its_job_runs_gives_back_slot_and_wait() {
    let start = Instant::now();
    let limiter = checked(2);
    let all = async {
        tokio::join!(
            limiter.run(async {
                let inner = timeout(SECOND, limiter.run(sleep(5 * SECOND))).await;
                sleep_until(start + 10 * SECOND).await;
                inner.is_err()
            }),
            async {
                sleep(2 * SECOND).await;
                limiter
                    .run(async {
                        let started = start.elapsed();
                        sleep(SECOND).await;
                        let inner = limiter.run(async move { start.elapsed() }).await;
                        (started, inner)
                    })
                    .await
            },
        )
    };
    let hint = STAGE3.hint(
        "A's run was dropped at 1 s while its job ran: its slot must be free at once, and A no \
         longer waits on the limiter",
    );
    let (a, b) = completes_within("A and B on 2 slots", all, PATIENCE, &hint).await;
    check_eq("A, which gave up on its run", a, Ok(true), &hint);
    let Ok((started, inner)) = b else {
        fail(
            "B, which asked for a slot at 2 s",
            format_args!("{b:?}"),
            "Ok(..)",
            &STAGE3.hint("B's own run waits on nothing: it cannot be a deadlock"),
        );
    };
    check_eq(
        "when B's job started",
        started,
        2 * SECOND,
        &STAGE3.hint(
            "the slot of A's dropped run is free from 1 s: B, asking at 2 s, gets it at once. \
             Hold a slot in a guard whose Drop gives it back, so a run cancelled while its job \
             runs gives it back too",
        ),
    );
    check_eq(
        "B's own run, which joined the line at 3 s: when its job started",
        inner,
        Ok(10 * SECOND),
        &STAGE3.hint(
            "at 3 s A waits on a timer, not on the limiter (it dropped its run at 1 s): no \
             deadlock, and B's run gets A's slot at 10 s. A dropped inner run must stop counting \
             against its job",
        ),
    );
    assert_whole(&limiter, 2, "an inner run was cancelled while its job ran").await;
}

/// A job's body that panics, with a `String` payload, as `panic!("{what} ...")` would.
fn explode(what: &str) -> u32 {
    panic_with_string(format_args!("{what} fails on purpose"))
}

#[kata_harness::test]
async fn stage3_a_job_that_panics_gives_back_its_slot() {
    let limiter = checked(2);
    // In one task a job panics; in another, an inner job panics, and the panic unwinds through
    // the job that awaited it. Tokio catches both panics at the task's edge.
    let alone = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.run(async { explode("a job") }).await }
    });
    let nested = tokio::spawn({
        let limiter = limiter.clone();
        async move {
            limiter
                .run(async { limiter.run(async { explode("an inner job") }).await })
                .await
        }
    });
    let hint = STAGE3.hint(
        "run passes a job's panic on to its caller, unchanged: it neither catches it nor turns \
         it into an Err",
    );
    for (what, task, message) in [
        (
            "the run whose job panicked",
            alone.await.map(|r| format!("{r:?}")),
            "a job fails on purpose",
        ),
        (
            "the run whose inner job panicked",
            nested.await.map(|r| format!("{r:?}")),
            "an inner job fails on purpose",
        ),
    ] {
        match task {
            Err(error) if error.is_panic() => {
                let text = panic_text(error.into_panic().as_ref());
                check_eq(what, text.as_str(), message, &hint);
            }
            other => fail(what, format_args!("{other:?}"), "the job's panic", &hint),
        }
    }
    assert_whole(&limiter, 2, "two jobs panicked").await;
}

// ---------------------------------------------------------------------------------------------
// Stage 3 on several threads. A lost wake-up needs two threads: a run that finds every slot
// taken and joins the line while, on another thread, the last job ends and finds nobody in
// line waits for ever beside a free slot. A current-thread runtime never interleaves them, so
// this test runs on 4 worker threads, on the real clock (stress::on_multi_thread): tasks that
// meet at a barrier after every round, so a run that is never woken stops them all.

#[kata_harness::test]
async fn stage3_no_wake_up_is_lost_on_two_threads() {
    const SLOTS: usize = 1;
    const THREADS: usize = 2;
    const ROUNDS: usize = 20_000;
    let outcome = support::stress(checked(SLOTS), THREADS, ROUNDS).await;
    let what = format!(
        "{} rounds (of up to {ROUNDS}) of {THREADS} runs at once on {SLOTS} slot, on {THREADS} \
         threads",
        outcome.rounds
    );
    if let Some((thread, round)) = outcome.stuck {
        fail(
            &what,
            format_args!("the run of thread {thread} in round {round} still waiting after 1 s"),
            "every run done at once",
            &STAGE3.hint(
                "a run was never woken: look for a free slot and join the line in one critical \
                 section (one lock), and hand a freed slot to the first run in line under that \
                 same lock, so that no slot can be freed between a run's look and its wait",
            ),
        );
    }
    check(
        &format!("jobs at once in {what}"),
        outcome.most_at_once <= SLOTS,
        outcome.most_at_once,
        format_args!("at most {SLOTS}"),
        &STAGE3.hint(
            "two runs took the last free slot at once: look for a free slot and take it in one \
             critical section",
        ),
    );
    assert_whole(&outcome.limiter, SLOTS, "thousands of runs on two threads").await;
}
