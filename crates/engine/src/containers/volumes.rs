//! The containers service's side of volumes: the image's `VOLUME`s as anonymous volumes, the
//! [`berth_spec::VolumeSource`] that resolves every volume mount of a bundle through the
//! volumes service (copy-up at create), the record's `MountPoints`, and `rm -v`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_errdefs::CategorizedError;
use berth_spec::{MountKind, MountSpec, VolumeRequest};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use super::config::{HostConfig, MountPoint};
use crate::volumes::{CreateRequest, Volume, Volumes};

type Result<T> = std::result::Result<T, CategorizedError>;

/// How often a lookup that raced a rename or mount is retried.
const MAX_RESOLVE_TRIES: u32 = 100;

fn trimmed(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    if t.is_empty() { "/" } else { t }
}

/// Adds an anonymous volume mount for each of the container's and the image's `Volumes`
/// that no user mount (`-v`, `--mount`, `--tmpfs`) already covers, as Docker does at create.
pub(crate) fn add_anonymous_volumes(
    spec_cfg: &mut berth_spec::ContainerConfig,
    config: &super::Config,
    image: Option<&berth_image::ContainerConfig>,
) {
    let paths = config
        .volumes
        .iter()
        .flatten()
        .chain(image.and_then(|i| i.volumes.as_ref()).into_iter().flatten());
    let host = &spec_cfg.host;
    let mut taken: Vec<String> = host
        .binds
        .iter()
        .filter_map(|b| berth_spec::parse_bind(b).ok())
        .map(|m| m.target)
        .chain(host.mounts.iter().map(|m| m.target.clone()))
        .chain(host.tmpfs.keys().cloned())
        .map(|t| trimmed(&t).to_owned())
        .collect();
    for (path, _) in paths {
        let dest = trimmed(path).to_owned();
        if !dest.starts_with('/') || taken.contains(&dest) {
            continue;
        }
        taken.push(dest.clone());
        spec_cfg.host.mounts.push(MountSpec {
            kind: MountKind::Volume,
            target: dest,
            ..MountSpec::default()
        });
    }
}

/// Resolves the volume mounts of one bundle: named volumes are created when missing,
/// anonymous ones reuse the container's earlier volume at that destination (`known`) or are
/// created. With `copy_up` (at create), a new empty volume gets the image's content.
pub(crate) struct Resolver<'a> {
    pub volumes: Option<&'a Volumes>,
    pub rootfs: &'a Path,
    pub known: &'a BTreeMap<String, MountPoint>,
    pub copy_up: bool,
    pub found: RefCell<Vec<(Volume, String, bool)>>,
}

