//! # Egg boiler
//!
//! Async iterators and generators as `Stream`s: an egg boiler and four ways to boil its eggs
//! (stage 1), a download generator (stage 2), and the egg boiler again, by hand, with
//! `poll_next` (stage 3). Read `README.md` beside this file for the stages, and run
//! `just test egg-boiler` to see how far you are.
//!
//! The types are given; the bodies with `todo!()` are yours.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, FusedStream, Stream};

// ---------------------------------------------------------------------------------------------
// Stage 1: the egg boiler, and four ways to boil its eggs.

/// How many eggs the pots of [`two_pots_in_laid_order`] and [`two_pots_as_ready`] boil at once.
pub const POTS: usize = 2;

/// An egg that has boiled: which one it was, numbered from 1 in the order it was laid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boiled {
    /// 1 for the first egg the boiler handed out, 2 for the second, ...
    pub egg: usize,
}

/// Boils egg number `egg` for `boil_time`, counted from the first time it is polled.
pub async fn boil(egg: usize, boil_time: Duration) -> Boiled {
    let _ = (egg, boil_time);
    todo!("boil: sleep for the boil time, then say which egg is done")
}

/// The egg boiler: a stream of eggs, one per boil time, each a future that boils it once
/// awaited. Pulling an egg out of the boiler boils nothing.
// `unreachable_code`: only while the `todo!()` is here.
#[allow(unreachable_code)]
pub fn egg_boiler(
    boil_times: impl IntoIterator<Item = Duration>,
) -> impl Stream<Item = impl Future<Output = Boiled>> {
    let _ = boil_times.into_iter();
    todo!("egg_boiler: a stream of egg futures, one per boil time");
    // Only here so that the stub compiles (it tells the compiler what type the function
    // returns): replace it with your stream.
    stream::empty::<std::future::Ready<Boiled>>()
}

/// Takes one egg, boils it, then takes the next: the eggs' boil times add up.
pub async fn one_by_one<S, E>(eggs: S) -> Vec<E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    let _ = eggs;
    todo!("one_by_one: await each egg before taking the next")
}

/// Takes every egg, then boils them all at once: done when the longest is, in laid order.
pub async fn all_at_once<S, E>(eggs: S) -> Vec<E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    let _ = eggs;
    todo!("all_at_once: take every egg, then await them together")
}

/// Boils the eggs in [`POTS`] pots and hands them out **in laid order**.
#[allow(unreachable_code)]
pub fn two_pots_in_laid_order<S, E>(eggs: S) -> impl Stream<Item = E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    let _ = eggs;
    todo!("two_pots_in_laid_order: two eggs boiling at once, served in laid order");
    stream::empty()
}

/// Boils the eggs in [`POTS`] pots and hands each out **as soon as it is ready**.
#[allow(unreachable_code)]
pub fn two_pots_as_ready<S, E>(eggs: S) -> impl Stream<Item = E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    let _ = eggs;
    todo!("two_pots_as_ready: two eggs boiling at once, each served when done");
    stream::empty()
}

// ---------------------------------------------------------------------------------------------
// Stage 2: a download generator.

/// What fetching one URL gives: the response, or why there was none.
pub type Fetched = Result<Response, FetchError>;

/// A response to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The URL that was fetched.
    pub url: String,
    /// The HTTP status: 200 is a success, anything else a failure.
    pub status: u16,
    /// The body of the response.
    pub body: String,
}

/// A URL that gave no response at all (a refused connection, a timeout).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not fetch {url}: {reason}")]
pub struct FetchError {
    /// The URL that was requested.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// Something that fetches URLs: an HTTP client in production, a fake web in the tests.
/// Implement it with an `async fn fetch(&self, url: &str) -> Fetched`.
///
/// It is written `fn ... -> impl Future + Send` rather than `async fn` so that every
/// implementation's future is `Send` (the README's lesson notes say why that matters).
pub trait Fetch {
    /// Requests `url` and waits for the answer.
    fn fetch(&self, url: &str) -> impl Future<Output = Fetched> + Send;
}

/// The download generator: fetches the `urls` one at a time, each only when the consumer asks
/// for the next item, and yields what each gave, errors included.
#[allow(unreachable_code)]
pub fn download<F: Fetch>(
    web: &F,
    urls: impl IntoIterator<Item = impl AsRef<str>>,
) -> impl Stream<Item = Fetched> {
    let _ = (web, urls.into_iter());
    todo!("download: a generator (stream::unfold) that fetches a URL per item asked for");
    stream::empty()
}

/// Every item of the download that is not a 200 response (responses with another status, and
/// fetch errors), in URL order.
pub async fn failures(
    web: &impl Fetch,
    urls: impl IntoIterator<Item = impl AsRef<str>>,
) -> Vec<Fetched> {
    let _ = (web, urls.into_iter());
    todo!("failures: the download, filtered")
}

/// How a download went, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Responses with status 200.
    pub ok: usize,
    /// Responses with any other status.
    pub failed: usize,
    /// URLs that gave no response.
    pub errors: usize,
}

/// Counts the download's items as they come, keeping none of them.
pub async fn tally(web: &impl Fetch, urls: impl IntoIterator<Item = impl AsRef<str>>) -> Tally {
    let _ = (web, urls.into_iter());
    todo!("tally: count the download's items as they come")
}

// ---------------------------------------------------------------------------------------------
// Stage 3: the egg boiler by hand.

/// The egg boiler written by hand: takes boil times from a hen (any stream of them, which may
/// still be laying) and hands out an egg for each, numbered from 1, that boils once awaited.
#[derive(Debug)]
pub struct EggBoiler<S> {
    hen: S,
    // Add the fields you need.
}

impl<S> EggBoiler<S> {
    /// A boiler for the boil times `hen` lays.
    pub fn new(hen: S) -> Self {
        Self { hen }
    }
}

impl<S> Stream for EggBoiler<S>
where
    S: Stream<Item = Duration> + Unpin,
{
    /// An egg: a boxed future (the README says why a box).
    type Item = BoxFuture<'static, Boiled>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let _ = (&self.hen, cx);
        todo!("EggBoiler::poll_next: ask the hen, and hand out an egg for what she lays")
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        todo!("EggBoiler::size_hint: how many eggs are still to come")
    }
}

impl<S> FusedStream for EggBoiler<S>
where
    S: Stream<Item = Duration> + Unpin,
{
    fn is_terminated(&self) -> bool {
        todo!("EggBoiler::is_terminated: has poll_next returned Ready(None)?")
    }
}
