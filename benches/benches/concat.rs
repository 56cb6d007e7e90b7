//! `concat_files` in process, measured by divan: 4 files of 8 MiB (in the page cache) into one,
//! and the engine under it, `concat_read_ahead`, with 0, 1 and 4 sources read ahead.
//!
//! `cargo bench -p kata-benches --bench concat`. For the comparison with `cat`, see the
//! `concat-files-bench` binary (`just bench-io`).

use std::path::PathBuf;

use concat_files::{concat_files, concat_read_ahead};
use divan::Bencher;
use divan::counter::BytesCount;
use kata_harness::data::random_bytes;
use tempfile::TempDir;
use tokio::runtime::Runtime;

const MIB: usize = 1024 * 1024;
const FILES: usize = 4;
const FILE_SIZE: usize = 8 * MIB;

fn main() {
    divan::main();
}

/// A directory with the source files, filled with pseudo-random bytes.
fn sources() -> (TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let paths = (0..FILES)
        .map(|i| {
            let data = random_bytes(i as u64, FILE_SIZE);
            let path = dir.path().join(format!("source-{i}.bin"));
            std::fs::write(&path, data).expect("a source file");
            path
        })
        .collect();
    (dir, paths)
}

#[divan::bench(sample_count = 20)]
fn concat_files_4_x_8_mib(bencher: Bencher<'_, '_>) {
    let (dir, paths) = sources();
    let dst = dir.path().join("out.bin");
    let runtime = Runtime::new().expect("a tokio runtime");
    bencher
        .counter(BytesCount::new(FILES * FILE_SIZE))
        .bench_local(|| {
            runtime
                .block_on(concat_files(&paths, &dst))
                .expect("concat_files")
        });
}

#[divan::bench(args = [0, 1, 4], sample_count = 20)]
fn concat_read_ahead_4_x_8_mib(bencher: Bencher<'_, '_>, read_ahead: usize) {
    let (dir, paths) = sources();
    let dst = dir.path().join("out.bin");
    let runtime = Runtime::new().expect("a tokio runtime");
    bencher
        .counter(BytesCount::new(FILES * FILE_SIZE))
        .bench_local(|| {
            runtime.block_on(async {
                let mut files = Vec::new();
                for path in &paths {
                    files.push(tokio::fs::File::open(path).await.expect("a source"));
                }
                let mut out = tokio::fs::File::create(&dst).await.expect("the output");
                concat_read_ahead(files, &mut out, read_ahead)
                    .await
                    .expect("concat_read_ahead")
            })
        });
}
