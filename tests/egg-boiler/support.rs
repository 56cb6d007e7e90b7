//! How the egg-boiler suite watches its eggs, webs and hens.
//!
//! - A [`Kitchen`] makes eggs that mark on a timeline when they are laid (taken out of the egg
//!   stream), start boiling (first polled), finish, or are dropped, and count in a concurrency
//!   probe while they boil. It also watches the eggs of the boiler under test the same way.
//! - A [`FakeWeb`] answers each URL after a delay with a status or an error, and marks when each
//!   request started, finished or was dropped; a [`QuietWeb`] answers at once and keeps nothing,
//!   for heap measurements.
//! - Hens lay boil times for stage 3's hand-written boiler: [`laying_hen`] lays on a schedule,
//!   a [`ForgetfulHen`] starts again if she is asked after she said she was done.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use egg_boiler::{
    Boiled, Fetch, FetchError, Fetched, Response, all_at_once, one_by_one, two_pots_as_ready,
    two_pots_in_laid_order,
};
use futures::stream::{self, LocalBoxStream, Stream, StreamExt};
use kata_harness::completion::completes_within;
use kata_harness::probe::ConcurrencyProbe;
use kata_harness::report::check;
use kata_harness::timing::{At, Life, Timeline};
use kata_harness::{Hint, ms};
use tokio::time::{Instant, sleep, sleep_until};

/// Virtual time any one wait of the suite may take before it counts as stuck: far past every
/// schedule here (the longest is 14.5 s).
pub const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Eggs.

/// Makes eggs and watches eggs, on one timeline and one probe, from the instant it is made.
#[derive(Debug, Clone)]
pub struct Kitchen {
    timeline: Timeline,
    probe: ConcurrencyProbe,
}

impl Kitchen {
    pub fn new() -> Self {
        Self {
            timeline: Timeline::start(),
            probe: ConcurrencyProbe::new(),
        }
    }

    /// Virtual time since the kitchen was made.
    pub fn now(&self) -> Duration {
        self.timeline.now()
    }

    /// Counts the eggs boiling at once.
    pub fn probe(&self) -> &ConcurrencyProbe {
        &self.probe
    }

    /// Wraps egg `number` so that it marks when it starts (first poll), finishes or is dropped,
    /// and counts in the probe from its first poll until it finishes or is dropped.
    pub fn watch<F: Future>(
        &self,
        number: usize,
        egg: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        self.probe
            .track(self.timeline.watch(format!("egg {number}"), egg))
    }

    /// Egg `number`: boils for `boil_ms` from its first poll, watched.
    pub fn egg(&self, number: usize, boil_ms: u64) -> impl Future<Output = Boiled> + Send + use<> {
        self.watch(number, async move {
            sleep(ms(boil_ms)).await;
            Boiled { egg: number }
        })
    }

    /// A stream of watched eggs boiling for `boil_ms`, numbered from 1; each egg is made (and
    /// "egg N laid" marked) only when the stream is asked for it.
    pub fn eggs(
        &self,
        boil_ms: &[u64],
    ) -> impl Stream<Item = impl Future<Output = Boiled> + Send + 'static> + Send + 'static {
        let kitchen = self.clone();
        stream::iter(boil_ms.to_vec())
            .enumerate()
            .map(move |(index, boil_ms)| {
                kitchen.timeline.mark(format!("egg {} laid", index + 1));
                kitchen.egg(index + 1, boil_ms)
            })
    }

    /// When egg `number` started, finished or was dropped.
    pub fn life(&self, number: usize) -> Life {
        self.timeline.life(&format!("egg {number}"))
    }

    /// When each egg was taken out of the egg stream, in order.
    pub fn laid(&self) -> Vec<Duration> {
        self.timeline
            .events()
            .into_iter()
            .filter(|(_, label)| label.ends_with(" laid"))
            .map(|(at, _)| at)
            .collect()
    }

    /// Checks the life of egg `number` (of `boil_ms`).
    #[track_caller]
    pub fn check_life(&self, number: usize, boil_ms: u64, expected: Life, hint: &Hint) {
        let actual = self.life(number);
        check(
            &format!("egg {number} ({boil_ms} ms): when it started boiling, finished, was dropped"),
            actual == expected,
            actual,
            expected,
            hint,
        );
    }

    /// Collects what `pot` hands out, with the instant of each.
    pub async fn serve<S>(&self, what: &str, pot: S, hint: &Hint) -> Vec<Served>
    where
        S: Stream<Item = Boiled>,
    {
        let served = pot
            .map(|boiled| Served {
                egg: boiled.egg,
                at: self.now(),
            })
            .collect();
        completes_within(what, served, PATIENCE, hint).await
    }
}

/// The life of an egg that boiled from `from` ms to `to` ms.
pub fn boiled(from: u64, to: u64) -> Life {
    Life {
        started: Some(ms(from)),
        finished: Some(ms(to)),
        dropped: None,
    }
}

