//! How the factorial-deadlock suite watches its limiters: the given `Limiter` with a concurrency
//! probe on every job (and, where a loop might run away, a budget of jobs), `CheckedLimiter`s for
//! stage 3, stage 1's recursion written on a `CheckedLimiter`, and the check that a checked
//! limiter is whole again after a deadlock, a cancellation, a panic or a stress run.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use factorial_deadlock::{CheckedLimiter, Deadlock, LimitError, Limiter};
use futures::FutureExt;
use futures::future::BoxFuture;
use kata_harness::completion::completes_within;
use kata_harness::probe::{ConcurrencyProbe, ProbeGuard};
use kata_harness::report::{check_eq, fail};
use kata_harness::timing::assert_elapsed;
use kata_harness::{Hint, ms};
use tokio::time::Instant;

use crate::{STAGE1, STAGE3};

/// Long enough for any run here: on the paused clock, still waiting after this means never.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `n!` the plain way, to compare with.
pub fn factorial_of(n: u32) -> u128 {
    (1..=u128::from(n)).product()
}

/// The given `Limiter` with `slots` slots; each job counts in `probe` while it holds its slot.
pub fn watched(slots: usize, probe: &ConcurrencyProbe) -> Limiter {
    let probe = probe.clone();
    given(slots, Limiter::instrumented(slots, move || probe.enter()))
}

/// [`watched`], and the test fails with `hint` as soon as the limiter starts job number
/// `budget + 1`: a loop that would run four billion jobs is stopped at once, and told why,
/// instead of keeping the watchdog waiting.
pub fn watched_with_budget(
    slots: usize,
    probe: &ConcurrencyProbe,
    budget: usize,
    hint: &Hint,
) -> Limiter {
    let (probe, hint) = (probe.clone(), hint.clone());
    let started = AtomicUsize::new(0);
    let hook = move || -> ProbeGuard {
        if started.fetch_add(1, Ordering::Relaxed) == budget {
            fail(
                &format!("jobs run through a limiter with {slots} slot(s)"),
                format_args!("job #{} was starting, and the loop went on", budget + 1),
                format_args!("at most {budget} jobs"),
                &hint,
            );
        }
        probe.enter()
    };
    given(slots, Limiter::instrumented(slots, hook))
}

fn given(slots: usize, limiter: Result<Limiter, LimitError>) -> Limiter {
    limiter.unwrap_or_else(|error| {
        fail(
            &format!("Limiter::instrumented({slots}, ..)"),
            format_args!("Err({error:?})"),
            "a limiter",
            &STAGE1.hint(
                "Limiter is given and accepts any concurrency from 1 up: put its original code \
                 back",
            ),
        )
    })
}

/// `CheckedLimiter::new(slots)`, for tests that are not about its errors.
pub fn checked(slots: usize) -> CheckedLimiter {
    CheckedLimiter::new(slots).unwrap_or_else(|error| {
        fail(
            &format!("CheckedLimiter::new({slots})"),
            format_args!("Err({error:?})"),
            "a limiter",
            &STAGE3.hint("every concurrency from 1 up is valid: only 0 is Err(LimitError::Zero)"),
        )
    })
}

/// Stage 1's naive recursion, written here on a [`CheckedLimiter`]: the job for `n` awaits the
/// job for `n - 1` while it holds its own slot, so `n!` needs `max(n, 1)` slots at once.
/// Boxed and `Send`, so that it can also run on other threads.
pub fn checked_naive(n: u32, limiter: &CheckedLimiter) -> BoxFuture<'_, Result<u128, Deadlock>> {
    async move {
        limiter
            .run(async move {
                if n <= 1 {
                    return Ok(1);
                }
                let smaller = checked_naive(n - 1, limiter).await?;
                Ok(u128::from(n) * smaller)
            })
            .await?
    }
    .boxed()
}

