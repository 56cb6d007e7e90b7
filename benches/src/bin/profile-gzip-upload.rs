//! The gzip-upload demo: the reference server on loopback, to upload to by hand.
//!
//! `just profile gzip-upload` runs it. It starts the kata's [`Server`] on 127.0.0.1 (never any
//! other address), prints the address and how to upload to it with `curl` or with the kata's
//! own client, and serves until Ctrl-C. Then it shuts down the way the server does (stop
//! accepting, let the uploads in flight finish for a while, cut the rest) and prints what it
//! drained and cut, and what is in the directory.
//!
//! ```text
//! profile-gzip-upload [--port 0] [--dir DIR]                  the server, until Ctrl-C
//! profile-gzip-upload --upload FILE --port PORT [--name NAME] the kata's client, one upload
//! ```
//!
//! Without `--dir`, uploads go to a temporary directory that is deleted when the demo ends.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use gzip_upload::{Config, Server, upload};

/// The gzip-upload server on 127.0.0.1 until Ctrl-C, or (with --upload) one upload to it.
#[derive(Parser)]
struct Args {
    /// The port on 127.0.0.1: to listen on (0: any free port), or with --upload, to send to.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where the server stores uploads (created if missing; default: a temporary directory,
    /// deleted on exit).
    #[arg(long, conflicts_with = "upload")]
    dir: Option<PathBuf>,
    /// Upload FILE with the kata's client to the server on --port, instead of serving.
    #[arg(long, value_name = "FILE")]
    upload: Option<PathBuf>,
    /// The name to upload FILE as (default: FILE's own name).
    #[arg(long, requires = "upload")]
    name: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.upload {
        Some(file) => client(file, args.name.as_deref(), args.port),
        None => server(args.dir.as_deref(), args.port),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("profile-gzip-upload: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start a tokio runtime")
}

/// The server, on 127.0.0.1:`port`, until Ctrl-C.
fn server(dir: Option<&Path>, port: u16) -> Result<()> {
    // Without --dir, a temporary directory that lives (and is deleted) with `temp`.
    let (temp, dir) = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (None, dir.to_owned())
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("gzip-upload-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            let dir = temp.path().to_owned();
            (Some(temp), dir)
        }
    };
    let config = Config::new(&dir);
    let runtime = runtime()?;
    let shutdown = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let address = listener
            .local_addr()
            .context("cannot read the listener's address")?;
        print_banner(address, &dir, &config, temp.is_some());
        let drain = config.drain;
        let ctrl_c = async move {
            // If the signal cannot be caught, serve until killed rather than stop at once.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            println!(
                "\nCtrl-C: stopping; uploads in flight get up to {} s to finish...",
                drain.as_secs()
            );
        };
        anyhow::Ok(Server::new(config).serve(listener, ctrl_c).await)
    })?;
    println!(
        "Shut down: {} connection(s) drained, {} cut.",
        shutdown.drained, shutdown.cut
    );
    print_stored(&dir)?;
    if temp.is_some() {
        println!("Deleting {}.", dir.display());
    }
    Ok(())
}

fn print_banner(address: SocketAddr, dir: &Path, config: &Config, temp: bool) {
    let port = address.port();
    let mib = |bytes: u64| bytes >> 20;
    println!("gzip-upload server listening on http://{address}");
    println!(
        "storing uploads in {}{}",
        dir.display(),
        if temp {
            " (a temporary directory, deleted on exit: --dir DIR keeps them)"
        } else {
            ""
        }
    );
    println!(
        "caps: {} MiB gzipped, {} MiB decompressed; {} uploads at once\n",
        mib(config.limits.compressed),
        mib(config.limits.decompressed),
        config.max_uploads
    );
    println!("Upload a file with curl:\n");
    println!(
        "    gzip -c FILE | curl --data-binary @- -H 'Content-Encoding: gzip' -X PUT \
         http://127.0.0.1:{port}/uploads/NAME\n"
    );
    println!("or with the kata's own client, which gzips as it sends:\n");
    println!("    just profile gzip-upload --upload FILE --port {port} [--name NAME]\n");
    println!("Ctrl-C stops the server gracefully.");
}

/// What the directory holds once the server has stopped.
fn print_stored(dir: &Path) -> Result<()> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            meta.is_file()
                .then(|| (entry.file_name().to_string_lossy().into_owned(), meta.len()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        println!("Nothing stored in {}.", dir.display());
    } else {
        println!("Stored in {}:", dir.display());
        for (name, size) in files {
            println!("    {name}  {size} bytes");
        }
    }
    Ok(())
}

/// One upload of `file` with the kata's client to 127.0.0.1:`port`.
fn client(file: &Path, name: Option<&str>, port: u16) -> Result<()> {
    if port == 0 {
        bail!("--upload needs the server's --port (the one it printed)");
    }
    let name = match name {
        Some(name) => name.to_owned(),
        None => file
            .file_name()
            .with_context(|| format!("{} has no file name: pass --name", file.display()))?
            .to_string_lossy()
            .into_owned(),
    };
    let host = format!("127.0.0.1:{port}");
    runtime()?.block_on(async {
        let source = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot open {}", file.display()))?;
        let connection = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("cannot connect to {host}: is the server running?"))?;
        let started = Instant::now();
        let size = upload(connection, &host, &name, source)
            .await
            .with_context(|| format!("uploading {} as {name:?}", file.display()))?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "stored {name} on {host}: {size} bytes in {seconds:.2} s ({:.0} MiB/s)",
            size as f64 / (1024.0 * 1024.0) / seconds.max(1e-9)
        );
        Ok(())
    })
}