/// The life of an egg that started boiling at `from` ms and was dropped, unfinished, at `at` ms.
pub fn dropped(from: u64, at: u64) -> Life {
    Life {
        started: Some(ms(from)),
        finished: None,
        dropped: Some(ms(at)),
    }
}

/// The life of an egg that was never taken out of the boiler.
pub fn never_laid() -> Life {
    Life::default()
}

/// An egg handed out by a pot, and when: shown as `egg 2 at 2000ms`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub egg: usize,
    pub at: Duration,
}

impl fmt::Debug for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "egg {} at {:?}", self.egg, At(self.at))
    }
}

/// What a pot should serve, from `(egg, ms)` pairs.
pub fn served(pairs: &[(usize, u64)]) -> Vec<Served> {
    pairs
        .iter()
        .map(|&(egg, at)| Served { egg, at: ms(at) })
        .collect()
}

/// Boiled eggs `numbers`, in that order.
pub fn eggs_numbered(numbers: &[usize]) -> Vec<Boiled> {
    numbers.iter().map(|&egg| Boiled { egg }).collect()
}

/// The four ways of stage 1 to boil what an egg stream hands out.
#[derive(Debug, Clone, Copy)]
pub enum Way {
    OneByOne,
    AllAtOnce,
    TwoPotsInLaidOrder,
    TwoPotsAsReady,
}

impl Way {
    /// The call, as a report names it.
    pub fn call(self) -> &'static str {
        match self {
            Way::OneByOne => "one_by_one(eggs)",
            Way::AllAtOnce => "all_at_once(eggs)",
            Way::TwoPotsInLaidOrder => "two_pots_in_laid_order(eggs), collected",
            Way::TwoPotsAsReady => "two_pots_as_ready(eggs), collected",
        }
    }

    /// Boils the kitchen's eggs of `boil_ms` this way. (The eggs are made here, with a type the
    /// stage 1 functions accept whatever bounds they ask of it.)
    pub async fn boil(self, kitchen: &Kitchen, boil_ms: &[u64]) -> Vec<Boiled> {
        let eggs = kitchen.eggs(boil_ms);
        match self {
            Way::OneByOne => one_by_one(eggs).await,
            Way::AllAtOnce => all_at_once(eggs).await,
            Way::TwoPotsInLaidOrder => two_pots_in_laid_order(eggs).collect().await,
            Way::TwoPotsAsReady => two_pots_as_ready(eggs).collect().await,
        }
    }
}

/// The two pots of stage 1, as streams to poll later.
#[derive(Debug, Clone, Copy)]
pub enum Pots {
    InLaidOrder,
    AsReady,
}

impl Pots {
    /// The call, as a report names it.
    pub fn call(self) -> &'static str {
        match self {
            Pots::InLaidOrder => "two_pots_in_laid_order(eggs)",
            Pots::AsReady => "two_pots_as_ready(eggs)",
        }
    }

    /// The pots' stream over the kitchen's eggs of `boil_ms`, made now, polled by the caller.
    pub fn make(self, kitchen: &Kitchen, boil_ms: &[u64]) -> LocalBoxStream<'static, Boiled> {
        let eggs = kitchen.eggs(boil_ms);
        match self {
            Pots::InLaidOrder => two_pots_in_laid_order(eggs).boxed_local(),
            Pots::AsReady => two_pots_as_ready(eggs).boxed_local(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Webs.

/// What a URL of a [`FakeWeb`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A response with this status.
    Status(u16),
    /// No response: the fetch fails.
    Unreachable,
}

#[derive(Debug, Clone, Copy)]
struct Route {
    delay: Duration,
    answer: Answer,
}

/// How long a [`FakeWeb`] takes to answer a URL it has no route for.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(1000);

/// A web whose URLs answer after a delay: 200 after [`DEFAULT_DELAY`], unless a route says
/// otherwise. Every request is marked on a timeline ("GET url started/finished/dropped").
#[derive(Debug, Clone)]
pub struct FakeWeb {
    timeline: Timeline,
    routes: HashMap<String, Route>,
}

impl FakeWeb {
    pub fn new() -> Self {
        Self {
            timeline: Timeline::start(),
            routes: HashMap::new(),
        }
    }

    /// `url` answers `answer` after `delay_ms`.
    pub fn route(mut self, url: &str, delay_ms: u64, answer: Answer) -> Self {
        let route = Route {
            delay: ms(delay_ms),
            answer,
        };
        self.routes.insert(url.to_owned(), route);
        self
    }

    /// Virtual time since the web was made.
    pub fn now(&self) -> Duration {
        self.timeline.now()
    }

    /// Every request so far: `(when it started, url)`, in order.
    pub fn requests(&self) -> Vec<(Duration, String)> {
        self.timeline
            .events()
            .into_iter()
            .filter_map(|(at, label)| {
                let url = label.strip_prefix("GET ")?.strip_suffix(" started")?;
                Some((at, url.to_owned()))
            })
            .collect()
    }

    /// The URLs requested so far, in order.
    pub fn requested(&self) -> Vec<String> {
        self.requests().into_iter().map(|(_, url)| url).collect()
    }

    /// When each request started, in order.
    pub fn request_times(&self) -> Vec<Duration> {
        self.requests().into_iter().map(|(at, _)| at).collect()
    }

    /// When the request for `url` started, finished or was dropped.
    pub fn life(&self, url: &str) -> Life {
        self.timeline.life(&format!("GET {url}"))
    }
}

impl Fetch for FakeWeb {
    async fn fetch(&self, url: &str) -> Fetched {
        let route = self.routes.get(url).copied().unwrap_or(Route {
            delay: DEFAULT_DELAY,
            answer: Answer::Status(200),
        });
        let label = format!("GET {url}");
        let url = url.to_owned();
        let request = async move {
            sleep(route.delay).await;
            match route.answer {
                Answer::Status(status) => response(&url, status),
                Answer::Unreachable => unreachable(&url),
            }
        };
        self.timeline.watch(label, request).await
    }
}

/// The response a web of this file gives for `url` with `status`.
pub fn response(url: &str, status: u16) -> Fetched {
    Ok(Response {
        url: url.to_owned(),
        status,
        body: format!("content of {url}"),
    })
}

/// The error a web of this file gives for a URL that does not answer.
pub fn unreachable(url: &str) -> Fetched {
    Err(FetchError {
        url: url.to_owned(),
        reason: "connection refused".to_owned(),
    })
}

/// `n` URLs, made one at a time as they are asked for: `https://farm.example/eggs/0`, ...
pub fn farm_urls(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|number| format!("https://farm.example/eggs/{number}"))
}

