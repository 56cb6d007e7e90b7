//! The emitter's contract: typed events, on/once/off/emit/listener_count, guards that
//! unsubscribe on drop, the one-time leak warning, and emission from tasks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kata_emitter::{EventEmitter, LeakWarning};
use kata_harness::hint::{Hint, Stage};
use kata_harness::leaks::DropProbe;

/// The emitter's own tests: their hints speak to whoever changed the emitter, and point at the
/// kata that explains listeners and their guards.
fn hint(text: &'static str) -> Hint {
    Stage::new("memory-leak-listener", 1).hint(text)
}

#[derive(Debug, Clone, PartialEq)]
struct Tick(u32);

#[derive(Debug, Clone, PartialEq)]
struct Done;

/// A log that listeners push into.
fn log() -> Arc<Mutex<Vec<String>>> {
    Arc::default()
}

#[test]
fn listeners_get_their_own_event_type_in_the_order_added() {
    let emitter = EventEmitter::new();
    let seen = log();
    let (a, b, c) = (seen.clone(), seen.clone(), seen.clone());
    let _first = emitter.on(move |tick: &Tick| a.lock().unwrap().push(format!("first {}", tick.0)));
    let _second =
        emitter.on(move |tick: &Tick| b.lock().unwrap().push(format!("second {}", tick.0)));
    let _done = emitter.on(move |_: &Done| c.lock().unwrap().push("done".into()));

    assert_eq!(emitter.emit(Tick(1)), 2);
    assert_eq!(emitter.emit(Done), 1);
    assert_eq!(*seen.lock().unwrap(), ["first 1", "second 1", "done"]);
    assert_eq!(emitter.listener_count::<Tick>(), 2);
    assert_eq!(emitter.listener_count::<String>(), 0);
}

#[test]
fn an_event_with_no_listeners_reaches_nobody() {
    assert_eq!(EventEmitter::new().emit(Tick(1)), 0);
}

