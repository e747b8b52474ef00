//! `berth network …` and `berth volume …` against a real daemon, compared with what the real
//! docker CLI prints against the same daemon: ls (with -q, -f, --format, --no-trunc), create,
//! inspect (-f), rm (many, unknown, in use), prune, connect/disconnect.
//!
//! Needs root (overlay mounts, namespaces, bridges) and the docker CLI; skipped otherwise.

mod client_support;
mod daemon_support;

use client_support::*;

impl Env {}

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
        let nets = self
            .daemon
            .docker(&["network", "ls", "-q", "--filter", "type=custom"]);
        for id in text(&nets.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["network", "rm", id]);
        }
        let vols = self.daemon.docker(&["volume", "ls", "-q"]);
        for name in text(&vols.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["volume", "rm", "-f", name]);
        }
        kill_leftover_shims(self.daemon.dir.path());
    }
}

impl Env {
    /// docker with `d_args` and berth with `b_args` (the same command on objects named
    /// `d_name` and `b_name`): the same exit code, stdout and stderr once the names are swapped.
    fn same_shape(&self, d_args: &[&str], b_args: &[&str], d_name: &str, b_name: &str) -> String {
        let d = self.docker(d_args);
        let b = self.berth(b_args);
        let swap = |o: &[u8]| text(o).replace(b_name, d_name);
        assert_eq!(
            (d.status.code(), text(&d.stdout), text(&d.stderr)),
            (
                b.status.code(),
                swap(&b.stdout),
                swap(&b.stderr).replace("berth", "docker")
            ),
            "docker {d_args:?} vs berth {b_args:?}"
        );
        text(&b.stdout)
    }

    /// The same arguments through both CLIs: the same exit code, stdout and stderr (berth's
    /// name in messages read as docker's).
    fn same_all(&self, args: &[&str]) -> String {
        self.same_shape(args, args, "", "\u{0}")
    }
}

