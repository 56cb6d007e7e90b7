//! # Memory-leak listener: reference solution
//!
//! A server keeps one long-lived [`EventEmitter`]. While a request is being worked on, its
//! handler listens for [`ConfigChanged`] so that it can re-check its body against a new size
//! limit, and the listener's closure owns the request's 64 KiB body to do that.
//! [`leaky_handler`] never unsubscribes (`.detach()`), so every request leaves its listener *and
//! its body* behind for the server's whole life: Node's classic listener leak, written in Rust.
//!
//! - Stage 1, [`measure`]: run many requests through a handler and decide, from figures the
//!   function gathers itself, whether memory grows with requests.
//! - Stage 2, [`fixed_handler`]: the same handler, with the listener gone when the request ends.
//!
//! ## Which figures decide
//! [`measure`] gathers three: the live heap (`kata_heap`'s allocation counters, through
//! [`HeapScope`]), the server's listener count, and the process's resident memory (RSS, through
//! [`RssSampler`]). Only the first two decide the verdict. They are exact: on a current-thread
//! runtime every allocation a request makes is counted in this thread's account and nowhere
//! else, and a listener count is a number, not an estimate.
//! RSS is what `top` shows and what a memory profiler plots, but it belongs to the whole process
//! (tests running in parallel on other threads move it), the allocator keeps freed pages instead
//! of returning them, and the OS only counts a page once it has been written. It is supporting
//! evidence, trustworthy as a steady slope over many requests, never as a verdict on its own.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kata_emitter::EventEmitter;
use kata_heap::{HeapScope, RssSampler, bytes};

/// The size of a request's body: large enough that keeping it shows.
pub const BUFFER_SIZE: usize = 64 * 1024;

/// How long a handler works on a request (a timer: free on the paused clock).
pub const WORK: Duration = Duration::from_millis(10);

/// Emitted by the server when its configuration changes, for example the body size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigChanged {
    /// The largest body the server now accepts, in bytes.
    pub max_body_bytes: usize,
}

/// One request: an id and its body.
///
/// The body is an `Arc` so that whoever makes the request can keep a
/// [`Weak`](std::sync::Weak) to it (or a harness `DropProbe`) and see when it is freed.
#[derive(Clone)]
pub struct Request {
    /// The request's number.
    pub id: u64,
    /// The request's body.
    pub buffer: Arc<Vec<u8>>,
}

impl Request {
    /// A request with a body of [`BUFFER_SIZE`] bytes.
    pub fn new(id: u64) -> Self {
        // Filled, not zeroed: zeroed memory fresh from the OS is not resident until something
        // writes to it, so a leak of zeroed buffers would hardly show in RSS.
        Self {
            id,
            buffer: Arc::new(vec![b'x'; BUFFER_SIZE]),
        }
    }
}

impl fmt::Debug for Request {
    // Not derived: a derived Debug would print all 65,536 bytes of the body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("buffer", &format_args!("{} bytes", self.buffer.len()))
            .finish()
    }
}

/// A handler's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// False when a [`ConfigChanged`] during the request lowered the limit below its body size.
    pub accepted: bool,
}

/// The provided handler, with the leak: its listener is never removed.
///
/// `.detach()` is Node's `emitter.on(...)` without a matching `off`: the emitter keeps the
/// listener for its whole life, and the listener keeps everything its closure captured. Here
/// that is the request's body, so every request leaves [`BUFFER_SIZE`] bytes behind.
pub async fn leaky_handler(server: &EventEmitter, request: Request) -> Response {
    let rejected = Arc::new(AtomicBool::new(false));
    let (buffer, flag) = (request.buffer, Arc::clone(&rejected));
    // Re-check the body if the limit changes while we work on it.
    server
        .on(move |change: &ConfigChanged| {
            if buffer.len() > change.max_body_bytes {
                flag.store(true, Ordering::Relaxed);
            }
        })
        .detach();
    tokio::time::sleep(WORK).await;
    Response {
        id: request.id,
        accepted: !rejected.load(Ordering::Relaxed),
    }
}

/// The handler without the leak (stage 2): it listens while it works, and only then.
///
/// ```
/// # use kata_emitter::EventEmitter;
/// # use memory_leak_listener::{ConfigChanged, Request, WORK, fixed_handler};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = EventEmitter::new();
/// let (response, ()) = tokio::join!(fixed_handler(&server, Request::new(1)), async {
///     tokio::time::sleep(WORK / 2).await;
///     // Half way through the request, its one listener hears the new limit.
///     assert_eq!(server.emit(ConfigChanged { max_body_bytes: 1024 }), 1);
/// });
/// assert!(!response.accepted); // a 64 KiB body is over 1 KiB
/// assert_eq!(server.listener_count::<ConfigChanged>(), 0); // gone with the request
/// # }
/// ```
///
/// The [`Subscription`](kata_emitter::Subscription) guard lives in `_subscription` until the
/// function returns. Dropping it removes the listener from the emitter; the listener was the
/// last owner of its closure, the closure the last owner of its clone of the body, so the body
/// is freed too, the moment the request ends. (`let _ = server.on(..)` would be the bug: `_` is
/// not a variable, so the guard would be dropped at once and the listener would never hear a
/// change.)
///
/// The guard also covers cancellation. A caller may drop this future at its `.await` (a client
/// that hangs up, a timeout around the handler); the code after the `.await` then never runs,
/// so an explicit `server.off(id)` there would leave the listener, and the body, behind. The
/// guard is part of the future's state, and dropping the future drops it.
pub async fn fixed_handler(server: &EventEmitter, request: Request) -> Response {
    let rejected = Arc::new(AtomicBool::new(false));
    let (buffer, flag) = (request.buffer, Arc::clone(&rejected));
    let _subscription = server.on(move |change: &ConfigChanged| {
        if buffer.len() > change.max_body_bytes {
            flag.store(true, Ordering::Relaxed);
        }
    });
    tokio::time::sleep(WORK).await;
    Response {
        id: request.id,
        accepted: !rejected.load(Ordering::Relaxed),
    }
}

