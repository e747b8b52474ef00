//! Mounts: Docker's default set (proc, /dev, devpts, sysfs, cgroup, mqueue, /dev/shm), the
//! `-v`/`--mount`/`--tmpfs` parsers, volumes through the engine's [`VolumeSource`], the
//! container's network files, and how `--read-only` and `--privileged` change them.
//!
//! Order follows moby: default mounts first, minus those a user mount replaces (and all of
//! `/dev/*` when the user mounts `/dev`), then user mounts sorted so parents come before
//! children.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use berth_errdefs::{CategorizedError, HasCategory};
use oci_spec::runtime::Mount;

use crate::config::{ContainerConfig, IpcNamespace, MountKind, MountSpec, RuntimeContext};
use crate::error::{Result, SpecError};

/// `/dev/shm` size when `--shm-size` is not given: 64 MiB (moby `DefaultShmSize`).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;
/// Where `--init` puts the init binary, as Docker does.
pub const INIT_PATH: &str = "/sbin/docker-init";
/// Default mounts that `--read-only` leaves writable.
const WRITABLE_WHEN_READONLY: [&str; 5] = ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"];

/// Asks the engine for a volume's host path.
pub trait VolumeSource {
    /// The host directory of the volume in `request`, created when missing. An anonymous
    /// volume (`name` is `None`) is a new one.
    fn mountpoint(&self, request: &VolumeRequest<'_>) -> Result<PathBuf, CategorizedError>;
}

impl<F> VolumeSource for F
where
    F: Fn(&VolumeRequest<'_>) -> Result<PathBuf, CategorizedError>,
{
    fn mountpoint(&self, request: &VolumeRequest<'_>) -> Result<PathBuf, CategorizedError> {
        self(request)
    }
}

/// A [`VolumeSource`] for callers without volumes: every request is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVolumes;

impl VolumeSource for NoVolumes {
    fn mountpoint(&self, request: &VolumeRequest<'_>) -> Result<PathBuf, CategorizedError> {
        Err(CategorizedError::not_found(format!(
            "get {}: no such volume",
            request.name.unwrap_or("(anonymous)")
        )))
    }
}

/// What a volume mount asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRequest<'a> {
    /// Its name; `None` for an anonymous volume.
    pub name: Option<&'a str>,
    /// Where it is mounted in the container.
    pub destination: &'a str,
    /// Volume driver (`local` when not given).
    pub driver: &'a str,
    /// Driver options.
    pub options: &'a BTreeMap<String, String>,
    /// Do not copy image content into a new empty volume.
    pub no_copy: bool,
}

/// A mount from `-v`, `--mount` or `--tmpfs`, checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UserMount {
    spec: MountSpec,
    /// `--tmpfs` option string, or the options derived from `--mount type=tmpfs`.
    tmpfs_data: String,
    /// `-v` host paths are created by the engine when missing; `--mount` ones must exist.
    must_exist: bool,
}

// ----- -v / Binds --------------------------------------------------------------------------

/// Parses one `-v` / `Binds` entry: `[source:]destination[:mode,…]`. An absolute source is a
/// bind mount, any other a named volume, none an anonymous volume. Modes: `ro`/`rw`,
/// `z`/`Z`, one propagation (`rprivate`…), `nocopy` (volumes only).
///
/// As in Docker, a missing host directory of a `-v` bind is not an error here: the engine
/// creates it before starting (a `--mount` bind must exist).
pub fn parse_bind(raw: &str) -> Result<MountSpec> {
    let invalid = || SpecError::InvalidVolumeSpec(raw.to_owned());
    if raw.matches(':').count() > 2 {
        return Err(invalid());
    }
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [first, second] if is_valid_mode(second) => ("", *first, *second),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(invalid()),
    };
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid());
    }
    let kind = if source.starts_with('/') {
        MountKind::Bind
    } else {
        MountKind::Volume
    };
    let modes = parse_modes(mode, kind)?;
    if kind == MountKind::Volume && !source.is_empty() {
        check_volume_name(source)?;
    }
    Ok(MountSpec {
        kind,
        source: if kind == MountKind::Bind {
            clean_path(source)
        } else {
            source.to_owned()
        },
        target: target.to_owned(),
        read_only: modes.read_only,
        bind_propagation: modes.propagation.unwrap_or_default(),
        volume_no_copy: modes.no_copy,
        ..MountSpec::default()
    })
}

