//! Namespaces (`--network`, `--ipc`, `--pid`, `--uts`, `--cgroupns`) and sysctls: the
//! user's, checked against the namespaces the container owns (a key outside them would change
//! the host, CVE-2022-0811), plus moby's defaults for a private network namespace.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::config::{
    ContainerConfig, IpcNamespace, NetworkNamespace, PidNamespace, RuntimeContext,
};
use crate::error::{Result, SpecError};

/// IPC sysctls outside `fs.mqueue.*` (the kernel's IPC namespace parameters).
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespaces the container shares or creates, after `--uts` and `--cgroupns` are
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Namespaces {
    /// The OCI list.
    pub list: Vec<LinuxNamespace>,
    /// The container has a UTS namespace of its own (so it gets a hostname).
    pub own_uts: bool,
}

fn ns(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ);
    n.set_path(path);
    n
}

fn proc_ns(pid: i32, name: &str) -> Option<PathBuf> {
    Some(PathBuf::from(format!("/proc/{pid}/ns/{name}")))
}

/// The namespace list: mount always; network, IPC, PID as the engine decided; UTS unless
/// `--uts host`; cgroup when private (by default only on a cgroup v2 host, as Docker).
pub(crate) fn namespaces(cfg: &ContainerConfig, ctx: &RuntimeContext) -> Result<Namespaces> {
    use LinuxNamespaceType as T;
    let mut list = vec![ns(T::Mount, None)];
    match &ctx.network {
        NetworkNamespace::None => list.push(ns(T::Network, None)),
        NetworkNamespace::Path(path) => list.push(ns(T::Network, Some(path.clone()))),
        NetworkNamespace::Container(pid) => list.push(ns(T::Network, proc_ns(*pid, "net"))),
        NetworkNamespace::Host => {}
    }
    match &ctx.ipc {
        IpcNamespace::Private | IpcNamespace::Shareable(_) | IpcNamespace::None => {
            list.push(ns(T::Ipc, None));
        }
        IpcNamespace::Container { pid, .. } => list.push(ns(T::Ipc, proc_ns(*pid, "ipc"))),
        IpcNamespace::Host => {}
    }
    match ctx.pid {
        PidNamespace::Private => list.push(ns(T::Pid, None)),
        PidNamespace::Container(pid) => list.push(ns(T::Pid, proc_ns(pid, "pid"))),
        PidNamespace::Host => {}
    }
    let own_uts = match cfg.host.uts_mode.as_str() {
        "" | "private" => true,
        "host" => false,
        other => return Err(SpecError::invalid(format!("invalid UTS mode: {other}"))),
    };
    if own_uts {
        list.push(ns(T::Uts, None));
    }
    let own_cgroup = match cfg.host.cgroupns_mode.as_str() {
        "" => ctx.host.cgroup_v2,
        "private" => true,
        "host" => false,
        other => {
            return Err(SpecError::invalid(format!(
                "invalid cgroup namespace mode: {other}"
            )));
        }
    };
    if own_cgroup {
        list.push(ns(T::Cgroup, None));
    }
    Ok(Namespaces { list, own_uts })
}

/// The container's sysctls: the user's, each checked, and for a network namespace of its own
/// moby's defaults (unprivileged low ports and ping) unless the user set them.
pub(crate) fn sysctls(
    user: &BTreeMap<String, String>,
    ctx: &RuntimeContext,
    own_uts: bool,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (key, value) in user {
        let key = check_sysctl(key, ctx, own_uts)?;
        out.insert(key, value.clone());
    }
    if matches!(
        ctx.network,
        NetworkNamespace::None | NetworkNamespace::Path(_)
    ) {
        if ctx.host.kernel >= (4, 11) {
            out.entry("net.ipv4.ip_unprivileged_port_start".to_owned())
                .or_insert_with(|| "0".to_owned());
        }
        out.entry("net.ipv4.ping_group_range".to_owned())
            .or_insert_with(|| "0 2147483647".to_owned());
    }
    Ok(out)
}

