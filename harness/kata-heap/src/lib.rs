//! Heap counters per test: live bytes and peak bytes around a block of code, a memory ceiling,
//! and samples of the process's resident memory.
//!
//! A crate installs [`CountingAllocator`] with [`install_allocator!`]. It forwards every call to
//! the system allocator and adds or subtracts the size in an **account**. Process-wide counters
//! would be useless in tests: the test runner runs tests in parallel, and one test's allocations
//! would land in another's figures. So each thread counts in its own account, except the threads
//! of a kata test: the test harness opens one account per test and joins to it the test's thread
//! *and* its runtime's blocking pool, where `tokio::fs` and `spawn_blocking` do their work. A file
//! read whole by `tokio::fs::read` is counted like one read on the test's own thread.
//!
//! A test's account can carry a **ceiling** ([`Account::open_with_limit`]). A thread that
//! allocates past it is stopped right there, inside the allocator, and never runs again: a
//! learner's leak cannot fill the machine's memory, and the harness, which watches the account,
//! fails the test with the figures.
//!
//! This crate is small on purpose (no tokio, no test harness): the memory-leak-listener kata's
//! own code measures with [`HeapScope`] and [`RssSampler`].
//!
//! Two things to know when measuring:
//! - **Warm up first.** The first call of anything may allocate lazily-built statics (tokio's
//!   timer wheel, thread-locals) that stay alive; run the operation once before measuring.
//! - Memory allocated on a thread outside the test (`std::thread::spawn`) is counted in that
//!   thread's own account, and memory such a thread frees makes a figure look higher than it is.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Duration;

mod rss;

pub use rss::RssSampler;

/// A global allocator that counts live and peak heap bytes per account (see the crate docs).
///
/// Install it with [`install_allocator!`].
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

/// Live and peak bytes of one thread, or of every thread joined to one test.
#[derive(Debug)]
pub struct Account {
    live: AtomicIsize,
    peak: AtomicIsize,
    /// Bytes past which an allocating thread is stopped; 0: no ceiling.
    limit: AtomicIsize,
    exceeded: AtomicBool,
}

impl Account {
    const fn new() -> Self {
        Self {
            live: AtomicIsize::new(0),
            peak: AtomicIsize::new(0),
            limit: AtomicIsize::new(0),
            exceeded: AtomicBool::new(false),
        }
    }

    /// A new account for one test. It is leaked (a few bytes per test): threads of the test's
    /// blocking pool may outlive the test's own thread for a moment, and a `'static` account is
    /// what lets the allocator reach it without reference counting.
    pub fn open() -> &'static Self {
        Box::leak(Box::new(Self::new()))
    }

    /// [`open`](Self::open), with a ceiling: a thread of this account that allocates past
    /// `limit` live bytes is stopped inside the allocator (it sleeps for good) and
    /// [`exceeded`](Self::exceeded) turns true, for whoever watches the account to report.
    pub fn open_with_limit(limit: usize) -> &'static Self {
        let account = Self::open();
        account.limit.store(
            isize::try_from(limit).unwrap_or(isize::MAX),
            Ordering::Relaxed,
        );
        account
    }

    /// The highest live figure this account has reached, in bytes.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed).max(0) as usize
    }

    /// Bytes allocated and not yet freed in this account (negative if its threads freed memory
    /// that a thread outside the account allocated).
    pub fn live(&self) -> isize {
        self.live.load(Ordering::Relaxed)
    }

    /// The ceiling, if the account has one.
    pub fn limit(&self) -> Option<usize> {
        match self.limit.load(Ordering::Relaxed) {
            0 => None,
            limit => Some(limit as usize),
        }
    }

    /// Whether a thread of this account went past the ceiling (and was stopped).
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    fn record(&self, delta: isize) {
        let now = self.live.fetch_add(delta, Ordering::Relaxed) + delta;
        self.peak.fetch_max(now, Ordering::Relaxed);
        let limit = self.limit.load(Ordering::Relaxed);
        if delta > 0 && limit > 0 && now > limit {
            self.exceeded.store(true, Ordering::Relaxed);
            stop_this_thread();
        }
    }
}

/// Parks the calling thread for good, without allocating: the allocation that crossed the
/// ceiling never returns, so the code that leaks stops where it stands. Rust cannot kill a
/// thread; a thread that sleeps costs no CPU and no more memory, and dies with the process.
fn stop_this_thread() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
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

/// Set by the first allocation through [`CountingAllocator`], so code that forgot to install
/// it gets told instead of reading zeros.
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn record(delta: isize) {
    with_account(|account| account.record(delta));
}

// SAFETY (the one `unsafe` block of the project, allowed here only): every method forwards its
// arguments unchanged to `System`, which upholds the `GlobalAlloc` contract; the bookkeeping
// around each call only touches atomics and `Cell`s in thread-locals or leaked accounts, never
// the memory being handed out, and never allocates (so it cannot re-enter the allocator). A
// thread past its account's ceiling sleeps inside the call instead of returning, which delays
// the caller forever but breaks no promise: it never unwinds and never returns a bad pointer.
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
/// Write it once at the top of a suite or a binary: `kata_heap::install_allocator!();`
#[macro_export]
macro_rules! install_allocator {
    () => {
        #[global_allocator]
        static KATA_HEAP_ALLOCATOR: $crate::CountingAllocator = $crate::CountingAllocator;
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
    with_account(Account::live).unwrap_or(0)
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
    finished: bool,
}

impl HeapScope {
    /// Starts measuring on this thread's account.
    ///
    /// Panics if [`CountingAllocator`] is not the global allocator: every figure would read 0.
    #[track_caller]
    pub fn start() -> Self {
        assert!(
            is_installed(),
            "heap measurement needs kata_heap::CountingAllocator as the global allocator \
             (every figure would read 0): write `kata_heap::install_allocator!();` (or \
             `kata_harness::install_allocator!();` in a suite) at the top of the crate"
        );
        let start_live = live_bytes();
        // Reset the peak to "now" so this scope sees only its own high-water mark; remember the
        // outer one to restore it.
        let outer_peak = set_peak(start_live);
        Self {
            start_live,
            outer_peak,
            finished: false,
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
    pub fn finish(mut self) -> HeapReport {
        let report = self.report();
        self.restore();
        report
    }

    /// An enclosing scope (and the test's own figures) must still see this block's peak.
    fn restore(&mut self) {
        if !self.finished {
            self.finished = true;
            set_peak(peak_bytes().max(self.outer_peak));
        }
    }
}

impl Drop for HeapScope {
    /// A scope dropped without `finish` (a panic in the measured block) still gives the peak
    /// back to its enclosing scope.
    fn drop(&mut self) {
        self.restore();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(3.0 * 1024.0), "3.0 KiB");
        assert_eq!(bytes(12.5 * 1024.0 * 1024.0), "12.5 MiB");
        assert_eq!(bytes(-2048.0), "-2.0 KiB");
    }

    #[test]
    fn an_account_without_a_limit_has_none() {
        let account = Account::open();
        assert_eq!(account.limit(), None);
        assert!(!account.exceeded());
        let limited = Account::open_with_limit(1 << 20);
        assert_eq!(limited.limit(), Some(1 << 20));
    }
}