/// Checks that `limiter`, with `slots` slots, is whole again `after` something happened to it:
/// `slots + 1` runs of 1 s take every slot at once and the last one follows at 1 s, the naive
/// recursion one level too deep is still reported as `Deadlock { held: slots, queued: 1 }` at
/// once, and the one that fits still completes. Nothing may be running on it.
pub async fn assert_whole(limiter: &CheckedLimiter, slots: usize, after: &str) {
    let probe = ConcurrencyProbe::new();
    let start = Instant::now();
    // The sleep is made when the job starts: a `sleep` counts from when it is created.
    let job = || probe.track(async { tokio::time::sleep(ms(1000)).await });
    let runs = (0..=slots).map(|_| limiter.run(job()));
    let what = format!(
        "{} runs of 1 s on {slots} slot(s), after {after}",
        slots + 1
    );
    let lost_slot = STAGE3.hint(format!(
        "after {after}, every slot must be free again: a run cancelled while its job ran, a job \
         that panicked, or a run dropped after it was handed a slot, still holds one here. Give \
         a slot back in a Drop impl (a guard the run holds), so it comes back however the run \
         ends"
    ));
    let results =
        completes_within(&what, futures::future::join_all(runs), PATIENCE, &lost_slot).await;
    check_eq(
        &format!("the results of {what}"),
        results,
        vec![Ok(()); slots + 1],
        &STAGE3.hint(format!(
            "after {after}, the one run in line waits behind jobs that sleep, not behind jobs \
             waiting on the limiter: no deadlock. A deadlock found once is no reason to answer \
             later runs with one: look at the limiter as it is now"
        )),
    );
    probe.assert_limit(&what, slots, &lost_slot);
    assert_elapsed(&what, start.elapsed(), ms(2000), &lost_slot);

    let deeper = slots as u32 + 1;
    let what = format!("the naive recursion for {deeper}! on {slots} slot(s), after {after}");
    let start = Instant::now();
    let result = completes_within(
        &what,
        checked_naive(deeper, limiter),
        PATIENCE,
        &STAGE3.hint(format!(
            "after {after}, a real deadlock must still be found: a slot counted as held by a job \
             that is gone (not waiting on anything) hides it. Take a job out of the books when \
             its slot is given back, however the run ends"
        )),
    )
    .await;
    check_eq(
        &what,
        result,
        Err(Deadlock {
            held: slots,
            queued: 1,
        }),
        &STAGE3.hint(format!(
            "after {after}, the books must hold only what is really there: a cancelled run \
             still counted in the queue makes `queued` too large"
        )),
    );
    assert_elapsed(
        &format!("time until {what} was reported"),
        start.elapsed(),
        Duration::ZERO,
        &STAGE3.hint("no timer: report the deadlock the moment the run that completes it queues"),
    );

    let what = format!("the naive recursion for {slots}! on {slots} slot(s), after {after}");
    let result = completes_within(
        &what,
        checked_naive(slots as u32, limiter),
        PATIENCE,
        &lost_slot,
    )
    .await;
    check_eq(
        &what,
        result,
        Ok(factorial_of(slots as u32)),
        &STAGE3.hint(format!(
            "after {after}, a recursion that fits in the slots must not be reported: with \
             max(n, 1) slots nothing ever queues"
        )),
    );
}

