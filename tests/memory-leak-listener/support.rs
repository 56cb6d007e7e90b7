//! How the memory-leak-listener suite tests `measure`: handlers whose leaks it knows, made here so
//! that the learner's `fixed_handler` is never what stage 1 depends on, and the checks on a
//! `MemoryReport`. For stage 2: requests with bodies of other sizes, and a crowd of clients on a
//! multi-threaded runtime.

use std::hint::black_box;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, OnceLock};

use kata_emitter::EventEmitter;
use kata_harness::heap::bytes;
use kata_harness::leaks::DropProbe;
use kata_harness::report::fail;
use kata_harness::{Hint, ms, stress};
use memory_leak_listener::{
    BUFFER_SIZE, ConfigChanged, MemoryReport, Request, Response, WORK, fixed_handler, measure,
};

/// A request whose body is `len` bytes of `b'y'` instead of [`BUFFER_SIZE`] bytes.
pub fn request_with_body(id: u64, len: usize) -> Request {
    Request {
        id,
        buffer: Arc::new(vec![b'y'; len]),
    }
}

/// The request's "work", and an answer that accepts it.
async fn work(request: &Request) -> Response {
    tokio::time::sleep(WORK).await;
    Response {
        id: request.id,
        accepted: true,
    }
}

/// Subscribes nothing: nothing to leak.
pub async fn subscribes_nothing(_server: &EventEmitter, request: Request) -> Response {
    work(&request).await
}

/// Listens while it works and unsubscribes when the request ends, by dropping the guard.
pub async fn unsubscribes(server: &EventEmitter, request: Request) -> Response {
    let buffer = Arc::clone(&request.buffer);
    let _subscription = server.on(move |change: &ConfigChanged| {
        black_box(buffer.len() > change.max_body_bytes);
    });
    work(&request).await
}

/// Leaves a listener behind that captures nothing: one listener and some 70 bytes per request.
pub async fn leaks_an_empty_listener(server: &EventEmitter, request: Request) -> Response {
    server.on(|_: &ConfigChanged| {}).detach();
    work(&request).await
}

/// Handlers that leave nothing behind once warmed up: `measure` must not flag them.
#[derive(Debug, Clone, Copy)]
pub enum Clean {
    /// Subscribes nothing.
    SubscribesNothing,
    /// Listens while it works, and drops its `Subscription` when the request ends.
    Unsubscribes,
    /// Builds a 64 KiB table at its first request and keeps it for good: memory that does not
    /// grow with the requests, which only a warm-up keeps out of the figures.
    BuildsATableOnce,
    /// Works in a 256 KiB scratch buffer that it frees before answering: a high peak, nothing
    /// kept.
    UsesAScratchBuffer,
}

impl Clean {
    /// How a report names it.
    pub fn name(self) -> &'static str {
        match self {
            Clean::SubscribesNothing => "a handler that subscribes nothing",
            Clean::Unsubscribes => "a handler that unsubscribes when the request ends",
            Clean::BuildsATableOnce => {
                "a handler that builds a 64 KiB table at its first request and keeps it"
            }
            Clean::UsesAScratchBuffer => {
                "a handler that works in a 256 KiB scratch buffer and frees it"
            }
        }
    }

    /// What a wrong verdict on this handler usually means.
    pub fn why_clean(self) -> &'static str {
        match self {
            Clean::SubscribesNothing | Clean::Unsubscribes => {
                "a handler that leaves nothing behind is not a leak: after the warm-up its heap \
                 and listener figures are exactly where they started"
            }
            Clean::BuildsATableOnce => {
                "its table is built once, at the first request, and never grows again: memory \
                 kept for good is not a leak. Warm up first (run a few requests through the \
                 same handler on the same server), then measure"
            }
            Clean::UsesAScratchBuffer => {
                "it allocates 256 KiB per request and frees all of it before answering: decide \
                 on what is still allocated after the requests (live_delta), not on the \
                 highest point reached on the way (peak_delta)"
            }
        }
    }

    /// `measure(server, <this handler>, requests)`.
    pub async fn measure(self, server: &EventEmitter, requests: u64) -> MemoryReport {
        match self {
            Clean::SubscribesNothing => measure(server, subscribes_nothing, requests).await,
            Clean::Unsubscribes => measure(server, unsubscribes, requests).await,
            Clean::BuildsATableOnce => {
                let table = OnceLock::new();
                let handler = async |_server: &EventEmitter, request: Request| {
                    let table = table.get_or_init(|| vec![7_u8; BUFFER_SIZE]);
                    black_box(table[request.id as usize % BUFFER_SIZE]);
                    work(&request).await
                };
                measure(server, handler, requests).await
            }
            Clean::UsesAScratchBuffer => {
                let handler = async |_server: &EventEmitter, request: Request| {
                    let scratch = vec![request.id as u8; 4 * BUFFER_SIZE];
                    black_box(&scratch);
                    let response = work(&request).await;
                    drop(scratch);
                    response
                };
                measure(server, handler, requests).await
            }
        }
    }
}

/// Handlers that leak, each in its own way: `measure` must flag every one.
#[derive(Debug, Clone, Copy)]
pub enum Leak {
    /// Leaves a listener that captures nothing: one listener and some 70 bytes per request.
    EmptyListener,
    /// Keeps every body in a list that nobody empties: 64 KiB per request, and no listener.
    KeepsEveryBody,
    /// Leaks an 8-byte `Box` per request: no listener, 800 bytes over 100 requests (under any
    /// fixed allowance of a kilobyte), and far too little for RSS to see.
    EightBytes,
}