#[test]
fn network_commands_match_docker() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let (dn, bn) = (unique("nv-dnet"), unique("nv-bnet"));
    let third = (std::process::id() % 200) + 20;
    let subnet = |n: u32| format!("172.29.{n}.0/24");
    let (ds, bs) = (subnet(third), subnet(third + 1));
    let create = |name: &str, s: &str| -> Vec<String> {
        let gw = s.replace("0/24", "1");
        let range = s.replace("0/24", "128/25");
        [
            "network",
            "create",
            "--subnet",
            s,
            "--gateway",
            &gw,
            "--ip-range",
            &range,
            "--label",
            "tier=web",
            "-o",
            "com.docker.network.driver.mtu=1400",
            "--internal",
            "--attachable",
            name,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let d_id = env.docker(
        &create(&dn, &ds)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(d_id.status.success(), "{}", text(&d_id.stderr));
    let b_id = env.ok(&create(&bn, &bs)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(b_id.trim().len(), 64, "create prints the id: {b_id}");

    // Both networks were created alike: compare what inspect shows of each.
    let fmt = "{{.Driver}} {{.Scope}} {{.Internal}} {{.Attachable}} {{json .Labels}} {{json .Options}} {{json .IPAM.Config}}";
    let (dsub, bsub) = (ds.replace(".0/24", ""), bs.replace(".0/24", ""));
    let d_view = text(&env.docker(&["network", "inspect", "-f", fmt, &dn]).stdout);
    let b_view = text(&env.docker(&["network", "inspect", "-f", fmt, &bn]).stdout);
    assert_eq!(d_view, b_view.replace(&bsub, &dsub));
    assert!(b_view.contains("true true {\"tier\":\"web\"}"), "{b_view}");
    assert!(b_view.contains("com.docker.network.driver.mtu"), "{b_view}");

    // Listing and inspecting the same objects prints the same through both CLIs.
    let ls = env.same_all(&["network", "ls"]);
    assert!(ls.starts_with("NETWORK ID     NAME"), "{ls}");
    assert!(
        ls.contains(&bn) && ls.contains("bridge") && ls.contains("host"),
        "{ls}"
    );
    env.same_all(&["network", "ls", "-q"]);
    env.same_all(&["network", "ls", "--no-trunc"]);
    env.same_all(&["network", "ls", "-f", "label=tier=web", "-q"]);
    env.same_all(&["network", "ls", "-f", "type=custom"]);
    env.same_all(&["network", "ls", "-f", "driver=bridge", "--no-trunc"]);
    env.same_all(&["network", "ls", "-f", "label=nv-none"]);
    env.same_all(&["network", "ls", "--filter", &format!("name={bn}")]);
    env.same_all(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}\t{{.Driver}} {{.Internal}} {{.Labels}}",
    ]);
    env.same_all(&[
        "network",
        "ls",
        "--format",
        "table {{.ID}}\t{{.Label \"tier\"}}",
    ]);
    env.same_all(&["network", "ls", "--format", "json"]);
    env.same_all(&["network", "ls", "--format", "table", "-q"]);
    env.same_all(&["network", "inspect", &bn]);
    env.same_all(&["network", "inspect", &bn, "bridge"]);
    env.same_all(&["network", "inspect", "-f", "{{.Name}} {{.Id}}", &dn, &bn]);

    // Errors: unknown networks, a bad flag, wrong argument counts.
    env.same_all(&["network", "inspect", "nv-no-such-net"]);
    env.same_all(&["network", "inspect", &bn, "nv-no-such-net"]);
    env.same_all(&["network", "rm", "nv-no-such-net"]);
    env.same_all(&["network", "rm", "-f", "nv-no-such-net"]);
    env.same_all(&["network", "create", "--gateway", "10.9.9.1", "nv-x"]);
    env.same_all(&["network", "ls", "--bogus"]);
    env.same_all(&["network", "rm"]);
    env.same_all(&["network"]);
    env.same_all(&["network", "bogus"]);
    env.same_all(&["network", "create"]);
    env.same_all(&["network", "create", "a", "b"]);
    env.same_all(&["network", "inspect"]);
    env.same_all(&["network", "connect", &bn]);
    env.same_all(&[
        "network",
        "create",
        "--subnet",
        "10.9.0.0/16",
        "--gateway",
        "10.8.0.1",
        "nv-x",
    ]);
    env.same_all(&[
        "network",
        "create",
        "--subnet",
        "10.9.0.0/16",
        "--subnet",
        "10.9.1.0/24",
        "nv-x",
    ]);
    env.same_all(&["network", "create", &bn]);

    // Connect (with an alias and a fixed address) puts a container on the network; in use,
    // the network cannot go; disconnect frees it.
    let ctr = unique("nv-ctr");
    let run = env.docker(&["run", "-d", "--name", &ctr, "busybox", "sleep", "1000"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let ip = format!("{bsub}.200");
    env.ok(&[
        "network", "connect", "--alias", "nv-alias", "--ip", &ip, &bn, &ctr,
    ]);
    let ep_fmt = format!(
        "{{{{json (index .NetworkSettings.Networks \"{bn}\").Aliases}}}} {{{{(index .NetworkSettings.Networks \"{bn}\").IPAddress}}}}"
    );
    let ep = text(&env.docker(&["inspect", "-f", &ep_fmt, &ctr]).stdout);
    assert!(ep.contains("nv-alias") && ep.contains(&ip), "{ep}");
    env.same_all(&["network", "rm", &bn]);
    env.same_all(&["network", "connect", &bn, "nv-no-such-ctr"]);
    env.same_all(&["network", "disconnect", "nv-no-such-net", &ctr]);
    env.ok(&["network", "disconnect", &bn, &ctr]);
    let nets_fmt = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}";
    let nets = text(&env.docker(&["inspect", "-f", nets_fmt, &ctr]).stdout);
    assert!(!nets.contains(&bn) && nets.contains("bridge"), "{nets}");

    // Removal of many: names printed in turn, an error for the unknown one, exit 1.
    // Named so that swapping the first pair's names swaps these too.
    let (d2, b2) = (format!("{dn}-2"), format!("{bn}-2"));
    env.ok(&["network", "create", &b2]);
    assert!(env.docker(&["network", "create", &d2]).status.success());
    let out = env.same_shape(
        &["network", "rm", &dn, "nv-no-such-net", &d2],
        &["network", "rm", &bn, "nv-no-such-net", &b2],
        &dn,
        &bn,
    );
    assert_eq!(out, format!("{bn}\n{b2}\n"));

    // Prune: docker's prompt answered "n" keeps everything; -f removes the unused ones.
    let (p1, p2) = (unique("nv-prune1"), unique("nv-prune2"));
    env.ok(&["network", "create", "--label", "prune=me", &p1]);
    env.ok(&["network", "create", &p2]);
    let asked = env.berth_input(&["network", "prune"], Some(b"n\n"));
    assert_eq!(asked.status.code(), Some(0));
    assert_eq!(
        text(&asked.stdout),
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    let out = env.ok(&["network", "prune", "-f", "--filter", "label=prune=me"]);
    assert_eq!(out, format!("Deleted Networks:\n{p1}\n\n"));
    // A network a container is on is not pruned.
    env.ok(&["network", "connect", &p2, &ctr]);
    assert_eq!(env.same_all(&["network", "prune", "-f"]), "");
    env.ok(&["network", "disconnect", &p2, &ctr]);
    let out = env.ok(&["network", "prune", "-f"]);
    assert_eq!(out, format!("Deleted Networks:\n{p2}\n\n"));
    env.same_all(&["network", "prune", "-f"]);
}

#[test]
fn volume_commands_match_docker() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let (dv, bv) = (unique("nv-dvol"), unique("nv-bvol"));
    let create = |name: &str| {
        [
            "volume",
            "create",
            "-d",
            "local",
            "--label",
            "tier=db",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            name,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
    };
    let d_args = create(&dv);
    let b_args = create(&bv);

    let out = env.same_shape(&strs(&d_args), &strs(&b_args), &dv, &bv);
    assert_eq!(out, format!("{bv}\n"));
    let fmt = "{{.Driver}} {{.Scope}} {{json .Labels}} {{json .Options}} {{.Name}}";
    env.same_shape(
        &["volume", "inspect", "-f", fmt, &dv],
        &["volume", "inspect", "-f", fmt, &bv],
        &dv,
        &bv,
    );
    let anon = env.ok(&["volume", "create"]);
    assert_eq!(anon.trim().len(), 64, "an anonymous volume's name: {anon}");
    env.same_all(&["volume", "create", "--name", "x", "y"]);

    let ls = env.same_all(&["volume", "ls"]);
    assert!(ls.starts_with("DRIVER    VOLUME NAME"), "{ls}");
    assert!(ls.contains(&bv) && ls.contains(anon.trim()), "{ls}");
    env.same_all(&["volume", "ls", "-q"]);
    env.same_all(&["volume", "ls", "-f", "label=tier=db"]);
    env.same_all(&["volume", "ls", "-f", &format!("name={bv}")]);
    env.same_all(&["volume", "ls", "-f", "driver=local", "-q"]);
    env.same_all(&["volume", "ls", "-f", "dangling=true", "-q"]);
    env.same_all(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}}: {{.Driver}} {{.Labels}} {{.Mountpoint}} {{.Links}} {{.Size}}",
    ]);
    env.same_all(&[
        "volume",
        "ls",
        "--format",
        "table {{.Name}}\t{{.Label \"tier\"}}\t{{.Scope}}",
    ]);
    env.same_all(&["volume", "ls", "--format", "json"]);
    env.same_all(&["volume", "inspect", &bv]);
    env.same_all(&["volume", "inspect", &bv, anon.trim()]);

    // Errors: unknown volumes, in-use removal, bad flags.
    env.same_all(&["volume", "inspect", "nv-no-such-vol"]);
    env.same_all(&["volume", "inspect", &bv, "nv-no-such-vol"]);
    env.same_all(&["volume", "rm", "nv-no-such-vol"]);
    env.same_all(&["volume", "rm", "-f", "nv-no-such-vol"]);
    env.same_all(&["volume", "ls", "--bogus"]);
    env.same_all(&["volume", "rm"]);
    env.same_all(&["volume", "bogus"]);
    env.same_all(&["volume", "inspect"]);
    // (Not compared: `volume create a b`, where docker 28 prints a stray "SRun" typo.)
    let bused = unique("nv-bused");
    let ctr = unique("nv-vctr");
    env.ok(&["volume", "create", &bused]);
    let run = env.docker(&[
        "run",
        "-d",
        "--name",
        &ctr,
        "-v",
        &format!("{bused}:/data"),
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let used = env.berth(&["volume", "rm", &bused]);
    assert_eq!(used.status.code(), Some(1));
    assert!(
        text(&used.stderr).starts_with(&format!(
            "Error response from daemon: remove {bused}: volume is in use - ["
        )),
        "{}",
        text(&used.stderr)
    );
    env.same_all(&["volume", "rm", &bused]);
    env.same_all(&["volume", "rm", "-f", &bused]);

    // Many at once: each name that went, the unknown one's error, exit 1.
    let out = env.same_shape(
        &["volume", "rm", &dv, "nv-no-such-vol"],
        &["volume", "rm", &bv, "nv-no-such-vol"],
        &dv,
        &bv,
    );
    assert_eq!(out, format!("{bv}\n"));

    // Prune at API 1.41: every unused volume (the in-use one stays), and docker's warning says so.
    let asked = env.berth_input(&["volume", "prune"], Some(b"n\n"));
    assert_eq!(
        text(&asked.stdout),
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    let out = env.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!(
            "Deleted Volumes:\n{}\n\nTotal reclaimed space: 0B\n",
            anon.trim()
        )
    );
    // This API version (1.41) has no `all` for prune: docker's refusal, after the prompt.
    env.same_all(&["volume", "prune", "-f"]);
    env.same_all(&["volume", "prune", "--all", "--force", "--filter", "label=x"]);
    env.same_all(&["volume", "prune", "-af"]);
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
