//! The blocking-executor kata's suite, run against both `exercises/blocking-executor` and
//! `solutions/blocking-executor`: the kata's precise specification.
//!
//! Every test computes factorials with the given `Factorial`, whose `Progress` counter says how
//! many steps were done and whether the computation's state is still alive, from any thread.
//! Most tests run on the paused clock and count instead of timing: a companion task's turns
//! (checkpoints), the CPU time of the runtime's thread (offloading), the steps done after a drop
//! (cancellation), the order in which pool jobs start and end. Four tests run on the real clock,
//! each saying why: a ticker's lateness beside the computation, a loop on a pool thread that
//! must stop, and pool jobs that must *not* start. Stage by stage they reject the usual wrong
//! answers: a loop with no checkpoint, a checkpoint at every step or off by one, steps lost to a
//! remainder, an error found after the work began; work left on the runtime's thread, a panic
//! that escapes or loses its message; a `JoinHandle` dropped or aborted in the belief that it
//! stops the closure, a flag checked too rarely or never set; a pool with no limit, a limit off
//! by one, a slot lost to a panic, a slot freed when the caller leaves instead of when the job
//! ends, a queued job that still runs after its caller left, a queue that polls on a timer.

kata_harness::install_allocator!();

#[path = "blocking-executor/support.rs"]
mod support;

use std::thread;
use std::time::Duration;

