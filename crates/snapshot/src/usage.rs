//! Disk usage of a directory tree, like `du`: allocated blocks, each inode counted once.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::fsutil::{list_dir, open_root};

/// Space used by a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated on disk.
    pub size: u64,
    /// Inodes (files, directories, links…), the top directory included.
    pub inodes: u64,
}

/// Measures the tree at `dir` without following symlinks.
pub fn disk_usage(dir: &Path) -> io::Result<Usage> {
    let root = open_root(dir)?;
    let st = rustix::fs::fstat(&root)?;
    let mut seen = HashSet::new();
    seen.insert((st.st_dev, st.st_ino));
    let mut usage = Usage {
        size: st.st_blocks as u64 * 512,
        inodes: 1,
    };
    walk(root.as_fd(), &mut seen, &mut usage)?;
    Ok(usage)
}

fn walk(dir: BorrowedFd<'_>, seen: &mut HashSet<(u64, u64)>, usage: &mut Usage) -> io::Result<()> {
    for name in list_dir(dir)? {
        let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        if seen.insert((st.st_dev, st.st_ino)) {
            usage.size += st.st_blocks as u64 * 512;
            usage.inodes += 1;
        }
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let sub = rustix::fs::openat(dir, &name, flags, Mode::empty())?;
            walk(sub.as_fd(), seen, usage)?;
        }
    }
    Ok(())
}
