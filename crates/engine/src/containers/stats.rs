//! `docker stats`: one sample of a container's usage, from its cgroup (v1, v2 or hybrid),
//! its network namespace's interface counters and the host's CPU time. The API layer turns
//! consecutive samples into Docker's `StatsJSON` (the previous one is `precpu_stats`).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_cgroups::{Cgroup, Hierarchy};
use berth_errdefs::{CategorizedError, Category};

use super::{Containers, Result, sys};

pub use berth_cgroups::{CpuStats, IoEntry, MemoryStats, PidsStats, Stats as CgroupStats};

/// One interface's counters (`/proc/<pid>/net/dev`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

/// One sample. `usage` is `None` for a container that is not running (Docker then answers
/// zeros).
#[derive(Debug, Clone, Default)]
pub struct StatsSample {
    /// The container's id.
    pub id: String,
    /// Its name, without the slash.
    pub name: String,
    /// When it was taken (RFC 3339 with nanoseconds).
    pub read: String,
    /// Everything measured while running.
    pub usage: Option<Usage>,
}

/// What a running container's sample holds.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// The cgroup's counters.
    pub cgroup: CgroupStats,
    /// The host's total CPU time in ns (`/proc/stat`'s first line), for CPU %.
    pub system_cpu_ns: u64,
    /// CPUs online on the host.
    pub online_cpus: u32,
    /// Host memory, the limit Docker reports for a container without one.
    pub host_memory: u64,
    /// Interfaces of the container's own network namespace, `lo` left out; empty for
    /// `--network host` (Docker reports none there).
    pub networks: BTreeMap<String, NetCounters>,
}

impl Containers {
    /// Takes one sample of `name_or_id`'s usage.
    pub async fn stats_sample(&self, name_or_id: &str) -> Result<StatsSample> {
        let c = self.find(name_or_id)?;
        let (running, pid, name) = {
            let r = c.rec();
            (r.state.running, r.state.pid, r.name.clone())
        };
        let mut sample = StatsSample {
            id: c.id.clone(),
            name,
            read: super::now(),
            usage: None,
        };
        if !running || pid <= 0 {
            return Ok(sample);
        }
        let cgroup = self.cgroup_of(&c.id)?;
        let usage = tokio::task::spawn_blocking(move || measure(&cgroup, pid))
            .await
            .map_err(|e| sys("stats task", e))??;
        sample.usage = Some(usage);
        Ok(sample)
    }

    /// The container's cgroup, from `linux.cgroupsPath` in its bundle.
    pub(crate) fn cgroup_of(&self, id: &str) -> Result<Cgroup> {
        let path = self.bundle_dir(id).join("config.json");
        let text = std::fs::read(&path).map_err(|e| sys("read the bundle", e))?;
        let spec: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| sys("parse the bundle", e))?;
        let cgroups_path = spec["linux"]["cgroupsPath"]
            .as_str()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| sys("bundle", "no linux.cgroupsPath"))?;
        let hierarchy = Hierarchy::detect().map_err(|e| sys("cgroups", e))?;
        Cgroup::new(hierarchy, cgroups_path).map_err(|e| sys("cgroup", e))
    }
}

fn measure(cgroup: &Cgroup, pid: i32) -> Result<Usage> {
    let stats = cgroup
        .stats()
        .map_err(|e| CategorizedError::new(Category::System, e.to_string()))?;
    let networks = if shares_our_netns(pid) {
        BTreeMap::new()
    } else {
        let path = format!("/proc/{pid}/net/dev");
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_net_dev(&text)?,
            // The container exited between the check and the read.
            Err(_) => BTreeMap::new(),
        }
    };
    let proc_stat = std::fs::read_to_string("/proc/stat").map_err(|e| sys("read /proc/stat", e))?;
    Ok(Usage {
        cgroup: stats,
        system_cpu_ns: system_cpu_ns(&proc_stat, clock_ticks())?,
        online_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        host_memory: host_memory(),
        networks,
    })
}

fn shares_our_netns(pid: i32) -> bool {
    let ino = |p: &str| std::fs::metadata(Path::new(p)).map(|m| m.ino()).ok();
    let theirs = ino(&format!("/proc/{pid}/ns/net"));
    theirs.is_none() || theirs == ino("/proc/self/ns/net")
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// The first `cpu ` line of `/proc/stat`: user, nice, system, idle, iowait, irq, softirq,
/// steal (guest time is already in user), in ticks, summed and turned into ns as Docker does.
pub(crate) fn system_cpu_ns(proc_stat: &str, ticks_per_sec: u64) -> Result<u64> {
    let bad = || sys("parse /proc/stat", "no well-formed cpu line");
    let line = proc_stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .ok_or_else(bad)?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    if fields.len() < 7 {
        return Err(bad());
    }
    let ticks = fields.iter().fold(0u64, |acc, v| acc.saturating_add(*v));
    Ok(ticks.saturating_mul(1_000_000_000) / ticks_per_sec.max(1))
}

/// `/proc/<pid>/net/dev`: two header lines, then `name: rx(8 fields) tx(8 fields)`.
pub(crate) fn parse_net_dev(text: &str) -> Result<BTreeMap<String, NetCounters>> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2).filter(|l| !l.trim().is_empty()) {
        let bad = || sys("parse net/dev", format!("malformed line {line:?}"));
        let (name, rest) = line.split_once(':').ok_or_else(bad)?;
        let name = name.trim();
        let v: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        if name.is_empty() || v.len() < 16 {
            return Err(bad());
        }
        if name == "lo" {
            continue;
        }
        out.insert(
            name.to_owned(),
            NetCounters {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
        face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
        lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
        eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";

    #[test]
    fn net_dev_gives_eth0_without_lo() {
        let m = parse_net_dev(NET_DEV).unwrap();
        assert_eq!(m.len(), 1);
        let e = &m["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (5000, 40, 1, 2)
        );
        assert_eq!(
            (e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped),
            (3000, 30, 3, 4)
        );
    }

    #[test]
    fn hostile_net_dev_is_an_error() {
        let head = "h1\nh2\n";
        for bad in [
            "eth0 1 2 3",
            "eth0: 1 2 3",
            "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x",
            ": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
            "eth0: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
        ] {
            assert!(parse_net_dev(&format!("{head}{bad}\n")).is_err(), "{bad}");
        }
        assert!(parse_net_dev("").unwrap().is_empty());
    }

    #[test]
    fn system_cpu_sums_the_first_eight_fields() {
        let stat = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(system_cpu_ns(stat, 100).unwrap(), 36 * 10_000_000);
        for bad in ["", "cpu 1 2 x 4 5 6 7 8", "cpu 1 2 3", "intr 5"] {
            assert!(system_cpu_ns(bad, 100).is_err(), "{bad:?}");
        }
    }
}
