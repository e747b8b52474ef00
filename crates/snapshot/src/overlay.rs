//! The overlayfs snapshotter, modelled on containerd's: each snapshot is a numbered
//! directory `<root>/snapshots/<id>/` with `fs/` (its files: an unpacked layer, or a
//! container's upper directory) and `work/` (overlayfs's scratch space). Snapshots are
//! named by caller-chosen keys: an active (writable) snapshot is prepared on top of a
//! committed parent, filled (by [`crate::apply_layer`] or a running container), then
//! committed under a new key, typically the layer's chain id. Short numeric ids keep
//! `lowerdir=` strings short.
//!
//! Records are kept in `<root>/metadata.json`, written atomically (tmp, fsync, rename,
//! fsync dir). A snapshot directory without a record is debris from a crash (created before
//! its record was written, or left behind by a removal) and is deleted by
//! [`Snapshotter::open`].
//!
//! The data root's directories are mode 0700 and owned by root so that no other host user
//! can reach a layer's setuid binaries (CVE-2021-41091).

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::fsutil::{open_root, remove_all_at};
use crate::mount::Mount;
use crate::usage::{Usage, disk_usage};

/// The kind of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable; can be committed.
    Active,
    /// Read-only, over committed parents; cannot be committed.
    View,
    /// Immutable; may be a parent.
    Committed,
}

/// What the snapshotter knows about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Its key.
    pub key: String,
    /// Its directory number under `snapshots/`.
    pub id: u64,
    /// Active, view or committed.
    pub kind: Kind,
    /// The committed snapshot it sits on.
    pub parent: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next_id: u64,
    snapshots: BTreeMap<String, Info>,
}

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has this key.
    #[error("snapshot {0:?} does not exist")]
    NotFound(String),
    /// The key is taken.
    #[error("snapshot {0:?} already exists")]
    AlreadyExists(String),
    /// The operation needs another kind of snapshot (commit of a committed one, a parent
    /// that is not committed, …).
    #[error("snapshot {key:?} is {kind:?}: {reason}")]
    WrongKind {
        /// The snapshot.
        key: String,
        /// Its kind.
        kind: Kind,
        /// What was expected.
        reason: &'static str,
    },
    /// Other snapshots sit on this one.
    #[error("snapshot {key:?} has {children} children and cannot be removed")]
    HasChildren {
        /// The snapshot.
        key: String,
        /// How many.
        children: usize,
    },
    /// Keys must be non-empty and short.
    #[error("invalid snapshot key {0:?}")]
    InvalidKey(String),
    /// overlayfs option syntax cannot express this root path.
    #[error("snapshotter root {0} contains ',' or ':', which overlayfs options cannot express")]
    InvalidRoot(PathBuf),
    /// The metadata file is unreadable.
    #[error("snapshot metadata {path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, SnapshotError>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// An overlayfs snapshotter rooted at one directory (e.g. `<data-root>/snapshots`'s parent).
#[derive(Debug)]
pub struct Snapshotter {
    root: PathBuf,
    state: Mutex<State>,
    extra_options: Vec<String>,
}

