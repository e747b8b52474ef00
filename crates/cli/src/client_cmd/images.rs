//! `berth images` (`image ls`): docker's rows per repository and tag, columns and fields.

use std::collections::BTreeMap;

use berth_client::types::ImageSummary;
use berth_reference::Reference;
use clap::Parser;
use serde_json::json;

use super::CliError;
use super::format::{Row, ago, go_time, human_size, human_size_precision, render, short_id};
use super::progress::{Renderer, render_stream};
use super::{CliResult, Invocation, filters, parse};

#[derive(Parser)]
#[command(name = "images", about = "List images")]
struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// [REPOSITORY[:TAG]]
    repository: Option<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

pub async fn images(inv: &Invocation<'_>) -> CliResult {
    let args: ImagesArgs = parse(inv, "images [OPTIONS] [REPOSITORY[:TAG]]")?;
    let mut filters = filters(&args.filter)?;
    if let Some(r) = &args.repository {
        filters.add("reference", r.clone());
    }
    let client = inv.client().await?;
    let list = client.images(args.all, &filters).await?;
    let format = match (&args.format, args.quiet) {
        (Some(f), _) if !f.is_empty() => f.clone(),
        (_, true) => "{{.ID}}".to_owned(),
        _ if args.digests => "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}".to_owned(),
        _ => "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}".to_owned(),
    };
    let mut rows = Vec::new();
    for image in &list {
        for (repo, tag, digest) in repo_rows(image, args.digests) {
            rows.push(row(image, &repo, &tag, &digest, !args.no_trunc));
        }
    }
    print!("{}", render(&format, &rows, HEADERS)?);
    Ok(())
}

/// The (repository, tag, digest) rows of one image, as docker's image formatter makes them.
fn repo_rows(image: &ImageSummary, show_digests: bool) -> Vec<(String, String, String)> {
    let none = || "<none>".to_owned();
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in image.repo_tags.iter().flatten() {
        if let Ok(parsed) = Reference::parse_normalized(r)
            && let Some(tag) = parsed.tag()
        {
            tags.entry(parsed.familiar_name())
                .or_default()
                .push(tag.to_owned());
        }
    }
    for r in image.repo_digests.iter().flatten() {
        if let Ok(parsed) = Reference::parse_normalized(r)
            && let Some(d) = parsed.digest()
        {
            digests
                .entry(parsed.familiar_name())
                .or_default()
                .push(d.to_string());
        }
    }
    if tags.is_empty() && digests.is_empty() {
        return vec![(none(), none(), none())];
    }
    let mut rows = Vec::new();
    for (repo, tag_list) in &tags {
        let repo_digests = digests.remove(repo).unwrap_or_default();
        for tag in tag_list {
            if !show_digests || repo_digests.is_empty() {
                rows.push((repo.clone(), tag.clone(), none()));
            } else {
                for d in &repo_digests {
                    rows.push((repo.clone(), tag.clone(), d.clone()));
                }
            }
        }
    }
    for (repo, list) in digests {
        if show_digests {
            for d in list {
                rows.push((repo.clone(), none(), d));
            }
        } else {
            rows.push((repo, none(), String::new()));
        }
    }
    rows
}

fn row(image: &ImageSummary, repo: &str, tag: &str, digest: &str, trunc: bool) -> Row {
    let na = |n: i64| {
        if n < 0 {
            "N/A".to_owned()
        } else {
            n.to_string()
        }
    };
    let size_na = |n: i64| {
        if n < 0 {
            "N/A".to_owned()
        } else {
            human_size(n as f64)
        }
    };
    let unique = if image.shared_size < 0 {
        "N/A".to_owned()
    } else {
        human_size((image.size - image.shared_size) as f64)
    };
    let fields = json!({
        "ID": if trunc { short_id(&image.id) } else { image.id.clone() },
        "Repository": repo,
        "Tag": tag,
        "Digest": digest,
        "CreatedSince": ago(image.created),
        "CreatedAt": go_time(image.created),
        "Size": human_size(image.size as f64),
        "VirtualSize": human_size_precision(image.virtual_size.unwrap_or(image.size) as f64, 4),
        "SharedSize": size_na(image.shared_size),
        "UniqueSize": unique,
        "Containers": na(image.containers),
    });
    Row {
        fields,
        labels: image.labels.clone().unwrap_or_default(),
    }
}

