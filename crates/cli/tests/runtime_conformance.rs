//! Runtime conformance suite: the same cases against berth's `berth runtime`, runc and crun.
//!
//! Every case starts real containers (busybox root filesystems from `berth-testsupport`) and
//! checks the result from inside the container (`/proc/self/status`, `mount`, `ls`, …) or from
//! the host (`state`, cgroup files). Needs root; without it every case is skipped.
//!
//! ```text
//! cargo test -p berth --test runtime_conformance                      # every available runtime
//! BERTH_CONFORMANCE_RUNTIMES=runc cargo test -p berth --test runtime_conformance
//! BERTH_CONFORMANCE_RUNTIMES=berth,runc cargo test -p berth --test runtime_conformance -- --nocapture
//! BERTH_CONFORMANCE_REPORT=/tmp/report.txt …                          # one line per result
//! ```
//!
//! Runtimes: `berth` (`<berth> runtime …`, included by default once `berth runtime features`
//! answers), `runc`, `crun`, and on a cgroup v1 hybrid host `crun-v1` (crun run where
//! /sys/fs/cgroup/unified is unmounted, because crun 1.8 refuses hybrid hosts outright).
//! The harness is in `conformance/mod.rs`.

mod conformance;

use std::fs;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use conformance::{
    CaseResult, Ctx, RuntimeUnderTest, WAIT_TIMEOUT, cgroup_v1_dir, ensure, expect_contains,
    host_sh, host_sysctl, inode, ns_link, push, sha256, wait_until,
};
use serde_json::{Value, json};

