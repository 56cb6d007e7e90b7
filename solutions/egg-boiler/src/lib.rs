//! # Egg boiler: reference solution
//!
//! Async iterators and generators, the Rust way: a [`Stream`] is an iterator whose next item
//! may not be ready yet. Three things make streams what they are, and this crate leans on each:
//!
//! - **Laziness.** A future does nothing until it is polled, and a stream computes its next item
//!   only when asked for it. [`egg_boiler`] hands out eggs that boil only once awaited;
//!   [`download`] requests a URL only when its consumer asks for the next response. That is
//!   backpressure for free: a slow consumer slows the producer down instead of letting work pile
//!   up in memory.
//! - **Dropping is cancelling.** Whatever a stream holds (eggs in a pot, a request in flight) is
//!   dropped with it, and a dropped future never runs again. Nothing here spawns a task, so
//!   nothing outlives the stream that started it.
//! - **Combinators.** [`StreamExt`] gives streams what iterators have (`map`, `filter`, `take`,
//!   `fold`, `collect`) and what only async code needs: `then` to await each item, and
//!   `buffered` / `buffer_unordered` to run several at once in one task.
//!
//! Stage 1 is the egg boiler and four ways to boil its eggs, stage 2 a download generator
//! written with `stream::unfold`, stage 3 the boiler again, by hand, with `poll_next`.
//!
//! In production code the tools are the ones used here: `futures::StreamExt` (each function of
//! stage 1 is one or two of its methods), `stream::unfold` or the `async-stream` crate's
//! `stream!` macro for generators, `tokio-stream` for streams over tokio's types. A hand-written
//! `poll_next` is for wrapping a lower-level source, or for an exact `size_hint` and
//! `FusedStream`, as in stage 3.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::future::{self, BoxFuture};
use futures::stream::{self, FusedStream, Stream, StreamExt};

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
///
/// An `async fn` runs nothing when called: `tokio::time::sleep` is created, and its deadline
/// fixed, only when the returned future is first polled. (`sleep(boil_time)` called eagerly would
/// start the clock at once: an egg pulled now and awaited later would come out under-boiled.)
///
/// ```
/// # use std::time::Duration;
/// # use egg_boiler::{Boiled, boil};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = tokio::time::Instant::now();
/// let egg = boil(1, Duration::from_secs(5));
/// tokio::time::sleep(Duration::from_secs(1)).await; // the egg is not boiling yet
/// assert_eq!(egg.await, Boiled { egg: 1 });
/// assert_eq!(start.elapsed(), Duration::from_secs(6));
/// # }
/// ```
pub async fn boil(egg: usize, boil_time: Duration) -> Boiled {
    tokio::time::sleep(boil_time).await;
    Boiled { egg }
}

/// The egg boiler: a stream of eggs, one per boil time, each a future that boils it once
/// awaited. Pulling an egg out of the boiler boils nothing.
///
/// This is asyncio's async iterator whose `__anext__` returns a coroutine; in Rust it is a
/// `map` over `stream::iter`, and the eggs are the futures of an `async fn`.
///
/// ```
/// # use std::time::Duration;
/// # use egg_boiler::{Boiled, all_at_once, egg_boiler};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = tokio::time::Instant::now();
/// let boiled = all_at_once(egg_boiler([3, 1, 2].map(Duration::from_secs))).await;
/// assert_eq!(boiled, [1, 2, 3].map(|egg| Boiled { egg }));
/// assert_eq!(start.elapsed(), Duration::from_secs(3)); // all three in one pot
/// # }
/// ```
pub fn egg_boiler(
    boil_times: impl IntoIterator<Item = Duration>,
) -> impl Stream<Item = impl Future<Output = Boiled>> {
    stream::iter(boil_times)
        .enumerate()
        .map(|(laid, boil_time)| boil(laid + 1, boil_time))
}

