//! The gzip-upload server against a buffering one, on one large upload (`just bench-io`).
//!
//! ```text
//! bench --dir DIR [--size-mib 256] [--runs 3]
//! ```
//!
//! Makes (once) a gzipped file in DIR of `--size-mib` MiB of log-like text (`gzip -6`'s level),
//! then uploads it on loopback (127.0.0.1 only), `--runs` times to each server, alternating:
//!
//! - ours: the kata's reference [`gzip_upload::Server`], which decompresses the body as it
//!   arrives and streams it to disk;
//! - the peer: what a first server often looks like, on hyper too: collect the whole body with
//!   http-body-util, decompress it whole with flate2, write the file.
//!
//! Each server runs in a child process of this binary (the hidden `serve` subcommand, on the
//! same multi-threaded runtime), and both are driven by the same client in this process: a
//! hyper client that streams the `.gz` from disk with a `Content-Length`. The figures are the
//! wall time from connecting to the `201`, and the server's peak RSS (`VmHWM` in
//! `/proc/<pid>/status`, read once the answer is in); the medians are printed as Markdown rows
//! of the benchmark table. Every stored file is checked against the text, byte for byte.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kata_benches::{human, row};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// The gzip-upload server against a buffering hyper server, on one large upload.
#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Args {
    /// Where to put the gzipped input (reused) and the uploads (created if missing).
    #[arg(long, required = true)]
    dir: Option<PathBuf>,
    /// Size of the upload, in MiB of decompressed text.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// Runs of each side; the rows show the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[command(subcommand)]
    command: Option<Internal>,
}

#[derive(Subcommand)]
enum Internal {
    /// Runs one server on 127.0.0.1, prints its port, and serves until stdin closes.
    #[command(hide = true)]
    Serve { kind: Kind, dir: PathBuf },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// The kata's reference server.
    Ours,
    /// Collect the body, decompress it whole, write it.
    Buffering,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Buffering => "buffering",
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// The client's reads of the `.gz`, and so the size of its body's frames.
const CHUNK: usize = 64 * 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Internal::Serve { kind, dir }) => serve(kind, &dir),
        None => bench(
            args.dir.as_deref().expect("clap requires --dir"),
            args.size_mib,
            args.runs.max(1),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The child process: one server
// ---------------------------------------------------------------------------------------------

/// Serves on 127.0.0.1 (any free port, printed as one line on stdout) until stdin closes.
fn serve(kind: Kind, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start a tokio runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("cannot listen on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "{port}")?;
        stdout.flush()?;
        drop(stdout);
        // The parent closes our stdin when it is done with us (or when it dies).
        let stop = async {
            let mut rest = Vec::new();
            let _ = tokio::io::stdin().read_to_end(&mut rest).await;
        };
        match kind {
            Kind::Ours => {
                let mut config = gzip_upload::Config::new(dir);
                // No caps in the way of the benchmark's file, whatever its size.
                config.limits.compressed = u64::MAX;
                config.limits.decompressed = u64::MAX;
                gzip_upload::Server::new(config).serve(listener, stop).await;
            }
            Kind::Buffering => serve_buffering(listener, dir, stop).await,
        }
        anyhow::Ok(())
    })
}

