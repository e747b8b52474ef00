//! `--user` and `--group-add`, resolved against the container's own `/etc/passwd` and
//! `/etc/group`.
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT)` on the root filesystem, so symlinks
//! in the image cannot point the lookup at host files, and parsed here: the host's NSS is never
//! consulted and nothing from the image is ever loaded (CVE-2019-14271). A FIFO or device
//! planted at `/etc/passwd` cannot block or feed us forever: it must be a regular file, and at
//! most [`MAX_FILE_BYTES`] are read. Numeric ids must lie in 0..=2147483647; anything else is
//! refused, never wrapped around to root (CVE-2024-40635).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::error::{Result, SpecError};

/// At most this much of `/etc/passwd` or `/etc/group` is read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// The largest uid or gid accepted (runc's limit: ids must fit a signed 32-bit integer).
const MAX_ID: i64 = i32::MAX as i64;

/// A resolved `--user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary gids: the primary gid first, then the user's groups from `/etc/group`
    /// (when no group was given), then `--group-add`; no duplicates.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd` (`/` when the user has no entry).
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `spec` (`user[:group]`, names or ids; empty is root) and `group_add` inside
/// `rootfs`, as runc's `GetExecUser` does for Docker: a numeric user without a passwd entry
/// gets gid 0; without an explicit group, the user's groups in `/etc/group` are added.
pub fn resolve_user(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let (user_part, group_part) = split_spec(spec)?;
    let passwd = read_in_root(rootfs, "etc/passwd")?.unwrap_or_default();
    let user = find_user(&passwd, user_part)?;
    let needs_groups = group_part.is_some() || !group_add.is_empty() || user.name.is_some();
    let group_file = if needs_groups {
        read_in_root(rootfs, "etc/group")?.unwrap_or_default()
    } else {
        String::new()
    };
    let groups: Vec<GroupEntry> = group_file.lines().filter_map(parse_group_line).collect();
    let (gid, mut extra) = match group_part {
        Some(g) => (find_group(&groups, g)?, Vec::new()),
        None => (user.gid, member_gids(&groups, user.name.as_deref())),
    };
    for g in group_add {
        extra.push(find_group(&groups, g)?);
    }
    let mut additional_gids = vec![gid];
    for g in extra {
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    Ok(ResolvedUser {
        uid: user.uid,
        gid,
        additional_gids,
        home: user.home,
    })
}

/// `user[:group]` → its parts. More than one colon, or an empty group after one, is refused.
fn split_spec(spec: &str) -> Result<(&str, Option<&str>)> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if group.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(SpecError::invalid(format!(
            "invalid user specification: {spec:?}"
        )));
    }
    Ok((user, group))
}

/// The user a name or id stands for. Empty means root (uid 0).
struct UserMatch {
    uid: u32,
    gid: u32,
    name: Option<String>,
    home: String,
}

fn find_user(passwd: &str, spec: &str) -> Result<UserMatch> {
    let spec = if spec.is_empty() { "0" } else { spec };
    let numeric = spec.parse::<i64>().ok();
    let entries: Vec<PasswdEntry> = passwd.lines().filter_map(parse_passwd_line).collect();
    let found = entries
        .iter()
        .find(|e| e.name == spec)
        .or_else(|| numeric.and_then(|n| entries.iter().find(|e| i64::from(e.uid) == n)));
    if let Some(entry) = found {
        return Ok(UserMatch {
            uid: entry.uid,
            gid: entry.gid,
            name: Some(entry.name.clone()),
            home: entry.home.clone(),
        });
    }
    match numeric {
        Some(n) => Ok(UserMatch {
            uid: checked_id(n, spec)?,
            gid: 0,
            name: None,
            home: "/".to_owned(),
        }),
        None => Err(SpecError::UserNotFound(spec.to_owned())),
    }
}

