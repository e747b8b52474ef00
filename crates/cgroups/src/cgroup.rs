//! One cgroup across every hierarchy of the host.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::hierarchy::{Hierarchy, OwnCgroups};
use crate::path::CgroupPath;
use crate::stats::Stats;
use crate::{CgroupError, fs, v1, v2, validate};

/// How often `destroy` retries an rmdir that fails with EBUSY (tasks still leaving), and the
/// first pause between tries; the pause doubles up to [`RMDIR_MAX_PAUSE`].
const RMDIR_ATTEMPTS: u32 = 20;
const RMDIR_FIRST_PAUSE: Duration = Duration::from_millis(5);
const RMDIR_MAX_PAUSE: Duration = Duration::from_millis(200);

/// A cgroup such as `/berth/<id>`, present (once created) in every hierarchy of the host: each
/// v1 controller and, in hybrid mode, the cgroup2 mount; or the single v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    hierarchy: Hierarchy,
    /// v1 controller → directory (empty in v2).
    v1: BTreeMap<String, PathBuf>,
    /// The directory in the cgroup2 hierarchy: the only one in v2, the unified one in hybrid.
    unified: Option<PathBuf>,
}

impl Cgroup {
    /// A cgroup at `path` in `hierarchy`. An absolute path is below each hierarchy's root; a
    /// relative one is below the calling process's own cgroup (from `/proc/self/cgroup`).
    /// Paths with `..` or NUL, and paths naming the root itself, are refused.
    pub fn new(hierarchy: Hierarchy, path: &str) -> Result<Cgroup, CgroupError> {
        let parsed = CgroupPath::parse(path)?;
        let own = if parsed.absolute {
            OwnCgroups::default()
        } else {
            OwnCgroups::current()?
        };
        Cgroup::resolve(hierarchy, path, &parsed, &own)
    }

    /// Like [`Cgroup::new`], with the caller's cgroups given instead of read from `/proc`.
    pub fn new_in(
        hierarchy: Hierarchy,
        path: &str,
        own: &OwnCgroups,
    ) -> Result<Cgroup, CgroupError> {
        let parsed = CgroupPath::parse(path)?;
        Cgroup::resolve(hierarchy, path, &parsed, own)
    }

    fn resolve(
        hierarchy: Hierarchy,
        raw: &str,
        path: &CgroupPath,
        own: &OwnCgroups,
    ) -> Result<Cgroup, CgroupError> {
        let unknown = || CgroupError::InvalidPath {
            path: raw.to_owned(),
            reason: "relative, but the caller's cgroup in some hierarchy is unknown",
        };
        let mut v1 = BTreeMap::new();
        if let Hierarchy::V1 { controllers, .. } = &hierarchy {
            for (controller, mount) in controllers {
                let dir = path.dir(mount, own.get(controller)).ok_or_else(unknown)?;
                v1.insert(controller.clone(), dir);
            }
        }
        let unified = match hierarchy.unified() {
            Some(mount) => Some(path.dir(mount, own.get("")).ok_or_else(unknown)?),
            None => None,
        };
        Ok(Cgroup {
            hierarchy,
            v1,
            unified,
        })
    }