/// The peer: a hyper server that buffers each upload whole.
async fn serve_buffering(listener: TcpListener, dir: &Path, stop: impl Future<Output = ()>) {
    let dir = Arc::new(dir.to_owned());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let dir = dir.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let dir = dir.clone();
                        async move { Ok::<_, std::convert::Infallible>(buffered(&dir, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

/// `PUT /uploads/{name}`, the simple way: the whole body in memory, then the whole file.
async fn buffered(dir: &Path, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let name = match request.uri().path().strip_prefix("/uploads/") {
        Some(name)
            if request.method() == Method::PUT
                && !name.is_empty()
                && !name.starts_with('.')
                && !name.contains(['/', '\\']) =>
        {
            name.to_owned()
        }
        _ => return answer(StatusCode::NOT_FOUND, "not an upload".to_owned()),
    };
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => return answer(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let dst = dir.join(name);
    let stored = tokio::task::spawn_blocking(move || -> io::Result<u64> {
        let mut text = Vec::new();
        MultiGzDecoder::new(&body[..]).read_to_end(&mut text)?;
        std::fs::write(&dst, &text)?;
        Ok(text.len() as u64)
    })
    .await;
    match stored {
        Ok(Ok(size)) => answer(StatusCode::CREATED, size.to_string()),
        Ok(Err(error)) => answer(StatusCode::BAD_REQUEST, error.to_string()),
        Err(error) => answer(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

fn answer(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message + "\n")));
    *response.status_mut() = status;
    response
}

// ---------------------------------------------------------------------------------------------
// The parent: the client and the measurements
// ---------------------------------------------------------------------------------------------

/// A server in a child process, stopped (stdin closed, then waited for) when dropped.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    fn start(kind: Kind, dir: &Path) -> Result<Self> {
        let this = std::env::current_exe().context("cannot find this program's own path")?;
        let mut child = Command::new(this)
            .arg("serve")
            .arg(kind.name())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start a server process")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("cannot read the server's port")?;
        // From here on, dropping `server` stops the child, whatever happens.
        let mut server = Self { child, port: 0 };
        server.port = line
            .trim()
            .parse()
            .with_context(|| format!("the {} server did not print its port", kind.name()))?;
        Ok(server)
    }

    /// The server's peak resident memory so far, from `VmHWM` in `/proc/<pid>/status`.
    fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(kib * 1024)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// One upload of `gz` as `name` to the server on `port`: the size it stored.
async fn send(port: u16, name: &str, gz: &Path) -> Result<u64> {
    let file = tokio::fs::File::open(gz)
        .await
        .with_context(|| format!("cannot open {}", gz.display()))?;
    let length = file.metadata().await?.len();
    let stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("the HTTP handshake failed")?;
    let connection = tokio::spawn(connection);
    // The file, a chunk at a time: hyper asks for the next one when the socket took the last.
    let frames = futures::stream::try_unfold(file, |mut file| async move {
        let mut chunk = vec![0; CHUNK];
        let read = file.read(&mut chunk).await?;
        chunk.truncate(read);
        Ok::<_, io::Error>((read > 0).then(|| (Frame::data(Bytes::from(chunk)), file)))
    });
    let request = Request::put(format!("/uploads/{name}"))
        .header(HOST, format!("127.0.0.1:{port}"))
        .header(CONTENT_ENCODING, "gzip")
        .header(CONTENT_LENGTH, length)
        .body(StreamBody::new(frames))?;
    let response = sender
        .send_request(request)
        .await
        .context("the upload failed")?;
    let status = response.status();
    let body = Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|error| anyhow::anyhow!("cannot read the answer: {error}"))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    drop(sender);
    let _ = connection.await;
    ensure!(
        status == StatusCode::CREATED,
        "the server answered {status}: {}",
        body.trim()
    );
    body.trim()
        .parse()
        .with_context(|| format!("the server's answer is not a size: {body:?}"))
}

/// One timed upload.
struct Run {
    time: Duration,
    /// The server's peak RSS once it answered.
    rss: Option<u64>,
    /// Its peak RSS before the upload: the runtime's threads and the binary.
    idle: Option<u64>,
}

/// The medians of one side's runs.
struct Side {
    time: Duration,
    rss: Option<u64>,
    idle: Option<u64>,
}

fn median(runs: &[Run]) -> Side {
    let mut times: Vec<Duration> = runs.iter().map(|run| run.time).collect();
    times.sort_unstable();
    let middle = |figure: fn(&Run) -> Option<u64>| {
        let mut figures: Vec<u64> = runs.iter().filter_map(figure).collect();
        figures.sort_unstable();
        figures.get(figures.len() / 2).copied()
    };
    Side {
        time: times[times.len() / 2],
        rss: middle(|run| run.rss),
        idle: middle(|run| run.idle),
    }
}

fn bench(dir: &Path, size_mib: u64, runs: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let size = size_mib * 1024 * 1024;
    let block = kata_harness::data::text(1 << 20);
    let gz = dir.join(format!("input-{size_mib}MiB.txt.gz"));
    make_input(&gz, &block, size)?;
    let gz_size = std::fs::metadata(&gz)?.len();
    let runtime = tokio::runtime::Runtime::new().context("cannot start a tokio runtime")?;

    eprintln!(
        "{runs} run(s) of each server, uploading {}...",
        gz.display()
    );
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    // Alternate the sides, so a disturbance on the machine is shared rather than one-sided.
    for _ in 0..runs {
        for (kind, results) in [(Kind::Ours, &mut ours), (Kind::Buffering, &mut peer)] {
            let uploads = dir.join(kind.name());
            let dst = uploads.join("upload.txt");
            // Each run writes a new file, rather than over the last run's.
            match std::fs::remove_file(&dst) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    return Err(error).context(format!("cannot remove {}", dst.display()));
                }
                _ => {}
            }
            let server = ServerProcess::start(kind, &uploads)?;
            let idle = server.peak_rss();
            let started = Instant::now();
            let stored = runtime
                .block_on(send(server.port, "upload.txt", &gz))
                .with_context(|| format!("uploading to the {} server", kind.name()))?;
            let time = started.elapsed();
            let rss = server.peak_rss();
            drop(server);
            ensure!(
                stored == size,
                "the {} server stored {stored} bytes of {size}",
                kind.name()
            );
            check_output(&dst, &block, size)
                .with_context(|| format!("the {} server's file", kind.name()))?;
            results.push(Run { time, rss, idle });
        }
    }
    if ours.iter().chain(&peer).any(|run| run.rss.is_none()) {
        eprintln!("note: no /proc/<pid>/status here, so no peak RSS figures");
    }

    let (ours, peer) = (median(&ours), median(&peer));
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "One upload of {size_mib} MiB of log-like text ({:.1} MiB gzipped) on loopback, median \
         of {runs} run(s), each server a child process; {cores} core(s).\n",
        gz_size as f64 / MIB
    );
    println!("| row | ours | peer | peer's figure | ours / peer | target |");
    println!("|---|---|---|---|---|---|");
    let what = format!(
        "gzip upload, {size_mib} MiB ({:.0} MiB gzipped)",
        gz_size as f64 / MIB
    );
    let peer_name = "hyper server that collects the body, gunzips it whole, writes the file";
    let throughput = |side: &Side| size as f64 / MIB / side.time.as_secs_f64();
    row(
        &format!("{what}: wall time"),
        &format!("{} ({:.0} MiB/s)", human(ours.time), throughput(&ours)),
        peer_name,
        &format!("{} ({:.0} MiB/s)", human(peer.time), throughput(&peer)),
        ours.time.as_secs_f64() / peer.time.as_secs_f64(),
        "<= 1.5x",
    );
    // The peak, and in brackets what the same process held before the upload.
    let rss = |peak: u64, idle: Option<u64>| match idle {
        Some(idle) => format!(
            "{:.1} MiB ({:.1} MiB idle)",
            peak as f64 / MIB,
            idle as f64 / MIB
        ),
        None => format!("{:.1} MiB", peak as f64 / MIB),
    };
    if let (Some(ours_rss), Some(peer_rss)) = (ours.rss, peer.rss) {
        row(
            &format!("{what}: server's peak RSS"),
            &rss(ours_rss, ours.idle),
            peer_name,
            &rss(peer_rss, peer.idle),
            ours_rss as f64 / peer_rss as f64,
            "flat: a few MiB, whatever the size",
        );
    }
    Ok(())
}

