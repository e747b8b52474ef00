//! `docker top`: the host's `ps`, filtered to the container's processes (those in its init's
//! pid namespace), as Docker does.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use berth_errdefs::{CategorizedError, Category};

use super::{Containers, Result, invalid, sys};

/// The answer of `top`: column titles and one row per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopReport {
    /// `UID`, `PID`, ….
    pub titles: Vec<String>,
    /// One row of cells per process.
    pub processes: Vec<Vec<String>>,
}

/// Pids whose pid namespace is `pid`'s.
fn pids_in_namespace_of(pid: i32) -> BTreeSet<u32> {
    let ns = |p: &str| {
        std::fs::metadata(format!("/proc/{p}/ns/pid"))
            .ok()
            .map(|m| m.ino())
    };
    let Some(target) = ns(&pid.to_string()) else {
        return BTreeSet::new();
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|p| ns(&p.to_string()) == Some(target))
        .collect()
}

/// Splits `ps` output into titles and rows of the processes in `pids`.
pub(crate) fn parse_ps(output: &str, pids: &BTreeSet<u32>) -> Result<TopReport> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| invalid("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut cells: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        for _ in 0..titles.len().saturating_sub(1) {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            cells.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
        cells.push(rest.to_owned());
        if cells
            .get(pid_col)
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            processes.push(cells);
        }
    }
    Ok(TopReport { titles, processes })
}

impl Containers {
    /// `GET /containers/{id}/top?ps_args=`.
    pub async fn top(&self, name_or_id: &str, ps_args: &str) -> Result<TopReport> {
        let c = self.find(name_or_id)?;
        let (running, pid) = {
            let r = c.rec();
            (r.state.running, r.state.pid)
        };
        if !running || pid <= 0 {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("Container {} is not running", c.id),
            ));
        }
        let args: Vec<String> = if ps_args.trim().is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(str::to_owned).collect()
        };
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("ps").args(&args).output()
        })
        .await
        .map_err(|e| sys("ps task", e))?
        .map_err(|e| sys("run ps", e))?;
        if !out.status.success() {
            return Err(invalid(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let pids = pids_in_namespace_of(pid);
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ps_output_is_split_and_filtered() {
        let out = "UID PID PPID C STIME TTY TIME CMD\n\
                   root 10 1 0 08:39 ? 00:00:00 sleep 1000\n\
                   root 11 1 0 08:39 ? 00:00:00 other thing\n";
        let pids = BTreeSet::from([10]);
        let r = parse_ps(out, &pids).unwrap();
        assert_eq!(r.titles.len(), 8);
        assert_eq!(
            r.processes,
            vec![vec![
                "root",
                "10",
                "1",
                "0",
                "08:39",
                "?",
                "00:00:00",
                "sleep 1000"
            ]]
        );
        assert!(parse_ps("USER CMD\nroot x\n", &pids).is_err());
    }
}
