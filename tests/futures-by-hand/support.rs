//! How the futures-by-hand suite drives futures by hand and races them across threads.
//!
//! - [`poll_with`] polls a future (in a `tokio_test` mock task) with a [`CountingWaker`], so a
//!   test can switch wakers between polls and count what was woken and what is still held.
//! - [`Settle`]: the four ways a promise settles, for tests that try each.
//! - [`Log`]: what the done callbacks saw, in the order they ran.
//! - [`assert_waiters_let_go`]: many waiters polled once and dropped leave nothing behind.
//! - [`look_when_woken`]: a settle on a thread outside the runtime, and what its waiter's waker
//!   sees when it is woken (a waker is code that may look at the state at once).
//! - [`job`]: stage 3's job, an `async` block watched on a timeline.
//! - [`lockstep`] runs rounds of work on OS threads that start every round together, which is
//!   what makes a lost wake-up between two threads show; [`race_promise`] and [`race_event`]
//!   use it to settle a promise, or set an event, on one thread while another starts awaiting.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_by_hand::{Event, Outcome, Promise, PromiseError, Resolver, promise};
use kata_harness::Hint;
use kata_harness::heap::{self, HeapReport, assert_live_back};
use kata_harness::report::check_eq;
use kata_harness::timing::Timeline;
use kata_harness::wakers::CountingWaker;
use tokio_test::task::Spawn;

/// Virtual time any one wait of the suite may take before it counts as stuck: far past every
/// schedule here (the longest is 400 ms).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls the future in `task` once, with `waker` in its `Context` instead of the mock task's.
pub fn poll_with<F: Future>(task: &mut Spawn<F>, waker: &CountingWaker) -> Poll<F::Output> {
    task.enter(|_, future| future.poll(&mut Context::from_waker(&waker.waker())))
}

/// A poll's result as a report shows it.
pub fn shown<T: std::fmt::Debug>(poll: &Poll<T>) -> String {
    match poll {
        Poll::Ready(output) => format!("Poll::Ready({output:?})"),
        Poll::Pending => "Poll::Pending".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Promises.

/// The promise of most tests: a number, or an error message.
pub type Answer = Promise<u32, String>;

/// The four ways a promise gets settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// `resolver.resolve(7)`
    Resolve,
    /// `resolver.reject("no answer")`
    Reject,
    /// `promise.cancel()`
    Cancel,
    /// `drop(resolver)`
    Abandon,
}

impl Settle {
    /// Settles the promise this way.
    pub fn apply(self, resolver: Resolver<u32, String>, promise: &Answer) {
        match self {
            Self::Resolve => {
                let _ = resolver.resolve(7);
            }
            Self::Reject => {
                let _ = resolver.reject("no answer".to_owned());
            }
            Self::Cancel => {
                promise.cancel();
            }
            Self::Abandon => drop(resolver),
        }
    }

    /// What every awaiter gets then.
    pub fn outcome(self) -> Outcome<u32, String> {
        match self {
            Self::Resolve => Ok(7),
            Self::Reject => Err(PromiseError::Rejected("no answer".to_owned())),
            Self::Cancel => Err(PromiseError::Cancelled),
            Self::Abandon => Err(PromiseError::Abandoned),
        }
    }

    /// The call, as a report names it.
    pub fn call(self) -> &'static str {
        match self {
            Self::Resolve => "resolver.resolve(7)",
            Self::Reject => "resolver.reject(\"no answer\")",
            Self::Cancel => "promise.cancel()",
            Self::Abandon => "drop(resolver)",
        }
    }
}

