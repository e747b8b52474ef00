//! `berth registry serve|gc`: berth's own OCI distribution registry
//! (`berth-registry-server`), served on one TCP address, and its offline garbage collector.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use berth_registry_server::{Htpasswd, Options, Registry, gc};
use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

/// berth's registry server.
#[derive(Parser, Debug)]
#[command(name = "berth registry", bin_name = "berth registry", version, about)]
struct Flags {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the OCI distribution API (HTTP, or HTTPS with --tls-cert/--tls-key).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5000")]
        addr: SocketAddr,
        /// Directory holding blobs and repositories.
        #[arg(long)]
        root: PathBuf,
        /// Allow deleting manifests, tags and blobs.
        #[arg(long)]
        delete_enabled: bool,
        /// Require Basic auth against this htpasswd file (bcrypt entries).
        #[arg(long)]
        htpasswd: Option<PathBuf>,
        /// Serve HTTPS with this PEM certificate chain.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Remove blobs that no manifest references (the server must be stopped).
    Gc {
        /// Directory holding blobs and repositories.
        #[arg(long)]
        root: PathBuf,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs `berth registry …`; `args[0]` is `registry`.
pub fn main(args: Vec<String>) -> i32 {
    let flags = match Flags::try_parse_from(args) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match flags.command {
        Command::Serve {
            addr,
            root,
            delete_enabled,
            htpasswd,
            tls_cert,
            tls_key,
        } => {
            let tls = tls_cert.zip(tls_key);
            serve(addr, root, delete_enabled, htpasswd, tls)
        }
        Command::Gc { root, dry_run } => collect(root, dry_run),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth registry: {e:#}");
            1
        }
    }
}

fn serve(
    addr: SocketAddr,
    root: PathBuf,
    delete_enabled: bool,
    htpasswd: Option<PathBuf>,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let htpasswd = htpasswd
        .map(|path| Htpasswd::load(&path).map(Arc::new))
        .transpose()?;
    let tls = tls
        .map(|(cert, key)| berth_registry_server::tls::load(&cert, &key))
        .transpose()?;
    let options = Options {
        delete_enabled,
        htpasswd,
    };
    let registry = Registry::open(&root, options)
        .with_context(|| format!("open registry root {}", root.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listen on {addr}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "berth registry serving {} on {scheme}://{addr}",
            root.display()
        );
        let served = async {
            match tls {
                Some(config) => berth_registry_server::tls::serve(listener, registry, config).await,
                None => berth_registry_server::serve(listener, registry).await,
            }
        };
        let mut terminate = signal(SignalKind::terminate())?;
        // Uploads cut short by a stop stay resumable: their sessions live on disk.
        tokio::select! {
            served = served => served.context("serve"),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminate.recv() => Ok(()),
        }
    })
}

fn collect(root: PathBuf, dry_run: bool) -> Result<()> {
    let report = gc::collect(&root, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for digest in &report.removed {
        println!("{verb} {digest}");
    }
    for upload in &report.stale_uploads {
        println!("{verb} stale upload {upload}");
    }
    println!(
        "{verb} {} blobs ({} bytes), kept {}",
        report.removed.len(),
        report.bytes,
        report.kept
    );
    Ok(())
}
