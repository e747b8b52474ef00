//! The volumes service: named and anonymous volumes of the `local` driver.
//!
//! Each volume is a directory `<data-root>/volumes/<name>/` holding `_data/` (what containers
//! mount) and `volume.json` (the record, written tmp → fsync → rename → fsync(dir)). The disk
//! is the truth: listing reads the directory, so volumes survive a restart with nothing to
//! rebuild. Which containers use a volume is kept in memory, registered by the containers
//! service when it creates or loads a container and released when it removes one.
//!
//! Anonymous volumes get a random 64-hex name and the label `com.docker.volume.anonymous`, as
//! in Docker 23+, which is what `prune` (without `all`) removes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_errdefs::{CategorizedError, Category};
use berth_reference::Filters;
use serde::{Deserialize, Serialize};

use crate::events::{Event, EventType, Events};

type Result<T> = std::result::Result<T, CategorizedError>;

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
const RECORD: &str = "volume.json";
const DATA: &str = "_data";

/// One volume, as `volume.json` holds it and the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// The name.
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// `<data-root>/volumes/<name>/_data`.
    pub mountpoint: String,
    /// RFC 3339.
    pub created_at: String,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
    /// Driver options (none are accepted yet).
    pub options: Option<BTreeMap<String, String>>,
}

impl Volume {
    /// Whether this is an anonymous volume.
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// What `create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Empty: an anonymous volume with a generated name.
    pub name: String,
    /// Empty or `local`.
    pub driver: String,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Label it anonymous even when it has a name (a container's earlier anonymous volume).
    pub anonymous: bool,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Names of removed volumes.
    pub deleted: Vec<String>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// The volumes service.
#[derive(Debug)]
pub struct Volumes {
    root: PathBuf,
    events: Arc<Events>,
    /// Serialises create/remove, and holds name → ids of the containers using it.
    refs: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

fn sys(context: &str, e: impl std::fmt::Display) -> CategorizedError {
    CategorizedError::new(Category::System, format!("{context}: {e}"))
}

fn not_found(name: &str) -> CategorizedError {
    CategorizedError::new(Category::NotFound, format!("get {name}: no such volume"))
}

/// Docker's local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so never `/`, `..` or empty.
pub fn check_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok =
        name.len() >= 2 && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if first_ok && rest_ok {
        return Ok(());
    }
    Err(CategorizedError::new(
        Category::InvalidParameter,
        format!(
            "create {name}: {name:?} includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
             use absolute path"
        ),
    ))
}

impl Volumes {
    /// Opens `<data-root>/volumes`, creating it.
    pub fn open(data_root: &Path, events: Arc<Events>) -> Result<Arc<Volumes>> {
        let root = data_root.join("volumes");
        fs::create_dir_all(&root).map_err(|e| sys("create the volumes directory", e))?;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o701))
            .map_err(|e| sys("chmod the volumes directory", e))?;
        Ok(Arc::new(Volumes {
            root,
            events,
            refs: Mutex::new(BTreeMap::new()),
        }))
    }