fn find_group(groups: &[GroupEntry], spec: &str) -> Result<u32> {
    let numeric = spec.parse::<i64>().ok();
    if let Some(g) = groups.iter().find(|g| g.name == spec) {
        return Ok(g.gid);
    }
    match numeric {
        Some(n) => checked_id(n, spec),
        None => Err(SpecError::GroupNotFound(spec.to_owned())),
    }
}

/// Gids of the groups listing `name` as a member.
fn member_gids(groups: &[GroupEntry], name: Option<&str>) -> Vec<u32> {
    let Some(name) = name else {
        return Vec::new();
    };
    groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m == name))
        .map(|g| g.gid)
        .collect()
}

/// A numeric id in 0..=2147483647, or an error; never a value wrapped into range.
fn checked_id(n: i64, text: &str) -> Result<u32> {
    if (0..=MAX_ID).contains(&n) {
        u32::try_from(n).map_err(|_| SpecError::IdOutOfRange(text.to_owned()))
    } else {
        Err(SpecError::IdOutOfRange(text.to_owned()))
    }
}

/// `name:password:uid:gid:gecos:home:shell`. Lines that are malformed or carry ids out of
/// range are skipped, so a hostile entry can match nothing.
fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    let fields: Vec<&str> = line.split(':').collect();
    let [name, _, uid, gid, rest @ ..] = fields.as_slice() else {
        return None;
    };
    if name.is_empty() || name.starts_with('#') {
        return None;
    }
    Some(PasswdEntry {
        name: (*name).to_owned(),
        uid: parse_id(uid)?,
        gid: parse_id(gid)?,
        home: rest
            .get(1)
            .filter(|h| !h.is_empty())
            .unwrap_or(&"/")
            .to_string(),
    })
}

