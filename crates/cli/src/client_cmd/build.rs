//! `berth build`: the docker CLI's classic `docker build`. The context directory is sent as a
//! tar with `.dockerignore` applied here (the Dockerfile and `.dockerignore` always go), a
//! Dockerfile outside the context is added under a generated name, `-` sends stdin as it is
//! (a tar or a Dockerfile). The daemon's step-by-step stream is printed as it comes; a failed
//! step exits with its code, as docker does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_client::Bytes;
use berth_client::ClientError;
use berth_dockerfile::IgnoreMatcher;
use clap::Parser;

use super::progress::{Renderer, render_stream};
use super::{CliError, CliResult, Invocation, parse};

#[derive(Parser)]
#[command(name = "build", about = "Build an image from a Dockerfile")]
struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// Name of the Dockerfile (Default is 'PATH/Dockerfile')
    #[arg(short, long)]
    file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Set metadata for an image
    #[arg(long = "label")]
    label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    network: String,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    force_rm: bool,
    /// PATH | -
    path: String,
}

/// Largest Dockerfile read from stdin or from outside the context.
const MAX_DOCKERFILE: u64 = 4 << 20;

pub async fn build(inv: &Invocation<'_>) -> CliResult {
    let args: BuildArgs = parse(inv, "build [OPTIONS] PATH | URL | -")?;
    if let Some(iid) = &args.iidfile {
        // As docker: a stale id file never survives a failed build.
        match std::fs::remove_file(iid) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CliError::Message(format!("Removing image ID file: {e}")));
            }
            _ => {}
        }
    }
    let (body, dockerfile, sent) = context_body(&args)?;
    let query = query(&args, dockerfile)?;
    let client = inv.client().await?;
    let response = client
        .post_stream(
            "/build",
            &query,
            body,
            &[("Content-Type", "application/x-tar")],
        )
        .await;
    let sent = sent
        .await
        .map_err(|e| CliError::Message(format!("send the build context: {e}")))?;
    // The daemon's refusal explains more than the broken pipe it caused.
    let response = response?;
    let size = sent?;
    if !args.quiet {
        println!(
            "Sending build context to Docker daemon  {}",
            human_size(size)
        );
    }
    let (aux, held) = if args.quiet {
        let mut r = Renderer::new(Vec::new(), false);
        let aux = render_stream(response, &mut r).await;
        (aux, r.into_inner())
    } else {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let aux = render_stream(response, &mut Renderer::new(std::io::stdout(), tty)).await;
        (aux, Vec::new())
    };
    let aux = match aux {
        Ok(a) => a,
        Err(e) => {
            // `-q` shows what it held back only when the build failed, on stderr.
            let _ = std::io::stderr().write_all(&held);
            return Err(stream_error(e));
        }
    };
    // `-q` prints the daemon's stream: the image id.
    std::io::stdout().write_all(&held)?;
    let id = aux
        .iter()
        .rev()
        .find_map(|a| a.get("ID").and_then(|v| v.as_str()).map(str::to_owned));
    if let (Some(path), Some(id)) = (&args.iidfile, &id) {
        std::fs::write(path, id)
            .map_err(|e| CliError::Message(format!("Writing image ID file: {e}")))?;
    }
    Ok(())
}

/// A failed step: its message on stderr and its code as the exit status (1 when none).
fn stream_error(e: ClientError) -> CliError {
    match e {
        ClientError::Stream { code, message } => {
            eprintln!("{message}");
            CliError::Exit(code.filter(|c| *c > 0 && *c < 256).map_or(1, |c| c as i32))
        }
        other => other.into(),
    }
}

