//! The gzip-upload kata's suite, run against both `exercises/gzip-upload` and
//! `solutions/gzip-upload`: the kata's precise specification.
//!
//! Stage 1 feeds the core, `receive`, from a client on the far end of a `tokio::io::duplex`, on
//! the paused clock, so every instant is exact; stage 2 talks HTTP/1.1 to the server byte by
//! byte, over duplex for the protocol and over 127.0.0.1 on the real clock for what only a real
//! socket shows (load, a client that hangs up, shutdown); stage 3 runs the client against the
//! server. Large bodies are made and checked block by block, so a test's recorded peak heap is
//! the code's own. A file-size limit stands in for a disk that fills up. Stage by stage, the
//! tests reject the usual wrong answers: a body buffered whole, output held back until the end,
//! decompression on the runtime's thread or on a blocking thread that waits for the client (which
//! stops the paused clock), a cap counted on the compressed size only, counted after the writing,
//! off by one, or checked once the whole body is in, an error that waits for the rest of the
//! body, not-gzip / truncated / corrupt mixed up, a destination written in place or left half
//! written, a temporary file left behind or shared by two uploads, a failed write never flushed;
//! a name that escapes the directory, statuses mixed up, a Content-Length over the cap read
//! anyway, a wait for a slot where a 503 is due, a slot never given back, a shutdown that keeps
//! accepting, cuts uploads at once, waits for ever, starts its deadline again whenever a
//! connection ends, or leaves tasks behind; a client that reads its source whole or runs ahead
//! of its connection, compresses on the runtime's thread or without flushing, ends a body whose
//! source failed instead of aborting it, or reports the HTTP failure instead of its source's.

kata_harness::install_allocator!();

#[path = "gzip-upload/support.rs"]
mod support;

use std::io::{ErrorKind, Write};
use std::time::Duration;

use gzip_upload::{
    CHUNK_SIZE, Cap, ClientError, Limits, RETRY_AFTER_SECS, Server, Shutdown, UploadError, receive,
    upload,
};
use kata_harness::completion::completes_within;
use kata_harness::data::NumberedLog;
use kata_harness::files::{TestDir, check_left_alone, check_listing, read_output};
use kata_harness::leaks::TaskBaseline;
use kata_harness::report::{check, check_bytes, check_eq, check_seq, fail, show_bytes};
use kata_harness::timing::{At, assert_elapsed};
use kata_harness::{Stage, blocking, data, heap, ms};
use support::{
    Answer, Broken, Counted, Damage, Input, KIB, Kind, Loopback, MIB, ROOMY, Ready, Req, Zeros,
    ask, check_error, check_file, check_io_kind, check_limit, connect, eventually, expect_ok,
    file_size_limit_here, gzip, gzip_log, letters, others, pipe, receive_gz, recorded_connection,
    request_head, sample_gz, sample_output, send_body, settings, size, within_real_time, zip_bomb,
};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

const STAGE1: Stage = Stage::new("gzip-upload", 1);
const STAGE2: Stage = Stage::new("gzip-upload", 2);
const STAGE3: Stage = Stage::new("gzip-upload", 3);

// ---------------------------------------------------------------------------------------------
// Stage 1: receive(body, dst, limits) decodes a gzip body as it arrives, chunk by chunk, into a
// temporary file beside dst, renamed onto dst once the body has been decoded whole.
//
//   body --read--> chunks ==> decoder (spawn_blocking, one chunk at a time) ==> writer --> temp --rename--> dst
//        counted against limits.compressed       counted against limits.decompressed

#[kata_harness::test]
#[case::empty(Input::Empty)]
#[case::one_byte(Input::OneByte)]
#[case::text_line(Input::TextLine)]
#[case::every_byte_value(Input::EveryByteValue)]
#[case::text(Input::Text(300 * KIB))]
#[case::random(Input::Random(MIB))]
// More than tokio's File takes in one write (2 MiB), for code that writes more than a chunk at a
// time: a `write` that is not `write_all` loses the rest.
#[case::more_than_one_write_takes(Input::Random(3 * MIB))]
async fn stage1_uploads_round_trip_byte_for_byte(#[case] input: Input) {
    let dir = TestDir::new();
    let data = input.bytes();
    let what = format!("receive(the gzip of {input}, upload)");
    let size = expect_ok(
        &what,
        receive_gz(&gzip(&data, 6), &dir.path("upload"), ROOMY).await,
        &STAGE1.hint(NOTHING_FAILS),
    );
    check_bytes(
        &format!("upload, after {what}"),
        &read_output(&dir, "upload", &STAGE1.hint(RENAME_ONTO_DST)),
        &data,
        &STAGE1.hint(EVERY_BYTE),
    );
    check_eq(
        &format!("{what}'s result"),
        size,
        data.len() as u64,
        &STAGE1.hint("return the decompressed size: the bytes written to dst"),
    );
    check_listing(&dir, &["upload"], "the upload", &STAGE1.hint(NO_STRAYS));
}

// A client sends 10 parts of 1000 bytes, each compressed and flushed, 10 ms apart, and the test
// looks at the directory 5 ms after each:
//
//   client:   part 1   part 2   part 3   ...   part 9   part 10 + end of body
//             10 ms    20 ms    30 ms          90 ms    100 ms
//   on disk:     1000 B   2000 B   3000 B  ...   9000 B        dst: 10000 B, at 100 ms
//   (looked at)  15 ms    25 ms    35 ms         95 ms

#[kata_harness::test]
async fn stage1_output_is_written_as_the_body_arrives() {
    let dir = TestDir::new();
    let (client, body) = pipe();
    let start = Instant::now();
    let parts: Vec<Vec<u8>> = (1..=10)
        .map(|part| format!("[part {part:02}]\n").into_bytes().repeat(100))
        .collect();
    let send = async move {
        let mut client = client;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for (part, bytes) in (1..).zip(&parts) {
            tokio::time::sleep_until(start + ms(10 * part)).await;
            // A sync flush: everything compressed so far can be decoded from what is sent.
            encoder.write_all(bytes).expect("compressing in memory");
            encoder.flush().expect("compressing in memory");
            let _ = client.write_all(&std::mem::take(encoder.get_mut())).await;
        }
        let _ = client
            .write_all(&encoder.finish().expect("in memory"))
            .await;
        parts.concat()
    };
    let looked_at: Vec<_> = (1..=9).map(|part| ms(10 * part + 5)).collect();
    let ((result, sent, samples), returned_at) = within_real_time(
        "receive(a body sent in 10 parts 10 ms apart, upload)",
        async {
            let all = tokio::join!(
                async {
                    let result = receive(body, dir.path("upload"), ROOMY).await;
                    (result, start.elapsed())
                },
                send,
                sample_output(&dir, &["upload"], start, &looked_at),
            );
            ((all.0.0, all.1, all.2), all.0.1)
        },
        Duration::from_secs(2),
        &STAGE1.hint(
            "a spawn_blocking task that waits for the next chunk (a decoder reading the body \
             through SyncIoBridge, or a blocking_recv) stays in flight while the client is \
             slow, and tokio holds the paused clock still meanwhile; it also keeps a pool \
             thread for as long as the slowest client takes. Move the decoder to the blocking \
             pool for one chunk of work at a time: spawn_blocking(move || { decode; (decoder, \
             output) }), and wait for input in async code",
        ),
    )
    .await;
    check_seq(
        "bytes written so far, looked at 5 ms after each part was sent",
        &samples,
        &looked_at
            .iter()
            .zip(1..)
            .map(|(&at, part)| (At(at), 1000 * part))
            .collect::<Vec<_>>(),
        &STAGE1.hint(
            "write each chunk's output as soon as the decoder gives it: not once the body has \
             ended (read it whole, decode it whole), not through a buffer that waits to fill up \
             (a BufWriter of 64 KiB holds these 1000-byte pieces back). Each part was flushed \
             by the client, so everything sent so far can be decoded",
        ),
    );
    let size = expect_ok(
        "receive(a body sent in 10 parts 10 ms apart, upload)",
        result,
        &STAGE1.hint(NOTHING_FAILS),
    );
    check_eq("its result", size, 10_000, &STAGE1.hint(EVERY_BYTE));
    assert_elapsed(
        "receive's return",
        returned_at,
        ms(100),
        &STAGE1.hint("the upload is done when the body ends, at 100 ms, and not later"),
    );
    check_bytes(
        "upload",
        &read_output(&dir, "upload", &STAGE1.hint(RENAME_ONTO_DST)),
        &sent,
        &STAGE1.hint(EVERY_BYTE),
    );
}

