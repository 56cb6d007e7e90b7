//! The gzip-streams kata's suite, run against both `exercises/gzip-streams` and
//! `solutions/gzip-streams`: the kata's precise specification.
//!
//! Every test works on files in a fresh temporary directory. Output is checked with independent
//! decoders (flate2's own, and the system's `gzip` tool where there is one), and input made by the
//! `gzip` tool is fed to ours. Memory is measured with the harness's per-test heap counters, which
//! count the test's blocking pool too; the large files are written and checked block by block, so
//! a test's recorded peak is the code's own. Named pipes stand in for slow sources, and a
//! file-size limit for a disk that fills up. Stage by stage, the tests reject the usual wrong
//! answers: output that is not gzip or not at level 6, bytes lost on a short write, compression or
//! a blocking read on the runtime's thread, a "stream" that holds the whole file (or lets an
//! unbounded channel fill up), a destination written in place or left half written, a temporary
//! file left behind, put elsewhere or shared by two calls, a bare file name taken for no
//! directory, a write error that hangs the pipeline or is reported as another stage's, a last
//! write never flushed, truncated input accepted as complete, and an error that names the wrong
//! file or the wrong problem.

kata_harness::install_allocator!();

#[path = "gzip-streams/support.rs"]
mod support;

use std::time::Duration;

use gzip_streams::{gunzip_streaming, gzip_buffered, gzip_streaming};
use kata_harness::completion::completes_within;
use kata_harness::data::NumberedLog;
use kata_harness::files::{Gate, TestDir, check_left_alone, check_listing, read_output};
use kata_harness::report::{check, check_bytes, check_eq, check_stream, fail, show_bytes};
use kata_harness::{Stage, data, heap, in_own_process, ms, stress};
use support::Function::{self, GunzipStreaming, GzipBuffered, GzipStreaming};
use support::{
    Fill, Input, KIB, Kind, MIB, Source, TOOL_GZ, TOOL_TEXT, append_garbage, change_the_crc,
    change_the_length, change_the_method, check_bad_input, check_error, check_gz_file,
    check_io_kind, check_level, check_off_the_runtime_thread, check_slow_source, cost_of, decode,
    expect_ok, file_size_limit_here, flate2_gzip, gzip_tool, measured_on_log, overflowing_source,
    overwrite_the_middle, peak_for, runtime_cost, sample_gz, skip_without_gzip, split,
};

const STAGE1: Stage = Stage::new("gzip-streams", 1);
const STAGE2: Stage = Stage::new("gzip-streams", 2);

// ---------------------------------------------------------------------------------------------
// Stage 1: gzip_buffered reads src whole, gzips it at level 6 off the runtime's thread, and
// writes the result to a temporary file beside dst, which it renames onto dst.
//
//   src --read whole--> bytes --GzEncoder (spawn_blocking)--> gzip --temp file--rename--> dst

#[kata_harness::test]
#[case::empty(Input::Empty)]
#[case::one_byte(Input::OneByte)]
#[case::text_line(Input::TextLine)]
#[case::every_byte_value(Input::EveryByteValue)]
#[case::text(Input::Text(300 * KIB))]
#[case::random(Input::Random(MIB))]
// More than tokio's File takes in one write (2 MiB): a `write` that is not `write_all` loses
// the rest.
#[case::more_than_one_write_takes(Input::Random(3 * MIB))]
async fn stage1_gzip_buffered_writes_gzip_that_decodes_to_the_input(#[case] input: Input) {
    let dir = TestDir::new();
    let data = input.bytes();
    let src = dir.write("data", &data);
    let written = expect_ok(
        &format!("gzip_buffered(data, data.gz) with data = {input}"),
        gzip_buffered(&src, dir.path("data.gz")).await,
        &STAGE1.hint(NOTHING_FAILS),
    );
    let gz = read_output(&dir, "data.gz", &STAGE1.hint(RENAME_ONTO_DST));
    let decoded = decode(
        &format!("data.gz, made from {input}"),
        &gz,
        &STAGE1.hint(FINISH_IT),
    );
    check_bytes(
        &format!("data.gz decoded by flate2 ({input})"),
        &decoded,
        &data,
        &STAGE1.hint(
            "the decoded bytes are not src's: compress all of src, as it was read, once; and \
             write every compressed byte with write_all (one write may take only part of a \
             buffer: tokio's File takes at most 2 MiB per write)",
        ),
    );
    check_eq(
        "gzip_buffered's result",
        written,
        gz.len() as u64,
        &STAGE1.hint(WRITTEN),
    );
    check_listing(
        &dir,
        &["data", "data.gz"],
        "the call",
        &STAGE1.hint(NO_STRAYS),
    );
}

#[kata_harness::test]
async fn stage1_the_gzip_tool_reads_what_gzip_buffered_writes() {
    let dir = TestDir::new();
    let data = data::text(200 * KIB);
    let src = dir.write("log.txt", &data);
    let dst = dir.path("log.txt.gz");
    expect_ok(
        "gzip_buffered(log.txt, log.txt.gz)",
        gzip_buffered(&src, &dst).await,
        &STAGE1.hint(NOTHING_FAILS),
    );
    let Some(decoded) = gzip_tool(&["-d", "-c", &dst.to_string_lossy()]) else {
        return skip_without_gzip("decoding gzip_buffered's output with `gzip -d`");
    };
    let decoded = decoded.unwrap_or_else(|why| {
        fail(
            "`gzip -d -c log.txt.gz`: the tool rejects it",
            why,
            "the tool decodes the file",
            &STAGE1.hint(FINISH_IT),
        )
    });
    check_bytes(
        "log.txt.gz decoded by `gzip -d`",
        &decoded,
        &data,
        &STAGE1.hint(
            "the gzip tool decodes your file to other bytes than src's: compress all of src, \
             exactly as it was read, into one gzip stream",
        ),
    );
}

#[kata_harness::test]
async fn stage1_gzip_buffered_compresses_at_level_6() {
    let dir = TestDir::new();
    let data = data::text(256 * KIB);
    let src = dir.write("log.txt", &data);
    expect_ok(
        "gzip_buffered(log.txt, log.txt.gz)",
        gzip_buffered(&src, dir.path("log.txt.gz")).await,
        &STAGE1.hint(NOTHING_FAILS),
    );
    let gz = read_output(&dir, "log.txt.gz", &STAGE1.hint(RENAME_ONTO_DST));
    decode("log.txt.gz", &gz, &STAGE1.hint(FINISH_IT));
    check_level(
        "log.txt.gz, 256 KiB of text gzipped by gzip_buffered",
        &gz,
        &data,
        &STAGE1.hint(LEVEL_6),
    );
}