/// Runs rounds of `work(thread, round)` on `threads` OS threads at once, each thread with a
/// current-thread runtime of its own (real clock), all of them starting each round together (a
/// spinning barrier: a sleeping one wakes its threads microseconds apart), so the work of one
/// round really runs in parallel. It stops after `rounds` rounds or `budget` of real time,
/// whichever comes first, and returns how many rounds it ran and, if one did not finish within
/// `limit` on some thread, `Some((thread, round))` (its future is dropped, and the run ends).
///
/// Why not `stress::on_multi_thread`: on a multi-threaded runtime, a task woken by another
/// (at a barrier, say) goes to the waker's own worker thread first, so two tasks that take
/// turns rarely run at the same instant, and a race of a few nanoseconds never shows.
pub async fn lockstep<W, F>(
    threads: usize,
    (rounds, budget): (usize, Duration),
    limit: Duration,
    work: W,
) -> (usize, Option<(usize, usize)>)
where
    W: Fn(usize, usize) -> F + Send + Sync + 'static,
    F: Future<Output = ()>,
{
    let work = Arc::new(work);
    let stuck = Arc::new(Mutex::new(None));
    let barrier = Arc::new(SpinBarrier::new(threads));
    let ran = Arc::new(AtomicUsize::new(0));
    let deadline = std::time::Instant::now() + budget;
    let spawn = {
        let (stuck, ran) = (stuck.clone(), ran.clone());
        move |thread: usize| {
            let (work, stuck, barrier, ran) =
                (work.clone(), stuck.clone(), barrier.clone(), ran.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for a lockstep thread");
                for round in 0.. {
                    // Thread 0 said whether to go on, and a thread that got stuck said so,
                    // before this barrier; nobody writes either until the next one.
                    if thread == 0 {
                        let go = round < rounds && std::time::Instant::now() < deadline;
                        ran.store(if go { round + 1 } else { round }, Ordering::SeqCst);
                    }
                    barrier.wait();
                    let stop = ran.load(Ordering::SeqCst) == round
                        || stuck.lock().expect("lockstep poisoned").is_some();
                    // Every thread has decided, the same way; and they all start together.
                    barrier.wait();
                    if stop {
                        return;
                    }
                    let work = async { tokio::time::timeout(limit, work(thread, round)).await };
                    if runtime.block_on(work).is_err() {
                        stuck
                            .lock()
                            .expect("lockstep poisoned")
                            .get_or_insert((thread, round));
                    }
                }
            })
        }
    };
    // On the blocking pool, which holds the test's paused clock still meanwhile.
    let joined = tokio::task::spawn_blocking(move || {
        let handles: Vec<_> = (0..threads).map(spawn).collect();
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
    })
    .await;
    if let Err(error) = joined {
        std::panic::resume_unwind(error.into_panic());
    }
    let stuck = *stuck.lock().expect("lockstep poisoned");
    (ran.load(Ordering::SeqCst), stuck)
}

/// A barrier whose threads spin (yielding now and then) instead of sleeping, so they leave it
/// within a fraction of a microsecond of each other.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        Self {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.threads {
            self.arrived.store(0, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let mut spins = 0_u32;
        while self.generation.load(Ordering::SeqCst) == generation {
            spins += 1;
            if spins.is_multiple_of(64) {
                // On a loaded machine the others may not even be running: let them.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// What [`stress`] saw.
pub struct Stressed {
    /// The limiter, to check that it is whole afterwards.
    pub limiter: CheckedLimiter,
    /// Rounds run.
    pub rounds: usize,
    /// `Some((thread, round))`: the first round a run of that thread did not finish in 1 s.
    pub stuck: Option<(usize, usize)>,
    /// The most plain jobs in flight at once.
    pub most_at_once: usize,
}

/// `threads` threads share `limiter` for up to `rounds` rounds or 1 s (see [`lockstep`]): in
/// each, every thread asks for a slot at once, for a job that computes for a moment (a little
/// longer each round, so that one thread's job ends at every point of the others' `run`); every
/// fourth round, thread 0 runs the naive recursion for 2! instead (a deadlock on 1 slot, told at
/// once).
pub async fn stress(limiter: CheckedLimiter, threads: usize, rounds: usize) -> Stressed {
    let probe = ConcurrencyProbe::new();
    let (shared, tracked) = (limiter.clone(), probe.clone());
    let budget = (rounds, Duration::from_secs(1));
    let work = move |thread: usize, round: usize| {
        let (limiter, probe) = (shared.clone(), tracked.clone());
        async move {
            if thread == 0 && round % 4 == 3 {
                let _ = checked_naive(2, &limiter).await;
            } else {
                let job = async move {
                    for _ in 0..round % 256 {
                        std::hint::spin_loop();
                    }
                };
                let _ = limiter.run(probe.track(job)).await;
            }
        }
    };
    let (rounds, stuck) = lockstep(threads, budget, Duration::from_secs(1), work).await;
    Stressed {
        limiter,
        rounds,
        stuck,
        most_at_once: probe.max(),
    }
}
