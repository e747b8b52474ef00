//! `berth cp`, `berth diff`, `berth export` and `berth commit`, as the docker CLI does them.
//!
//! `cp` out of a container extracts the daemon's tar on this machine: the archive comes
//! from a container and may be hostile, so no entry may climb out of the destination with
//! `..` or through a symlink an earlier entry made (absolute names are made relative).

use std::fs;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_client::{Client, ClientError};
use clap::{ArgAction, Parser};

use super::format::human_size;
use super::{CliError, CliResult, Invocation, parse};

/// Go's `os.ModeDir` and `os.ModeSymlink` in a path stat's `mode`.
const GO_DIR: u64 = 1 << 31;
const GO_SYMLINK: u64 = 1 << 27;

#[derive(Parser)]
#[command(
    name = "diff",
    about = "Inspect changes to files or directories on a container's filesystem"
)]
struct DiffArgs {
    container: String,
}

pub async fn diff(inv: &Invocation<'_>) -> CliResult {
    let args: DiffArgs = parse(inv, "diff CONTAINER")?;
    let client = inv.client().await?;
    let mut out = String::new();
    for change in client.container_changes(&args.container).await? {
        let kind = match change["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        out.push_str(&format!(
            "{kind} {}\n",
            change["Path"].as_str().unwrap_or_default()
        ));
    }
    print!("{out}");
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "export",
    about = "Export a container's filesystem as a tar archive"
)]
struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<String>,
    container: String,
}

pub async fn export(inv: &Invocation<'_>) -> CliResult {
    let args: ExportArgs = parse(inv, "export [OPTIONS] CONTAINER")?;
    super::refuse_terminal_output(args.output.as_deref())?;
    let client = inv.client().await?;
    let body = client
        .get_stream(&format!("/containers/{}/export", args.container), &[])
        .await?;
    super::write_output(body, args.output.as_deref(), "export container").await
}

#[derive(Parser)]
#[command(
    name = "commit",
    about = "Create a new image from a container's changes"
)]
struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, action = ArgAction::Set, default_value_t = true,
          num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

pub async fn commit(inv: &Invocation<'_>) -> CliResult {
    let args: CommitArgs = parse(inv, "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]")?;
    let client = inv.client().await?;
    let mut q: Vec<(&str, String)> = vec![("container", args.container.clone())];
    if let Some(reference) = &args.reference {
        // The tag is after the last `:` that follows the last `/` (a registry port is not
        // a tag).
        let slash = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[slash..].rfind(':') {
            Some(i) => {
                q.push(("repo", reference[..slash + i].to_owned()));
                q.push(("tag", reference[slash + i + 1..].to_owned()));
            }
            None => q.push(("repo", reference.clone())),
        }
    }
    q.push(("comment", args.message.unwrap_or_default()));
    q.push(("author", args.author.unwrap_or_default()));
    q.push(("pause", if args.pause { "1" } else { "0" }.to_owned()));
    q.extend(args.change.into_iter().map(|c| ("changes", c)));
    let id = client.container_commit(&q).await?;
    println!("{id}");
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "cp",
    about = "Copy files/folders between a container and the local filesystem"
)]
struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if
    /// no terminal is attached
    #[arg(short, long)]
    quiet: bool,
    src: String,
    dest: String,
}

/// `CONTAINER:PATH` or a local path (docker's `splitCpArg`: a path starting with `/` or
/// `.` is local even with a colon in it).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

pub async fn cp(inv: &Invocation<'_>) -> CliResult {
    let usage = "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH";
    let args: CpArgs = parse(inv, usage)?;
    let (src_c, src_p) = split_cp_arg(&args.src);
    let (dst_c, dst_p) = split_cp_arg(&args.dest);
    let client = inv.client().await?;
    let (size, shown) = match (src_c, dst_c) {
        (Some(c), None) => (
            copy_from(&client, c, src_p, dst_p, args.follow_link).await?,
            dst_p.to_owned(),
        ),
        (None, Some(c)) => (
            copy_to(&client, src_p, c, dst_p, &args).await?,
            args.dest.clone(),
        ),
        (Some(_), Some(_)) => {
            return Err(CliError::Message(
                "copying between containers is not supported".into(),
            ));
        }
        (None, None) => {
            return Err(CliError::Message(
                "must specify at least one container source".into(),
            ));
        }
    };
    use std::io::IsTerminal;
    if !args.quiet && dst_p != "-" && src_p != "-" && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {shown}", human_size(size as f64));
    }
    Ok(())
}

/// The last element of a container path (Go's `filepath.Base` after the trailing
/// separators; a trailing `.` stays).
fn base_of(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, b)) => b.to_owned(),
        // The daemon names the root's entries `/…`.
        None if trimmed.is_empty() => "/".to_owned(),
        None => trimmed.to_owned(),
    }
}

/// The directory part of a container path.
fn dir_of(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((d, _)) => d.to_owned(),
    }
}

fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Daemon { status: 404, .. })
}

async fn copy_from(
    client: &Client,
    container: &str,
    src: &str,
    dst: &str,
    follow: bool,
) -> Result<u64, CliError> {
    let mut src_path = src.to_owned();
    let mut rebase = None;
    if follow {
        let stat = client.container_stat_path(container, src).await?;
        let mode = stat["mode"].as_u64().unwrap_or(0);
        let target = stat["linkTarget"].as_str().unwrap_or_default();
        if mode & GO_SYMLINK != 0 && !target.is_empty() {
            src_path = target.to_owned();
            rebase = Some(base_of(src));
        }
    }
    let (stat, mut body) = client.container_archive(container, &src_path).await?;
    if dst == "-" {
        let mut out = tokio::io::stdout();
        let mut n = 0u64;
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = berth_client::next_chunk(&mut body).await? {
            n += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        return Ok(n);
    }
    let src_is_dir = stat["mode"].as_u64().unwrap_or(0) & GO_DIR != 0;
    let plan = ExtractPlan::new(&base_of(&src_path), rebase, src_is_dir, Path::new(dst))?;
    let (reader, writer) = UnixStream::pair()?;
    let extract = tokio::task::spawn_blocking(move || plan.run(reader));
    let pumped = pump(&mut body, writer).await;
    let extracted = extract
        .await
        .map_err(|e| CliError::Message(format!("copy task: {e}")))?;
    let n = pumped?;
    extracted?;
    Ok(n)
}

/// Feeds the answer body to the blocking extraction through a socket pair.
async fn pump(body: &mut berth_client::Incoming, writer: UnixStream) -> Result<u64, CliError> {
    use tokio::io::AsyncWriteExt;
    writer.set_nonblocking(true)?;
    let mut w = tokio::net::UnixStream::from_std(writer)?;
    let mut n = 0u64;
    while let Some(chunk) = berth_client::next_chunk(body).await? {
        n += chunk.len() as u64;
        if w.write_all(&chunk).await.is_err() {
            // The extraction stopped (and says why).
            break;
        }
    }
    w.shutdown().await.ok();
    Ok(n)
}

/// Where a tar from the daemon lands, with Docker's rules: into an existing directory as it
/// is; otherwise its top entry renamed to the destination's name, in the destination's
/// parent.
struct ExtractPlan {
    dir: PathBuf,
    rename: Option<(String, String)>,
}

impl ExtractPlan {
    fn new(
        src_base: &str,
        rebase: Option<String>,
        src_is_dir: bool,
        dst: &Path,
    ) -> Result<ExtractPlan, CliError> {
        match fs::metadata(dst) {
            Ok(m) if m.is_dir() => Ok(ExtractPlan {
                dir: dst.to_owned(),
                rename: rebase.map(|r| (src_base.to_owned(), r)),
            }),
            Ok(_) if src_is_dir => Err(CliError::Message(format!(
                "cannot copy directory to file: {}",
                dst.display()
            ))),
            Ok(_) | Err(_) => {
                let text = dst.to_string_lossy();
                if text.ends_with('/') {
                    return Err(CliError::Message(format!(
                        "destination directory {text} does not exist"
                    )));
                }
                let parent = match dst.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                    _ => PathBuf::from("."),
                };
                if !parent.is_dir() {
                    return Err(CliError::Message(format!(
                        "destination directory {} does not exist",
                        parent.display()
                    )));
                }
                let name = dst
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(ExtractPlan {
                    dir: parent,
                    rename: Some((src_base.to_owned(), name)),
                })
            }
        }
    }

    fn run(self, reader: UnixStream) -> Result<(), CliError> {
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = self.renamed(&raw);
            let rel = checked_relative(&name)?;
            let target = self.dir.join(&rel);
            refuse_links_on_the_way(&self.dir, &rel)?;
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            if rel.as_os_str().is_empty() {
                continue;
            }
            entry
                .unpack(&target)
                .map_err(|e| CliError::Message(format!("extract {}: {e}", target.display())))?;
        }
        Ok(())
    }

    fn renamed(&self, name: &str) -> String {
        let Some((from, to)) = &self.rename else {
            return name.to_owned();
        };
        if from == "/" {
            // A copy of the root: every name starts with `/`.
            return format!("{to}{name}");
        }
        if name == from.as_str() || name == format!("{from}/") {
            return to.clone();
        }
        match name.strip_prefix(&format!("{from}/")) {
            Some(rest) => format!("{to}/{rest}"),
            None => name.to_owned(),
        }
    }
}

/// An archive name as a relative path without `..` (a leading `/` is dropped, as tar
/// does: the daemon names a copy of the root's entries `/…`).
fn checked_relative(name: &str) -> Result<PathBuf, CliError> {
    let path = Path::new(name);
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => {
                return Err(CliError::Message(format!(
                    "refusing to extract {name:?}: it leads outside the destination"
                )));
            }
        }
    }
    Ok(rel)
}

