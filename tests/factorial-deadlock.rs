//! The factorial-deadlock kata's suite, run against both `exercises/factorial-deadlock` and
//! `solutions/factorial-deadlock`.
//!
//! Every job runs through a limiter the suite controls, so it can count the jobs and the slots
//! they hold at once (`Limiter::instrumented` with a concurrency probe). On the paused clock a
//! deadlock shows at once, so the suite can check both sides of the naive version's threshold:
//! exactly enough slots completes and every one of them is held, one slot fewer hangs. It then
//! rejects a fixed version that still holds a slot while waiting, bypasses the limiter, or wraps
//! on overflow; and a checked limiter that hangs, guesses with a timer, reports slow jobs as a
//! deadlock, or loses slots on the way.

// Heap counters per test: `just compare` shows each test's peak heap next to the reference's.
kata_harness::install_allocator!();

use std::time::Duration;

use factorial_deadlock::{
    CheckedLimiter, Deadlock, FactorialError, LimitError, Limiter, factorial, factorial_naive,
};
use kata_harness::completion::{assert_deadlocks, completes_within};
use kata_harness::ms;
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::{check_eq, fail};
use kata_harness::timing::{Timeline, assert_elapsed, assert_schedule};
use rstest::rstest;
use tokio::time::{Instant, sleep};

const STAGE1: &str = "exercises/factorial-deadlock/README.md, stage 1";
const STAGE2: &str = "exercises/factorial-deadlock/README.md, stage 2";
const STAGE3: &str = "exercises/factorial-deadlock/README.md, stage 3";

/// Long enough for any test here: on the paused clock, still waiting after this means never.
const PATIENCE: Duration = Duration::from_secs(60);

/// `n!` the plain way, to compare with.
fn expected(n: u32) -> u128 {
    (1..=u128::from(n)).product()
}

/// A limiter with `slots` slots; each job counts in `probe` while it holds its slot.
fn watched(slots: usize, probe: &ConcurrencyProbe) -> Limiter {
    let probe = probe.clone();
    Limiter::instrumented(slots, move || probe.enter()).unwrap_or_else(|error| {
        fail(
            &format!("Limiter::instrumented({slots}, ..)"),
            "a limiter",
            format_args!("Err({error:?})"),
            "the Limiter is given: it should not need changing",
        )
    })
}

/// `CheckedLimiter::new` for tests that are not about its errors.
fn checked(slots: usize) -> CheckedLimiter {
    CheckedLimiter::new(slots).unwrap_or_else(|error| {
        fail(
            &format!("CheckedLimiter::new({slots})"),
            "a limiter",
            format_args!("Err({error:?})"),
            STAGE3,
        )
    })
}

/// Stage 1's naive recursion, written here on a [`CheckedLimiter`]: the job for `n` awaits the
/// job for `n - 1` while it holds its own slot, so `n!` needs `max(n, 1)` slots.
async fn checked_naive(n: u32, limiter: &CheckedLimiter) -> Result<u128, Deadlock> {
    limiter
        .run(async move {
            if n <= 1 {
                return Ok(1);
            }
            let smaller = Box::pin(checked_naive(n - 1, limiter)).await?;
            Ok(u128::from(n) * smaller)
        })
        .await?
}

// ---------------------------------------------------------------------------------------------
// Stage 1: the naive recursion, and its exact threshold
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::zero(0)]
#[case::one(1)]
#[case::two(2)]
#[case::three(3)]
#[case::five(5)]
#[case::ten(10)]
#[case::twenty(20)]
#[case::the_largest_that_fits_in_u128(34)]
#[kata_harness::test]
async fn stage1_is_exact_with_exactly_enough_slots(#[case] n: u32) {
    let slots = n.max(1) as usize;
    let limiter = watched(slots, &ConcurrencyProbe::new());
    let what = format!("factorial_naive({n}) with {slots} slot(s)");
    let result = completes_within(
        PATIENCE,
        &what,
        "n! needs max(n, 1) slots, one for each of the jobs for n, n - 1, ..., 1, and must \
         finish with exactly that many: does some job take a second slot, or wait for something \
         besides the job for n - 1? (stage 1)",
        factorial_naive(n, &limiter),
    )
    .await;
    check_eq(
        &what,
        result,
        Ok(expected(n)),
        "n! = n x (n - 1)!, and 0! = 1! = 1 (stage 1)",
    );
}