macro_rules! conformance_test {
    ($test:ident) => {
        conformance_test!($test, []);
    };
    ($test:ident, [$(($rt:expr, $why:expr)),* $(,)?]) => {
        #[test]
        fn $test() {
            conformance::check(stringify!($test), cases::$test, &[$(($rt, $why)),*]);
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The list of cases. A runtime known to fail a case is declared with the reason.

// lifecycle
conformance_test!(lifecycle_create_start_stop_delete);
conformance_test!(run_returns_exit_code);
conformance_test!(
    kill_signal_names_and_numbers,
    [(
        "crun-v1",
        "crun 1.8 exits 0 and does nothing for an unknown signal name (kill <id> SIGNOPE)"
    )]
);
conformance_test!(delete_running_needs_force);
conformance_test!(state_of_unknown_id_fails);
conformance_test!(list_shows_containers);
conformance_test!(exec_joins_container);
// process
conformance_test!(process_args_env_cwd);
conformance_test!(process_user_and_groups);
conformance_test!(process_umask);
conformance_test!(process_rlimit_nofile);
conformance_test!(process_capabilities_root);
conformance_test!(process_capabilities_ambient_non_root);
conformance_test!(process_no_new_privileges);
conformance_test!(process_oom_score_adj);
conformance_test!(process_terminal_console_socket);
// root, mounts, paths, devices
conformance_test!(root_readonly);
conformance_test!(
    hostname_and_domainname,
    [(
        "runc",
        "runc 1.1.5 ignores linux.domainname: /proc/sys/kernel/domainname stays (none)"
    )]
);
conformance_test!(mounts_bind_ro_rw_and_tmpfs);
conformance_test!(mounts_propagation_slave_and_private);
conformance_test!(masked_paths);
conformance_test!(readonly_paths);
conformance_test!(default_devices);
conformance_test!(devices_with_major_minor);
// namespaces
conformance_test!(ns_pid);
conformance_test!(ns_mount_hides_host_mounts);
conformance_test!(ns_private_uts_ipc_net_cgroup);
conformance_test!(ns_absent_type_is_shared_with_host);
conformance_test!(ns_user_with_mappings);
conformance_test!(ns_join_netns_by_path);
// cgroups v1
conformance_test!(cgroup_memory_limit_oom_kills);
conformance_test!(cgroup_pids_limit_stops_fork);
conformance_test!(cgroup_cpu_shares_quota_cpuset);
conformance_test!(cgroup_devices_deny_all_keeps_default_devices);
// sysctl
conformance_test!(sysctl_namespaced_applied);
conformance_test!(sysctl_non_namespaced_rejected);
conformance_test!(sysctl_plus_smuggling_cve_2022_0811);
// seccomp
conformance_test!(seccomp_errno_mkdir);
// hooks
conformance_test!(hooks_run_once_with_state);
conformance_test!(
    hooks_called_at_lifecycle_points,
    [(
        "runc",
        "runc 1.1.5 runs poststart hooks during create, before start (runtime-tools poststart fails too)"
    )]
);
conformance_test!(hooks_failing_prestart_fails_create);
conformance_test!(
    hooks_failing_poststart_poststop_only_warn,
    [(
        "runc",
        "runc 1.1.5 fails create when a poststart hook fails (it runs poststart during create)"
    ),]
);
// escapes
conformance_test!(escape_no_leaked_fds_cve_2024_21626);
conformance_test!(escape_cwd_proc_self_fd_cve_2024_21626);
conformance_test!(escape_proc_symlink_in_rootfs);
conformance_test!(escape_runtime_exe_overwrite_cve_2019_5736);
// bad input
conformance_test!(bad_malformed_config);
conformance_test!(bad_config_without_process);
conformance_test!(bad_missing_rootfs);
conformance_test!(bad_unknown_namespace);
conformance_test!(
    bad_invalid_capability,
    [
        (
            "runc",
            "runc 1.1 warns \"ignoring unknown or unavailable capabilities\" and creates the container"
        ),
        (
            "crun-v1",
            "crun 1.8 silently ignores an unknown capability name and creates the container"
        ),
    ]
);
conformance_test!(bad_container_id);

// ---------------------------------------------------------------------------------------------

/// Capability numbers used by the cases (linux/capability.h).
fn cap_bit(name: &str) -> u64 {
    let n = match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_FSETID" => 4,
        "CAP_FOWNER" => 3,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_SETPCAP" => 8,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        "CAP_SETFCAP" => 31,
        other => panic!("cap_bit: add {other}"),
    };
    1u64 << n
}

fn cap_mask(names: &[&str]) -> String {
    format!(
        "{:016x}",
        names.iter().map(|n| cap_bit(n)).fold(0, |a, b| a | b)
    )
}

/// The value of `key:` in a /proc/<pid>/status dump.
fn status_field<'s>(status: &'s str, key: &str) -> Option<&'s str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// A container waits until the host creates `/tmp/go` in its rootfs; the case then touches it.
const WAIT_FOR_GO: &str =
    "i=0; while [ ! -e /tmp/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done";

fn release(b: &berth_testsupport::Bundle) -> CaseResult {
    fs::write(b.rootfs().join("tmp/go"), "").map_err(|e| format!("touch go: {e}"))
}

/// A failed command must exit non-zero with a one-line error on stderr, and leave nothing
/// behind: no entry in `--root`, no host mount mentioning the bundle.
fn expect_clean_refusal(ctx: &Ctx, out: &conformance::Out, bundle: &Path) -> CaseResult {
    ensure(out.code != 0, || {
        format!("expected a failure: {}", out.describe())
    })?;
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    ensure(lines.len() == 1, || {
        format!(
            "expected a one-line error on stderr, got {} lines: {:?}",
            lines.len(),
            out.stderr
        )
    })?;
    let left = ctx.root_entries();
    ensure(left.is_empty(), || format!("left in --root: {left:?}"))?;
    let mounts = Ctx::host_mounts_under(bundle);
    ensure(mounts.is_empty(), || format!("mounts left: {mounts:?}"))
}

mod cases {
    use super::*;

    // ----- lifecycle ---------------------------------------------------------------------

    pub fn lifecycle_create_start_stop_delete(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(&format!("{WAIT_FOR_GO}; echo finished"), |_| {})?;
        let id = ctx.id();
        let pid_file = ctx.scratch("pid")?.join("pidfile");
        let (bp, pf) = (
            b.path().display().to_string(),
            pid_file.display().to_string(),
        );
        ctx.rt(&["create", "--bundle", &bp, "--pid-file", &pf, &id])?
            .ok()?;
        let st = ctx.state(&id)?;
        ensure(st["status"] == "created", || format!("after create: {st}"))?;
        ensure(st["id"] == id.as_str(), || format!("state id: {st}"))?;
        let pid = ctx.pid(&id)?;
        ensure(Path::new(&format!("/proc/{pid}")).exists(), || {
            format!("created pid {pid} does not exist")
        })?;
        let written = fs::read_to_string(&pid_file).unwrap_or_default();
        ensure(written.trim() == pid.to_string(), || {
            format!("--pid-file holds {written:?}, state says {pid}")
        })?;
        let bundle = st["bundle"].as_str().unwrap_or_default();
        ensure(
            Path::new(bundle).canonicalize().ok() == b.path().canonicalize().ok(),
            || format!("state bundle {bundle:?} is not {}", b.path().display()),
        )?;
        ctx.start(&id)?;
        let st = ctx.status(&id)?;
        ensure(st == "running", || format!("after start: {st}"))?;
        ensure(ctx.pid(&id)? == pid, || "pid changed on start".into())?;
        // A second start is an error.
        let again = ctx.rt(&["start", &id])?;
        ensure(again.code != 0, || {
            format!("second start succeeded: {}", again.describe())
        })?;
        release(&b)?;
        ctx.wait_status(&id, "stopped", WAIT_TIMEOUT)?;
        ctx.rt(&["delete", &id])?.ok()?;
        let gone = ctx.rt(&["state", &id])?;
        ensure(gone.code != 0, || {
            format!("state after delete: {}", gone.describe())
        })?;
        let left = ctx.root_entries();
        ensure(left.is_empty(), || {
            format!("left in --root after delete: {left:?}")
        })
    }

    pub fn run_returns_exit_code(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        for code in [0, 3, 42] {
            let b = ctx.sh_bundle(&format!("exit {code}"), |_| {})?;
            let out = ctx.run(&ctx.id(), &b)?;
            ensure(out.code == code, || {
                format!("exit {code}: {}", out.describe())
            })?;
        }
        Ok(())
    }

    pub fn kill_signal_names_and_numbers(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let script = "trap 'echo term > /tmp/got; exit 0' TERM; trap 'echo usr1 >> /tmp/got' USR1; \
                      : > /tmp/ready; while true; do sleep 0.1; done";
        // (signals as given to `kill`, what the container records)
        let plans: [(&[&str], &str); 4] = [
            (&["TERM"], "term"),
            (&["SIGTERM"], "term"),
            (&["10", "SIGKILL"], "usr1"),
            (&["9"], ""),
        ];
        for (signals, recorded) in plans {
            let b = ctx.sh_bundle(script, |_| {})?;
            let id = ctx.id();
            let out = ctx.create(&id, &b)?;
            ctx.start(&id)?;
            // The shell says when its traps are in place.
            let ready = b.rootfs().join("tmp/ready");
            ensure(
                wait_until(Duration::from_secs(10), || ready.exists()),
                || format!("{id} never became ready: {}", out.stdout_now()),
            )?;
            for sig in signals {
                ctx.rt(&["kill", &id, sig])?.ok()?;
                if *sig == "10" {
                    let got = b.rootfs().join("tmp/got");
                    wait_until(Duration::from_secs(5), || got.exists());
                    ensure(ctx.status(&id)? == "running", || {
                        format!("USR1 (10) should not stop the container {id}")
                    })?;
                }
            }
            ctx.wait_status(&id, "stopped", WAIT_TIMEOUT)
                .map_err(|e| format!("after kill {signals:?}: {e}"))?;
            let got = fs::read_to_string(b.rootfs().join("tmp/got")).unwrap_or_default();
            ensure(got.trim() == recorded, || {
                format!("kill {signals:?}: container recorded {got:?}, expected {recorded:?}")
            })?;
            // Signalling a stopped container is an error.
            let late = ctx.rt(&["kill", &id, "KILL"])?;
            ensure(late.code != 0, || {
                format!("kill of a stopped container: {}", late.describe())
            })?;
        }
        // An unknown signal is refused and the container keeps running.
        let b = ctx.sh_bundle(script, |_| {})?;
        let id = ctx.id();
        ctx.create(&id, &b)?;
        ctx.start(&id)?;
        let bad = ctx.rt(&["kill", &id, "SIGNOPE"])?;
        ensure(bad.code != 0, || {
            format!("kill with SIGNOPE: {}", bad.describe())
        })?;
        ensure(ctx.status(&id)? == "running", || {
            "container died of SIGNOPE".into()
        })
    }

    pub fn delete_running_needs_force(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(WAIT_FOR_GO, |_| {})?;
        let id = ctx.id();
        ctx.create(&id, &b)?;
        ctx.start(&id)?;
        let pid = ctx.pid(&id)?;
        let del = ctx.rt(&["delete", &id])?;
        ensure(del.code != 0, || {
            format!("delete of a running container: {}", del.describe())
        })?;
        ensure(ctx.status(&id)? == "running", || {
            "not running after refused delete".into()
        })?;
        ctx.rt(&["delete", "--force", &id])?.ok()?;
        let st = ctx.rt(&["state", &id])?;
        ensure(st.code != 0, || {
            format!("state after delete --force: {}", st.describe())
        })?;
        let dead = wait_until(Duration::from_secs(5), || {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(true)
        });
        ensure(dead, || format!("init {pid} survives delete --force"))?;
        let left = ctx.root_entries();
        ensure(left.is_empty(), || format!("left in --root: {left:?}"))
    }

    pub fn state_of_unknown_id_fails(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let out = ctx.rt(&["state", &ctx.id()])?;
        ensure(out.code != 0, || {
            format!("state of an unknown id: {}", out.describe())
        })?;
        ensure(!out.stderr.trim().is_empty(), || {
            "no error message on stderr".into()
        })?;
        let out = ctx.rt(&["delete", &ctx.id()])?;
        ensure(out.code != 0, || {
            format!("delete of an unknown id: {}", out.describe())
        })?;
        let out = ctx.rt(&["kill", &ctx.id(), "TERM"])?;
        ensure(out.code != 0, || {
            format!("kill of an unknown id: {}", out.describe())
        })
    }

    pub fn list_shows_containers(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(WAIT_FOR_GO, |_| {})?;
        let (a, c) = (ctx.id(), ctx.id());
        ctx.create(&a, &b)?;
        ctx.create(&c, &b)?;
        ctx.start(&c)?;
        let list = ctx.rt(&["list"])?.ok()?;
        for (id, status) in [(&a, "created"), (&c, "running")] {
            let line = list
                .stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(id));
            let line = line.ok_or_else(|| format!("{id} missing from list: {:?}", list.stdout))?;
            expect_contains("list line", line, status)?;
        }
        ctx.rt(&["delete", "--force", &a])?.ok()?;
        let list = ctx.rt(&["list"])?.ok()?;
        ensure(!list.stdout.contains(&a), || {
            format!("deleted {a} still listed")
        })?;
        let quiet = ctx.rt(&["list", "-q"])?.ok()?;
        ensure(quiet.stdout.lines().map(str::trim).eq([c.as_str()]), || {
            format!("list -q: {:?}", quiet.stdout)
        })
    }

    pub fn exec_joins_container(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(WAIT_FOR_GO, |_| {})?;
        let id = ctx.id();
        ctx.create(&id, &b)?;
        ctx.start(&id)?;
        let pid = ctx.pid(&id)?;
        let out = ctx.rt(&[
            "exec",
            &id,
            "sh",
            "-c",
            "echo exec-ok; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; exit 5",
        ])?;
        ensure(out.code == 5, || {
            format!("exec exit code: {}", out.describe())
        })?;
        expect_contains("exec output", &out.stdout, "exec-ok")?;
        for ns in ["pid", "mnt"] {
            let want = ns_link(&format!("/proc/{pid}/ns/{ns}"))?;
            expect_contains(&format!("exec {ns} namespace"), &out.stdout, &want)?;
        }
        let ps = ctx.rt(&["ps", "--format", "json", &id])?.ok()?;
        let pids: Vec<i64> = serde_json::from_str(&ps.stdout)
            .map_err(|e| format!("ps json {:?}: {e}", ps.stdout))?;
        ensure(pids.contains(&i64::from(pid)), || {
            format!("ps {pids:?} lacks init {pid}")
        })
    }

    // ----- process -----------------------------------------------------------------------

    pub fn process_args_env_cwd(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.bundle(
            &[
                "sh",
                "-c",
                "printf '<%s>' \"$0\" \"$@\"; echo; echo \"FOO=$FOO\"; pwd",
                "zero",
                "a b",
                "",
                "c",
            ],
            |c| {
                push(&mut c["process"]["env"], json!("FOO=bar  baz"));
                c["process"]["cwd"] = json!("/work/dir");
            },
        )?;
        let out = ctx.run_ok(&b)?;
        let want = "<zero><a b><><c>\nFOO=bar  baz\n/work/dir\n";
        ensure(out == want, || format!("got {out:?}, want {want:?}"))
    }

    pub fn process_user_and_groups(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
            |c| {
                c["process"]["user"] =
                    json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 2000]});
            },
        )?;
        let out = ctx.run_ok(&b)?;
        let lines: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let want = [
            "1000",
            "1001",
            "Uid: 1000 1000 1000 1000",
            "Gid: 1001 1001 1001 1001",
            "Groups: 10 2000",
        ];
        ensure(lines == want, || format!("got {lines:?}, want {want:?}"))
    }

    pub fn process_umask(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d",
            |c| {
                c["process"]["user"]["umask"] = json!(0o027);
            },
        )?;
        let out = ctx.run_ok(&b)?;
        let got: Vec<&str> = out.split_whitespace().collect();
        ensure(got == ["0027", "640", "750"], || {
            format!("umask 0027: got {got:?}")
        })
    }

    pub fn process_rlimit_nofile(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "ulimit -n; ulimit -Hn; grep 'Max open files' /proc/self/limits",
            |c| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768}]);
            },
        )?;
        let out = ctx.run_ok(&b)?;
        let got: Vec<&str> = out.split_whitespace().collect();
        let want = ["512", "768", "Max", "open", "files", "512", "768", "files"];
        ensure(got == want, || {
            format!("RLIMIT_NOFILE 512/768: got {out:?}")
        })
    }

    /// Reads the Cap* lines of the container's own status.
    fn caps_of(ctx: &Ctx, edit: impl FnOnce(&mut Value)) -> Result<String, String> {
        let b = ctx.sh_bundle("grep ^Cap /proc/self/status", edit)?;
        ctx.run_ok(&b)
    }

    fn expect_caps(status: &str, want: &[(&str, String)]) -> CaseResult {
        for (key, mask) in want {
            let got = status_field(status, key).unwrap_or("<missing>");
            ensure(got == mask, || {
                format!("{key}: got {got}, want {mask}; status: {status:?}")
            })?;
        }
        Ok(())
    }

    /// Docker's default set for root: bounding = permitted = effective, inheritable and ambient
    /// empty (CVE-2022-24769).
    pub fn process_capabilities_root(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let docker = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        let status = caps_of(&ctx, |c| {
            c["process"]["capabilities"] = json!({
                "bounding": docker, "permitted": docker, "effective": docker,
                "inheritable": [], "ambient": []
            });
            c["process"]["noNewPrivileges"] = json!(false);
        })?;
        let all = cap_mask(&docker);
        expect_caps(
            &status,
            &[
                ("CapBnd", all.clone()),
                ("CapPrm", all.clone()),
                ("CapEff", all),
                ("CapInh", cap_mask(&[])),
                ("CapAmb", cap_mask(&[])),
            ],
        )
    }

    /// A non-root user keeps only ambient capabilities across execve; each set as asked.
    pub fn process_capabilities_ambient_non_root(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let bnd = [
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_SETUID",
        ];
        let kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
        let status = caps_of(&ctx, |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            c["process"]["capabilities"] = json!({
                "bounding": bnd, "permitted": kept, "effective": kept,
                "inheritable": kept, "ambient": kept
            });
        })?;
        expect_caps(
            &status,
            &[
                ("CapBnd", cap_mask(&bnd)),
                ("CapPrm", cap_mask(&kept)),
                ("CapEff", cap_mask(&kept)),
                ("CapInh", cap_mask(&kept)),
                ("CapAmb", cap_mask(&kept)),
            ],
        )
    }

    pub fn process_no_new_privileges(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        for (nnp, want) in [(true, "1"), (false, "0")] {
            let b = ctx.sh_bundle("cat /proc/self/status", |c| {
                c["process"]["noNewPrivileges"] = json!(nnp);
            })?;
            let out = ctx.run_ok(&b)?;
            let got = status_field(&out, "NoNewPrivs").unwrap_or("<missing>");
            ensure(got == want, || {
                format!("noNewPrivileges={nnp}: NoNewPrivs {got}")
            })?;
        }
        Ok(())
    }

    pub fn process_oom_score_adj(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("cat /proc/self/oom_score_adj", |c| {
            c["process"]["oomScoreAdj"] = json!(234);
        })?;
        let out = ctx.run_ok(&b)?;
        ensure(out.trim() == "234", || format!("oom_score_adj: {out:?}"))
    }

    /// `create --console-socket`: the runtime sends the pty master over the socket with
    /// SCM_RIGHTS; the container's output is read from it.
    pub fn process_terminal_console_socket(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "echo tty-ok; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; tty; stty size",
            |c| {
                c["process"]["terminal"] = json!(true);
                c["process"]["consoleSize"] = json!({"height": 33, "width": 111});
            },
        )?;
        let sock = ctx.scratch("console")?.join("sock");
        let listener =
            UnixListener::bind(&sock).map_err(|e| format!("bind {}: {e}", sock.display()))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let id = ctx.id();
        let bp = b.path().display().to_string();
        let sp = sock.display().to_string();
        ctx.rt(&["create", "--bundle", &bp, "--console-socket", &sp, &id])?
            .ok()?;
        let master = receive_fd(&listener, Duration::from_secs(10))?;
        ctx.start(&id)?;
        let out = read_pty(master, Duration::from_secs(10));
        ctx.wait_status(&id, "stopped", WAIT_TIMEOUT)?;
        expect_contains("pty output", &out, "tty-ok")?;
        expect_contains("pty output", &out, "stdio-is-a-tty")?;
        expect_contains("pty output", &out, "/dev/")?;
        expect_contains("pty output (consoleSize)", &out, "33 111")
    }

    fn receive_fd(listener: &UnixListener, timeout: Duration) -> Result<OwnedFd, String> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(format!("no connection on the console socket: {e}")),
            }
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 2]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(|e| format!("recvmsg on the console socket: {e}"))?;
        for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
            if let ControlMessageOwned::ScmRights(fds) = c
                && let Some(fd) = fds.first()
            {
                // SAFETY: SCM_RIGHTS just installed this descriptor in our table; nobody else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
        Err("the console socket message carried no file descriptor".into())
    }

    /// Reads a pty master until the slave side is gone (EIO) or `timeout`.
    fn read_pty(master: OwnedFd, timeout: Duration) -> String {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let _ = fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        let mut f = fs::File::from(master);
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => break, // EIO: every slave fd is closed.
            }
        }
        String::from_utf8_lossy(&out).replace('\r', "")
    }

    // ----- root, mounts, paths, devices --------------------------------------------------

    pub fn root_readonly(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "touch /newfile 2>&1; echo rc=$?; grep -E '^[^ ]+ / ' /proc/mounts",
            |c| {
                c["root"]["readonly"] = json!(true);
            },
        )?;
        let out = ctx.run_ok(&b)?;
        expect_contains("touch on a read-only root", &out, "Read-only file system")?;
        expect_contains("touch on a read-only root", &out, "rc=1")?;
        let root_line = out.lines().last().unwrap_or_default();
        let opts = root_line.split_whitespace().nth(3).unwrap_or_default();
        ensure(opts.split(',').any(|o| o == "ro"), || {
            format!("/ not mounted ro: {root_line:?}")
        })?;
        ensure(!b.rootfs().join("newfile").exists(), || {
            "the file was created on the host".into()
        })
    }

    pub fn hostname_and_domainname(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let host_before = host_sysctl("kernel.hostname")?;
        let b = ctx.sh_bundle("hostname; cat /proc/sys/kernel/domainname", |c| {
            c["hostname"] = json!("conf-host");
            c["domainname"] = json!("conf.example");
        })?;
        let out = ctx.run_ok(&b)?;
        ensure(out == "conf-host\nconf.example\n", || {
            format!("got {out:?}")
        })?;
        ensure(host_sysctl("kernel.hostname")? == host_before, || {
            "host hostname changed".into()
        })
    }

    pub fn mounts_bind_ro_rw_and_tmpfs(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let host = ctx.scratch("hostdir")?;
        fs::write(host.join("f"), "hello\n").map_err(|e| e.to_string())?;
        let hp = host.display().to_string();
        let b = ctx.sh_bundle(
            "cat /mnt/ro/f; (echo x > /mnt/ro/new) 2>&1 || echo ro-refused; \
             echo rw > /mnt/rw/new && echo rw-ok; stat -c %a /mnt/tmp; grep ' /mnt/tmp ' /proc/mounts; \
             head -c 2000000 /dev/zero > /mnt/tmp/big 2>&1 || echo tmpfs-full",
            |c| {
                push(&mut c["mounts"], json!({"destination": "/mnt/ro", "type": "bind", "source": hp, "options": ["rbind", "ro"]}));
                push(&mut c["mounts"], json!({"destination": "/mnt/rw", "type": "bind", "source": hp, "options": ["rbind", "rw"]}));
                push(&mut c["mounts"], json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1770", "nosuid"]}));
            },
        )?;
        let out = ctx.run_ok(&b)?;
        expect_contains("ro bind", &out, "hello")?;
        expect_contains("write to ro bind", &out, "Read-only file system")?;
        expect_contains("write to ro bind", &out, "ro-refused")?;
        expect_contains("write to rw bind", &out, "rw-ok")?;
        let written = fs::read_to_string(host.join("new")).unwrap_or_default();
        ensure(written == "rw\n", || {
            format!("rw bind write not on the host: {written:?}")
        })?;
        expect_contains("tmpfs mode", &out, "\n1770\n")?;
        expect_contains("tmpfs options", &out, "size=1024k")?;
        expect_contains("tmpfs options", &out, "mode=1770")?;
        expect_contains("tmpfs size limit", &out, "tmpfs-full")
    }

    /// A bind mount with `rslave` sees a mount made on the host after start; `rprivate` does not.
    pub fn mounts_propagation_slave_and_private(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let shared = ctx.scratch("shared")?;
        fs::create_dir(shared.join("sub")).map_err(|e| e.to_string())?;
        let sp = shared.display().to_string();
        host_sh(&format!(
            "mount --bind '{sp}' '{sp}' && mount --make-shared '{sp}'"
        ))?;
        {
            let sp = sp.clone();
            ctx.on_drop(move || {
                let _ = host_sh(&format!(
                    "umount -l '{sp}/sub' 2>/dev/null; umount -l '{sp}'"
                ));
            });
        }
        let b = ctx.sh_bundle(
            &format!("{WAIT_FOR_GO}; cat /mnt/slave/sub/marker; echo private:$(ls /mnt/private/sub)"),
            |c| {
                c["linux"]["rootfsPropagation"] = json!("rslave");
                push(&mut c["mounts"], json!({"destination": "/mnt/slave", "type": "bind", "source": sp, "options": ["rbind", "rslave"]}));
                push(&mut c["mounts"], json!({"destination": "/mnt/private", "type": "bind", "source": sp, "options": ["rbind", "rprivate"]}));
            },
        )?;
        let id = ctx.id();
        let out = ctx.create(&id, &b)?;
        ctx.start(&id)?;
        host_sh(&format!(
            "mount -t tmpfs conf-prop '{sp}/sub' && echo propagated > '{sp}/sub/marker'"
        ))?;
        release(&b)?;
        ctx.wait_status(&id, "stopped", WAIT_TIMEOUT)?;
        let got = out.stdout_now();
        ensure(got == "propagated\nprivate:\n", || {
            format!("want the host mount in /mnt/slave only; got {got:?}")
        })
    }

    pub fn masked_paths(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "for f in /proc/keys /proc/timer_list /etc/secret; do echo \"$f $(cat $f | wc -c)\"; done; \
             for d in /proc/acpi /sys/firmware /secretdir; do echo \"$d $(ls -A $d | wc -l)\"; done; \
             touch /secretdir/new 2>/dev/null && echo masked-dir-writable; true",
            |c| {
                c["linux"]["maskedPaths"] =
                    json!(["/proc/keys", "/proc/timer_list", "/proc/acpi", "/sys/firmware", "/etc/secret", "/secretdir"]);
            },
        )?;
        fs::write(b.rootfs().join("etc/secret"), "TOPSECRET\n").map_err(|e| e.to_string())?;
        fs::create_dir(b.rootfs().join("secretdir")).map_err(|e| e.to_string())?;
        fs::write(b.rootfs().join("secretdir/a"), "x").map_err(|e| e.to_string())?;
        // Only meaningful if the host paths have content.
        for p in ["/proc/acpi", "/sys/firmware", "/proc/timer_list"] {
            ensure(Path::new(p).exists(), || {
                format!("{p} does not exist on this host")
            })?;
        }
        let out = ctx.run_ok(&b)?;
        let want = "/proc/keys 0\n/proc/timer_list 0\n/etc/secret 0\n/proc/acpi 0\n/sys/firmware 0\n/secretdir 0\n";
        ensure(out == want, || format!("got {out:?}, want {want:?}"))
    }

    pub fn readonly_paths(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "(echo conf > /proc/sys/kernel/hostname) 2>&1; touch /rodir/new 2>&1; cat /rodir/f",
            |c| {
                c["linux"]["readonlyPaths"] = json!(["/proc/sys", "/rodir"]);
            },
        )?;
        fs::create_dir(b.rootfs().join("rodir")).map_err(|e| e.to_string())?;
        fs::write(b.rootfs().join("rodir/f"), "readable\n").map_err(|e| e.to_string())?;
        let out = ctx.run_ok(&b)?;
        ensure(out.matches("Read-only file system").count() == 2, || {
            format!("want two EROFS: {out:?}")
        })?;
        expect_contains("read of a read-only path", &out, "readable")
    }

    pub fn default_devices(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
             echo ptmx=$(readlink /dev/ptmx); ls /dev/pts/ptmx; head -c 5 /dev/zero | wc -c; \
             echo x > /dev/full; echo x > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c",
            |_| {},
        )?;
        let out = ctx.run(&ctx.id(), &b)?;
        ensure(out.code == 0, || out.describe())?;
        let got = out.stdout;
        for want in [
            "/dev/null character special file 1:3",
            "/dev/zero character special file 1:5",
            "/dev/full character special file 1:7",
            "/dev/random character special file 1:8",
            "/dev/urandom character special file 1:9",
            "/dev/tty character special file 5:0",
            "ptmx=pts/ptmx",
            "/dev/pts/ptmx",
            "\n5\n",
            "null-ok",
            "\n4\n",
        ] {
            expect_contains("devices", &got, want)?;
        }
        expect_contains("write to /dev/full", &out.stderr, "No space left on device")
    }

    pub fn devices_with_major_minor(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "stat -c '%n %F %t:%T %a %u:%g' /dev/conf-null /dev/conf-zero; \
             echo x > /dev/conf-null && echo write-ok; head -c 3 /dev/conf-zero | wc -c",
            |c| {
                c["linux"]["devices"] = json!([
                    {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0},
                    {"path": "/dev/conf-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o604, "uid": 1000, "gid": 1001}
                ]);
            },
        )?;
        let out = ctx.run_ok(&b)?;
        let want = "/dev/conf-null character special file 1:3 666 0:0\n\
                    /dev/conf-zero character special file 1:5 604 1000:1001\nwrite-ok\n3\n";
        ensure(out == want, || format!("got {out:?}, want {want:?}"))
    }

    // ----- namespaces --------------------------------------------------------------------

    pub fn ns_pid(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("echo pid=$$; echo /proc/[0-9]*", |_| {})?;
        let out = ctx.run_ok(&b)?;
        ensure(out == "pid=1\n/proc/1\n", || {
            format!("want only pid 1 visible: {out:?}")
        })
    }

    pub fn ns_mount_hides_host_mounts(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let m = ctx.scratch("hostonly")?;
        let mp = m.display().to_string();
        host_sh(&format!("mount -t tmpfs conf-hostonly '{mp}'"))?;
        ctx.on_drop(move || {
            let _ = host_sh(&format!("umount -l '{mp}'"));
        });
        let b = ctx.sh_bundle(
            "readlink /proc/self/ns/mnt; cat /proc/self/mountinfo",
            |_| {},
        )?;
        let out = ctx.run_ok(&b)?;
        ensure(
            !out.contains("conf-hostonly") && !out.contains(&m.display().to_string()),
            || format!("host mount visible in the container: {out:?}"),
        )?;
        let host = ns_link("/proc/self/ns/mnt")?;
        ensure(!out.contains(&host), || {
            "container shares the host mount namespace".into()
        })
    }

    pub fn ns_private_uts_ipc_net_cgroup(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "for n in uts ipc net cgroup pid mnt; do echo \"$n $(readlink /proc/self/ns/$n)\"; done; \
             echo ifaces: $(ls /sys/class/net); tail -n +3 /proc/net/dev | cut -d: -f1; \
             cut -d: -f3 /proc/self/cgroup | sort -u",
            |_| {},
        )?;
        let out = ctx.run_ok(&b)?;
        for n in ["uts", "ipc", "net", "cgroup", "pid", "mnt"] {
            let host = ns_link(&format!("/proc/self/ns/{n}"))?;
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{n} ")))
                .unwrap_or_default();
            ensure(!line.is_empty() && !line.contains(&host), || {
                format!("{n} namespace not private: container {line:?}, host {host}")
            })?;
        }
        expect_contains("network interfaces", &out, "ifaces: lo\n")?;
        ensure(
            out.lines().filter(|l| l.trim() == "lo").count() == 1,
            || format!("/proc/net/dev: {out:?}"),
        )?;
        // In a private cgroup namespace every hierarchy path is the namespace root.
        ensure(out.lines().last() == Some("/"), || {
            format!("/proc/self/cgroup paths: {out:?}")
        })
    }

    /// A namespace type absent from the spec is shared with the runtime's (the host's).
    pub fn ns_absent_type_is_shared_with_host(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "for n in uts ipc net; do echo \"$n $(readlink /proc/self/ns/$n)\"; done",
            |c| {
                c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
                if let Some(o) = c.as_object_mut() {
                    o.remove("hostname");
                }
            },
        )?;
        let out = ctx.run_ok(&b)?;
        for n in ["uts", "ipc", "net"] {
            let host = ns_link(&format!("/proc/self/ns/{n}"))?;
            expect_contains(
                &format!("{n} shared with the host"),
                &out,
                &format!("{n} {host}"),
            )?;
        }
        Ok(())
    }

    pub fn ns_user_with_mappings(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle(
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user",
            |c| {
                push(&mut c["linux"]["namespaces"], json!({"type": "user"}));
                c["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                c["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            },
        )?;
        // The mapped root must be able to reach the rootfs.
        fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let out = ctx.run_ok(&b)?;
        let lines: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let host = ns_link("/proc/self/ns/user")?;
        ensure(
            lines.len() == 5
                && lines[0] == "0 100000 65536"
                && lines[1] == "0 200000 65536"
                && lines[2] == "0"
                && lines[3] == "0"
                && lines[4] != host,
            || format!("user namespace: got {lines:?} (host user ns {host})"),
        )
    }

    pub fn ns_join_netns_by_path(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let name = berth_testsupport::unique_name("confns");
        host_sh(&format!("ip netns add {name}"))?;
        {
            let name = name.clone();
            ctx.on_drop(move || {
                let _ = host_sh(&format!("ip netns del {name}"));
            });
        }
        host_sh(&format!(
            "ip -n {name} link add confveth0 type veth peer name confveth1"
        ))?;
        let path = format!("/var/run/netns/{name}");
        let want_ino = inode(Path::new(&path))?;
        let b = ctx.sh_bundle(
            "readlink /proc/self/ns/net; cut -d: -f1 /proc/net/dev",
            |c| {
                c["linux"]["namespaces"] = json!([
                    {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                    {"type": "network", "path": path}
                ]);
            },
        )?;
        let out = ctx.run_ok(&b)?;
        expect_contains("joined netns", &out, &format!("net:[{want_ino}]"))?;
        expect_contains("joined netns interfaces", &out, "confveth0")
    }

    // ----- cgroups v1 --------------------------------------------------------------------

    fn cgroups_path(ctx: &Ctx, id: &str) -> String {
        let path = format!("/berth-conformance/{id}");
        ctx.on_drop(|| {
            // The shared parent goes once no container of any concurrent case is left in it.
            for h in fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = fs::remove_dir(h.path().join("berth-conformance"));
            }
        });
        path
    }

    fn read_trim(p: &Path) -> Result<String, String> {
        fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("read {}: {e}", p.display()))
    }

    pub fn cgroup_memory_limit_oom_kills(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let id = ctx.id();
        let cg = cgroups_path(&ctx, &id);
        let b = ctx.sh_bundle(
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
             dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd-exit=$?",
            |c| {
                c["linux"]["cgroupsPath"] = json!(cg);
                c["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432});
            },
        )?;
        let out = ctx.create(&id, &b)?;
        let dir = cgroup_v1_dir("memory", &cg);
        let limit = read_trim(&dir.join("memory.limit_in_bytes"))?;
        ensure(limit == "33554432", || {
            format!("host memory.limit_in_bytes: {limit}")
        })?;
        ctx.start(&id)?;
        ctx.wait_status(&id, "stopped", Duration::from_secs(30))?;
        let got = out.stdout_now();
        ensure(got == "33554432\ndd-exit=137\n", || {
            format!("want dd OOM-killed (137): {got:?}")
        })?;
        let oom = fs::read_to_string(dir.join("memory.oom_control")).unwrap_or_default();
        let kills = oom
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .unwrap_or("?")
            .trim()
            .to_string();
        ensure(kills != "0" && kills != "?", || {
            format!("memory.oom_control: {oom:?}")
        })
    }

    pub fn cgroup_pids_limit_stops_fork(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let id = ctx.id();
        let cg = cgroups_path(&ctx, &id);
        let b = ctx.sh_bundle(
            "cat /sys/fs/cgroup/pids/pids.max; \
             (i=0; while [ $i -lt 20 ]; do sleep 10 & i=$((i+1)); echo $i > /tmp/n; done) 2>/tmp/err; \
             sleep 2.5; cat /tmp/n; grep -c 'fork' /tmp/err",
            |c| {
                c["linux"]["cgroupsPath"] = json!(cg);
                c["linux"]["resources"]["pids"] = json!({"limit": 10});
            },
        )?;
        let out = ctx.create(&id, &b)?;
        let max = read_trim(&cgroup_v1_dir("pids", &cg).join("pids.max"))?;
        ensure(max == "10", || format!("host pids.max: {max}"))?;
        ctx.start(&id)?;
        ctx.wait_status(&id, "stopped", Duration::from_secs(30))?;
        let got = out.stdout_now();
        let lines: Vec<&str> = got.lines().collect();
        ensure(lines.len() == 3 && lines[0] == "10", || {
            format!("output: {got:?}")
        })?;
        let started: u32 = lines[1].parse().unwrap_or(99);
        let fork_errors: u32 = lines[2].parse().unwrap_or(0);
        ensure(fork_errors > 0 && started < 10, || {
            format!(
                "pids limit 10: {started} of 20 background processes started, {fork_errors} fork errors"
            )
        })
    }

    pub fn cgroup_cpu_shares_quota_cpuset(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let id = ctx.id();
        let cg = cgroups_path(&ctx, &id);
        let b = ctx.sh_bundle("true", |c| {
            c["linux"]["cgroupsPath"] = json!(cg);
            c["linux"]["resources"]["cpu"] =
                json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
        })?;
        ctx.create(&id, &b)?;
        let cpu = cgroup_v1_dir("cpu", &cg);
        let cpuset = cgroup_v1_dir("cpuset", &cg);
        for (file, want) in [
            (cpu.join("cpu.shares"), "512"),
            (cpu.join("cpu.cfs_quota_us"), "50000"),
            (cpu.join("cpu.cfs_period_us"), "100000"),
            (cpuset.join("cpuset.cpus"), "0"),
            (cpuset.join("cpuset.mems"), "0"),
        ] {
            let got = read_trim(&file)?;
            ensure(got == want, || {
                format!("{}: {got}, want {want}", file.display())
            })?;
        }
        let pid = ctx.pid(&id)?;
        let procs = read_trim(&cpu.join("cgroup.procs"))?;
        ensure(procs.lines().any(|p| p == pid.to_string()), || {
            format!("init {pid} not in {}", cpu.display())
        })
    }

    /// A deny-all device rule (as Docker's and runtime-tools' configs have) still lets the
    /// default devices be created and used; any other device node cannot be opened (§1.5).
    pub fn cgroup_devices_deny_all_keeps_default_devices(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let id = ctx.id();
        let cg = cgroups_path(&ctx, &id);
        let b = ctx.sh_bundle(
            "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; \
             echo x > /dev/conf-null && echo listed-ok; \
             mknod /tmp/mem c 1 1 2>&1; head -c 1 /tmp/mem 2>/dev/null | wc -c; head -c 1 /tmp/mem",
            |c| {
                c["linux"]["cgroupsPath"] = json!(cg);
                c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
                c["linux"]["devices"] = json!([
                    {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}
                ]);
                push(&mut c["process"]["capabilities"]["bounding"], json!("CAP_MKNOD"));
                push(&mut c["process"]["capabilities"]["effective"], json!("CAP_MKNOD"));
                push(&mut c["process"]["capabilities"]["permitted"], json!("CAP_MKNOD"));
            },
        )?;
        let out = ctx.run(&id, &b)?;
        let want = "null-ok\n4\n4\nlisted-ok\n0\n";
        ensure(out.stdout.starts_with(want), || {
            format!(
                "want default and listed devices usable, /dev/mem (1:1) not: {}",
                out.describe()
            )
        })?;
        expect_contains(
            "open of a denied device",
            &out.stderr,
            "Operation not permitted",
        )
    }

    // ----- sysctl ------------------------------------------------------------------------

    /// Restores a host sysctl on drop, in case a runtime wrongly wrote it.
    fn guard_host_sysctl(ctx: &Ctx, key: &str) -> Result<String, String> {
        let before = host_sysctl(key)?;
        let p = format!("/proc/sys/{}", key.replace('.', "/"));
        let v = before.clone();
        ctx.on_drop(move || {
            if fs::read_to_string(&p).ok().as_deref() != Some(v.as_str()) {
                let _ = fs::write(&p, v.trim_end_matches('\n'));
            }
        });
        Ok(before)
    }

    pub fn sysctl_namespaced_applied(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let shm = guard_host_sysctl(&ctx, "kernel.shm_rmid_forced")?;
        let fwd = guard_host_sysctl(&ctx, "net.ipv4.ip_forward")?;
        let want_fwd = if fwd.trim() == "1" { "0" } else { "1" };
        let want_shm = if shm.trim() == "1" { "0" } else { "1" };
        let b = ctx.sh_bundle(
            "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_forward",
            |c| {
                c["linux"]["sysctl"] =
                    json!({"kernel.shm_rmid_forced": want_shm, "net.ipv4.ip_forward": want_fwd});
            },
        )?;
        let out = ctx.run_ok(&b)?;
        ensure(out == format!("{want_shm}\n{want_fwd}\n"), || {
            format!("in the container: {out:?}")
        })?;
        ensure(
            host_sysctl("kernel.shm_rmid_forced")? == shm
                && host_sysctl("net.ipv4.ip_forward")? == fwd,
            || "a namespaced sysctl leaked to the host".into(),
        )
    }

    pub fn sysctl_non_namespaced_rejected(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let before = guard_host_sysctl(&ctx, "kernel.core_pattern")?;
        for (key, value) in [
            ("kernel.core_pattern", "|/bin/false conf"),
            ("vm.overcommit_memory", "2"),
        ] {
            let _g = guard_host_sysctl(&ctx, key)?;
            let b = ctx.sh_bundle("true", |c| {
                c["linux"]["sysctl"] = json!({key: value});
            })?;
            let id = ctx.id();
            let out = ctx.rt(&["create", "--bundle", &b.path().display().to_string(), &id])?;
            ensure(out.code != 0, || {
                format!("{key} accepted: {}", out.describe())
            })?;
        }
        ensure(host_sysctl("kernel.core_pattern")? == before, || {
            "host core_pattern changed".into()
        })
    }

    /// CVE-2022-0811: a value smuggling a second `key=value` after `+` must not set it.
    pub fn sysctl_plus_smuggling_cve_2022_0811(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let before = guard_host_sysctl(&ctx, "kernel.core_pattern")?;
        let b = ctx.sh_bundle("cat /proc/sys/kernel/shm_rmid_forced", |c| {
            c["linux"]["sysctl"] =
                json!({"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/bin/false conf"});
        })?;
        let out = ctx.run(&ctx.id(), &b)?;
        let after = host_sysctl("kernel.core_pattern")?;
        ensure(after == before, || {
            format!(
                "host core_pattern changed to {after:?} ({})",
                out.describe()
            )
        })?;
        // Either refused, or written verbatim (which the kernel refuses for an integer).
        ensure(out.code != 0, || {
            format!("the smuggled value was accepted: {}", out.describe())
        })
    }

    // ----- seccomp -----------------------------------------------------------------------

    pub fn seccomp_errno_mkdir(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("mkdir /tmp/x; echo mkdir=$?; touch /tmp/y && echo touch-ok", |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        })?;
        let out = ctx.run(&ctx.id(), &b)?;
        ensure(out.code == 0, || out.describe())?;
        expect_contains(
            "mkdir under seccomp",
            &out.stderr,
            "Operation not permitted",
        )?;
        ensure(out.stdout == "mkdir=1\ntouch-ok\n", || {
            format!("got {:?}", out.stdout)
        })
    }

    // ----- hooks -------------------------------------------------------------------------

    /// Hooks that write their stdin to `<dir>/<kind>.<pid>.json`.
    fn hook_bundle(
        ctx: &Ctx,
        dir: &Path,
    ) -> Result<std::rc::Rc<berth_testsupport::Bundle>, String> {
        let hook = |name: &str| {
            json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.$$.json", dir.display())],
                   "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "timeout": 10})
        };
        ctx.sh_bundle("true", |c| {
            c["hooks"] = json!({
                "prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
                "poststart": [hook("poststart")], "poststop": [hook("poststop")]
            });
        })
    }

    const HOOK_KINDS: [&str; 4] = ["prestart", "createRuntime", "poststart", "poststop"];

    /// How many times each of [`HOOK_KINDS`] has run so far.
    fn hook_runs(dir: &Path) -> Vec<usize> {
        HOOK_KINDS
            .iter()
            .map(|kind| {
                fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("{kind}."))
                    })
                    .count()
            })
            .collect()
    }

    /// Each hook runs exactly once over a whole lifecycle, with the state JSON on stdin.
    pub fn hooks_run_once_with_state(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let dir = ctx.scratch("hooks")?;
        let b = hook_bundle(&ctx, &dir)?;
        let id = ctx.id();
        ctx.create_start_wait(&id, &b)?;
        ctx.rt(&["delete", &id])?.ok()?;
        let runs = hook_runs(&dir);
        ensure(runs == [1, 1, 1, 1], || {
            format!("runs of {HOOK_KINDS:?}: {runs:?}")
        })?;
        for entry in fs::read_dir(&dir).map_err(|e| e.to_string())?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
            let st: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{name}: stdin is not JSON {text:?}: {e}"))?;
            ensure(
                st["id"] == id.as_str() && st["ociVersion"].is_string() && st["status"].is_string(),
                || format!("{name}: state {st}"),
            )?;
            let bundle = st["bundle"].as_str().unwrap_or_default();
            ensure(
                Path::new(bundle).canonicalize().ok() == b.path().canonicalize().ok(),
                || format!("{name}: state bundle {bundle:?}"),
            )?;
            if !name.starts_with("poststop.") {
                ensure(st["pid"].as_i64().is_some_and(|p| p > 0), || {
                    format!("{name}: state without pid: {st}")
                })?;
            }
        }
        Ok(())
    }

    /// Lifecycle timing: prestart and createRuntime during create; poststart during start,
    /// before it returns; poststop during delete.
    pub fn hooks_called_at_lifecycle_points(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let dir = ctx.scratch("hooks")?;
        let b = hook_bundle(&ctx, &dir)?;
        let id = ctx.id();
        ctx.create(&id, &b)?;
        let runs = hook_runs(&dir);
        ensure(runs == [1, 1, 0, 0], || {
            format!("runs of {HOOK_KINDS:?} after create: {runs:?}, want [1, 1, 0, 0]")
        })?;
        ctx.start(&id)?;
        let runs = hook_runs(&dir);
        ensure(runs == [1, 1, 1, 0], || {
            format!("runs of {HOOK_KINDS:?} after start: {runs:?}, want [1, 1, 1, 0]")
        })?;
        ctx.wait_status(&id, "stopped", WAIT_TIMEOUT)?;
        ensure(hook_runs(&dir) == [1, 1, 1, 0], || {
            "poststop ran before delete".into()
        })?;
        ctx.rt(&["delete", &id])?.ok()?;
        let runs = hook_runs(&dir);
        ensure(runs == [1, 1, 1, 1], || {
            format!("runs of {HOOK_KINDS:?} after delete: {runs:?}")
        })
    }

    pub fn hooks_failing_prestart_fails_create(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("true", |c| {
            c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; exit 3"]}]});
        })?;
        let id = ctx.id();
        let out = ctx.rt(&["create", "--bundle", &b.path().display().to_string(), &id])?;
        ensure(out.code != 0, || {
            format!("create with a failing prestart hook: {}", out.describe())
        })?;
        let st = ctx.rt(&["state", &id])?;
        ensure(st.code != 0, || {
            format!("container left after the failed create: {}", st.stdout)
        })?;
        let left = ctx.root_entries();
        ensure(left.is_empty(), || format!("left in --root: {left:?}"))
    }

    /// runtime-spec: a failing poststart or poststop hook is only a warning; the lifecycle goes on.
    pub fn hooks_failing_poststart_poststop_only_warn(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let dir = ctx.scratch("hooks")?;
        let after = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}/{name}", dir.display())]});
        // The hook reads its stdin first: crun 1.8 dies of SIGPIPE (exit 141) when a hook
        // exits before the runtime has written the state, which is a different bug.
        let fail = json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; exit 3"]});
        let b = ctx.sh_bundle(&format!("{WAIT_FOR_GO}; echo ran"), |c| {
            c["hooks"] = json!({
                "poststart": [fail.clone(), after("poststart-2")],
                "poststop": [fail, after("poststop-2")]
            });
        })?;
        let id = ctx.id();
        let out = ctx.create(&id, &b)?;
        ctx.start(&id)?;
        ensure(dir.join("poststart-2").exists(), || {
            "the poststart hook after the failing one did not run".into()
        })?;
        release(&b)?;
        ctx.wait_status(&id, "stopped", WAIT_TIMEOUT)?;
        expect_contains("container output", &out.stdout_now(), "ran")?;
        ctx.rt(&["delete", &id])?.ok()?;
        ensure(dir.join("poststop-2").exists(), || {
            "the poststop hook after the failing one did not run".into()
        })?;
        let st = ctx.rt(&["state", &id])?;
        ensure(st.code != 0, || "container left after delete".into())
    }

    // ----- escapes -----------------------------------------------------------------------

    /// The container's init and an exec'd process hold only stdio (CVE-2024-21626, CVE-2016-9962),
    /// seen from inside (`ls /proc/1/fd`) and from the host (`/proc/<init>/fd`).
    pub fn escape_no_leaked_fds_cve_2024_21626(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        // No redirection in pid 1 here: ash would park the saved stdout on fd 10 meanwhile.
        let b = ctx.sh_bundle(
            &format!("echo begin; ls /proc/1/fd; echo end; ls -l /proc/1/fd; {WAIT_FOR_GO}"),
            |_| {},
        )?;
        let id = ctx.id();
        let out = ctx.create(&id, &b)?;
        ctx.start(&id)?;
        let pid = ctx.pid(&id)?;
        wait_until(Duration::from_secs(5), || {
            out.stdout_now().contains("end\n")
        });
        let text = out.stdout_now();
        let inside: Vec<&str> = text
            .split("begin\n")
            .nth(1)
            .and_then(|t| t.split("end\n").next())
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        ensure(inside == ["0", "1", "2"], || {
            format!("init fds seen inside {inside:?}: {text:?}")
        })?;
        let mut host: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
            .filter_map(Result::ok)
            .map(|e| {
                let t = fs::read_link(e.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                format!("{} -> {t}", e.file_name().to_string_lossy())
            })
            .collect();
        host.sort();
        ensure(host.len() == 3, || {
            format!("init fds seen from the host: {host:?}")
        })?;
        let ex = ctx
            .rt(&[
                "exec",
                &id,
                "sh",
                "-c",
                "ls /proc/$$/fd; ls -l /proc/$$/fd >&2",
            ])?
            .ok()?;
        let got: Vec<&str> = ex.stdout.split_whitespace().collect();
        ensure(got == ["0", "1", "2"], || {
            format!("exec'd process fds {got:?}: {}", ex.stderr)
        })?;
        release(&b)
    }

    /// `cwd: /proc/self/fd/N` must not put the process on the host filesystem (CVE-2024-21626).
    pub fn escape_cwd_proc_self_fd_cve_2024_21626(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        for n in 3..=9 {
            let b = ctx.sh_bundle("pwd -P; readlink /proc/self/cwd; ls -a", |c| {
                c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
            })?;
            let out = ctx.run(&ctx.id(), &b)?;
            if out.code == 0 {
                ensure(!out.stdout.contains("unreachable"), || {
                    format!(
                        "cwd /proc/self/fd/{n} is outside the container: {:?}",
                        out.stdout
                    )
                })?;
            }
        }
        // The same through exec --cwd.
        let b = ctx.sh_bundle(WAIT_FOR_GO, |_| {})?;
        let id = ctx.id();
        ctx.create(&id, &b)?;
        ctx.start(&id)?;
        for n in 3..=9 {
            let cwd = format!("/proc/self/fd/{n}");
            let out = ctx.rt(&[
                "exec",
                "--cwd",
                &cwd,
                &id,
                "sh",
                "-c",
                "pwd -P; readlink /proc/self/cwd",
            ])?;
            if out.code == 0 {
                ensure(!out.stdout.contains("unreachable"), || {
                    format!(
                        "exec --cwd {cwd} is outside the container: {:?}",
                        out.stdout
                    )
                })?;
            }
        }
        release(&b)
    }

    /// A rootfs whose /proc is a symlink to a host path: refused, or procfs lands inside the
    /// container and nothing happens at the host path.
    pub fn escape_proc_symlink_in_rootfs(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let target = ctx.scratch("evil-proc")?;
        let b = ctx.sh_bundle("stat -f -c %T /proc; head -1 /proc/self/status", |_| {})?;
        let proc_dir = b.rootfs().join("proc");
        fs::remove_dir(&proc_dir).map_err(|e| e.to_string())?;
        symlink(&target, &proc_dir).map_err(|e| e.to_string())?;
        let out = ctx.run(&ctx.id(), &b)?;
        let mounts = Ctx::host_mounts_under(&target);
        ensure(mounts.is_empty(), || {
            format!("mounted on the host path: {mounts:?}")
        })?;
        let inside: Vec<_> = fs::read_dir(&target)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .collect();
        ensure(inside.is_empty(), || {
            format!("the host path was written: {inside:?}")
        })?;
        if out.code == 0 {
            ensure(out.stdout.starts_with("proc\n"), || {
                format!("/proc is not procfs: {}", out.describe())
            })?;
        }
        Ok(())
    }

    /// CVE-2019-5736, best effort: while `exec` runs `#!/proc/self/exe` scripts in the container,
    /// a probe inside opens every visible `/proc/<pid>/exe` and tries to reopen it for writing
    /// (zero bytes are written). No host binary may be writable, and the runtime's sha256 stays.
    pub fn escape_runtime_exe_overwrite_cve_2019_5736(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let before = sha256(&rt.binary)?;
        let probe = r#"
end=$(( $(date +%s) + 4 ))
: > /tmp/probe.out
while [ $(date +%s) -lt $end ]; do
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    # A subshell per pid: a failed `exec 3<` ends only it.
    ( exec 3< $p/exe || exit 0
      t=$(readlink /proc/self/fd/3)
      case "$t" in /memfd:*|/bin/busybox|/bin/sh) exit 0;; esac
      if [ "$(stat -L -c %d:%i /proc/self/fd/3)" != "$(stat -L -c %d:%i "$t" 2>/dev/null)" ]; then
        echo "host-exe $p $t" >> /tmp/probe.out
        if (printf '' >> /proc/self/fd/3) 2>/dev/null; then echo "WRITABLE $p $t" >> /tmp/probe.out; fi
      fi
    ) 2>/dev/null
  done
done
echo probe-done >> /tmp/probe.out
"#;
        let b = ctx.sh_bundle(WAIT_FOR_GO, |_| {})?;
        fs::write(b.rootfs().join("probe.sh"), probe).map_err(|e| e.to_string())?;
        fs::write(b.rootfs().join("evil"), "#!/proc/self/exe\n").map_err(|e| e.to_string())?;
        fs::set_permissions(b.rootfs().join("evil"), fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let id = ctx.id();
        ctx.create(&id, &b)?;
        ctx.start(&id)?;
        ctx.rt(&["exec", "--detach", &id, "sh", "/probe.sh"])?
            .ok()?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            let _ = ctx.rt_timeout(&["exec", &id, "/evil"], Duration::from_secs(10))?;
            let _ = ctx.rt_timeout(&["exec", &id, "true"], Duration::from_secs(10))?;
        }
        let out = b.rootfs().join("tmp/probe.out");
        let done = wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&out).is_ok_and(|s| s.contains("probe-done"))
        });
        let report = fs::read_to_string(&out).unwrap_or_default();
        ensure(done, || format!("the probe did not finish: {report:?}"))?;
        ensure(!report.contains("WRITABLE"), || {
            format!("a host binary was writable from the container: {report:?}")
        })?;
        let after = sha256(&rt.binary)?;
        ensure(after == before, || {
            format!("{} changed: {before} -> {after}", rt.binary.display())
        })?;
        release(&b)
    }

    // ----- bad input ---------------------------------------------------------------------

    /// `create` of `b` under `id` must fail cleanly.
    fn refused(ctx: &Ctx, b: &berth_testsupport::Bundle, id: &str) -> CaseResult {
        let out = ctx.rt(&["create", "--bundle", &b.path().display().to_string(), id])?;
        expect_clean_refusal(ctx, &out, b.path())
    }

    pub fn bad_malformed_config(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("true", |_| {})?;
        fs::write(
            b.path().join("config.json"),
            "{\"ociVersion\": \"1.0.2\", \"process\": {",
        )
        .map_err(|e| e.to_string())?;
        refused(&ctx, &b, &ctx.id())
    }

    pub fn bad_config_without_process(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("true", |c| {
            if let Some(o) = c.as_object_mut() {
                o.remove("process");
            }
        })?;
        refused(&ctx, &b, &ctx.id())
    }

    pub fn bad_missing_rootfs(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("true", |c| {
            c["root"]["path"] = json!("no-such-rootfs");
        })?;
        refused(&ctx, &b, &ctx.id())
    }

    pub fn bad_unknown_namespace(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("true", |c| {
            push(&mut c["linux"]["namespaces"], json!({"type": "bogus"}));
        })?;
        refused(&ctx, &b, &ctx.id())
    }

    pub fn bad_invalid_capability(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("true", |c| {
            for set in ["bounding", "effective", "permitted"] {
                push(&mut c["process"]["capabilities"][set], json!("CAP_BOGUS"));
            }
        })?;
        refused(&ctx, &b, &ctx.id())
    }

    pub fn bad_container_id(rt: &RuntimeUnderTest) -> CaseResult {
        let ctx = Ctx::new(rt)?;
        let b = ctx.sh_bundle("true", |_| {})?;
        let parent = ctx
            .root()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let before: Vec<_> = fs::read_dir(&parent)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        for bad in ["a/b", "../escape", "..", "x/../../escape"] {
            refused(&ctx, &b, bad).map_err(|e| format!("id {bad:?}: {e}"))?;
        }
        let after: Vec<_> = fs::read_dir(&parent)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        let new: Vec<_> = after.iter().filter(|n| !before.contains(n)).collect();
        ensure(new.is_empty(), || {
            format!("created outside --root: {new:?}")
        })?;
        ensure(!parent.join("state.json").exists(), || {
            "state.json written beside --root".into()
        })
    }
}