/// Refuses an entry whose parent directories (below `dir`) include a symlink.
fn refuse_links_on_the_way(dir: &Path, rel: &Path) -> Result<(), CliError> {
    let mut cur = dir.to_owned();
    let parts: Vec<_> = rel.components().collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        cur.push(c);
        if fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(CliError::Message(format!(
                "refusing to extract through the symlink {}",
                cur.display()
            )));
        }
    }
    Ok(())
}

async fn copy_to(
    client: &Client,
    src: &str,
    container: &str,
    dst: &str,
    args: &CpArgs,
) -> Result<u64, CliError> {
    // Where the destination leads: a symlink is followed inside the container.
    let mut dst_path = dst.to_owned();
    let mut stat = match client.container_stat_path(container, dst).await {
        Ok(s) => Some(s),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(s) = &stat
        && s["mode"].as_u64().unwrap_or(0) & GO_SYMLINK != 0
        && let Some(target) = s["linkTarget"].as_str().filter(|t| !t.is_empty())
    {
        dst_path = target.to_owned();
        stat = client.container_stat_path(container, target).await.ok();
    }
    let dst_is_dir = stat
        .as_ref()
        .is_some_and(|s| s["mode"].as_u64().unwrap_or(0) & GO_DIR != 0);
    if src == "-" {
        if !dst_is_dir {
            return Err(CliError::Message(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )));
        }
        let body = berth_client::reader_body(tokio::io::stdin());
        client
            .container_extract(container, &dst_path, args.archive, body)
            .await?;
        return Ok(0);
    }
    let src_path = PathBuf::from(src);
    let meta = if args.follow_link {
        fs::metadata(&src_path)
    } else {
        fs::symlink_metadata(&src_path)
    }
    .map_err(|e| CliError::Message(format!("lstat {src}: {e}")))?;
    let (put_dir, name) = if dst_is_dir {
        (dst_path.clone(), local_base(&src_path))
    } else if stat.is_some() && meta.is_dir() {
        return Err(CliError::Message(format!(
            "cannot copy directory to file: {container}:{dst}"
        )));
    } else {
        (dir_of(&dst_path), base_of(&dst_path))
    };
    let source = if args.follow_link {
        fs::canonicalize(&src_path)?
    } else {
        src_path
    };
    let (reader, writer) = UnixStream::pair()?;
    let counted = Arc::new(AtomicU64::new(0));
    let count = counted.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let w = Counting {
            inner: writer,
            count,
        };
        write_tar(w, &source, &name)
    });
    reader.set_nonblocking(true)?;
    let body = berth_client::reader_body(tokio::net::UnixStream::from_std(reader)?);
    let sent = client
        .container_extract(container, &put_dir, args.archive, body)
        .await;
    let produced = producer
        .await
        .map_err(|e| CliError::Message(format!("copy task: {e}")))?;
    sent?;
    produced?;
    Ok(counted.load(Ordering::Relaxed))
}

fn local_base(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".to_owned())
}

/// Counts what passes through.
struct Counting<W> {
    inner: W,
    count: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The tar of `src` (not following its symlinks) with `name` as its top entry.
fn write_tar(out: impl Write, src: &Path, name: &str) -> Result<(), CliError> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let meta = fs::symlink_metadata(src)?;
    if meta.is_dir() {
        tar.append_dir_all(name, src)?;
    } else {
        tar.append_path_with_name(src, name)?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cp_arguments_split_like_docker() {
        assert_eq!(split_cp_arg("c:/x"), (Some("c"), "/x"));
        assert_eq!(split_cp_arg("/a:b"), (None, "/a:b"));
        assert_eq!(split_cp_arg("./c:d"), (None, "./c:d"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        assert_eq!(base_of("/tmp/dir/."), ".");
        assert_eq!(base_of("/tmp/dir/"), "dir");
        assert_eq!(base_of("/"), "/");
        assert_eq!(dir_of("/tmp/x"), "/tmp");
        assert_eq!(dir_of("/x"), "/");
    }

    #[test]
    fn hostile_names_are_refused() {
        assert!(checked_relative("../x").is_err());
        assert_eq!(
            checked_relative("/etc/passwd").unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert!(checked_relative("a/../../x").is_err());
        assert_eq!(checked_relative("./a/b").unwrap(), PathBuf::from("a/b"));
    }

    #[test]
    fn extraction_never_follows_an_archive_symlink() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "top/link", outside.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, "top/link/evil", &b"evil"[..])
            .unwrap();
        let bytes = b.into_inner().unwrap();
        let plan = ExtractPlan::new("top", None, true, d.path()).unwrap();
        let (r, mut w) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            // The extraction may stop reading early.
            let _ = w.write_all(&bytes);
        });
        assert!(plan.run(r).is_err());
        writer.join().unwrap();
        assert!(!outside.path().join("evil").exists());
    }
}
