//! Heap counters per test: live bytes and peak bytes around a block of code.
//!
//! A suite installs [`CountingAllocator`] with [`install_allocator!`](crate::install_allocator).
//! It forwards every call to the system allocator and adds or subtracts the size in an
//! **account**. Process-wide counters would be useless here: the test runner runs tests in
//! parallel, and one test's allocations would land in another's figures. So each thread counts
//! in its own account, except the threads of a kata test: the harness opens one account per test
//! and joins to it the test's thread *and* its runtime's blocking pool, where `tokio::fs` and
//! `spawn_blocking` do their work. A file read whole by `tokio::fs::read` is counted like one
//! read on the test's own thread.
//!
//! Two things to know when measuring:
//! - **Warm up first.** The first call of anything may allocate lazily-built statics (tokio's
//!   timer wheel, thread-locals) that stay alive; run the operation once before measuring.
//! - Memory allocated on a thread outside the test's runtime (`std::thread::spawn`) is not
//!   counted, and memory such a thread frees makes the figure look higher than it is.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use crate::report;

/// A global allocator that counts live and peak heap bytes per account (see the module docs).
///
/// Install it in a test crate with [`install_allocator!`](crate::install_allocator).
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

/// Live and peak bytes of one thread, or of every thread joined to one test.
#[derive(Debug)]
pub struct Account {
    live: AtomicIsize,
    peak: AtomicIsize,
}

impl Account {
    const fn new() -> Self {
        Self {
            live: AtomicIsize::new(0),
            peak: AtomicIsize::new(0),
        }
    }

    /// A new account for one test. It is leaked (16 bytes per test): threads of the test's
    /// blocking pool may outlive the test's own thread for a moment, and a `'static` account is
    /// what lets the allocator reach it without reference counting.
    pub fn open() -> &'static Self {
        Box::leak(Box::new(Self::new()))
    }

    /// The highest live figure this account has reached, in bytes.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed).max(0) as usize
    }

    fn record(&self, delta: isize) {
        let now = self.live.fetch_add(delta, Ordering::Relaxed) + delta;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
}

thread_local! {
    // `const` initialisers of plain atomics and `Cell`s: reading them never allocates and
    // registers no destructor, which is what lets the allocator itself use them.
    static OWN: Account = const { Account::new() };
    static JOINED: Cell<Option<&'static Account>> = const { Cell::new(None) };
}

/// Makes the calling thread count in `account` from now on (the harness calls it on a test's
/// thread and on its runtime's blocking threads).
pub fn join(account: &'static Account) {
    JOINED.with(|joined| joined.set(Some(account)));
}

/// Runs `f` on the calling thread's account. `None` during thread teardown, when the
/// thread-locals may be gone: nothing is counted then.
fn with_account<R>(f: impl FnOnce(&Account) -> R) -> Option<R> {
    match JOINED.try_with(Cell::get) {
        Ok(Some(account)) => Some(f(account)),
        Ok(None) => OWN.try_with(f).ok(),
        Err(_) => None,
    }
}

/// Set by the first allocation through [`CountingAllocator`], so a suite that forgot to install
/// it gets told instead of reading zeros.
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn record(delta: isize) {
    with_account(|account| account.record(delta));
}

// SAFETY (the one `unsafe` block of the project, allowed here only): every method forwards its
// arguments unchanged to `System`, which upholds the `GlobalAlloc` contract; the bookkeeping
// around each call only touches atomics and `Cell`s in thread-locals or leaked accounts, never
// the memory being handed out, and never allocates (so it cannot re-enter the allocator).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) };
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Installs [`CountingAllocator`] as the global allocator of the crate it is written in.
///
/// Write it once at the top of a suite: `kata_harness::install_allocator!();`
#[macro_export]
macro_rules! install_allocator {
    () => {
        #[global_allocator]
        static KATA_HARNESS_ALLOCATOR: $crate::heap::CountingAllocator =
            $crate::heap::CountingAllocator;
    };
}

/// Whether [`CountingAllocator`] is the global allocator of this process.
pub fn is_installed() -> bool {
    // Allocate once, so the answer does not depend on whether anything has allocated yet.
    drop(std::hint::black_box(Box::new(0_u8)));
    INSTALLED.load(Ordering::Relaxed)
}

/// Bytes allocated and not yet freed in this thread's account (may be negative if it freed
/// memory that a thread outside the account allocated).
pub fn live_bytes() -> isize {
    with_account(|account| account.live.load(Ordering::Relaxed)).unwrap_or(0)
}

