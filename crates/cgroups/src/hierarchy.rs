//! Which cgroup hierarchies are mounted (from `/proc/self/mountinfo`) and where the calling
//! process sits in them (from `/proc/self/cgroup`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::CgroupError;

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers the kernel knows. Other super options of a `cgroup` mount (`rw`,
/// `clone_children`, `release_agent=…`) are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "debug",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// The cgroup hierarchies of this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// Legacy or hybrid mode: one mount per v1 controller (named hierarchies such as
    /// `name=systemd` included), plus in hybrid mode a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`) that holds whatever controllers v1 does not.
    V1 {
        /// Controller name (`memory`, `name=systemd`, …) → its mount point. Controllers
        /// mounted together (`cpu,cpuacct`) share a mount point.
        controllers: BTreeMap<String, PathBuf>,
        /// The cgroup2 mount point in hybrid mode.
        unified: Option<PathBuf>,
    },
    /// Unified mode: a single cgroup2 hierarchy.
    V2 {
        /// The cgroup2 mount point, usually `/sys/fs/cgroup`.
        root: PathBuf,
    },
}

impl Hierarchy {
    /// Detects the hierarchies from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        let text = fs::read_to_string(MOUNTINFO).map_err(|source| CgroupError::Read {
            path: MOUNTINFO.into(),
            source,
        })?;
        let hierarchy = Hierarchy::from_mountinfo(&text);
        if hierarchy.is_empty() {
            return Err(CgroupError::NoHierarchy {
                path: MOUNTINFO.into(),
            });
        }
        Ok(hierarchy)
    }

    /// Classifies the cgroup mounts listed in a mountinfo text. Any v1 mount with a real
    /// controller means v1 (hybrid when a cgroup2 mount exists too); otherwise a cgroup2 mount
    /// means v2. With no cgroup mounts at all the result is an empty `V1`.
    pub fn from_mountinfo(text: &str) -> Hierarchy {
        let mounts = parse_mounts(text);
        let mut controllers = BTreeMap::new();
        let mut unified: Option<PathBuf> = None;
        for mount in &mounts {
            if mount.v2 {
                if prefer(unified.as_deref(), &mount.mount_point) {
                    unified = Some(mount.mount_point.clone());
                }
                continue;
            }
            for controller in &mount.controllers {
                let current = controllers.get(controller).map(PathBuf::as_path);
                if prefer(current, &mount.mount_point) {
                    controllers.insert(controller.clone(), mount.mount_point.clone());
                }
            }
        }
        let has_real_controller = controllers.keys().any(|c| !c.starts_with("name="));
        match unified {
            Some(root) if !has_real_controller => Hierarchy::V2 { root },
            unified => Hierarchy::V1 {
                controllers,
                unified,
            },
        }
    }

    /// True for v1 with a cgroup2 mount beside it.
    pub fn is_hybrid(&self) -> bool {
        matches!(
            self,
            Hierarchy::V1 {
                unified: Some(_),
                ..
            }
        )
    }

    /// The cgroup2 mount point: the root in v2, the unified mount in hybrid mode.
    pub fn unified(&self) -> Option<&Path> {
        match self {
            Hierarchy::V1 { unified, .. } => unified.as_deref(),
            Hierarchy::V2 { root } => Some(root),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Hierarchy::V1 { controllers, unified: None } if controllers.is_empty())
    }
}

/// Whether `candidate` should replace `current` as the mount point of a hierarchy. The first
/// mount wins, except that one under `/sys/fs/cgroup` beats one elsewhere (bind mounts).
fn prefer(current: Option<&Path>, candidate: &Path) -> bool {
    match current {
        None => true,
        Some(current) => !current.starts_with(CGROUP_ROOT) && candidate.starts_with(CGROUP_ROOT),
    }
}

/// One cgroup or cgroup2 mount from mountinfo.
#[derive(Debug)]
struct CgroupMount {
    /// The path inside the hierarchy that is mounted (not `/` in some containers).
    root: PathBuf,
    mount_point: PathBuf,
    v2: bool,
    /// v1 controllers including `name=…`; empty for cgroup2.
    controllers: Vec<String>,
}

fn parse_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_mount_line).collect()
}