impl Leak {
    /// How a report names it.
    pub fn name(self) -> &'static str {
        match self {
            Leak::EmptyListener => "a handler that leaks a listener capturing nothing",
            Leak::KeepsEveryBody => "a handler that keeps every body in a list",
            Leak::EightBytes => "a handler that leaks 8 bytes per request",
        }
    }

    /// What a "no leak" verdict on this handler usually means.
    pub fn why_a_leak(self) -> &'static str {
        match self {
            Leak::EmptyListener => {
                "a listener that captures nothing is still a leak: the listener count grows by \
                 one per request. Decide on the listener count as well as on the heap, and \
                 with no allowance: one listener per request is some 70 bytes"
            }
            Leak::KeepsEveryBody => {
                "no listener is left, yet every request keeps its 64 KiB body: decide on the \
                 heap figure as well as on the listener count"
            }
            Leak::EightBytes => {
                "8 bytes a request is 800 bytes over 100 requests: a verdict with an allowance \
                 (a kilobyte, a page, so many bytes per request) misses it, and so does RSS, \
                 which moves in pages and with every other test. After the warm-up a clean \
                 handler leaves exactly 0 bytes, so growth that scales with the requests (a byte \
                 per request or more) is a leak"
            }
        }
    }

    /// The listener growth it shows over `requests` requests.
    pub fn listener_growth(self, requests: u64) -> isize {
        match self {
            Leak::EmptyListener => requests as isize,
            Leak::KeepsEveryBody | Leak::EightBytes => 0,
        }
    }

    /// The heap growth per request it shows, in bytes.
    pub fn heap_per_request(self) -> RangeInclusive<f64> {
        match self {
            Leak::EmptyListener => 16.0..=4096.0,
            Leak::KeepsEveryBody => BUFFER_SIZE as f64..=2.0 * BUFFER_SIZE as f64,
            Leak::EightBytes => 8.0..=8.0,
        }
    }

    /// `measure(server, <this handler>, requests)`.
    pub async fn measure(self, server: &EventEmitter, requests: u64) -> MemoryReport {
        match self {
            Leak::EmptyListener => measure(server, leaks_an_empty_listener, requests).await,
            Leak::KeepsEveryBody => {
                // A "cache" that nobody ever empties.
                let kept = Mutex::new(Vec::new());
                let handler = async |_server: &EventEmitter, request: Request| {
                    kept.lock().unwrap().push(Arc::clone(&request.buffer));
                    work(&request).await
                };
                measure(server, handler, requests).await
            }
            Leak::EightBytes => {
                let handler = async |_server: &EventEmitter, request: Request| {
                    // Leaked for good, on purpose: 8 bytes, the size of a u64.
                    black_box(Box::leak(Box::new(request.id)));
                    work(&request).await
                };
                measure(server, handler, requests).await
            }
        }
    }
}

/// Fails unless `report` has the expected verdict, showing the learner their own figures.
#[track_caller]
pub fn check_verdict(what: &str, report: &MemoryReport, leaks: bool, hint: &Hint) {
    if report.leaks != leaks {
        fail(
            &format!("{what}: wrong verdict"),
            format_args!("leaks: {}, from this report:\n{report}", report.leaks),
            format_args!("leaks: {leaks}"),
            hint,
        );
    }
}

/// Fails unless the report's heap growth per request is within `expected` bytes.
#[track_caller]
pub fn check_heap_per_request(
    what: &str,
    report: &MemoryReport,
    expected: RangeInclusive<f64>,
    hint: &Hint,
) {
    let per_request = report.heap_per_request();
    if !expected.contains(&per_request) {
        let wanted = if expected.start() == expected.end() {
            format!("{} per request", bytes(*expected.start()))
        } else {
            format!(
                "between {} and {} per request",
                bytes(*expected.start()),
                bytes(*expected.end())
            )
        };
        fail(
            &format!("{what}: heap growth per request"),
            format_args!(
                "{per_request:.1} B per request ({} over {} requests)",
                bytes(report.heap_growth as f64),
                report.requests
            ),
            wanted,
            hint,
        );
    }
}

/// What a crowd of clients left behind: the server, every response, a probe on every body.
pub struct Crowd {
    pub server: EventEmitter,
    pub responses: Vec<Response>,
    pub bodies: Vec<DropProbe>,
}

/// Runs `clients` clients on a runtime with `workers` threads, each sending `requests` requests
/// one after another through `fixed_handler` on one server (request ids 0, 1, ...), while a
/// task emits a `ConfigChanged` that rejects no body every millisecond (real time). A panic in a
/// client comes back as a panic here.
pub async fn crowd_on_threads(workers: usize, clients: u64, requests: u64) -> Crowd {
    stress::on_multi_thread(workers, move || async move {
        let server = EventEmitter::new();
        let crowd: Vec<_> = (0..clients)
            .map(|client| {
                let server = server.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for n in 0..requests {
                        let request = Request::new(client * requests + n);
                        let body = DropProbe::watch(&request.buffer);
                        seen.push((fixed_handler(&server, request).await, body));
                    }
                    seen
                })
            })
            .collect();
        let changes = {
            let server = server.clone();
            tokio::spawn(async move {
                loop {
                    server.emit(ConfigChanged {
                        max_body_bytes: 2 * BUFFER_SIZE,
                    });
                    tokio::time::sleep(ms(1)).await;
                }
            })
        };
        let (mut responses, mut bodies) = (Vec::new(), Vec::new());
        for client in crowd {
            let seen = client
                .await
                .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
            for (response, body) in seen {
                responses.push(response);
                bodies.push(body);
            }
        }
        changes.abort();
        Crowd {
            server,
            responses,
            bodies,
        }
    })
    .await
}