    fn refs(&self) -> MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.refs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, action: &str, name: &str, attrs: BTreeMap<String, String>) {
        self.events
            .publish(Event::now(EventType::Volume, action, name, attrs));
    }

    fn driver_attrs() -> BTreeMap<String, String> {
        BTreeMap::from([("driver".to_owned(), "local".to_owned())])
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn read(&self, name: &str) -> Result<Option<Volume>> {
        match fs::read(self.dir(name).join(RECORD)) {
            Ok(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| sys(&format!("parse the record of volume {name}"), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(sys(&format!("read volume {name}"), e)),
        }
    }

    /// `POST /volumes/create`: idempotent for an existing volume of the same driver.
    pub fn create(&self, req: CreateRequest) -> Result<Volume> {
        let driver = if req.driver.is_empty() {
            "local"
        } else {
            req.driver.as_str()
        };
        if driver != "local" {
            return Err(CategorizedError::new(
                Category::NotFound,
                format!("error looking up volume plugin {driver}: plugin \"{driver}\" not found"),
            ));
        }
        check_options(&req.options)?;
        let mut labels = req.labels;
        if req.anonymous || req.name.is_empty() {
            labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
        }
        let name = if req.name.is_empty() {
            berth_reference::generate_id()
        } else {
            check_name(&req.name)?;
            req.name
        };
        let _guard = self.refs();
        if let Some(existing) = self.read(&name)? {
            return Ok(existing);
        }
        let volume = Volume {
            mountpoint: self.dir(&name).join(DATA).display().to_string(),
            name: name.clone(),
            driver: "local".into(),
            created_at: berth_image::now_rfc3339(),
            labels,
            scope: "local".into(),
            options: Some(req.options).filter(|o| !o.is_empty()),
        };
        self.write_new(&volume)?;
        drop(_guard);
        self.publish("create", &name, Self::driver_attrs());
        Ok(volume)
    }

    fn write_new(&self, volume: &Volume) -> Result<()> {
        let dir = self.dir(&volume.name);
        let data = serde_json::to_vec_pretty(volume).map_err(|e| sys("encode volume", e))?;
        let result = fs::create_dir_all(dir.join(DATA))
            .map_err(|e| sys("create the volume directory", e))
            .and_then(|()| crate::containers::write_atomic(&dir.join(RECORD), &data));
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// `GET /volumes/{name}`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        if check_name(name).is_err() {
            return Err(not_found(name));
        }
        self.read(name)?.ok_or_else(|| not_found(name))
    }

    /// `GET /volumes`: filters `name` (substring), `label`, `dangling`, `driver`.
    pub fn list(&self, filters: &Filters) -> Result<Vec<Volume>> {
        filters
            .validate(&["name", "label", "label!", "dangling", "driver"])
            .map_err(|e| CategorizedError::from_error(&e))?;
        let dangling = if filters.contains("dangling") {
            Some(
                filters
                    .get_bool_or_default("dangling", false)
                    .map_err(|e| CategorizedError::from_error(&e))?,
            )
        } else {
            None
        };
        let names = filters.get("name");
        let in_use: BTreeSet<String> = self
            .refs()
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        let mut out = Vec::new();
        for volume in self.all()? {
            let keep = (names.is_empty() || names.iter().any(|n| volume.name.contains(n)))
                && filters.exact_match("driver", &volume.driver)
                && filters.match_labels(&volume.labels)
                && dangling.is_none_or(|d| d != in_use.contains(&volume.name));
            if keep {
                out.push(volume);
            }
        }
        Ok(out)
    }

    /// Every volume with the bytes under its `_data` and how many containers use it
    /// (`docker system df`'s `UsageData`).
    pub fn usage(&self) -> Result<Vec<(Volume, u64, usize)>> {
        let refs = self.refs().clone();
        Ok(self
            .all()?
            .into_iter()
            .map(|v| {
                let size = dir_size(Path::new(&v.mountpoint), 0);
                let users = refs.get(&v.name).map_or(0, BTreeSet::len);
                (v, size, users)
            })
            .collect())
    }

    fn all(&self) -> Result<Vec<Volume>> {
        let entries = fs::read_dir(&self.root).map_err(|e| sys("read volumes", e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_name(&name).is_err() {
                continue;
            }
            match self.read(&name) {
                Ok(Some(v)) => out.push(v),
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping volume {name}: {}", e.message),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `DELETE /volumes/{name}`: refused while a container uses it; `force` ignores a missing
    /// volume.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let refs = self.refs();
        let volume = match self.get(name) {
            Ok(v) => v,
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some(ids) = refs.get(name).filter(|ids| !ids.is_empty()) {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("remove {name}: volume is in use - [{}]", ids.join(", ")),
            ));
        }
        self.delete(&volume)?;
        drop(refs);
        self.publish("destroy", name, Self::driver_attrs());
        Ok(())
    }

    /// Removes the record first, so a crash half-way leaves no volume that looks whole. A
    /// volume mounted by its options is unmounted first: never delete through a mount.
    fn delete(&self, volume: &Volume) -> Result<()> {
        let data = Path::new(&volume.mountpoint);
        if is_mountpoint(data) {
            nix::mount::umount2(data, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| sys(&format!("unmount volume {}", volume.name), e))?;
        }
        let dir = self.dir(&volume.name);
        fs::remove_file(dir.join(RECORD)).map_err(|e| sys("remove the volume record", e))?;
        fs::remove_dir_all(&dir).map_err(|e| sys("remove the volume directory", e))
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or every unused one with `all=true`;
    /// `label` filters as in list.
    pub fn prune(&self, filters: &Filters) -> Result<PruneReport> {
        filters
            .validate(&["label", "label!", "all"])
            .map_err(|e| CategorizedError::from_error(&e))?;
        let all = filters
            .get_bool_or_default("all", false)
            .map_err(|e| CategorizedError::from_error(&e))?;
        let mut report = PruneReport::default();
        let mut removed = Vec::new();
        {
            let refs = self.refs();
            for volume in self.all()? {
                let used = refs.get(&volume.name).is_some_and(|ids| !ids.is_empty());
                if used || !(all || volume.is_anonymous()) || !filters.match_labels(&volume.labels)
                {
                    continue;
                }
                let size = dir_size(Path::new(&volume.mountpoint), 0);
                match self.delete(&volume) {
                    Ok(()) => {
                        report.space_reclaimed += size;
                        report.deleted.push(volume.name.clone());
                        removed.push(volume.name);
                    }
                    Err(e) => tracing::warn!("pruning volume {}: {}", volume.name, e.message),
                }
            }
        }
        for name in removed {
            self.publish("destroy", &name, Self::driver_attrs());
        }
        let reclaimed = report.space_reclaimed.to_string();
        self.publish(
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_owned(), reclaimed)]),
        );
        Ok(report)
    }

    /// Records that container `id` uses volume `name`.
    pub(crate) fn add_ref(&self, name: &str, id: &str) {
        self.refs()
            .entry(name.to_owned())
            .or_default()
            .insert(id.to_owned());
    }

    /// Forgets every use by container `id`; a volume mounted by its options (`type`,
    /// `device`, `o`) is unmounted when its last user goes, as Docker's local driver does.
    pub(crate) fn release(&self, id: &str) {
        let mut refs = self.refs();
        for (name, ids) in refs.iter_mut() {
            if ids.remove(id) && ids.is_empty() {
                let data = self.dir(name).join(DATA);
                if is_mountpoint(&data)
                    && let Err(e) = nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH)
                {
                    tracing::warn!("unmounting volume {name}: {e}");
                }
            }
        }
        refs.retain(|_, ids| !ids.is_empty());
    }

    /// Mounts a volume with options (`type`, `device`, `o`) on its `_data` at first use.
    pub(crate) fn mount_options(&self, volume: &Volume) -> Result<()> {
        let Some(options) = volume.options.as_ref().filter(|o| !o.is_empty()) else {
            return Ok(());
        };
        let data = Path::new(&volume.mountpoint);
        let _guard = self.refs();
        if is_mountpoint(data) {
            return Ok(());
        }
        let kind = options.get("type").map(String::as_str).unwrap_or_default();
        let device = options
            .get("device")
            .map(String::as_str)
            .unwrap_or_default();
        let o: Vec<String> = options
            .get("o")
            .map(|o| {
                o.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let parsed = berth_runtime::rootfs::parse_options(&o);
        let fs_data = parsed.data.join(",");
        nix::mount::mount(
            Some(device),
            data,
            Some(kind).filter(|k| !k.is_empty() && *k != "none"),
            parsed.flags,
            Some(fs_data.as_str()).filter(|d| !d.is_empty()),
        )
        .map_err(|e| {
            CategorizedError::new(
                Category::System,
                format!(
                    "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, data: {fs_data}: {e}",
                    volume.mountpoint, volume.mountpoint
                ),
            )
        })
    }

    /// A container's mount event (`mount` / `unmount`), with Docker's attributes.
    pub(crate) fn publish_mount(&self, action: &str, name: &str, attrs: BTreeMap<String, String>) {
        let mut all = Self::driver_attrs();
        all.extend(attrs);
        self.publish(action, name, all);
    }

    /// Docker's copy-up: when the volume is empty, copy `source` (the image's directory at
    /// the mount path, already resolved inside the container's root) into it, keeping modes,
    /// owners and symlinks. Nothing when `source` is absent or not a directory.
    pub(crate) fn populate(&self, volume: &Volume, source: &Path) -> Result<()> {
        let data = Path::new(&volume.mountpoint);
        let is_empty = fs::read_dir(data)
            .map_err(|e| sys("read the volume", e))?
            .next()
            .is_none();
        let src_meta = match fs::metadata(source) {
            Ok(m) if m.is_dir() => m,
            _ => return Ok(()),
        };
        if !is_empty {
            return Ok(());
        }
        copy_tree(source, data, 0).map_err(|e| sys("copy image content into the volume", e))?;
        copy_owner_mode(data, &src_meta).map_err(|e| sys("copy-up", e))
    }
}

/// The `local` driver's options: `type`, `device` and `o`, with `type` and `device` both
/// given when any is (Docker's words for the rest).
fn check_options(options: &BTreeMap<String, String>) -> Result<()> {
    let invalid = |msg: String| CategorizedError::new(Category::InvalidParameter, msg);
    if let Some(key) = options
        .keys()
        .find(|k| !["type", "device", "o"].contains(&k.as_str()))
    {
        return Err(invalid(format!("invalid option: {key:?}")));
    }
    if options.is_empty() {
        return Ok(());
    }
    for key in ["type", "device"] {
        if options.get(key).is_none_or(String::is_empty) {
            return Err(invalid(format!("missing required option: {key:?}")));
        }
    }
    Ok(())
}

/// Whether `path` is a mount point, from `/proc/self/mountinfo` (a bind of the same
/// filesystem has the same device as its parent).
fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mountinfo(m) == want)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Deepest directory nesting copied or measured; deeper trees are refused.
const MAX_DEPTH: usize = 256;

fn copy_owner_mode(dst: &Path, meta: &fs::Metadata) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
}