/// Takes one egg, boils it, then takes the next: the eggs' boil times add up, and an egg is
/// taken out of the boiler only once the one before it is done.
///
/// `then` awaits each item's future before it asks the stream for the next item; giving it the
/// egg itself (`|egg| egg`) is "await every egg, in turn".
pub async fn one_by_one<S, E>(eggs: S) -> Vec<E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    eggs.then(|egg| egg).collect().await
}

/// Takes every egg, then boils them all at once: done when the longest is, in laid order.
///
/// `join_all` polls every egg from the task that awaits it: no task is spawned, so dropping this
/// future (a timeout, say) drops every egg still boiling, at once.
pub async fn all_at_once<S, E>(eggs: S) -> Vec<E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    let eggs: Vec<E> = eggs.collect().await;
    future::join_all(eggs).await
}

/// Boils the eggs in [`POTS`] pots and hands them out **in laid order**.
///
/// `buffered` keeps up to two eggs taken, boiling or boiled, and yields them in the order it
/// took them. An egg that is done before the one laid before it waits in its pot, and no new egg
/// goes in: that is head-of-line blocking, the price of order.
pub fn two_pots_in_laid_order<S, E>(eggs: S) -> impl Stream<Item = E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    eggs.buffered(POTS)
}

/// Boils the eggs in [`POTS`] pots and hands each out **as soon as it is ready**; a pot that is
/// free takes the next egg at once.
pub fn two_pots_as_ready<S, E>(eggs: S) -> impl Stream<Item = E::Output>
where
    S: Stream<Item = E>,
    E: Future,
{
    eggs.buffer_unordered(POTS)
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
///
/// Implement it with an `async fn`:
///
/// ```
/// # use egg_boiler::{Fetch, Fetched, Response};
/// struct Echo;
///
/// impl Fetch for Echo {
///     async fn fetch(&self, url: &str) -> Fetched {
///         Ok(Response { url: url.to_owned(), status: 200, body: url.to_owned() })
///     }
/// }
/// ```
///
/// The trait spells the method out as `fn ... -> impl Future + Send` instead of `async fn`
/// because of `Send`: the future of an `async fn` declared in a trait promises nothing about
/// being `Send`, so generic code could not move a download into a spawned task of a
/// multi-threaded runtime. Written this way, every implementation's future must be `Send`, and
/// an `async fn` in the `impl` still satisfies it.
pub trait Fetch {
    /// Requests `url` and waits for the answer.
    fn fetch(&self, url: &str) -> impl Future<Output = Fetched> + Send;
}

/// The download generator: fetches the `urls` one at a time, **each only when the consumer asks
/// for the next item**, and yields what each gave, errors included: an error is an item, and the
/// stream goes on to the next URL.
///
/// `stream::unfold` is a generator: its state (here the URLs still to fetch) goes into a
/// closure that returns the future of the next item and the next state. The future is made and
/// polled only when the stream is, so nothing is fetched ahead of the consumer, and dropping the
/// stream cancels the request in flight. In asyncio this is an `async def` with `yield`; the
/// `async-stream` crate's `stream!` macro gives Rust the same syntax.
///
/// ```
/// # use egg_boiler::{Fetch, Fetched, Response, download};
/// # use futures::StreamExt;
/// # struct Echo;
/// # impl Fetch for Echo {
/// #     async fn fetch(&self, url: &str) -> Fetched {
/// #         Ok(Response { url: url.to_owned(), status: 200, body: url.to_owned() })
/// #     }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let first: Vec<Fetched> = download(&Echo, ["a.example", "b.example", "c.example"])
///     .take(2) // c.example is never requested
///     .collect()
///     .await;
/// assert_eq!(first.len(), 2);
/// # }
/// ```
pub fn download<F: Fetch>(
    web: &F,
    urls: impl IntoIterator<Item = impl AsRef<str>>,
) -> impl Stream<Item = Fetched> {
    stream::unfold(urls.into_iter(), move |mut urls| async move {
        // `?` on the Option: no URL left, the stream ends.
        let url = urls.next()?;
        let fetched = web.fetch(url.as_ref()).await;
        Some((fetched, urls))
    })
}

/// Every item of the download that is not a 200 response (responses with another status, and
/// fetch errors), in URL order: asyncio's `[r async for r in download(urls) if ...]`.
pub async fn failures(
    web: &impl Fetch,
    urls: impl IntoIterator<Item = impl AsRef<str>>,
) -> Vec<Fetched> {
    download(web, urls)
        .filter(|fetched| future::ready(!matches!(fetched, Ok(response) if response.status == 200)))
        .collect()
        .await
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

/// Counts the download's items as they come: `fold` keeps the tally and lets each response go,
/// so counting ten thousand URLs takes no more memory than counting ten.
pub async fn tally(web: &impl Fetch, urls: impl IntoIterator<Item = impl AsRef<str>>) -> Tally {
    download(web, urls)
        .fold(Tally::default(), |mut tally, fetched| async move {
            match fetched {
                Ok(response) if response.status == 200 => tally.ok += 1,
                Ok(_) => tally.failed += 1,
                Err(_) => tally.errors += 1,
            }
            tally
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Stage 3: the egg boiler by hand.

/// The egg boiler written by hand: takes boil times from a hen (any stream of them, which may
/// still be laying) and hands out an egg for each, numbered from 1, that boils once awaited.
///
/// This is what `stream::iter(..).map(..)` of stage 1 does inside, and what asyncio's
/// `__anext__` is: [`Stream::poll_next`] either has the next item (`Ready(Some)`), knows there
/// is none (`Ready(None)`), or has to wait (`Pending`, after arranging for the task to be woken).
///
/// ```
/// # use std::time::Duration;
/// # use egg_boiler::{Boiled, EggBoiler};
/// use futures::{Stream, StreamExt, stream};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let hen = stream::iter([2, 1].map(Duration::from_secs));
/// let boiler = EggBoiler::new(hen);
/// assert_eq!(boiler.size_hint(), (2, Some(2)));
/// let boiled: Vec<Boiled> = boiler.buffer_unordered(2).collect().await;
/// assert_eq!(boiled, [2, 1].map(|egg| Boiled { egg }));
/// # }
/// ```
#[derive(Debug)]
pub struct EggBoiler<S> {
    hen: S,
    laid: usize,
    ended: bool,
}

impl<S> EggBoiler<S> {
    /// A boiler for the boil times `hen` lays.
    pub fn new(hen: S) -> Self {
        Self {
            hen,
            laid: 0,
            ended: false,
        }
    }
}

impl<S> Stream for EggBoiler<S>
where
    S: Stream<Item = Duration> + Unpin,
{
    /// The future of an `async fn` has a type no one can name, and an associated type needs a
    /// name: so the egg goes in a `Box`. `Send`, so that eggs may be boiled on any thread.
    type Item = BoxFuture<'static, Boiled>;

    // `self` is pinned because some streams hold data that must not move once polled. This one
    // is `Unpin` whenever the hen is (every field is), so it may be used as a plain `&mut Self`.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // A stream polled after its end may do anything (panic, start again): the hen is not
        // asked again once she said she was done.
        if self.ended {
            return Poll::Ready(None);
        }
        // `Pin::new` pins a `&mut` in place, which is sound only for `Unpin` types: hence the
        // bound. Passing `cx` on is what gets this task woken when the hen lays; `ready!`
        // returns `Pending` from here when she is not ready yet.
        match ready!(Pin::new(&mut self.hen).poll_next(cx)) {
            Some(boil_time) => {
                self.laid += 1;
                Poll::Ready(Some(Box::pin(boil(self.laid, boil_time))))
            }
            None => {
                self.ended = true;
                Poll::Ready(None)
            }
        }
    }

    /// One egg per boil time: the hen's own hint, until she is done.
    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.ended {
            (0, Some(0))
        } else {
            self.hen.size_hint()
        }
    }
}

/// Says when polling again is pointless, so that `futures::select!` skips an ended boiler.
impl<S> FusedStream for EggBoiler<S>
where
    S: Stream<Item = Duration> + Unpin,
{
    fn is_terminated(&self) -> bool {
        self.ended
    }
}
