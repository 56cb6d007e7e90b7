//! A destination that fills up: `file_size_limit` runs a test in a child process whose writes
//! fail past the limit, the way a full disk fails them, and relays the child's result.

use kata_harness::files::TestDir;
use kata_harness::report::check_eq;
use kata_harness::{Stage, file_size_limited};

#[kata_harness::test(file_size_limit = 65536)]
async fn a_write_past_the_limit_fails_as_a_full_disk_would() {
    if !file_size_limited() {
        return eprintln!("skipped: no file-size limits here");
    }
    let dir = TestDir::new();
    tokio::fs::write(dir.path("small"), vec![1_u8; 1000])
        .await
        .expect("a small file fits");
    let error = tokio::fs::write(dir.path("large"), vec![1_u8; 1 << 20])
        .await
        .expect_err("a file past the limit does not");
    assert_eq!(error.kind(), std::io::ErrorKind::FileTooLarge, "{error}");
}

#[kata_harness::test(file_size_limit = 65536)]
#[should_panic(expected = "in the child\n  expected: 2\n  actual:   1")]
async fn a_failure_in_the_child_is_the_test_s_failure() {
    check_eq("in the child", 1, 2, &Stage::new("sample", 1).hint("h"));
}

#[kata_harness::test(own_process)]
async fn a_test_in_its_own_process_may_change_the_current_directory() {
    assert!(
        kata_harness::in_own_process(),
        "the test runs in a child process"
    );
    let dir = TestDir::new();
    std::env::set_current_dir(dir.root()).expect("cannot change directory");
    tokio::fs::write("here.txt", "relative").await.unwrap();
    assert_eq!(dir.read("here.txt").as_deref(), Some(&b"relative"[..]));
}