/// Checks one key: IPC keys and `fs.mqueue.*` need an IPC namespace that is not the host's,
/// `net.*` a network namespace that is not the host's, `kernel.domainname` a UTS namespace.
/// Anything else is not namespaced, and is refused like runc does. Returns the key in dotted
/// form.
fn check_sysctl(key: &str, ctx: &RuntimeContext, own_uts: bool) -> Result<String> {
    let normalized = key.replace('/', ".");
    let well_formed = !normalized.is_empty()
        && normalized.split('.').all(|c| !c.is_empty())
        && normalized
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !well_formed {
        return Err(SpecError::invalid(format!("invalid sysctl key: {key:?}")));
    }
    let host_ns = |what: &str| {
        SpecError::invalid(format!(
            "sysctl {key:?} is not allowed in the host's {what} namespace"
        ))
    };
    if IPC_KEYS.contains(&normalized.as_str()) || normalized.starts_with("fs.mqueue.") {
        if ctx.ipc == IpcNamespace::Host {
            return Err(host_ns("IPC"));
        }
    } else if normalized.starts_with("net.") {
        if ctx.network == NetworkNamespace::Host {
            return Err(host_ns("network"));
        }
    } else if normalized == "kernel.domainname" {
        if !own_uts {
            return Err(host_ns("UTS"));
        }
    } else {
        return Err(SpecError::invalid(format!(
            "sysctl {key:?} is not in a separate kernel namespace"
        )));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ctx() -> RuntimeContext {
        let mut ctx = RuntimeContext::new("abc", "/nonexistent");
        ctx.host.kernel = (6, 18);
        ctx.host.cgroup_v2 = false;
        ctx
    }

    fn types(n: &Namespaces) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
        n.list.iter().map(|n| (n.typ(), n.path().clone())).collect()
    }

    #[test]
    fn defaults_are_private_except_cgroup_on_v1() {
        use LinuxNamespaceType as T;
        let n = namespaces(&ContainerConfig::default(), &ctx()).unwrap();
        assert_eq!(
            types(&n),
            vec![
                (T::Mount, None),
                (T::Network, None),
                (T::Ipc, None),
                (T::Pid, None),
                (T::Uts, None)
            ]
        );
        let mut v2 = ctx();
        v2.host.cgroup_v2 = true;
        let n = namespaces(&ContainerConfig::default(), &v2).unwrap();
        assert!(types(&n).contains(&(T::Cgroup, None)));
    }

    #[test]
    fn host_and_joined_namespaces() {
        use LinuxNamespaceType as T;
        let mut c = ctx();
        c.network = NetworkNamespace::Host;
        c.ipc = IpcNamespace::Container {
            pid: 42,
            shm: "/x".into(),
        };
        c.pid = PidNamespace::Host;
        let mut cfg = ContainerConfig::default();
        cfg.host.uts_mode = "host".into();
        cfg.host.cgroupns_mode = "private".into();
        let n = namespaces(&cfg, &c).unwrap();
        assert_eq!(
            types(&n),
            vec![
                (T::Mount, None),
                (T::Ipc, Some("/proc/42/ns/ipc".into())),
                (T::Cgroup, None)
            ]
        );
        assert!(!n.own_uts);

        c.network = NetworkNamespace::Path("/run/berth/netns/x".into());
        c.pid = PidNamespace::Container(7);
        let n = namespaces(&ContainerConfig::default(), &c).unwrap();
        assert!(types(&n).contains(&(T::Network, Some("/run/berth/netns/x".into()))));
        assert!(types(&n).contains(&(T::Pid, Some("/proc/7/ns/pid".into()))));

        cfg.host.uts_mode = "bogus".into();
        assert_eq!(
            namespaces(&cfg, &c).unwrap_err().to_string(),
            "invalid UTS mode: bogus"
        );
        cfg.host.uts_mode.clear();
        cfg.host.cgroupns_mode = "bogus".into();
        assert!(namespaces(&cfg, &c).is_err());
    }

    #[test]
    fn default_sysctls_only_with_own_netns() {
        let s = sysctls(&BTreeMap::new(), &ctx(), true).unwrap();
        assert_eq!(
            s.get("net.ipv4.ip_unprivileged_port_start")
                .map(String::as_str),
            Some("0")
        );
        assert_eq!(
            s.get("net.ipv4.ping_group_range").map(String::as_str),
            Some("0 2147483647")
        );

        let user = BTreeMap::from([(
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
            "1024".to_owned(),
        )]);
        let s = sysctls(&user, &ctx(), true).unwrap();
        assert_eq!(
            s.get("net.ipv4.ip_unprivileged_port_start")
                .map(String::as_str),
            Some("1024")
        );

        for network in [NetworkNamespace::Host, NetworkNamespace::Container(9)] {
            let mut c = ctx();
            c.network = network;
            assert!(sysctls(&BTreeMap::new(), &c, true).unwrap().is_empty());
        }
    }

    #[test]
    fn user_sysctls_are_checked() {
        let one = |k: &str, c: &RuntimeContext, uts: bool| {
            sysctls(&BTreeMap::from([(k.to_owned(), "1".to_owned())]), c, uts)
        };
        assert!(one("kernel.shm_rmid_forced", &ctx(), true).is_ok());
        assert!(one("fs.mqueue.msg_max", &ctx(), true).is_ok());
        assert!(
            one("net/ipv4/ip_forward", &ctx(), true)
                .unwrap()
                .contains_key("net.ipv4.ip_forward")
        );
        assert!(one("kernel.domainname", &ctx(), true).is_ok());
        assert!(one("kernel.domainname", &ctx(), false).is_err());
        for bad in [
            "kernel.core_pattern",
            "vm.overcommit_memory",
            "kernel.shm_rmid_forced=1+kernel.core_pattern",
            "net..x",
            "net/../../kernel/core_pattern",
            "",
        ] {
            assert!(one(bad, &ctx(), true).is_err(), "{bad}");
        }
        let mut host_net = ctx();
        host_net.network = NetworkNamespace::Host;
        assert!(one("net.ipv4.ip_forward", &host_net, true).is_err());
        let mut host_ipc = ctx();
        host_ipc.ipc = IpcNamespace::Host;
        assert!(one("kernel.sem", &host_ipc, true).is_err());
    }
}
