//! `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.
//! The layer blob is stored gzip-compressed; the config is Docker's for an import (os,
//! architecture, the one diff id, a history entry whose comment is the message), with the
//! container config built from `--change` instructions.

use std::io::Read;

use berth_reference::{ImageId, Reference};

use crate::config::{ContainerConfig, History, ImageConfig, RootFs, now_rfc3339};
use crate::error::{ImageError, Result};
use crate::layers::BlobMode;
use crate::store::{ImageStore, store_key};

/// What `docker import` can say besides the tarball.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `repo[:tag]` to tag the image with (`latest` if no tag).
    pub tag: Option<Reference>,
    /// The container config to start from (the API's already-parsed overrides).
    pub config: ContainerConfig,
    /// Dockerfile instructions applied on top (`--change 'CMD ["sh"]'`): CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
    pub changes: Vec<String>,
    /// The commit message; Docker's default is `Imported from <source>`.
    pub message: Option<String>,
    /// Where the tarball came from (`-` for the request body, or a URL).
    pub source: Option<String>,
    /// `os` of the image; the host's (`linux`) by default.
    pub os: Option<String>,
    /// `architecture` of the image; the host's (`amd64`, `arm64`, …) by default.
    pub architecture: Option<String>,
}

impl ImageStore {
    /// Imports `tarball` as a one-layer image and returns its id.
    pub fn import(&self, tarball: &mut dyn Read, opts: &ImportOptions) -> Result<ImageId> {
        let mut container = opts.config.clone();
        for change in &opts.changes {
            apply_change(&mut container, change)?;
        }
        let tags: Vec<Reference> = opts
            .tag
            .iter()
            .cloned()
            .map(import_tag)
            .collect::<Result<_>>()?;
        let added = self.add_layer(0, None, None, tarball, BlobMode::Gzip)?;
        let created = now_rfc3339();
        let message = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", opts.source.as_deref().unwrap_or("-")));
        let config = ImageConfig {
            comment: message.clone(),
            created: Some(created.clone()),
            container_config: Some(ContainerConfig::default()),
            config: Some(container),
            architecture: opts
                .architecture
                .clone()
                .unwrap_or_else(|| host_arch().to_owned()),
            os: opts.os.clone().unwrap_or_else(|| "linux".to_owned()),
            rootfs: RootFs {
                kind: "layers".to_owned(),
                diff_ids: vec![added.record.diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                comment: message,
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        let bytes = serde_json::to_vec(&config).map_err(|e| ImageError::archive(e.to_string()))?;
        let result = self.register_image(&bytes, None, &tags);
        if result.is_err() && added.created {
            self.rollback_layers(std::slice::from_ref(&added.record.chain_id));
        }
        result
    }
}

fn import_tag(r: Reference) -> Result<Reference> {
    if r.digest().is_some() {
        return Err(ImageError::InvalidTag {
            reason: "refusing to create a tag with a digest reference".to_owned(),
        });
    }
    Ok(store_key(r))
}

/// Docker's name for the host CPU architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Applies one `--change` instruction the way `docker import` does.
fn apply_change(c: &mut ContainerConfig, change: &str) -> Result<()> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    let invalid = || ImageError::InvalidArgument {
        reason: format!("{} is not a valid change command", word.to_uppercase()),
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => c.cmd = Some(command(rest, true)),
        "ENTRYPOINT" => c.entrypoint = Some(command(rest, true)),
        "SHELL" => c.shell = Some(command(rest, false)),
        "ONBUILD" => c
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.to_owned()),
        "USER" => c.user = rest.to_owned(),
        "WORKDIR" => c.working_dir = rest.to_owned(),
        "STOPSIGNAL" => c.stop_signal = rest.to_owned(),
        "ENV" => {
            let env = c.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(rest) {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = c.labels.get_or_insert_with(Default::default);
            labels.extend(key_values(rest));
        }
        "EXPOSE" => {
            let ports = c.exposed_ports.get_or_insert_with(Default::default);
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_owned()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let volumes = c.volumes.get_or_insert_with(Default::default);
            for v in command(rest, false) {
                volumes.insert(v, serde_json::json!({}));
            }
        }
        _ => return Err(invalid()),
    }
    Ok(())
}

/// The JSON form (`["a","b"]`) as is; the shell form wrapped in `/bin/sh -c` when `shell`,
/// else split on whitespace.
fn command(rest: &str, shell: bool) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
        return v;
    }
    if shell {
        vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()]
    } else {
        rest.split_whitespace().map(str::to_owned).collect()
    }
}

/// `k=v k2="v 2"` pairs, or the legacy `k v` form of ENV/LABEL.
fn key_values(rest: &str) -> Vec<(String, String)> {
    let words = split_words(rest);
    if !words.first().is_some_and(|w| w.contains('=')) {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return vec![(k.to_owned(), unquote(v.trim()))];
    }
    words
        .iter()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (unquote(k), unquote(v)))
        .collect()
}

/// Splits on whitespace outside double quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn changes_apply_like_docker_import() {
        let mut c = ContainerConfig::default();
        for ch in [
            r#"CMD ["sh","-c","echo hi"]"#,
            "ENTRYPOINT /bin/app",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL l=1",
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "USER nobody",
            "VOLUME /data",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/bin/app"]);
        assert_eq!(c.env.unwrap(), ["B=two words", "A=3"]);
        assert_eq!(c.labels.unwrap()["l"], "1");
        assert!(c.exposed_ports.unwrap().contains_key("53/udp"));
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.user, "nobody");
        assert!(c.volumes.unwrap().contains_key("/data"));
        let err = apply_change(&mut ContainerConfig::default(), "RUN rm -rf /").unwrap_err();
        assert_eq!(err.to_string(), "RUN is not a valid change command");
    }
}
