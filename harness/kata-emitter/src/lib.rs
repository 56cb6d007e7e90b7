//! A typed, Node-style event emitter whose subscriptions unsubscribe when dropped.
//!
//! Node's `EventEmitter` names events with strings and passes untyped arguments. Here **an event
//! is a type**: `emitter.on(|tick: &Tick| ...)` listens to `Tick`s, `emitter.emit(Tick { .. })`
//! sends one, and the compiler checks both ends. Any `Send + Sync + 'static` type can be an event.
//!
//! ```
//! use kata_emitter::EventEmitter;
//!
//! #[derive(Debug)]
//! struct Tick(u32);
//!
//! let emitter = EventEmitter::new();
//! let subscription = emitter.on(|tick: &Tick| println!("tick {}", tick.0));
//! assert_eq!(emitter.emit(Tick(1)), 1); // one listener called
//! drop(subscription); // unsubscribes
//! assert_eq!(emitter.emit(Tick(2)), 0);
//! ```
//!
//! # Listener leaks, and the Rust answer to them
//! In Node, `on` keeps a listener (and everything its closure captured) until someone calls
//! `off`; forget to, and memory grows with every request. Here `on` returns a [`Subscription`]
//! guard and **dropping the guard unsubscribes**, so a listener lives exactly as long as the scope
//! that wanted it. To listen for the emitter's whole life, say so with [`Subscription::detach`].
//! Like Node, the emitter also warns once per event type when more than
//! [`max_listeners`](EventEmitter::max_listeners) (default 10) are attached: a leak hint.
//!
//! # Emitting from tasks
//! `emit` calls the listeners synchronously, on the emitting thread, in the order they were
//! added. A producer that runs in a spawned task emits only after the code that spawned it
//! yields, so listeners attached right after the call that started it still get its first event.
//! A given event should always be emitted one way or the other: an event that is sometimes
//! synchronous and sometimes not makes "attach, then start" orderings unreliable.

use std::any::{Any, TypeId, type_name};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// The listener count above which an event type gets a one-time leak warning (Node's default).
pub const DEFAULT_MAX_LISTENERS: usize = 10;

/// Identifies one listener, for [`EventEmitter::off`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// The one-time warning issued when an event type has more listeners than the maximum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakWarning {
    /// The event's type name, e.g. `ticker::Tick`.
    pub event: &'static str,
    /// How many listeners it had when the warning was issued.
    pub listeners: usize,
    /// The maximum in force then.
    pub max: usize,
}

impl fmt::Display for LeakWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "possible listener leak: {} listeners for event `{}` (max {}). Drop the \
             Subscription when a listener is no longer needed, or raise the limit with \
             set_max_listeners()",
            self.listeners, self.event, self.max
        )
    }
}

type Callback = dyn Fn(&dyn Any) + Send + Sync;
type OnceCallback = Box<dyn FnOnce(&dyn Any) + Send>;

enum Call {
    Every(Box<Callback>),
    Once(Mutex<Option<OnceCallback>>),
}

struct Listener {
    id: ListenerId,
    call: Call,
    /// Set when a `once` listener has fired, so two concurrent emits cannot both run it.
    spent: AtomicBool,
}

#[derive(Default)]
struct State {
    listeners: HashMap<TypeId, Vec<Arc<Listener>>>,
    max_listeners: Option<usize>,
    warned: HashSet<TypeId>,
    warnings: Vec<LeakWarning>,
    next_id: u64,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A listener that panicked never holds this lock (listeners run unlocked), so poisoning
        // cannot leave the state half-changed: recover rather than cascade the panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remove(&self, event: TypeId, id: ListenerId) -> bool {
        let mut state = self.lock();
        let Some(list) = state.listeners.get_mut(&event) else {
            return false;
        };
        let before = list.len();
        list.retain(|listener| listener.id != id);
        before != list.len()
    }
}

/// A typed event emitter. Cheap to clone: clones share the same listeners.
#[derive(Clone, Default)]
pub struct EventEmitter {
    shared: Arc<Shared>,
}

impl fmt::Debug for EventEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        let listeners: usize = state.listeners.values().map(Vec::len).sum();
        f.debug_struct("EventEmitter")
            .field("listeners", &listeners)
            .finish()
    }
}

/// A listener's registration. Dropping it unsubscribes the listener.
#[must_use = "dropping a Subscription unsubscribes at once: keep it while you listen, or \
              call .detach() to listen for the emitter's whole life"]
pub struct Subscription {
    // Weak: a subscription must not keep the emitter alive.
    shared: Weak<Shared>,
    event: TypeId,
    id: ListenerId,
    attached: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    /// This listener's id, for [`EventEmitter::off`].
    pub fn id(&self) -> ListenerId {
        self.id
    }

