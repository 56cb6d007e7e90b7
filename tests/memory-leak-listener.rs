//! The memory-leak-listener kata's suite, run against both `exercises/memory-leak-listener` and
//! `solutions/memory-leak-listener`.
//!
//! Heap figures come from the harness's counting allocator, which counts per thread: every test
//! runs on a current-thread runtime of its own, so the figures are exact even while other tests
//! run in parallel. RSS is process-wide and moves with every test in the process, so the suite
//! checks that `measure` samples it, never what it reads.
//!
//! Stage 1 holds `measure` to handlers whose leaks the suite knows: the provided leaky handler,
//! two clean ones, a leak of small listeners and a leak without any listener; its verdict and its
//! figures must match. Stage 2 holds the fixed handler to "nothing left behind": during a request
//! its listener is there and hears changes, after it the listener and the body are gone, after a
//! thousand requests the heap and the listener count are back where they started, and the
//! emitter's leak warning never fires.

kata_harness::install_allocator!();

use std::any::type_name;
use std::sync::Mutex;

use kata_emitter::{EventEmitter, LeakWarning};
use kata_harness::heap::{HeapScope, assert_live_back, bytes};
use kata_harness::leaks::{DropProbe, RssSampler, assert_back_to_baseline};
use kata_harness::report::{check_eq, fail, list};
use memory_leak_listener::{
    BUFFER_SIZE, ConfigChanged, MemoryReport, Request, Response, WORK, fixed_handler,
    leaky_handler, measure,
};

const STAGE1: &str = "exercises/memory-leak-listener/README.md, stage 1";
const STAGE2: &str = "exercises/memory-leak-listener/README.md, stage 2";

/// Requests for the leaking handlers: enough for a clear trend, few enough to keep the suite's
/// memory small (200 leaked bodies are 12.5 MiB).
const LEAKING: u64 = 200;
/// Requests for the clean handlers and the fixed one.
const CLEAN: u64 = 1_000;
/// What 1,000 clean requests may leave on the heap: under a byte per request, far below one
/// leaked body (64 KiB) or a thousand leaked listeners (75 KiB or more).
const TOLERANCE: usize = 1024;

fn at_stage1(hint: &str) -> String {
    format!("{hint} ({STAGE1})")
}

fn at_stage2(hint: &str) -> String {
    format!("{hint} ({STAGE2})")
}

/// Subscribes nothing: nothing to leak.
async fn stateless_handler(_server: &EventEmitter, request: Request) -> Response {
    tokio::time::sleep(WORK).await;
    Response {
        id: request.id,
        accepted: true,
    }
}

/// Listens while it works and unsubscribes when the request ends, by dropping the guard.
async fn tidy_handler(server: &EventEmitter, request: Request) -> Response {
    let buffer = request.buffer;
    let _subscription = server.on(move |change: &ConfigChanged| {
        std::hint::black_box(buffer.len() > change.max_body_bytes);
    });
    tokio::time::sleep(WORK).await;
    Response {
        id: request.id,
        accepted: true,
    }
}

/// Leaves a listener behind that captures nothing: about 75 bytes per request.
async fn small_listener_leak(server: &EventEmitter, request: Request) -> Response {
    server.on(|_: &ConfigChanged| {}).detach();
    tokio::time::sleep(WORK).await;
    Response {
        id: request.id,
        accepted: true,
    }
}

/// Fails unless `report` has the expected verdict, showing the learner their own figures.
#[track_caller]
fn check_verdict(what: &str, report: &MemoryReport, leaks: bool, hint: &str) {
    if report.leaks != leaks {
        fail(
            &format!("{what}: wrong verdict"),
            format_args!("leaks: {leaks}"),
            format_args!("leaks: {}, from this report:\n{report}", report.leaks),
            hint,
        );
    }
}