/// Writes the gzip (level 6, `gzip`'s default) of `size` bytes of `block`, over and over, to
/// `path`, unless it is already there. Written beside it and renamed, so an interrupted run does
/// not leave a short file to be reused.
fn make_input(path: &Path, block: &[u8], size: u64) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    eprintln!("making {} ({} MiB of text)...", path.display(), size >> 20);
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut encoder = GzEncoder::new(BufWriter::new(file), Compression::new(6));
    let mut written = 0;
    while written < size {
        let n = (size - written).min(block.len() as u64) as usize;
        encoder.write_all(&block[..n])?;
        written += n as u64;
    }
    encoder.finish()?.flush()?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {}", partial.display()))?;
    Ok(())
}

/// Checks that `path` holds `size` bytes of `block`, over and over.
fn check_output(path: &Path, block: &[u8], size: u64) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut file = BufReader::with_capacity(1 << 20, file);
    let mut buf = vec![0; block.len()];
    let mut offset = 0;
    while offset < size {
        let n = (size - offset).min(block.len() as u64) as usize;
        file.read_exact(&mut buf[..n])
            .with_context(|| format!("{} ends at byte {offset} or soon after", path.display()))?;
        if buf[..n] != block[..n] {
            bail!(
                "{} differs from the input after byte {offset}",
                path.display()
            );
        }
        offset += n as u64;
    }
    ensure!(
        file.read(&mut buf)? == 0,
        "{} is longer than the input",
        path.display()
    );
    Ok(())
}
