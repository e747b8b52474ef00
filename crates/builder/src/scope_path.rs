//! Resolving a path under a root directory the way a container sees it: symlinks are
//! followed but never lead out of the root.
//!
//! Two policies. Inside an image's root filesystem an absolute link or a `..` past the top
//! stays at the root (Docker's `FollowSymlinkInScope`). Inside the build context, any
//! attempt to leave it is an error: a context that links outside itself is refused.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed while resolving one path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// What happens when resolution would leave the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Stay at the root (image file systems).
    Clamp,
    /// Fail (the build context).
    Forbid,
}

/// Why a path could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScopeError {
    /// The path, or a link on it, leads outside the root.
    Outside,
    /// Too many links.
    Loop,
}

/// `rel` (absolute or relative, both taken from `root`) resolved under `root`, following
/// every symlink on the way, the last component included. Missing components are kept as
/// written.
pub(crate) fn resolve(root: &Path, rel: &str, escape: Escape) -> Result<PathBuf, ScopeError> {
    let mut todo: VecDeque<OsString> = components(Path::new(rel)).into();
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            if done.pop().is_none() && escape == Escape::Forbid {
                return Err(ScopeError::Outside);
            }
            continue;
        }
        let candidate = join(root, &done).join(&name);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(ScopeError::Loop);
                }
                let target = std::fs::read_link(&candidate).map_err(|_| ScopeError::Outside)?;
                if target.is_absolute() {
                    if escape == Escape::Forbid {
                        return Err(ScopeError::Outside);
                    }
                    done.clear();
                }
                for (i, c) in components(&target).into_iter().enumerate() {
                    todo.insert(i, c);
                }
            }
            _ => done.push(name),
        }
    }
    Ok(join(root, &done))
}

/// The normal and `..` components of `p` (root and `.` dropped).
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_stay_inside_or_fail() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("/usr/lib", r.join("abs")).unwrap();
        symlink("../../..", r.join("up")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve(r, "/lib/x", Escape::Clamp).unwrap(),
            r.join("usr/lib/x")
        );
        assert_eq!(
            resolve(r, "abs/x", Escape::Clamp).unwrap(),
            r.join("usr/lib/x")
        );
        assert_eq!(resolve(r, "up/etc", Escape::Clamp).unwrap(), r.join("etc"));
        assert_eq!(resolve(r, "../../x", Escape::Clamp).unwrap(), r.join("x"));
        assert_eq!(
            resolve(r, "lib/x", Escape::Forbid).unwrap(),
            r.join("usr/lib/x")
        );
        assert_eq!(
            resolve(r, "abs/x", Escape::Forbid),
            Err(ScopeError::Outside)
        );
        assert_eq!(
            resolve(r, "up/etc", Escape::Forbid),
            Err(ScopeError::Outside)
        );
        assert_eq!(resolve(r, "../x", Escape::Forbid), Err(ScopeError::Outside));
        assert_eq!(resolve(r, "loop", Escape::Clamp), Err(ScopeError::Loop));
    }
}
