//! `docker diff` and `docker commit`: a container's changes are its overlay upper
//! directory. Both leave out what the runtime made only to mount over (`/etc/hosts`, `/dev`,
//! volume targets, …), which Docker keeps in a separate init layer; the build service
//! decides which entries those are ([`crate::build::runtime_leftovers`]) for its RUN steps
//! too.

use std::os::fd::OwnedFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_errdefs::{CategorizedError, Category};
use berth_image::{ContainerConfig, History, ImageConfig};
use berth_reference::Reference;

use super::{Container, Containers, Result, sys};

/// Most entries `docker diff` lists (bounds the answer for a hostile container).
const MAX_CHANGES: usize = 1_000_000;

/// How a path changed (`Kind` of `GET /containers/{id}/changes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `C`: present in the image, changed.
    Modified,
    /// `A`: not in the image.
    Added,
    /// `D`: removed.
    Deleted,
}

impl ChangeKind {
    /// Docker's number: 0 modified, 1 added, 2 deleted.
    pub fn code(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

/// One entry of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path in the container.
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// `POST /commit` parameters.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo` (empty: an untagged image).
    pub repo: String,
    /// `tag` (`latest` when a repo is given without one).
    pub tag: String,
    /// `comment`.
    pub comment: String,
    /// `author`.
    pub author: String,
    /// `pause`: freeze a running container while its changes are read.
    pub pause: bool,
    /// `changes`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
}

/// The upper directory, the image's layers and the mount targets of a container.
struct Layers {
    upper: PathBuf,
    lowers: Vec<PathBuf>,
    skipped: Vec<PathBuf>,
}

impl Containers {
    fn layers(&self, c: &Container) -> Result<Layers> {
        let snaps = self.images.snapshotter();
        let err = |e: berth_snapshot::SnapshotError| sys("the container's layer", e);
        let upper = snaps.fs_dir(&c.id).map_err(err)?;
        let lowers = match snaps.mounts(&c.id).map_err(err)? {
            berth_snapshot::Mount::Overlay { lowerdirs, .. } => lowerdirs,
            berth_snapshot::Mount::Bind { .. } => Vec::new(),
        };
        let record = c.snapshot();
        let mut targets: Vec<String> = record.mount_points.keys().cloned().collect();
        targets.extend(record.host_config.binds.iter().flatten().filter_map(|b| {
            let mut parts = b.split(':');
            parts.next()?;
            parts.next().map(str::to_owned)
        }));
        targets.extend(
            record
                .host_config
                .mounts
                .iter()
                .flatten()
                .map(|m| m.target.clone()),
        );
        if record.host_config.init.unwrap_or(false) {
            targets.push("/sbin/docker-init".to_owned());
        }
        let targets: Vec<String> = targets
            .iter()
            .map(|t| t.trim_matches('/').to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        let skipped = crate::build::runtime_leftovers(&upper, &lowers, &targets)
            .into_iter()
            .map(PathBuf::from)
            .collect();
        Ok(Layers {
            upper,
            lowers,
            skipped,
        })
    }

    /// `GET /containers/{id}/changes`, sorted by path.
    pub async fn changes(&self, name_or_id: &str) -> Result<Vec<Change>> {
        let c = self.find(name_or_id)?;
        let layers = self.layers(&c)?;
        tokio::task::spawn_blocking(move || list_changes(&layers))
            .await
            .map_err(|e| sys("diff task", e))?
    }

    /// `POST /commit`: the container's changes as a new image on top of its image;
    /// returns the new image's id.
    pub async fn commit(self: &Arc<Self>, name_or_id: &str, opts: CommitOptions) -> Result<String> {
        let c = self.find(name_or_id)?;
        let (running, paused) = {
            let r = c.rec();
            (r.state.running, r.state.paused)
        };
        let pause = opts.pause && running && !paused;
        if pause {
            self.pause(&c.id, true).await?;
        }
        let this = self.clone();
        let c2 = c.clone();
        let result = tokio::task::spawn_blocking(move || this.commit_blocking(&c2, &opts))
            .await
            .map_err(|e| sys("commit task", e));
        if pause {
            // The commit's answer matters more than a failed unpause, which is logged.
            if let Err(e) = self.pause(&c.id, false).await {
                tracing::warn!("commit: unpause {}: {}", c.id, e.message);
            }
        }
        let id = result??;
        self.publish(&c.snapshot(), "commit", &[]);
        Ok(id)
    }

    fn commit_blocking(&self, c: &Container, opts: &CommitOptions) -> Result<String> {
        let record = c.snapshot();
        let parent = berth_reference::ImageId::parse(&record.image)
            .map_err(|e| CategorizedError::from_error(&e))?;
        let image = self
            .images
            .config(&parent)
            .map_err(|e| CategorizedError::from_error(&e))?;
        let mut config = merged_config(image.config.clone().unwrap_or_default(), &record.config)?;
        apply_changes(&mut config, &opts.changes)?;
        let tags = commit_tags(&opts.repo, &opts.tag)?;
        let layers = self.layers(c)?;
        let skip = |p: &Path| layers.skipped.iter().any(|s| s == p);
        // The layer goes through a file next to the record: a container's changes can be
        // far larger than memory should hold.
        let tmp = self.container_dir(&c.id).join(".commit.tar");
        let _remove = RemoveOnDrop(tmp.clone());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| sys("create the layer file", e))?;
        let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
        let (buffered, _) = berth_snapshot::write_diff_except(&layers.upper, buffered, &skip)
            .map_err(|e| sys("write the container's changes", e))?;
        let mut file = buffered
            .into_inner()
            .map_err(|e| sys("write the container's changes", e.into_error()))?;
        std::io::Seek::rewind(&mut file).map_err(|e| sys("read the layer file", e))?;
        let mut diff = std::io::BufReader::with_capacity(1 << 20, file);
        let created = berth_image::now_rfc3339();
        let mut history = image.history.clone();
        let created_by = record
            .config
            .cmd
            .clone()
            .or_else(|| {
                let mut argv = vec![record.path.clone()];
                argv.extend(record.args.iter().cloned());
                Some(argv)
            })
            .unwrap_or_default()
            .join(" ");
        history.push(History {
            created: Some(created.clone()),
            created_by,
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            empty_layer: false,
        });
        let new = ImageConfig {
            comment: opts.comment.clone(),
            author: opts.author.clone(),
            created: Some(created),
            container: record.id.clone(),
            container_config: Some(to_image_config(&record.config)?),
            config: Some(config),
            history,
            ..image
        };
        let id = self
            .images
            .commit(Some(&parent), Some(&mut diff), new, &tags)
            .map_err(|e| CategorizedError::from_error(&e))?;
        Ok(id.as_str().to_owned())
    }
}

/// The instructions `docker commit --change` accepts (dockerd's list).
const COMMIT_CHANGES: [&str; 10] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn invalid(msg: impl Into<String>) -> CategorizedError {
    CategorizedError::new(Category::InvalidParameter, msg)
}

/// Applies `--change` instructions, each parsed by the Dockerfile parser and its words
/// expanded with the config's environment, as Docker's builder does for a commit.
fn apply_changes(c: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    use berth_dockerfile::{CommandLine, Dockerfile, Instruction, Lexer};
    for change in changes {
        let text = change.trim();
        let word = text.split_whitespace().next().unwrap_or_default();
        if text.is_empty() {
            continue;
        }
        if !COMMIT_CHANGES.contains(&word.to_ascii_uppercase().as_str()) {
            return Err(invalid(format!(
                "{} is not a valid change command",
                word.to_ascii_uppercase()
            )));
        }
        let df = Dockerfile::parse("--change", format!("FROM scratch\n{text}\n").as_bytes())
            .map_err(|e| invalid(e.docker_message()))?;
        let Some(step) = df.stages.first().and_then(|s| s.steps.first()) else {
            continue;
        };
        let env: Vec<(String, String)> = c
            .env
            .iter()
            .flatten()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let lexer = Lexer::new('\\');
        let expand = |w: &str| {
            lexer
                .expand_word(w, &env)
                .map_err(|e| invalid(e.to_string()))
        };
        let argv = |cl: CommandLine, shell: &Option<Vec<String>>| match cl {
            CommandLine::Exec(v) => v,
            CommandLine::Shell(s) => {
                let mut v = shell
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                v.push(s);
                v
            }
        };
        match step.instruction.clone() {
            Instruction::Cmd(cl) => c.cmd = Some(argv(cl, &c.shell)),
            Instruction::Entrypoint(cl) => c.entrypoint = Some(argv(cl, &c.shell)),
            Instruction::Env(kvs) => {
                for kv in kvs {
                    let (k, v) = (expand(&kv.key)?, expand(&kv.value)?);
                    let list = c.env.get_or_insert_with(Vec::new);
                    list.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                    list.push(format!("{k}={v}"));
                }
            }
            Instruction::Label(kvs) => {
                for kv in kvs {
                    let (k, v) = (expand(&kv.key)?, expand(&kv.value)?);
                    c.labels.get_or_insert_with(Default::default).insert(k, v);
                }
            }
            Instruction::Expose(ports) => {
                for p in ports {
                    let p = expand(&p)?;
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    c.exposed_ports
                        .get_or_insert_with(Default::default)
                        .insert(p, serde_json::json!({}));
                }
            }
            Instruction::Volume(vols) => {
                for v in vols {
                    c.volumes
                        .get_or_insert_with(Default::default)
                        .insert(expand(&v)?, serde_json::json!({}));
                }
            }
            Instruction::User(u) => c.user = expand(&u)?,
            Instruction::Workdir(w) => {
                let w = expand(&w)?;
                c.working_dir = if w.starts_with('/') || c.working_dir.is_empty() {
                    format!("/{}", w.trim_start_matches('/'))
                } else {
                    format!("{}/{w}", c.working_dir.trim_end_matches('/'))
                };
            }
            Instruction::StopSignal(s) => c.stop_signal = expand(&s)?,
            Instruction::Onbuild(o) => c.on_build.get_or_insert_with(Vec::new).push(o.expression),
            other => {
                return Err(invalid(format!(
                    "{} is not a valid change command",
                    other.keyword()
                )));
            }
        }
    }
    Ok(())
}

/// Removes a temporary file however the commit ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn commit_tags(repo: &str, tag: &str) -> Result<Vec<Reference>> {
    if repo.is_empty() {
        if !tag.is_empty() {
            return Err(CategorizedError::new(
                Category::InvalidParameter,
                "invalid reference format: a tag needs a repository",
            ));
        }
        return Ok(Vec::new());
    }
    let mut target =
        Reference::parse_normalized(repo).map_err(|e| CategorizedError::from_error(&e))?;
    if !tag.is_empty() {
        target = target
            .with_tag(tag)
            .map_err(|e| CategorizedError::from_error(&e))?;
    }
    Ok(vec![target.with_default_tag()])
}