/// What happened, in order: the test's own steps and what each done callback saw.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().expect("log poisoned").push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().expect("log poisoned").clone()
    }

    /// A done callback that logs `"{name}: {outcome:?}"`, and what `result()` says meanwhile
    /// when `promise` is given.
    pub fn callback(
        &self,
        name: &str,
        promise: Option<Answer>,
    ) -> impl FnOnce(&Outcome<u32, String>) + Send + 'static + use<> {
        let (log, name) = (self.clone(), name.to_owned());
        move |outcome| match promise {
            Some(promise) => log.push(format!(
                "{name}: {outcome:?}, result() = {:?}",
                promise.result()
            )),
            None => log.push(format!("{name}: {outcome:?}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory.

/// How many waiters [`assert_waiters_let_go`] makes in each round.
const WAITERS: usize = 10_000;

/// Checks that waiters made with `make`, polled once and dropped, leave nothing behind: `WAITERS`
/// of them hold no clone of their waker once dropped, and three more rounds of as many leave the
/// heap where the first round left it (a slot table may keep its capacity, but not grow).
pub fn assert_waiters_let_go<F: Future>(what: &str, make: impl Fn() -> F, hint: &Hint) {
    let waker = CountingWaker::new();
    let (pending, _) = dropped_waiters(&make, &waker);
    check_eq(
        &format!("{what}: pending at their first poll"),
        pending,
        WAITERS,
        &hint.instead("nothing settles them, so every one is pending at its first poll"),
    );
    check_eq(
        &format!("{what}: clones of their waker still held once all {WAITERS} were dropped"),
        waker.held_elsewhere(),
        0,
        hint,
    );
    let ((), more) = heap::measure(|| {
        for _ in 0..3 {
            dropped_waiters(&make, &waker);
        }
    });
    assert_live_back(
        &format!("{what}: three more rounds of {WAITERS} polled once and dropped"),
        more,
        16 * 1024,
        hint,
    );
}

/// Makes [`WAITERS`] waiters with `make`, polls each once with clones of `waker`, and drops
/// them all; returns how many were pending and the heap figures of the round.
fn dropped_waiters<F: Future>(make: &impl Fn() -> F, waker: &CountingWaker) -> (usize, HeapReport) {
    heap::measure(|| {
        let mut waiters: Vec<Pin<Box<F>>> = (0..WAITERS).map(|_| Box::pin(make())).collect();
        let waker = waker.waker();
        let mut context = Context::from_waker(&waker);
        let pending = waiters
            .iter_mut()
            .map(|waiter| waiter.as_mut().poll(&mut context).is_pending())
            .filter(|&pending| pending)
            .count();
        drop(waiters);
        pending
    })
}

// ---------------------------------------------------------------------------------------------
// What a waker sees when it is woken.

/// How long [`look_when_woken`] waits, in real time, for the wake-up of a settle that runs on
/// a thread of its own: a settle takes microseconds.
const WOKEN_WITHIN: Duration = Duration::from_secs(2);

/// A waker that runs `look` each time it is woken, on the thread that wakes it, and sends what
/// it saw: what an executor's waker may do (some poll the task right there).
struct Looking<L> {
    look: L,
    seen: mpsc::Sender<String>,
}

impl<L: Fn() -> String + Send + Sync + 'static> Wake for Looking<L> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.seen.send((self.look)());
    }
}

/// Polls `wait` once with a waker that runs `look` when woken, then runs `settle` on an OS
/// thread outside the runtime (where a settle may well be called from), and says what happened
/// in words: `"woken, and <look()> in the wake-up"` when all went well, else what went wrong
/// (ready too soon, the settle panicked, returned without waking, or is stuck).
///
/// This blocks the test's thread for as long as the settle takes: microseconds, or
/// [`WOKEN_WITHIN`] when it is stuck (a settle that wakes while holding its lock, and a waker
/// that takes that lock again, deadlock).
pub fn look_when_woken<F: Future>(
    wait: F,
    settle: impl FnOnce() + Send + 'static,
    look: impl Fn() -> String + Send + Sync + 'static,
) -> String {
    let (seen, saw) = mpsc::channel();
    let waker = Waker::from(Arc::new(Looking { look, seen }));
    let mut wait = Box::pin(wait);
    if wait
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        return "Ready at its first poll, before anything was settled".to_owned();
    }
    drop(waker);
    let settler = std::thread::spawn(settle);
    let since = Instant::now();
    let failed = loop {
        if let Ok(seen) = saw.recv_timeout(Duration::from_millis(10)) {
            return format!("woken, and {seen} in the wake-up");
        }
        if settler.is_finished() {
            if let Ok(seen) = saw.try_recv() {
                return format!("woken, and {seen} in the wake-up");
            }
            break match settler.join() {
                Ok(()) => "not woken: the settle returned without waking it".to_owned(),
                Err(panic) => format!("not woken: the settle panicked: {}", panic_text(&*panic)),
            };
        }
        if since.elapsed() > WOKEN_WITHIN {
            break format!(
                "not woken, and the settle still not over after {WOKEN_WITHIN:?}: stuck"
            );
        }
    };
    // Dropping the waiter would lock the state, which a stuck (or panicked) settle may still
    // hold: let it go without dropping it, so that the test reports instead of hanging.
    std::mem::forget(wait);
    failed
}