/// The reference docker names in "Unable to find image '…' locally": familiar, with a tag.
pub fn normalize_for_pull(image: &str) -> String {
    match Reference::parse_normalized(image) {
        Ok(r) => r.with_default_tag().familiar_string(),
        Err(_) => image.to_owned(),
    }
}

/// Credentials for registries: none stored yet, so the `{}` the docker CLI sends then.
const NO_AUTH: &str = "e30=";

fn invalid_reference(e: berth_reference::ReferenceError) -> CliError {
    CliError::Message(format!("invalid reference format: {e}"))
}

/// `POST /images/create?fromImage=…&tag=…`, rendering the progress; `to_stderr` for run.
pub async fn pull_image(
    client: &berth_client::Client,
    image: &str,
    quiet: bool,
    to_stderr: bool,
) -> Result<String, berth_client::ClientError> {
    let reference = Reference::parse_normalized(image)
        .map_err(|e| berth_client::ClientError::Stream {
            code: None,
            message: format!("invalid reference format: {e}"),
        })?
        .with_default_tag();
    let mut q = vec![("fromImage", reference.name())];
    if let Some(tag) = reference.tag() {
        q.push(("tag", tag.to_owned()));
    } else if let Some(d) = reference.digest() {
        q[0].1 = format!("{}@{d}", reference.name());
    }
    let body = client
        .post_stream(
            "/images/create",
            &q,
            berth_client::empty_body(),
            &[("X-Registry-Auth", NO_AUTH)],
        )
        .await?;
    render_messages(body, quiet, to_stderr).await?;
    Ok(reference.to_string())
}

async fn render_messages(
    body: berth_client::Incoming,
    quiet: bool,
    to_stderr: bool,
) -> Result<Vec<serde_json::Value>, berth_client::ClientError> {
    use std::io::IsTerminal;
    if quiet {
        let mut r = Renderer::new(std::io::sink(), false);
        return render_stream(body, &mut r).await;
    }
    if to_stderr {
        let tty = std::io::stderr().is_terminal();
        let mut r = Renderer::new(std::io::stderr(), tty);
        render_stream(body, &mut r).await
    } else {
        let tty = std::io::stdout().is_terminal();
        let mut r = Renderer::new(std::io::stdout(), tty);
        render_stream(body, &mut r).await
    }
}

#[derive(Parser)]
#[command(name = "pull", about = "Download an image from a registry")]
struct PullArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Download all tagged images in the repository
    #[arg(short, long)]
    all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

pub async fn pull(inv: &Invocation<'_>) -> CliResult {
    let args: PullArgs = parse(inv, "pull [OPTIONS] NAME[:TAG|@DIGEST]")?;
    let client = inv.client().await?;
    let full = pull_image(&client, &args.name, args.quiet, false).await?;
    println!("{full}");
    Ok(())
}

#[derive(Parser)]
#[command(name = "push", about = "Upload an image to a registry")]
struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    all_tags: bool,
    /// Compression of layers stored uncompressed: gzip or zstd (default: the daemon's)
    #[arg(long)]
    compression: Option<String>,
    /// NAME[:TAG]
    name: String,
}

pub async fn push(inv: &Invocation<'_>) -> CliResult {
    let args: PushArgs = parse(inv, "push [OPTIONS] NAME[:TAG]")?;
    let reference = Reference::parse_normalized(&args.name).map_err(invalid_reference)?;
    let client = inv.client().await?;
    let tag = if args.all_tags {
        String::new()
    } else {
        reference.tag().unwrap_or("latest").to_owned()
    };
    let path = format!("/images/{}/push", reference.name_only().familiar_name());
    let mut query = vec![("tag", tag)];
    if let Some(c) = args.compression {
        query.push(("compression", c));
    }
    let body = client
        .post_stream(
            &path,
            &query,
            berth_client::empty_body(),
            &[("X-Registry-Auth", NO_AUTH)],
        )
        .await?;
    render_messages(body, args.quiet, false).await?;
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "tag",
    about = "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"
)]
struct TagArgs {
    source: String,
    target: String,
}