#[rstest]
#[case::two(2)]
#[case::three(3)]
#[case::five(5)]
#[case::eight(8)]
#[kata_harness::test]
async fn stage1_deadlocks_with_one_slot_too_few(#[case] n: u32) {
    let slots = n as usize - 1;
    let probe = ConcurrencyProbe::new();
    let limiter = watched(slots, &probe);
    assert_deadlocks(
        PATIENCE,
        &format!("factorial_naive({n}) with {slots} slot(s)"),
        "the job for n awaits the job for n - 1 *inside* itself, holding its slot, and the job \
         for 1 is a job too: so n! holds n slots at once, and with n - 1 the job for 1 waits \
         forever for a slot. Compute (n - 1)! inside the job for n, not before or after it \
         (stage 1)",
        factorial_naive(n, &limiter),
    )
    .await;
    probe.assert_limit(
        slots,
        &format!("jobs of factorial_naive({n}) stuck with {slots} slot(s)"),
        "the deadlock comes from every slot being held by a job waiting on the next one: all \
         slots should be taken before it gets stuck (stage 1)",
    );
}

#[rstest]
#[case::zero(0)]
#[case::one(1)]
#[case::two(2)]
#[case::five(5)]
#[case::ten(10)]
#[kata_harness::test]
async fn stage1_holds_one_slot_per_step_all_at_once(#[case] n: u32) {
    let slots = n.max(1) as usize;
    let probe = ConcurrencyProbe::new();
    let limiter = watched(slots, &probe);
    let what = format!("factorial_naive({n}) with {slots} slot(s)");
    let result = completes_within(PATIENCE, &what, STAGE1, factorial_naive(n, &limiter)).await;
    check_eq(&what, result, Ok(expected(n)), STAGE1);
    check_eq(
        &format!("jobs run by {what}"),
        probe.started(),
        slots,
        "one job per step: the jobs for n, n - 1, ..., 1 (and a single job for 0!) (stage 1)",
    );
    probe.assert_limit(
        slots,
        &format!("jobs of {what}"),
        "each job holds its slot while it awaits the job for n - 1, so at the bottom of the \
         recursion all of them hold one at once (stage 1)",
    );
}

#[rstest]
#[case::one_spare_slot(5, 6)]
#[case::many_spare_slots(5, 100)]
#[case::ten_deep(10, 64)]
#[kata_harness::test]
async fn stage1_more_slots_than_needed_work_too(#[case] n: u32, #[case] slots: usize) {
    let probe = ConcurrencyProbe::new();
    let limiter = watched(slots, &probe);
    let what = format!("factorial_naive({n}) with {slots} slots");
    let result = completes_within(PATIENCE, &what, STAGE1, factorial_naive(n, &limiter)).await;
    check_eq(&what, result, Ok(expected(n)), STAGE1);
    check_eq(
        &format!("the most jobs at once in {what}"),
        probe.max(),
        n as usize,
        "the recursion is n jobs deep whatever the limit: one job per step, each holding its \
         slot while it awaits the next (stage 1)",
    );
}

