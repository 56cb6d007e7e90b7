//! In-process figures for the gzip kata (`cargo bench -p kata-benches --bench gzip`): the three
//! functions on an 8 MiB text file, beside flate2 compressing the same bytes in memory, which is
//! the floor: what is left above it is the cost of the files, the pipeline and the runtime.
//!
//! The comparison with the `gzip` tool, each side a process of its own, is the `bench` binary.

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::BytesCount;
use tempfile::TempDir;
use tokio::runtime::Runtime;

fn main() {
    divan::main();
}

const SIZE: usize = 8 * 1024 * 1024;

/// The input, as bytes and as files, made once.
struct Fixture {
    dir: TempDir,
    data: Vec<u8>,
    text: PathBuf,
    gz: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = kata_harness::data::text(SIZE);
        let text = dir.path().join("input.txt");
        let gz = dir.path().join("input.txt.gz");
        std::fs::write(&text, &data).expect("write the input");
        std::fs::write(&gz, in_memory(&data)).expect("write the gzip input");
        Fixture {
            dir,
            data,
            text,
            gz,
        }
    })
}

fn in_memory(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzEncoder::new(data, flate2::Compression::new(gzip_streams::LEVEL))
        .read_to_end(&mut out)
        .expect("compressing in memory cannot fail");
    out
}

/// A runtime like the tests' and the bench binary's: one thread, plus the blocking pool.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn flate2_in_memory(bencher: Bencher<'_, '_>) {
    let fixture = fixture();
    bencher
        .counter(BytesCount::new(SIZE))
        .bench(|| in_memory(&fixture.data));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn gzip_buffered(bencher: Bencher<'_, '_>) {
    let (fixture, runtime) = (fixture(), runtime());
    let dst = fixture.dir.path().join("buffered.gz");
    bencher.counter(BytesCount::new(SIZE)).bench_local(|| {
        runtime
            .block_on(gzip_streams::gzip_buffered(&fixture.text, &dst))
            .expect("gzip_buffered")
    });
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn gzip_streaming(bencher: Bencher<'_, '_>) {
    let (fixture, runtime) = (fixture(), runtime());
    let dst = fixture.dir.path().join("streaming.gz");
    bencher.counter(BytesCount::new(SIZE)).bench_local(|| {
        runtime
            .block_on(gzip_streams::gzip_streaming(&fixture.text, &dst))
            .expect("gzip_streaming")
    });
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn gunzip_streaming(bencher: Bencher<'_, '_>) {
    let (fixture, runtime) = (fixture(), runtime());
    let dst = fixture.dir.path().join("streaming.txt");
    bencher.counter(BytesCount::new(SIZE)).bench_local(|| {
        runtime
            .block_on(gzip_streams::gunzip_streaming(&fixture.gz, &dst))
            .expect("gunzip_streaming")
    });
}