#[kata_harness::test]
async fn stage1_gzip_buffered_replaces_dst_with_a_rename() {
    let dir = TestDir::new();
    let data = data::text(100 * KIB);
    let src = dir.write("data", &data);
    let dst = dir.write("data.gz", "an older data.gz");
    // A second name for the old file. Writing dst in place changes what both names show;
    // renaming a new file onto dst leaves the old one, and so this name, alone.
    std::fs::hard_link(&dst, dir.path("old.gz")).expect("cannot make a hard link");
    expect_ok(
        "gzip_buffered(data, data.gz) where data.gz exists",
        gzip_buffered(&src, &dst).await,
        &STAGE1.hint("an existing dst is replaced, not an error"),
    );
    let gz = read_output(&dir, "data.gz", &STAGE1.hint(RENAME_ONTO_DST));
    check_bytes(
        "data.gz after gzip_buffered, decoded",
        &decode("data.gz after gzip_buffered", &gz, &STAGE1.hint(FINISH_IT)),
        &data,
        &STAGE1.hint("the new data.gz holds the gzip of src and nothing of the old file"),
    );
    check_bytes(
        "old.gz (a hard link to the old data.gz) after gzip_buffered",
        &dir.read("old.gz"),
        "an older data.gz",
        &STAGE1.hint(IN_PLACE),
    );
    check_listing(
        &dir,
        &["data", "data.gz", "old.gz"],
        "the call",
        &STAGE1.hint(NO_STRAYS),
    );
}