fn peak_bytes() -> isize {
    with_account(|account| account.peak.load(Ordering::Relaxed)).unwrap_or(0)
}

fn set_peak(value: isize) -> isize {
    with_account(|account| account.peak.swap(value, Ordering::Relaxed)).unwrap_or(0)
}

/// Heap figures for one measured block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapReport {
    /// Bytes still allocated at the end that were not at the start (negative: freed more).
    pub live_delta: isize,
    /// The highest live figure during the block, above the live figure at its start.
    pub peak_delta: usize,
}

/// A measurement in progress; [`HeapScope::finish`] gives the [`HeapReport`]. Scopes nest.
#[derive(Debug)]
#[must_use = "call .finish() to read the figures"]
pub struct HeapScope {
    start_live: isize,
    outer_peak: isize,
}

impl HeapScope {
    /// Starts measuring on this thread's account. Panics if the allocator is not installed.
    #[track_caller]
    pub fn start() -> Self {
        if !is_installed() {
            report::fail(
                "heap measurement",
                "kata_harness::heap::CountingAllocator as the global allocator",
                "the system allocator (every figure would read 0)",
                "add `kata_harness::install_allocator!();` at the top of the test file",
            );
        }
        let start_live = live_bytes();
        // Reset the peak to "now" so this scope sees only its own high-water mark; remember the
        // outer one to restore it.
        let outer_peak = set_peak(start_live);
        Self {
            start_live,
            outer_peak,
        }
    }

    /// The figures so far, without ending the scope.
    pub fn report(&self) -> HeapReport {
        let peak = peak_bytes();
        HeapReport {
            live_delta: live_bytes() - self.start_live,
            peak_delta: (peak - self.start_live).max(0) as usize,
        }
    }

    /// Ends the scope.
    pub fn finish(self) -> HeapReport {
        let report = self.report();
        // An enclosing scope must still see this block's peak.
        set_peak(peak_bytes().max(self.outer_peak));
        report
    }
}

/// Runs `f` and measures its heap use on this thread's account.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, HeapReport) {
    let scope = HeapScope::start();
    let out = f();
    (out, scope.finish())
}

/// Awaits `future` and measures its heap use on this thread's account: in a kata test, every
/// task the future spawns and every `spawn_blocking` / `tokio::fs` call it makes.
pub async fn measure_async<F: Future>(future: F) -> (F::Output, HeapReport) {
    let scope = HeapScope::start();
    let out = future.await;
    (out, scope.finish())
}

/// Asserts that the block's peak stayed below `limit` bytes above where it started.
#[track_caller]
pub fn assert_peak_below(what: &str, report: HeapReport, limit: usize, hint: &str) {
    if report.peak_delta >= limit {
        report::fail(
            &format!("{what}: peak heap too high"),
            format_args!("below {}", bytes(limit as f64)),
            format_args!("{} at the peak", bytes(report.peak_delta as f64)),
            hint,
        );
    }
}

/// Asserts that two runs of the same work on inputs of different sizes peaked at about the same
/// heap (within `margin` of each other): what "memory does not grow with the input" means when
/// it is measured. `small` and `large` pair a label for the report ("8 MiB") with the figures.
#[track_caller]
pub fn assert_peak_independent(
    what: &str,
    small: (&str, HeapReport),
    large: (&str, HeapReport),
    margin: usize,
    hint: &str,
) {
    let ((small_label, small), (large_label, large)) = (small, large);
    if large.peak_delta.abs_diff(small.peak_delta) > margin {
        report::fail(
            &format!("{what}: peak heap changed with the input's size"),
            format_args!(
                "about the same peak for {small_label} and {large_label} (within {})",
                bytes(margin as f64)
            ),
            format_args!(
                "{} for {small_label}, {} for {large_label}",
                bytes(small.peak_delta as f64),
                bytes(large.peak_delta as f64)
            ),
            hint,
        );
    }
}

/// Asserts that the block left at most `tolerance` bytes more allocated than it found.
#[track_caller]
pub fn assert_live_back(what: &str, report: HeapReport, tolerance: usize, hint: &str) {
    if report.live_delta > tolerance as isize {
        report::fail(
            &format!("{what}: memory not given back"),
            format_args!(
                "live heap back to its start (within {})",
                bytes(tolerance as f64)
            ),
            format_args!("{} still allocated", bytes(report.live_delta as f64)),
            hint,
        );
    }
}

/// A byte count for people: `512 B`, `3.0 KiB`, `12.5 MiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