#[derive(Default)]
struct Modes {
    read_only: bool,
    propagation: Option<String>,
    no_copy: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

fn is_valid_mode(mode: &str) -> bool {
    parse_modes(mode, MountKind::Volume).is_ok() || parse_modes(mode, MountKind::Bind).is_ok()
}

/// `ro,Z,rshared` → flags; each kind of mode at most once.
fn parse_modes(mode: &str, kind: MountKind) -> Result<Modes> {
    let bad = || SpecError::InvalidMode(mode.to_owned());
    let mut modes = Modes::default();
    if mode.is_empty() {
        return Ok(modes);
    }
    let (mut rw_seen, mut label_seen) = (false, false);
    for m in mode.split(',') {
        match m {
            "ro" | "rw" if !rw_seen => {
                rw_seen = true;
                modes.read_only = m == "ro";
            }
            // SELinux relabelling: meaningless on hosts without SELinux, accepted like Docker.
            "z" | "Z" if !label_seen => label_seen = true,
            p if PROPAGATIONS.contains(&p) && modes.propagation.is_none() => {
                if kind != MountKind::Bind {
                    return Err(bad());
                }
                modes.propagation = Some(p.to_owned());
            }
            "nocopy" if !modes.no_copy && kind == MountKind::Volume => modes.no_copy = true,
            _ => return Err(bad()),
        }
    }
    Ok(modes)
}

/// Docker's local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn check_volume_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok =
        name.len() >= 2 && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if first_ok && rest_ok {
        return Ok(());
    }
    Err(SpecError::invalid(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path"
    )))
}

// ----- --mount -----------------------------------------------------------------------------

/// Parses one `--mount` flag (`type=bind,source=/a,target=/b,readonly,…`) as the docker CLI
/// does. `type` defaults to `volume`.
pub fn parse_mount_flag(csv: &str) -> Result<MountSpec> {
    let mut spec = MountSpec {
        kind: MountKind::Volume,
        ..MountSpec::default()
    };
    for field in csv.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        apply_mount_field(&mut spec, &key, value, field, csv)?;
    }
    if spec.target.is_empty() {
        return Err(SpecError::invalid("target is required"));
    }
    Ok(spec)
}

fn apply_mount_field(
    spec: &mut MountSpec,
    key: &str,
    value: Option<&str>,
    field: &str,
    csv: &str,
) -> Result<()> {
    let need = || {
        value.ok_or_else(|| {
            SpecError::invalid(format!("invalid field '{field}' must be a key=value pair"))
        })
    };
    let flag = || parse_bool_flag(value, field);
    match key {
        "type" => {
            spec.kind = match need()? {
                "bind" => MountKind::Bind,
                "volume" => MountKind::Volume,
                "tmpfs" => MountKind::Tmpfs,
                other => return Err(SpecError::invalid(format!("invalid mount type: {other:?}"))),
            }
        }
        "source" | "src" => spec.source = need()?.to_owned(),
        "target" | "destination" | "dst" => spec.target = need()?.to_owned(),
        "readonly" | "ro" => spec.read_only = flag()?,
        "bind-propagation" => spec.bind_propagation = need()?.to_owned(),
        "bind-nonrecursive" => spec.bind_non_recursive = flag()?,
        "volume-nocopy" => spec.volume_no_copy = flag()?,
        "volume-driver" => spec.volume_driver = need()?.to_owned(),
        "volume-opt" => {
            let (k, v) = need()?.split_once('=').ok_or_else(|| {
                SpecError::invalid(format!("invalid field '{field}' must be a key=value pair"))
            })?;
            spec.volume_options.insert(k.to_owned(), v.to_owned());
        }
        "tmpfs-size" => spec.tmpfs_size = parse_bytes(need()?)?,
        "tmpfs-mode" => {
            spec.tmpfs_mode = u32::from_str_radix(need()?, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| SpecError::invalid(format!("invalid value for {key}: {field}")))?;
        }
        // macOS-only hint; Docker accepts and ignores it on Linux.
        "consistency" => {
            need()?;
        }
        _ => {
            return Err(SpecError::invalid(format!(
                "unexpected key '{key}' in '{csv}'"
            )));
        }
    }
    Ok(())
}

/// `readonly`, `readonly=true|1|false|0`.
fn parse_bool_flag(value: Option<&str>, field: &str) -> Result<bool> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(SpecError::invalid(format!("invalid value for {field}"))),
    }
}