/// The message of a panic payload (a `&str` or a `String`).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(not a text)".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 3's job.

/// The job of stage 3's tests: an `async` block (so `!Unpin`) that finishes with 7 after
/// `takes`, or never (`None`: it waits without ever waking its task), marked on `timeline` as
/// "job" when it starts (first poll), finishes or is dropped.
pub fn job(timeline: &Timeline, takes: Option<Duration>) -> impl Future<Output = u32> + use<> {
    let watched = timeline.watch("job", async move {
        match takes {
            Some(takes) => tokio::time::sleep(takes).await,
            None => std::future::pending().await,
        }
    });
    async move {
        watched.await;
        7
    }
}

// ---------------------------------------------------------------------------------------------
// Races between threads.

/// What [`race_promise`] or [`race_event`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raced {
    /// Rounds run.
    pub rounds: usize,
    /// `Some(round)`: the first round whose waiter returned `Pending` and was never woken,
    /// though the settle was over.
    pub lost: Option<usize>,
}

/// Up to `rounds` rounds (or 1 s) of: thread 0 polls a fresh promise's awaiter for the first
/// time while thread 1 resolves it (see [`race`]).
pub async fn race_promise(rounds: usize) -> Raced {
    race(
        rounds,
        || {
            let (resolver, promise) = promise::<u32, String>();
            (Mutex::new(Some(resolver)), promise)
        },
        |(_, promise)| promise.clone(),
        |(resolver, _)| {
            if let Some(resolver) = resolver.lock().expect("poisoned").take() {
                let _ = resolver.resolve(7);
            }
        },
    )
    .await
}

/// [`race_promise`] with an event: thread 0 polls a waiter for the first time while thread 1
/// sets the event.
pub async fn race_event(rounds: usize) -> Raced {
    race(rounds, Event::new, Event::wait, Event::set).await
}

/// One round of a race: what is raced on, and how its two threads meet.
struct Round<S> {
    subject: S,
    /// When the waiter gave its cue, in nanoseconds since the race started, plus one (0: not
    /// yet).
    cue: AtomicU64,
    /// The settle is over.
    settled: AtomicBool,
    waker: CountingWaker,
}

/// Where the waiters' first polls fell in the latest rounds, in nanoseconds: from the cue to
/// the poll, and the poll's length. The settler aims at that stretch of time.
struct Aim {
    offset: AtomicU64,
    length: AtomicU64,
}