/// Copies the contents of `src` into the existing directory `dst`; symlinks are copied, never
/// followed; special files other than fifos are skipped.
fn copy_tree(src: &Path, dst: &Path, depth: usize) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other("directory tree too deep"));
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
            continue;
        }
        if kind.is_dir() {
            fs::create_dir(&to)?;
            copy_tree(&from, &to, depth + 1)?;
        } else if kind.is_file() {
            fs::copy(&from, &to)?;
        } else {
            continue;
        }
        copy_owner_mode(&to, &meta)?;
    }
    Ok(())
}

/// Bytes of regular files under `dir` (for prune's `SpaceReclaimed`).
pub(crate) fn dir_size(dir: &Path, depth: usize) -> u64 {
    if depth > MAX_DEPTH {
        return 0;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match fs::symlink_metadata(e.path()) {
            Ok(m) if m.is_dir() => dir_size(&e.path(), depth + 1),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> (tempfile::TempDir, Arc<Volumes>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = Volumes::open(dir.path(), Arc::new(Events::default())).expect("open");
        (dir, v)
    }

    #[test]
    fn hostile_names_are_refused_and_nothing_is_created() {
        let (dir, v) = service();
        for name in ["../x", "a/b", "..", ".hidden", "x", "a\0b", "-a"] {
            let req = CreateRequest {
                name: name.into(),
                ..Default::default()
            };
            let err = v.create(req).expect_err(name);
            assert_eq!(err.category, Category::InvalidParameter, "{name}");
        }
        let left: Vec<_> = fs::read_dir(dir.path().join("volumes"))
            .expect("read")
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn create_is_idempotent_and_in_use_blocks_remove() {
        let (_dir, v) = service();
        let req = CreateRequest {
            name: "data1".into(),
            ..Default::default()
        };
        let a = v.create(req.clone()).expect("create");
        let b = v.create(req).expect("again");
        assert_eq!(a, b);
        v.add_ref("data1", "c1");
        let err = v.remove("data1", false).expect_err("in use");
        assert_eq!(err.message, "remove data1: volume is in use - [c1]");
        v.release("c1");
        v.remove("data1", false).expect("remove");
        assert_eq!(
            v.get("data1").expect_err("gone").category,
            Category::NotFound
        );
    }

    #[test]
    fn a_truncated_record_is_skipped_by_list_and_an_error_for_get() {
        let (dir, v) = service();
        v.create(CreateRequest {
            name: "good".into(),
            ..Default::default()
        })
        .expect("create");
        let bad = dir.path().join("volumes/bad");
        fs::create_dir_all(bad.join(DATA)).expect("mkdir");
        fs::write(bad.join(RECORD), "{\"Name\": \"ba").expect("write");
        // A stray directory with a hostile name is never read.
        fs::create_dir_all(dir.path().join("volumes/.x")).expect("mkdir");
        let names: Vec<String> = v
            .list(&Filters::new())
            .expect("list")
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, vec!["good".to_owned()]);
        assert_eq!(v.get("bad").expect_err("bad").category, Category::System);
        assert_eq!(
            v.get("../x").expect_err("hostile").category,
            Category::NotFound
        );
    }

    #[test]
    fn copy_up_keeps_symlinks_without_following_them() {
        let (dir, v) = service();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).expect("mkdir");
        fs::write(src.join("sub/f"), "hi").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).expect("symlink");
        let vol = v.create(CreateRequest::default()).expect("anonymous");
        assert!(vol.is_anonymous() && vol.name.len() == 64);
        v.populate(&vol, &src).expect("populate");
        let data = Path::new(&vol.mountpoint);
        assert_eq!(fs::read_to_string(data.join("sub/f")).expect("read"), "hi");
        assert_eq!(
            fs::read_link(data.join("link")).expect("link"),
            Path::new("/etc/passwd")
        );
    }
}