/// `64m`, `1g`, `512k`, `100` (bytes; binary units like Docker's `RAMInBytes`).
pub fn parse_bytes(text: &str) -> Result<i64> {
    let bad = || SpecError::invalid(format!("invalid size: '{text}'"));
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let bytes = number * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

// ----- validation of user mounts -----------------------------------------------------------

/// Checks one `--mount` the way the daemon does, with Docker's messages.
fn validate_mount(spec: &MountSpec) -> Result<()> {
    let kind = spec.kind.as_str();
    let err = |reason: String| SpecError::mount_config(kind, reason);
    if spec.target.is_empty() {
        return Err(err("field Target must not be empty".into()));
    }
    check_absolute(kind, &spec.target)?;
    let has_bind_opts = !spec.bind_propagation.is_empty() || spec.bind_non_recursive;
    let has_volume_opts =
        spec.volume_no_copy || !spec.volume_driver.is_empty() || !spec.volume_options.is_empty();
    let has_tmpfs_opts = spec.tmpfs_size != 0 || spec.tmpfs_mode != 0;
    match spec.kind {
        MountKind::Bind => {
            if spec.source.is_empty() {
                return Err(err("field Source must not be empty".into()));
            }
            check_absolute(kind, &spec.source)?;
            if !spec.bind_propagation.is_empty()
                && !PROPAGATIONS.contains(&spec.bind_propagation.as_str())
            {
                return Err(err(format!(
                    "invalid propagation mode: {}",
                    spec.bind_propagation
                )));
            }
            if has_volume_opts {
                return Err(err("field VolumeOptions must not be specified".into()));
            }
            if has_tmpfs_opts {
                return Err(err("field TmpfsOptions must not be specified".into()));
            }
        }
        MountKind::Volume => {
            if !spec.source.is_empty() {
                check_volume_name(&spec.source)?;
            }
            if has_bind_opts {
                return Err(err("field BindOptions must not be specified".into()));
            }
            if has_tmpfs_opts {
                return Err(err("field TmpfsOptions must not be specified".into()));
            }
        }
        MountKind::Tmpfs => {
            if !spec.source.is_empty() {
                return Err(err("field Source must not be specified".into()));
            }
            if has_bind_opts || has_volume_opts {
                return Err(err("only tmpfs options may be specified".into()));
            }
            if spec.tmpfs_size < 0 {
                return Err(err(format!("invalid tmpfs size: {}", spec.tmpfs_size)));
            }
        }
    }
    Ok(())
}

fn check_absolute(kind: &str, path: &str) -> Result<()> {
    if !path.starts_with('/') {
        return Err(SpecError::mount_config(
            kind,
            format!("invalid mount path: '{path}' mount path must be absolute"),
        ));
    }
    Ok(())
}

/// Lexically cleans an absolute path (`/a/./b/../c/` → `/a/c`), like Go's `filepath.Clean`.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// Every user mount, checked, with destinations cleaned and duplicates refused.
fn user_mounts(cfg: &ContainerConfig) -> Result<Vec<UserMount>> {
    let mut out = Vec::new();
    for raw in &cfg.host.binds {
        let spec = parse_bind(raw)?;
        check_absolute(spec.kind.as_str(), &spec.target)?;
        out.push(UserMount {
            spec,
            tmpfs_data: String::new(),
            must_exist: false,
        });
    }
    for spec in &cfg.host.mounts {
        validate_mount(spec)?;
        out.push(UserMount {
            tmpfs_data: tmpfs_data_of(spec),
            spec: spec.clone(),
            must_exist: true,
        });
    }
    for (target, data) in &cfg.host.tmpfs {
        check_absolute("tmpfs", target)?;
        out.push(UserMount {
            spec: MountSpec {
                kind: MountKind::Tmpfs,
                target: target.clone(),
                ..MountSpec::default()
            },
            tmpfs_data: data.clone(),
            must_exist: false,
        });
    }
    let mut seen = BTreeSet::new();
    for m in &mut out {
        m.spec.target = clean_path(&m.spec.target);
        if m.spec.target == "/" {
            return Err(SpecError::invalid(
                "invalid specification: destination can't be '/'",
            ));
        }
        if !seen.insert(m.spec.target.clone()) {
            return Err(SpecError::DuplicateMountPoint(m.spec.target.clone()));
        }
    }
    Ok(out)
}

/// `--mount type=tmpfs` options as a tmpfs data string.
fn tmpfs_data_of(spec: &MountSpec) -> String {
    let mut data = Vec::new();
    if spec.tmpfs_size > 0 {
        data.push(format!("size={}", spec.tmpfs_size));
    }
    if spec.tmpfs_mode != 0 {
        data.push(format!("mode={:o}", spec.tmpfs_mode));
    }
    data.join(",")
}

// ----- building the OCI mounts -------------------------------------------------------------

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| (*o).to_owned()).collect()));
    m
}

