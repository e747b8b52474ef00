//! Resource limits: memory, CPU, pids, block I/O (checked with Docker's rules and messages),
//! `--ulimit` on top of the daemon's defaults, `--oom-score-adj`.

use std::collections::BTreeMap;

use nix::sys::resource::Resource;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType,
};

use crate::config::{Resources, Ulimit};
use crate::error::{Result, SpecError};
use crate::host::{HostFacts, rlimit_resource};

/// The smallest memory limit and reservation Docker accepts: 6 MiB.
const MIN_MEMORY: i64 = 6 << 20;
/// The CFS period `--cpus` uses, in µs.
const CPU_PERIOD: u64 = 100_000;

/// Docker's ulimit names and the resources they set.
pub(crate) const RLIMITS: [(&str, Resource); 15] = [
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rss", Resource::RLIMIT_RSS),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("rttime", Resource::RLIMIT_RTTIME),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

/// Checks `r` as the daemon does and turns it into OCI resources (devices are added later).
pub fn linux_resources(r: &Resources, host: &HostFacts) -> Result<LinuxResources> {
    let mut out = LinuxResources::default();
    out.set_memory(memory(r, host.swap_limit)?);
    out.set_cpu(cpu(r, host)?);
    if let Some(limit) = r.pids_limit {
        // Zero or negative means unlimited, sent as -1 as Docker does.
        let mut pids = LinuxPids::default();
        pids.set_limit(if limit > 0 { limit } else { -1 });
        out.set_pids(Some(pids));
    }
    if r.blkio_weight != 0 {
        if !(10..=1000).contains(&r.blkio_weight) {
            return Err(SpecError::invalid(
                "Range of blkio weight is from 10 to 1000",
            ));
        }
        let mut blkio = LinuxBlockIo::default();
        blkio.set_weight(Some(r.blkio_weight));
        out.set_block_io(Some(blkio));
    }
    Ok(out)
}

fn memory(r: &Resources, swap_limit: bool) -> Result<Option<LinuxMemory>> {
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return Err(SpecError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if r.memory_swap > 0 && r.memory == 0 {
        return Err(SpecError::invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(SpecError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if r.memory_reservation != 0 && r.memory_reservation < MIN_MEMORY {
        return Err(SpecError::invalid(
            "Minimum memory reservation allowed is 6MB",
        ));
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(SpecError::invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    let swappiness = match r.memory_swappiness {
        None | Some(-1) => None,
        Some(s) if (0..=100).contains(&s) => u64::try_from(s).ok(),
        Some(s) => {
            return Err(SpecError::invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    };
    if r.memory == 0 && r.memory_reservation == 0 && !r.oom_kill_disable && swappiness.is_none() {
        return Ok(None);
    }
    let mut m = LinuxMemory::default();
    if r.memory > 0 {
        m.set_limit(Some(r.memory));
        // Docker's default: as much swap as memory (memory+swap = twice the limit).
        let swap = match r.memory_swap {
            0 => r.memory.saturating_mul(2),
            s => s,
        };
        if swap_limit {
            m.set_swap(Some(swap));
        }
    }
    if r.memory_reservation > 0 {
        m.set_reservation(Some(r.memory_reservation));
    }
    if r.oom_kill_disable {
        m.set_disable_oom_killer(Some(true));
    }
    m.set_swappiness(swappiness);
    Ok(Some(m))
}

fn cpu(r: &Resources, host: &HostFacts) -> Result<Option<LinuxCpu>> {
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return Err(SpecError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err(SpecError::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    let max_nano = i64::from(host.cpus) * 1_000_000_000;
    if r.nano_cpus < 0 || r.nano_cpus > max_nano {
        return Err(SpecError::invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
            n = host.cpus
        )));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(SpecError::invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err(SpecError::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if r.cpu_shares < 0 {
        return Err(SpecError::invalid(format!(
            "invalid CPU shares ({}): value must be a positive integer",
            r.cpu_shares
        )));
    }
    check_cpuset(&r.cpuset_cpus, "cpus")?;
    check_cpuset(&r.cpuset_mems, "mems")?;
    let mut c = LinuxCpu::default();
    let mut any = false;
    if r.nano_cpus > 0 {
        let quota = r.nano_cpus.saturating_mul(CPU_PERIOD as i64) / 1_000_000_000;
        c.set_period(Some(CPU_PERIOD));
        c.set_quota(Some(quota));
        any = true;
    }
    if r.cpu_period > 0 {
        c.set_period(u64::try_from(r.cpu_period).ok());
        any = true;
    }
    if r.cpu_quota != 0 {
        c.set_quota(Some(r.cpu_quota));
        any = true;
    }
    if r.cpu_shares > 0 {
        c.set_shares(u64::try_from(r.cpu_shares).ok());
        any = true;
    }
    if !r.cpuset_cpus.is_empty() {
        c.set_cpus(Some(r.cpuset_cpus.clone()));
        any = true;
    }
    if !r.cpuset_mems.is_empty() {
        c.set_mems(Some(r.cpuset_mems.clone()));
        any = true;
    }
    Ok(any.then_some(c))
}

/// `0-3,5` style lists: numbers and ascending ranges, comma-separated.
fn check_cpuset(list: &str, what: &str) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let bad = || SpecError::invalid(format!("Invalid value {list} for cpuset {what}"));
    let number = |s: &str| -> Result<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    for part in list.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) if number(lo)? <= number(hi)? => {}
            Some(_) => return Err(bad()),
            None => {
                number(part)?;
            }
        }
    }
    Ok(())
}

/// Parses `--ulimit name=soft[:hard]` (hard defaults to soft).
pub fn parse_ulimit(text: &str) -> Result<Ulimit> {
    let (name, values) = text
        .split_once('=')
        .ok_or_else(|| SpecError::invalid(format!("invalid ulimit argument: {text}")))?;
    if rlimit_resource(name).is_none() {
        return Err(SpecError::invalid(format!("invalid ulimit type: {name}")));
    }
    let number = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| SpecError::invalid(format!("invalid ulimit argument: {text}")))
    };
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let v = number(values)?;
            (v, v)
        }
    };
    Ok(Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

/// The container's rlimits: the daemon's defaults overridden by name by the container's own.
/// Raising a hard limit above the runtime's fails at start without CAP_SYS_RESOURCE, so it is
/// refused here with a message that says so.
pub fn rlimits(defaults: &[Ulimit], own: &[Ulimit], host: &HostFacts) -> Result<Vec<PosixRlimit>> {
    let mut by_name: BTreeMap<&str, &Ulimit> = BTreeMap::new();
    for u in defaults.iter().chain(own) {
        by_name.insert(u.name.as_str(), u);
    }
    let can_raise = host.bounding.contains("CAP_SYS_RESOURCE");
    by_name
        .values()
        .map(|u| rlimit(u, host, can_raise))
        .collect()
}

fn rlimit(u: &Ulimit, host: &HostFacts, can_raise: bool) -> Result<PosixRlimit> {
    let typ = rlimit_type(&u.name)
        .ok_or_else(|| SpecError::invalid(format!("invalid ulimit type: {}", u.name)))?;
    let value = |v: i64| match v {
        -1 => Ok(u64::MAX),
        v => u64::try_from(v)
            .map_err(|_| SpecError::invalid(format!("invalid ulimit argument: {}={v}", u.name))),
    };
    let (soft, hard) = (value(u.soft)?, value(u.hard)?);
    if soft > hard {
        return Err(SpecError::invalid(format!(
            "ulimit soft limit must be less than or equal to hard limit: {} > {}",
            u.soft, u.hard
        )));
    }
    if let Some(&max) = host.hard_limits.get(&u.name)
        && hard > max
        && !can_raise
    {
        return Err(SpecError::invalid(format!(
            "ulimit {}: hard limit {} is above the runtime's hard limit {max}, and raising \
             it needs CAP_SYS_RESOURCE",
            u.name, u.hard
        )));
    }
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(|e| SpecError::invalid(format!("ulimit {}: {e}", u.name)))
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    Some(match name {
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        _ => return None,
    })
}

/// `--oom-score-adj` must lie in -1000..=1000.
pub fn check_oom_score_adj(value: i32) -> Result<()> {
    if !(-1000..=1000).contains(&value) {
        return Err(SpecError::invalid(format!(
            "Invalid value {value}, range for oom score adj is [-1000, 1000]"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::BTreeSet;

    fn host() -> HostFacts {
        HostFacts {
            bounding: BTreeSet::new(),
            kernel: (6, 18),
            hard_limits: BTreeMap::from([
                ("nofile".to_owned(), 524_288),
                ("nproc".to_owned(), u64::MAX),
            ]),
            cpus: 2,
            cgroup_v2: false,
            swap_limit: true,
            thermal_throttle: Vec::new(),
        }
    }

    fn err(r: Resources) -> String {
        linux_resources(&r, &host()).unwrap_err().to_string()
    }

    #[test]
    fn memory_limits() {
        let r = Resources {
            memory: 64 << 20,
            memory_reservation: 32 << 20,
            oom_kill_disable: true,
            ..Resources::default()
        };
        let out = linux_resources(&r, &host()).unwrap();
        let m = out.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), Some(128 << 20));
        assert_eq!(m.reservation(), Some(32 << 20));
        assert_eq!(m.disable_oom_killer(), Some(true));

        let r = Resources {
            memory: 64 << 20,
            memory_swap: -1,
            ..Resources::default()
        };
        let out = linux_resources(&r, &host()).unwrap();
        assert_eq!(out.memory().as_ref().unwrap().swap(), Some(-1));

        assert!(
            linux_resources(&Resources::default(), &host())
                .unwrap()
                .memory()
                .is_none()
        );
    }

    #[test]
    fn memory_errors_have_dockers_words() {
        assert_eq!(
            err(Resources {
                memory: 1 << 20,
                ..Resources::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(
            err(Resources {
                memory_swap: 64 << 20,
                ..Resources::default()
            })
            .starts_with("You should always set the Memory limit")
        );
        assert!(
            err(Resources {
                memory: 64 << 20,
                memory_swap: 32 << 20,
                ..Resources::default()
            })
            .starts_with("Minimum memoryswap limit")
        );
        assert_eq!(
            err(Resources {
                memory_reservation: 1,
                ..Resources::default()
            }),
            "Minimum memory reservation allowed is 6MB"
        );
        assert!(
            err(Resources {
                memory: 8 << 20,
                memory_reservation: 16 << 20,
                ..Resources::default()
            })
            .starts_with("Minimum memory limit can not be less than memory reservation")
        );
        assert!(
            err(Resources {
                memory_swappiness: Some(101),
                ..Resources::default()
            })
            .contains("swappiness")
        );
    }

    #[test]
    fn cpus_become_quota_over_a_100ms_period() {
        let r = Resources {
            nano_cpus: 1_500_000_000,
            cpu_shares: 512,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            ..Resources::default()
        };
        let out = linux_resources(&r, &host()).unwrap();
        let c = out.cpu().as_ref().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(100_000), Some(150_000)));
        assert_eq!(c.shares(), Some(512));
        assert_eq!(c.cpus().as_deref(), Some("0-1"));
        assert_eq!(c.mems().as_deref(), Some("0"));

        let r = Resources {
            cpu_period: 50_000,
            cpu_quota: 25_000,
            ..Resources::default()
        };
        let c = linux_resources(&r, &host()).unwrap().cpu().clone().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(50_000), Some(25_000)));
    }

    #[test]
    fn cpu_errors_have_dockers_words() {
        assert_eq!(
            err(Resources {
                nano_cpus: 3_000_000_000,
                ..Resources::default()
            }),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert!(
            err(Resources {
                nano_cpus: 1,
                cpu_period: 1000,
                ..Resources::default()
            })
            .contains("CPU Period cannot both be set")
        );
        assert!(
            err(Resources {
                nano_cpus: 1,
                cpu_quota: 1000,
                ..Resources::default()
            })
            .contains("CPU Quota cannot both be set")
        );
        assert!(
            err(Resources {
                cpu_period: 999,
                ..Resources::default()
            })
            .starts_with("CPU cfs period")
        );
        assert!(
            err(Resources {
                cpu_quota: 10,
                ..Resources::default()
            })
            .starts_with("CPU cfs quota")
        );
        assert!(
            err(Resources {
                cpu_shares: -1,
                ..Resources::default()
            })
            .contains("CPU shares")
        );
        for bad in ["a", "1-", "3-1", "1,,2", "-1"] {
            assert_eq!(
                err(Resources {
                    cpuset_cpus: bad.into(),
                    ..Resources::default()
                }),
                format!("Invalid value {bad} for cpuset cpus")
            );
        }
        assert!(
            err(Resources {
                cpuset_mems: "x".into(),
                ..Resources::default()
            })
            .contains("cpuset mems")
        );
    }

    #[test]
    fn pids_and_blkio() {
        let out = linux_resources(
            &Resources {
                pids_limit: Some(100),
                blkio_weight: 300,
                ..Resources::default()
            },
            &host(),
        )
        .unwrap();
        assert_eq!(out.pids().as_ref().unwrap().limit(), 100);
        assert_eq!(out.block_io().as_ref().unwrap().weight(), Some(300));
        for unlimited in [0, -5] {
            let out = linux_resources(
                &Resources {
                    pids_limit: Some(unlimited),
                    ..Resources::default()
                },
                &host(),
            )
            .unwrap();
            assert_eq!(out.pids().as_ref().unwrap().limit(), -1);
        }
        assert_eq!(
            err(Resources {
                blkio_weight: 5,
                ..Resources::default()
            }),
            "Range of blkio weight is from 10 to 1000"
        );
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, -1);
        assert_eq!(
            parse_ulimit("bogus=1").unwrap_err().to_string(),
            "invalid ulimit type: bogus"
        );
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=a:b").is_err());

        let defaults = [
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 4096,
            },
            Ulimit {
                name: "core".into(),
                soft: 0,
                hard: 0,
            },
        ];
        let own = [
            Ulimit {
                name: "nofile".into(),
                soft: 2048,
                hard: 8192,
            },
            Ulimit {
                name: "nproc".into(),
                soft: -1,
                hard: -1,
            },
        ];
        let r = rlimits(&defaults, &own, &host()).unwrap();
        assert_eq!(r.len(), 3);
        let nofile = r
            .iter()
            .find(|l| l.typ() == PosixRlimitType::RlimitNofile)
            .unwrap();
        assert_eq!((nofile.soft(), nofile.hard()), (2048, 8192));
        let nproc = r
            .iter()
            .find(|l| l.typ() == PosixRlimitType::RlimitNproc)
            .unwrap();
        assert_eq!(nproc.hard(), u64::MAX);

        let too_high = [Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 1_048_576,
        }];
        let e = rlimits(&[], &too_high, &host()).unwrap_err().to_string();
        assert!(e.contains("above the runtime's hard limit 524288"), "{e}");
        let mut can = host();
        can.bounding.insert("CAP_SYS_RESOURCE".into());
        assert!(rlimits(&[], &too_high, &can).is_ok());

        let inverted = [Ulimit {
            name: "nofile".into(),
            soft: 10,
            hard: 5,
        }];
        assert_eq!(
            rlimits(&[], &inverted, &host()).unwrap_err().to_string(),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
        );
        let negative = [Ulimit {
            name: "core".into(),
            soft: -2,
            hard: -2,
        }];
        assert!(rlimits(&[], &negative, &host()).is_err());
    }

    #[test]
    fn oom_score_adj_range() {
        assert!(check_oom_score_adj(-1000).is_ok());
        assert!(check_oom_score_adj(1000).is_ok());
        assert_eq!(
            check_oom_score_adj(1001).unwrap_err().to_string(),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
        assert!(check_oom_score_adj(-1001).is_err());
    }
}