pub async fn tag(inv: &Invocation<'_>) -> CliResult {
    let args: TagArgs = parse(inv, "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")?;
    let target = Reference::parse_normalized(&args.target).map_err(invalid_reference)?;
    if target.digest().is_some() {
        return Err(CliError::Message(
            "refusing to create a tag with a digest reference".to_owned(),
        ));
    }
    let client = inv.client().await?;
    let tag = target.tag().unwrap_or("latest").to_owned();
    client.image_tag(&args.source, &target.name(), &tag).await?;
    Ok(())
}

#[derive(Parser)]
#[command(name = "rmi", about = "Remove one or more images")]
struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn rmi(inv: &Invocation<'_>) -> CliResult {
    let args: RmiArgs = parse(inv, "rmi [OPTIONS] IMAGE [IMAGE...]")?;
    let client = inv.client().await?;
    let mut failed = false;
    for image in &args.images {
        match client.image_remove(image, args.force, args.no_prune).await {
            Ok(items) => {
                for item in items {
                    if let Some(u) = item.get("Untagged").and_then(|v| v.as_str()) {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item.get("Deleted").and_then(|v| v.as_str()) {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

#[derive(Parser)]
#[command(name = "history", about = "Show the history of an image")]
struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    image: String,
}

pub async fn history(inv: &Invocation<'_>) -> CliResult {
    let args: HistoryArgs = parse(inv, "history [OPTIONS] IMAGE")?;
    let client = inv.client().await?;
    let layers = client.image_history(&args.image).await?;
    let trunc = !args.no_trunc;
    let rows: Vec<Row> = layers
        .iter()
        .map(|h| {
            let s = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let n = |k: &str| h.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
            let id = s("Id");
            let id = if id == "<missing>" || !trunc {
                id
            } else {
                short_id(&id)
            };
            let created_by = s("CreatedBy").replace('\t', " ");
            let created_by = if trunc {
                super::format::ellipsis(&created_by, 45)
            } else {
                created_by
            };
            let rfc3339 = rfc3339(n("Created"));
            let (created, size) = if args.human {
                (ago(n("Created")), human_size(n("Size") as f64))
            } else {
                (rfc3339.clone(), n("Size").to_string())
            };
            Row {
                fields: json!({
                    "ID": id, "CreatedSince": created, "CreatedAt": rfc3339,
                    "CreatedBy": created_by, "Size": size, "Comment": s("Comment"),
                }),
                labels: BTreeMap::new(),
            }
        })
        .collect();
    let format = match (&args.format, args.quiet) {
        (Some(f), _) if !f.is_empty() => f.clone(),
        (_, true) => "{{.ID}}".to_owned(),
        _ if args.human => {
            "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"
                .to_owned()
        }
        _ => {
            "table {{.ID}}\\t{{.CreatedAt}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}".to_owned()
        }
    };
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    print!("{}", render(&format, &rows, &headers)?);
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "save",
    about = "Save one or more images to a tar archive (streamed to STDOUT by default)"
)]
struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<String>,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn save(inv: &Invocation<'_>) -> CliResult {
    let args: SaveArgs = parse(inv, "save [OPTIONS] IMAGE [IMAGE...]")?;
    super::refuse_terminal_output(args.output.as_deref())?;
    let client = inv.client().await?;
    let q: Vec<_> = args.images.iter().map(|i| ("names", i.clone())).collect();
    let body = client.get_stream("/images/get", &q).await?;
    super::write_output(body, args.output.as_deref(), "save image").await
}

#[derive(Parser)]
#[command(name = "load", about = "Load an image from a tar archive or STDIN")]
struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

/// The file named by `-i`, or stdin.
async fn input_body(path: Option<&str>) -> Result<berth_client::ReqBody, CliError> {
    Ok(match path {
        Some(p) if p != "-" => berth_client::reader_body(
            tokio::fs::File::open(p)
                .await
                .map_err(|e| CliError::Message(format!("open {p}: {e}")))?,
        ),
        _ => berth_client::reader_body(tokio::io::stdin()),
    })
}

pub async fn load(inv: &Invocation<'_>) -> CliResult {
    use std::io::IsTerminal;
    let args: LoadArgs = parse(inv, "load [OPTIONS]")?;
    if args.input.is_none() && std::io::stdin().is_terminal() {
        return Err(CliError::Message(
            "requested load from stdin, but stdin is empty".to_owned(),
        ));
    }
    let client = inv.client().await?;
    let quiet = args.quiet || !std::io::stdout().is_terminal();
    let body = input_body(args.input.as_deref()).await?;
    let q = [("quiet", if quiet { "1" } else { "0" }.to_owned())];
    let response = client
        .post_stream(
            "/images/load",
            &q,
            body,
            &[("Content-Type", "application/x-tar")],
        )
        .await?;
    render_messages(response, false, false).await?;
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "import",
    about = "Import the contents from a tarball to create a filesystem image"
)]
struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// file|URL|-
    source: String,
    /// [REPOSITORY[:TAG]]
    repository: Option<String>,
}

pub async fn import(inv: &Invocation<'_>) -> CliResult {
    let args: ImportArgs = parse(inv, "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]")?;
    let mut q = vec![("fromSrc", "-".to_owned())];
    for c in &args.change {
        q.push(("changes", c.clone()));
    }
    if let Some(m) = &args.message {
        q.push(("message", m.clone()));
    }
    if let Some(p) = &args.platform {
        q.push(("platform", p.clone()));
    }
    if let Some(r) = &args.repository {
        let reference = Reference::parse_normalized(r).map_err(invalid_reference)?;
        q.push(("repo", reference.name()));
        q.push(("tag", reference.tag().unwrap_or("latest").to_owned()));
    }
    let client = inv.client().await?;
    let body = input_body(Some(&args.source)).await?;
    let response = client
        .post_stream(
            "/images/create",
            &q,
            body,
            &[("Content-Type", "application/x-tar")],
        )
        .await?;
    let mut r = Renderer::new(std::io::stdout(), false);
    let aux = render_stream(response, &mut r).await?;
    drop(aux);
    Ok(())
}

#[derive(Parser)]
#[command(name = "prune", about = "Remove unused images")]
struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub async fn image_prune(inv: &Invocation<'_>) -> CliResult {
    let args: ImagePruneArgs = parse(inv, "image prune [OPTIONS]")?;
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !super::confirm(warning)? {
        return Ok(());
    }
    let mut f = filters(&args.filter)?;
    f.add("dangling", if args.all { "false" } else { "true" });
    let client = inv.client().await?;
    let report = client.prune("images", &f).await?;
    let deleted = report
        .get("ImagesDeleted")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for item in deleted {
            if let Some(u) = item.get("Untagged").and_then(|v| v.as_str()) {
                println!("untagged: {u}");
            }
            if let Some(d) = item.get("Deleted").and_then(|v| v.as_str()) {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    let space = report
        .get("SpaceReclaimed")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    println!("Total reclaimed space: {}", human_size(space));
    Ok(())
}

/// Go's `time.RFC3339` of a unix time, in UTC.
fn rfc3339(unix: i64) -> String {
    let text = go_time(unix);
    let (date, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let clock = rest.split(' ').next().unwrap_or("");
    format!("{date}T{clock}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag_and_dangling() {
        let mut image = ImageSummary {
            repo_tags: Some(vec![
                "busybox:latest".into(),
                "docker.io/library/busybox:1".into(),
                "127.0.0.1:5000/x/y:2".into(),
            ]),
            ..Default::default()
        };
        let rows = repo_rows(&image, false);
        assert_eq!(
            rows,
            vec![
                ("127.0.0.1:5000/x/y".into(), "2".into(), "<none>".into()),
                ("busybox".into(), "latest".into(), "<none>".into()),
                ("busybox".into(), "1".into(), "<none>".into()),
            ]
        );
        image.repo_tags = None;
        assert_eq!(
            repo_rows(&image, false),
            vec![("<none>".into(), "<none>".into(), "<none>".into())]
        );
    }

    #[test]
    fn digest_only_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        let image = ImageSummary {
            repo_digests: Some(vec![format!("busybox@{d}")]),
            ..Default::default()
        };
        assert_eq!(
            repo_rows(&image, true),
            vec![("busybox".into(), "<none>".into(), d)]
        );
    }
}