#[rstest]
#[case::just_too_large(35, 35)]
#[case::much_too_large(100, 100)]
#[case::the_largest_u32(u32::MAX, 100)]
#[kata_harness::test]
async fn stage1_a_factorial_too_large_for_u128_is_an_error(#[case] n: u32, #[case] slots: usize) {
    let limiter = watched(slots, &ConcurrencyProbe::new());
    let what = format!("factorial_naive({n}) with {slots} slots");
    let result = completes_within(
        PATIENCE,
        &what,
        "check n against MAX_N (34) before starting any job: recursing u32::MAX levels first \
         would need u32::MAX slots (stage 1)",
        factorial_naive(n, &limiter),
    )
    .await;
    check_eq(
        &what,
        result,
        Err(FactorialError::Overflow { n }),
        "34! is the largest factorial that fits in a u128: from 35 on, return \
         Err(FactorialError::Overflow { n }) instead of a wrapped number or a panic (stage 1)",
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the fix, with any number of slots
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::one_slot(1)]
#[case::two_slots(2)]
#[case::three_slots(3)]
#[case::four_slots(4)]
#[case::eight_slots(8)]
#[kata_harness::test]
async fn stage2_is_exact_for_every_n_with_any_number_of_slots(#[case] slots: usize) {
    let limiter = watched(slots, &ConcurrencyProbe::new());
    for n in 0..=34 {
        let what = format!("factorial({n}) with {slots} slot(s)");
        let result = completes_within(
            ms(1),
            &what,
            "factorial must finish with any number of slots, even 1, and needs no timer: a job \
             must never await another job while it holds its slot (stage 2)",
            factorial(n, &limiter),
        )
        .await;
        check_eq(
            &what,
            result,
            Ok(expected(n)),
            "n! = 1 x 2 x ... x n, and 0! = 1 (stage 2)",
        );
    }
}

#[rstest]
#[case::one_slot(1)]
#[case::three_slots(3)]
#[kata_harness::test]
async fn stage2_runs_every_step_through_the_limiter(#[case] slots: usize) {
    for n in 1..=34 {
        let probe = ConcurrencyProbe::new();
        let limiter = watched(slots, &probe);
        let what = format!("factorial({n}) with {slots} slot(s)");
        let result = completes_within(PATIENCE, &what, STAGE2, factorial(n, &limiter)).await;
        check_eq(&what, result, Ok(expected(n)), STAGE2);
        let jobs = probe.started();
        if jobs < n as usize {
            fail(
                &format!("jobs run through the limiter by {what}"),
                format_args!("at least {n}: one job per factor k = 1..={n}"),
                format_args!("{jobs}"),
                "the fix must still do its work through the limiter: run each multiplication as \
                 a job with limiter.run, and await it outside any other job (stage 2)",
            );
        }
        probe.assert_never_above(slots, &format!("jobs of {what}"), STAGE2);
    }
}

#[kata_harness::test]
async fn stage2_waits_its_turn_on_a_busy_limiter() {
    let start = Instant::now();
    let limiter = watched(2, &ConcurrencyProbe::new());
    // Two 10-second jobs take both slots first; factorial asks after them.
    let both = async {
        tokio::join!(
            limiter.run(sleep(Duration::from_secs(10))),
            limiter.run(sleep(Duration::from_secs(10))),
            async {
                let result = factorial(20, &limiter).await;
                (result, start.elapsed())
            },
        )
    };
    let (_, _, (result, finished_at)) = completes_within(
        PATIENCE,
        "factorial(20) on a limiter with 2 slots, both busy for 10 s",
        "once the slots free up, factorial needs only one of them: does a job await another \
         job? (stage 2)",
        both,
    )
    .await;
    check_eq(
        "factorial(20) on a limiter busy for 10 s",
        result,
        Ok(expected(20)),
        STAGE2,
    );
    assert_elapsed(
        "factorial(20) after two 10 s jobs took both slots",
        finished_at,
        Duration::from_secs(10),
        Duration::ZERO,
        "its jobs wait for a free slot like any others, then run back to back: finishing \
         earlier means some step bypassed the limiter (stage 2)",
    );
}

#[rstest]
#[case::just_too_large(35)]
#[case::much_too_large(100)]
#[case::the_largest_u32(u32::MAX)]
#[kata_harness::test]
async fn stage2_a_factorial_too_large_for_u128_is_an_error(#[case] n: u32) {
    let limiter = watched(2, &ConcurrencyProbe::new());
    let what = format!("factorial({n}) with 2 slots");
    let result = completes_within(ms(1), &what, STAGE2, factorial(n, &limiter)).await;
    check_eq(
        &what,
        result,
        Err(FactorialError::Overflow { n }),
        "multiply with u128::checked_mul and return Err(FactorialError::Overflow { n }) when it \
         gives None: never a wrapped number or a panic, and n = u32::MAX must fail at 35, not \
         after 4 billion jobs (stage 2)",
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 3: a limiter that reports the deadlock
// ---------------------------------------------------------------------------------------------

#[kata_harness::test]
async fn stage3_zero_slots_is_an_error() {
    let error = CheckedLimiter::new(0).err();
    check_eq(
        "CheckedLimiter::new(0)",
        error,
        Some(LimitError::Zero),
        "a limiter without slots would never run anything: return Err(LimitError::Zero) \
         (stage 3)",
    );
}

#[kata_harness::test]
async fn stage3_runs_at_most_concurrency_jobs_in_call_order() {
    let timeline = Timeline::start();
    let probe = ConcurrencyProbe::new();
    let limiter = checked(2);
    // Lengths chosen so each start time is distinct from a wrong order's.
    let runs = [30, 10, 20, 10, 10]
        .into_iter()
        .enumerate()
        .map(|(i, length)| {
            let (timeline, probe) = (timeline.clone(), probe.clone());
            limiter.run(async move {
                timeline.mark(format!("start {i}"));
                probe.track(sleep(ms(length))).await;
                i
            })
        });
    let results = completes_within(
        PATIENCE,
        "5 runs on a CheckedLimiter with 2 slots",
        STAGE3,
        futures::future::join_all(runs),
    )
    .await;
    check_eq(
        "results of 5 runs",
        results,
        (0..5).map(Ok).collect(),
        "run returns Ok(the job's output) when there is no deadlock: these jobs wait on a timer, \
         not on the limiter, so a full limiter with runs queued is no deadlock (stage 3)",
    );
    probe.assert_limit(
        2,
        "5 jobs on 2 slots",
        "a job holds a slot while it runs: at most `concurrency` at once, and a queued job \
         starts as soon as a slot frees up (stage 3)",
    );
    check_eq(
        "the order jobs started in",
        timeline.labels(),
        (0..5).map(|i| format!("start {i}")).collect(),
        "slots go to waiting runs first come, first served (stage 3)",
    );
    let starts = timeline.instants();
    assert_schedule(
        "job start times on 2 slots",
        &starts,
        &[ms(0), ms(0), ms(10), ms(30), ms(30)],
        "a freed slot goes straight to the first run in line (stage 3)",
    );
}

#[rstest]
#[case::one_slot(2, 1)]
#[case::the_source_exercise(5, 3)]
#[case::one_slot_too_few(5, 4)]
#[case::ten_deep(10, 7)]
#[kata_harness::test]
async fn stage3_reports_the_naive_deadlock_at_once(#[case] n: u32, #[case] slots: usize) {
    let start = Instant::now();
    let limiter = checked(slots);
    let what = format!("the naive recursion for {n}! on a CheckedLimiter with {slots} slot(s)");
    let result = completes_within(
        PATIENCE,
        &what,
        "instead of hanging, run must notice that every slot is held by a job waiting on a run \
         of the same limiter while a run is queued, and return Err(Deadlock) (stage 3)",
        checked_naive(n, &limiter),
    )
    .await;
    check_eq(
        &what,
        result,
        Err(Deadlock {
            held: slots,
            queued: 1,
        }),
        "the jobs for n down to n - slots + 1 hold every slot, each awaiting the next; the job \
         for n - slots is the one run queued: it gets Err(Deadlock { held: slots, queued: 1 }), \
         and the error travels back up through the jobs (stage 3)",
    );
    assert_elapsed(
        &format!("time until {what} reported the deadlock"),
        start.elapsed(),
        Duration::ZERO,
        Duration::ZERO,
        "no timer: the deadlock is certain the moment that run queues, so report it then \
         (stage 3)",
    );
}

#[rstest]
#[case::zero(0, 1)]
#[case::one(1, 1)]
#[case::exactly_enough(5, 5)]
#[case::more_than_enough(5, 8)]
#[case::the_largest(34, 34)]
#[kata_harness::test]
async fn stage3_the_naive_recursion_works_with_enough_slots(#[case] n: u32, #[case] slots: usize) {
    let limiter = checked(slots);
    let what = format!("the naive recursion for {n}! on a CheckedLimiter with {slots} slot(s)");
    let result = completes_within(PATIENCE, &what, STAGE3, checked_naive(n, &limiter)).await;
    check_eq(
        &what,
        result,
        Ok(expected(n)),
        "with max(n, 1) slots nothing ever queues, so there is no deadlock to report: the job \
         for 1 waits on nothing (stage 3)",
    );
}

#[kata_harness::test]
async fn stage3_slow_jobs_holding_every_slot_are_not_a_deadlock() {
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let limiter = checked(3);
    let runs = (0..6).map(|i| {
        limiter.run(probe.track(async move {
            sleep(Duration::from_secs(10)).await;
            i
        }))
    });
    let results = completes_within(
        PATIENCE,
        "6 runs of 10 s on a CheckedLimiter with 3 slots",
        STAGE3,
        futures::future::join_all(runs),
    )
    .await;
    check_eq(
        "results of 6 slow runs, 3 of them queued",
        results,
        (0..6).map(Ok).collect(),
        "a full limiter with runs queued is not a deadlock: these jobs wait on a timer, not on \
         the limiter, so they will finish and free their slots (stage 3)",
    );
    probe.assert_limit(3, "6 slow jobs on 3 slots", STAGE3);
    assert_elapsed(
        "6 runs of 10 s on 3 slots",
        start.elapsed(),
        Duration::from_secs(20),
        Duration::ZERO,
        "two rounds of 3 jobs (stage 3)",
    );
}

#[kata_harness::test]
async fn stage3_waiting_on_queued_work_is_fine_while_another_slot_will_free() {
    let timeline = Timeline::start();
    let limiter = checked(3);
    let slow = |label: &'static str, secs: u64| {
        let timeline = timeline.clone();
        limiter.run(async move {
            sleep(Duration::from_secs(secs)).await;
            timeline.mark(format!("{label} done"));
        })
    };
    let (timeline_c, timeline_d) = (timeline.clone(), timeline.clone());
    // A and B sleep; C awaits a run of its own (queued: every slot is taken); D queues too.
    // Only one of the three slots is held by a job waiting on the limiter: no deadlock.
    let hint = "a job waiting on queued work is no deadlock while some slot is held by a job \
                that is not waiting on the limiter: that one will finish and pass its slot on \
                (stage 3)";
    let all = async {
        tokio::join!(
            slow("A", 10),
            slow("B", 12),
            limiter.run(async {
                limiter
                    .run(async move {
                        timeline_c.mark("C's inner job starts");
                        sleep(Duration::from_secs(1)).await;
                        7
                    })
                    .await
            }),
            limiter.run(async move {
                timeline_d.mark("D starts");
                sleep(Duration::from_secs(1)).await;
            }),
        )
    };
    let (a, b, c, d) = completes_within(PATIENCE, "A, B, C and D", hint, all).await;
    check_eq(
        "results of A, B, C and D",
        (a, b, c, d),
        (Ok(()), Ok(()), Ok(Ok(7)), Ok(())),
        hint,
    );
    check_eq(
        "what happened, and when",
        timeline.events(),
        vec![
            (Duration::from_secs(10), "A done".to_owned()),
            (Duration::from_secs(10), "C's inner job starts".to_owned()),
            (Duration::from_secs(11), "D starts".to_owned()),
            (Duration::from_secs(12), "B done".to_owned()),
        ],
        "A's slot goes to C's inner job, first in line; D, queued after it, gets the slot that \
         inner job frees at 11 s (stage 3)",
    );
    assert_elapsed(
        "A (10 s), C's inner job and D (1 s each, one after the other), B (12 s)",
        timeline.now(),
        Duration::from_secs(12),
        Duration::ZERO,
        hint,
    );
}

#[kata_harness::test]
async fn stage3_a_job_stops_waiting_when_its_run_ends() {
    let timeline = Timeline::start();
    let limiter = checked(2);
    let timeline_b = timeline.clone();
    // A awaits a run of its own, which ends at once; then A sleeps 10 s, waiting on nothing but
    // a timer. At 1 s, B awaits a run of its own, which has to queue: one slot is held by a job
    // waiting on the limiter (B), the other by one that is not (A). No deadlock.
    let all = async {
        tokio::join!(
            limiter.run(async {
                let inner = limiter.run(async { 1 }).await;
                sleep(Duration::from_secs(10)).await;
                inner
            }),
            limiter.run(async {
                sleep(Duration::from_secs(1)).await;
                limiter
                    .run(async move {
                        timeline_b.mark("B's inner job starts");
                        2
                    })
                    .await
            }),
        )
    };
    let hint = "a job waits on limiter work only while its run is pending: when that run ends, \
                stop counting the job as waiting (stage 3)";
    let (a, b) = completes_within(PATIENCE, "A and B", hint, all).await;
    check_eq("results of A and B", (a, b), (Ok(Ok(1)), Ok(Ok(2))), hint);
    check_eq(
        "what happened, and when",
        timeline.events(),
        vec![(Duration::from_secs(10), "B's inner job starts".to_owned())],
        "B's inner job gets the slot A frees at 10 s (stage 3)",
    );
}

#[kata_harness::test]
async fn stage3_work_on_another_limiter_is_not_a_deadlock() {
    let timeline = Timeline::start();
    let first = checked(1);
    let second = checked(1);
    // `second`'s only slot is busy for 10 s. Meanwhile `first`'s only job awaits a run of
    // `second`, and another run queues on `first`. `first` looks full of a waiting job, but what
    // it waits on is another limiter's work, which will come.
    let (timeline_x, timeline_y) = (timeline.clone(), timeline.clone());
    let all = async {
        tokio::join!(
            second.run(sleep(Duration::from_secs(10))),
            first.run(async {
                second
                    .run(async move {
                        timeline_x.mark("second's queued job starts");
                        sleep(Duration::from_secs(1)).await;
                    })
                    .await
            }),
            first.run(async move {
                timeline_y.mark("first's queued job starts");
                sleep(Duration::from_secs(1)).await;
            }),
        )
    };
    let (busy, job, queued) = completes_within(PATIENCE, "runs on two limiters", STAGE3, all).await;
    check_eq(
        "results",
        (busy, job, queued),
        (Ok(()), Ok(Ok(())), Ok(())),
        "a job waits on *limiter work* only while it awaits a run of the same limiter: keep \
         which limiter a job belongs to, and ignore runs of other limiters (stage 3)",
    );
    check_eq(
        "what happened, and when",
        timeline.events(),
        vec![
            (
                Duration::from_secs(10),
                "second's queued job starts".to_owned(),
            ),
            (
                Duration::from_secs(11),
                "first's queued job starts".to_owned(),
            ),
        ],
        STAGE3,
    );
}

#[kata_harness::test]
async fn stage3_every_queued_run_gets_the_deadlock() {
    let start = Instant::now();
    let limiter = checked(2);
    // A and B take both slots, then after 1 s each awaits a run of its own; C queued at once.
    let nested = || {
        limiter.run(async {
            sleep(Duration::from_secs(1)).await;
            limiter.run(async { 1 }).await
        })
    };
    let deadlock = Deadlock { held: 2, queued: 3 };
    let hint = "when the second of A and B starts waiting, every slot is held by a job waiting \
                on the limiter: all 3 queued runs (C, then the inner runs of A and B) get \
                Err(Deadlock { held: 2, queued: 3 }), including C, which belongs to no job \
                (stage 3)";
    let all = async { tokio::join!(nested(), nested(), limiter.run(async { 3 })) };
    let (a, b, c) = completes_within(PATIENCE, "A, B and C", hint, all).await;
    check_eq("C, queued behind A and B", c, Err(deadlock), hint);
    check_eq(
        "A and B, whose inner runs were refused",
        (a, b),
        (Ok(Err(deadlock)), Ok(Err(deadlock))),
        hint,
    );
    assert_elapsed(
        "time until the deadlock was reported",
        start.elapsed(),
        Duration::from_secs(1),
        Duration::ZERO,
        "at 1 s, when the deadlock forms, not before and not later (stage 3)",
    );
}

#[kata_harness::test]
async fn stage3_the_limiter_works_again_after_a_deadlock() {
    let limiter = checked(3);
    for round in 1..=2 {
        check_eq(
            &format!("the naive recursion for 5! on 3 slots, round {round}"),
            completes_within(
                PATIENCE,
                "a checked run",
                STAGE3,
                checked_naive(5, &limiter),
            )
            .await,
            Err(Deadlock { held: 3, queued: 1 }),
            STAGE3,
        );
        check_eq(
            &format!("the naive recursion for 3! on the same limiter, after round {round}"),
            completes_within(
                PATIENCE,
                "a checked run",
                STAGE3,
                checked_naive(3, &limiter),
            )
            .await,
            Ok(6),
            "once the jobs of a reported deadlock have returned, their slots are free again \
             (stage 3)",
        );
    }
    let start = Instant::now();
    let probe = ConcurrencyProbe::new();
    let runs = (0..3).map(|_| limiter.run(probe.track(sleep(Duration::from_secs(10)))));
    completes_within(
        PATIENCE,
        "3 runs after two deadlocks",
        STAGE3,
        futures::future::join_all(runs),
    )
    .await;
    probe.assert_limit(
        3,
        "3 jobs on 3 slots after two deadlocks",
        "every slot comes back, even from jobs that ended in Err(Deadlock): release a slot \
         however its job ends (stage 3)",
    );
    assert_elapsed(
        "3 runs of 10 s on 3 slots",
        start.elapsed(),
        Duration::from_secs(10),
        Duration::ZERO,
        STAGE3,
    );
}

#[kata_harness::test]
async fn stage3_a_cancelled_run_gives_back_its_place_or_its_slot() {
    let hint = "dropping a run's future cancels it: take it out of the queue, and if a slot was \
                handed to it that it never used, pass that slot on (stage 3)";
    let limiter = checked(1);

    // Cancelled while queued: a timeout gives up on it after 5 s.
    let start = Instant::now();
    let all = async {
        tokio::join!(
            limiter.run(sleep(Duration::from_secs(10))),
            tokio::time::timeout(Duration::from_secs(5), limiter.run(async { 1 })),
            async {
                let result = limiter.run(async { 2 }).await;
                (result, start.elapsed())
            },
        )
    };
    let (_, gave_up, next) = completes_within(PATIENCE, "three runs on 1 slot", hint, all).await;
    if let Ok(result) = gave_up {
        fail(
            "a run queued behind a 10 s job on 1 slot, cancelled after 5 s",
            "still waiting for its slot when it was cancelled",
            format_args!("it finished first, with {result:?}"),
            "its slot comes only at 10 s, and nothing here is a deadlock: the job holding the \
             slot waits on a timer, not on the limiter (stage 3)",
        );
    }
    check_eq(
        "the run queued behind the cancelled one",
        next,
        (Ok(2), Duration::from_secs(10)),
        hint,
    );

    // Cancelled after a slot was handed to it, before it was polled again: boxed, so it can be
    // dropped at the moment of our choosing.
    let mut holder = Box::pin(limiter.run(sleep(Duration::from_secs(1))));
    let mut handed_a_slot = Box::pin(limiter.run(async { 3 }));
    let first_polls = (
        futures::poll!(holder.as_mut()).is_pending(),
        futures::poll!(handed_a_slot.as_mut()).is_pending(),
    );
    check_eq(
        "a 1 s run on a free limiter with 1 slot, then a second run, each polled once",
        first_polls,
        (true, true),
        "the first runs its 1 s job, the second waits in line (stage 3)",
    );
    check_eq("the 1 s run", holder.await, Ok(()), STAGE3);
    // Its slot went to the second run, which is dropped without being polled again.
    drop(handed_a_slot);
    let after = completes_within(
        ms(1),
        "a run after a run was dropped holding a slot it never used",
        hint,
        limiter.run(async { 4 }),
    )
    .await;
    check_eq("that run", after, Ok(4), hint);
}
