//! The counting allocator: exact per-thread figures, even with tests running in parallel.

kata_harness::install_allocator!();

use kata_harness::heap::{self, HeapScope};
use kata_harness::{Hint, Stage};

fn h() -> Hint {
    Stage::new("sample", 1).hint("h")
}

#[test]
fn the_allocator_is_installed() {
    assert!(heap::is_installed());
}

#[test]
fn a_kept_allocation_shows_as_live_and_peak() {
    let (kept, report) = heap::measure(|| vec![0_u8; 10_000]);
    assert_eq!(report.live_delta, 10_000);
    assert_eq!(report.peak_delta, 10_000);
    drop(kept);
}

#[test]
fn a_freed_allocation_shows_only_in_the_peak() {
    let ((), report) = heap::measure(|| drop(std::hint::black_box(vec![0_u8; 1 << 20])));
    assert_eq!(report.live_delta, 0);
    assert_eq!(report.peak_delta, 1 << 20);
}

#[test]
fn parallel_threads_do_not_see_each_others_allocations() {
    // Eight threads allocate different amounts at the same time; each sees only its own.
    let handles: Vec<_> = (1..=8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let ((), report) = heap::measure(|| {
                    for _ in 0..100 {
                        kept.push(vec![0_u8; i * 1000]);
                    }
                });
                (i, report, kept.len())
            })
        })
        .collect();
    for handle in handles {
        let (i, report, _) = handle.join().unwrap();
        // The buffers, plus the outer Vec's own growth (its capacity reaches 128 pointers).
        let outer = 128 * std::mem::size_of::<Vec<u8>>();
        assert_eq!(report.peak_delta, i * 1000 * 100 + outer, "thread {i}");
    }
}

#[test]
fn nested_scopes_keep_the_outer_peak() {
    let outer = HeapScope::start();
    drop(std::hint::black_box(vec![0_u8; 50_000]));
    let inner = HeapScope::start();
    drop(std::hint::black_box(vec![0_u8; 1_000]));
    assert_eq!(inner.finish().peak_delta, 1_000);
    assert_eq!(outer.finish().peak_delta, 50_000);
}

#[test]
#[should_panic(
    expected = "buffered copy: peak heap too high\n  expected: below 64.0 KiB\n  actual:   1.0 MiB at the peak"
)]
fn a_peak_over_the_limit_is_caught() {
    let ((), report) = heap::measure(|| drop(std::hint::black_box(vec![0_u8; 1 << 20])));
    heap::assert_peak_below("buffered copy", report, 64 * 1024, &h());
}

#[test]
#[should_panic(expected = "handler: memory not given back")]
fn memory_kept_is_caught() {
    let (kept, report) = heap::measure(|| vec![0_u8; 4096]);
    heap::assert_live_back("handler", report, 1024, &h());
    drop(kept);
}

#[kata_harness::test]
async fn async_code_on_the_test_runtime_is_counted() {
    // Warm up: the first spawn builds runtime internals that stay allocated.
    tokio::spawn(async {}).await.unwrap();
    let (kept, report) =
        heap::measure_async(async { tokio::spawn(async { vec![7_u8; 100_000] }).await.unwrap() })
            .await;
    assert_eq!(kept.len(), 100_000);
    assert!(report.live_delta >= 100_000, "{report:?}");
    assert!(
        report.peak_delta >= 100_000 && report.peak_delta < 110_000,
        "{report:?}"
    );
}

#[kata_harness::test]
async fn allocations_on_the_blocking_pool_are_counted() {
    // Warm up: the first blocking call starts the pool's thread.
    tokio::task::spawn_blocking(|| ()).await.unwrap();
    let (kept, report) = heap::measure_async(async {
        tokio::task::spawn_blocking(|| vec![1_u8; 1 << 20])
            .await
            .unwrap()
    })
    .await;
    assert_eq!(kept.len(), 1 << 20);
    assert!(report.live_delta >= 1 << 20, "{report:?}");
    assert!(report.peak_delta >= 1 << 20, "{report:?}");
}

#[kata_harness::test]
async fn a_whole_file_read_by_tokio_fs_is_counted() {
    // The lesson the file katas need: `tokio::fs::read` allocates the whole file on a blocking
    // thread, and a per-test figure must still see it.
    let path = std::env::temp_dir().join(format!("kata-harness-heap-{}", std::process::id()));
    std::fs::write(&path, vec![b'x'; 2 << 20]).unwrap();
    tokio::fs::read(&path).await.unwrap();
    let (contents, report) = heap::measure_async(tokio::fs::read(&path)).await;
    std::fs::remove_file(&path).unwrap();
    assert_eq!(contents.unwrap().len(), 2 << 20);
    assert!(report.peak_delta >= 2 << 20, "{report:?}");
}

#[test]
fn peaks_about_the_same_for_two_sizes_pass() {
    let report = |peak| heap::HeapReport {
        live_delta: 0,
        peak_delta: peak,
    };
    heap::assert_peak_independent(
        "copy",
        ("1 MiB", report(30_000)),
        ("4 MiB", report(31_000)),
        4096,
        &h(),
    );
}

#[test]
#[should_panic(
    expected = "read whole: peak heap changed with the input's size\n  expected: about the same peak for 1 MiB and 4 MiB (within 4.0 KiB)\n  actual:   1.0 MiB for 1 MiB, 4.0 MiB for 4 MiB"
)]
fn a_peak_that_grows_with_the_input_is_caught() {
    let report = |peak| heap::HeapReport {
        live_delta: 0,
        peak_delta: peak,
    };
    heap::assert_peak_independent(
        "read whole",
        ("1 MiB", report(1 << 20)),
        ("4 MiB", report(4 << 20)),
        4096,
        &h(),
    );
}