    /// Removes the listener now (the same as dropping the guard, but says so).
    pub fn unsubscribe(self) {}

    /// Keeps the listener for the emitter's whole life; returns its id for a later
    /// [`EventEmitter::off`]. This is Node's `on`: the listener and all it captured stay alive.
    pub fn detach(mut self) -> ListenerId {
        self.attached = false;
        self.id
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.attached
            && let Some(shared) = self.shared.upgrade()
        {
            shared.remove(self.event, self.id);
        }
    }
}

impl EventEmitter {
    /// An emitter with no listeners.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `listener` with every `E` emitted until the returned guard is dropped.
    pub fn on<E: Any + Send + Sync>(
        &self,
        listener: impl Fn(&E) + Send + Sync + 'static,
    ) -> Subscription {
        self.add::<E>(Call::Every(Box::new(move |event: &dyn Any| {
            if let Some(event) = event.downcast_ref::<E>() {
                listener(event);
            }
        })))
    }

    /// Calls `listener` with the next `E` emitted only, then removes it. Dropping the guard
    /// before that cancels it.
    pub fn once<E: Any + Send + Sync>(
        &self,
        listener: impl FnOnce(&E) + Send + 'static,
    ) -> Subscription {
        let call: OnceCallback = Box::new(move |event: &dyn Any| {
            if let Some(event) = event.downcast_ref::<E>() {
                listener(event);
            }
        });
        self.add::<E>(Call::Once(Mutex::new(Some(call))))
    }

    fn add<E: Any>(&self, call: Call) -> Subscription {
        let event = TypeId::of::<E>();
        let mut state = self.shared.lock();
        let id = ListenerId(state.next_id);
        state.next_id += 1;
        let listener = Arc::new(Listener {
            id,
            call,
            spent: AtomicBool::new(false),
        });
        let list = state.listeners.entry(event).or_default();
        list.push(listener);
        let count = list.len();
        let max = state.max_listeners.unwrap_or(DEFAULT_MAX_LISTENERS);
        if max != 0 && count > max && state.warned.insert(event) {
            let warning = LeakWarning {
                event: type_name::<E>(),
                listeners: count,
                max,
            };
            eprintln!("warning: {warning}");
            state.warnings.push(warning);
        }
        Subscription {
            shared: Arc::downgrade(&self.shared),
            event,
            id,
            attached: true,
        }
    }

    /// Removes the listener with this id. Returns whether there was one.
    pub fn off(&self, id: ListenerId) -> bool {
        let mut state = self.shared.lock();
        for list in state.listeners.values_mut() {
            if let Some(at) = list.iter().position(|listener| listener.id == id) {
                list.remove(at);
                return true;
            }
        }
        false
    }

    /// Calls every listener of `E`, in the order they were added, and returns how many ran.
    ///
    /// Listeners run without any lock held, so they may emit, subscribe or unsubscribe
    /// themselves. A listener added during an emit first hears the *next* one (like Node).
    pub fn emit<E: Any + Send + Sync>(&self, event: E) -> usize {
        let snapshot: Vec<Arc<Listener>> = {
            let mut state = self.shared.lock();
            let Some(list) = state.listeners.get_mut(&TypeId::of::<E>()) else {
                return 0;
            };
            let snapshot = list.clone();
            // `once` listeners leave before they run, so a re-entrant emit cannot run them twice.
            list.retain(|listener| !matches!(listener.call, Call::Once(_)));
            snapshot
        };
        let mut called = 0;
        for listener in snapshot {
            match &listener.call {
                Call::Every(call) => call(&event),
                Call::Once(call) => {
                    if listener.spent.swap(true, Ordering::AcqRel) {
                        continue;
                    }
                    let call = call.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(call) = call {
                        call(&event);
                    }
                }
            }
            called += 1;
        }
        called
    }

    /// How many listeners `E` has now.
    pub fn listener_count<E: Any>(&self) -> usize {
        self.shared
            .lock()
            .listeners
            .get(&TypeId::of::<E>())
            .map_or(0, Vec::len)
    }

    /// Sets the per-event listener count above which a leak warning is issued; 0 means no limit.
    pub fn set_max_listeners(&self, max: usize) {
        self.shared.lock().max_listeners = Some(max);
    }

    /// The per-event listener maximum in force (default [`DEFAULT_MAX_LISTENERS`]).
    pub fn max_listeners(&self) -> usize {
        self.shared
            .lock()
            .max_listeners
            .unwrap_or(DEFAULT_MAX_LISTENERS)
    }

    /// Every leak warning issued so far (one per event type at most).
    pub fn leak_warnings(&self) -> Vec<LeakWarning> {
        self.shared.lock().warnings.clone()
    }
}
