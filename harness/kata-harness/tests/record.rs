//! The figures `just compare` reads: one file per test, with what the test really did.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use kata_harness::probe::ConcurrencyProbe;
use kata_harness::{TestConfig, ms, run_test};

kata_harness::install_allocator!();

/// The `key=value` lines of the only record in `dir`.
fn only_record(dir: &Path) -> BTreeMap<String, String> {
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one record per test");
    std::fs::read_to_string(files[0].path())
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn a_passing_test_records_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    run_test(
        TestConfig::new("record::passing").record_to(dir.path()),
        || async {
            let probe = ConcurrencyProbe::new();
            let jobs: Vec<_> = (0..3)
                .map(|_| {
                    tokio::spawn(probe.track(async {
                        let buffer = std::hint::black_box(vec![1_u8; 1 << 20]);
                        tokio::time::sleep(ms(1000)).await;
                        drop(buffer);
                    }))
                })
                .collect();
            for job in jobs {
                job.await.unwrap();
            }
        },
    );
    let record = only_record(dir.path());
    assert_eq!(record["outcome"], "passed");
    assert_eq!(
        record["virtual_ns"], "1000000000",
        "exact, on the paused clock"
    );
    assert_eq!(record["max_concurrency"], "3");
    let peak: usize = record["peak_heap"].parse().unwrap();
    assert!((3 << 20..4 << 20).contains(&peak), "3 MiB at once: {peak}");
    let real: u64 = record["real_ns"].parse().unwrap();
    assert!(
        real < 1_000_000_000,
        "a virtual second is not a real one: {real} ns"
    );
    // This test runs on libtest's thread, which carries the test's name.
    assert_eq!(record["test"], "a_passing_test_records_its_figures");
}

#[test]
fn failures_and_deadlocks_are_recorded_as_such() {
    for (ending, body) in [("failed", (|| panic!("boom")) as fn()), ("deadlock", || {})] {
        let dir = tempfile::tempdir().unwrap();
        let config = TestConfig::new("record::ending")
            .virtual_limit(ms(500))
            .record_to(dir.path());
        let result = catch_unwind(AssertUnwindSafe(|| {
            run_test(config, move || async move {
                tokio::time::sleep(ms(20)).await;
                body();
                std::future::pending::<()>().await;
            });
        }));
        assert!(result.is_err(), "{ending}: the test must fail");
        let record = only_record(dir.path());
        assert_eq!(record["outcome"], ending);
        let expected = if ending == "failed" {
            "20000000"
        } else {
            "500000000"
        };
        assert_eq!(record["virtual_ns"], expected, "{ending}");
        assert!(
            !record.contains_key("max_concurrency"),
            "no probe, no figure"
        );
    }
}
