//! The generated seccomp filters against the real kernel: each case generates a spec, compiles
//! its `linux.seccomp` with the runtime's compiler, installs it in a forked child and reports
//! the errno of raw syscalls. Installing without `no_new_privs` needs CAP_SYS_ADMIN, so these
//! run as root and are skipped otherwise.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use berth_runtime::seccomp::{Filter, compile};
use berth_spec::{
    ContainerConfig, DEFAULT_CAPABILITIES, DockerProfile, NoVolumes, ProfileTarget, RuntimeContext,
    generate, native_arch,
};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use oci_spec::runtime::LinuxSeccomp;

const INSTALL_FAILED: i32 = 255;

fn root_or_skip() -> bool {
    if berth_testsupport::is_root() {
        return true;
    }
    eprintln!("skipped: seccomp kernel tests need root");
    false
}

/// The default profile resolved for `caps` on this host.
fn profile(caps: &[&str]) -> LinuxSeccomp {
    let caps: BTreeSet<String> = caps.iter().map(|c| (*c).to_owned()).collect();
    let target = ProfileTarget {
        caps: &caps,
        kernel: berth_spec::HostFacts::probe().kernel,
        arch: native_arch(),
    };
    DockerProfile::default_profile()
        .unwrap()
        .resolve(&target)
        .unwrap()
        .unwrap()
}

fn defaults_plus(extra: &[&'static str]) -> Vec<&'static str> {
    DEFAULT_CAPABILITIES
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

/// Runs `call` in a forked child under `filter` and returns its errno (0 on success).
fn errno_under(filter: &Filter, call: fn() -> libc::c_long) -> i32 {
    // SAFETY: the child only installs the filter, makes raw syscalls and leaves with _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = match filter.install() {
                Ok(()) => {
                    if call() < 0 {
                        nix::errno::Errno::last_raw()
                    } else {
                        0
                    }
                }
                Err(_) => INSTALL_FAILED,
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, INSTALL_FAILED) => panic!("filter failed to install"),
            WaitStatus::Exited(_, code) => code,
            other => panic!("child did not exit: {other:?}"),
        },
    }
}

fn unshare_uts() -> libc::c_long {
    // SAFETY: raw unshare(2) in the forked child only.
    unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) }
}

fn keyctl() -> libc::c_long {
    // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0).
    unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) }
}

fn mount_tmpfs() -> libc::c_long {
    // SAFETY: raw mount(2) of a tmpfs on a path that does not exist; the filter answers first
    // or the kernel fails with ENOENT; nothing is mounted in either case.
    unsafe {
        libc::syscall(
            libc::SYS_mount,
            c"none".as_ptr(),
            c"/berth-spec-no-such-dir".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null::<u8>(),
        )
    }
}

fn clone3() -> libc::c_long {
    // SAFETY: clone3 with no arguments; the filter answers before they are read, and without
    // a filter the kernel refuses the null pointer.
    unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) }
}

fn getpid() -> libc::c_long {
    // SAFETY: raw getpid.
    unsafe { libc::syscall(libc::SYS_getpid) }
}

#[test]
fn default_caps_block_unshare_keyctl_mount() {
    if !root_or_skip() {
        return;
    }
    let filter = compile(&profile(&DEFAULT_CAPABILITIES)).unwrap();
    assert_eq!(errno_under(&filter, getpid), 0);
    assert_eq!(errno_under(&filter, unshare_uts), libc::EPERM);
    assert_eq!(errno_under(&filter, keyctl), libc::EPERM);
    assert_eq!(errno_under(&filter, mount_tmpfs), libc::EPERM);
    assert_eq!(errno_under(&filter, clone3), libc::ENOSYS);
}

#[test]
fn sys_admin_in_the_effective_set_allows_unshare_and_mount() {
    if !root_or_skip() {
        return;
    }
    let filter = compile(&profile(&defaults_plus(&["CAP_SYS_ADMIN"]))).unwrap();
    // The child is root with every capability, so the kernel lets it through.
    assert_eq!(errno_under(&filter, unshare_uts), 0);
    assert_eq!(errno_under(&filter, mount_tmpfs), libc::ENOENT);
    // keyctl stays blocked whatever the capabilities.
    assert_eq!(errno_under(&filter, keyctl), libc::EPERM);
}

/// The whole path: a generated spec's seccomp section compiles and behaves the same.
#[test]
fn generated_spec_filter_compiles_and_blocks() {
    if !root_or_skip() {
        return;
    }
    let rootfs = tempfile::tempdir().unwrap();
    let ctx = RuntimeContext::new("abc", rootfs.path());
    let cfg = ContainerConfig {
        cmd: vec!["sh".into()],
        ..ContainerConfig::default()
    };
    let spec = generate(&cfg, &ctx, &NoVolumes).unwrap();
    let seccomp = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let filter = compile(&seccomp).unwrap();
    assert_eq!(errno_under(&filter, unshare_uts), libc::EPERM);

    let mut cfg = cfg;
    cfg.host.cap_add = vec!["SYS_ADMIN".into()];
    let spec = generate(&cfg, &ctx, &NoVolumes).unwrap();
    let seccomp = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert_eq!(errno_under(&compile(&seccomp).unwrap(), unshare_uts), 0);
}

/// The profile compiles for each architecture group without error (names unknown to
/// libseccomp on an ABI are skipped, as runc does).
#[test]
fn default_profile_compiles_for_other_cap_sets() {
    for caps in [
        vec![],
        defaults_plus(&["CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_SYS_NICE", "CAP_BPF"]),
        berth_spec::ALL_CAPABILITIES.to_vec(),
    ] {
        let filter = compile(&profile(&caps)).unwrap();
        assert!(filter.instructions() > 10);
    }
}