/// The streaming version's peak heap must stay below this whatever the upload's size: a few
/// 64 KiB chunks in two bounded channels and zlib's state come to about 1 MiB.
const STREAMING_LIMIT: usize = 4 * MIB;
/// How much the peak may differ between an 8 MiB and a 32 MiB upload: a few chunks, depending on
/// which stage happens to be ahead.
const SAME_PEAK: usize = 512 * KIB;

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_memory_does_not_grow_with_the_upload() {
    let dir = TestDir::new();
    let dst = dir.path("upload");
    let ok = STAGE1.hint(NOTHING_FAILS);
    // Made before they are measured: the test's own bodies are not the code's memory.
    let (small, large) = (gzip_log(8 * MIB), gzip_log(32 * MIB));
    // Warm up: the first run starts the blocking pool's threads and builds lazy statics.
    expect_ok(
        "a first small upload",
        receive_gz(&gzip(b"warm", 1), &dst, ROOMY).await,
        &ok,
    );
    let (result, small_peak) = heap::measure_async(receive_gz(&small, &dst, ROOMY)).await;
    expect_ok("receive(8 MiB of log lines, upload)", result, &ok);
    let (result, large_peak) = heap::measure_async(receive_gz(&large, &dst, ROOMY)).await;
    expect_ok("receive(32 MiB of log lines, upload)", result, &ok);
    let (small_label, large_label) = ("8 MiB of log lines", "32 MiB of log lines");
    eprintln!(
        "receive: peak heap {} for {small_label}, {} for {large_label}",
        heap::bytes(small_peak.peak_delta as f64),
        heap::bytes(large_peak.peak_delta as f64)
    );
    heap::assert_peak_below(
        &format!("receive of {large_label}"),
        large_peak,
        STREAMING_LIMIT,
        &STAGE1.hint(HOLDS_IT),
    );
    heap::assert_peak_independent(
        "receive",
        (small_label, small_peak),
        (large_label, large_peak),
        SAME_PEAK,
        &STAGE1.hint(HOLDS_IT),
    );
    check_file(
        &dir,
        "upload",
        NumberedLog::new(32 * MIB),
        &STAGE1.hint(EVERY_BYTE),
    );
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_output_is_made_in_chunks_even_when_it_compresses_a_thousandfold() {
    // 32 MiB of zeros gzip to 32 KiB: one read of the body. A decoder asked for "everything this
    // chunk gives" hands over 32 MiB at once.
    let dir = TestDir::new();
    let gz = zip_bomb(32);
    let limits = Limits {
        compressed: MIB as u64,
        decompressed: 64 * MIB as u64,
    };
    let what = format!(
        "receive(the gzip of 32 MiB of zeros, {}, upload)",
        size(gz.len())
    );
    let (result, peak) = heap::measure_async(receive_gz(&gz, &dir.path("upload"), limits)).await;
    expect_ok(&what, result, &STAGE1.hint(NOTHING_FAILS));
    heap::assert_peak_below(
        &what,
        peak,
        STREAMING_LIMIT,
        &STAGE1.hint(
            "bound what one round of decoding gives, not only what one read of the body is: a \
             chunk of gzip can decode to a thousand times its size. Read the decoder's output \
             into a buffer of CHUNK_SIZE bytes, hand that on, and come back for more (not \
             read_to_end)",
        ),
    );
    check_file(
        &dir,
        "upload",
        Zeros(32 * MIB as u64),
        &STAGE1.hint(EVERY_BYTE),
    );
}

/// The cap of the zip-bomb test, and the file-size limit it runs under: one chunk more.
const BOMB_CAP: u64 = 8 * MIB as u64;

// 64 MiB of zeros in 64 KiB of gzip, against an 8 MiB cap. The test runs in a child process whose
// files cannot grow past 8 MiB + 64 KiB: code that writes more than the cap and one chunk fails
// with "File too large" instead of stopping at the cap.
#[kata_harness::test(file_size_limit = 8454144, watchdog_secs = 20)]
async fn stage1_a_zip_bomb_is_stopped_at_the_decompressed_cap() {
    assert_eq!(BOMB_CAP + CHUNK_SIZE as u64, 8_454_144);
    let dir = TestDir::new();
    let dst = dir.write("upload", "precious");
    let gz = zip_bomb(64);
    let limits = Limits {
        compressed: MIB as u64,
        decompressed: BOMB_CAP,
    };
    let (client, body) = pipe();
    let what = format!(
        "receive(the gzip of 64 MiB of zeros ({}), upload) with a decompressed cap of 8 MiB",
        size(gz.len())
    );
    // The client sends the bomb and keeps the connection open: the error must not wait for it.
    let send = async move {
        let mut client = client;
        let _ = client.write_all(&gz).await;
        std::future::pending::<()>().await;
    };
    let result = completes_within(
        &what,
        async {
            tokio::select! {
                result = receive(body, &dst, limits) => result,
                () = send => unreachable!(),
            }
        },
        Duration::from_secs(1),
        &STAGE1.hint(WAITS_FOR_THE_END),
    )
    .await;
    let error = check_error(
        &dir,
        &what,
        result,
        Kind::TooLarge(Cap::Decompressed),
        &STAGE1.hint(
            "count the decompressed bytes as the decoder gives them, and stop as soon as the \
             total passes limits.decompressed: a Write error (File too large) here means more \
             than the cap and one chunk reached the disk; Ok means the cap was never checked, \
             or only on the compressed size",
        ),
    );
    check_limit(&what, &error, BOMB_CAP, &STAGE1.hint(LIMIT_IN_ERROR));
    check_left_alone(
        &dir,
        ("upload", Some(b"precious")),
        &["upload"],
        "the refused upload",
        &STAGE1.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
#[case::compressed_at_the_cap(Cap::Compressed, 0, None)]
#[case::compressed_one_over(Cap::Compressed, 1, Some(Kind::TooLarge(Cap::Compressed)))]
#[case::decompressed_at_the_cap(Cap::Decompressed, 0, None)]
#[case::decompressed_one_over(Cap::Decompressed, 1, Some(Kind::TooLarge(Cap::Decompressed)))]
async fn stage1_a_cap_lets_an_upload_of_exactly_its_size_through(
    #[case] cap: Cap,
    #[case] over: u64,
    #[case] expected: Option<Kind>,
) {
    let dir = TestDir::new();
    let data = data::text(300 * KIB);
    let gz = gzip(&data, 6);
    let size_of = |cap| match cap {
        Cap::Compressed => gz.len() as u64,
        Cap::Decompressed => data.len() as u64,
    };
    let limit = size_of(cap) - over;
    let limits = match cap {
        Cap::Compressed => Limits {
            compressed: limit,
            ..ROOMY
        },
        Cap::Decompressed => Limits {
            decompressed: limit,
            ..ROOMY
        },
    };
    let what = format!(
        "receive(a body of {} bytes gzipped, {} decompressed) with a {cap} cap of {limit}",
        gz.len(),
        data.len()
    );
    let result = receive_gz(&gz, &dir.path("upload"), limits).await;
    match expected {
        None => {
            expect_ok(
                &what,
                result,
                &STAGE1.hint(
                    "a cap is the most bytes allowed: an upload of exactly that size is fine \
                     (refuse only when the count goes past it: total > limit)",
                ),
            );
        }
        Some(kind) => {
            let error = check_error(
                &dir,
                &what,
                result,
                kind,
                &STAGE1.hint(
                    "one byte over the cap is over it: count every byte (compressed as read, \
                     decompressed as decoded) and refuse when the total passes the limit",
                ),
            );
            check_limit(&what, &error, limit, &STAGE1.hint(LIMIT_IN_ERROR));
            check_listing(&dir, &[], "the refused upload", &STAGE1.hint(NO_STRAYS));
        }
    }
}

#[kata_harness::test]
async fn stage1_a_body_over_the_compressed_cap_is_refused_before_it_is_read_whole() {
    let dir = TestDir::new();
    // Random bytes stored as they are: gzip, but 4 MiB of it, against a 1 MiB cap.
    let gz = gzip(&data::random_bytes(3, 4 * MIB), 0);
    let cap = MIB as u64;
    let limits = Limits {
        compressed: cap,
        ..ROOMY
    };
    let (client, body) = pipe();
    let what = format!(
        "receive(a body of {}, upload) with a compressed cap of 1 MiB",
        size(gz.len())
    );
    let (result, sent) = tokio::join!(
        receive(body, dir.path("upload"), limits),
        send_body(client, &gz)
    );
    let error = check_error(
        &dir,
        &what,
        result,
        Kind::TooLarge(Cap::Compressed),
        &STAGE1.hint(
            "count the body's bytes as they are read, and stop when the total passes \
             limits.compressed",
        ),
    );
    check_limit(&what, &error, cap, &STAGE1.hint(LIMIT_IN_ERROR));
    // The cap, the read that went past it, and what the connection holds.
    let allowed = cap as usize + 256 * KIB;
    check(
        &format!("{what}: the body the client got in before the refusal"),
        sent <= allowed,
        size(sent),
        format_args!("at most {}: the cap and a little", size(allowed)),
        &STAGE1.hint(
            "check the cap at every read of the body, not once it has all been read: the point \
             of a cap is that a client cannot make the server read (and wait for) more",
        ),
    );
    check_listing(&dir, &[], "the refused upload", &STAGE1.hint(NO_STRAYS));
}

#[kata_harness::test]
#[case::not_gzip(b"this is plain text, not gzip\n".to_vec(), "plain text", Kind::NotGzip)]
#[case::corrupt(
    { let gz = Damage::UnknownMethod.apply(sample_gz()); gz[..gz.len() / 2].to_vec() },
    "the first half of gzip with an unknown compression method",
    Kind::Corrupt
)]
#[case::over_the_compressed_cap(
    gzip(&data::random_bytes(4, 2 * MIB), 0)[..3 * MIB / 2].to_vec(),
    "1.5 MiB, over a compressed cap of 1 MiB",
    Kind::TooLarge(Cap::Compressed)
)]
async fn stage1_an_error_ends_the_upload_without_waiting_for_the_rest_of_the_body(
    #[case] sent: Vec<u8>,
    #[case] what: &str,
    #[case] expected: Kind,
) {
    let dir = TestDir::new();
    let limits = Limits {
        compressed: MIB as u64,
        ..ROOMY
    };
    let (client, body) = pipe();
    // The client sends this much, then goes quiet with the connection open.
    let send = async move {
        let mut client = client;
        let _ = client.write_all(&sent).await;
        std::future::pending::<()>().await;
    };
    let what = format!("receive(a body that starts with {what}, then waits, upload)");
    let result = completes_within(
        &what,
        async {
            tokio::select! {
                result = receive(body, dir.path("upload"), limits) => result,
                () = send => unreachable!(),
            }
        },
        Duration::from_secs(1),
        &STAGE1.hint(WAITS_FOR_THE_END),
    )
    .await;
    check_error(&dir, &what, result, expected, &STAGE1.hint(WHICH_ERROR));
    check_listing(&dir, &[], "the refused upload", &STAGE1.hint(NO_STRAYS));
}

#[kata_harness::test]
#[case::empty(b"".to_vec(), "an empty body", Kind::NotGzip)]
#[case::one_byte(b"\x1f".to_vec(), "the single byte 1f", Kind::NotGzip)]
#[case::text(b"just some text, not compressed\n".to_vec(), "plain text", Kind::NotGzip)]
#[case::zip(b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec(), "the start of a zip file", Kind::NotGzip)]
#[case::near_miss(b"\x1f\x8c\x08\x00\x00\x00\x00\x00\x00\x03".to_vec(), "1f 8c, one bit off gzip", Kind::NotGzip)]
#[case::cut_in_the_header(Damage::CutInTheHeader.apply(sample_gz()), &Damage::CutInTheHeader.to_string(), Kind::Truncated)]
#[case::cut_in_the_data(Damage::CutInTheData.apply(sample_gz()), &Damage::CutInTheData.to_string(), Kind::Truncated)]
#[case::cut_in_the_trailer(Damage::CutInTheTrailer.apply(sample_gz()), &Damage::CutInTheTrailer.to_string(), Kind::Truncated)]
#[case::middle_overwritten(Damage::MiddleOverwritten.apply(sample_gz()), &Damage::MiddleOverwritten.to_string(), Kind::Corrupt)]
#[case::crc_changed(Damage::CrcChanged.apply(sample_gz()), &Damage::CrcChanged.to_string(), Kind::Corrupt)]
#[case::length_changed(Damage::LengthChanged.apply(sample_gz()), &Damage::LengthChanged.to_string(), Kind::Corrupt)]
#[case::unknown_method(Damage::UnknownMethod.apply(sample_gz()), &Damage::UnknownMethod.to_string(), Kind::Corrupt)]
#[case::garbage_after_the_end(Damage::GarbageAfterTheEnd.apply(sample_gz()), &Damage::GarbageAfterTheEnd.to_string(), Kind::Corrupt)]
async fn stage1_not_gzip_truncated_and_corrupt_are_told_apart(
    #[case] body: Vec<u8>,
    #[case] what: &str,
    #[case] expected: Kind,
) {
    let dir = TestDir::new();
    let dst = dir.write("upload", "precious");
    let what = format!("receive({what}, upload)");
    check_error(
        &dir,
        &what,
        receive_gz(&body, &dst, ROOMY).await,
        expected,
        &STAGE1.hint(match expected {
            Kind::NotGzip => NOT_GZIP,
            Kind::Truncated => TRUNCATED,
            _ => CORRUPT,
        }),
    );
    check_left_alone(
        &dir,
        ("upload", Some(b"precious")),
        &["upload"],
        "the refused upload",
        &STAGE1.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
#[case::gzip(gzip(b"split after its first byte\n", 6), None)]
#[case::one_bit_off(b"\x1f\x8c\x08\x00\x00\x00\x00\x00\x00\x03 and more".to_vec(), Some(Kind::NotGzip))]
async fn stage1_the_magic_bytes_are_checked_even_when_they_come_in_two_reads(
    #[case] body: Vec<u8>,
    #[case] expected: Option<Kind>,
) {
    let dir = TestDir::new();
    let (mut client, reader) = pipe();
    // The first byte alone, then the rest 1 ms later: the first read of the body gets one byte.
    let send = async move {
        let _ = client.write_all(&body[..1]).await;
        tokio::time::sleep(ms(1)).await;
        let _ = client.write_all(&body[1..]).await;
    };
    let what = format!(
        "receive(upload) of a body whose first byte comes alone: {}",
        if expected.is_some() {
            "1f, then 8c ..."
        } else {
            "1f, then 8b ..."
        }
    );
    let (result, ()) = tokio::join!(receive(reader, dir.path("upload"), ROOMY), send);
    match expected {
        None => drop(expect_ok(&what, result, &STAGE1.hint(NOT_GZIP))),
        Some(kind) => drop(check_error(
            &dir,
            &what,
            result,
            kind,
            &STAGE1.hint(NOT_GZIP),
        )),
    }
}

#[kata_harness::test]
#[case::several_members(
    [gzip(b"first member\n", 6), gzip(b"second member\n", 1)].concat(),
    b"first member\nsecond member\n".to_vec(),
    "a body of two gzip members one after the other (cat a.gz b.gz)"
)]
#[case::made_by_the_gzip_tool(
    support::TOOL_GZ.to_vec(),
    support::TOOL_TEXT.as_bytes().to_vec(),
    "gzip made by the gzip tool, with a file name and a time in its header"
)]
async fn stage1_any_valid_gzip_is_decoded(
    #[case] body: Vec<u8>,
    #[case] expected: Vec<u8>,
    #[case] what: &str,
) {
    let dir = TestDir::new();
    let what = format!("receive({what}, upload)");
    expect_ok(
        &what,
        receive_gz(&body, &dir.path("upload"), ROOMY).await,
        &STAGE1.hint(
            "a gzip file may hold several members (decode them all: MultiGzDecoder), and its \
             header may carry a name, a time or a comment (let flate2 parse the header)",
        ),
    );
    check_bytes(
        &format!("upload, after {what}"),
        &read_output(&dir, "upload", &STAGE1.hint(RENAME_ONTO_DST)),
        &expected,
        &STAGE1.hint(
            "every member is decoded, one after the other, as `gzip -d` does: GzDecoder stops \
             after the first, MultiGzDecoder reads them all",
        ),
    );
}

