//! Working-set trimming after start-up.
//!
//! The shim is forked from the `berth` binary, which carries the whole engine; the pages the
//! starter and the start-up path touched (argument parsing, spawning the runtime, relocation
//! tables) stay mapped in the shim for its whole life although the event loop never needs
//! them again. `MADV_PAGEOUT` on the read-only file mappings hands them back: they are clean
//! page-cache pages, so nothing is lost, and a page the loop does need is simply faulted in
//! again. Shared pages (mapped by other processes) are left alone by the kernel.

/// Asks the kernel to reclaim this process's pages of read-only file mappings. Best effort:
/// kernels before 5.4 reject `MADV_PAGEOUT`, which changes nothing.
pub fn trim_file_mappings() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let Some((start, len)) = read_only_file_mapping(line) else {
            continue;
        };
        // SAFETY: MADV_PAGEOUT only drops page-table entries of clean file pages (or writes
        // private ones to swap); the mapping and its contents stay the same for the process.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT);
        }
    }
}

/// `(start, length)` of a `/proc/self/maps` line that maps a file without write permission.
fn read_only_file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next()?;
    if inode == "0" || !path.starts_with('/') || perms.contains('w') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    (end > start).then(|| (start, end - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_read_only_file_mappings() {
        let text = "55c2d2d5c000-55c2d2ebf000 r-xp 000c3000 fe:00 5342052  /usr/bin/berth";
        assert_eq!(
            read_only_file_mapping(text),
            Some((0x55c2d2d5c000, 0x55c2d2ebf000 - 0x55c2d2d5c000))
        );
        assert_eq!(
            read_only_file_mapping("7f0-7f8 rw-p 001d3000 fe:00 326279  /usr/lib/libc.so.6"),
            None
        );
        assert_eq!(
            read_only_file_mapping("7f0-7f8 rw-p 00000000 00:00 0  [heap]"),
            None
        );
        assert_eq!(
            read_only_file_mapping("7f0-7f8 r-xp 00000000 00:00 0  [vdso]"),
            None
        );
    }
}