/// `name:password:gid:member,member`.
fn parse_group_line(line: &str) -> Option<GroupEntry> {
    let fields: Vec<&str> = line.split(':').collect();
    let [name, _, gid, rest @ ..] = fields.as_slice() else {
        return None;
    };
    if name.is_empty() || name.starts_with('#') {
        return None;
    }
    let members = rest
        .first()
        .map(|m| {
            m.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Some(GroupEntry {
        name: (*name).to_owned(),
        gid: parse_id(gid)?,
        members,
    })
}

fn parse_id(text: &str) -> Option<u32> {
    let n: i64 = text.trim().parse().ok()?;
    u32::try_from(n).ok().filter(|&id| i64::from(id) <= MAX_ID)
}

/// Reads `path` (relative) inside `rootfs` without leaving it: symlinks resolve as if
/// `rootfs` were `/`, magic links are refused, and only a regular file is read. `None` when
/// the file does not exist.
pub fn read_in_root(rootfs: &Path, path: &str) -> Result<Option<String>> {
    let shown = format!("/{path}");
    let err = |source: io::Error| SpecError::Rootfs {
        path: shown.clone(),
        source,
    };
    let root: OwnedFd = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    let how = OpenHow::new()
        // O_NONBLOCK: opening a FIFO planted by the image must not hang the engine.
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(&root, path, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(err(e.into())),
    };
    let stat = fstat(&fd).map_err(|e| err(e.into()))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        )));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn rootfs(passwd: &str, group: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        fs::write(dir.path().join("etc/group"), group).unwrap();
        dir
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken line\n\
        evil:x:4294967296:0::/:/bin/sh\n\
        big:x:3000000000:0::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\nstaff:x:50:app\napp:x:1000:\n\
        docker:x:999:\n";

    fn user(dir: &tempfile::TempDir, spec: &str, add: &[&str]) -> Result<ResolvedUser> {
        let add: Vec<String> = add.iter().map(|s| (*s).to_owned()).collect();
        resolve_user(dir.path(), spec, &add)
    }

    #[test]
    fn empty_is_root_with_roots_home() {
        let dir = rootfs(PASSWD, GROUP);
        let u = user(&dir, "", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.additional_gids, vec![0]);
    }

    #[test]
    fn names_resolve_from_the_containers_files() {
        let dir = rootfs(PASSWD, GROUP);
        let u = user(&dir, "app", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.additional_gids, vec![1000, 10, 50]);

        let u = user(&dir, "app:docker", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 999));
        assert_eq!(u.additional_gids, vec![999]);

        let u = user(&dir, "1000", &["wheel", "4242"]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![1000, 10, 50, 4242]);

        let u = user(&dir, "daemon:0", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1, 0));
    }

    #[test]
    fn unknown_numeric_ids_are_used_as_given_with_gid_zero() {
        let dir = rootfs(PASSWD, GROUP);
        let u = user(&dir, "4321", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4321, 0, "/"));
        let u = user(&dir, "4321:4322", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (4321, 4322));
        let u = user(&dir, "2147483647", &[]).unwrap();
        assert_eq!(u.uid, 2_147_483_647);
    }

    #[test]
    fn unknown_names_are_dockers_errors() {
        let dir = rootfs(PASSWD, GROUP);
        assert_eq!(
            user(&dir, "nobody", &[]).unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            user(&dir, "app:nogroup", &[]).unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert!(matches!(
            user(&dir, "app", &["ghosts"]),
            Err(SpecError::GroupNotFound(_))
        ));
    }

    /// CVE-2024-40635: values that overflow must never become root.
    #[test]
    fn hostile_ids_are_refused_never_root() {
        let dir = rootfs(PASSWD, GROUP);
        for spec in [
            "2147483648",
            "4294967295",
            "4294967296",
            "-1",
            "99999999999",
            "-2147483648",
            "0:2147483648",
            "app:-1",
            "18446744073709551616",
        ] {
            let result = user(&dir, spec, &[]);
            assert!(result.is_err(), "{spec} gave {result:?}");
        }
        assert!(user(&dir, "app", &["4294967295"]).is_err());
        // Passwd entries with ids out of range are ignored, not wrapped.
        assert!(matches!(
            user(&dir, "evil", &[]),
            Err(SpecError::UserNotFound(_))
        ));
        assert!(matches!(
            user(&dir, "big", &[]),
            Err(SpecError::UserNotFound(_))
        ));
        for spec in ["a:b:c", "app:", ":"] {
            assert!(user(&dir, spec, &[]).is_err(), "{spec}");
        }
    }

    #[test]
    fn missing_files_allow_only_numeric_ids() {
        let dir = tempfile::tempdir().unwrap();
        let u = resolve_user(dir.path(), "", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
        assert_eq!(resolve_user(dir.path(), "12:34", &[]).unwrap().gid, 34);
        assert!(resolve_user(dir.path(), "app", &[]).is_err());
    }

    /// An absolute symlink in the image must resolve inside the root, never to the host's
    /// /etc/passwd (which has users this rootfs lacks).
    #[test]
    fn symlinks_stay_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::create_dir_all(dir.path().join("data")).unwrap();
        fs::write(dir.path().join("data/pw"), "only:x:77:77::/o:/bin/sh\n").unwrap();
        symlink("/data/pw", dir.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(dir.path(), "only", &[]).unwrap().uid, 77);

        // A group file outside the rootfs, named by its host path: inside the root that path
        // does not exist, so the lookup finds nothing rather than the host file.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("group"), "root:x:0:\n").unwrap();
        symlink(outside.path().join("group"), dir.path().join("etc/group")).unwrap();
        assert!(matches!(
            resolve_user(dir.path(), "0:root", &[]),
            Err(SpecError::GroupNotFound(_))
        ));
        fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        symlink("/proc/self/root/etc/passwd", dir.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(dir.path(), "root", &[]),
            Err(SpecError::UserNotFound(_))
        ));
    }

    #[test]
    fn fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(dir.path(), "root", &[]),
            Err(SpecError::Rootfs { .. })
        ));
        fs::remove_dir(dir.path().join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("etc/passwd"),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(matches!(
            resolve_user(dir.path(), "root", &[]),
            Err(SpecError::Rootfs { .. })
        ));
    }
}
