//! Seccomp filters against the real kernel. Each case compiles a filter, forks a child that
//! installs it, makes raw syscalls and reports the resulting errno (or dies by a signal); the
//! parent checks the child's wait status. Installing without `no_new_privs` needs root.
#![allow(clippy::unwrap_used)]

mod seccomp {
    use std::ffi::CString;

    use berth_runtime::seccomp::{Filter, SeccompError, compile, profile_from_json};
    use nix::sys::signal::Signal;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    use oci_spec::runtime::{
        Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
        LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
        LinuxSyscallBuilder,
    };

    /// Exit code of a child whose filter failed to install.
    const INSTALL_FAILED: i32 = 255;
    const AF_ALG: libc::c_long = 38;
    const AF_VSOCK: libc::c_long = 40;
    const AF_KCM: libc::c_long = 41;
    const DOCKER_FIXTURE: &str = include_str!("fixtures/seccomp-docker-default-x86_64.json");

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Exited(i32),
        Signaled(Signal),
    }

    /// Runs `body` in a forked child under `filter`; `body` returns the child's exit code.
    fn run(filter: &Filter, body: impl FnOnce() -> i32) -> Outcome {
        // SAFETY: the child only makes raw syscalls and leaves through _exit; nothing in it
        // depends on locks another test thread might hold.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                // A SIGSYS death must not leave a core file behind.
                // SAFETY: plain prctl on the calling process.
                unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
                let code = match filter.install() {
                    Ok(()) => body(),
                    Err(_) => INSTALL_FAILED,
                };
                // SAFETY: ends the child without running the parent's destructors or atexit.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, code) => Outcome::Exited(code),
                WaitStatus::Signaled(_, signal, _) => Outcome::Signaled(signal),
                other => panic!("unexpected wait status {other:?}"),
            },
        }
    }

    /// Runs one syscall under `filter` in a child and returns its errno (0 on success).
    fn errno_under(filter: &Filter, call: impl FnOnce() -> libc::c_long) -> i32 {
        match run(filter, || errno_of(call())) {
            Outcome::Exited(INSTALL_FAILED) => panic!("filter failed to install"),
            Outcome::Exited(code) => code,
            other => panic!("child did not exit: {other:?}"),
        }
    }

    fn errno_of(rc: libc::c_long) -> i32 {
        if rc < 0 {
            nix::errno::Errno::last_raw()
        } else {
            0
        }
    }

    fn rule(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
        LinuxSyscallBuilder::default()
            .names(
                names
                    .iter()
                    .map(|name| name.to_string())
                    .collect::<Vec<_>>(),
            )
            .action(action)
            .build()
            .unwrap()
    }

    fn errno_rule(names: &[&str], errno: u32) -> LinuxSyscall {
        let mut rule = rule(names, LinuxSeccompAction::ScmpActErrno);
        rule.set_errno_ret(Some(errno));
        rule
    }

    fn with_args(mut rule: LinuxSyscall, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
        rule.set_args(Some(args));
        rule
    }

    fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
        LinuxSeccompArgBuilder::default()
            .index(index)
            .op(op)
            .value(value)
            .build()
            .unwrap()
    }

    fn masked(index: usize, mask: u64, value: u64) -> LinuxSeccompArg {
        LinuxSeccompArgBuilder::default()
            .index(index)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .value(mask)
            .value_two(value)
            .build()
            .unwrap()
    }

    fn profile(default: LinuxSeccompAction, syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(default)
            .syscalls(syscalls)
            .build()
            .unwrap()
    }

    /// Default ERRNO(EPERM) with just enough allowed for the child to leave.
    fn allowlist(mut extra: Vec<LinuxSyscall>) -> LinuxSeccomp {
        let mut syscalls = vec![rule(
            &["exit", "exit_group", "getpid", "write", "close", "wait4"],
            LinuxSeccompAction::ScmpActAllow,
        )];
        syscalls.append(&mut extra);
        profile(LinuxSeccompAction::ScmpActErrno, syscalls)
    }

    fn mkdir_probe() -> libc::c_long {
        // SAFETY: raw mkdir of a constant path; a filter hit returns before the path is read.
        unsafe {
            libc::syscall(
                libc::SYS_mkdir,
                c"/berth-seccomp-test-missing/dir".as_ptr(),
                0o700,
            )
        }
    }

    fn umask(value: u64) -> libc::c_long {
        // SAFETY: raw umask; it cannot fail and only changes the child's umask.
        unsafe { libc::syscall(libc::SYS_umask, value) }
    }

    fn socket(domain: libc::c_long, kind: libc::c_long) -> libc::c_long {
        // SAFETY: raw socket(2); the child exits right after, closing any descriptor.
        unsafe { libc::syscall(libc::SYS_socket, domain, kind, 0) }
    }

    fn personality(persona: libc::c_ulong) -> libc::c_long {
        // SAFETY: raw personality(2), affecting only the child.
        unsafe { libc::syscall(libc::SYS_personality, persona) }
    }

    /// A fork-like clone; a child that gets created leaves at once.
    fn clone_probe(flags: libc::c_long) -> libc::c_long {
        // SAFETY: without CLONE_VM and with a null stack the new process gets a copy of this
        // one, like fork; it exits immediately and the caller reaps it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags | libc::SIGCHLD as libc::c_long,
                0,
                0,
                0,
                0,
            )
        };
        if rc == 0 {
            // SAFETY: leave the new process without touching shared state.
            unsafe { libc::_exit(0) };
        }
        if rc > 0 {
            // SAFETY: reaps the child created just above.
            unsafe { libc::waitpid(rc as libc::pid_t, std::ptr::null_mut(), 0) };
        }
        rc
    }

    fn unshare(flags: libc::c_int) -> libc::c_long {
        // SAFETY: raw unshare(2) in the child.
        unsafe { libc::syscall(libc::SYS_unshare, flags) }
    }

    #[test]
    fn errno_rule_defaults_to_eperm() {
        let filter = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![rule(&["mkdir"], LinuxSeccompAction::ScmpActErrno)],
        ))
        .unwrap();
        assert_eq!(errno_under(&filter, mkdir_probe), libc::EPERM);
    }

    #[test]
    fn errno_rule_uses_errno_ret() {
        let filter = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![errno_rule(&["mkdir"], 38)],
        ))
        .unwrap();
        assert_eq!(errno_under(&filter, mkdir_probe), libc::ENOSYS);
    }

    #[test]
    fn default_errno_ret_applies_to_unlisted_syscalls() {
        let mut seccomp = allowlist(vec![]);
        seccomp.set_default_errno_ret(Some(libc::EACCES as u32));
        let filter = compile(&seccomp).unwrap();
        assert_eq!(errno_under(&filter, mkdir_probe), libc::EACCES);
    }

    #[test]
    fn errno_allowlist_still_runs_basic_syscalls() {
        let filter = compile(&allowlist(vec![])).unwrap();
        // SAFETY: raw getpid.
        assert_eq!(
            errno_under(&filter, || unsafe { libc::syscall(libc::SYS_getpid) }),
            0
        );
        // SAFETY: raw write of nothing to a closed descriptor: EBADF proves it got through.
        let write = || unsafe { libc::syscall(libc::SYS_write, -1, std::ptr::null::<u8>(), 0) };
        assert_eq!(errno_under(&filter, write), libc::EBADF);
        // SAFETY: raw getppid, which the allowlist leaves out.
        let getppid = || unsafe { libc::syscall(libc::SYS_getppid) };
        assert_eq!(errno_under(&filter, getppid), libc::EPERM);
    }

    #[test]
    fn personality_allowed_only_for_query() {
        let filter = compile(&allowlist(vec![with_args(
            rule(&["personality"], LinuxSeccompAction::ScmpActAllow),
            vec![arg(0, LinuxSeccompOperator::ScmpCmpEq, 0xffff_ffff)],
        )]))
        .unwrap();
        assert_eq!(errno_under(&filter, || personality(0xffff_ffff)), 0);
        assert_eq!(errno_under(&filter, || personality(0x0008)), libc::EPERM);
    }

    #[test]
    fn socket_vsock_blocked_by_not_equal() {
        let filter = compile(&allowlist(vec![with_args(
            rule(&["socket"], LinuxSeccompAction::ScmpActAllow),
            vec![arg(0, LinuxSeccompOperator::ScmpCmpNe, AF_VSOCK as u64)],
        )]))
        .unwrap();
        let unix = || socket(libc::AF_UNIX.into(), libc::SOCK_STREAM.into());
        assert_eq!(errno_under(&filter, unix), 0);
        let vsock = || socket(AF_VSOCK, libc::SOCK_STREAM.into());
        assert_eq!(errno_under(&filter, vsock), libc::EPERM);
    }

    #[test]
    fn conditions_on_one_argument_are_alternatives() {
        // Either test alone allows; as an AND nothing could match at all.
        let filter = compile(&allowlist(vec![with_args(
            rule(&["socket"], LinuxSeccompAction::ScmpActAllow),
            vec![
                arg(0, LinuxSeccompOperator::ScmpCmpLt, AF_ALG as u64),
                arg(0, LinuxSeccompOperator::ScmpCmpGt, AF_VSOCK as u64),
            ],
        )]))
        .unwrap();
        let stream = libc::SOCK_STREAM.into();
        assert_eq!(
            errno_under(&filter, || socket(libc::AF_UNIX.into(), stream)),
            0
        );
        assert_eq!(errno_under(&filter, || socket(AF_ALG, stream)), libc::EPERM);
        assert_eq!(
            errno_under(&filter, || socket(AF_VSOCK, stream)),
            libc::EPERM
        );
        assert_ne!(errno_under(&filter, || socket(AF_KCM, stream)), libc::EPERM);
    }

    #[test]
    fn conditions_on_different_arguments_must_all_hold() {
        let filter = compile(&allowlist(vec![with_args(
            rule(&["socket"], LinuxSeccompAction::ScmpActAllow),
            vec![
                arg(0, LinuxSeccompOperator::ScmpCmpEq, libc::AF_UNIX as u64),
                arg(1, LinuxSeccompOperator::ScmpCmpEq, libc::SOCK_STREAM as u64),
            ],
        )]))
        .unwrap();
        let (unix, inet) = (libc::AF_UNIX.into(), libc::AF_INET.into());
        let (stream, dgram) = (libc::SOCK_STREAM.into(), libc::SOCK_DGRAM.into());
        assert_eq!(errno_under(&filter, || socket(unix, stream)), 0);
        assert_eq!(errno_under(&filter, || socket(unix, dgram)), libc::EPERM);
        assert_eq!(errno_under(&filter, || socket(inet, stream)), libc::EPERM);
    }

    /// Which of umask(below), umask(at), umask(above) the rule `arg0 <op> at` blocks, as bits.
    fn blocked_pattern(op: LinuxSeccompOperator) -> u8 {
        const AT: u64 = 0o22;
        let filter = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![with_args(
                errno_rule(&["umask"], libc::EDOM as u32),
                vec![arg(0, op, AT)],
            )],
        ))
        .unwrap();
        [AT - 1, AT, AT + 1]
            .iter()
            .enumerate()
            .map(|(bit, &value)| {
                let blocked = errno_under(&filter, || umask(value)) == libc::EDOM;
                u8::from(blocked) << bit
            })
            .sum()
    }

    #[test]
    fn every_comparison_operator() {
        use LinuxSeccompOperator::*;
        let cases = [
            (ScmpCmpNe, 0b101),
            (ScmpCmpLt, 0b001),
            (ScmpCmpLe, 0b011),
            (ScmpCmpEq, 0b010),
            (ScmpCmpGe, 0b110),
            (ScmpCmpGt, 0b100),
        ];
        for (op, expected) in cases {
            assert_eq!(blocked_pattern(op), expected, "{op}");
        }
    }

    #[test]
    fn masked_equal_compares_masked_bits() {
        let filter = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![with_args(
                errno_rule(&["umask"], libc::EDOM as u32),
                vec![masked(0, 0o700, 0o500)],
            )],
        ))
        .unwrap();
        assert_eq!(errno_under(&filter, || umask(0o500)), libc::EDOM);
        assert_eq!(errno_under(&filter, || umask(0o577)), libc::EDOM);
        assert_eq!(errno_under(&filter, || umask(0o700)), 0);
        assert_eq!(errno_under(&filter, || umask(0o077)), 0);
    }

    #[test]
    fn clone_mask_allows_fork_but_not_namespaces() {
        let filter = compile(&allowlist(vec![with_args(
            rule(&["clone"], LinuxSeccompAction::ScmpActAllow),
            vec![masked(0, 0x7E02_0000, 0)],
        )]))
        .unwrap();
        assert_eq!(errno_under(&filter, || clone_probe(0)), 0);
        let newuser = || clone_probe(libc::CLONE_NEWUSER.into());
        assert_eq!(errno_under(&filter, newuser), libc::EPERM);
        let newuts = || clone_probe(libc::CLONE_NEWUTS.into());
        assert_eq!(errno_under(&filter, newuts), libc::EPERM);
        assert_eq!(
            errno_under(&filter, || unshare(libc::CLONE_NEWUTS)),
            libc::EPERM
        );
    }

    fn outcome_of(action: LinuxSeccompAction) -> Outcome {
        let filter = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![rule(&["mkdir"], action)],
        ))
        .unwrap();
        run(&filter, || errno_of(mkdir_probe()))
    }

    #[test]
    fn kill_actions_end_the_child_with_sigsys() {
        for action in [
            LinuxSeccompAction::ScmpActKillProcess,
            LinuxSeccompAction::ScmpActKill,
            LinuxSeccompAction::ScmpActKillThread,
            LinuxSeccompAction::ScmpActTrap,
        ] {
            assert_eq!(
                outcome_of(action),
                Outcome::Signaled(Signal::SIGSYS),
                "{action}"
            );
        }
    }

    #[test]
    fn log_allows_and_trace_without_tracer_fails_enosys() {
        assert_eq!(
            outcome_of(LinuxSeccompAction::ScmpActLog),
            Outcome::Exited(libc::ENOENT)
        );
        assert_eq!(
            outcome_of(LinuxSeccompAction::ScmpActTrace),
            Outcome::Exited(libc::ENOSYS)
        );
    }

    #[test]
    fn kill_as_default_action() {
        let mut seccomp = allowlist(vec![]);
        seccomp.set_default_action(LinuxSeccompAction::ScmpActKillProcess);
        let filter = compile(&seccomp).unwrap();
        assert_eq!(
            run(&filter, || errno_of(mkdir_probe())),
            Outcome::Signaled(Signal::SIGSYS)
        );
    }

    #[test]
    fn unknown_syscall_names_are_skipped() {
        let filter = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![rule(
                &["berth_no_such_syscall", "mkdir"],
                LinuxSeccompAction::ScmpActErrno,
            )],
        ))
        .unwrap();
        assert_eq!(errno_under(&filter, mkdir_probe), libc::EPERM);
    }

    #[test]
    fn flags_and_architectures_are_accepted() {
        let mut seccomp = profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![rule(&["mkdir"], LinuxSeccompAction::ScmpActErrno)],
        );
        let native_only = compile(&seccomp).unwrap().instructions();
        seccomp.set_architectures(Some(vec![
            Arch::ScmpArchNative,
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
            Arch::ScmpArchAarch64,
            Arch::ScmpArchArm,
        ]));
        seccomp.set_flags(Some(vec![
            LinuxSeccompFilterFlag::SeccompFilterFlagLog,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
        ]));
        let filter = compile(&seccomp).unwrap();
        assert!(filter.instructions() > native_only);
        assert_eq!(errno_under(&filter, mkdir_probe), libc::EPERM);
    }

    #[test]
    fn out_of_range_errno_is_an_error_naming_the_syscall() {
        let err = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![errno_rule(&["mkdir"], 4096)],
        ))
        .unwrap_err();
        assert!(matches!(
            err,
            SeccompError::InvalidErrnoRet { value: 4096, .. }
        ));
        assert!(err.to_string().contains("mkdir"), "{err}");

        let mut seccomp = profile(LinuxSeccompAction::ScmpActErrno, vec![]);
        seccomp.set_default_errno_ret(Some(70_000));
        let err = compile(&seccomp).unwrap_err();
        assert!(err.to_string().contains("default action"), "{err}");
    }

    #[test]
    fn out_of_range_argument_index_is_an_error() {
        let err = compile(&profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![with_args(
                rule(&["mkdir"], LinuxSeccompAction::ScmpActErrno),
                vec![arg(6, LinuxSeccompOperator::ScmpCmpEq, 0)],
            )],
        ))
        .unwrap_err();
        assert!(matches!(
            err,
            SeccompError::InvalidArgIndex { index: 6, .. }
        ));
        assert!(err.to_string().contains("mkdir"), "{err}");
    }

    #[test]
    fn invalid_action_operator_arch_and_flag_are_named() {
        let cases = [
            (r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#, "SCMP_ACT_BOGUS"),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],
                "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_BOGUS"}]}]}"#,
                "SCMP_CMP_BOGUS",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_BOGUS"]}"#,
                "SCMP_ARCH_BOGUS",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#,
                "SECCOMP_FILTER_FLAG_BOGUS",
            ),
        ];
        for (json, name) in cases {
            let err = profile_from_json(json).unwrap_err();
            assert!(matches!(err, SeccompError::Profile(_)));
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn notify_is_refused() {
        let mut seccomp = profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![rule(&["mkdir"], LinuxSeccompAction::ScmpActNotify)],
        );
        let err = compile(&seccomp).unwrap_err();
        assert!(matches!(err, SeccompError::NotifyWithoutListener { .. }));
        assert!(err.to_string().contains("mkdir"), "{err}");

        seccomp.set_listener_path(Some("/run/agent.sock".into()));
        let err = compile(&seccomp).unwrap_err();
        assert!(matches!(err, SeccompError::NotifyUnsupported { .. }));
        assert!(err.to_string().contains("not supported"), "{err}");

        let default_notify = profile(LinuxSeccompAction::ScmpActNotify, vec![]);
        let err = compile(&default_notify).unwrap_err();
        assert!(err.to_string().contains("default action"), "{err}");
    }

    /// fork + execve of /bin/true from inside the filtered child; 0 when it ran and exited 0.
    fn fork_exec_true(path: &CString, argv: &[*const libc::c_char]) -> libc::c_long {
        // SAFETY: the filtered child is single-threaded; the grandchild only calls execv and
        // _exit with arguments prepared before the first fork.
        unsafe {
            match libc::fork() {
                -1 => -1,
                0 => {
                    libc::execv(path.as_ptr(), argv.as_ptr());
                    libc::_exit(127)
                }
                pid => {
                    let mut status = 0;
                    if libc::waitpid(pid, &mut status, 0) < 0 {
                        return -1;
                    }
                    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                        0
                    } else {
                        *libc::__errno_location() = libc::ECHILD;
                        -1
                    }
                }
            }
        }
    }

    #[test]
    fn docker_default_fixture() {
        let seccomp = profile_from_json(DOCKER_FIXTURE).unwrap();
        let filter = compile(&seccomp).unwrap();

        let path = CString::new("/bin/true").unwrap();
        let argv = [path.as_ptr(), std::ptr::null()];
        assert_eq!(errno_under(&filter, || fork_exec_true(&path, &argv)), 0);
        assert_eq!(errno_under(&filter, mkdir_probe), libc::ENOENT);
        assert_eq!(errno_under(&filter, || clone_probe(0)), 0);

        assert_eq!(
            errno_under(&filter, || unshare(libc::CLONE_NEWUTS)),
            libc::EPERM
        );
        let newuser = || clone_probe(libc::CLONE_NEWUSER.into());
        assert_eq!(errno_under(&filter, newuser), libc::EPERM);
        // SAFETY: raw keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0).
        let keyctl = || unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
        assert_eq!(errno_under(&filter, keyctl), libc::EPERM);
        // SAFETY: raw clone3 with no arguments; the filter answers before they are read.
        let clone3 = || unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) };
        assert_eq!(errno_under(&filter, clone3), libc::ENOSYS);

        let stream = libc::SOCK_STREAM.into();
        assert_eq!(
            errno_under(&filter, || socket(libc::AF_UNIX.into(), stream)),
            0
        );
        assert_eq!(
            errno_under(&filter, || socket(AF_VSOCK, stream)),
            libc::EPERM
        );
        assert_eq!(errno_under(&filter, || socket(AF_ALG, stream)), libc::EPERM);
        assert_eq!(errno_under(&filter, || personality(0xffff_ffff)), 0);
        assert_eq!(
            errno_under(&filter, || personality(0x0040_0000)),
            libc::EPERM
        );
    }
}
