//! Namespaces from the config: which to create, which to join by path, and in what order.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Context, Result, RuntimeError};

/// The namespaces a process must end up in.
#[derive(Debug)]
pub struct Namespaces {
    /// Namespaces to create (unshare), user namespace included.
    pub new: CloneFlags,
    /// Namespaces to join, opened in the runtime's own mount namespace before any fork. The user
    /// namespace comes first: joining it decides who owns everything joined after it.
    pub join: Vec<(CloneFlags, OwnedFd)>,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            new: CloneFlags::empty(),
            join: Vec::new(),
        }
    }
}

impl Namespaces {
    /// Reads the config's namespace list; refuses duplicates.
    pub fn from_spec(list: &[LinuxNamespace]) -> Result<Namespaces> {
        let mut seen = CloneFlags::empty();
        let mut ns = Namespaces::default();
        for entry in list {
            let flag = clone_flag(entry.typ());
            if seen.contains(flag) {
                return Err(RuntimeError::InvalidSpec(format!(
                    "namespace {:?} is listed twice",
                    entry.typ()
                )));
            }
            seen |= flag;
            match entry.path() {
                Some(path) => ns.join.push((flag, open_ns(path, entry.typ())?)),
                None => ns.new |= flag,
            }
        }
        ns.join
            .sort_by_key(|(flag, _)| *flag != CloneFlags::CLONE_NEWUSER);
        Ok(ns)
    }

    /// Everything the process will be in that is not the runtime's: created or joined.
    pub fn all(&self) -> CloneFlags {
        self.join.iter().fold(self.new, |acc, (f, _)| acc | *f)
    }

    pub fn has(&self, flag: CloneFlags) -> bool {
        self.all().contains(flag)
    }

    /// Joins every namespace opened from a path.
    pub fn join_all(&self) -> Result<()> {
        for (flag, fd) in &self.join {
            nix::sched::setns(fd, *flag)
                .context(|| format!("join {} namespace", flag_name(*flag)))?;
        }
        Ok(())
    }

    /// The namespaces of a running process, for `exec`: every type the container has, opened
    /// from `/proc/<pid>/ns`, skipping the ones identical to ours.
    pub fn of_process(pid: i32, types: CloneFlags) -> Result<Namespaces> {
        let mut ns = Namespaces::default();
        for (flag, name) in ORDER {
            if !types.contains(flag) {
                continue;
            }
            let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
            if same_file(&theirs, &ours) {
                continue;
            }
            let fd = nix::fcntl::open(&theirs, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .context(|| format!("open {}", theirs.display()))?;
            ns.join.push((flag, fd));
        }
        Ok(ns)
    }
}

/// setns order for exec: user first, mount last but one (after it, /proc paths change), time last.
const ORDER: [(CloneFlags, &str); 7] = [
    (CloneFlags::CLONE_NEWUSER, "user"),
    (CloneFlags::CLONE_NEWIPC, "ipc"),
    (CloneFlags::CLONE_NEWUTS, "uts"),
    (CloneFlags::CLONE_NEWNET, "net"),
    (CloneFlags::CLONE_NEWPID, "pid"),
    (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
    (CloneFlags::CLONE_NEWNS, "mnt"),
];

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn open_ns(path: &std::path::Path, typ: LinuxNamespaceType) -> Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| format!("open {typ:?} namespace {}", path.display()))
}

pub fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME shares its value with CSIGNAL bits nix does not name.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn flag_name(flag: CloneFlags) -> &'static str {
    ORDER
        .iter()
        .find(|(f, _)| *f == flag)
        .map(|(_, n)| *n)
        .unwrap_or("time")
}

/// The namespace type names `features` reports.
pub fn names() -> Vec<String> {
    [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ns(json: &str) -> Result<Namespaces> {
        let list: Vec<LinuxNamespace> = serde_json::from_str(json).unwrap();
        Namespaces::from_spec(&list)
    }

    #[test]
    fn new_and_joined_namespaces_are_told_apart() {
        let n = ns(r#"[{"type":"pid"},{"type":"network","path":"/proc/self/ns/net"},{"type":"user","path":"/proc/self/ns/user"}]"#).unwrap();
        assert_eq!(n.new, CloneFlags::CLONE_NEWPID);
        assert_eq!(n.join.len(), 2);
        assert_eq!(
            n.join[0].0,
            CloneFlags::CLONE_NEWUSER,
            "the user namespace is joined first"
        );
        assert!(n.has(CloneFlags::CLONE_NEWNET));
    }

    #[test]
    fn duplicates_and_unknown_types_are_refused() {
        assert!(ns(r#"[{"type":"pid"},{"type":"pid"}]"#).is_err());
        assert!(serde_json::from_str::<Vec<LinuxNamespace>>(r#"[{"type":"bogus"}]"#).is_err());
        assert!(ns(r#"[{"type":"network","path":"/nonexistent/ns"}]"#).is_err());
    }
}