impl Resolver<'_> {
    pub(crate) fn resolve(&self, req: &VolumeRequest<'_>) -> Result<PathBuf> {
        let Some(volumes) = self.volumes else {
            return berth_spec::VolumeSource::mountpoint(&berth_spec::NoVolumes, req);
        };
        let dest = trimmed(req.destination);
        let (create, anonymous) = match req.name {
            Some(name) => (
                CreateRequest {
                    name: name.to_owned(),
                    driver: req.driver.to_owned(),
                    options: req.options.clone(),
                    ..CreateRequest::default()
                },
                false,
            ),
            None => {
                let name = self
                    .known
                    .get(dest)
                    .filter(|m| m.anonymous)
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                let req = CreateRequest {
                    name,
                    anonymous: true,
                    ..CreateRequest::default()
                };
                (req, true)
            }
        };
        let volume = volumes.create(create)?;
        volumes.mount_options(&volume)?;
        if self.copy_up && !req.no_copy {
            self.copy_up_into(volumes, &volume, dest)?;
        }
        let path = PathBuf::from(&volume.mountpoint);
        self.found
            .borrow_mut()
            .push((volume, dest.to_owned(), anonymous));
        Ok(path)
    }

    /// The image's directory at `dest` is found inside the root (symlinks cannot leave it).
    fn copy_up_into(&self, volumes: &Volumes, volume: &Volume, dest: &str) -> Result<()> {
        let root: OwnedFd = open(
            self.rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| CategorizedError::new(berth_errdefs::Category::System, e.to_string()))?;
        // RESOLVE_IN_ROOT answers EAGAIN when any rename or mount races the lookup anywhere
        // on the host: retry (bounded) rather than skip the copy.
        let mut tries = 0;
        let fd = loop {
            match berth_runtime::rootfs::resolve_in_root(
                &root,
                Path::new(dest),
                nix::fcntl::ResolveFlag::empty(),
            ) {
                Ok(fd) => break fd,
                Err(nix::errno::Errno::EAGAIN) if tries < MAX_RESOLVE_TRIES => tries += 1,
                Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(()),
                Err(e) => {
                    return Err(CategorizedError::new(
                        berth_errdefs::Category::System,
                        format!("copy-up: resolve {dest} in the container's root: {e}"),
                    ));
                }
            }
        };
        volumes.populate(volume, &berth_runtime::rootfs::fd_path(&fd))
    }

    /// A create that failed: its new anonymous volumes go (nothing else can use them yet).
    pub(crate) fn discard_anonymous(self) {
        let Some(volumes) = self.volumes else {
            return;
        };
        for (volume, _, anonymous) in self.found.into_inner() {
            if anonymous && let Err(e) = volumes.remove(&volume.name, true) {
                tracing::warn!("removing volume {}: {}", volume.name, e.message);
            }
        }
    }

    /// The mount points found, with `RW` from the generated spec and `-v`'s mode.
    pub(crate) fn mount_points(
        self,
        spec: &oci_spec::runtime::Spec,
        host: &HostConfig,
    ) -> BTreeMap<String, MountPoint> {
        let mut out = BTreeMap::new();
        for (volume, dest, anonymous) in self.found.into_inner() {
            let ro = spec.mounts().iter().flatten().any(|m| {
                m.destination() == Path::new(&dest)
                    && m.options().iter().flatten().any(|o| o == "ro")
            });
            let point = MountPoint {
                name: volume.name,
                source: volume.mountpoint,
                mode: bind_mode(host, &dest),
                rw: !ro,
                anonymous,
                destination: dest.clone(),
            };
            out.insert(dest, point);
        }
        out
    }
}

/// `-v`'s mode string for the volume at `dest` (`z` when none), empty for other sources.
fn bind_mode(host: &HostConfig, dest: &str) -> String {
    for raw in host.binds.iter().flatten() {
        let Ok(m) = berth_spec::parse_bind(raw) else {
            continue;
        };
        if m.kind == MountKind::Volume && trimmed(&m.target) == dest {
            let parts: Vec<&str> = raw.split(':').collect();
            let mode = match parts.as_slice() {
                [_, _, mode] => mode,
                [_, second] if !second.starts_with('/') => second,
                _ => "",
            };
            return if mode.is_empty() { "z" } else { mode }.to_owned();
        }
    }
    String::new()
}

/// At removal: the container no longer uses its volumes; with `remove_anonymous` (`rm -v`,
/// `--rm`) its anonymous volumes go too, unless another container uses them.
pub(crate) fn release(volumes: &Volumes, record: &super::ContainerRecord, remove_anonymous: bool) {
    volumes.release(&record.id);
    if !remove_anonymous {
        return;
    }
    for point in record.mount_points.values().filter(|p| p.anonymous) {
        if let Err(e) = volumes.remove(&point.name, true) {
            tracing::warn!(
                "removing volume {} of {}: {}",
                point.name,
                record.id,
                e.message
            );
        }
    }
}

/// Docker's `mount` (at start) or `unmount` (at exit) event for each of the container's volumes.
pub(crate) fn publish_mounts(volumes: &Volumes, record: &super::ContainerRecord, action: &str) {
    for point in record.mount_points.values() {
        let mut attrs = BTreeMap::from([("container".to_owned(), record.id.clone())]);
        if action == "mount" {
            attrs.insert("destination".into(), point.destination.clone());
            attrs.insert("propagation".into(), String::new());
            attrs.insert("read/write".into(), point.rw.to_string());
        }
        volumes.publish_mount(action, &point.name, attrs);
    }
}