impl Snapshotter {
    /// Opens (creating if needed) the snapshotter at `root` and removes snapshot
    /// directories without a record.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let text = root.to_string_lossy();
        if text.contains(',') || text.contains(':') {
            return Err(SnapshotError::InvalidRoot(root));
        }
        let snapshots = root.join("snapshots");
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&snapshots)
            .map_err(io_err("create", &snapshots))?;
        // The root may predate us with a looser mode; tighten it (CVE-2021-41091).
        for dir in [&root, &snapshots] {
            fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(io_err("chmod", dir))?;
        }
        let state = load(&root.join("metadata.json"))?;
        let s = Snapshotter {
            root,
            state: Mutex::new(state),
            extra_options: overlay_extra_options(),
        };
        s.remove_orphans()?;
        Ok(s)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the in-memory state as it was before the
        // failed step (state is only changed after the metadata file is written).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot_dir(&self, id: u64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    /// The directory holding a snapshot's files (the upper directory of an active one):
    /// where [`crate::apply_layer`] unpacks a layer.
    pub fn fs_dir(&self, key: &str) -> Result<PathBuf> {
        let st = self.lock();
        let info = get(&st, key)?;
        Ok(self.snapshot_dir(info.id).join("fs"))
    }

    /// Creates a writable snapshot `key` on top of the committed `parent` (or empty) and
    /// returns how to mount it.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Mount> {
        self.create(key, parent, Kind::Active)
    }

    /// Creates a read-only snapshot `key` of the committed `parent` and returns how to
    /// mount it.
    pub fn view(&self, key: &str, parent: Option<&str>) -> Result<Mount> {
        self.create(key, parent, Kind::View)
    }

    fn create(&self, key: &str, parent: Option<&str>, kind: Kind) -> Result<Mount> {
        check_key(key)?;
        let mut st = self.lock();
        if st.snapshots.contains_key(key) {
            return Err(SnapshotError::AlreadyExists(key.to_owned()));
        }
        if let Some(p) = parent {
            let info = get(&st, p)?;
            if info.kind != Kind::Committed {
                return Err(SnapshotError::WrongKind {
                    key: p.to_owned(),
                    kind: info.kind,
                    reason: "a parent must be committed",
                });
            }
        }
        let id = st.next_id.max(1);
        let dir = self.snapshot_dir(id);
        // Directories first: if we crash before the record is written they are orphans
        // that the next open removes.
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("create", &dir))?;
        let fs_dir = dir.join("fs");
        DirBuilder::new()
            .mode(0o755)
            .create(&fs_dir)
            .map_err(io_err("create", &fs_dir))?;
        if kind == Kind::Active {
            let work = dir.join("work");
            DirBuilder::new()
                .mode(0o700)
                .create(&work)
                .map_err(io_err("create", &work))?;
        }
        let info = Info {
            key: key.to_owned(),
            id,
            kind,
            parent: parent.map(str::to_owned),
        };
        let mut next = clone_state(&st);
        next.next_id = id + 1;
        next.snapshots.insert(key.to_owned(), info);
        if let Err(e) = self.persist(&next) {
            let _ = remove_tree(&dir); // best effort; open() would remove it anyway
            return Err(e);
        }
        *st = next;
        self.mounts_locked(&st, key)
    }

    /// Turns the active snapshot `key` into the committed snapshot `name` (its files stay
    /// where they are). Its work directory is emptied: a committed snapshot is only ever a
    /// lower directory.
    pub fn commit(&self, name: &str, key: &str) -> Result<()> {
        self.commit_inner(name, key, None)
    }

    /// [`Snapshotter::commit`], also setting the committed snapshot's parent to `parent`
    /// (which must be committed). A layer can then be unpacked into a parentless snapshot
    /// while its parent is still unpacking: only mounts look at parents.
    pub fn commit_onto(&self, name: &str, key: &str, parent: Option<&str>) -> Result<()> {
        self.commit_inner(name, key, Some(parent))
    }

    fn commit_inner(&self, name: &str, key: &str, parent: Option<Option<&str>>) -> Result<()> {
        check_key(name)?;
        let mut st = self.lock();
        let mut info = get(&st, key)?.clone();
        if let Some(parent) = parent {
            if let Some(p) = parent {
                let pinfo = get(&st, p)?;
                if pinfo.kind != Kind::Committed {
                    return Err(SnapshotError::WrongKind {
                        key: p.to_owned(),
                        kind: pinfo.kind,
                        reason: "a parent must be committed",
                    });
                }
            }
            info.parent = parent.map(str::to_owned);
        }
        if info.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_owned(),
                kind: info.kind,
                reason: "only an active snapshot can be committed",
            });
        }
        if st.snapshots.contains_key(name) {
            return Err(SnapshotError::AlreadyExists(name.to_owned()));
        }
        let mut next = clone_state(&st);
        next.snapshots.remove(key);
        next.snapshots.insert(
            name.to_owned(),
            Info {
                key: name.to_owned(),
                kind: Kind::Committed,
                ..info.clone()
            },
        );
        self.persist(&next)?;
        *st = next;
        let work = self.snapshot_dir(info.id).join("work");
        remove_tree(&work)?;
        Ok(())
    }

    /// How to mount an existing snapshot.
    pub fn mounts(&self, key: &str) -> Result<Mount> {
        let st = self.lock();
        self.mounts_locked(&st, key)
    }

    fn mounts_locked(&self, st: &State, key: &str) -> Result<Mount> {
        let info = get(st, key)?;
        let dir = self.snapshot_dir(info.id);
        // Lower directories, top-most first.
        let mut lowers = Vec::new();
        let mut cur = info.parent.clone();
        while let Some(p) = cur {
            let parent = get(st, &p)?;
            lowers.push(self.snapshot_dir(parent.id).join("fs"));
            cur = parent.parent.clone();
        }
        if info.kind == Kind::Committed {
            // Mounting a committed snapshot is a read-only view of it and its parents.
            lowers.insert(0, dir.join("fs"));
        }
        let writable = info.kind == Kind::Active;
        Ok(match (writable, lowers.len()) {
            (true, 0) => Mount::Bind {
                source: dir.join("fs"),
                readonly: false,
            },
            (false, 0) => Mount::Bind {
                source: dir.join("fs"),
                readonly: true,
            },
            // overlayfs needs two lower layers when there is no upper; one is a bind.
            (false, 1) => Mount::Bind {
                source: lowers.remove(0),
                readonly: true,
            },
            (true, _) => Mount::Overlay {
                lowerdirs: lowers,
                upperdir: Some(dir.join("fs")),
                workdir: Some(dir.join("work")),
                extra: self.extra_options.clone(),
                base: self.root.join("snapshots"),
            },
            (false, _) => Mount::Overlay {
                lowerdirs: lowers,
                upperdir: None,
                workdir: None,
                extra: self.extra_options.clone(),
                base: self.root.join("snapshots"),
            },
        })
    }

    /// Removes a snapshot that nothing sits on. The record goes first, then the files, so
    /// a crash in between leaves only an orphan directory for [`Snapshotter::open`].
    pub fn remove(&self, key: &str) -> Result<()> {
        let mut st = self.lock();
        let info = get(&st, key)?.clone();
        let children = st
            .snapshots
            .values()
            .filter(|s| s.parent.as_deref() == Some(key))
            .count();
        if children > 0 {
            return Err(SnapshotError::HasChildren {
                key: key.to_owned(),
                children,
            });
        }
        let mut next = clone_state(&st);
        next.snapshots.remove(key);
        self.persist(&next)?;
        *st = next;
        remove_tree(&self.snapshot_dir(info.id))
    }

    /// The record of a snapshot.
    pub fn stat(&self, key: &str) -> Result<Info> {
        get(&self.lock(), key).cloned()
    }

    /// All snapshots, by key.
    pub fn list(&self) -> Vec<Info> {
        self.lock().snapshots.values().cloned().collect()
    }

    /// Disk space used by the snapshot's own files (not its parents'), counting each
    /// hard-linked inode once.
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let dir = self.fs_dir(key)?;
        disk_usage(&dir).map_err(io_err("measure", &dir))
    }

    fn persist(&self, st: &State) -> Result<()> {
        let path = self.root.join("metadata.json");
        let tmp = self.root.join("metadata.json.tmp");
        let data = serde_json::to_vec_pretty(st).map_err(|e| SnapshotError::Metadata {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&data).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", &self.root))
    }

    fn remove_orphans(&self) -> Result<()> {
        let st = self.lock();
        let snapshots = self.root.join("snapshots");
        let known: std::collections::HashSet<String> =
            st.snapshots.values().map(|s| s.id.to_string()).collect();
        for entry in fs::read_dir(&snapshots).map_err(io_err("list", &snapshots))? {
            let entry = entry.map_err(io_err("list", &snapshots))?;
            let name = entry.file_name();
            if !known.contains(name.to_string_lossy().as_ref()) {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn get<'s>(st: &'s State, key: &str) -> Result<&'s Info> {
    st.snapshots
        .get(key)
        .ok_or_else(|| SnapshotError::NotFound(key.to_owned()))
}

fn clone_state(st: &State) -> State {
    State {
        next_id: st.next_id,
        snapshots: st.snapshots.clone(),
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(SnapshotError::InvalidKey(key.chars().take(100).collect()));
    }
    Ok(())
}

fn load(path: &Path) -> Result<State> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| SnapshotError::Metadata {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Removes a directory tree without following symlinks inside it.
fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let dir = match open_root(parent) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("open", parent)(e)),
    };
    remove_all_at(std::os::fd::AsFd::as_fd(&dir), name).map_err(io_err("remove", path))
}

/// Features to switch off where the kernel has them: a persistent inode index and
/// directory renames recorded as redirects would tie upper directories to one set of
/// lower directories and make [`crate::write_diff`] of an upper directory incomplete.
fn overlay_extra_options() -> Vec<String> {
    ["index", "redirect_dir"]
        .iter()
        .filter(|p| Path::new("/sys/module/overlay/parameters").join(p).exists())
        .map(|p| format!("{p}=off"))
        .collect()
}
