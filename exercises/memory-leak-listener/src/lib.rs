//! # Memory-leak listener
//!
//! A server keeps one long-lived [`EventEmitter`], and the provided [`leaky_handler`] leaks: every
//! request leaves a listener on it, and the listener keeps the request's 64 KiB body alive. Find
//! the leak by measuring it, then fix it. Read `README.md` beside this file for the stages, and
//! run `just test memory-leak-listener` to see how far you are.
//!
//! Yours to write: [`measure`] (stage 1) and [`fixed_handler`] (stage 2). The events, the
//! request, [`leaky_handler`] and [`MemoryReport`] are given.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kata_emitter::EventEmitter;
use kata_heap::{RssSampler, bytes};

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

/// The handler without the leak (stage 2): the same work as [`leaky_handler`], but its listener
/// is gone, and the request's body freed, when the request ends: when its future completes, and
/// also when its future is dropped half way.
pub async fn fixed_handler(server: &EventEmitter, request: Request) -> Response {
    // Only here so the stub compiles without "never used" warnings: delete it.
    let _ = (server, request);
    todo!("fixed_handler: listen for ConfigChanged only while the request is being worked on")
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

/// Runs `requests` requests through `handler` on `server`, one after another, after a warm-up,
/// and reports how memory grew: live heap (`kata_heap::HeapScope`), the
/// [`ConfigChanged`] listener count, RSS samples ([`RssSampler`]), and a verdict. The README's
/// "The measuring tools" explains `HeapScope` and `RssSampler`.
///
/// Call it as `measure(&server, leaky_handler, 1000).await`: any `async fn(&EventEmitter,
/// Request) -> Response` is a handler, and so is an `async` closure.
pub async fn measure<H>(server: &EventEmitter, handler: H, requests: u64) -> MemoryReport
where
    H: AsyncFn(&EventEmitter, Request) -> Response,
{
    // Only here so the stub compiles without "never used" warnings: delete it.
    let _ = (server, handler, requests);
    todo!("measure: warm up, then run the requests and gather the heap, listener and RSS figures")
}