#[kata_harness::test]
#[case::missing("missing.txt")]
#[case::a_directory("folder")]
async fn stage1_a_source_that_cannot_be_read_is_a_read_error(#[case] name: &str) {
    let dir = TestDir::new();
    dir.mkdir("folder");
    let (src, dst) = (dir.path(name), dir.write("out.gz", "precious"));
    check_error(
        &dir,
        &format!("gzip_buffered({name}, out.gz)"),
        gzip_buffered(&src, &dst).await,
        (Kind::Read, &src),
        &STAGE1.hint(READ_ERROR),
    );
    check_left_alone(
        &dir,
        ("out.gz", Some(b"precious")),
        &["folder", "out.gz"],
        "the failed call",
        &STAGE1.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
#[case::in_a_missing_directory("no-such-dir/data.gz")]
#[case::a_directory("folder")]
async fn stage1_a_destination_that_cannot_be_written_is_a_write_error(#[case] name: &str) {
    let dir = TestDir::new();
    dir.mkdir("folder");
    let (src, dst) = (dir.write("data", "some data"), dir.path(name));
    check_error(
        &dir,
        &format!("gzip_buffered(data, {name})"),
        gzip_buffered(&src, &dst).await,
        (Kind::Write, &dst),
        &STAGE1.hint(WRITE_ERROR),
    );
    check_listing(
        &dir,
        &["data", "folder"],
        "the failed call",
        &STAGE1.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
async fn stage1_when_src_and_dst_both_fail_the_source_s_error_wins() {
    let dir = TestDir::new();
    let (src, dst) = (dir.path("missing.txt"), dir.path("no-such-dir/data.gz"));
    check_error(
        &dir,
        "gzip_buffered(missing.txt, no-such-dir/data.gz): two errors at once",
        gzip_buffered(&src, &dst).await,
        (Kind::Read, &src),
        &STAGE1.hint(SOURCE_FIRST),
    );
    check_listing(&dir, &[], "the failed call", &STAGE1.hint(LEFT_ALONE));
}

// A process of its own: the one place where changing the current directory cannot disturb
// the other tests, which run on threads of one process.
#[kata_harness::test(own_process)]
async fn stage1_bare_file_names_are_in_the_current_directory() {
    let dir = TestDir::new();
    let data = data::text(100 * KIB);
    dir.write("data", &data);
    if in_own_process() {
        std::env::set_current_dir(dir.root()).expect("cannot change the current directory");
    }
    expect_ok(
        "gzip_buffered(\"data\", \"data.gz\"), in data's directory",
        gzip_buffered("data", "data.gz").await,
        &STAGE1.hint(BARE_NAMES),
    );
    let gz = read_output(&dir, "data.gz", &STAGE1.hint(RENAME_ONTO_DST));
    check_bytes(
        "data.gz, decoded",
        &decode("data.gz", &gz, &STAGE1.hint(FINISH_IT)),
        &data,
        &STAGE1.hint("the gzip of src, in the current directory"),
    );
    check_listing(
        &dir,
        &["data", "data.gz"],
        "the call",
        &STAGE1.hint(NO_STRAYS),
    );
}

#[kata_harness::test]
async fn stage1_src_and_dst_may_be_the_same_file() {
    let dir = TestDir::new();
    let data = data::text(100 * KIB);
    let path = dir.write("data", &data);
    expect_ok(
        "gzip_buffered(data, data)",
        gzip_buffered(&path, &path).await,
        &STAGE1.hint(SAME_FILE),
    );
    let gz = read_output(&dir, "data", &STAGE1.hint(RENAME_ONTO_DST));
    check_bytes(
        "data after gzip_buffered(data, data), decoded",
        &decode(
            "data after gzip_buffered(data, data)",
            &gz,
            &STAGE1.hint(FINISH_IT),
        ),
        &data,
        &STAGE1.hint(SAME_FILE),
    );
    check_listing(&dir, &["data"], "the call", &STAGE1.hint(NO_STRAYS));
}

// A disk that fills up: the test runs in a child process whose files cannot grow past 128 KiB,
// and gzip_buffered's output is one byte more than that, so the very last byte it writes fails.
// tokio's File hands each write to the blocking pool and says how it went only at the next
// write, or at `flush`.
#[kata_harness::test(file_size_limit = 131072)]
async fn stage1_a_destination_that_fills_up_is_a_write_error() {
    let dir = TestDir::new();
    let limit = file_size_limit_here(&dir).expect("this test runs under a file-size limit");
    let Source { path: src, .. } =
        overflowing_source(&dir, GzipBuffered, Fill::AtTheLastByte, limit);
    let dst = dir.write("output", "precious");
    let what = "gzip_buffered(input, output), where output fills up at its very last byte";
    let error = check_error(
        &dir,
        what,
        gzip_buffered(&src, &dst).await,
        (Kind::Write, &dst),
        &STAGE1.hint(FLUSH),
    );
    check_io_kind(
        what,
        &error,
        std::io::ErrorKind::FileTooLarge,
        &STAGE1.hint(IO_SOURCE),
    );
    check_left_alone(
        &dir,
        ("output", Some(b"precious")),
        &["input", "output"],
        "the failed call",
        &STAGE1.hint(LEFT_ALONE),
    );
}

/// The runtime's thread may spend at most this share of what (de)compressing the same bytes
/// takes. Both sides are CPU time of the test's thread where the system says (Linux), so a
/// machine busy with other work slows both alike instead of counting the time the thread waits
/// for a CPU (tokio's busy time does, and made this check fail under load). Compressing on the
/// runtime's thread costs about 1x; the reference's pipeline, about 0.01x.
const OFF_THREAD_SHARE: u32 = 3;

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_gzip_buffered_compresses_off_the_runtime_thread() {
    let dir = TestDir::new();
    let data = data::text(4 * MIB);
    let (src, dst) = (dir.write("log.txt", &data), dir.path("log.txt.gz"));
    // Warm up: the blocking pool starts its first thread.
    let warm_up = dir.write("warm-up", "warm up");
    expect_ok(
        "gzip_buffered(warm-up, log.txt.gz)",
        gzip_buffered(&warm_up, &dst).await,
        &STAGE1.hint(NOTHING_FAILS),
    );
    let compressing = cost_of(|| drop(flate2_gzip(&data, 6)));
    let (result, cost) = runtime_cost(gzip_buffered(&src, &dst)).await;
    expect_ok(
        "gzip_buffered(log.txt, log.txt.gz)",
        result,
        &STAGE1.hint(NOTHING_FAILS),
    );
    check_off_the_runtime_thread(
        "gzip_buffered of 4 MiB of text",
        cost,
        ("compressing", compressing),
        OFF_THREAD_SHARE,
        &STAGE1.hint(SPAWN_BLOCKING),
    );
}

// On the real clock, with a source that pauses between its parts (a named pipe whose writer
// waits, as a slow disk or network would):
//
//   source:      part 1 ── 300 ms ── part 2 ── 300 ms ── part 3, end
//   heartbeat:   ♥ every 1 ms, never 150 ms late        (a blocking read: 300 ms late, twice)

#[kata_harness::test(real_time)]
async fn stage1_gzip_buffered_does_not_block_while_the_source_is_slow() {
    // Real time: while tokio::fs waits on the blocking pool the paused clock stands still, so
    // the heartbeat could not beat beside a correct read either.
    check_slow_source(GzipBuffered, &STAGE1.hint(BLOCKING_READ)).await;
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_gzip_buffered_holds_the_whole_file_in_memory() {
    let dir = TestDir::new();
    let dst = dir.path("output");
    let ok = STAGE1.hint(NOTHING_FAILS);
    measured_on_log(GzipBuffered, &dir, ("warm-up", 64 * KIB), &dst, &ok).await;
    let mut figures = Vec::new();
    for (name, len) in [("log-8MiB", 8 * MIB), ("log-32MiB", 32 * MIB)] {
        let (_, report) = measured_on_log(GzipBuffered, &dir, (name, len), &dst, &ok).await;
        figures.push(peak_for(name, len, report));
        check(
            &format!("gzip_buffered's peak heap for {name}"),
            report.peak_delta >= len,
            heap::bytes(report.peak_delta as f64),
            format_args!("at least the input's size, {}", heap::bytes(len as f64)),
            &STAGE1.hint(
                "stage 1 is the buffered version on purpose: read the whole file \
                 (tokio::fs::read), compress it in memory, write the result; streaming is \
                 stage 2, and the figures of both are the lesson",
            ),
        );
    }
    eprintln!("gzip_buffered: peak heap {}", figures.join(", "));
}

// ---------------------------------------------------------------------------------------------
// Stage 2: gzip_streaming and gunzip_streaming, pipelines of three stages at work at once.
//
//   src --> reader ==[bounded channel]==> (de)compressor ==[bounded channel]==> writer --> temp
//           async, tokio::fs              spawn_blocking, flate2                async       file
//   then, on success only: temp file --rename--> dst

#[kata_harness::test]
#[case::empty(Input::Empty)]
#[case::one_byte(Input::OneByte)]
#[case::text_line(Input::TextLine)]
#[case::every_byte_value(Input::EveryByteValue)]
#[case::one_chunk_of_random(Input::Random(64 * KIB))]
#[case::one_chunk_and_a_byte_of_text(Input::Text(64 * KIB + 1))]
#[case::text(Input::Text(300 * KIB))]
#[case::random(Input::Random(MIB))]
async fn stage2_gzip_and_gunzip_streaming_round_trip(#[case] input: Input) {
    let dir = TestDir::new();
    let data = input.bytes();
    let src = dir.write("data", &data);
    let (gz, back) = (dir.path("data.gz"), dir.path("data.back"));
    let written = expect_ok(
        &format!("gzip_streaming(data, data.gz) with data = {input}"),
        gzip_streaming(&src, &gz).await,
        &STAGE2.hint(NOTHING_FAILS),
    );
    let compressed = read_output(&dir, "data.gz", &STAGE2.hint(RENAME_ONTO_DST));
    check_bytes(
        &format!("gzip_streaming's data.gz decoded by flate2 ({input})"),
        &decode(
            &format!("data.gz, made by gzip_streaming from {input}"),
            &compressed,
            &STAGE2.hint(ONE_STREAM),
        ),
        &data,
        &STAGE2.hint(CHUNKS),
    );
    check_eq(
        "gzip_streaming's result",
        written,
        compressed.len() as u64,
        &STAGE2.hint(WRITTEN),
    );

    let written = expect_ok(
        &format!("gunzip_streaming(data.gz, data.back) with data = {input}"),
        gunzip_streaming(&gz, &back).await,
        &STAGE2.hint(NOTHING_FAILS),
    );
    check_bytes(
        &format!("data.back, gunzip_streaming's output ({input})"),
        &read_output(&dir, "data.back", &STAGE2.hint(RENAME_ONTO_DST)),
        &data,
        &STAGE2.hint(CHUNKS),
    );
    check_eq(
        "gunzip_streaming's result",
        written,
        data.len() as u64,
        &STAGE2.hint(WRITTEN),
    );
    check_listing(
        &dir,
        &["data", "data.back", "data.gz"],
        "the calls",
        &STAGE2.hint(NO_STRAYS),
    );
}

#[kata_harness::test]
async fn stage2_gunzip_streaming_reads_what_the_gzip_tool_writes() {
    let dir = TestDir::new();
    let src = dir.write("tool.txt.gz", TOOL_GZ);
    expect_ok(
        "gunzip_streaming(tool.txt.gz, tool.txt), a file `gzip -9` made",
        gunzip_streaming(&src, dir.path("tool.txt")).await,
        &STAGE2.hint(
            "the gzip tool's header carries the file's name and time: let flate2's decoder \
             parse the whole header rather than skipping a fixed 10 bytes",
        ),
    );
    check_bytes(
        "tool.txt, decoded from what `gzip -9` made",
        &read_output(&dir, "tool.txt", &STAGE2.hint(RENAME_ONTO_DST)),
        TOOL_TEXT,
        &STAGE2.hint(CHUNKS),
    );

    // A larger file, made by the tool here and now, where there is one.
    let data = data::text(MIB);
    let plain = dir.write("big.txt", &data);
    let Some(made) = gzip_tool(&["-6", "-c", &plain.to_string_lossy()]) else {
        return skip_without_gzip("decoding 1 MiB that `gzip -6` compresses now");
    };
    let gz = dir.write("big.txt.gz", made.expect("the gzip tool compresses a file"));
    expect_ok(
        "gunzip_streaming(big.txt.gz, big.txt.back), 1 MiB of text `gzip -6` made",
        gunzip_streaming(&gz, dir.path("big.txt.back")).await,
        &STAGE2.hint(NOTHING_FAILS),
    );
    check_bytes(
        "big.txt.back, decoded from what `gzip -6` made",
        &read_output(&dir, "big.txt.back", &STAGE2.hint(RENAME_ONTO_DST)),
        &data,
        &STAGE2.hint(CHUNKS),
    );
}

#[kata_harness::test]
async fn stage2_the_gzip_tool_reads_what_gzip_streaming_writes() {
    let dir = TestDir::new();
    let data = [data::text(300 * KIB), data::random_bytes(5, 300 * KIB)].concat();
    let (src, dst) = (dir.write("mixed", &data), dir.path("mixed.gz"));
    expect_ok(
        "gzip_streaming(mixed, mixed.gz)",
        gzip_streaming(&src, &dst).await,
        &STAGE2.hint(NOTHING_FAILS),
    );
    let Some(decoded) = gzip_tool(&["-d", "-c", &dst.to_string_lossy()]) else {
        return skip_without_gzip("decoding gzip_streaming's output with `gzip -d`");
    };
    let decoded = decoded.unwrap_or_else(|why| {
        fail(
            "`gzip -d -c mixed.gz`: the tool rejects it",
            why,
            "the tool decodes the file",
            &STAGE2.hint(ONE_STREAM),
        )
    });
    check_bytes(
        "mixed.gz decoded by `gzip -d`",
        &decoded,
        &data,
        &STAGE2.hint(CHUNKS),
    );
}

#[kata_harness::test]
async fn stage2_gzip_streaming_compresses_at_level_6() {
    let dir = TestDir::new();
    let data = data::text(256 * KIB);
    let src = dir.write("log.txt", &data);
    expect_ok(
        "gzip_streaming(log.txt, log.txt.gz)",
        gzip_streaming(&src, dir.path("log.txt.gz")).await,
        &STAGE2.hint(NOTHING_FAILS),
    );
    let gz = read_output(&dir, "log.txt.gz", &STAGE2.hint(RENAME_ONTO_DST));
    decode("log.txt.gz", &gz, &STAGE2.hint(ONE_STREAM));
    check_level(
        "log.txt.gz, 256 KiB of text gzipped by gzip_streaming",
        &gz,
        &data,
        &STAGE2.hint(LEVEL_6),
    );
}

#[kata_harness::test]
async fn stage2_gunzip_streaming_decodes_every_member_of_a_file() {
    let dir = TestDir::new();
    let (first, second) = (data::text(100 * KIB), data::random_bytes(6, 100 * KIB));
    // `cat a.gz b.gz > both.gz` is valid gzip: two members, which decode to a then b.
    let both = [flate2_gzip(&first, 6), flate2_gzip(&second, 1)].concat();
    let src = dir.write("both.gz", both);
    let written = expect_ok(
        "gunzip_streaming(both.gz, both), both.gz = two gzip files one after the other",
        gunzip_streaming(&src, dir.path("both")).await,
        &STAGE2.hint(
            "a gzip file may hold several members one after the other: decode them all \
             (flate2's MultiGzDecoder) instead of calling what follows the first corrupt",
        ),
    );
    let expected = [first, second].concat();
    check_bytes(
        "both, decoded from two gzip members",
        &read_output(&dir, "both", &STAGE2.hint(RENAME_ONTO_DST)),
        &expected,
        &STAGE2.hint(
            "a gzip file is a series of members, and `gzip -d` decodes them all: use flate2's \
             MultiGzDecoder; GzDecoder stops after the first",
        ),
    );
    check_eq(
        "gunzip_streaming's result",
        written,
        expected.len() as u64,
        &STAGE2.hint(WRITTEN),
    );
}

/// The streaming versions' peak heap must stay below this, whatever the file's size. A few
/// 64 KiB chunks in two bounded channels plus zlib's state (a few hundred KiB to compress, less
/// to decompress) come to about 1 MiB; the limit leaves room for bigger chunks or deeper
/// channels, and none for a copy of an 8 MiB file.
const STREAMING_LIMIT: usize = 4 * MIB;
/// How much the streaming peak may differ between an 8 MiB and a 32 MiB file: a few chunks,
/// depending on which stage happens to be ahead.
const SAME_PEAK: usize = 512 * KIB;

#[kata_harness::test(watchdog_secs = 30)]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
async fn stage2_memory_does_not_grow_with_the_file(#[case] function: Function) {
    let dir = TestDir::new();
    let dst = dir.path("output");
    let ok = STAGE2.hint(NOTHING_FAILS);
    // Warm up: the first run starts the blocking pool's threads and builds lazily-made statics,
    // which stay and are not the run's to pay for.
    measured_on_log(function, &dir, ("warm-up", 64 * KIB), &dst, &ok).await;
    let (_, small) = measured_on_log(function, &dir, ("log-8MiB", 8 * MIB), &dst, &ok).await;
    let (written, large) =
        measured_on_log(function, &dir, ("log-32MiB", 32 * MIB), &dst, &ok).await;
    check_eq(
        &format!("{function}(log-32MiB, output)'s result"),
        written,
        std::fs::metadata(&dst).map_or(0, |meta| meta.len()),
        &STAGE2.hint(WRITTEN),
    );
    let (small_label, large_label) = ("log-8MiB (8 MiB)", "log-32MiB (32 MiB)");
    eprintln!(
        "{function}: peak heap {} for {small_label}, {} for {large_label}",
        heap::bytes(small.peak_delta as f64),
        heap::bytes(large.peak_delta as f64)
    );
    let hint = STAGE2.hint(HOLDS_IT);
    heap::assert_peak_below(
        &format!("{function} of {large_label}"),
        large,
        STREAMING_LIMIT,
        &hint,
    );
    heap::assert_peak_independent(
        &function.to_string(),
        (small_label, small),
        (large_label, large),
        SAME_PEAK,
        &hint,
    );
    let what = format!("output, what {function} made of 32 MiB of log lines");
    let (hint, unreadable) = (STAGE2.hint(CHUNKS), STAGE2.hint(ONE_STREAM));
    let expected = NumberedLog::new(32 * MIB);
    if function.gzips() {
        check_gz_file(&what, &dst, expected, &hint, &unreadable);
    } else {
        let file = std::fs::File::open(&dst).expect("cannot open the output");
        check_stream(
            &what,
            std::io::BufReader::new(file),
            expected,
            &hint,
            &unreadable,
        );
    }
}

// Only compressing: decompressing is about as fast as the pipeline's own reads and writes
// around it, so no share of its cost tells the two apart (the reference's runtime thread spends
// about half of what decompressing takes on them).
#[kata_harness::test(watchdog_secs = 30)]
async fn stage2_gzip_streaming_compresses_off_the_runtime_thread() {
    let dir = TestDir::new();
    let data = data::text(4 * MIB);
    let (src, dst) = (dir.write("log.txt", &data), dir.path("log.txt.gz"));
    let warm_up = dir.write("warm-up", "warm up");
    expect_ok(
        "gzip_streaming(warm-up, log.txt.gz)",
        gzip_streaming(&warm_up, &dst).await,
        &STAGE2.hint(NOTHING_FAILS),
    );
    let compressing = cost_of(|| drop(flate2_gzip(&data, 6)));
    let (result, cost) = runtime_cost(gzip_streaming(&src, &dst)).await;
    expect_ok(
        "gzip_streaming(log.txt, log.txt.gz)",
        result,
        &STAGE2.hint(NOTHING_FAILS),
    );
    check_off_the_runtime_thread(
        "gzip_streaming of 4 MiB of text",
        cost,
        ("compressing", compressing),
        OFF_THREAD_SHARE,
        &STAGE2.hint(SPAWN_BLOCKING),
    );
}

#[kata_harness::test]
#[case::empty(b"", "an empty file")]
#[case::one_byte(b"\x1f", "the single byte 1f")]
#[case::text(b"just some text, not compressed\n", "plain text")]
#[case::zip(b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "the start of a zip file")]
#[case::near_miss(b"\x1f\x8c\x08\x00\x00\x00\x00\x00\x00\x03", "1f 8c, one bit off gzip")]
async fn stage2_input_that_is_not_gzip_is_not_gzip(#[case] bytes: &[u8], #[case] what: &str) {
    check_bad_input(bytes, what, Kind::NotGzip, &STAGE2.hint(NOT_GZIP)).await;
}

#[kata_harness::test]
async fn stage2_a_large_input_that_is_not_gzip_is_not_gzip() {
    // The (de)compressor stops at the first two bytes while the reader still has a megabyte to
    // send: its sends fail, and that is not an error of its own.
    check_bad_input(
        &data::text(MIB),
        "1 MiB of plain text",
        Kind::NotGzip,
        &STAGE2.hint(
            "the first two bytes say it all: GzipError::NotGzip. The reader, whose sends fail \
             once the (de)compressor has stopped, stops quietly: a failed send is the other \
             stage's doing, and that stage's own result says why",
        ),
    )
    .await;
}

#[kata_harness::test]
#[case::after_the_magic_bytes(|_| 2, "its first 2 bytes (1f 8b)")]
#[case::in_the_header(|_| 6, "its first 6 bytes (half a header)")]
#[case::in_the_data(|len| len / 2, "its first half")]
#[case::before_the_trailer(|len| len - 8, "all but its 8-byte trailer")]
#[case::one_byte_short(|len| len - 1, "all but its last byte")]
async fn stage2_truncated_input_is_truncated(#[case] keep: fn(usize) -> usize, #[case] what: &str) {
    let gz = sample_gz();
    check_bad_input(
        &gz[..keep(gz.len())],
        &format!("a gzip file cut short: {what}"),
        Kind::Truncated,
        &STAGE2.hint(
            "input that ends before its gzip stream does is GzipError::Truncated, not a success \
             with part of the data: flate2's read:: and bufread:: decoders report it as an \
             io::Error of kind UnexpectedEof (the write:: decoders call a missing trailer a \
             checksum error)",
        ),
    )
    .await;
}

#[kata_harness::test]
#[case::bad_data(overwrite_the_middle, "damaged compressed data (64 bytes overwritten)")]
#[case::bad_crc(change_the_crc, "a CRC-32 that does not match")]
#[case::bad_length(change_the_length, "a length that does not match")]
#[case::bad_method(change_the_method, "an unknown compression method in the header")]
#[case::trailing_garbage(append_garbage, "bytes that are not gzip after the end of the stream")]
async fn stage2_corrupt_input_is_corrupt(
    #[case] damage: fn(Vec<u8>) -> Vec<u8>,
    #[case] what: &str,
) {
    check_bad_input(
        &damage(sample_gz()),
        &format!("gzip with {what}"),
        Kind::Corrupt,
        &STAGE2.hint(
            "gzip data the decoder rejects (bad compressed data, a bad header, a checksum or \
             length that does not match, anything after the last member) is GzipError::Corrupt \
             with the decoder's message as the reason: flate2 reports these as io::Errors of \
             kind InvalidInput",
        ),
    )
    .await;
}

#[kata_harness::test]
#[case::gzip_a_missing_file(GzipStreaming, "missing.txt")]
#[case::gzip_a_directory(GzipStreaming, "folder")]
#[case::gunzip_a_missing_file(GunzipStreaming, "missing.txt")]
#[case::gunzip_a_directory(GunzipStreaming, "folder")]
async fn stage2_a_source_that_cannot_be_read_is_a_read_error(
    #[case] function: Function,
    #[case] name: &str,
) {
    let dir = TestDir::new();
    dir.mkdir("folder");
    let (src, dst) = (dir.path(name), dir.write("out", "precious"));
    check_error(
        &dir,
        &format!("{function}({name}, out)"),
        function.run(&src, &dst).await,
        (Kind::Read, &src),
        &STAGE2.hint(
            "an error opening or reading src is GzipError::Read { path: src, .. }. A directory \
             opens, and fails at the first read: the reader's error then comes first, before \
             whatever the (de)compressor made of an input that ended at once. Look at the \
             stages' results in pipeline order: read, then (de)compress, then write",
        ),
    );
    check_left_alone(
        &dir,
        ("out", Some(b"precious")),
        &["folder", "out"],
        "the failed call",
        &STAGE2.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
#[case::gzip_into_a_missing_directory(GzipStreaming, "no-such-dir/output")]
#[case::gzip_onto_a_directory(GzipStreaming, "folder")]
#[case::gunzip_into_a_missing_directory(GunzipStreaming, "no-such-dir/output")]
#[case::gunzip_onto_a_directory(GunzipStreaming, "folder")]
async fn stage2_a_destination_that_cannot_be_written_is_a_write_error(
    #[case] function: Function,
    #[case] name: &str,
) {
    let dir = TestDir::new();
    dir.mkdir("folder");
    let src = dir.write("input", function.input_for(b"some data"));
    let dst = dir.path(name);
    check_error(
        &dir,
        &format!("{function}(input, {name})"),
        function.run(&src, &dst).await,
        (Kind::Write, &dst),
        &STAGE2.hint(WRITE_ERROR),
    );
    check_listing(
        &dir,
        &["folder", "input"],
        "the failed call",
        &STAGE2.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
async fn stage2_when_src_and_dst_both_fail_the_source_s_error_wins(#[case] function: Function) {
    let dir = TestDir::new();
    let (src, dst) = (dir.path("missing"), dir.path("no-such-dir/output"));
    check_error(
        &dir,
        &format!("{function}(missing, no-such-dir/output): two errors at once"),
        function.run(&src, &dst).await,
        (Kind::Read, &src),
        &STAGE2.hint(SOURCE_FIRST),
    );
    check_listing(&dir, &[], "the failed call", &STAGE2.hint(LEFT_ALONE));
}

#[kata_harness::test]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
async fn stage2_dst_is_replaced_with_a_rename(#[case] function: Function) {
    let dir = TestDir::new();
    let data = data::text(200 * KIB);
    let src = dir.write("input", function.input_for(&data));
    let dst = dir.write("output", "an older output");
    std::fs::hard_link(&dst, dir.path("old")).expect("cannot make a hard link");
    expect_ok(
        &format!("{function}(input, output) where output exists"),
        function.run(&src, &dst).await,
        &STAGE2.hint("an existing dst is replaced, not an error"),
    );
    let output = read_output(&dir, "output", &STAGE2.hint(RENAME_ONTO_DST));
    check_bytes(
        &format!("output after {function} (decoded if gzip)"),
        &function.decoded("output", &output, &STAGE2.hint(ONE_STREAM)),
        &data,
        &STAGE2.hint("the new output holds what src stands for and nothing of the old file"),
    );
    check_bytes(
        &format!("old (a hard link to the old output) after {function}"),
        &dir.read("old"),
        "an older output",
        &STAGE2.hint(IN_PLACE),
    );
    check_listing(
        &dir,
        &["input", "old", "output"],
        "the call",
        &STAGE2.hint(NO_STRAYS),
    );
}

#[kata_harness::test(own_process)]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
// A process of its own, as for stage 1's test: the one place where changing the current
// directory cannot disturb other tests.
async fn stage2_bare_file_names_are_in_the_current_directory(#[case] function: Function) {
    let dir = TestDir::new();
    let data = data::text(100 * KIB);
    dir.write("input", function.input_for(&data));
    if in_own_process() {
        std::env::set_current_dir(dir.root()).expect("cannot change the current directory");
    }
    expect_ok(
        &format!("{function}(\"input\", \"output\"), in input's directory"),
        function.run("input", "output").await,
        &STAGE2.hint(BARE_NAMES),
    );
    let output = read_output(&dir, "output", &STAGE2.hint(RENAME_ONTO_DST));
    check_bytes(
        "output, decoded if gzip",
        &function.decoded("output", &output, &STAGE2.hint(ONE_STREAM)),
        &data,
        &STAGE2.hint(CHUNKS),
    );
    check_listing(
        &dir,
        &["input", "output"],
        "the call",
        &STAGE2.hint(NO_STRAYS),
    );
}

#[kata_harness::test]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
async fn stage2_src_and_dst_may_be_the_same_file(#[case] function: Function) {
    let dir = TestDir::new();
    let data = data::text(300 * KIB);
    let path = dir.write("data", function.input_for(&data));
    expect_ok(
        &format!("{function}(data, data)"),
        function.run(&path, &path).await,
        &STAGE2.hint(SAME_FILE),
    );
    let output = read_output(&dir, "data", &STAGE2.hint(RENAME_ONTO_DST));
    check_bytes(
        &format!("data after {function}(data, data), decoded if gzip"),
        &function.decoded("data", &output, &STAGE2.hint(ONE_STREAM)),
        &data,
        &STAGE2.hint(SAME_FILE),
    );
    check_listing(&dir, &["data"], "the call", &STAGE2.hint(NO_STRAYS));
}

// Two calls at once, onto the same dst, on a runtime with two worker threads:
//
//   call a:   a --> temp file 1 ─────────────┐ rename
//   call b:   b --> temp file 2 ───────────────┐ rename
//   dst:      a's output, then b's (or the other way round): whole either way

#[kata_harness::test]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
async fn stage2_two_calls_at_once_onto_one_dst_do_not_mix(#[case] function: Function) {
    let dir = TestDir::new();
    let (a, b) = (data::text(MIB), data::random_bytes(7, MIB));
    let (src_a, src_b) = (
        dir.write("a", function.input_for(&a)),
        dir.write("b", function.input_for(&b)),
    );
    let dst = dir.path("out");
    let (first, second) = stress::on_multi_thread(2, {
        let dst = dst.clone();
        move || async move { tokio::join!(function.run(src_a, &dst), function.run(src_b, &dst)) }
    })
    .await;
    let hint = STAGE2.hint(
        "two calls at once must not share anything: give each its own temporary file (tempfile \
         makes a unique name; a name made from dst, like dst + \".tmp\", is the same for both), \
         so that each renames its own complete output onto dst",
    );
    expect_ok(&format!("{function}(a, out)"), first, &hint);
    expect_ok(
        &format!("{function}(b, out), at the same time"),
        second,
        &hint,
    );
    let out = read_output(&dir, "out", &STAGE2.hint(RENAME_ONTO_DST));
    let out = function.decoded("out", &out, &hint);
    check(
        "out, after two calls at once",
        out == a || out == b,
        format_args!("{}, neither a's nor b's", show_bytes(&out)),
        "what a or b stands for, whole",
        &hint,
    );
    check_listing(
        &dir,
        &["a", "b", "out"],
        "both calls",
        &STAGE2.hint(NO_STRAYS),
    );
}

// On the real clock, with a source that gives half its bytes and then waits for the test:
//
//   source:   first half ─────────────────── (waits) ...
//   call:     reads, (de)compresses, writes a temporary file beside dst ──┤ dropped
//   checks:   (1) during the call: dst as it was, one temporary file beside it
//             (2) 300 ms after the drop: dst as it was, no temporary file

#[kata_harness::test(real_time)]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
async fn stage2_a_call_dropped_half_way_leaves_dst_alone(#[case] function: Function) {
    // Real time: while the call waits for the pipe on the blocking pool the paused clock stands
    // still, and this test must let real time pass, during the call and after it.
    let dir = TestDir::new();
    let input = function.input_for(&data::random_bytes(8, 2 * MIB));
    let Source { path: src, feeder } = Source::start(&dir, "input", split(&input, 2), Gate::Test);
    let dst = dir.write("output", "precious");
    let Some(mut feeder) = feeder else {
        // No named pipes here: the source is a plain file, and the call cannot be cut half way.
        expect_ok(
            &format!("{function}"),
            function.run(&src, &dst).await,
            &STAGE2.hint(NOTHING_FAILS),
        );
        return;
    };
    let what = format!("{function}(input, output), with half its input in");
    let mut call = Box::pin(function.run(&src, &dst));
    let finished = |result: Result<u64, _>| -> ! {
        fail(
            &format!("{what}: finished"),
            dir.short(result),
            "still waiting for the rest of the input",
            &STAGE2.hint(
                "the call finished with half its input: a pipe that waits is not at its end, \
                 and a read that gives less than a chunk is not the end either (only a read of \
                 0 bytes is)",
            ),
        )
    };
    tokio::select! {
        result = &mut call => finished(result),
        () = feeder.written(1) => {}
    }
    // A moment for the call to get on with the first half.
    tokio::select! {
        result = &mut call => finished(result),
        () = tokio::time::sleep(ms(100)) => {}
    }
    check_bytes(
        &format!("output while {what}"),
        &dir.read("output"),
        "precious",
        &STAGE2.hint(IN_PLACE),
    );
    let listing = dir.listing();
    check(
        &format!("the files in the directory while {what}"),
        listing.len() == 3,
        format_args!("{listing:?}"),
        "input, output, and the call's temporary file",
        &STAGE2.hint(
            "write the temporary file in dst's directory (tempfile_in(dst's directory)), not \
             in the system's temporary directory: a rename is atomic only within one file \
             system, and /tmp is often another",
        ),
    );
    drop(call);
    // The pipe closes: anything still reading it sees its end, and could now finish the job.
    drop(feeder);
    tokio::time::sleep(ms(300)).await;
    check_left_alone(
        &dir,
        ("output", Some(b"precious")),
        &["input", "output"],
        &format!("{function} was dropped half way"),
        &STAGE2.hint(
            "dropping the future must stop the work and delete the temporary file: keep the \
             TempPath in the future (dropping it deletes the file) and run the reader and \
             writer inside it (tokio::join!), not as detached tokio::spawn tasks that carry on \
             and rename onto dst after the caller gave up",
        ),
    );
}

#[kata_harness::test(real_time, file_size_limit = 131072)]
#[case::gzip_half_way(GzipStreaming, Fill::HalfWay)]
#[case::gzip_at_the_last_byte(GzipStreaming, Fill::AtTheLastByte)]
#[case::gunzip_half_way(GunzipStreaming, Fill::HalfWay)]
#[case::gunzip_at_the_last_byte(GunzipStreaming, Fill::AtTheLastByte)]
// A disk that fills up: the test runs in a child process whose files cannot grow past 128 KiB.
// Half way, megabytes of output are still to come when the writer fails; at the last byte, only
// `flush` can tell (see stage 1's test).
async fn stage2_a_destination_that_fills_up_is_a_write_error(
    #[case] function: Function,
    #[case] fill: Fill,
) {
    // Real time: a pipeline that hangs once its writer failed waits on the blocking pool,
    // which holds the paused clock still: only a real-time limit can say that it hangs.
    let dir = TestDir::new();
    let limit = file_size_limit_here(&dir).expect("this test runs under a file-size limit");
    let source = overflowing_source(&dir, function, fill, limit);
    let dst = dir.write("output", "precious");
    let what = format!("{function}(input, output), where output fills up {fill}");
    let result = completes_within(
        &what,
        function.run(&source.path, &dst),
        Duration::from_secs(2),
        &STAGE2.hint(
            "the call never returned once its writer failed: a stage that stops must drop its \
             channel ends. An `async { .. }` block without `move` only borrows its receiver, \
             which then lives on after the writer stopped, and the (de)compressor waits for \
             ever for room in a full channel: move each channel end into the stage that owns \
             it (async move)",
        ),
    )
    .await;
    let hint = match fill {
        Fill::HalfWay => STAGE2.hint(
            "the writer's error is the cause, so it is the one to report: GzipError::Write { \
             path: dst, .. }. The other stages only see its consequence (a send that fails): \
             they stop quietly (Ok) instead of reporting a BrokenPipe of their own",
        ),
        Fill::AtTheLastByte => STAGE2.hint(FLUSH),
    };
    let error = check_error(&dir, &what, result, (Kind::Write, &dst), &hint);
    check_io_kind(
        &what,
        &error,
        std::io::ErrorKind::FileTooLarge,
        &STAGE2.hint(IO_SOURCE),
    );
    check_left_alone(
        &dir,
        ("output", Some(b"precious")),
        &["input", "output"],
        "the failed call",
        &STAGE2.hint(LEFT_ALONE),
    );
}

// On the real clock, with a source that pauses between its parts, as for stage 1:
//
//   source:      part 1 ── 300 ms ── part 2 ── 300 ms ── part 3, end
//   heartbeat:   ♥ every 1 ms, never 150 ms late        (a blocking read: 300 ms late, twice)

#[kata_harness::test(real_time)]
#[case::gzip(GzipStreaming)]
#[case::gunzip(GunzipStreaming)]
async fn stage2_does_not_block_while_the_source_is_slow(#[case] function: Function) {
    // Real time: while tokio::fs waits on the blocking pool the paused clock stands still, so
    // the heartbeat could not beat beside a correct read either.
    check_slow_source(function, &STAGE2.hint(BLOCKING_READ)).await;
}

// ---------------------------------------------------------------------------------------------
// Hints that several tests give

/// For a call that should have succeeded.
const NOTHING_FAILS: &str = "an existing, readable src into a dst in an existing directory: \
                             nothing here should fail, and the error says which step did";
/// For gzip that flate2 cannot read back, stage 1.
const FINISH_IT: &str = "flate2 cannot read it back. Cut short: call finish() on the encoder \
                         (it writes the last block and the 8-byte trailer) and write every byte \
                         with write_all. Not gzip at all: use GzEncoder, not ZlibEncoder or \
                         DeflateEncoder (other formats)";
/// For gzip that flate2 cannot read back, stage 2.
const ONE_STREAM: &str = "one gzip stream for the whole file: one encoder, fed every chunk in \
                          order and finished once at the end (which writes the trailer), and \
                          every chunk of its output written, in order, the last one too";
/// For bytes that differ from what they should be, stage 2.
const CHUNKS: &str = "the bytes differ from what they should be: every chunk once, in order, \
                      the last one too, and only the bytes a read returned (&buf[..n], not the \
                      whole buffer); the report says where the first difference is";
/// For a wrong return value.
const WRITTEN: &str = "return the number of bytes written to dst (for gunzip, the uncompressed \
                       size), counted as they are written";
const RENAME_ONTO_DST: &str = "write the output to a temporary file in dst's directory, then \
                               rename it onto dst (TempPath::persist)";
const NO_STRAYS: &str = "the temporary file is renamed onto dst on success and deleted on \
                         failure: tempfile's NamedTempFile / TempPath deletes itself when \
                         dropped; nothing else may be left in dst's directory";
const IN_PLACE: &str = "never write into dst itself (File::create(dst) empties it at once): \
                        write a temporary file in dst's directory \
                        (tempfile::Builder::new().tempfile_in(dir)) and rename it onto dst once \
                        everything has been written and flushed";
const LEFT_ALONE: &str = "write into a temporary file beside dst, rename it onto dst only once \
                          everything has succeeded, and let it be deleted on failure (a TempPath \
                          deletes its file when dropped): a failure leaves dst exactly as it \
                          was, and nothing else behind";
const READ_ERROR: &str = "an error opening or reading src is GzipError::Read { path: src, .. }";
const WRITE_ERROR: &str = "an error creating, writing or renaming the output (its temporary \
                           file included) is GzipError::Write { path: dst, .. }, and the \
                           temporary file is deleted";
const SOURCE_FIRST: &str = "when src cannot be read and dst cannot be written either, the \
                            error is src's: open src before you create anything for dst (the \
                            README says which comes first)";
const BARE_NAMES: &str = "a bare file name is in the current directory: its parent() is \
                          Some(\"\"), which means \".\" (Path::new(\"\").exists() is false, and \
                          canonicalize(\"\") fails)";
const SAME_FILE: &str = "src and dst may be the same file: read src through, write the output \
                         to a temporary file, and rename it onto dst only at the end; opening \
                         dst for writing first would empty src before it was read";
const FLUSH: &str = "the last write failed (the disk is full) and the call must say so: \
                     GzipError::Write { path: dst, .. }. tokio's File hands each write to the \
                     blocking pool and returns at once, so the last one's error only shows at \
                     flush(): flush the file, and check the result, before renaming it";
const IO_SOURCE: &str = "keep the io::Error the write failed with as GzipError::Write's \
                         source (here \"File too large\"): it is what tells the user why";
const NOT_GZIP: &str = "input that does not start with the gzip magic bytes 1f 8b (an empty \
                        file included) is GzipError::NotGzip: check the first two bytes \
                        yourself, before decoding; flate2 calls them an \"invalid gzip \
                        header\", like any other bad header";
const LEVEL_6: &str = "compress at level 6, gzip's default, as the README promises: \
                       Compression::new(LEVEL) or Compression::default(), not fast() (1), \
                       best() (9) or another level";
const SPAWN_BLOCKING: &str = "(de)compressing is CPU work with no .await in it: run it inside \
                              tokio::task::spawn_blocking, so that the runtime's thread stays \
                              free for other tasks";
const BLOCKING_READ: &str = "a read that waits for a slow source held the runtime's thread: read \
                             src with tokio::fs (or inside spawn_blocking), never with std::fs \
                             in async code, where a wait stops every other task";
const HOLDS_IT: &str = "stream it: read a chunk, hand it on, read the next; bounded channels \
                        (tokio::sync::mpsc::channel(n)) between the stages, so a stage that is \
                        ahead waits instead of piling chunks up in memory; never read_to_end, \
                        tokio::fs::read or an unbounded_channel";
