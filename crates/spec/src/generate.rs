//! Putting the spec together, as a list of named steps in the order moby applies them: user
//! first (capabilities depend on it), then capabilities (seccomp depends on them).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Linux, LinuxDevice, LinuxResources, LinuxSeccomp, Mount, Process, Root, Spec, User,
};

use crate::caps::{capability_sets, container_capabilities};
use crate::config::{ContainerConfig, RuntimeContext};
use crate::devices::{
    allow_all_rules, default_device_rules, devices_for_mapping, host_devices,
    parse_device_cgroup_rule,
};
use crate::error::{Result, SpecError};
use crate::mounts::{INIT_PATH, VolumeSource, build_mounts};
use crate::namespaces::{namespaces, sysctls};
use crate::process::{
    SeccompChoice, SecurityOptions, command, environment, parse_security_opts, parse_stop_signal,
    working_dir,
};
use crate::resources::{check_oom_score_adj, linux_resources, rlimits};
use crate::seccomp::{DockerProfile, ProfileTarget, native_arch};
use crate::user::{ResolvedUser, resolve_user};

/// The OCI runtime-spec version written into generated specs.
pub const OCI_VERSION: &str = "1.2.0";
/// The annotation carrying the container's stop signal for the engine.
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";

/// Docker's masked paths (`/dev/null` or an empty tmpfs over each; missing ones are skipped by
/// the runtime).
pub const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
];
/// More masked paths: `/sys/firmware` comes last as in moby's list.
const FIRMWARE: &str = "/sys/firmware";
/// Docker's read-only paths.
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Builds the OCI spec for `cfg` in `ctx` with Docker's defaults. Volumes named by `-v` or
/// `--mount type=volume` are resolved through `volumes`.
pub fn generate(
    cfg: &ContainerConfig,
    ctx: &RuntimeContext,
    volumes: &dyn VolumeSource,
) -> Result<Spec> {
    let security = parse_security_opts(&cfg.host.security_opt)?;
    check_oom_score_adj(cfg.host.oom_score_adj)?;
    let user = resolve_user(&ctx.rootfs, &cfg.user, &cfg.host.group_add)?;
    let caps = container_capabilities(
        &cfg.host.cap_add,
        &cfg.host.cap_drop,
        cfg.host.privileged,
        &ctx.host.bounding,
    )?;
    let init = init_binary(cfg, ctx)?;
    let process = process(cfg, ctx, &user, &caps, &security, init.is_some())?;
    let ns = namespaces(cfg, ctx)?;
    let (mut mounts, propagation) = build_mounts(cfg, ctx, volumes, init.as_deref())?;
    if security.writable_cgroups {
        make_cgroup_writable(&mut mounts);
    }

    let mut linux = Linux::default();
    linux.set_namespaces(Some(ns.list));
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_cgroups_path(Some(cgroups_path(cfg, ctx)));
    let (resources, devices) = resources(cfg, ctx)?;
    linux.set_resources(Some(resources));
    linux.set_devices(Some(devices));
    linux.set_sysctl(Some(sysctls(&cfg.host.sysctls, ctx, ns.own_uts)?));
    linux.set_seccomp(seccomp(cfg, ctx, &security, &caps)?);
    linux.set_rootfs_propagation(propagation);
    let (masked, readonly) = protected_paths(cfg, ctx);
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_owned());
    spec.set_root(Some(root(cfg, ctx)));
    spec.set_process(Some(process));
    spec.set_hostname(ns.own_uts.then(|| ctx.hostname.clone()));
    spec.set_domainname(Some(cfg.domainname.clone()).filter(|d| ns.own_uts && !d.is_empty()));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    spec.set_hooks(None);
    spec.set_annotations(Some(annotations(cfg)?));
    Ok(spec)
}

fn root(cfg: &ContainerConfig, ctx: &RuntimeContext) -> Root {
    let mut root = Root::default();
    root.set_path(ctx.rootfs.clone());
    root.set_readonly(Some(cfg.host.readonly_rootfs));
    root
}

/// The init binary when `--init` (or the daemon's default) asks for one.
fn init_binary(cfg: &ContainerConfig, ctx: &RuntimeContext) -> Result<Option<PathBuf>> {
    if !cfg.host.init.unwrap_or(ctx.init_default) {
        return Ok(None);
    }
    match &ctx.init_path {
        Some(path) => Ok(Some(path.clone())),
        None => Err(SpecError::invalid(
            "--init was requested but no init binary was found: install Debian's tini (tini-static) or start the daemon with --init-path",
        )),
    }
}