#[test]
fn dropping_the_subscription_unsubscribes() {
    let emitter = EventEmitter::new();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let subscription = emitter.on(move |_: &Tick| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    emitter.emit(Tick(1));
    drop(subscription);
    emitter.emit(Tick(2));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(emitter.listener_count::<Tick>(), 0);
}

#[test]
fn unsubscribing_frees_what_the_listener_captured() {
    let emitter = EventEmitter::new();
    let (probe, token) = DropProbe::new();
    let buffer = (vec![0_u8; 1 << 16], token);
    let subscription = emitter.on(move |_: &Tick| {
        // Destructure the whole tuple: naming only `buffer.0` would capture just that field.
        let (bytes, _token) = &buffer;
        let _ = bytes.len();
    });
    assert!(!probe.is_dropped());
    subscription.unsubscribe();
    probe.assert_dropped(
        "the listener's captured buffer",
        &hint("dropping the guard must drop the listener and what it captured"),
    );
}

#[test]
fn a_detached_listener_stays_until_off() {
    let emitter = EventEmitter::new();
    let (probe, token) = DropProbe::new();
    let id = emitter
        .on(move |_: &Tick| {
            let _ = &token;
        })
        .detach();
    emitter.emit(Tick(1));
    assert_eq!(emitter.listener_count::<Tick>(), 1);
    assert!(
        !probe.is_dropped(),
        "a detached listener is kept, like Node's on()"
    );
    assert!(emitter.off(id));
    assert!(!emitter.off(id), "a second off finds nothing");
    probe.assert_dropped(
        "the detached listener",
        &hint("dropping the emitter must drop every listener, detached ones too"),
    );
}

#[test]
fn once_fires_once_and_then_leaves() {
    let emitter = EventEmitter::new();
    let seen = log();
    let s = seen.clone();
    let _guard =
        emitter.once(move |tick: &Tick| s.lock().unwrap().push(format!("once {}", tick.0)));
    assert_eq!(emitter.listener_count::<Tick>(), 1);
    assert_eq!(emitter.emit(Tick(1)), 1);
    assert_eq!(emitter.emit(Tick(2)), 0);
    assert_eq!(*seen.lock().unwrap(), ["once 1"]);
    assert_eq!(emitter.listener_count::<Tick>(), 0);
}

#[test]
fn a_once_listener_dropped_before_the_event_never_fires() {
    let emitter = EventEmitter::new();
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    drop(emitter.once(move |_: &Tick| {
        f.fetch_add(1, Ordering::SeqCst);
    }));
    emitter.emit(Tick(1));
    assert_eq!(fired.load(Ordering::SeqCst), 0);
}

#[test]
fn a_once_listener_is_not_run_twice_by_a_reentrant_emit() {
    let emitter = EventEmitter::new();
    let fired = Arc::new(AtomicUsize::new(0));
    let (f, inner) = (fired.clone(), emitter.clone());
    let _guard = emitter.once(move |tick: &Tick| {
        f.fetch_add(1, Ordering::SeqCst);
        inner.emit(Tick(tick.0 + 1));
    });
    emitter.emit(Tick(1));
    assert_eq!(fired.load(Ordering::SeqCst), 1);
}

#[test]
fn listeners_may_subscribe_and_emit_from_inside_a_listener() {
    // Listeners run with no lock held; holding one here would deadlock.
    let emitter = EventEmitter::new();
    let seen = log();
    let (inner, s) = (emitter.clone(), seen.clone());
    let keep: Arc<Mutex<Vec<kata_emitter::Subscription>>> = Arc::default();
    let k = keep.clone();
    let _outer = emitter.on(move |tick: &Tick| {
        let s2 = s.clone();
        k.lock()
            .unwrap()
            .push(inner.on(move |_: &Done| s2.lock().unwrap().push("done".into())));
        if tick.0 == 1 {
            inner.emit(Done);
        }
    });
    emitter.emit(Tick(1));
    assert_eq!(*seen.lock().unwrap(), ["done"]);
    assert_eq!(emitter.listener_count::<Done>(), 1);
}

#[test]
fn more_listeners_than_the_maximum_warn_once_naming_the_event() {
    let emitter = EventEmitter::new();
    let mut keep = Vec::new();
    for _ in 0..10 {
        keep.push(emitter.on(|_: &Tick| {}));
    }
    assert!(
        emitter.leak_warnings().is_empty(),
        "10 listeners is the maximum, not over it"
    );
    for _ in 0..5 {
        keep.push(emitter.on(|_: &Tick| {}));
    }
    let warnings = emitter.leak_warnings();
    assert_eq!(
        warnings,
        [LeakWarning {
            event: "emitter::Tick",
            listeners: 11,
            max: 10
        }]
    );
    assert!(
        warnings[0]
            .to_string()
            .contains("possible listener leak: 11 listeners for event `emitter::Tick`")
    );
    // Another event type gets its own warning.
    for _ in 0..11 {
        keep.push(emitter.on(|_: &Done| {}));
    }
    assert_eq!(emitter.leak_warnings().len(), 2);
}

#[test]
fn the_maximum_can_be_raised_or_disabled() {
    let emitter = EventEmitter::new();
    emitter.set_max_listeners(20);
    assert_eq!(emitter.max_listeners(), 20);
    let keep: Vec<_> = (0..20).map(|_| emitter.on(|_: &Tick| {})).collect();
    assert!(emitter.leak_warnings().is_empty());
    emitter.set_max_listeners(0);
    let more: Vec<_> = (0..100).map(|_| emitter.on(|_: &Tick| {})).collect();
    assert!(emitter.leak_warnings().is_empty());
    drop((keep, more));
}

#[test]
fn a_subscription_does_not_keep_the_emitter_alive() {
    let emitter = EventEmitter::new();
    let subscription = emitter.on(|_: &Tick| {});
    drop(emitter);
    drop(subscription); // must not panic or resurrect anything
}

#[test]
fn events_can_be_emitted_from_other_threads() {
    let emitter = EventEmitter::new();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let _guard = emitter.on(move |_: &Tick| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let emitter = emitter.clone();
            std::thread::spawn(move || {
                for n in 0..100 {
                    emitter.emit(Tick(i * 100 + n));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 400);
}

/// Starts a producer the right way: its first event is emitted from a task.
fn start_async(emitter: &EventEmitter) {
    let emitter = emitter.clone();
    tokio::spawn(async move {
        emitter.emit(Tick(0));
    });
}

/// Starts a producer the wrong way: its first event is emitted before the caller gets control.
fn start_sync(emitter: &EventEmitter) {
    emitter.emit(Tick(0));
}

#[kata_harness::test]
async fn a_listener_attached_right_after_an_async_start_gets_the_first_event() {
    let emitter = EventEmitter::new();
    start_async(&emitter);
    let seen = log();
    let s = seen.clone();
    let _guard = emitter.on(move |tick: &Tick| s.lock().unwrap().push(format!("tick {}", tick.0)));
    kata_harness::leaks::settle().await;
    assert_eq!(*seen.lock().unwrap(), ["tick 0"]);
}

#[kata_harness::test]
async fn a_listener_attached_after_a_sync_start_misses_the_first_event() {
    // The contrast that stage 2 of the ticker kata is about.
    let emitter = EventEmitter::new();
    start_sync(&emitter);
    let seen = log();
    let s = seen.clone();
    let _guard = emitter.on(move |tick: &Tick| s.lock().unwrap().push(format!("tick {}", tick.0)));
    kata_harness::leaks::settle().await;
    assert!(seen.lock().unwrap().is_empty());
}