/// The query the docker CLI sends for these flags.
fn query(args: &BuildArgs, dockerfile: String) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut q: Vec<(&'static str, String)> = Vec::new();
    for t in &args.tag {
        berth_reference::Reference::parse_normalized(t).map_err(|e| CliError::Usage {
            message: format!("invalid argument \"{t}\" for \"-t, --tag\" flag: {e}"),
            code: 125,
        })?;
        q.push(("t", t.clone()));
    }
    q.push(("dockerfile", dockerfile));
    let mut build_args = serde_json::Map::new();
    for a in &args.build_arg {
        let value = match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), serde_json::Value::String(v.to_owned())),
            // `--build-arg NAME` takes the value from the environment, or stays unset.
            None => (
                a.clone(),
                std::env::var(a).map_or(serde_json::Value::Null, serde_json::Value::String),
            ),
        };
        build_args.insert(value.0, value.1);
    }
    q.push((
        "buildargs",
        serde_json::Value::Object(build_args).to_string(),
    ));
    let labels: serde_json::Map<String, serde_json::Value> = args
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_owned(), serde_json::Value::String(v.to_owned()))
        })
        .collect();
    q.push(("labels", serde_json::Value::Object(labels).to_string()));
    if let Some(t) = &args.target {
        q.push(("target", t.clone()));
    }
    let flags = [
        ("nocache", args.no_cache),
        ("pull", args.pull),
        ("q", args.quiet),
        ("forcerm", args.force_rm),
    ];
    for (name, on) in flags {
        if on {
            q.push((name, "1".to_owned()));
        }
    }
    q.push(("rm", if args.rm { "1" } else { "0" }.to_owned()));
    if !args.cache_from.is_empty() {
        q.push((
            "cachefrom",
            serde_json::to_string(&args.cache_from).unwrap_or_default(),
        ));
    }
    q.push(("networkmode", args.network.clone()));
    Ok(q)
}

/// The request body (streamed as it is made), the Dockerfile's name in it, and the number
/// of bytes sent once all were.
type Sent = tokio::task::JoinHandle<Result<u64, CliError>>;

fn context_body(args: &BuildArgs) -> Result<(berth_client::ReqBody, String, Sent), CliError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let body = berth_client::channel_body(rx);
    let mut out = ChannelWriter { tx, sent: 0 };
    if args.path == "-" {
        let name = args.file.clone().unwrap_or_else(|| "Dockerfile".into());
        let sent = tokio::task::spawn_blocking(move || {
            let abort = out.tx.clone();
            let mut stdin = std::io::stdin().lock();
            let r = std::io::copy(&mut stdin, &mut out);
            finish_body(&abort, r.map(|_| out.sent).map_err(CliError::from))
        });
        return Ok((body, name, sent));
    }
    let root = PathBuf::from(&args.path);
    let meta = std::fs::metadata(&root).map_err(|_| {
        CliError::Message(format!(
            "unable to prepare context: path {:?} not found",
            args.path
        ))
    })?;
    if !meta.is_dir() {
        return Err(CliError::Message(format!(
            "unable to prepare context: context must be a directory: {}",
            args.path
        )));
    }
    let plan = ContextPlan::new(&root, args.file.as_deref())?;
    let name = plan.dockerfile_name.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let abort = out.tx.clone();
        finish_body(&abort, plan.write(out).map(|o| o.sent))
    });
    Ok((body, name, sent))
}

/// A context that could not be read whole ends the body with an error, so the daemon never
/// builds from a truncated tar.
fn finish_body(
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    r: Result<u64, CliError>,
) -> Result<u64, CliError> {
    if let Err(e) = &r {
        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
    }
    r
}

/// A blocking writer whose bytes become the request body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    sent: u64,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "daemon went away"))?;
        self.sent += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What goes into the context tar.
struct ContextPlan {
    root: PathBuf,
    ignore: IgnoreMatcher,
    /// The Dockerfile's name in the tar (relative to the root).
    dockerfile_name: String,
    /// A Dockerfile from outside the context, added under `dockerfile_name`.
    outside: Option<Vec<u8>>,
}