/// Runs up to `rounds` rounds of a race on two threads, [`BURST`] rounds per [`lockstep`]
/// round (at least a quarter of them, or 4 s, on a busy machine; it stops at the first lost
/// wake-up): in each, thread 0
/// polls `wait(subject)` by hand, with a counting waker, and again each time it is woken, while
/// thread 1 calls `settle(subject)`; once the settle is over, a waiter still pending with no
/// wake-up left to come is lost (nothing will ever wake it).
///
/// A wake-up is lost only when the settle falls within the waiter's first poll, between its
/// look at the state and the storing of its waker: a window of some tens of nanoseconds. Two
/// threads that leave a barrier together still reach their work a microsecond or more apart,
/// so they meet on a cue instead: the waiter notes the instant, gives the cue, pauses
/// [`CUE_PAUSE`] and polls, and measures where its poll fell; the settler, once it sees the
/// cue, waits until an instant a little later each round, from before that poll to after it
/// (as the latest rounds measured it), so that across the rounds its settle falls at every
/// point of the poll. Neither thread ever sleeps: a thread the OS has to wake up comes back
/// microseconds (on a busy machine, milliseconds) later, and the rounds would not overlap.
async fn race<S, F>(
    rounds: usize,
    make: impl Fn() -> S,
    wait: impl Fn(&S) -> F + Send + Sync + 'static,
    settle: impl Fn(&S) + Send + Sync + 'static,
) -> Raced
where
    S: Send + Sync + 'static,
    F: Future,
{
    let subjects: Vec<Round<S>> = (0..rounds)
        .map(|_| Round {
            subject: make(),
            cue: AtomicU64::new(0),
            settled: AtomicBool::new(false),
            waker: CountingWaker::new(),
        })
        .collect();
    let subjects = Arc::new(subjects);
    let lost = Arc::new(Mutex::new(None));
    let (shared, found) = (Arc::clone(&subjects), Arc::clone(&lost));
    let (origin, aim) = (
        Instant::now(),
        Aim {
            offset: AtomicU64::new(CUE_PAUSE.as_nanos() as u64),
            length: AtomicU64::new(200),
        },
    );
    let since_origin = move || origin.elapsed().as_nanos() as u64;
    let (attempts, rounds) = (rounds, rounds.div_ceil(BURST));
    let until = Until {
        rounds,
        enough: rounds / 4,
        soft: Duration::from_secs(1),
        hard: Duration::from_secs(4),
    };
    let stop = {
        let lost = Arc::clone(&lost);
        move || lost.lock().expect("poisoned").is_some()
    };
    let ran = lockstep(2, until, stop, move |thread, round| {
        // A burst of rounds (here "attempts") per lockstep round: the two threads meet on each
        // attempt's cue, so all of them race while the OS lets both threads run.
        'attempts: for attempt in round * BURST..((round + 1) * BURST).min(attempts) {
            let this = &shared[attempt];
            if thread == 0 {
                let mut waiter = std::pin::pin!(wait(&this.subject));
                let waker = this.waker.waker();
                let mut context = Context::from_waker(&waker);
                let cue = since_origin();
                this.cue.store(cue + 1, Ordering::SeqCst);
                spin_until(origin + Duration::from_nanos(cue) + CUE_PAUSE);
                let polled = since_origin();
                let first = waiter.as_mut().poll(&mut context);
                let length = since_origin() - polled;
                // A poll interrupted by the OS says nothing about where polls fall.
                if length < 5_000 {
                    aim.offset.store(polled - cue, Ordering::Relaxed);
                    aim.length.store(length, Ordering::Relaxed);
                }
                if first.is_ready() {
                    continue 'attempts;
                }
                // As an executor would: poll again as soon as woken, until ready. Once the settle
                // is over, a waiter still pending with no wake-up left to come is lost.
                let (since, mut wakes) = (Instant::now(), 0);
                loop {
                    if this.waker.wakes() > wakes {
                        wakes = this.waker.wakes();
                        if waiter.as_mut().poll(&mut context).is_ready() {
                            continue 'attempts;
                        }
                    } else if this.settled.load(Ordering::SeqCst) {
                        // Every wake-up of the settle happened before `settled`: look once more.
                        if this.waker.wakes() == wakes {
                            found.lock().expect("poisoned").get_or_insert(attempt);
                            continue 'attempts;
                        }
                    } else if since.elapsed() > Duration::from_secs(1) {
                        // A settler that is not running is no lost wake-up.
                        continue 'attempts;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            } else {
                let since = Instant::now();
                let mut cue = this.cue.load(Ordering::SeqCst);
                while cue == 0 && since.elapsed() < Duration::from_millis(1) {
                    std::hint::spin_loop();
                    cue = this.cue.load(Ordering::SeqCst);
                }
                if cue > 0 {
                    // From half a poll before the poll to half a poll after it, in steps, each
                    // once per `AIM_STEPS` attempts, in an order that jumps about.
                    let (offset, length) = (
                        aim.offset.load(Ordering::Relaxed),
                        aim.length.load(Ordering::Relaxed),
                    );
                    let step = ((attempt * 7) % AIM_STEPS) as u64;
                    let at = (cue - 1 + offset + step * 2 * length / AIM_STEPS as u64)
                        .saturating_sub(length / 2);
                    spin_until(origin + Duration::from_nanos(at));
                }
                settle(&this.subject);
                this.settled.store(true, Ordering::SeqCst);
            }
        }
    })
    .await;
    let lost = *lost.lock().expect("poisoned");
    Raced {
        rounds: (ran * BURST).min(attempts),
        lost,
    }
}

/// The waiter's pause between its cue and its poll: longer than the settler takes to see the
/// cue, so that the settler can aim at the poll.
const CUE_PAUSE: Duration = Duration::from_nanos(400);
/// Rounds of a race per [`lockstep`] round. A busy machine seldom runs both threads at once,
/// and a lockstep round waits for that; once they run, a burst of rounds races in that time.
const BURST: usize = 16;
/// How many instants the settler tries, spread over twice the length of a poll.
const AIM_STEPS: usize = 128;

/// Spins until `instant`: a sleep would wake microseconds late.
fn spin_until(instant: Instant) {
    while Instant::now() < instant {
        std::hint::spin_loop();
    }
}

/// How long a [`lockstep`] run goes on: at most `rounds` rounds; once `enough` rounds have
/// run, no longer than `soft`; and never longer than `hard`, however few rounds a busy machine
/// let it run.
#[derive(Debug, Clone, Copy)]
pub struct Until {
    pub rounds: usize,
    pub enough: usize,
    pub soft: Duration,
    pub hard: Duration,
}

/// Runs rounds of `work(thread, round)` on `threads` OS threads at once, all of them starting
/// each round together (a spinning barrier: a sleeping one wakes its threads microseconds
/// apart), so the work of one round really runs in parallel. It goes on as long as `until`
/// says and `stop()` is false (asked before every round), and returns how many rounds it ran.
/// One lockstep run at a time in a process: two at once would share the cores of a small
/// machine, and neither would run its threads in parallel.
///
/// Why not `stress::on_multi_thread`: on a multi-threaded runtime, a task woken by another
/// goes to the waker's own worker thread first, so two tasks that take turns rarely run at the
/// same instant, and a race of a few nanoseconds never shows.
pub async fn lockstep<W>(
    threads: usize,
    until: Until,
    stop: impl Fn() -> bool + Send + 'static,
    work: W,
) -> usize
where
    W: Fn(usize, usize) + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let barrier = Arc::new(SpinBarrier::new(threads));
    let ran = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(Mutex::new(stop));
    let spawn = {
        let ran = ran.clone();
        move |thread: usize, started: Instant| {
            let (work, barrier, ran, stop) =
                (work.clone(), barrier.clone(), ran.clone(), stop.clone());
            std::thread::spawn(move || {
                for round in 0.. {
                    // Thread 0 said whether to go on before this barrier; nobody writes it
                    // until the next one.
                    if thread == 0 {
                        let elapsed = started.elapsed();
                        let go = round < until.rounds
                            && elapsed < until.hard
                            && (round < until.enough || elapsed < until.soft)
                            && !(stop.lock().expect("lockstep poisoned"))();
                        ran.store(if go { round + 1 } else { round }, Ordering::SeqCst);
                    }
                    barrier.wait();
                    let stop = ran.load(Ordering::SeqCst) == round;
                    // Every thread has decided, the same way; and they all start together.
                    barrier.wait();
                    if stop {
                        return;
                    }
                    work(thread, round);
                }
            })
        }
    };
    // On the blocking pool, which holds the test's paused clock still meanwhile.
    let joined = tokio::task::spawn_blocking(move || {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let handles: Vec<_> = (0..threads).map(|thread| spawn(thread, started)).collect();
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
    ran.load(Ordering::SeqCst)
}

/// A barrier whose threads spin instead of sleeping, so they leave it within a fraction of a
/// microsecond of each other. It yields only after a millisecond: on a busy machine a thread
/// that yields can lose its core for a whole time slice, and the rounds then never overlap.
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
        let since = Instant::now();
        let mut spins = 0_u32;
        while self.generation.load(Ordering::SeqCst) == generation {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) && since.elapsed() > Duration::from_millis(1) {
                // The others are not running: let them have the core.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}