#[kata_harness::test]
async fn stage1_a_client_whose_connection_breaks_leaves_dst_untouched() {
    let dir = TestDir::new();
    let dst = dir.write("upload", "precious");
    let gz = sample_gz();
    let half = gz[..gz.len() / 2].to_vec();
    let what = "receive(a body whose connection breaks half way, upload)";
    let error = check_error(
        &dir,
        what,
        receive(Broken::new(half, ErrorKind::ConnectionReset), &dst, ROOMY).await,
        Kind::Body,
        &STAGE1.hint(
            "an error reading the body is UploadError::Body(the io::Error): the client went \
             away, which is not the same as a body that ends early (a truncated gzip)",
        ),
    );
    check_io_kind(
        what,
        &error,
        ErrorKind::ConnectionReset,
        &STAGE1.hint("keep the io::Error the read failed with inside UploadError::Body"),
    );
    check_left_alone(
        &dir,
        ("upload", Some(b"precious")),
        &["upload"],
        "the broken upload",
        &STAGE1.hint(LEFT_ALONE),
    );
}

//   client:   half the body                      (then nothing: it went away)
//             0 ms
//   server:   receive(..) dropped at 50 ms       dst untouched, no temp file, at 50 ms and at 1050 ms

#[kata_harness::test]
async fn stage1_an_upload_dropped_half_way_leaves_dst_untouched() {
    let dir = TestDir::new();
    let dst = dir.write("upload", "precious");
    let gz = gzip(&data::text(2 * MIB), 1);
    let (mut client, body) = pipe();
    let what = "receive(upload) dropped half way through its body";
    let mut call = Box::pin(receive(body, &dst, ROOMY));
    let half = &gz[..gz.len() / 2];
    tokio::select! {
        result = &mut call => fail(
            &format!("{what}: finished"),
            format_args!("{result:?}"),
            "still waiting for the rest of the body",
            &STAGE1.hint("the body has not ended: only a read of 0 bytes is its end"),
        ),
        _ = async {
            let _ = client.write_all(half).await;
            tokio::time::sleep(ms(50)).await;
        } => {}
    }
    check(
        &format!("the files in the directory while {what}"),
        others(&dir, &["upload"]).len() == 1,
        format_args!("{:?}", dir.listing()),
        "upload, and the upload's temporary file beside it",
        &STAGE1.hint(
            "write into a temporary file in dst's directory (tempfile_in), created when the \
             upload starts: a rename is atomic only within one file system",
        ),
    );
    drop(call);
    check_left_alone(
        &dir,
        ("upload", Some(b"precious")),
        &["upload"],
        "the upload was dropped",
        &STAGE1.hint(DROPPED),
    );
    // Nothing carries on after the caller has gone: the rest of the body comes, and a second later
    // dst is still untouched.
    let _ = client.write_all(&gz[gz.len() / 2..]).await;
    drop(client);
    tokio::time::sleep(Duration::from_secs(1)).await;
    check_left_alone(
        &dir,
        ("upload", Some(b"precious")),
        &["upload"],
        "the upload was dropped, a second later",
        &STAGE1.hint(DROPPED),
    );
}

/// Where a destination fills up.
#[derive(Debug, Clone, Copy)]
enum Fill {
    HalfWay,
    AtTheLastByte,
}