fn process(
    cfg: &ContainerConfig,
    ctx: &RuntimeContext,
    user: &ResolvedUser,
    caps: &BTreeSet<String>,
    security: &SecurityOptions,
    with_init: bool,
) -> Result<Process> {
    let mut args = command(cfg.entrypoint.as_deref(), &cfg.cmd)?;
    if with_init {
        // tini-style: the init reaps zombies and forwards signals to the command after `--`.
        args.splice(0..0, [INIT_PATH.to_owned(), "--".to_owned()]);
    }
    let mut oci_user = User::default();
    oci_user.set_uid(user.uid);
    oci_user.set_gid(user.gid);
    oci_user.set_additional_gids(Some(user.additional_gids.clone()));

    let mut p = Process::default();
    p.set_terminal(Some(cfg.tty));
    p.set_user(oci_user);
    p.set_args(Some(args));
    p.set_env(Some(environment(
        &cfg.env,
        &ctx.hostname,
        cfg.tty,
        &user.home,
    )?));
    p.set_cwd(PathBuf::from(working_dir(&cfg.working_dir)?));
    p.set_capabilities(Some(capability_sets(caps, user.uid)?));
    p.set_rlimits(Some(rlimits(
        &ctx.default_ulimits,
        &cfg.host.ulimits,
        &ctx.host,
    )?));
    p.set_no_new_privileges(Some(security.no_new_privileges));
    p.set_oom_score_adj(Some(cfg.host.oom_score_adj));
    p.set_apparmor_profile(None);
    p.set_selinux_label(None);
    Ok(p)
}

/// `<cgroup parent>/<id>`, cgroupfs style.
fn cgroups_path(cfg: &ContainerConfig, ctx: &RuntimeContext) -> PathBuf {
    let parent = if cfg.host.cgroup_parent.is_empty() {
        &ctx.cgroup_parent
    } else {
        &cfg.host.cgroup_parent
    };
    let parent = if parent.starts_with('/') {
        parent.clone()
    } else {
        format!("/{parent}")
    };
    Path::new(&parent).join(&ctx.container_id)
}

/// Limits with the device rules, and the device nodes to create.
fn resources(
    cfg: &ContainerConfig,
    ctx: &RuntimeContext,
) -> Result<(LinuxResources, Vec<LinuxDevice>)> {
    let mut resources = linux_resources(&cfg.host.resources, &ctx.host)?;
    let (mut devices, mut rules) = if cfg.host.privileged {
        (host_devices(Path::new("/dev")), allow_all_rules())
    } else {
        (Vec::new(), default_device_rules())
    };
    for mapping in &cfg.host.devices {
        let (found, allow) = devices_for_mapping(mapping)?;
        devices.retain(|d| !found.iter().any(|f| f.path() == d.path()));
        devices.extend(found);
        rules.extend(allow);
    }
    for rule in &cfg.host.device_cgroup_rules {
        rules.push(parse_device_cgroup_rule(rule)?);
    }
    resources.set_devices(Some(rules));
    Ok((resources, devices))
}

/// The seccomp filter: none for `--privileged` or `seccomp=unconfined`, else the given or
/// default profile evaluated for this container's capabilities, the kernel and architecture.
fn seccomp(
    cfg: &ContainerConfig,
    ctx: &RuntimeContext,
    security: &SecurityOptions,
    caps: &BTreeSet<String>,
) -> Result<Option<LinuxSeccomp>> {
    if cfg.host.privileged {
        return Ok(None);
    }
    let profile = match &security.seccomp {
        Some(SeccompChoice::Unconfined) => return Ok(None),
        Some(SeccompChoice::Profile(json)) => DockerProfile::parse(json)?,
        None => DockerProfile::default_profile()?,
    };
    let target = ProfileTarget {
        caps,
        kernel: ctx.host.kernel,
        arch: native_arch(),
    };
    profile.resolve(&target)
}

/// Masked and read-only paths: Docker's lists (or the API's replacements), none when
/// privileged.
fn protected_paths(cfg: &ContainerConfig, ctx: &RuntimeContext) -> (Vec<String>, Vec<String>) {
    if cfg.host.privileged {
        return (Vec::new(), Vec::new());
    }
    let masked = cfg.host.masked_paths.clone().unwrap_or_else(|| {
        DEFAULT_MASKED_PATHS
            .iter()
            .map(|p| (*p).to_owned())
            .chain(std::iter::once(FIRMWARE.to_owned()))
            .chain(ctx.host.thermal_throttle.iter().cloned())
            .collect()
    });
    let readonly = cfg.host.readonly_paths.clone().unwrap_or_else(|| {
        DEFAULT_READONLY_PATHS
            .iter()
            .map(|p| (*p).to_owned())
            .collect()
    });
    (masked, readonly)
}

fn make_cgroup_writable(mounts: &mut [Mount]) {
    for m in mounts
        .iter_mut()
        .filter(|m| m.typ().as_deref() == Some("cgroup"))
    {
        let options = m
            .options()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o != "ro")
            .collect();
        m.set_options(Some(options));
    }
}

/// Labels, and the stop signal under [`STOP_SIGNAL_ANNOTATION`] (which a label cannot
/// override).
fn annotations(cfg: &ContainerConfig) -> Result<HashMap<String, String>> {
    let mut out: HashMap<String, String> = cfg
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.remove(STOP_SIGNAL_ANNOTATION);
    if let Some(signal) = &cfg.stop_signal {
        out.insert(
            STOP_SIGNAL_ANNOTATION.to_owned(),
            parse_stop_signal(signal)?,
        );
    }
    Ok(out)
}