/// The container's `Config` as JSON without its nulls (unset there is empty in the image's
/// shape).
fn config_value(config: &super::Config) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(config).map_err(|e| sys("container config", e))?;
    if let Some(map) = value.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    Ok(value)
}

/// The container's `Config` in the image's shape.
fn to_image_config(config: &super::Config) -> Result<ContainerConfig> {
    let value = config_value(config)?;
    serde_json::from_value(value).map_err(|e| sys("container config", e))
}

/// The new image's config: the image's, with what the container set on top (Docker's
/// `merge`: the container's non-empty fields win; the hostname and the attach flags are
/// the container's own business).
fn merged_config(image: ContainerConfig, container: &super::Config) -> Result<ContainerConfig> {
    let mut base = serde_json::to_value(&image).map_err(|e| sys("image config", e))?;
    let over = config_value(container)?;
    if let (Some(base), Some(over)) = (base.as_object_mut(), over.as_object()) {
        for (k, v) in over {
            let empty = match v {
                serde_json::Value::Null => true,
                serde_json::Value::String(s) => s.is_empty(),
                serde_json::Value::Bool(b) => !b,
                serde_json::Value::Array(a) => a.is_empty(),
                serde_json::Value::Object(o) => o.is_empty(),
                serde_json::Value::Number(_) => false,
            };
            let skipped = matches!(k.as_str(), "Hostname" | "Domainname" | "Image");
            if !empty && !skipped {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    let mut merged: ContainerConfig =
        serde_json::from_value(base).map_err(|e| sys("image config", e))?;
    merged.image = String::new();
    merged.hostname = String::new();
    Ok(merged)
}

fn list_changes(layers: &Layers) -> Result<Vec<Change>> {
    let lowers: Vec<OwnedFd> = layers
        .lowers
        .iter()
        .filter_map(|l| {
            rustix::fs::open(
                l,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .ok()
        })
        .collect();
    let mut out = Vec::new();
    walk(layers, &lowers, Path::new(""), &mut out, 0)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Whether `rel` exists in a lower layer. Resolved with no symlink allowed at all, so a
/// link in a layer can never send the lookup to the host.
fn in_lowers(lowers: &[OwnedFd], rel: &Path) -> bool {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    lowers.iter().any(|fd| {
        rustix::fs::openat2(
            fd,
            rel,
            OFlags::PATH | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .is_ok()
    })
}

fn walk(
    layers: &Layers,
    lowers: &[OwnedFd],
    rel: &Path,
    out: &mut Vec<Change>,
    depth: usize,
) -> Result<()> {
    if depth > 1024 || out.len() > MAX_CHANGES {
        return Err(sys("diff", "the container's changes are too large to list"));
    }
    let dir = layers.upper.join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|e| sys("list the changes", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| sys("list the changes", e))?;
        let child = rel.join(entry.file_name());
        if layers.skipped.iter().any(|s| s == &child) {
            continue;
        }
        let ft = entry.file_type().map_err(|e| sys("list the changes", e))?;
        let path = format!("/{}", child.display());
        let whiteout = ft.is_char_device()
            && entry
                .metadata()
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::rdev(&m) == 0);
        let kind = if whiteout {
            ChangeKind::Deleted
        } else if in_lowers(lowers, &child) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change { path, kind });
        if ft.is_dir() {
            walk(layers, lowers, &child, out, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn changes_are_parsed_as_dockerfile_instructions() {
        let mut c = ContainerConfig {
            env: Some(vec!["BASE=/opt".into()]),
            ..ContainerConfig::default()
        };
        let changes: Vec<String> = [
            r#"CMD ["cat", "/x"]"#,
            "ENTRYPOINT echo hi",
            "ENV A=1 B=\"two words\" C=$BASE/bin",
            "LABEL \"k 1\"=v",
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER nobody",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        apply_changes(&mut c, &changes).unwrap();
        assert_eq!(c.cmd.unwrap(), ["cat", "/x"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            c.env.unwrap(),
            ["BASE=/opt", "A=1", "B=two words", "C=/opt/bin"]
        );
        assert_eq!(c.labels.unwrap()["k 1"], "v");
        let ports = c.exposed_ports.unwrap();
        assert!(ports.contains_key("80/tcp") && ports.contains_key("53/udp"));
        assert_eq!(c.working_dir, "/srv/app");
        assert_eq!(c.user, "nobody");
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal, "SIGINT");
    }

    #[test]
    fn only_dockerds_change_commands_are_accepted() {
        let mut c = ContainerConfig::default();
        for bad in ["RUN rm -rf /", "COPY a b", "FROM x", "NOPE x"] {
            let e = apply_changes(&mut c, &[bad.to_owned()]).unwrap_err();
            assert!(
                e.message.ends_with("is not a valid change command"),
                "{bad}: {e:?}"
            );
        }
        let e = apply_changes(&mut c, &["ENV".to_owned()]).unwrap_err();
        assert_eq!(e.category, Category::InvalidParameter);
    }
}