use blocking_executor::{
    BlockingError, BlockingPool, Factorial, FactorialError, MAX_N, PoolError, Progress,
    factorial_cancellable, factorial_checkpointed, offload,
};
use kata_harness::blocking::TurnCounter;
use kata_harness::completion::completes_within;
use kata_harness::leaks::settle;
use kata_harness::report::{check, check_eq, check_seq, fail, panic_with_string};
use kata_harness::timing::assert_elapsed;
use kata_harness::{Stage, ms};
use support::{
    Digits, Event, Jobs, Offloaded, PATIENCE, PERIOD, calibrate, cost_of, digits_of, first_poll,
    pool, runtime_cost, ticker_beside, wait_until, without_panic,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

const STAGE1: Stage = Stage::new("blocking-executor", 1);
const STAGE2: Stage = Stage::new("blocking-executor", 2);
const STAGE3: Stage = Stage::new("blocking-executor", 3);

/// The mistake this kata is about, written on purpose: an `async fn` with no `.await` in its
/// loop. Its first poll does every step, and no other task runs meanwhile.
async fn accidental_blocking(n: u32, progress: Progress) {
    if let Ok(factorial) = Factorial::new(n, progress) {
        factorial.run();
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 1: factorial_checkpointed(n, every, progress): the steps on the runtime's thread, with a
// checkpoint (tokio::task::yield_now) after every `every` steps.
//
//   factorial_checkpointed(1000, every 100):
//     factorial   ▓▓▓▓▓|▓▓▓▓▓|▓▓▓▓▓| ... |▓▓▓▓▓|     10 stretches of 100 steps
//     companion        ^     ^     ^  ...       ^     a turn at each checkpoint: about 10
//   the same loop with no checkpoint:
//     factorial   ▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓     no turn at all until it is done

#[kata_harness::test]
#[case::zero(0, 1)]
#[case::one(1, 1)]
#[case::a_checkpoint_at_every_step(20, 1)]
#[case::every_does_not_divide_n(25, 7)]
#[case::a_thousand_with_a_remainder(1000, 7)]
#[case::a_thousand_in_one_stretch(1000, 1000)]
#[case::every_above_n(20, 100)]
async fn stage1_the_result_is_exact(#[case] n: u32, #[case] every: u32) {
    let progress = Progress::new();
    let result = factorial_checkpointed(n, every, progress.clone()).await;
    check_eq(
        &format!("factorial_checkpointed({n}, every {every})"),
        digits_of(&result),
        Ok(Digits::of_factorial(n)),
        &STAGE1.hint(
            "call step() until it returns false, then into_value(): stopping at the last \
             multiple of `every` loses the remainder's steps",
        ),
    );
    check_eq(
        "steps counted by the Progress",
        progress.steps(),
        u64::from(n),
        &STAGE1.hint("n! is exactly n steps: make one Factorial with the caller's Progress"),
    );
    check_eq(
        "factorials still alive once it returned",
        progress.live(),
        0,
        &STAGE1.hint("into_value() consumes the Factorial: keep no other one around"),
    );
}

#[kata_harness::test]
#[case::every_10_steps(1000, 10)]
#[case::every_step(1000, 1)]
#[case::every_250_steps(2000, 250)]
#[case::every_3_steps(1000, 3)]
#[case::never_within_n(100, 1000)]
async fn stage1_a_companion_task_gets_a_turn_at_every_checkpoint(
    #[case] n: u32,
    #[case] every: u32,
) {
    // A TurnCounter counts the turns the runtime gives a companion task: exact on one thread.
    let companion = TurnCounter::spawn();
    accidental_blocking(n, Progress::new()).await;
    check_eq(
        "turns of a companion task beside the test's own loop with no checkpoint",
        companion.stop(),
        0,
        &STAGE1.hint(
            "(this checks the test itself: a loop with no .await keeps the thread to itself)",
        ),
    );

    let companion = TurnCounter::spawn();
    let result = factorial_checkpointed(n, every, Progress::new()).await;
    let turns = companion.stop();
    check(
        &format!("factorial_checkpointed({n}, every {every}) finished"),
        result.is_ok(),
        format_args!("{:?}", digits_of(&result)),
        "Ok(n!)",
        &STAGE1.hint("a valid n and every give Ok(n!)"),
    );
    let expected = n / every;
    let (low, high) = (expected.saturating_sub(1), expected + 1);
    check(
        &format!("turns of a companion task beside factorial_checkpointed({n}, every {every})"),
        (u64::from(low)..=u64::from(high)).contains(&turns),
        format_args!("{turns} turns"),
        format_args!("about n / every = {expected} turns ({low} to {high})"),
        &STAGE1.hint(
            "await tokio::task::yield_now() once after every `every` steps, and only then: no \
             turn at all means the loop never gives the thread back, about n turns means it \
             yields at every step whatever `every` is, and a few more or fewer means the \
             count of steps since the last checkpoint is off by one",
        ),
    );
}

#[kata_harness::test]
#[case::n_just_above_the_maximum(MAX_N + 1, 10, FactorialError::TooLarge { n: MAX_N + 1 })]
#[case::n_far_above_the_maximum(u32::MAX, 10, FactorialError::TooLarge { n: u32::MAX })]
#[case::a_checkpoint_every_0_steps(10, 0, FactorialError::ZeroEvery)]
async fn stage1_bad_input_is_an_error_before_any_work(
    #[case] n: u32,
    #[case] every: u32,
    #[case] error: FactorialError,
) {
    let progress = Progress::new();
    let poll = first_poll(factorial_checkpointed(n, every, progress.clone())).await;
    check_eq(
        &format!("the first poll of factorial_checkpointed({n}, every {every})"),
        poll.map(|result| result.map(|value| value.digits())),
        std::task::Poll::Ready(Err(error)),
        &STAGE1.hint(
            "check `every` and make the Factorial (Factorial::new checks n) before the loop \
             and its first checkpoint, and return their error with `?`",
        ),
    );
    check_eq(
        "steps done",
        progress.steps(),
        0,
        &STAGE1.hint("an error comes before any step"),
    );
}

#[kata_harness::test]
async fn stage1_dropping_the_future_stops_the_work() {
    let progress = Progress::new();
    let mut computing = Box::pin(factorial_checkpointed(MAX_N, 100, progress.clone()));
    let poll = futures::poll!(computing.as_mut());
    check(
        &format!("the first poll of factorial_checkpointed({MAX_N}, every 100)"),
        poll.is_pending(),
        format_args!("{:?}", poll.map(|result| digits_of(&result))),
        "Pending, at its first checkpoint",
        &STAGE1.hint(
            "MAX_N itself is allowed; the first poll runs up to the first checkpoint and \
             returns Pending there",
        ),
    );
    check_eq(
        "factorials alive while it waits at a checkpoint",
        progress.live(),
        1,
        &STAGE1.hint("the computation's Factorial lives in the future, between checkpoints"),
    );
    let steps = progress.steps();
    drop(computing);
    settle().await;
    check_eq(
        "factorials alive once the future was dropped",
        progress.live(),
        0,
        &STAGE1.hint(
            "run the loop in the future itself, not in a spawned task: then dropping the future \
             drops the Factorial and the work stops at the checkpoint where it waited",
        ),
    );
    check_eq(
        "steps done after the drop",
        progress.steps() - steps,
        0,
        &STAGE1.hint("nothing may compute once the future is gone"),
    );
}

// On the real clock, a ticker every 20 ms beside about 250 ms of factorials:
//
//   beside the test's loop with no checkpoint:  | | |                        | | | |   one gap of ~250 ms
//   beside factorial_checkpointed:              | | | | | | | | | | | | | | | | | |   every 20 ms

#[kata_harness::test(real_time, watchdog_secs = 30)]
async fn stage1_a_ticker_beside_the_computation_stays_on_time() {
    // Real time: on the paused clock computing takes no time at all, so a ticker could not be
    // late there however long the thread is held. The work is sized to this machine and build
    // (CPU time), and each gap between ticks is taken net of the time the thread waited for a
    // CPU, so a loaded machine does not make the ticker look late.
    const LATE: Duration = ms(40);
    let (n, repeats) = calibrate(2000, ms(250));
    let ((), blocked) = ticker_beside(async {
        for _ in 0..repeats {
            accidental_blocking(n, Progress::new()).await;
        }
    })
    .await;
    check(
        &format!("the ticker beside the test's own loop with no checkpoint ({repeats} x {n}!)"),
        blocked.max >= ms(150),
        format_args!("at most {:.1?} late", blocked.max),
        "at least 150 ms late at some tick",
        &STAGE1.hint("(this checks the test itself: it shows what a blocked thread does)"),
    );
    let (result, lateness) = ticker_beside(async {
        for _ in 0..repeats {
            factorial_checkpointed(n, 20, Progress::new()).await?;
        }
        Ok::<_, FactorialError>(())
    })
    .await;
    check_eq(
        "factorial_checkpointed's results",
        result,
        Ok(()),
        &STAGE1.hint("a valid n and every give Ok(n!)"),
    );
    check(
        &format!(
            "the ticker (every {PERIOD:?}) beside factorial_checkpointed({n}, every 20), {repeats} \
             times (real time)"
        ),
        lateness.max < LATE,
        format_args!(
            "a tick {:.1?} late ({} ticks)",
            lateness.max, lateness.ticks
        ),
        format_args!("every tick less than {LATE:?} late"),
        &STAGE1.hint(
            "a tick can only run when the computation awaits: yield to the runtime after every \
             `every` steps, so the ticker waits for 20 steps at most",
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: offload(job) runs a closure on tokio's blocking pool; factorial_offloaded runs the
// factorial there; factorial_cancellable too, and dropping its future stops the loop.
//
//   runtime's thread:  poll ── spawn_blocking ── (parked: other tasks run) ── result
//   a pool thread:                  └── step 1, 2, ..., n ─────────────────────┘

#[kata_harness::test]
async fn stage2_offload_runs_the_closure_on_another_thread() {
    let here = thread::current().id();
    let result = offload(move || (6 * 7, thread::current().id())).await;
    let Ok((value, ran_on)) = result else {
        fail(
            "offload(|| 6 * 7)",
            format_args!("{result:?}"),
            "Ok(42)",
            &STAGE2.hint("a closure that returns gives Ok(what it returned)"),
        );
    };
    check_eq(
        "offload(|| 6 * 7)",
        value,
        42,
        &STAGE2.hint("return what the closure returned"),
    );
    check(
        "the thread that ran offload's closure",
        ran_on != here,
        "the runtime's own thread",
        "a thread of the blocking pool",
        &STAGE2.hint(
            "hand the closure to tokio::task::spawn_blocking and await its JoinHandle; calling \
             it in the async fn runs it on the runtime's thread",
        ),
    );
}

fn panics_with_a_str() -> u32 {
    panic!("out of coffee")
}

fn panics_with_a_string() -> u32 {
    panic_with_string(format_args!("out of {}", "tea"))
}

#[kata_harness::test]
#[case::with_a_str(panics_with_a_str, "out of coffee")]
#[case::with_a_string(panics_with_a_string, "out of tea")]
async fn stage2_a_panic_in_the_closure_comes_back_as_an_error(
    #[case] job: fn() -> u32,
    #[case] message: &str,
) {
    let hint = STAGE2.hint(
        "await the JoinHandle and turn its JoinError into BlockingError::Panicked: the message \
         is in JoinError::into_panic()'s payload, a &'static str for panic!(\"literal\") or a \
         String for a formatted panic, so try both downcasts",
    );
    let result = without_panic("offload(a closure that panics)", offload(job), &hint).await;
    check_eq(
        "offload(a closure that panics)",
        result.clone(),
        Err(BlockingError::Panicked {
            message: message.to_owned(),
        }),
        &hint,
    );
    let text = result
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    check(
        "the error's message",
        text.contains(message),
        format_args!("{text:?}"),
        format_args!("a message that contains {message:?}"),
        &STAGE2.hint("keep BlockingError's #[error(...)] text, which prints the panic's message"),
    );
    check_eq(
        "offload(|| 1) after the panic",
        offload(|| 1).await,
        Ok(1),
        &STAGE2.hint("a panic on the blocking pool leaves the runtime working"),
    );
}

#[kata_harness::test]
#[case::offloaded_zero(Offloaded::Plain, 0)]
#[case::offloaded_a_thousand(Offloaded::Plain, 1000)]
#[case::offloaded_ten_thousand(Offloaded::Plain, 10_000)]
#[case::cancellable_zero(Offloaded::Cancellable, 0)]
#[case::cancellable_twenty_five(Offloaded::Cancellable, 25)]
#[case::cancellable_a_thousand(Offloaded::Cancellable, 1000)]
async fn stage2_the_offloaded_results_are_exact(#[case] how: Offloaded, #[case] n: u32) {
    let progress = Progress::new();
    let result = how.call(n, progress.clone()).await;
    check_eq(
        &format!("{}({n})", how.name()),
        digits_of(&result),
        Ok(Digits::of_factorial(n)),
        &STAGE2.hint(
            "run every step on the blocking pool and return the value: Factorial::run does \
             all of them, and a cancellable loop returns into_value() once step() says false",
        ),
    );
    check_eq(
        "steps counted by the Progress",
        progress.steps(),
        u64::from(n),
        &STAGE2.hint("n! is exactly n steps: make one Factorial with the caller's Progress"),
    );
    check_eq(
        "factorials still alive once it returned",
        progress.live(),
        0,
        &STAGE2.hint("the closure consumes its Factorial before it returns the value"),
    );
}

#[kata_harness::test]
#[case::offloaded(Offloaded::Plain)]
#[case::cancellable(Offloaded::Cancellable)]
async fn stage2_the_runtime_thread_stays_free_while_it_computes(#[case] how: Offloaded) {
    // Large enough that the work is many scheduler ticks of CPU time.
    const N: u32 = 6000;
    let work = cost_of(|| drop(Factorial::new(N, Progress::new()).map(Factorial::run)));
    let (result, cost) = runtime_cost(how.call(N, Progress::new())).await;
    let cost = cost.figure();
    check(
        &format!("{}({N})", how.name()),
        result.is_ok(),
        format_args!("{:?}", digits_of(&result)),
        "Ok(n!)",
        &STAGE2.hint("a valid n gives Ok(n!)"),
    );
    check(
        &format!(
            "time the runtime's thread worked during {}({N})",
            how.name()
        ),
        cost < work / 4,
        format_args!("{cost:.1?}"),
        format_args!(
            "a small part of the {work:.1?} the computation costs on one thread (under {:.1?})",
            work / 4
        ),
        &STAGE2.hint(
            "move the steps into the closure given to spawn_blocking (or offload): work done \
             in the async fn, checkpoints or not, is done on the runtime's thread",
        ),
    );
}

#[kata_harness::test]
#[case::offloaded(Offloaded::Plain)]
#[case::cancellable(Offloaded::Cancellable)]
async fn stage2_n_above_the_maximum_is_an_error_before_any_work(#[case] how: Offloaded) {
    let progress = Progress::new();
    let poll = first_poll(how.call(MAX_N + 1, progress.clone())).await;
    check_eq(
        &format!("the first poll of {}({})", how.name(), MAX_N + 1),
        poll.map(|result| result.map(|value| value.digits())),
        std::task::Poll::Ready(Err(FactorialError::TooLarge { n: MAX_N + 1 })),
        &STAGE2.hint(
            "make the Factorial (Factorial::new checks n) before spawn_blocking, and return \
             its error with `?`: an error needs no thread",
        ),
    );
    check_eq(
        "steps done",
        progress.steps(),
        0,
        &STAGE2.hint("an error comes before any step"),
    );
}

/// How the cancellable computation's future goes away.
#[derive(Debug, Clone, Copy)]
enum Cancel {
    DroppedWhileItComputes,
    ItsTaskAborted,
    DroppedBeforeTheClosureStarts,
}

// On the real clock:
//
//   factorial_cancellable(10000):  step 1, 2, ..., k  ✗ dropped: the step under way, then nothing
//   a bare spawn_blocking:         step 1, 2, ..., k  ✗ dropped: k+1, ..., 10000 all the same

#[kata_harness::test(real_time)]
#[case::dropped_while_it_computes(Cancel::DroppedWhileItComputes)]
#[case::its_task_aborted(Cancel::ItsTaskAborted)]
#[case::dropped_before_the_closure_starts(Cancel::DroppedBeforeTheClosureStarts)]
async fn stage2_dropping_the_cancellable_factorial_stops_its_loop(#[case] how: Cancel) {
    // Real time: the loop runs on a pool thread, in real time, and the paused clock stands still
    // while it does: only the real clock can wait for the loop to stop.
    let progress = Progress::new();
    let started = || progress.steps() > 0;
    let steps_so_far = || format!("{} steps done", progress.steps());
    let hint = STAGE2.hint("factorial_cancellable(MAX_N) computes on the blocking pool");
    match how {
        Cancel::DroppedWhileItComputes => {
            let mut computing = Box::pin(factorial_cancellable(MAX_N, progress.clone()));
            tokio::select! {
                result = &mut computing => fail(
                    "factorial_cancellable(MAX_N) before its first step was seen",
                    format_args!("finished with {:?}", digits_of(&result)),
                    "still computing",
                    &hint,
                ),
                () = wait_until("the first steps", started, steps_so_far, &hint) => {}
            }
            drop(computing);
        }
        Cancel::ItsTaskAborted => {
            let task = tokio::spawn(factorial_cancellable(MAX_N, progress.clone()));
            wait_until("the first steps", started, steps_so_far, &hint).await;
            task.abort();
            let _ = task.await;
        }
        Cancel::DroppedBeforeTheClosureStarts => {
            let poll = first_poll(factorial_cancellable(MAX_N, progress.clone())).await;
            check(
                "the first poll of factorial_cancellable(MAX_N)",
                poll.is_pending(),
                "Ready",
                "Pending: the work has only been handed to the blocking pool",
                &STAGE2.hint("MAX_N itself is allowed, and it takes a while"),
            );
        }
    }
    let at_drop = progress.steps();
    let hint = STAGE2.hint(
        "dropping or aborting a JoinHandle does not stop its closure: share an AtomicBool \
         with the closure, check it before every step, and set it from a guard that lives in \
         the async fn (its Drop runs when the future is dropped, whatever the reason)",
    );
    wait_until(
        "the end of factorial_cancellable's loop after its future was dropped",
        || progress.live() == 0,
        || format!("{} steps done since the drop", progress.steps() - at_drop),
        &hint,
    )
    .await;
    check(
        &format!(
            "steps done after factorial_cancellable(MAX_N)'s future was dropped at step {at_drop}"
        ),
        progress.steps() - at_drop <= 2,
        format_args!(
            "{} more, up to step {}",
            progress.steps() - at_drop,
            progress.steps()
        ),
        "at most the step under way when it was dropped",
        &hint,
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 3: BlockingPool::new(limit), then pool.run(job): at most `limit` jobs on the blocking
// pool at once, the others queued in call order; a slot is taken before the job is handed to
// spawn_blocking and given back only when the job ends.
//
//   pool of 2, jobs a to e:   a ▓▓▓▓▓▓         c ▓▓▓▓▓▓▓▓        e ▓▓▓▓
//                             b ▓▓▓▓▓▓▓▓▓▓  d ▓▓▓▓▓▓▓▓▓
//                             never 3 at once; each queued job starts as a slot frees

#[kata_harness::test]
async fn stage3_a_pool_needs_at_least_one_slot() {
    check_eq(
        "BlockingPool::new(0)",
        BlockingPool::new(0).err(),
        Some(PoolError::ZeroLimit),
        &STAGE3.hint("a pool of 0 slots would run nothing: return Err(PoolError::ZeroLimit)"),
    );
    check_eq(
        "BlockingPool::new(usize::MAX)",
        BlockingPool::new(usize::MAX).err(),
        Some(PoolError::TooLarge { limit: usize::MAX }),
        &STAGE3.hint(
            "tokio's Semaphore::new panics above Semaphore::MAX_PERMITS: return \
             Err(PoolError::TooLarge) instead",
        ),
    );
    let largest = BlockingPool::new(Semaphore::MAX_PERMITS).map(|pool| pool.limit());
    check_eq(
        "BlockingPool::new(Semaphore::MAX_PERMITS)'s limit",
        largest,
        Ok(Semaphore::MAX_PERMITS),
        &STAGE3.hint("every limit from 1 to Semaphore::MAX_PERMITS is valid"),
    );
    let pool = pool(3, &STAGE3.hint("BlockingPool::new(3) is a valid pool"));
    check_eq(
        "BlockingPool::new(3).limit()",
        pool.limit(),
        3,
        &STAGE3.hint("limit() is the number the pool was made with"),
    );
}

#[kata_harness::test]
async fn stage3_results_and_panics_come_back_and_a_panic_frees_its_slot() {
    let pool = pool(1, &STAGE3.hint("BlockingPool::new(1) is a valid pool"));
    let jobs = Jobs::new();
    let stuck = STAGE3.hint("with a free slot, run starts the job at once");
    let first =
        completes_within("pool.run(job 7)", pool.run(jobs.quick(7)), PATIENCE, &stuck).await;
    check_eq(
        "pool.run(job 7)",
        first,
        Ok(7),
        &STAGE3.hint("return what the job returned"),
    );
    check(
        "the thread that ran the job",
        !jobs.ran_on_runtime_thread(),
        "the runtime's own thread",
        "a thread of the blocking pool",
        &STAGE3.hint("hand the job to spawn_blocking (or offload) once it has its slot"),
    );
    let hint =
        STAGE3.hint("a panicking job comes back as Err(BlockingError::Panicked), as with offload");
    let panicked = without_panic(
        "pool.run(a job that panics)",
        completes_within(
            "pool.run(a job that panics)",
            pool.run(|| -> usize { panic!("the job broke") }),
            PATIENCE,
            &stuck,
        ),
        &hint,
    )
    .await;
    check_eq(
        "pool.run(a job that panics)",
        panicked,
        Err(BlockingError::Panicked {
            message: "the job broke".to_owned(),
        }),
        &hint,
    );
    let after = completes_within(
        "pool.run(job 8) after a job panicked, in a pool of 1",
        pool.run(jobs.quick(8)),
        PATIENCE,
        &STAGE3.hint(
            "the panicking job's slot must come back: keep the permit in a variable that is \
             dropped when the job ends, by a panic too, rather than giving it back by hand after \
             the job",
        ),
    )
    .await;
    check_eq("pool.run(job 8)", after, Ok(8), &stuck);
}

/// How a caller stops waiting for its job.
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// The `run` future is dropped.
    Dropped,
    /// The task that awaits `run` is aborted.
    Aborted,
}

/// Starts `pool.run(job)` and lets it get as far as it can, then makes its caller leave as `how`
/// says.
async fn run_then_leave<F>(pool: &BlockingPool, job: F, how: Leave)
where
    F: FnOnce() -> usize + Send + 'static,
{
    match how {
        Leave::Dropped => {
            let _ = first_poll(pool.run(job)).await;
        }
        Leave::Aborted => {
            let pool = pool.clone();
            let caller = tokio::spawn(async move { pool.run(job).await });
            settle().await;
            caller.abort();
            let _ = caller.await;
        }
    }
}

//   pool of 1:   job 0 ▓▓▓▓▓▓▓▓▓▓▓▓▓ (released)
//                job 1    queued ✗ caller left: never runs
//                job 2          queued ........ ▓ runs when job 0 ends

#[kata_harness::test]
#[case::its_future_dropped(Leave::Dropped)]
#[case::its_task_aborted(Leave::Aborted)]
async fn stage3_a_queued_job_whose_caller_left_never_runs(#[case] how: Leave) {
    let pool = pool(1, &STAGE3.hint("BlockingPool::new(1) is a valid pool"));
    let jobs = Jobs::new();
    let first = tokio::spawn({
        let (pool, job) = (pool.clone(), jobs.gated(0));
        async move { pool.run(job).await }
    });
    settle().await;
    run_then_leave(&pool, jobs.quick(1), how).await;
    let third = tokio::spawn({
        let (pool, job) = (pool.clone(), jobs.quick(2));
        async move { pool.run(job).await }
    });
    settle().await;
    jobs.release(1);
    let hint = STAGE3.hint("each job starts once the job before it has ended");
    let results = completes_within(
        "the jobs queued behind job 0, once it was let go",
        async { (first.await, third.await) },
        PATIENCE,
        &hint,
    )
    .await;
    check_eq(
        "results of jobs 0 and 2",
        (results.0.ok(), results.1.ok()),
        (Some(Ok(0)), Some(Ok(2))),
        &hint,
    );
    check_seq(
        "the jobs that started, in order",
        &jobs.started(),
        &[0, 2],
        &STAGE3.hint(
            "wait for the slot in the async fn, and hand the job to spawn_blocking only once \
             the slot is yours: a job queued on a pool thread (or in a task of its own) runs \
             even after its caller left",
        ),
    );
}

//   pool of 1:   job 0 ▓▓▓▓▓▓ ... (the test lets each job go in turn)
//                jobs 1, 2, 3 queued in call order; each starts the instant the one before ends

#[kata_harness::test]
async fn stage3_queued_jobs_start_in_call_order_as_soon_as_the_slot_is_free() {
    let start = Instant::now();
    let pool = pool(1, &STAGE3.hint("BlockingPool::new(1) is a valid pool"));
    let jobs = Jobs::new();
    let mut callers = Vec::new();
    for id in 0..4 {
        let (pool, job) = (pool.clone(), jobs.gated(id));
        callers.push(tokio::spawn(async move { pool.run(job).await }));
        settle().await;
    }
    jobs.release(4);
    let hint = STAGE3.hint("each job starts once the job before it has ended");
    let results = completes_within(
        "four jobs through a pool of 1",
        futures::future::join_all(callers),
        PATIENCE,
        &hint,
    )
    .await;
    check_eq(
        "results of jobs 0 to 3",
        results.into_iter().map(Result::ok).collect::<Vec<_>>(),
        (0..4).map(|id| Some(Ok(id))).collect(),
        &hint,
    );
    check_seq(
        "the jobs that started, in order",
        &jobs.started(),
        &[0, 1, 2, 3],
        &STAGE3.hint(
            "first come, first served: tokio's Semaphore queues the tasks that wait for a permit \
             in the order they asked",
        ),
    );
    assert_elapsed(
        "four jobs through a pool of 1 (virtual time)",
        start.elapsed(),
        Duration::ZERO,
        &STAGE3.hint(
            "a queued job must start the moment a slot is free, woken by the slot's release \
             (Semaphore::acquire_owned().await), not by a timer that checks again later",
        ),
    );
}

/// Real time the pool gets to start a job it should not start, before the test looks.
const GRACE: Duration = ms(30);

#[kata_harness::test(real_time, watchdog_secs = 10)]
#[case::eight_jobs_two_slots(8, 2)]
#[case::three_jobs_one_slot(3, 1)]
#[case::two_jobs_four_slots(2, 4)]
async fn stage3_never_more_jobs_at_once_than_the_limit_and_the_limit_is_reached(
    #[case] count: usize,
    #[case] limit: usize,
) {
    // Real time: a job that should not start is only seen not to start by giving it real time to
    // start (the pool's threads are real), and the paused clock stands still while pool jobs run.
    let pool = pool(limit, &STAGE3.hint("a pool of 1 slot or more is valid"));
    let jobs = Jobs::new();
    let callers: Vec<_> = (0..count)
        .map(|id| {
            let (pool, job) = (pool.clone(), jobs.gated(id));
            tokio::spawn(async move { pool.run(job).await })
        })
        .collect();
    let what = format!("{count} jobs through a pool of {limit}");
    for ended in 0..count {
        let due = limit.min(count - ended);
        wait_until(
            &format!("{what}: {due} running once {ended} ended"),
            || jobs.running() >= due,
            || jobs.describe(),
            &STAGE3.hint(
                "a pool of `limit` slots runs `limit` jobs at once while enough wait: one lock \
                 or one slot for all of them runs them one by one",
            ),
        )
        .await;
        tokio::time::sleep(GRACE).await;
        jobs.probe().assert_never_above(
            &what,
            limit,
            &STAGE3.hint(
                "take a slot (a permit of a Semaphore of `limit` permits) before spawn_blocking, \
                 and keep it until the job ends: move the permit into the closure",
            ),
        );
        jobs.release(1);
        wait_until(
            &format!("{what}: job number {} ending once let go", ended + 1),
            || jobs.ended() > ended,
            || jobs.describe(),
            &STAGE3.hint("a job that was let go ends at once"),
        )
        .await;
    }
    let results = completes_within(
        &what,
        futures::future::join_all(callers),
        PATIENCE,
        &STAGE3.hint("every job ends once let go, and its caller gets its result"),
    )
    .await;
    check_eq(
        &format!("results of {what}"),
        results.into_iter().map(Result::ok).collect::<Vec<_>>(),
        (0..count).map(|id| Some(Ok(id))).collect(),
        &STAGE3.hint("each caller gets its own job's result"),
    );
    jobs.probe().assert_limit(
        &what,
        limit.min(count),
        &STAGE3.hint("the pool runs as many jobs at once as it has slots"),
    );
}

//   pool of 1:   job 0 ▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓ (released)
//                caller 0 ──── ✗ left            the job runs on, and keeps the slot
//                job 1    queued .................. ▓ starts only when job 0 has ended

#[kata_harness::test(real_time)]
#[case::its_future_dropped(Leave::Dropped)]
#[case::its_task_aborted(Leave::Aborted)]
async fn stage3_a_running_job_keeps_its_slot_after_its_caller_left(#[case] how: Leave) {
    // Real time: job 1 must *not* start while job 0 runs on, which only real time can show (the
    // pool's threads are real, and the paused clock stands still while pool jobs run).
    let pool = pool(1, &STAGE3.hint("BlockingPool::new(1) is a valid pool"));
    let jobs = Jobs::new();
    let hint = STAGE3.hint("with a free slot, run starts the job at once");
    match how {
        Leave::Dropped => {
            let mut caller = Box::pin(pool.run(jobs.gated(0)));
            tokio::select! {
                result = &mut caller => fail(
                    "job 0 before the test let it go",
                    format_args!("it ended with {result:?}"),
                    "still running",
                    &hint,
                ),
                () = wait_until("job 0 started", || jobs.running() == 1, || jobs.describe(), &hint) => {}
            }
            let second = tokio::spawn({
                let (pool, job) = (pool.clone(), jobs.gated(1));
                async move { pool.run(job).await }
            });
            settle().await;
            drop(caller);
            finish(&jobs, second).await;
        }
        Leave::Aborted => {
            let caller = tokio::spawn({
                let (pool, job) = (pool.clone(), jobs.gated(0));
                async move { pool.run(job).await }
            });
            wait_until(
                "job 0 started",
                || jobs.running() == 1,
                || jobs.describe(),
                &hint,
            )
            .await;
            let second = tokio::spawn({
                let (pool, job) = (pool.clone(), jobs.gated(1));
                async move { pool.run(job).await }
            });
            settle().await;
            caller.abort();
            let _ = caller.await;
            finish(&jobs, second).await;
        }
    }
}

/// The end of [`stage3_a_running_job_keeps_its_slot_after_its_caller_left`]: job 0's caller has
/// left; job 1 must wait until job 0 ends.
async fn finish(jobs: &Jobs, second: tokio::task::JoinHandle<Result<usize, BlockingError>>) {
    tokio::time::sleep(GRACE).await;
    let hint = STAGE3.hint(
        "the slot is free when the job ends, not when its caller stops waiting: move the \
         permit into the closure given to spawn_blocking, so that it is dropped with the \
         closure",
    );
    check_seq(
        "events while job 0 runs on after its caller left",
        &jobs.events(),
        &[Event::Started(0)],
        &hint,
    );
    jobs.release(2);
    let result = completes_within(
        "job 1, once job 0 was let go",
        second,
        PATIENCE,
        &STAGE3.hint("job 1 starts as soon as job 0 ends"),
    )
    .await;
    check_eq(
        "job 1's result",
        result.ok(),
        Some(Ok(1)),
        &STAGE3.hint("job 1 runs once job 0 ended"),
    );
    check_seq(
        "events",
        &jobs.events(),
        &[
            Event::Started(0),
            Event::Ended(0),
            Event::Started(1),
            Event::Ended(1),
        ],
        &hint,
    );
}
