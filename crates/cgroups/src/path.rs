//! Validation of the cgroup path a caller asks for.

use std::path::{Path, PathBuf};

use crate::CgroupError;

/// A cgroup path that is safe to join onto a mount point: no `..`, no NUL, not the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CgroupPath {
    /// True for `/a/b` (below the hierarchy root), false for `a/b` (below the caller's cgroup).
    pub absolute: bool,
    /// The path without a leading `/`, empty and `.` components dropped.
    pub relative: PathBuf,
}

impl CgroupPath {
    /// Validates `path`.
    pub fn parse(path: &str) -> Result<CgroupPath, CgroupError> {
        let invalid = |reason| CgroupError::InvalidPath {
            path: path.to_owned(),
            reason,
        };
        if path.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        let mut relative = PathBuf::new();
        for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if component == ".." {
                return Err(invalid("must not contain `..`"));
            }
            relative.push(component);
        }
        if relative.as_os_str().is_empty() {
            return Err(invalid(
                "must name a cgroup below the root or the caller's cgroup",
            ));
        }
        Ok(CgroupPath {
            absolute: path.starts_with('/'),
            relative,
        })
    }

    /// The directory of this cgroup in a hierarchy mounted at `mount`, where the caller sits
    /// at `own` (only used for relative paths).
    pub fn dir(&self, mount: &Path, own: Option<&Path>) -> Option<PathBuf> {
        let base = if self.absolute {
            mount.to_owned()
        } else {
            let own = own?;
            mount.join(own.strip_prefix("/").unwrap_or(own))
        };
        Some(base.join(&self.relative))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn absolute_and_relative_paths_are_normalised() {
        let p = CgroupPath::parse("/berth//abc/./def/").unwrap();
        assert!(p.absolute);
        assert_eq!(p.relative, Path::new("berth/abc/def"));
        let p = CgroupPath::parse("berth/abc").unwrap();
        assert!(!p.absolute);
        assert_eq!(p.relative, Path::new("berth/abc"));
    }

    #[test]
    fn traversal_nul_and_root_are_refused() {
        for bad in [
            "/berth/../etc",
            "..",
            "a/../../b",
            "/a\0b",
            "/",
            "",
            ".",
            "//./",
        ] {
            assert!(
                matches!(CgroupPath::parse(bad), Err(CgroupError::InvalidPath { .. })),
                "{bad:?} was accepted"
            );
        }
        // `..` inside a name is just a name.
        assert!(CgroupPath::parse("/a..b").is_ok());
    }

    #[test]
    fn directories_join_mount_own_cgroup_and_path() {
        let mount = Path::new("/sys/fs/cgroup/memory");
        let own = Some(Path::new("/user.slice"));
        let abs = CgroupPath::parse("/berth/x").unwrap();
        assert_eq!(
            abs.dir(mount, own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/berth/x")
        );
        assert_eq!(
            abs.dir(mount, None).unwrap(),
            Path::new("/sys/fs/cgroup/memory/berth/x")
        );
        let rel = CgroupPath::parse("berth/x").unwrap();
        assert_eq!(
            rel.dir(mount, own).unwrap(),
            Path::new("/sys/fs/cgroup/memory/user.slice/berth/x")
        );
        assert_eq!(rel.dir(mount, None), None);
    }
}