/// Fails unless the report's heap growth per request is within `low..=high` bytes.
#[track_caller]
fn check_heap_per_request(what: &str, report: &MemoryReport, low: f64, high: f64, hint: &str) {
    let per_request = report.heap_per_request();
    if !(low..=high).contains(&per_request) {
        fail(
            &format!("{what}: implausible heap growth per request"),
            format_args!("between {} and {} per request", bytes(low), bytes(high)),
            format_args!(
                "{} per request ({} over {} requests)",
                bytes(per_request),
                bytes(report.heap_growth as f64),
                report.requests
            ),
            hint,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 1: measure, and a verdict from figures it gathers itself.

#[kata_harness::test]
async fn stage1_measure_flags_the_leaky_handler() {
    let server = EventEmitter::new();
    let report = measure(&server, leaky_handler, LEAKING).await;
    let what = format!("measure(&server, leaky_handler, {LEAKING})");

    check_verdict(
        &what,
        &report,
        true,
        &at_stage1(
            "leaky_handler leaves a listener and a 64 KiB body behind with every request: a \
             growing listener count or a growing heap is a leak",
        ),
    );
    check_eq(
        &format!("{what}: requests in the report"),
        report.requests,
        LEAKING,
        &at_stage1("report the number of measured requests, not counting the warm-up"),
    );
    check_eq(
        &format!("{what}: listener growth"),
        report.listener_growth,
        LEAKING as isize,
        &at_stage1(
            "count the server's ConfigChanged listeners just before the measured requests and \
             just after them: leaky_handler leaves exactly one per request",
        ),
    );
    check_heap_per_request(
        &what,
        &report,
        BUFFER_SIZE as f64,
        2.0 * BUFFER_SIZE as f64,
        &at_stage1(
            "every leaked request keeps its 64 KiB body plus a small listener: measure the live \
             heap with kata_harness::heap::HeapScope, started before the measured requests and \
             finished after them (make the requests inside it)",
        ),
    );
    let listeners = server.listener_count::<ConfigChanged>();
    if listeners <= LEAKING as usize {
        fail(
            &format!("{what}: the warm-up"),
            format_args!(
                "more than {LEAKING} listeners on the server: the warm-up's and the measured \
                 requests'"
            ),
            format_args!("{listeners}"),
            &at_stage1(
                "warm up before measuring: run a few requests through the same handler on the \
                 same server first, so that what the first request builds once (the emitter's \
                 listener list, tokio's timers) is not counted as growth",
            ),
        );
    }
}

#[kata_harness::test]
async fn stage1_measure_does_not_flag_clean_handlers() {
    let handlers: [(&str, MemoryReport); 2] = [
        (
            "a handler that subscribes nothing",
            measure(&EventEmitter::new(), stateless_handler, CLEAN).await,
        ),
        (
            "a handler that unsubscribes when the request ends",
            measure(&EventEmitter::new(), tidy_handler, CLEAN).await,
        ),
    ];
    for (name, report) in handlers {
        let what = format!("measure of {name}, {CLEAN} requests");
        check_verdict(
            &what,
            &report,
            false,
            &at_stage1(
                "a handler that leaves nothing behind is not a leak: after the warm-up its heap \
                 and listener figures are back where they started",
            ),
        );
        check_eq(
            &format!("{what}: listener growth"),
            report.listener_growth,
            0,
            &at_stage1("count the listeners before and after the measured requests"),
        );
        check_eq(
            &format!("{what}: heap growth in bytes"),
            report.heap_growth,
            0,
            &at_stage1(
                "the heap counters are exact, and after the warm-up a handler that keeps nothing \
                 leaves exactly nothing. Count only what the requests leave behind: warm up \
                 first, and keep your own bookkeeping out of the heap scope (RSS samples pushed \
                 inside it are counted)",
            ),
        );
    }
}

#[kata_harness::test]
async fn stage1_measure_flags_a_leak_of_small_listeners() {
    let server = EventEmitter::new();
    let report = measure(&server, small_listener_leak, LEAKING).await;
    let what = format!("measure of a handler that leaks an empty listener, {LEAKING} requests");
    check_verdict(
        &what,
        &report,
        true,
        &at_stage1(
            "a listener that captures nothing is still a leak: the listener count grows by one \
             per request, and so does the heap, by some 75 bytes",
        ),
    );
    check_eq(
        &format!("{what}: listener growth"),
        report.listener_growth,
        LEAKING as isize,
        &at_stage1("count the listeners before and after the measured requests"),
    );
    check_heap_per_request(
        &what,
        &report,
        16.0,
        4096.0,
        &at_stage1("a leaked listener is a small allocation or two: tens of bytes, not kilobytes"),
    );
}

#[kata_harness::test]
async fn stage1_measure_flags_memory_kept_without_any_listener() {
    let kept = Mutex::new(Vec::new());
    let server = EventEmitter::new();
    let report = measure(
        &server,
        async |_server: &EventEmitter, request: Request| {
            // A "cache" that nobody ever empties.
            kept.lock().unwrap().push(request.buffer);
            tokio::time::sleep(WORK).await;
            Response {
                id: request.id,
                accepted: true,
            }
        },
        LEAKING,
    )
    .await;
    let what = format!("measure of a handler that keeps every body in a list, {LEAKING} requests");
    check_verdict(
        &what,
        &report,
        true,
        &at_stage1(
            "no listener is left, yet every request keeps 64 KiB: decide on the heap figure as \
             well as on the listener count",
        ),
    );
    check_eq(
        &format!("{what}: listener growth"),
        report.listener_growth,
        0,
        &at_stage1("this handler subscribes nothing"),
    );
    check_heap_per_request(
        &what,
        &report,
        BUFFER_SIZE as f64,
        2.0 * BUFFER_SIZE as f64,
        &at_stage1("measure the live heap around the requests, with the requests made inside it"),
    );
}

#[kata_harness::test]
async fn stage1_measure_samples_rss_over_the_requests() {
    let report = measure(&EventEmitter::new(), stateless_handler, LEAKING).await;
    if RssSampler::current().is_none() {
        // memory-stats cannot read RSS on this platform: nothing to sample.
        return;
    }
    let what = format!("measure(.., {LEAKING} requests): RSS samples");
    let samples = report.rss.samples();
    let at: Vec<u64> = samples.iter().map(|&(request, _)| request).collect();
    let hint = at_stage1(
        "sample RSS with kata_harness::leaks::RssSampler before the first measured request \
         (sample(0)), every few requests, and after the last (sample(requests)): RSS only means \
         something as a trend over many samples",
    );
    if samples.len() < 10 {
        fail(
            &what,
            "at least 10 samples",
            format_args!("{} sample(s), at requests {at:?}", samples.len()),
            &hint,
        );
    }
    if at.first() != Some(&0) || at.last() != Some(&LEAKING) || !at.is_sorted() {
        fail(
            &what,
            format_args!("samples in order, from request 0 to request {LEAKING}"),
            format_args!("samples at requests {}", list(&at)),
            &hint,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the fixed handler leaves nothing behind.

#[kata_harness::test]
async fn stage2_the_fixed_handler_still_hears_config_changes() {
    for (limit, accepted) in [(BUFFER_SIZE - 1, false), (BUFFER_SIZE, true)] {
        let server = EventEmitter::new();
        let (response, listening) = tokio::join!(fixed_handler(&server, Request::new(7)), async {
            // Halfway through the request's work.
            tokio::time::sleep(WORK / 2).await;
            let listening = server.listener_count::<ConfigChanged>();
            server.emit(ConfigChanged {
                max_body_bytes: limit,
            });
            listening
        });
        check_eq(
            "ConfigChanged listeners while fixed_handler works on a request",
            listening,
            1,
            &at_stage2(
                "subscribe when the request starts and keep the Subscription in a named variable \
                 until it ends: `let _ = server.on(..)` drops the guard, and the listener, at once",
            ),
        );
        check_eq(
            &format!(
                "fixed_handler's response after the limit changed to {limit} bytes mid-request \
                 (the body is {BUFFER_SIZE})"
            ),
            response,
            Response { id: 7, accepted },
            &at_stage2(
                "do the same work as leaky_handler: a change during the request that puts the \
                 body over the new limit rejects it",
            ),
        );
    }
}

#[kata_harness::test]
async fn stage2_each_request_leaves_nothing_behind() {
    let server = EventEmitter::new();
    for id in 0..10 {
        let request = Request::new(id);
        let body = DropProbe::watch(&request.buffer);
        fixed_handler(&server, request).await;
        check_eq(
            &format!("ConfigChanged listeners after request {id} ended"),
            server.listener_count::<ConfigChanged>(),
            0,
            &at_stage2(
                "let the Subscription drop when the request ends; .detach() keeps the listener \
                 for the server's whole life",
            ),
        );
        body.assert_dropped(
            &format!("request {id}'s body, after fixed_handler returned"),
            &at_stage2(
                "the body's last owner must go when the request ends: the listener's closure \
                 owns a clone of it until the listener is removed, so remove the listener, and \
                 keep the body nowhere else",
            ),
        );
    }
    check_eq(
        "listeners reached by a ConfigChanged emitted after every request ended",
        server.emit(ConfigChanged { max_body_bytes: 0 }),
        0,
        &at_stage2("a request that has ended listens to nothing"),
    );

    // The same check on the provided handler finds the body alive: the probe does see the leak.
    let request = Request::new(10);
    let body = DropProbe::watch(&request.buffer);
    leaky_handler(&server, request).await;
    if body.is_dropped() {
        fail(
            "leaky_handler's body, after it returned",
            "still alive: its detached listener owns it",
            "dropped",
            &at_stage2("leaky_handler is given: keep it as it was, it is the leak to compare with"),
        );
    }
}

#[kata_harness::test]
async fn stage2_a_thousand_requests_come_back_to_baseline() {
    let server = EventEmitter::new();
    // Warm up: the first request builds the emitter's listener list and tokio's timers for good.
    for id in 0..10 {
        fixed_handler(&server, Request::new(id)).await;
    }
    let heap = HeapScope::start();
    for id in 0..CLEAN {
        fixed_handler(&server, Request::new(id)).await;
    }
    let heap = heap.finish();
    assert_back_to_baseline(
        &format!("ConfigChanged listeners after {} requests", CLEAN + 10),
        0,
        server.listener_count::<ConfigChanged>(),
        &at_stage2("every request must remove its listener when it ends"),
    );
    assert_live_back(
        &format!("{CLEAN} requests through fixed_handler"),
        heap,
        TOLERANCE,
        &at_stage2(
            "nothing a request allocates may outlive it: the body, the listener, its closure. \
             Keep nothing from a request in a static, a global list or the server",
        ),
    );
}

#[kata_harness::test]
async fn stage2_the_leak_warning_fires_for_the_leaky_handler_only() {
    let fixed_server = EventEmitter::new();
    for id in 0..100 {
        fixed_handler(&fixed_server, Request::new(id)).await;
    }
    check_eq(
        "the emitter's leak warnings after 100 requests through fixed_handler",
        fixed_server.leak_warnings(),
        vec![],
        &at_stage2(
            "one request at a time means one listener at a time: more than 10 means listeners \
             outlive their requests",
        ),
    );

    // The provided handler passes the emitter's maximum of 10 listeners at the 11th request.
    let leaky_server = EventEmitter::new();
    for id in 0..11 {
        leaky_handler(&leaky_server, Request::new(id)).await;
    }
    check_eq(
        "the emitter's leak warnings after 11 requests through leaky_handler",
        leaky_server.leak_warnings(),
        vec![LeakWarning {
            event: type_name::<ConfigChanged>(),
            listeners: 11,
            max: 10,
        }],
        &at_stage2("leaky_handler is given: keep it as it was, it is the leak to compare with"),
    );
}
