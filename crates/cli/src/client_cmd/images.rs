//! `berth images` (`image ls`): docker's rows per repository and tag, columns and fields.

use std::collections::BTreeMap;

use berth_client::types::ImageSummary;
use berth_reference::Reference;
use clap::Parser;
use serde_json::json;

use super::format::{Row, ago, go_time, human_size, human_size_precision, render, short_id};
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
    #[arg(short, long = "filter")]
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
