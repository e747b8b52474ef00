//! Reading and writing cgroup interface files.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::CgroupError;

/// Writes `value` to `dir/file` in one write(2), as cgroupfs needs, without creating the file:
/// a missing interface file means a missing kernel feature and must not be papered over.
pub(crate) fn try_write(path: &Path, value: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    let n = file.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// Writes a requested `setting` to `dir/file`; a missing file becomes [`CgroupError::MissingFile`].
pub(crate) fn write(dir: &Path, file: &str, value: &str, setting: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    try_write(&path, value).map_err(|source| write_error(path, value, setting, source))
}

/// The error for a failed write of `value` to `path` on behalf of `setting`.
pub(crate) fn write_error(
    path: PathBuf,
    value: &str,
    setting: &str,
    source: io::Error,
) -> CgroupError {
    if source.kind() == io::ErrorKind::NotFound {
        CgroupError::MissingFile {
            setting: setting.to_owned(),
            path,
        }
    } else {
        CgroupError::Write {
            path,
            value: value.to_owned(),
            source,
        }
    }
}

/// Reads `path` as a string with surrounding whitespace trimmed.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| CgroupError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Like [`read`], but a missing file is `None`.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses a single unsigned number; `max` reads as `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    let text = text.trim();
    if text == "max" {
        return Ok(u64::MAX);
    }
    text.parse().map_err(|e| CgroupError::Parse {
        path: path.to_owned(),
        reason: format!("{text:?} is not a number: {e}"),
    })
}

/// Reads a single unsigned number from `path`.
pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    parse_u64(path, &read(path)?)
}

/// Like [`read_u64`], but a missing file is `None`.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>, CgroupError> {
    read_opt(path)?.map(|s| parse_u64(path, &s)).transpose()
}

/// Parses a flat keyed file (`key value` per line, like `memory.stat` or `cpu.stat`).
pub(crate) fn parse_keyed(path: &Path, text: &str) -> Result<BTreeMap<String, u64>, CgroupError> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(CgroupError::Parse {
                path: path.to_owned(),
                reason: format!("expected `key value`, got {line:?}"),
            });
        };
        map.insert(key.to_owned(), parse_u64(path, value)?);
    }
    Ok(map)
}

/// Reads a flat keyed file; a missing file is `None`.
pub(crate) fn read_keyed_opt(path: &Path) -> Result<Option<BTreeMap<String, u64>>, CgroupError> {
    read_opt(path)?.map(|s| parse_keyed(path, &s)).transpose()
}

/// Reads the pids listed in a `cgroup.procs` file.
pub(crate) fn read_procs(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = read(path)?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim().parse().map_err(|e| CgroupError::Parse {
                path: path.to_owned(),
                reason: format!("{l:?} is not a pid: {e}"),
            })
        })
        .collect()
}