/// Docker's default mounts for this container (before user mounts replace any).
fn default_mounts(cfg: &ContainerConfig, ctx: &RuntimeContext) -> Result<Vec<Mount>> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    if let Some(shm) = shm_mount(cfg, ctx)? {
        mounts.push(shm);
    }
    if cfg.host.privileged {
        // Privileged containers may write /sys and their cgroups, as in Docker.
        for m in &mut mounts {
            if matches!(m.typ().as_deref(), Some("sysfs" | "cgroup")) {
                set_read_only(m, false);
            }
        }
    }
    Ok(mounts)
}

/// `/dev/shm`: a private tmpfs of `--shm-size`, the shared one of the IPC mode, or none.
fn shm_mount(cfg: &ContainerConfig, ctx: &RuntimeContext) -> Result<Option<Mount>> {
    let size = match cfg.host.shm_size {
        s if s < 0 => return Err(SpecError::invalid("SHM size can not be less than 0")),
        0 => DEFAULT_SHM_SIZE,
        s => s,
    };
    let bind = |source: &Path| {
        mount(
            "/dev/shm",
            "bind",
            &source.to_string_lossy(),
            &["rbind", "rprivate"],
        )
    };
    Ok(match &ctx.ipc {
        IpcNamespace::Private => Some(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={size}"),
            ],
        )),
        IpcNamespace::Shareable(path) => Some(bind(path)),
        IpcNamespace::Container { shm, .. } => Some(bind(shm)),
        IpcNamespace::Host => Some(bind(Path::new("/dev/shm"))),
        IpcNamespace::None => None,
    })
}

fn set_read_only(m: &mut Mount, read_only: bool) {
    let mut options: Vec<String> = m
        .options()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o != "ro" && o != "rw")
        .collect();
    if read_only {
        options.push("ro".to_owned());
    }
    m.set_options(Some(options));
}

/// The OCI mounts of one user mount.
fn oci_mount(m: &UserMount, volumes: &dyn VolumeSource) -> Result<Mount> {
    let spec = &m.spec;
    let mut out = match spec.kind {
        MountKind::Bind => {
            if m.must_exist && !Path::new(&spec.source).exists() {
                return Err(SpecError::mount_config(
                    "bind",
                    format!("bind source path does not exist: {}", spec.source),
                ));
            }
            bind_mount(spec, &spec.source)
        }
        MountKind::Volume => {
            let request = VolumeRequest {
                name: Some(spec.source.as_str()).filter(|s| !s.is_empty()),
                destination: &spec.target,
                driver: if spec.volume_driver.is_empty() {
                    "local"
                } else {
                    &spec.volume_driver
                },
                options: &spec.volume_options,
                no_copy: spec.volume_no_copy,
            };
            let path = volumes
                .mountpoint(&request)
                .map_err(|e| SpecError::Volume {
                    category: e.category(),
                    message: e.message,
                })?;
            bind_mount(spec, &path.to_string_lossy())
        }
        MountKind::Tmpfs => tmpfs_mount(&spec.target, &m.tmpfs_data)?,
    };
    if spec.read_only {
        set_read_only(&mut out, true);
    }
    Ok(out)
}

fn bind_mount(spec: &MountSpec, source: &str) -> Mount {
    let recursive = if spec.bind_non_recursive {
        "bind"
    } else {
        "rbind"
    };
    let propagation = if spec.bind_propagation.is_empty() {
        "rprivate"
    } else {
        &spec.bind_propagation
    };
    mount(&spec.target, "bind", source, &[recursive, propagation])
}

/// A `--tmpfs`: `noexec,nosuid,nodev,rprivate` merged with the user's options, later ones
/// winning (so `exec` undoes `noexec`), as moby's `MergeTmpfsOptions`.
fn tmpfs_mount(target: &str, data: &str) -> Result<Mount> {
    let base = ["noexec", "nosuid", "nodev", "rprivate"];
    let user = data.split(',').map(str::trim).filter(|o| !o.is_empty());
    let mut merged: Vec<String> = Vec::new();
    for option in base.into_iter().chain(user) {
        let key = option_key(option);
        merged.retain(|existing| option_key(existing) != key);
        merged.push(option.to_owned());
    }
    let refs: Vec<&str> = merged.iter().map(String::as_str).collect();
    Ok(mount(target, "tmpfs", "tmpfs", &refs))
}

