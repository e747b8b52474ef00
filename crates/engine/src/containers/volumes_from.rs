//! `--volumes-from name[:ro|:rw]`: the other container's volumes and bind mounts, at the same
//! paths. As in Docker, they replace the image's (anonymous) volumes at those paths, and the
//! container's own `-v`, `--mount` and `--tmpfs` replace them. `ro` makes them read-only; a
//! mount read-only in the source stays so. Volumes are never filled from the image here.

use berth_errdefs::{CategorizedError, Category};
use berth_spec::{MountKind, MountSpec};

use super::{Containers, HostConfig, Result, files, invalid};

/// `name[:mode]` → (name, read-write). Docker's modes: `rw`, `ro`, optionally with `z`/`Z`.
pub(crate) fn parse_volumes_from(spec: &str) -> Result<(&str, bool)> {
    if spec.is_empty() {
        return Err(invalid(
            "volumes-from specification cannot be an empty string",
        ));
    }
    let (name, mode) = spec.split_once(':').unwrap_or((spec, "rw"));
    let mut rw = true;
    for opt in mode.split(',') {
        match opt {
            "rw" => {}
            "ro" => rw = false,
            "z" | "Z" => {}
            _ => return Err(invalid(format!("invalid mode: {mode}"))),
        }
    }
    if name.is_empty() {
        return Err(invalid(format!(
            "invalid volumes-from specification: {spec}"
        )));
    }
    Ok((name, rw))
}

fn trimmed(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_owned()
    }
}

/// A volume mount the engine added for an image `VOLUME` (no name): volumes-from replaces it.
fn is_anonymous(m: &MountSpec) -> bool {
    m.kind == MountKind::Volume && m.source.is_empty()
}

impl Containers {
    /// Adds the mounts `host.volumes_from` names to `spec_cfg.host.mounts`. With `lenient`
    /// (a bundle rewritten later), a source container that is gone is skipped.
    pub(crate) fn add_volumes_from(
        &self,
        spec_cfg: &mut berth_spec::ContainerConfig,
        host: &HostConfig,
        lenient: bool,
    ) -> Result<()> {
        let mut imported = Vec::new();
        for spec in host.volumes_from.iter().flatten() {
            let (name, rw) = parse_volumes_from(spec)?;
            let source = match self.find(name) {
                Ok(c) => c.snapshot(),
                Err(e) if lenient && e.category == Category::NotFound => {
                    tracing::warn!("--volumes-from {name}: the container is gone");
                    continue;
                }
                // Not a 404: the docker CLI answers a 404 from create by pulling the image.
                Err(e) if e.category == Category::NotFound => {
                    return Err(invalid(e.message));
                }
                Err(e) => return Err(e),
            };
            imported.extend(source_mounts(&source, rw)?);
        }
        if imported.is_empty() {
            return Ok(());
        }
        let own = &mut spec_cfg.host;
        let mut taken: Vec<String> = own
            .binds
            .iter()
            .filter_map(|b| berth_spec::parse_bind(b).ok())
            .map(|m| trimmed(&m.target))
            .chain(
                own.mounts
                    .iter()
                    .filter(|m| !is_anonymous(m))
                    .map(|m| trimmed(&m.target)),
            )
            .chain(own.tmpfs.keys().map(|t| trimmed(t)))
            .collect();
        for m in imported {
            let target = trimmed(&m.target);
            if taken.contains(&target) {
                continue;
            }
            own.mounts
                .retain(|o| !(is_anonymous(o) && trimmed(&o.target) == target));
            taken.push(target);
            own.mounts.push(m);
        }
        Ok(())
    }
}

/// The source's volumes (from its record) and bind mounts (`-v` and `--mount`).
fn source_mounts(source: &super::ContainerRecord, rw: bool) -> Result<Vec<MountSpec>> {
    let mut out: Vec<MountSpec> = source
        .mount_points
        .values()
        .map(|p| MountSpec {
            kind: MountKind::Volume,
            source: p.name.clone(),
            target: p.destination.clone(),
            read_only: !(p.rw && rw),
            volume_no_copy: true,
            ..MountSpec::default()
        })
        .collect();
    let src = files::spec_config(&source.config, &source.host_config).map_err(|e| {
        CategorizedError::new(
            e.category,
            format!("--volumes-from {}: {}", source.name, e.message),
        )
    })?;
    let binds = src
        .host
        .binds
        .iter()
        .filter_map(|b| berth_spec::parse_bind(b).ok())
        .chain(src.host.mounts.iter().cloned())
        .filter(|m| m.kind == MountKind::Bind);
    for mut m in binds {
        m.read_only = m.read_only || !rw;
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn docker_modes_parse_and_hostile_specs_are_refused() {
        assert_eq!(parse_volumes_from("data").unwrap(), ("data", true));
        assert_eq!(parse_volumes_from("data:ro").unwrap(), ("data", false));
        assert_eq!(parse_volumes_from("data:rw").unwrap(), ("data", true));
        assert_eq!(parse_volumes_from("data:ro,z").unwrap(), ("data", false));
        for bad in [
            "",
            ":ro",
            "data:",
            "data:rx",
            "data:ro:rw",
            "data:shared",
            "data:../x",
        ] {
            assert!(parse_volumes_from(bad).is_err(), "{bad:?}");
        }
    }
}