/// Parses `id parent major:minor root mount-point options [optional…] - fstype source super-options`.
fn parse_mount_line(line: &str) -> Option<CgroupMount> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    let fstype = *fields.get(sep + 1)?;
    let root = PathBuf::from(unescape(fields.get(3)?));
    let mount_point = PathBuf::from(unescape(fields.get(4)?));
    match fstype {
        "cgroup2" => Some(CgroupMount {
            root,
            mount_point,
            v2: true,
            controllers: Vec::new(),
        }),
        "cgroup" => {
            let controllers = fields
                .get(sep + 3)?
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_owned)
                .collect();
            Some(CgroupMount {
                root,
                mount_point,
                v2: false,
                controllers,
            })
        }
        _ => None,
    }
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a process sits in each hierarchy, as paths relative to each hierarchy's mount point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    /// Controller (`memory`, `name=systemd`, or `""` for cgroup2) → path.
    paths: BTreeMap<String, PathBuf>,
}

impl OwnCgroups {
    /// The calling process's cgroups, from `/proc/self/cgroup`, adjusted for cgroup mounts
    /// whose root is not the hierarchy root (containers without a cgroup namespace).
    pub fn current() -> Result<OwnCgroups, CgroupError> {
        let read = |path: &str| {
            fs::read_to_string(path).map_err(|source| CgroupError::Read {
                path: path.into(),
                source,
            })
        };
        Ok(OwnCgroups::parse(&read(PROC_CGROUP)?).relative_to_mounts(&read(MOUNTINFO)?))
    }