/// The setting an option controls: `noexec` and `exec` both control `exec`; `size=1m` and
/// `size=2m` both `size`.
fn option_key(option: &str) -> &str {
    if let Some((key, _)) = option.split_once('=') {
        return key;
    }
    match option {
        "ro" | "rw" => "rw",
        "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => "propagation",
        o => o.strip_prefix("no").unwrap_or(o),
    }
}

/// Bind mounts of the container's `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`;
/// writable unless the root filesystem is read-only, as in Docker.
fn network_file_mounts(cfg: &ContainerConfig, ctx: &RuntimeContext) -> Vec<Mount> {
    let files = [
        ("/etc/resolv.conf", &ctx.resolv_conf_path),
        ("/etc/hostname", &ctx.hostname_path),
        ("/etc/hosts", &ctx.hosts_path),
    ];
    files
        .into_iter()
        .filter_map(|(dest, source)| {
            let source = source.as_ref()?;
            let mut m = mount(
                dest,
                "bind",
                &source.to_string_lossy(),
                &["rbind", "rprivate"],
            );
            if cfg.host.readonly_rootfs {
                set_read_only(&mut m, true);
            }
            Some(m)
        })
        .collect()
}

/// The init binary, read-only at [`INIT_PATH`].
pub(crate) fn init_mount(init: &Path) -> Mount {
    mount(INIT_PATH, "bind", &init.to_string_lossy(), &["bind", "ro"])
}

/// All mounts of the container, and the root propagation that shared/slave binds need.
pub(crate) fn build_mounts(
    cfg: &ContainerConfig,
    ctx: &RuntimeContext,
    volumes: &dyn VolumeSource,
    init: Option<&Path>,
) -> Result<(Vec<Mount>, Option<String>)> {
    let users = user_mounts(cfg)?;
    let mut extra: Vec<Mount> = users
        .iter()
        .map(|m| oci_mount(m, volumes))
        .collect::<Result<_>>()?;
    let taken: BTreeSet<PathBuf> = extra.iter().map(|m| m.destination().clone()).collect();
    extra.extend(
        network_file_mounts(cfg, ctx)
            .into_iter()
            .chain(init.map(init_mount))
            .filter(|m| !taken.contains(m.destination())),
    );
    let user_dests: BTreeSet<PathBuf> = extra.iter().map(|m| m.destination().clone()).collect();
    let user_dev = user_dests.contains(Path::new("/dev"));
    let mut mounts: Vec<Mount> = default_mounts(cfg, ctx)?
        .into_iter()
        .filter(|m| !user_dests.contains(m.destination()))
        .filter(|m| !(user_dev && m.destination().starts_with("/dev")))
        .collect();
    if cfg.host.readonly_rootfs {
        for m in &mut mounts {
            let dest = m.destination().to_string_lossy().into_owned();
            if !WRITABLE_WHEN_READONLY.contains(&dest.as_str()) {
                set_read_only(m, true);
            }
        }
    }
    extra.sort_by_key(|m| m.destination().components().count());
    let propagation = root_propagation(&users);
    mounts.extend(extra);
    Ok((mounts, propagation))
}