/// A web that answers every URL of [`farm_urls`] at once, by its number: 404 when it ends in 3,
/// 301 when it ends in 5, unreachable when it ends in 7, 200 otherwise. It records nothing but a count, so it adds
/// nothing to a heap measurement but the responses themselves.
#[derive(Debug, Default)]
pub struct QuietWeb {
    requests: AtomicUsize,
}

impl QuietWeb {
    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Fetch for QuietWeb {
    async fn fetch(&self, url: &str) -> Fetched {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let number: usize = url
            .rsplit('/')
            .next()
            .and_then(|last| last.parse().ok())
            .unwrap_or(0);
        match number % 10 {
            3 => response(url, 404),
            5 => response(url, 301),
            7 => unreachable(url),
            _ => response(url, 200),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hens, for stage 3.

/// A hen that lays one boil time at each `(instant ms, boil ms)` of `lays`, then is done. She is
/// `Unpin` (boxed), as the boiler asks, and does not know how many eggs are to come.
pub fn laying_hen(lays: &[(u64, u64)]) -> Pin<Box<dyn Stream<Item = Duration> + Send>> {
    let origin = Instant::now();
    Box::pin(stream::unfold(
        Vec::from(lays).into_iter(),
        move |mut lays| async move {
            let (at, boil_ms) = lays.next()?;
            sleep_until(origin + ms(at)).await;
            Some((ms(boil_ms), lays))
        },
    ))
}

/// A hen that lays her boil times at once, says she is done, and, if she is asked again after
/// that, forgets it and lays them all again (a stream polled after its end may do anything; this
/// one does something a test can see). She knows exactly how many eggs are to come.
#[derive(Debug)]
pub struct ForgetfulHen {
    boil_times: Vec<Duration>,
    next: usize,
    done: bool,
    asked_after_done: Arc<AtomicUsize>,
}

impl ForgetfulHen {
    pub fn new(boil_ms: &[u64]) -> Self {
        Self {
            boil_times: boil_ms.iter().map(|&boil| ms(boil)).collect(),
            next: 0,
            done: false,
            asked_after_done: Arc::default(),
        }
    }

    /// How often she was asked for an egg after she said she was done.
    pub fn asked_after_done(&self) -> Arc<AtomicUsize> {
        self.asked_after_done.clone()
    }
}

impl Stream for ForgetfulHen {
    type Item = Duration;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Duration>> {
        if self.done {
            self.asked_after_done.fetch_add(1, Ordering::SeqCst);
            self.done = false;
            self.next = 0;
        }
        match self.boil_times.get(self.next).copied() {
            Some(boil_time) => {
                self.next += 1;
                Poll::Ready(Some(boil_time))
            }
            None => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Once done she would lay them all again.
        let left = if self.done {
            self.boil_times.len()
        } else {
            self.boil_times.len() - self.next
        };
        (left, Some(left))
    }
}