    /// Parses a `/proc/<pid>/cgroup` text (`id:controllers:path` per line).
    pub fn parse(text: &str) -> OwnCgroups {
        let mut paths = BTreeMap::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = PathBuf::from(path.trim_end_matches(" (deleted)"));
            if controllers.is_empty() {
                paths.insert(String::new(), path);
            } else {
                for controller in controllers.split(',') {
                    paths.insert(controller.to_owned(), path.clone());
                }
            }
        }
        OwnCgroups { paths }
    }

    /// Makes the paths relative to the mount points listed in `mountinfo`: a mount whose root
    /// is `/docker/x` shows the process's `/docker/x/y` cgroup at `<mount point>/y`.
    pub fn relative_to_mounts(mut self, mountinfo: &str) -> OwnCgroups {
        // Only the first mount of a hierarchy counts: a bind mount of it must not strip twice.
        let mut done = std::collections::BTreeSet::new();
        for mount in parse_mounts(mountinfo) {
            let keys: Vec<String> = if mount.v2 {
                vec![String::new()]
            } else {
                mount.controllers.clone()
            };
            for key in keys.into_iter().filter(|k| done.insert(k.clone())) {
                if let Some(path) = self.paths.get_mut(&key)
                    && let Ok(rest) = path.strip_prefix(&mount.root)
                {
                    *path = Path::new("/").join(rest);
                }
            }
        }
        self
    }

    /// The path for `controller` (`""` for cgroup2).
    pub fn get(&self, controller: &str) -> Option<&Path> {
        self.paths.get(controller).map(PathBuf::as_path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn controllers(pairs: &[(&str, &str)]) -> BTreeMap<String, PathBuf> {
        pairs
            .iter()
            .map(|(c, p)| (c.to_string(), PathBuf::from(p)))
            .collect()
    }

    #[test]
    fn this_hosts_hybrid_layout() {
        let h = Hierarchy::from_mountinfo(include_str!("../testdata/mountinfo-hybrid-host.txt"));
        let expected = Hierarchy::V1 {
            controllers: controllers(&[
                ("blkio", "/sys/fs/cgroup/blkio"),
                ("cpu", "/sys/fs/cgroup/cpu"),
                ("cpuacct", "/sys/fs/cgroup/cpuacct"),
                ("cpuset", "/sys/fs/cgroup/cpuset"),
                ("devices", "/sys/fs/cgroup/devices"),
                ("freezer", "/sys/fs/cgroup/freezer"),
                ("memory", "/sys/fs/cgroup/memory"),
                ("name=systemd", "/sys/fs/cgroup/systemd"),
                ("pids", "/sys/fs/cgroup/pids"),
            ]),
            unified: Some("/sys/fs/cgroup/unified".into()),
        };
        assert_eq!(h, expected);
        assert!(h.is_hybrid());
        assert_eq!(h.unified(), Some(Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn legacy_v1_with_comounted_controllers_and_a_bind_mount() {
        let h = Hierarchy::from_mountinfo(include_str!("../testdata/mountinfo-v1.txt"));
        let Hierarchy::V1 {
            controllers,
            unified,
        } = &h
        else {
            panic!("expected v1, got {h:?}");
        };
        assert_eq!(*unified, None);
        assert!(!h.is_hybrid());
        assert_eq!(controllers["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            controllers["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            controllers["net_prio"],
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
        // The bind mount listed first loses to the one under /sys/fs/cgroup.
        assert_eq!(controllers["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(
            controllers["name=systemd"],
            Path::new("/sys/fs/cgroup/systemd")
        );
        // Mount options are not controllers.
        assert!(!controllers.contains_key("clone_children"));
        assert!(!controllers.contains_key("xattr"));
        assert!(!controllers.keys().any(|c| c.starts_with("release_agent")));
        assert_eq!(controllers.len(), 14);
    }

    #[test]
    fn unified_v2() {
        let h = Hierarchy::from_mountinfo(include_str!("../testdata/mountinfo-v2.txt"));
        assert_eq!(
            h,
            Hierarchy::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert_eq!(h.unified(), Some(Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn named_hierarchy_alone_beside_cgroup2_is_v2() {
        let text = "1 0 0:1 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                    2 0 0:2 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            Hierarchy::from_mountinfo(text),
            Hierarchy::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn no_cgroups_is_empty() {
        let h = Hierarchy::from_mountinfo("22 1 0:21 / /proc rw - proc proc rw\ngarbage\n");
        assert!(h.is_empty());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/my\040data"), "/mnt/my data");
        assert_eq!(unescape(r"/a\134b"), r"/a\b");
        assert_eq!(unescape(r"/a\09"), r"/a\09");
        let mounts = parse_mounts(include_str!("../testdata/mountinfo-v1-container.txt"));
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].root, Path::new("/docker/4f1c"));
    }

    #[test]
    fn own_cgroups_v1() {
        let own = OwnCgroups::parse(include_str!("../testdata/proc-cgroup-v1.txt"));
        assert_eq!(
            own.get("memory"),
            Some(Path::new("/user.slice/user-1000.slice/session-2.scope"))
        );
        assert_eq!(own.get("cpu"), Some(Path::new("/user.slice")));
        assert_eq!(own.get("cpuacct"), Some(Path::new("/user.slice")));
        assert_eq!(own.get("net_prio"), Some(Path::new("/")));
        assert_eq!(
            own.get("name=systemd"),
            Some(Path::new("/user.slice/user-1000.slice/session-2.scope"))
        );
        assert_eq!(own.get(""), None);
    }

    #[test]
    fn own_cgroups_hybrid_and_v2() {
        let own = OwnCgroups::parse(include_str!("../testdata/proc-cgroup-hybrid-host.txt"));
        assert_eq!(
            own.get("memory"),
            Some(Path::new("/process_api/1adadea2955646a1de6f47a81a68c9af"))
        );
        assert_eq!(own.get(""), Some(Path::new("/")));
        let own = OwnCgroups::parse(include_str!("../testdata/proc-cgroup-v2.txt"));
        assert_eq!(
            own.get(""),
            Some(Path::new(
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-Alacritty-4242.scope"
            ))
        );
    }

    #[test]
    fn own_cgroups_inside_a_container_without_cgroupns() {
        let own = OwnCgroups::parse(include_str!("../testdata/proc-cgroup-v1-container.txt"))
            .relative_to_mounts(include_str!("../testdata/mountinfo-v1-container.txt"));
        assert_eq!(own.get("pids"), Some(Path::new("/")));
        assert_eq!(own.get("memory"), Some(Path::new("/inner")));
        assert_eq!(own.get("name=systemd"), Some(Path::new("/")));
    }

    #[test]
    fn detect_finds_something_here() {
        let h = Hierarchy::detect().unwrap();
        assert!(!h.is_empty());
    }
}