// A disk that fills up: the test runs in a child process whose files cannot grow past 128 KiB.
#[kata_harness::test(file_size_limit = 131072)]
#[case::half_way(Fill::HalfWay)]
#[case::at_the_last_byte(Fill::AtTheLastByte)]
async fn stage1_a_destination_that_fills_up_is_a_write_error(#[case] fill: Fill) {
    let dir = TestDir::new();
    let limit = file_size_limit_here(&dir).expect("this test runs under a file-size limit");
    let dst = dir.write("upload", "precious");
    let data = match fill {
        Fill::HalfWay => data::text(MIB),
        Fill::AtTheLastByte => data::text(limit as usize + 1),
    };
    let what = format!(
        "receive(upload) of {} while the disk fills up at {}",
        size(data.len()),
        size(limit as usize)
    );
    let result = completes_within(
        &what,
        receive_gz(&gzip(&data, 6), &dst, ROOMY),
        Duration::from_secs(1),
        &STAGE1.hint(
            "the upload never returned once its writer failed: a stage that stops must drop its \
             channel ends (move each into the stage that owns it: async move), and the others \
             must not wait for the body's end (try_join!)",
        ),
    )
    .await;
    let error = check_error(
        &dir,
        &what,
        result,
        Kind::Write,
        &STAGE1.hint(match fill {
            Fill::HalfWay => WRITE_ERROR,
            Fill::AtTheLastByte => FLUSH,
        }),
    );
    check_io_kind(
        &what,
        &error,
        ErrorKind::FileTooLarge,
        &STAGE1.hint("keep the io::Error the write failed with inside UploadError::Write"),
    );
    if let UploadError::Write { path, .. } = &error {
        check_eq(
            &format!("{what}: the path in UploadError::Write"),
            dir.short(path),
            dir.short(&dst),
            &STAGE1.hint("UploadError::Write names dst, as it was given, not the temporary file"),
        );
    }
    check_left_alone(
        &dir,
        ("upload", Some(b"precious")),
        &["upload"],
        "the failed upload",
        &STAGE1.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
async fn stage1_a_destination_in_a_missing_directory_is_a_write_error() {
    let dir = TestDir::new();
    let dst = dir.path("missing/upload");
    let what = "receive(missing/upload)";
    check_error(
        &dir,
        what,
        receive_gz(&gzip(b"hello\n", 6), &dst, ROOMY).await,
        Kind::Write,
        &STAGE1.hint(WRITE_ERROR),
    );
    check_listing(&dir, &[], "the failed upload", &STAGE1.hint(NO_STRAYS));
}

#[kata_harness::test]
async fn stage1_an_existing_dst_is_replaced_with_a_rename() {
    let dir = TestDir::new();
    let dst = dir.write("upload", "an older upload");
    // A second name for the old file. Writing dst in place changes what both names show;
    // renaming a new file onto dst leaves the old one, and so this name, alone.
    std::fs::hard_link(&dst, dir.path("old")).expect("cannot make a hard link");
    let data = data::text(100 * KIB);
    expect_ok(
        "receive(upload) where upload exists",
        receive_gz(&gzip(&data, 6), &dst, ROOMY).await,
        &STAGE1.hint("an existing dst is replaced, not an error"),
    );
    check_bytes(
        "upload, after the upload",
        &read_output(&dir, "upload", &STAGE1.hint(RENAME_ONTO_DST)),
        &data,
        &STAGE1.hint(EVERY_BYTE),
    );
    check_bytes(
        "old (a hard link to the old upload) after the upload",
        &dir.read("old"),
        "an older upload",
        &STAGE1.hint(
            "never write into dst itself (File::create(dst) empties it at once): write a \
             temporary file beside it and rename that onto dst",
        ),
    );
    check_listing(
        &dir,
        &["old", "upload"],
        "the upload",
        &STAGE1.hint(NO_STRAYS),
    );
}

#[kata_harness::test]
async fn stage1_two_uploads_at_once_onto_one_dst_do_not_mix() {
    let dir = TestDir::new();
    let dst = dir.path("upload");
    let (a, b) = (b"a".repeat(MIB), b"b".repeat(MIB));
    let (gz_a, gz_b) = (gzip(&a, 1), gzip(&b, 1));
    let (result_a, result_b) = tokio::join!(
        receive_gz(&gz_a, &dst, ROOMY),
        receive_gz(&gz_b, &dst, ROOMY)
    );
    let hint = STAGE1.hint(
        "each upload writes its own temporary file (tempfile's random names, not dst + \
         \".tmp\") and renames it whole: dst ends up as one of the two, never a mixture",
    );
    expect_ok("the first of two uploads onto one dst", result_a, &hint);
    expect_ok("the second of two uploads onto one dst", result_b, &hint);
    let output = read_output(&dir, "upload", &STAGE1.hint(RENAME_ONTO_DST));
    check(
        "upload, after two uploads onto it at once",
        output == a || output == b,
        show_bytes(&output),
        "1 MiB of 'a' or 1 MiB of 'b', whole",
        &hint,
    );
    check_listing(
        &dir,
        &["upload"],
        "the two uploads",
        &STAGE1.hint(NO_STRAYS),
    );
}

#[kata_harness::test(watchdog_secs = 30)]
async fn stage1_decompressing_happens_off_the_runtime_thread() {
    let dir = TestDir::new();
    let dst = dir.path("upload");
    // Letters with nothing to repeat: a literal per byte, the costliest bytes to decompress.
    let gz = gzip(&letters(4 * MIB), 6);
    expect_ok(
        "a first small upload",
        receive_gz(&gzip(b"warm up", 6), &dst, ROOMY).await,
        &STAGE1.hint(NOTHING_FAILS),
    );
    let decompressing = blocking::cost_of(|| {
        let mut decoded = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(&gz[..]);
        std::io::Read::read_to_end(&mut decoder, &mut decoded).expect("valid gzip");
    });
    let (result, cost) = blocking::runtime_cost(receive_gz(&gz, &dst, ROOMY)).await;
    let what = "receive(4 MiB of random letters, upload)";
    expect_ok(what, result, &STAGE1.hint(NOTHING_FAILS));
    eprintln!("{what}: the runtime's thread: {cost}; decompressing: {decompressing:.1?}");
    // Half, not the third the compressing checks allow: inflating costs about half of what
    // deflating does, so the runtime's own share (reading the body, handing chunks to the file)
    // is a larger part of it. A decoder on the runtime's thread costs all of it and more.
    let limit = decompressing / 2;
    check(
        &format!("{what}: the runtime's thread did the decompressing"),
        cost.figure() < limit,
        format_args!("{cost}: every other task waited that long"),
        format_args!(
            "under {limit:.1?}, half the {decompressing:.1?} that decompressing these bytes takes \
             here"
        ),
        &STAGE1.hint(
            "decompressing is CPU work with no .await in it: run each round of it inside \
             tokio::task::spawn_blocking, moving the decoder in and getting it back with the \
             output",
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the server. Everything that can be decided from a request's head is answered before
// the body is touched; then a slot (or a 503), then receive().
//
//   path /uploads/{name}? --no--> 404      method PUT? --no--> 405 (Allow: PUT)
//   name allowed? --no--> 400              Content-Encoding: gzip? --no--> 415 (Accept-Encoding: gzip)
//   Content-Length over the cap? --yes--> 413 (no body byte read)
//   a free slot? --no--> 503 (Retry-After: 1)
//   receive(body, dir/name) --> 201 "{size}\n" | 400 not gzip, truncated, corrupt | 413 | 500

/// A server for the test directory with caps no test reaches unless it means to, and 4 slots.
fn server(dir: &TestDir) -> Server {
    Server::new(settings(dir, ROOMY, 4))
}

/// Checks an answer's status, with what it said.
#[track_caller]
fn check_status(what: &str, answer: &Answer, expected: u16, hint: &kata_harness::Hint) {
    check(
        &format!("{what}: the status"),
        answer.status == expected,
        answer,
        format_args!("{expected}"),
        hint,
    );
}

#[kata_harness::test]
#[case::with_a_content_length("report.txt", false)]
#[case::chunked("report.txt", true)]
#[case::a_name_with_dots_dashes_and_underscores("my-report_2024.v2.txt", false)]
#[case::the_longest_name_allowed(&"n".repeat(255), false)]
async fn stage2_an_upload_is_stored_and_answered_201_with_its_size(
    #[case] name: &str,
    #[case] chunked: bool,
) {
    let dir = TestDir::new();
    let data = data::text(200 * KIB);
    let mut request = Req::put(&format!("/uploads/{name}"), gzip(&data, 6));
    if chunked {
        request = request.chunked();
    }
    let what = format!(
        "PUT /uploads/{name} with {} of gzipped text{}",
        size(request.body.len()),
        if chunked { ", chunked" } else { "" }
    );
    let answer = ask(&server(&dir), &request).await;
    check_status(
        &what,
        &answer,
        201,
        &STAGE2.hint("a valid upload is stored and answered 201 Created"),
    );
    check_eq(
        &format!("{what}: the answer's body"),
        answer.body,
        format!("{}\n", data.len()),
        &STAGE2.hint("a 201's body is the decompressed size in decimal, then a newline"),
    );
    check_bytes(
        &format!("{name}, after {what}"),
        &read_output(
            &dir,
            name,
            &STAGE2.hint("PUT /uploads/{name} stores the upload as dir/{name}"),
        ),
        &data,
        &STAGE2.hint(EVERY_BYTE),
    );
    check_listing(&dir, &[name], "the upload", &STAGE2.hint(NO_STRAYS));
}

#[kata_harness::test]
#[case::empty("/uploads/")]
#[case::a_slash("/uploads/a/b")]
#[case::an_encoded_slash("/uploads/a%2Fb")]
#[case::dot("/uploads/.")]
#[case::dot_dot("/uploads/..")]
#[case::hidden("/uploads/.env")]
#[case::a_space("/uploads/a%20b")]
#[case::too_long(&format!("/uploads/{}", "n".repeat(256)))]
async fn stage2_a_bad_name_is_400_and_nothing_is_written(#[case] path: &str) {
    let dir = TestDir::new();
    let inner = dir.mkdir("uploads");
    // The server stores into dir/uploads: a name that escapes it would show in dir.
    let server = Server::new(gzip_upload::Config {
        dir: inner,
        ..settings(&dir, ROOMY, 4)
    });
    let shown = if path.len() > 40 {
        format!("{}...", &path[..40])
    } else {
        path.to_owned()
    };
    let what = format!("PUT {shown}");
    let answer = ask(&server, &Req::put(path, gzip(b"sneaky\n", 6))).await;
    check_status(
        &what,
        &answer,
        400,
        &STAGE2.hint(
            "check the name before anything else touches the file system: allow letters, \
             digits, '.', '_' and '-' only, not starting with a dot, at most 255 bytes (so no \
             '/', no '..', no hidden file, nothing to decode), and answer 400 otherwise",
        ),
    );
    check(
        &format!("{what}: the answer's body"),
        answer.body.contains("name"),
        format_args!("{:?}", answer.body),
        "a message that says the name is the problem",
        &STAGE2.hint("say what is wrong: \"bad upload name ...: it starts with a dot\""),
    );
    check_listing(
        &dir,
        &["uploads"],
        "the refused upload",
        &STAGE2.hint(NO_STRAYS),
    );
    check_eq(
        &format!("the files in uploads/ after {what}"),
        std::fs::read_dir(dir.path("uploads")).map_or(0, |entries| entries.count()),
        0,
        &STAGE2.hint("a refused upload writes nothing, not even a temporary file"),
    );
}

#[kata_harness::test]
#[case::root("PUT", "/")]
#[case::uploads_alone("PUT", "/uploads")]
#[case::singular("PUT", "/upload/report.txt")]
#[case::a_longer_word("PUT", "/uploadsx/report.txt")]
#[case::upper_case("PUT", "/UPLOADS/report.txt")]
#[case::elsewhere("GET", "/files/report.txt")]
async fn stage2_other_paths_are_404(#[case] method: &str, #[case] path: &str) {
    let dir = TestDir::new();
    let request = if method == "PUT" {
        Req::put(path, gzip(b"hello\n", 6))
    } else {
        Req::bare(method, path)
    };
    let what = format!("{method} {path}");
    let answer = ask(&server(&dir), &request).await;
    check_status(
        &what,
        &answer,
        404,
        &STAGE2.hint(
            "only paths that start with /uploads/ are uploads (look at the path first, before \
             the method): anything else is 404 Not Found",
        ),
    );
    check_listing(&dir, &[], "the request", &STAGE2.hint(NO_STRAYS));
}

#[kata_harness::test]
#[case::get("GET")]
#[case::post("POST")]
#[case::delete("DELETE")]
#[case::patch("PATCH")]
async fn stage2_other_methods_are_405_with_allow_put(#[case] method: &str) {
    let dir = TestDir::new();
    let mut request = Req::put("/uploads/report.txt", gzip(b"hello\n", 6));
    request.method = method.to_owned();
    let what = format!("{method} /uploads/report.txt");
    let answer = ask(&server(&dir), &request).await;
    check_status(
        &what,
        &answer,
        405,
        &STAGE2.hint("/uploads/{name} takes PUT only: any other method is 405 Method Not Allowed"),
    );
    check_eq(
        &format!("{what}: the Allow header"),
        answer.header("allow"),
        Some("PUT"),
        &STAGE2.hint("a 405 must say which methods are allowed: Allow: PUT (RFC 9110)"),
    );
    check_listing(&dir, &[], "the request", &STAGE2.hint(NO_STRAYS));
}

#[kata_harness::test]
#[case::no_encoding(None)]
#[case::identity(Some("identity"))]
#[case::brotli(Some("br"))]
#[case::deflate(Some("deflate"))]
#[case::twice_gzip(Some("gzip, gzip"))]
async fn stage2_a_body_not_declared_gzip_is_415(#[case] encoding: Option<&str>) {
    let dir = TestDir::new();
    let request =
        Req::put("/uploads/report.txt", gzip(b"hello\n", 6)).with("Content-Encoding", encoding);
    let what = match encoding {
        Some(encoding) => format!("PUT /uploads/report.txt with Content-Encoding: {encoding}"),
        None => "PUT /uploads/report.txt without a Content-Encoding".to_owned(),
    };
    let answer = ask(&server(&dir), &request).await;
    check_status(
        &what,
        &answer,
        415,
        &STAGE2.hint(
            "the body must be declared as one gzip coding (Content-Encoding: gzip, any case; \
             x-gzip is its old name): anything else is 415 Unsupported Media Type, whatever the \
             bytes look like",
        ),
    );
    check_eq(
        &format!("{what}: the Accept-Encoding header"),
        answer.header("accept-encoding"),
        Some("gzip"),
        &STAGE2.hint(
            "a 415 for an unsupported coding says which one is accepted: Accept-Encoding: gzip \
             (RFC 9110)",
        ),
    );
    check_listing(&dir, &[], "the request", &STAGE2.hint(NO_STRAYS));
}

#[kata_harness::test]
#[case::upper_case("GZIP")]
#[case::old_name("x-gzip")]
async fn stage2_gzip_may_be_spelled_in_any_case_or_as_x_gzip(#[case] encoding: &str) {
    let dir = TestDir::new();
    let request = Req::put("/uploads/report.txt", gzip(b"hello\n", 6))
        .with("Content-Encoding", Some(encoding));
    let what = format!("PUT /uploads/report.txt with Content-Encoding: {encoding}");
    let answer = ask(&server(&dir), &request).await;
    check_status(
        &what,
        &answer,
        201,
        &STAGE2.hint("content codings are case-insensitive, and x-gzip is gzip (RFC 9110)"),
    );
}

#[kata_harness::test]
#[case::not_gzip(b"plain text\n".to_vec(), "not gzip")]
#[case::truncated(Damage::CutInTheData.apply(sample_gz()), "truncated")]
#[case::corrupt(Damage::CrcChanged.apply(sample_gz()), "corrupt")]
async fn stage2_bad_gzip_is_400_and_says_which(#[case] body: Vec<u8>, #[case] word: &str) {
    let dir = TestDir::new();
    dir.write("report.txt", "precious");
    let what = format!("PUT /uploads/report.txt with a body that is {word}");
    let answer = ask(&server(&dir), &Req::put("/uploads/report.txt", body)).await;
    check_status(
        &what,
        &answer,
        400,
        &STAGE2.hint("a body that is not gzip, truncated or corrupt is the client's mistake: 400"),
    );
    check(
        &format!("{what}: the answer's body"),
        answer.body.contains(word),
        format_args!("{:?}", answer.body),
        format_args!("a message that says the body is {word}"),
        &STAGE2.hint(
            "answer with the UploadError's message: its #[error(..)] texts say \"not gzip\", \
             \"truncated\" or \"corrupt\"",
        ),
    );
    check_left_alone(
        &dir,
        ("report.txt", Some(b"precious")),
        &["report.txt"],
        "the refused upload",
        &STAGE2.hint(LEFT_ALONE),
    );
}

#[kata_harness::test]
#[case::plain(false)]
#[case::expecting_100_continue(true)]
async fn stage2_a_content_length_over_the_cap_is_413_before_any_body_byte(#[case] expect: bool) {
    let dir = TestDir::new();
    let cap = MIB as u64;
    let server = Server::new(settings(
        &dir,
        Limits {
            compressed: cap,
            ..ROOMY
        },
        4,
    ));
    let mut request = Req::put("/uploads/big.bin", bytes::Bytes::new())
        .with("Content-Length", Some(&(cap + 1).to_string()));
    if expect {
        request = request.with("Expect", Some("100-continue"));
    }
    let mut http = connect(&server);
    let what = format!(
        "PUT /uploads/big.bin with Content-Length: {}{}, before any body byte",
        cap + 1,
        if expect {
            " and Expect: 100-continue"
        } else {
            ""
        }
    );
    http.write(&request.head())
        .await
        .expect("the connection is open");
    let answer = completes_within(
        &what,
        http.answer(),
        Duration::from_secs(1),
        &STAGE2.hint(
            "a Content-Length over limits.compressed says all there is to know: answer 413 at \
             once, before reading the body (hyper's request.body().size_hint() is the \
             Content-Length). Waiting for the body makes the client send it all for nothing",
        ),
    )
    .await
    .expect("the server answers");
    check_status(
        &what,
        &answer,
        413,
        &STAGE2.hint("over a cap is 413 Content Too Large"),
    );
    check(
        &format!("{what}: the answer's body"),
        answer.body.contains("compressed"),
        format_args!("{:?}", answer.body),
        "a message that names the compressed cap",
        &STAGE2.hint("answer with UploadError::TooLarge's message, which names the cap"),
    );
    check_eq(
        &format!("{what}: interim answers before the 413"),
        answer.interim,
        vec![],
        &STAGE2.hint(
            "hyper sends 100 Continue the first time the body is polled: refuse from the head \
             alone, and the client never sends the body",
        ),
    );
}

#[kata_harness::test]
async fn stage2_a_content_length_of_exactly_the_cap_is_accepted() {
    let dir = TestDir::new();
    let gz = gzip(&data::text(100 * KIB), 6);
    let cap = gz.len() as u64;
    let server = Server::new(settings(
        &dir,
        Limits {
            compressed: cap,
            ..ROOMY
        },
        4,
    ));
    let what = format!("PUT /uploads/report.txt with Content-Length: {cap}, the compressed cap");
    let answer = ask(&server, &Req::put("/uploads/report.txt", gz)).await;
    check_status(
        &what,
        &answer,
        201,
        &STAGE2.hint(
            "the cap is the most bytes allowed: refuse a Content-Length over it (length > cap), \
             not one equal to it",
        ),
    );
}

#[kata_harness::test]
#[case::over_the_compressed_cap(gzip(&data::random_bytes(6, 2 * MIB), 0), "compressed")]
#[case::over_the_decompressed_cap(zip_bomb(16), "decompressed")]
async fn stage2_a_chunked_body_over_a_cap_is_413(#[case] body: Vec<u8>, #[case] word: &str) {
    let dir = TestDir::new();
    let limits = Limits {
        compressed: MIB as u64,
        decompressed: 8 * MIB as u64,
    };
    let server = Server::new(settings(&dir, limits, 4));
    let what = format!(
        "PUT /uploads/big.bin with {} chunked, over the {word} cap",
        size(body.len())
    );
    let answer = ask(&server, &Req::put("/uploads/big.bin", body).chunked()).await;
    check_status(
        &what,
        &answer,
        413,
        &STAGE2.hint(
            "a chunked body has no Content-Length to look at: receive() counts its bytes and \
             gives UploadError::TooLarge, which is 413 Content Too Large",
        ),
    );
    check(
        &format!("{what}: the answer's body"),
        answer.body.contains(word),
        format_args!("{:?}", answer.body),
        format_args!("a message that names the {word} cap"),
        &STAGE2.hint("answer with UploadError::TooLarge's message, which names the cap"),
    );
    check_listing(&dir, &[], "the refused upload", &STAGE2.hint(NO_STRAYS));
}

#[kata_harness::test]
async fn stage2_a_write_that_fails_is_500() {
    let dir = TestDir::new();
    let server = Server::new(gzip_upload::Config {
        dir: dir.path("missing"),
        ..settings(&dir, ROOMY, 4)
    });
    let what = "PUT /uploads/report.txt into a directory that does not exist";
    let answer = ask(
        &server,
        &Req::put("/uploads/report.txt", gzip(b"hello\n", 6)),
    )
    .await;
    check_status(
        what,
        &answer,
        500,
        &STAGE2.hint(
            "a file the server cannot write is the server's failure, not the client's: \
             UploadError::Write is 500 Internal Server Error",
        ),
    );
}

// max_uploads = 2: two uploads start and wait, with half their body sent.
//
//   upload a:  head + half ........................ rest --> 201
//   upload b:  head + half ............................................ rest --> 201
//   upload c:        PUT --> 503 at once (Retry-After: 1)
//   upload d:                                          PUT (a's slot is free) --> 201
//              0 ms                               100 ms           200 ms

#[kata_harness::test]
async fn stage2_when_every_slot_is_taken_the_next_upload_gets_503_at_once() {
    let dir = TestDir::new();
    let server = Server::new(settings(&dir, ROOMY, 2));
    let gz = gzip(&data::text(256 * KIB), 6);
    let (half, rest) = gz.split_at(gz.len() / 2);
    let start = Instant::now();
    let request = |name: &str| Req::put(&format!("/uploads/{name}"), gz.clone());
    let (mut a, mut b) = (connect(&server), connect(&server));
    a.start(&request("a"), half)
        .await
        .expect("the connection is open");
    b.start(&request("b"), half)
        .await
        .expect("the connection is open");
    let what = "a third upload while two are in flight and max_uploads is 2";
    let answer = completes_within(
        what,
        ask(&server, &request("c")),
        Duration::from_secs(1),
        &STAGE2.hint(
            "no free slot means 503 at once: try_acquire_owned(), not acquire_owned().await, \
             which queues the upload behind the slow ones (backpressure, where this server \
             sheds load)",
        ),
    )
    .await;
    assert_elapsed(
        &format!("{what}: its answer"),
        start.elapsed(),
        ms(0),
        &STAGE2.hint(SHED_AT_ONCE),
    );
    check_status(what, &answer, 503, &STAGE2.hint(SHED_AT_ONCE));
    check_eq(
        &format!("{what}: the Retry-After header"),
        answer.header("retry-after").map(str::to_owned),
        Some(RETRY_AFTER_SECS.to_string()),
        &STAGE2.hint("a 503 says when to try again: Retry-After: RETRY_AFTER_SECS (in seconds)"),
    );
    tokio::time::sleep_until(start + ms(100)).await;
    let a_answer = a
        .finish(&request("a"), rest)
        .await
        .expect("the server answers");
    check_status(
        "upload a, finished at 100 ms",
        &a_answer,
        201,
        &STAGE2.hint(NOTHING_FAILS),
    );
    let what = "an upload after one of the two in flight has finished";
    let answer = ask(&server, &request("d")).await;
    check_status(
        what,
        &answer,
        201,
        &STAGE2.hint(
            "a finished upload gives its slot back: hold the permit for the upload's duration \
             (a variable that lives until the answer is made), not for ever, and not only \
             until the head is read",
        ),
    );
    tokio::time::sleep_until(start + ms(200)).await;
    let b_answer = b
        .finish(&request("b"), rest)
        .await
        .expect("the server answers");
    check_status(
        "upload b, finished at 200 ms",
        &b_answer,
        201,
        &STAGE2.hint(NOTHING_FAILS),
    );
    check_listing(
        &dir,
        &["a", "b", "d"],
        "the uploads",
        &STAGE2.hint(NO_STRAYS),
    );
}

#[kata_harness::test]
#[case::refused(false)]
#[case::abandoned(true)]
async fn stage2_a_failed_or_abandoned_upload_gives_its_slot_back(#[case] abandoned: bool) {
    let dir = TestDir::new();
    let server = Server::new(settings(&dir, ROOMY, 1));
    let gz = sample_gz();
    let first = if abandoned {
        let mut http = connect(&server);
        let request = Req::put("/uploads/first", gz.clone());
        http.start(&request, &gz[..gz.len() / 2])
            .await
            .expect("the connection is open");
        tokio::time::sleep(ms(10)).await;
        drop(http); // The client goes away, half way.
        tokio::time::sleep(ms(10)).await;
        "an upload whose client went away half way"
    } else {
        let answer = ask(
            &server,
            &Req::put("/uploads/first", Damage::CrcChanged.apply(gz.clone())),
        )
        .await;
        check_status(
            "a corrupt upload",
            &answer,
            400,
            &STAGE2.hint(NOTHING_FAILS),
        );
        "an upload refused as corrupt"
    };
    let what = format!("an upload after {first}, with max_uploads = 1");
    let answer = ask(&server, &Req::put("/uploads/second", gz)).await;
    check_status(
        &what,
        &answer,
        201,
        &STAGE2.hint(
            "the slot must come back however the upload ends, an error or a client that went \
             away (hyper then drops the request's future): an OwnedSemaphorePermit held in the \
             request's future is given back when it is dropped; a counter decremented by hand \
             at the end is not",
        ),
    );
    check_listing(&dir, &["second"], "the uploads", &STAGE2.hint(NO_STRAYS));
}

// On 127.0.0.1, on the real clock: what only a real socket shows. (On the paused clock, virtual
// time jumps ahead whenever every task waits on a socket, so no timing there would mean much.)

/// The heap the server may use for four 8 MiB uploads at once: each is a few chunks in its
/// pipeline and hyper's buffers; holding one upload's body is 8 MiB.
const FOUR_UPLOADS_LIMIT: usize = 12 * MIB;

#[kata_harness::test(real_time, watchdog_secs = 30)]
async fn stage2_on_loopback_four_8_mib_uploads_at_once_succeed_in_bounded_memory() {
    // Real time: real sockets (see above).
    let dir = TestDir::new();
    let data = data::random_bytes(7, 8 * MIB);
    // Stored rather than compressed (random bytes do not compress): 8 MiB on the wire too.
    let body = bytes::Bytes::from(gzip(&data, 0));
    let mut server = Loopback::start(settings(&dir, ROOMY, 4)).await;
    let warm_up = Req::put("/uploads/warm-up", gzip(b"warm up", 6));
    let answer = server
        .connect()
        .await
        .expect("the server listens")
        .exchange(&warm_up)
        .await;
    check_status(
        "a first small upload",
        &answer.expect("an answer"),
        201,
        &STAGE2.hint(NOTHING_FAILS),
    );
    let upload = |n: usize| {
        let request = Req::put(&format!("/uploads/upload-{n}"), body.clone());
        let server = &server;
        async move { server.connect().await?.exchange(&request).await }
    };
    let (answers, peak) = heap::measure_async(futures::future::join_all((1..=4).map(upload))).await;
    for (n, answer) in (1..).zip(answers) {
        let what = format!("upload-{n}, one of four 8 MiB uploads at once");
        let answer = answer
            .unwrap_or_else(|error| fail(&what, error, "an answer", &STAGE2.hint(NOTHING_FAILS)));
        check_status(&what, &answer, 201, &STAGE2.hint(NOTHING_FAILS));
        check_file(
            &dir,
            &format!("upload-{n}"),
            &data[..],
            &STAGE2.hint(EVERY_BYTE),
        );
    }
    eprintln!(
        "four 8 MiB uploads at once: peak heap {}",
        heap::bytes(peak.peak_delta as f64)
    );
    heap::assert_peak_below(
        "four 8 MiB uploads at once",
        peak,
        FOUR_UPLOADS_LIMIT,
        &STAGE2.hint(
            "stream each body through receive(): BodyExt::collect() or to_bytes() holds every \
             upload whole, four at a time. request.into_body().into_data_stream() in a \
             tokio_util::io::StreamReader is the body as an AsyncRead",
        ),
    );
    server.shut_down();
    server.finished().await;
}

#[kata_harness::test(real_time)]
async fn stage2_on_loopback_the_upload_over_the_limit_gets_503_and_the_next_succeeds() {
    // Real time: real sockets (see above).
    let dir = TestDir::new();
    let gz = gzip(&data::text(256 * KIB), 6);
    let (half, rest) = gz.split_at(gz.len() / 2);
    let request = |name: &str| Req::put(&format!("/uploads/{name}"), gz.clone());
    let mut server = Loopback::start(settings(&dir, ROOMY, 2)).await;
    let mut a = server.connect().await.expect("the server listens");
    let mut b = server.connect().await.expect("the server listens");
    a.start(&request("a"), half)
        .await
        .expect("the connection is open");
    b.start(&request("b"), half)
        .await
        .expect("the connection is open");
    let started = eventually(Duration::from_secs(2), || others(&dir, &[]).len() == 2).await;
    check(
        "two uploads with half their body sent",
        started,
        format_args!("{:?} in the directory", dir.listing()),
        "two temporary files, one per upload under way",
        &STAGE2.hint("an upload writes what it decodes as it comes, into a temporary file"),
    );
    let what = "a third upload while two are in flight and max_uploads is 2";
    let third = async { server.connect().await?.exchange(&request("c")).await };
    let answer = tokio::time::timeout(Duration::from_secs(1), third).await;
    let Ok(Ok(answer)) = answer else {
        fail(
            what,
            format_args!("{answer:?}"),
            "an answer within a second (real time)",
            &STAGE2.hint(SHED_AT_ONCE),
        );
    };
    check_status(what, &answer, 503, &STAGE2.hint(SHED_AT_ONCE));
    check_eq(
        &format!("{what}: the Retry-After header"),
        answer.header("retry-after").map(str::to_owned),
        Some(RETRY_AFTER_SECS.to_string()),
        &STAGE2.hint("a 503 says when to try again: Retry-After: RETRY_AFTER_SECS (in seconds)"),
    );
    let answer = a.finish(&request("a"), rest).await.expect("an answer");
    check_status(
        "upload a, finished",
        &answer,
        201,
        &STAGE2.hint(NOTHING_FAILS),
    );
    let what = "an upload once one of the two in flight has finished";
    let answer = server
        .connect()
        .await
        .expect("the server listens")
        .exchange(&request("d"))
        .await;
    check_status(
        what,
        &answer.expect("an answer"),
        201,
        &STAGE2.hint("a finished upload gives its slot back"),
    );
    let answer = b.finish(&request("b"), rest).await.expect("an answer");
    check_status(
        "upload b, finished",
        &answer,
        201,
        &STAGE2.hint(NOTHING_FAILS),
    );
    check_listing(
        &dir,
        &["a", "b", "d"],
        "the uploads",
        &STAGE2.hint(NO_STRAYS),
    );
    server.shut_down();
    server.finished().await;
}

#[kata_harness::test(real_time)]
async fn stage2_on_loopback_a_client_that_hangs_up_mid_body_leaves_no_temporary_file() {
    // Real time: a real socket closed by its client (see above).
    let dir = TestDir::new();
    dir.write("report.txt", "precious");
    let gz = gzip(&data::text(512 * KIB), 6);
    let request = Req::put("/uploads/report.txt", gz.clone());
    let mut server = Loopback::start(settings(&dir, ROOMY, 1)).await;
    let mut http = server.connect().await.expect("the server listens");
    http.start(&request, &gz[..gz.len() / 2])
        .await
        .expect("the connection is open");
    let started = eventually(Duration::from_secs(2), || {
        others(&dir, &["report.txt"]).len() == 1
    })
    .await;
    check(
        "an upload with half its body sent",
        started,
        format_args!("{:?} in the directory", dir.listing()),
        "report.txt and the upload's temporary file",
        &STAGE2.hint("an upload writes what it decodes as it comes, into a temporary file"),
    );
    drop(http); // The client hangs up.
    let gone = eventually(Duration::from_secs(2), || {
        others(&dir, &["report.txt"]).is_empty()
    })
    .await;
    check(
        "the temporary file of an upload whose client hung up",
        gone,
        format_args!("still there 2 s later: {:?}", dir.listing()),
        "deleted",
        &STAGE2.hint(
            "when the client hangs up, hyper's body gives an error (or hyper drops the request's \
             future): either way the upload must end and its temporary file go. A handler \
             that tokio::spawn's the upload lets it wait for ever",
        ),
    );
    check_left_alone(
        &dir,
        ("report.txt", Some(b"precious")),
        &["report.txt"],
        "the client hung up",
        &STAGE2.hint(LEFT_ALONE),
    );
    let answer = server
        .connect()
        .await
        .expect("the server listens")
        .exchange(&request)
        .await;
    check_status(
        "an upload after the one whose client hung up, with max_uploads = 1",
        &answer.expect("an answer"),
        201,
        &STAGE2.hint("the slot of an upload whose client hung up comes back"),
    );
    server.shut_down();
    server.finished().await;
}

/// Waits up to `limit` (real time) for `addr` to refuse connections; says whether it did.
async fn refused(addr: std::net::SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => return true,
            _ if Instant::now() >= deadline => return false,
            _ => tokio::time::sleep(ms(20)).await,
        }
    }
}

// Shutdown with an upload in flight, on the real clock, with 5 s to drain:
//
//   upload:    head + half ............................... rest --> 201, connection closed
//   server:              shutdown: refuses connections ........... serve() returns (drained 1, cut 0)
//              0                    ~100 ms                 ~300 ms

#[kata_harness::test(real_time)]
async fn stage2_shutdown_refuses_new_connections_and_lets_an_upload_in_flight_finish() {
    // Real time: real sockets, and a drain that is real time too.
    let baseline = TaskBaseline::capture();
    let dir = TestDir::new();
    let gz = gzip(&data::text(512 * KIB), 6);
    let (half, rest) = gz.split_at(gz.len() / 2);
    let request = Req::put("/uploads/report.txt", gz.clone());
    let mut server = Loopback::start(settings(&dir, ROOMY, 4)).await;
    let addr = server.addr;
    let mut http = server.connect().await.expect("the server listens");
    http.start(&request, half)
        .await
        .expect("the connection is open");
    eventually(Duration::from_secs(2), || others(&dir, &[]).len() == 1).await;
    server.shut_down();
    check(
        "connecting once the server is shutting down",
        refused(addr, Duration::from_secs(1)).await,
        "still accepted a second later",
        "refused (ConnectionRefused)",
        &STAGE2.hint(
            "a shutdown starts by closing the listener: drop the TcpListener as soon as the \
             signal comes. A listener kept alive (even one no longer accepted from) still \
             completes connections in the kernel's backlog",
        ),
    );
    tokio::time::sleep(ms(200)).await;
    let answer = http.finish(&request, rest).await;
    let what = "an upload that was half way when the shutdown began, finished 200 ms later";
    let answer = answer.unwrap_or_else(|error| {
        fail(
            what,
            format_args!("no answer: {error}"),
            "201, within the 5 s the server has to drain",
            &STAGE2.hint(CUT_AT_ONCE),
        )
    });
    check_status(what, &answer, 201, &STAGE2.hint(CUT_AT_ONCE));
    let finished = tokio::time::timeout(Duration::from_secs(1), server.finished()).await;
    let Ok(report) = finished else {
        fail(
            "serve() after its last upload finished",
            "still running a second later",
            "returned at once: nothing is left to drain",
            &STAGE2.hint(
                "wait for the connections (JoinSet::join_next) up to the deadline, not for the \
                 deadline itself: once the last one has ended, return",
            ),
        );
    };
    check_eq(
        "what serve() returned",
        report,
        Shutdown { drained: 1, cut: 0 },
        &STAGE2.hint("one connection was open and finished its upload within the drain time"),
    );
    check_bytes(
        "report.txt",
        &read_output(&dir, "report.txt", &STAGE2.hint(CUT_AT_ONCE)),
        &data::text(512 * KIB),
        &STAGE2.hint(EVERY_BYTE),
    );
    baseline
        .assert_back(
            "the server's tasks",
            Duration::ZERO,
            &STAGE2.hint(NO_TASK_LEFT),
        )
        .await;
}

// Shutdown with two uploads in flight, with 1.5 s to drain: one finishes during the drain, the
// other stalls and is cut at the deadline, which counts from the start of the shutdown, not from
// the last connection that ended:
//
//   first.txt:   head + half .............. rest --> 201, connection closed
//   report.txt:  head + half .......................(nothing more)...............  connection closed
//   server:                shutdown ....... 1.1 s ................................ 1.5 s: cut, serve()
//                          0                                                        returns (drained 1, cut 1)

#[kata_harness::test(real_time)]
async fn stage2_shutdown_cuts_an_upload_still_going_at_the_drain_deadline() {
    // Real time: real sockets, and a drain deadline that is real time too.
    const DRAIN: Duration = ms(1500);
    let baseline = TaskBaseline::capture();
    let dir = TestDir::new();
    dir.write("report.txt", "precious");
    let gz = gzip(&data::text(512 * KIB), 6);
    let request = Req::put("/uploads/report.txt", gz.clone());
    let small = gzip(&data::text(64 * KIB), 6);
    let (small_half, small_rest) = small.split_at(small.len() / 2);
    let first = Req::put("/uploads/first.txt", small.clone());
    let mut server = Loopback::start(gzip_upload::Config {
        drain: DRAIN,
        ..settings(&dir, ROOMY, 4)
    })
    .await;
    let mut http = server.connect().await.expect("the server listens");
    http.start(&request, &gz[..gz.len() / 2])
        .await
        .expect("the connection is open");
    let mut finishing = server.connect().await.expect("the server listens");
    finishing
        .start(&first, small_half)
        .await
        .expect("the connection is open");
    eventually(Duration::from_secs(2), || {
        others(&dir, &["report.txt"]).len() == 2
    })
    .await;
    server.shut_down();
    let signalled = Instant::now();
    tokio::time::sleep_until(signalled + ms(1100)).await;
    let what = "first.txt, half way when the shutdown began, finished 1.1 s later";
    let answer = finishing.finish(&first, small_rest).await;
    let answer = answer.unwrap_or_else(|error| {
        fail(
            what,
            format_args!("no answer: {error}"),
            "201, within the 1.5 s the server has to drain",
            &STAGE2.hint(CUT_AT_ONCE),
        )
    });
    check_status(what, &answer, 201, &STAGE2.hint(CUT_AT_ONCE));
    let Ok(report) = tokio::time::timeout(Duration::from_secs(4), server.finished()).await else {
        fail(
            "serve() with an upload that never ends, 1.5 s to drain",
            "still running 4 s after the shutdown began",
            "returned at the drain deadline, 1.5 s after the shutdown began",
            &STAGE2.hint(
                "wait for the connections up to Config::drain only (a sleep in select! with \
                 join_next), then cut the rest: JoinSet::shutdown() aborts them and waits",
            ),
        );
    };
    let took = signalled.elapsed();
    // Far wider than the scheduling noise of a loaded machine, far narrower than the 2.6 s of a
    // deadline that starts again when first.txt's connection ends.
    check(
        "serve() with an upload that never ends, 1.5 s to drain: when it returned",
        (ms(1350)..ms(2200)).contains(&took),
        format_args!("{took:.0?} after the shutdown began"),
        "at the drain deadline: 1.5 s after (between 1.35 s and 2.2 s, real time)",
        &STAGE2.hint(
            "the drain deadline is one instant, Config::drain after the shutdown began: make \
             the sleep once, before the loop, pin it, and select! on &mut it. A sleep made \
             inside the loop starts again whenever a connection ends",
        ),
    );
    check_eq(
        "what serve() returned",
        report,
        Shutdown { drained: 1, cut: 1 },
        &STAGE2.hint(
            "two connections were open: first.txt's ended within the drain time (drained), \
             report.txt's was still busy at the deadline (cut)",
        ),
    );
    check_left_alone(
        &dir,
        ("report.txt", Some(b"precious")),
        &["first.txt", "report.txt"],
        "serve() cut the upload",
        &STAGE2.hint(
            "a cut upload is dropped, and its temporary file with it: abort the connection's \
             task and wait for it (JoinSet::shutdown) before serve() returns",
        ),
    );
    let closed = tokio::time::timeout(Duration::from_secs(1), http.closed()).await;
    check(
        "the cut upload's connection",
        closed == Ok(true),
        format_args!("{closed:?}"),
        "closed by the server",
        &STAGE2.hint("cutting a connection drops it, which closes the socket"),
    );
    baseline
        .assert_back(
            "the server's tasks",
            Duration::ZERO,
            &STAGE2.hint(NO_TASK_LEFT),
        )
        .await;
}

#[kata_harness::test(real_time)]
async fn stage2_shutdown_closes_idle_connections_at_once() {
    // Real time: real sockets, and a drain that is real time too.
    let baseline = TaskBaseline::capture();
    let dir = TestDir::new();
    let mut server = Loopback::start(settings(&dir, ROOMY, 4)).await;
    let mut http = server.connect().await.expect("the server listens");
    let answer = http
        .exchange(&Req::put("/uploads/report.txt", gzip(b"hello\n", 6)))
        .await
        .expect("an answer");
    check_status("an upload", &answer, 201, &STAGE2.hint(NOTHING_FAILS));
    // The connection stays open, idle (HTTP/1.1 keeps it alive for the next request).
    server.shut_down();
    let Ok(report) = tokio::time::timeout(Duration::from_secs(1), server.finished()).await else {
        fail(
            "serve() with one idle keep-alive connection and 5 s to drain",
            "still running a second after the shutdown began",
            "returned at once: an idle connection has nothing to finish",
            &STAGE2.hint(
                "tell every connection to shut down gracefully: hyper's \
                 Connection::graceful_shutdown() closes an idle one at once and a busy one \
                 after its answer. Without it an idle keep-alive connection waits for its \
                 client's next request, and holds the shutdown until the deadline",
            ),
        );
    };
    check_eq(
        "what serve() returned",
        report,
        Shutdown { drained: 1, cut: 0 },
        &STAGE2.hint("one idle connection was open, and closed within the drain time"),
    );
    let closed = tokio::time::timeout(Duration::from_secs(1), http.closed()).await;
    check(
        "the idle connection",
        closed == Ok(true),
        format_args!("{closed:?}"),
        "closed by the server",
        &STAGE2.hint("an idle connection is closed by a graceful shutdown"),
    );
    baseline
        .assert_back(
            "the server's tasks",
            Duration::ZERO,
            &STAGE2.hint(NO_TASK_LEFT),
        )
        .await;
}

// ---------------------------------------------------------------------------------------------
// Stage 3: upload(io, host, name, source) reads the source a chunk at a time, gzips each chunk on
// the blocking pool, flushes it, and sends it as one chunk of a chunked PUT /uploads/{name}.
//
//   source --read--> chunk --GzEncoder + flush (spawn_blocking)--> frame ==> hyper --chunked--> server

/// The heap of a 32 MiB upload, client and server together: a few chunks on each side, zlib's
/// state on each side, hyper's buffers. The source whole is 32 MiB.
const CLIENT_LIMIT: usize = 8 * MIB;

#[kata_harness::test(watchdog_secs = 30)]
async fn stage3_the_client_streams_32_mib_as_a_chunked_body() {
    let dir = TestDir::new();
    let server = server(&dir);
    let ok = STAGE3.hint(CLIENT_NOTHING_FAILS);
    // Warm up: the first run starts the blocking pool's threads and builds lazy statics.
    let (io, _) = recorded_connection(&server);
    expect_client_ok(
        "a first small upload",
        upload(io, "localhost", "warm-up", &b"warm up"[..]).await,
        &ok,
    );
    let (io, seen) = recorded_connection(&server);
    let what = "upload(big.log) of 32 MiB of log lines";
    let (result, peak) = heap::measure_async(upload(
        io,
        "localhost",
        "big.log",
        Ready(NumberedLog::new(32 * MIB)),
    ))
    .await;
    let size = expect_client_ok(what, result, &ok);
    check_eq(
        &format!("{what}: its result"),
        size,
        32 * MIB as u64,
        &STAGE3.hint("return the size the server answered with, which is what was read"),
    );
    let (line, headers) = request_head(&seen.lock().expect("poisoned"));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(other, _)| other == name)
            .map(|(_, value)| value.to_ascii_lowercase())
    };
    check_eq(
        &format!("{what}: the request line"),
        line.as_str(),
        "PUT /uploads/big.log HTTP/1.1",
        &STAGE3.hint("the protocol: PUT /uploads/{name}"),
    );
    check_eq(
        &format!("{what}: its Host, Content-Encoding and Transfer-Encoding headers"),
        (
            header("host"),
            header("content-encoding"),
            header("transfer-encoding"),
        ),
        (
            Some("localhost".to_owned()),
            Some("gzip".to_owned()),
            Some("chunked".to_owned()),
        ),
        &STAGE3.hint(
            "HTTP/1.1 needs a Host header; the body is declared gzip; a body whose size is not \
             known in advance (a StreamBody) goes chunked, which hyper does by itself",
        ),
    );
    check_eq(
        &format!("{what}: its Content-Length header"),
        header("content-length"),
        None,
        &STAGE3.hint(
            "no Content-Length: knowing it means compressing the whole source before sending \
             a byte. Stream the body (StreamBody) and let hyper send it chunked",
        ),
    );
    eprintln!(
        "{what}: peak heap {} (client and server)",
        heap::bytes(peak.peak_delta as f64)
    );
    heap::assert_peak_below(
        what,
        peak,
        CLIENT_LIMIT,
        &STAGE3.hint(
            "read the source a chunk at a time and hand each compressed chunk to hyper through \
             a bounded channel (or a stream hyper pulls from): reading the source whole, or \
             gzipping it into one Vec, holds 32 MiB",
        ),
    );
    check_file(
        &dir,
        "big.log",
        NumberedLog::new(32 * MIB),
        &STAGE3.hint(CLIENT_EVERY_BYTE),
    );
}

// A source that gives 1000 bytes, then nothing for 300 ms, then 1000 more and its end:
//
//   source:    part 1                                   part 2, end
//              0 ms                                     300 ms
//   server:    part 1 on disk, looked at 100 ms         201 at 300 ms: slow.txt = both parts

#[kata_harness::test]
async fn stage3_the_server_gets_the_first_bytes_before_a_slow_source_ends() {
    let dir = TestDir::new();
    let server = server(&dir);
    let (io, _) = recorded_connection(&server);
    let (mut source, source_end) = pipe();
    let start = Instant::now();
    let (first, second) = (b"first part\n".repeat(91), b"second part\n".repeat(84));
    let feed = async {
        let _ = source.write_all(&first[..1000]).await;
        tokio::time::sleep_until(start + ms(300)).await;
        let _ = source.write_all(&second[..1000]).await;
        drop(source);
    };
    let looked_at = [ms(100)];
    let ((result, returned_at), (), samples) = within_real_time(
        "upload(slow.txt) of a source that pauses 300 ms",
        async {
            tokio::join!(
                async {
                    let result = upload(io, "localhost", "slow.txt", source_end).await;
                    (result, start.elapsed())
                },
                feed,
                sample_output(&dir, &["slow.txt"], start, &looked_at),
            )
        },
        Duration::from_secs(2),
        &STAGE3.hint(
            "a spawn_blocking task that waits for the source (an encoder reading it through \
             SyncIoBridge) stays in flight while the source is slow, and tokio holds the \
             paused clock still meanwhile. Read the source in async code and send the encoder \
             to the blocking pool for one chunk at a time",
        ),
    )
    .await;
    check_seq(
        "bytes the server had written 100 ms in, while the source paused after 1000 bytes",
        &samples,
        &[(At(ms(100)), 1000)],
        &STAGE3.hint(
            "send each chunk as soon as it is read, compressed and flushed: \
             GzEncoder::flush() (a sync flush) ends the deflate block, so the server can decode \
             everything sent so far. Without it zlib keeps the bytes until it has a block's \
             worth; reading the source whole first sends nothing until it ends",
        ),
    );
    let size = expect_client_ok(
        "upload(slow.txt) of a source that pauses 300 ms",
        result,
        &STAGE3.hint(CLIENT_NOTHING_FAILS),
    );
    check_eq("its result", size, 2000, &STAGE3.hint(CLIENT_EVERY_BYTE));
    assert_elapsed(
        "upload's return",
        returned_at,
        ms(300),
        &STAGE3.hint("the upload is done when the source ends and the server answers, at 300 ms"),
    );
    check_bytes(
        "slow.txt",
        &read_output(&dir, "slow.txt", &STAGE3.hint(CLIENT_EVERY_BYTE)),
        &[&first[..1000], &second[..1000]].concat(),
        &STAGE3.hint(CLIENT_EVERY_BYTE),
    );
}

// The connection stops taking bytes (nobody reads the server's end, as when the server's disk
// is slow and its TCP window has closed): the client must stop reading its source a few chunks
// later, not go on compressing it into memory.
//
//   source (16 MiB, random):  read, compress, send ... read, compress (waits for room) ...
//   connection (64 KiB):      taken ......... full: nothing more is taken, ever
//   1 s later:                at most 4 MiB of the source read

#[kata_harness::test]
async fn stage3_the_client_stops_reading_when_the_connection_stops_taking() {
    let (io, _nobody_reads) = pipe();
    let (source, read) = Counted::random(16 * MIB as u64);
    let what = "upload(16 MiB of random bytes) over a connection nobody reads";
    tokio::select! {
        result = upload(io, "localhost", "big.bin", Ready(source)) => fail(
            what,
            format_args!("it returned {result:?}"),
            "still waiting for the connection to take more",
            &STAGE3.hint("nobody reads the connection: the upload can only wait"),
        ),
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    let read = read.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{what}: {} of the source read", size(read as usize));
    check(
        &format!("{what}: the bytes read from the source once the connection was full"),
        read <= 4 * MIB as u64,
        size(read as usize),
        "at most 4 MiB: a few chunks in the channel, hyper's buffer and the connection",
        &STAGE3.hint(
            "backpressure: a bounded channel (mpsc::channel(CHANNEL_CAPACITY)) between the \
             compressor and the body, so the compressor waits for room when hyper stops \
             pulling frames. An unbounded (or very deep) channel, or a source read whole, \
             queues the upload in memory when the server is slow",
        ),
    );
}

#[kata_harness::test]
#[case::empty(Input::Empty)]
#[case::one_byte(Input::OneByte)]
#[case::every_byte_value(Input::EveryByteValue)]
#[case::text(Input::Text(300 * KIB))]
#[case::random(Input::Random(MIB))]
async fn stage3_uploads_round_trip_byte_for_byte(#[case] input: Input) {
    let dir = TestDir::new();
    let server = server(&dir);
    let data = input.bytes();
    let (io, _) = recorded_connection(&server);
    let what = format!("upload(data) of {input}");
    let size = expect_client_ok(
        &what,
        upload(io, "localhost", "data", &data[..]).await,
        &STAGE3.hint(CLIENT_NOTHING_FAILS),
    );
    check_eq(
        &format!("{what}: its result"),
        size,
        data.len() as u64,
        &STAGE3.hint(CLIENT_EVERY_BYTE),
    );
    check_bytes(
        "data, on the server",
        &read_output(&dir, "data", &STAGE3.hint(CLIENT_EVERY_BYTE)),
        &data,
        &STAGE3.hint(CLIENT_EVERY_BYTE),
    );
}

#[kata_harness::test]
#[case::bad_name(".hidden", Limits { ..ROOMY }, 4, 400, "name", None)]
#[case::server_full("report.txt", Limits { ..ROOMY }, 0, 503, "try again", Some(RETRY_AFTER_SECS))]
#[case::over_the_cap("report.txt", Limits { compressed: 64 * 1024, ..ROOMY }, 4, 413, "compressed", None)]
async fn stage3_a_refusal_is_an_error_with_the_status_and_the_message(
    #[case] name: &str,
    #[case] limits: Limits,
    #[case] max_uploads: usize,
    #[case] status: u16,
    #[case] word: &str,
    #[case] retry_after: Option<u64>,
) {
    let dir = TestDir::new();
    let server = Server::new(settings(&dir, limits, max_uploads));
    let (io, _) = recorded_connection(&server);
    let data = data::random_bytes(8, MIB);
    let what = format!("upload({name}) of 1 MiB, answered {status}");
    let result = completes_within(
        &what,
        upload(io, "localhost", name, &data[..]),
        Duration::from_secs(1),
        &STAGE3.hint(
            "the server may answer before the body has been sent (413, 503) and read no more \
             of it: hyper then gives the answer, and the compressor must stop when its channel \
             closes, instead of waiting for room",
        ),
    )
    .await;
    let (actual_status, message, actual_retry) = match result {
        Err(ClientError::Refused {
            status,
            message,
            retry_after,
        }) => (status, message, retry_after),
        other => fail(
            &format!("{what}: not a refusal"),
            format_args!("{other:?}"),
            format_args!("Err(ClientError::Refused {{ status: {status}, .. }})"),
            &STAGE3.hint("an answer other than 201 is ClientError::Refused with its status"),
        ),
    };
    check_eq(
        &format!("{what}: the status in ClientError::Refused"),
        actual_status.as_u16(),
        status,
        &STAGE3.hint("keep the server's status as it was"),
    );
    check(
        &format!("{what}: the message in ClientError::Refused"),
        message.contains(word) && !message.ends_with('\n'),
        format_args!("{message:?}"),
        format_args!("the server's message, which mentions {word:?}, without its newline"),
        &STAGE3.hint(
            "read the answer's body (BodyExt::collect, through http_body_util::Limited: an \
             answer is a line) and keep it, trimmed, as the message",
        ),
    );
    check_eq(
        &format!("{what}: retry_after in ClientError::Refused"),
        actual_retry,
        retry_after.map(Duration::from_secs),
        &STAGE3.hint("retry_after is the Retry-After header in seconds, when there is one"),
    );
}

#[kata_harness::test]
async fn stage3_a_source_that_fails_is_a_source_error_and_the_request_is_aborted() {
    let dir = TestDir::new();
    let server = server(&dir);
    let (io, seen) = recorded_connection(&server);
    let what = "upload(report.txt) of a source that fails after 200 KiB";
    let source = Broken::new(data::text(200 * KIB), ErrorKind::InvalidData);
    let result = upload(io, "localhost", "report.txt", source).await;
    match result {
        Err(ClientError::Source(error)) => check_eq(
            &format!("{what}: the io::Error in ClientError::Source"),
            error.kind(),
            ErrorKind::InvalidData,
            &STAGE3.hint("keep the source's own io::Error in ClientError::Source"),
        ),
        other => fail(
            &format!("{what}: the wrong result"),
            format_args!("{other:?}"),
            "Err(ClientError::Source(the source's io::Error))",
            &STAGE3.hint(
                "the source's error is the cause: report it, not the HTTP failure that follows \
                 (look at the compressor's result before the exchange's)",
            ),
        ),
    }
    tokio::time::sleep(ms(10)).await;
    let seen = seen.lock().expect("poisoned").clone();
    check(
        &format!("{what}: the end of the request as the server got it"),
        !seen.ends_with(b"0\r\n\r\n"),
        show_bytes(&seen[seen.len().saturating_sub(16)..]),
        "a body cut short, without the last chunk (0 CRLF CRLF) that says it is complete",
        &STAGE3.hint(
            "abort the request: send an Err down the body (hyper then closes the connection \
             without ending the body). Ending the body normally tells the server that a cut \
             short upload is complete",
        ),
    );
    check_listing(&dir, &[], "the failed upload", &STAGE3.hint(NO_STRAYS));
}

#[kata_harness::test]
#[case::a_space_in_the_name("localhost", "my report.txt")]
#[case::a_newline_in_the_name("localhost", "report\n.txt")]
#[case::a_newline_in_the_host("local\nhost", "report.txt")]
async fn stage3_a_name_or_host_that_cannot_be_in_a_request_is_a_target_error(
    #[case] host: &str,
    #[case] name: &str,
) {
    let dir = TestDir::new();
    let (io, seen) = recorded_connection(&server(&dir));
    let what = format!("upload(io, {host:?}, {name:?}, ..)");
    let result = upload(io, host, name, &b"hello\n"[..]).await;
    check(
        &format!("{what}: the result"),
        matches!(&result, Err(ClientError::Target { host: h, name: n }) if h == host && n == name),
        format_args!("{result:?}"),
        format_args!("Err(ClientError::Target {{ host: {host:?}, name: {name:?} }})"),
        &STAGE3.hint(
            "build the request before anything else (http::Request::builder), and turn its \
             error into ClientError::Target: a name or host that cannot be in a request is the \
             caller's mistake, found before a byte is sent",
        ),
    );
    tokio::time::sleep(ms(10)).await;
    check_eq(
        &format!("{what}: bytes the server got"),
        seen.lock().expect("poisoned").len(),
        0,
        &STAGE3.hint("nothing is sent for a request that cannot be made"),
    );
}

#[kata_harness::test]
#[case::not_a_number("hello\n")]
#[case::another_size("5\n")]
async fn stage3_a_201_that_is_not_the_size_sent_is_an_answer_error(#[case] body: &str) {
    // The test plays a server that answers 201 with `body` once it has the whole request.
    let (io, mut far) = pipe();
    let serve = async move {
        let mut request = Vec::new();
        while !request.ends_with(b"0\r\n\r\n") {
            if tokio::io::AsyncReadExt::read_buf(&mut far, &mut request)
                .await
                .unwrap_or(0)
                == 0
            {
                return;
            }
        }
        let answer = format!(
            "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = far.write_all(answer.as_bytes()).await;
        let _ = far.shutdown().await;
        std::future::pending::<()>().await;
    };
    let what = format!("upload(report.txt) of 10 bytes, answered 201 {body:?}");
    let result = tokio::select! {
        result = upload(io, "localhost", "report.txt", &b"0123456789"[..]) => result,
        () = serve => unreachable!(),
    };
    check(
        &format!("{what}: the result"),
        matches!(result, Err(ClientError::Answer { .. })),
        format_args!("{result:?}"),
        "Err(ClientError::Answer { .. })",
        &STAGE3.hint(
            "a 201's body is the size the server stored: parse it (trimmed), and compare it \
             with the bytes read from the source; anything else is ClientError::Answer",
        ),
    );
}

#[kata_harness::test(real_time, watchdog_secs = 30)]
async fn stage3_compressing_happens_off_the_runtime_thread() {
    // Real time: the server runs on a runtime of its own, on another thread, so that what the
    // runtime's thread here does is the client's alone; the paused clock would not wait for it
    // (it jumps ahead whenever this runtime has nothing to do).
    let dir = TestDir::new();
    let server = server(&dir);
    let data = letters(4 * MIB);
    let warm_up = support::serve_on_another_thread(server.clone());
    expect_client_ok(
        "a first small upload",
        upload(warm_up, "localhost", "warm-up", &b"warm up"[..]).await,
        &STAGE3.hint(CLIENT_NOTHING_FAILS),
    );
    let compressing = blocking::cost_of(|| drop(gzip(&data, gzip_upload::CLIENT_LEVEL)));
    let io = support::serve_on_another_thread(server);
    let what = "upload(letters) of 4 MiB of random letters";
    let (result, cost) =
        blocking::runtime_cost(upload(io, "localhost", "letters", &data[..])).await;
    expect_client_ok(what, result, &STAGE3.hint(CLIENT_NOTHING_FAILS));
    eprintln!("{what}: the runtime's thread: {cost}; compressing: {compressing:.1?}");
    let limit = compressing / 3;
    check(
        &format!("{what}: the runtime's thread did the compressing"),
        cost.figure() < limit,
        format_args!("{cost}: every other task waited that long"),
        format_args!(
            "under {limit:.1?}, a third of the {compressing:.1?} that compressing these bytes \
             takes here"
        ),
        &STAGE3.hint(
            "compressing is CPU work with no .await in it: move the encoder into \
             spawn_blocking for each chunk, and get it back with the compressed bytes",
        ),
    );
}

#[kata_harness::test(real_time)]
async fn stage3_on_loopback_the_client_uploads_to_the_server() {
    // Real time: a real socket, to the server's real accept loop.
    let dir = TestDir::new();
    let mut server = Loopback::start(settings(&dir, ROOMY, 4)).await;
    let data = data::text(MIB);
    let stream = server.stream().await.expect("the server listens");
    let host = server.addr.to_string();
    let what = format!("upload(stream to {host}, {host}, report.txt) of 1 MiB of text");
    let size = expect_client_ok(
        &what,
        upload(stream, &host, "report.txt", &data[..]).await,
        &STAGE3.hint(CLIENT_NOTHING_FAILS),
    );
    check_eq(
        &format!("{what}: its result"),
        size,
        MIB as u64,
        &STAGE3.hint(CLIENT_EVERY_BYTE),
    );
    check_bytes(
        "report.txt, on the server",
        &read_output(&dir, "report.txt", &STAGE3.hint(CLIENT_EVERY_BYTE)),
        &data,
        &STAGE3.hint(CLIENT_EVERY_BYTE),
    );
    server.shut_down();
    server.finished().await;
}

/// Unwraps a client's result the test needs.
#[track_caller]
fn expect_client_ok(
    what: &str,
    result: Result<u64, ClientError>,
    hint: &kata_harness::Hint,
) -> u64 {
    result.unwrap_or_else(|error| {
        fail(
            &format!("{what}: failed"),
            format_args!("Err({error:?}): \"{error}\""),
            "Ok(the size the server stored)",
            hint,
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Hints that several tests give

/// For an upload that should have succeeded.
const NOTHING_FAILS: &str = "valid gzip within the caps, into a directory that exists: nothing \
                             here should fail, and the error says which step did";
/// For output that differs from what was sent.
const EVERY_BYTE: &str = "the stored bytes differ from what the client gzipped: every chunk of \
                          output written once, in order, whole (write_all, not write), and the \
                          body read to its end: only a read of 0 bytes is the end";
const RENAME_ONTO_DST: &str = "write the output to a temporary file in dst's directory, then \
                               rename it onto dst (TempPath::persist) once the body is decoded";
const NO_STRAYS: &str = "the temporary file is renamed onto dst on success and deleted on \
                         failure (dropping its TempPath deletes it): nothing else may be left \
                         in the directory";
const LEFT_ALONE: &str = "write into a temporary file beside dst and rename it onto dst only once \
                          everything succeeded: on an error dst stays as it was, and the \
                          temporary file goes (drop its TempPath)";
const DROPPED: &str = "dropping the upload's future must stop the work and delete the temporary \
                       file: keep the TempPath in the future and run the stages inside it \
                       (tokio::try_join!), not in tokio::spawn'ed tasks that carry on and rename \
                       onto dst after the caller gave up";
const HOLDS_IT: &str = "stream it: read a chunk of the body, decode it, write what it gives, \
                        read the next; bounded channels (mpsc::channel(CHANNEL_CAPACITY)) keep a \
                        stage that gets ahead from queueing the upload in memory. Reading the \
                        body whole, or an unbounded channel, holds it all";
const WAITS_FOR_THE_END: &str = "the error was known, but the upload went on waiting for the rest \
                                 of the body, which a client may never send: join the stages \
                                 with tokio::try_join!, so the first error ends them all, and \
                                 check the caps and the data as the bytes come";
const WHICH_ERROR: &str = "the first stage to fail says what went wrong: a body that is not gzip \
                           is NotGzip, damaged data is Corrupt, a body over limits.compressed is \
                           TooLarge(Compressed)";
const LIMIT_IN_ERROR: &str = "UploadError::TooLarge carries the cap that was passed, as \
                              configured in Limits";
const NOT_GZIP: &str = "a body that does not start with the gzip magic bytes 1f 8b (an empty body \
                        too) is UploadError::NotGzip: check its first two bytes yourself, \
                        before the decoder sees them (flate2 calls a wrong magic number an \
                        \"invalid gzip header\", like any other bad header byte), even when \
                        they come in two reads";
const TRUNCATED: &str = "a body that ends before its gzip stream does is UploadError::Truncated: \
                         flate2 reports it as an io::Error of kind UnexpectedEof once it knows \
                         the input has ended. The input must say \"no more\" only when the body \
                         has really ended, and \"not yet\" (WouldBlock) while it waits";
const CORRUPT: &str = "damaged gzip (bad data, an unknown method, a CRC or length that does not \
                       match, bytes after the last member that are not gzip) is \
                       UploadError::Corrupt, with the decoder's message as the reason";
const WRITE_ERROR: &str = "an error creating, writing or renaming the output is \
                           UploadError::Write { path: dst, source: the io::Error }, and it ends \
                           the upload at once";
const SHED_AT_ONCE: &str = "with every slot taken, an upload is answered 503 Service Unavailable \
                            at once, before its body is read";
const CUT_AT_ONCE: &str = "a shutdown lets uploads in flight finish, up to Config::drain: ask each \
                           connection to close after its answer (graceful_shutdown), then wait \
                           for them, and cut only those still busy at the deadline";
const NO_TASK_LEFT: &str = "when serve() returns, every connection's task has ended: keep them in \
                            a JoinSet (not loose tokio::spawn's), and after the deadline abort \
                            the rest and wait for them (JoinSet::shutdown)";
const CLIENT_NOTHING_FAILS: &str = "a readable source to a server with room: nothing here should \
                                    fail, and the error says which step did";
const CLIENT_EVERY_BYTE: &str = "the server stored other bytes than the source's: every chunk of \
                                 the source read once, compressed once by one encoder, in order, \
                                 and the encoder finished (its trailer sent) at the source's end";
const FLUSH: &str = "the last write failed (the disk is full) and the upload must say so: tokio's \
                     File hands each write to the blocking pool and returns at once, so its \
                     error only shows at the next call: call flush().await before the rename";