impl ContextPlan {
    fn new(root: &Path, file: Option<&str>) -> Result<ContextPlan, CliError> {
        let root = std::fs::canonicalize(root)?;
        let ignore_path = root.join(".dockerignore");
        let mut ignore = match std::fs::read(&ignore_path) {
            Ok(data) => IgnoreMatcher::parse(&data).map_err(|e| {
                CliError::Message(format!("error checking context: parse .dockerignore: {e}"))
            })?,
            Err(_) => IgnoreMatcher::default(),
        };
        // `-f` is relative to the current directory, as in the docker CLI.
        let file_path = match file {
            Some(f) if f != "-" => std::path::absolute(f)?,
            _ => root.join("Dockerfile"),
        };
        let canonical = std::fs::canonicalize(&file_path).map_err(|_| {
            CliError::Message(format!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                file_path.display()
            ))
        })?;
        let (dockerfile_name, outside) = match canonical.strip_prefix(&root) {
            Ok(rel) => (rel.to_string_lossy().into_owned(), None),
            Err(_) => {
                let mut data = Vec::new();
                std::fs::File::open(&canonical)?
                    .take(MAX_DOCKERFILE + 1)
                    .read_to_end(&mut data)?;
                if data.len() as u64 > MAX_DOCKERFILE {
                    return Err(CliError::Message(format!(
                        "the Dockerfile {} is larger than {MAX_DOCKERFILE} bytes",
                        file_path.display()
                    )));
                }
                let mut b = [0u8; 6];
                let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
                let hexed: String = b.iter().map(|x| format!("{x:02x}")).collect();
                (format!(".dockerfile.{hexed}"), Some(data))
            }
        };
        // The docker CLI always sends the Dockerfile and `.dockerignore` (the daemon needs them).
        for keep in [dockerfile_name.as_str(), ".dockerignore"] {
            ignore
                .keep(keep)
                .map_err(|e| CliError::Message(format!("error checking context: {e}")))?;
        }
        Ok(ContextPlan {
            root,
            ignore,
            dockerfile_name,
            outside,
        })
    }

    fn write(self, out: ChannelWriter) -> Result<ChannelWriter, CliError> {
        let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, out));
        let mut budget = 10_000_000usize;
        self.add_dir(&mut tar, &self.root, "", &mut budget)?;
        if let Some(data) = &self.outside {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, &self.dockerfile_name, data.as_slice())?;
        }
        let buffered = tar.into_inner()?;
        buffered
            .into_inner()
            .map_err(|e| CliError::Io(e.into_error()))
    }

    fn add_dir(
        &self,
        tar: &mut tar::Builder<impl Write>,
        dir: &Path,
        rel: &str,
        budget: &mut usize,
    ) -> Result<(), CliError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?
            .collect::<std::io::Result<Vec<_>>>()?
            .into_iter()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        entries.sort();
        for (name, path) in entries {
            *budget = budget.checked_sub(1).ok_or_else(|| {
                CliError::Message("error checking context: too many files".into())
            })?;
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(&path)?;
            let excluded = self.ignore.matches(&child);
            if excluded && !(meta.is_dir() && self.ignore.should_descend(&child)) {
                continue;
            }
            if !excluded {
                append(tar, &path, &child, &meta)?;
            }
            if meta.is_dir() {
                self.add_dir(tar, &path, &child, budget)?;
            }
        }
        Ok(())
    }
}

/// One entry as the docker CLI writes it: owner root, mode and times from the file.
fn append(
    tar: &mut tar::Builder<impl Write>,
    path: &Path,
    name: &str,
    meta: &std::fs::Metadata,
) -> Result<(), CliError> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(0);
    h.set_gid(0);
    let ft = meta.file_type();
    if ft.is_dir() {
        h.set_size(0);
        tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        h.set_size(0);
        tar.append_link(&mut h, name, target)?;
    } else if ft.is_file() {
        let f = std::fs::File::open(path).map_err(|e| {
            CliError::Message(format!(
                "error checking context: can't stat '{}': {e}",
                path.display()
            ))
        })?;
        tar.append_data(&mut h, name, f)?;
    }
    // Sockets, fifos and devices are no COPY sources; they are left out.
    Ok(())
}

/// Docker's `units.HumanSizeWithPrecision(n, 4)`: decimal units, 4 significant digits.
fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size >= 100.0 {
        1
    } else if size >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{size:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(52_430_000), "52.43MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }
}