    /// The hierarchy this cgroup lives in.
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// Controller → absolute directory, for bind-mounting into the container. v1 controllers
    /// by name (`name=systemd` included); the cgroup2 directory (v2, or hybrid's unified) as `""`.
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        let mut paths = self.v1.clone();
        if let Some(dir) = &self.unified {
            paths.insert(String::new(), dir.clone());
        }
        paths
    }

    /// Every distinct directory, v1 ones first (controllers mounted together share one).
    fn dirs(&self) -> Vec<&Path> {
        let mut seen = BTreeSet::new();
        self.v1
            .values()
            .chain(self.unified.iter())
            .map(PathBuf::as_path)
            .filter(|d| seen.insert(*d))
            .collect()
    }

    /// Creates the directories, parents included. v1 cpuset levels get their parent's CPUs
    /// and memory nodes when empty. In v2 every ancestor delegates all the controllers it has
    /// to its children (so usage is accounted even without limits); hybrid's cgroup2 mount
    /// only gets the directories, as it is used for membership, freezing and hugetlb.
    pub fn create(&self) -> Result<(), CgroupError> {
        match &self.hierarchy {
            Hierarchy::V1 {
                controllers,
                unified,
            } => {
                for (controller, dir) in &self.v1 {
                    match controllers.get(controller) {
                        Some(mount) if controller == "cpuset" => v1::create_cpuset(mount, dir)?,
                        _ => mkdir_all(dir)?,
                    }
                }
                if let (Some(_), Some(dir)) = (unified, &self.unified) {
                    mkdir_all(dir)?;
                }
            }
            Hierarchy::V2 { root } => {
                if let Some(dir) = &self.unified {
                    v2::create(root, dir, None)?;
                }
            }
        }
        Ok(())
    }

    /// Applies resource limits. Everything is validated first, so an invalid request changes
    /// nothing; then the files are written in a fixed order (see the crate documentation).
    /// Settings that are `None` (or 0, OCI's "unset" for most numbers) are left alone. Call
    /// it before [`Cgroup::add_process`] so realtime CPU time is in place before a realtime
    /// task joins.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        validate::check(r)?;
        match &self.hierarchy {
            Hierarchy::V1 { .. } => self.apply_v1(r),
            Hierarchy::V2 { .. } => v2::apply(self.unified_dir()?, r),
        }
    }

    /// v1 controllers, then in hybrid mode the cgroup2 side: hugetlb when v1 lacks it, and the
    /// unified key/values (which only cgroup2 has).
    fn apply_v1(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let hugetlb_in_unified = r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
            && !self.v1.contains_key("hugetlb");
        let has_unified_keys = r.unified().as_ref().is_some_and(|m| !m.is_empty());
        if (hugetlb_in_unified || has_unified_keys) && self.unified.is_none() {
            let (controller, setting) = if hugetlb_in_unified {
                ("hugetlb", "hugepageLimits")
            } else {
                ("cgroup2", "unified")
            };
            return Err(CgroupError::ControllerMissing {
                controller: controller.to_owned(),
                setting: setting.to_owned(),
            });
        }
        v1::apply(&self.v1, r)?;
        if let (Some(dir), Some(root)) = (&self.unified, self.hierarchy.unified()) {
            if hugetlb_in_unified && let Some(limits) = r.hugepage_limits() {
                v2::create(root, dir, Some(&["hugetlb"]))?;
                v2::hugetlb(dir, limits)?;
            }
            if let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) {
                v2::unified(dir, map)?;
            }
        }
        Ok(())
    }

    fn unified_dir(&self) -> Result<&Path, CgroupError> {
        self.unified
            .as_deref()
            .ok_or_else(|| CgroupError::ControllerMissing {
                controller: "cgroup2".to_owned(),
                setting: "cgroup v2".to_owned(),
            })
    }

    /// Moves process `pid` (0: the calling process) into this cgroup in every hierarchy,
    /// hybrid's cgroup2 mount included.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if pid < 0 {
            return Err(CgroupError::InvalidResource {
                setting: "pid".to_owned(),
                reason: format!("{pid} is negative"),
            });
        }
        let value = pid.to_string();
        for dir in self.dirs() {
            fs::write(dir, "cgroup.procs", &value, "cgroup.procs")?;
        }
        Ok(())
    }

    /// Freezes every task, waiting (bounded) until the kernel reports the cgroup frozen. Uses
    /// the v1 freezer controller, or `cgroup.freeze` in v2 (and in hybrid mode without a v1
    /// freezer).
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::freeze(dir),
            Freezer::V2(dir) => v2::freeze(dir),
        }
    }

    /// Lets frozen tasks run again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::thaw(dir),
            Freezer::V2(dir) => v2::thaw(dir),
        }
    }

    /// Whether the kernel reports the cgroup as completely frozen.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.freezer()? {
            Freezer::V1(dir) => v1::is_frozen(dir),
            Freezer::V2(dir) => v2::is_frozen(dir),
        }
    }

    fn freezer(&self) -> Result<Freezer<'_>, CgroupError> {
        if let Some(dir) = self.v1.get("freezer") {
            return Ok(Freezer::V1(dir));
        }
        self.unified
            .as_deref()
            .map(Freezer::V2)
            .ok_or_else(|| CgroupError::ControllerMissing {
                controller: "freezer".to_owned(),
                setting: "freeze".to_owned(),
            })
    }

    /// Every process in this cgroup and its descendants, in all hierarchies, sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = BTreeSet::new();
        for dir in self.dirs() {
            collect_pids(dir, &mut pids)?;
        }
        Ok(pids.into_iter().collect())
    }

    /// How many times the kernel's OOM killer killed a task of this cgroup (v1
    /// `memory.oom_control`, v2 `memory.events`).
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        match &self.hierarchy {
            Hierarchy::V1 { .. } => v1::oom_kill_count(&self.v1),
            Hierarchy::V2 { .. } => v2::oom_kill_count(self.unified_dir()?),
        }
    }

    /// Memory, CPU and pids usage.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.hierarchy {
            Hierarchy::V1 { .. } => v1::stats(&self.v1),
            Hierarchy::V2 { .. } => v2::stats(self.unified_dir()?),
        }
    }

    /// Removes this cgroup and any cgroups below it from every hierarchy, deepest first,
    /// retrying a bounded number of times while the kernel says EBUSY (tasks still exiting).
    /// Directories already gone are fine; parents (such as `/berth`) are left alone.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for dir in self.dirs() {
            if let Err(e) = remove_tree(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// mkdir with mode 0755; an existing directory is fine.
pub(crate) fn mkdir(path: &Path) -> Result<(), CgroupError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o755).create(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(CgroupError::Create {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn mkdir_all(path: &Path) -> Result<(), CgroupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o755)
        .recursive(true)
        .create(path)
        .map_err(|source| CgroupError::Create {
            path: path.to_owned(),
            source,
        })
}

/// Child cgroups of `dir`; none when `dir` is gone.
fn children(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_owned(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

fn collect_pids(dir: &Path, pids: &mut BTreeSet<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    match fs::read_procs(&procs) {
        Ok(list) => pids.extend(list),
        // The cgroup (or a child) was removed while we walked.
        Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    for child in children(dir)? {
        collect_pids(&child, pids)?;
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for child in children(dir)? {
        remove_tree(&child)?;
    }
    rmdir_retrying(dir)
}

fn rmdir_retrying(dir: &Path) -> Result<(), CgroupError> {
    let mut pause = RMDIR_FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_ATTEMPTS => {
                sleep(pause);
                pause = (pause * 2).min(RMDIR_MAX_PAUSE);
                attempt += 1;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}