/// What [`measure`] found.
#[derive(Debug, Clone)]
pub struct MemoryReport {
    /// Requests measured (after the warm-up).
    pub requests: u64,
    /// Live heap bytes the measured requests left allocated: after minus before.
    pub heap_growth: isize,
    /// [`ConfigChanged`] listeners the measured requests left on the server: after minus before.
    pub listener_growth: isize,
    /// The process's RSS, sampled against the number of measured requests done.
    pub rss: RssSampler,
    /// The verdict: does memory grow with the number of requests?
    pub leaks: bool,
}

impl MemoryReport {
    /// Heap bytes left behind per request, on average.
    pub fn heap_per_request(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.heap_growth as f64 / self.requests as f64
    }
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.leaks {
            "LEAK: memory grows with every request"
        } else {
            "no leak: memory is back where it started"
        };
        writeln!(f, "{} requests after a warm-up: {verdict}", self.requests)?;
        writeln!(
            f,
            "  heap:      {} still allocated ({:.0} B per request)",
            signed_bytes(self.heap_growth as f64),
            self.heap_per_request()
        )?;
        writeln!(
            f,
            "  listeners: {:+} ConfigChanged listener(s) left behind",
            self.listener_growth
        )?;
        if self.rss.samples().is_empty() {
            write!(f, "  RSS:       not available on this platform")
        } else {
            write!(
                f,
                "  RSS:       {} over {} samples ({:.0} B per request; process-wide, supporting \
                 evidence only)",
                signed_bytes(self.rss.growth() as f64),
                self.rss.samples().len(),
                self.rss.slope()
            )
        }
    }
}

fn signed_bytes(n: f64) -> String {
    let sign = if n >= 0.0 { "+" } else { "" };
    format!("{sign}{}", bytes(n))
}

/// Requests run before measuring. The first requests on a fresh server allocate things that
/// stay for good without being a leak: the emitter's table entry and listener list for
/// [`ConfigChanged`], tokio's timer structures. Counted, they would look like growth.
const WARM_UP: u64 = 10;

/// Roughly how many RSS samples to take over the measured requests.
const RSS_SAMPLES: u64 = 50;

/// Runs `requests` requests through `handler` on `server`, one after another, after a warm-up,
/// and reports how memory grew.
///
/// The verdict is a leak when the listener count grew, or when the live heap grew by at least
/// one byte per request on average: after the warm-up a clean handler leaves exactly nothing, so
/// anything that scales with the requests is a leak, however small.
///
/// The heap counters are the calling thread's, so call this on a current-thread runtime (as the
/// tests and the demo do). Panics if `kata_heap`'s counting allocator is not the global
/// allocator (`kata_heap::install_allocator!()`; a kata suite installs it).
///
/// ```
/// # kata_heap::install_allocator!();
/// # use kata_emitter::EventEmitter;
/// # use memory_leak_listener::{fixed_handler, leaky_handler, measure};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let leaky = measure(&EventEmitter::new(), leaky_handler, 100).await;
/// assert!(leaky.leaks);
/// assert_eq!(leaky.listener_growth, 100);
/// assert!(leaky.heap_per_request() > 65_536.0); // a body and a listener per request
///
/// let fixed = measure(&EventEmitter::new(), fixed_handler, 100).await;
/// assert!(!fixed.leaks);
/// assert_eq!((fixed.heap_growth, fixed.listener_growth), (0, 0));
/// println!("{fixed}");
/// # }
/// ```
pub async fn measure<H>(server: &EventEmitter, handler: H, requests: u64) -> MemoryReport
where
    H: AsyncFn(&EventEmitter, Request) -> Response,
{
    for id in 0..WARM_UP {
        handler(server, Request::new(id)).await;
    }

    let listeners_before = server.listener_count::<ConfigChanged>();
    let mut rss = RssSampler::new();
    rss.sample(0);
    let batch = (requests / RSS_SAMPLES).max(1);
    let mut heap_growth = 0;
    let mut done = 0;
    while done < requests {
        let end = (done + batch).min(requests);
        // One heap scope per batch, and the RSS sample outside it: the sampler's own vector
        // grows as it records, and that is the measurement's memory, not the handler's.
        let scope = HeapScope::start();
        for id in done..end {
            handler(server, Request::new(WARM_UP + id)).await;
        }
        heap_growth += scope.finish().live_delta;
        done = end;
        rss.sample(done);
    }
    let listener_growth =
        server.listener_count::<ConfigChanged>() as isize - listeners_before as isize;
    // At least a byte per request on average (and, for zero requests, anything at all).
    let heap_grows = heap_growth > 0 && heap_growth >= requests as isize;

    MemoryReport {
        requests,
        heap_growth,
        listener_growth,
        rss,
        leaks: listener_growth > 0 || heap_grows,
    }
}