/// A shared or slave bind needs the container's root to propagate too (moby sets the root to
/// `shared`, or `rslave` when only slave binds exist).
fn root_propagation(users: &[UserMount]) -> Option<String> {
    let props = users.iter().map(|m| m.spec.bind_propagation.as_str());
    let mut result = None;
    for p in props {
        match p {
            "shared" | "rshared" => return Some("shared".to_owned()),
            "slave" | "rslave" => result = Some("rslave".to_owned()),
            _ => {}
        }
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bind_forms() {
        let m = parse_bind("/a:/b:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str()),
            (MountKind::Bind, "/a", "/b")
        );
        assert!(m.read_only);

        let m = parse_bind("/a/./x/../:/b").unwrap();
        assert_eq!((m.source.as_str(), m.read_only), ("/a", false));

        let m = parse_bind("/data").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str()),
            (MountKind::Volume, "", "/data")
        );

        let m = parse_bind("/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.target.as_str(), m.read_only),
            (MountKind::Volume, "/data", true)
        );

        let m = parse_bind("myvol:/data:nocopy").unwrap();
        assert_eq!((m.kind, m.source.as_str()), (MountKind::Volume, "myvol"));
        assert!(m.volume_no_copy);

        let m = parse_bind("/a:/b:rw,rshared,Z").unwrap();
        assert_eq!(m.bind_propagation, "rshared");
    }

    #[test]
    fn bind_errors() {
        for raw in [
            "",
            ":/b",
            "/a:",
            "/a::ro",
            "/a:/b:ro:extra",
            "/a:/b:c:d",
            "a:b:c:d:e",
        ] {
            assert!(
                matches!(parse_bind(raw), Err(SpecError::InvalidVolumeSpec(_))),
                "{raw}"
            );
        }
        assert_eq!(
            parse_bind("/a:/b:rx").unwrap_err().to_string(),
            "invalid mode: rx"
        );
        for raw in [
            "/a:/b:ro,rw",
            "/a:/b:rshared,rslave",
            "/a:/b:nocopy",
            "vol:/b:rshared",
        ] {
            assert!(
                matches!(parse_bind(raw), Err(SpecError::InvalidMode(_))),
                "{raw}"
            );
        }
        // Relative host paths are taken for volume names, and refused as such.
        let err = parse_bind("./data:/data").unwrap_err().to_string();
        assert!(
            err.contains("includes invalid characters for a local volume name"),
            "{err}"
        );
        assert!(err.contains("use absolute path"), "{err}");
        assert!(parse_bind("data/sub:/data").is_err());
        // Windows drive letters are not paths on Linux.
        assert!(parse_bind(r"C:\data:/data").is_err());
        assert!(parse_bind("C:/data:/data").is_err());
        assert!(parse_bind("c:/data").is_err());
    }

    #[test]
    fn mount_flag_forms() {
        let m = parse_mount_flag("type=bind,source=/a,target=/b,readonly,bind-propagation=rslave")
            .unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str()),
            (MountKind::Bind, "/a", "/b")
        );
        assert!(m.read_only);
        assert_eq!(m.bind_propagation, "rslave");

        let m = parse_mount_flag("src=v1,dst=/data,volume-nocopy,volume-opt=type=nfs,ro=false")
            .unwrap();
        assert_eq!((m.kind, m.source.as_str()), (MountKind::Volume, "v1"));
        assert!(m.volume_no_copy && !m.read_only);
        assert_eq!(
            m.volume_options.get("type").map(String::as_str),
            Some("nfs")
        );

        let m =
            parse_mount_flag("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!((m.tmpfs_size, m.tmpfs_mode), (64 << 20, 0o1770));
    }

    #[test]
    fn mount_flag_errors() {
        assert_eq!(
            parse_mount_flag("type=bind,source=/a")
                .unwrap_err()
                .to_string(),
            "target is required"
        );
        assert_eq!(
            parse_mount_flag("type=bind,target=/b,color=red")
                .unwrap_err()
                .to_string(),
            "unexpected key 'color' in 'type=bind,target=/b,color=red'"
        );
        assert!(parse_mount_flag("type=nfs,target=/b").is_err());
        assert!(parse_mount_flag("type,target=/b").is_err());
        assert!(parse_mount_flag("target=/b,readonly=maybe").is_err());
        assert!(parse_mount_flag("type=tmpfs,target=/b,tmpfs-mode=99").is_err());
    }

    #[test]
    fn validation_messages() {
        let bind = |source: &str, target: &str| MountSpec {
            kind: MountKind::Bind,
            source: source.into(),
            target: target.into(),
            ..MountSpec::default()
        };
        assert_eq!(
            validate_mount(&bind("rel", "/b")).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            validate_mount(&bind("/a", "")).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": field Target must not be empty"
        );
        assert!(validate_mount(&bind("", "/b")).is_err());
        let mut tmpfs = bind("/x", "/t");
        tmpfs.kind = MountKind::Tmpfs;
        assert!(
            validate_mount(&tmpfs)
                .unwrap_err()
                .to_string()
                .contains("Source must not be specified")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        for bad in ["", "m", "-1m", "12x", "99999999999p"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_options_merge_later_wins() {
        let m = tmpfs_mount("/run", "exec,size=1m,size=2m").unwrap();
        assert_eq!(
            m.options().as_deref().unwrap(),
            ["nosuid", "nodev", "rprivate", "exec", "size=2m"]
        );
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c");
        assert_eq!(clean_path("/../.."), "/");
        assert_eq!(clean_path("//x//y"), "/x/y");
    }
}
