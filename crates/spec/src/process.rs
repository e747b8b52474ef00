//! The process: the image config merged under the container's (Docker's rules), arguments
//! (entrypoint + cmd, behind the init for `--init`), environment, working directory, stop
//! signal, and `--security-opt`.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::error::{Result, SpecError};

/// `PATH` when neither the image nor the container sets one (moby's default on Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The parts of an image's config that reach the container (`config` of the image JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `User`.
    pub user: String,
    /// `Env`.
    pub env: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `StopSignal`.
    pub stop_signal: String,
    /// `Labels`.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Fills what `create` left out from the image, by Docker's rules (moby's `merge`):
/// the image's user, working dir and stop signal when none is given; image env entries whose
/// key the container does not set are appended after the container's; labels merge with the
/// container's winning; the image's entrypoint when none is given, and the image's cmd only
/// when neither entrypoint nor cmd is given (a given entrypoint resets the image's cmd).
pub fn merge_image_config(image: &ImageConfig, create: &mut crate::ContainerConfig) {
    if create.user.is_empty() {
        create.user = image.user.clone();
    }
    if create.env.is_empty() {
        create.env = image.env.clone();
    } else {
        for entry in &image.env {
            let key = env_key(entry);
            if !create.env.iter().any(|e| env_key(e) == key) {
                create.env.push(entry.clone());
            }
        }
    }
    for (k, v) in &image.labels {
        create.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let entrypoint_given = create.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    if !entrypoint_given {
        if create.cmd.is_empty() {
            create.cmd = image.cmd.clone();
        }
        if create.entrypoint.is_none() {
            create.entrypoint = Some(image.entrypoint.clone());
        }
    }
    if create.working_dir.is_empty() {
        create.working_dir = image.working_dir.clone();
    }
    if create.stop_signal.is_none() && !image.stop_signal.is_empty() {
        create.stop_signal = Some(image.stop_signal.clone());
    }
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Entrypoint followed by cmd; `--entrypoint ""` (`[""]`) means no entrypoint.
pub(crate) fn command(entrypoint: Option<&[String]>, cmd: &[String]) -> Result<Vec<String>> {
    let entrypoint = match entrypoint {
        Some([only]) if only.is_empty() => &[][..],
        Some(e) => e,
        None => &[][..],
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::invalid("No command specified"));
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(SpecError::invalid(
            "command arguments may not contain NUL bytes",
        ));
    }
    Ok(args)
}

/// The environment as Docker builds it: `PATH`, `HOSTNAME` (and `TERM=xterm` with a tty)
/// first, replaced or extended by the container's entries in order; an entry without `=`
/// removes the variable. `HOME` comes from the user's passwd entry when not set.
pub(crate) fn environment(
    user_env: &[String],
    hostname: &str,
    tty: bool,
    home: &str,
) -> Result<Vec<String>> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".to_owned());
    }
    for entry in user_env {
        let key = env_key(entry);
        if key.is_empty() || entry.contains('\0') {
            return Err(SpecError::invalid(format!(
                "invalid environment variable: {entry:?}"
            )));
        }
        let existing = env.iter().position(|e| env_key(e) == key);
        match (existing, entry.contains('=')) {
            (Some(i), true) => env[i] = entry.clone(),
            (Some(i), false) => {
                env.remove(i);
            }
            (None, true) => env.push(entry.clone()),
            (None, false) => {}
        }
    }
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// `-w`: absolute (cleaned), `/` when not given.
pub(crate) fn working_dir(dir: &str) -> Result<String> {
    if dir.is_empty() {
        return Ok("/".to_owned());
    }
    if !dir.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "the working directory '{dir}' is invalid, it needs to be an absolute path"
        )));
    }
    Ok(crate::mounts::clean_path(dir))
}

/// Checks a stop signal (`SIGTERM`, `term`, `15`, `SIGRTMIN+3`) and returns it in the form
/// the engine stores: `SIGTERM`, or `SIGRTMIN+3` for real-time signals.
pub fn parse_stop_signal(raw: &str) -> Result<String> {
    let bad = || SpecError::invalid(format!("Invalid signal: {raw}"));
    let (rt_min, rt_max) = (libc_sigrtmin(), 64);
    if let Ok(n) = raw.parse::<i32>() {
        if let Ok(signal) = Signal::try_from(n) {
            return Ok(signal.as_str().to_owned());
        }
        return match n {
            n if (rt_min..=rt_max).contains(&n) => Ok(format!("SIGRTMIN+{}", n - rt_min)),
            _ => Err(bad()),
        };
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(signal) = Signal::from_str(&format!("SIG{name}")) {
        return Ok(signal.as_str().to_owned());
    }
    let offset = |s: &str| {
        s.parse::<i32>()
            .ok()
            .filter(|n| (0..=rt_max - rt_min).contains(n))
    };
    let n = if name == "RTMIN" {
        Some(0)
    } else if name == "RTMAX" {
        Some(rt_max - rt_min)
    } else if let Some(k) = name.strip_prefix("RTMIN+") {
        offset(k)
    } else if let Some(k) = name.strip_prefix("RTMAX-") {
        offset(k).map(|k| rt_max - rt_min - k)
    } else {
        None
    };
    n.map(|n| format!("SIGRTMIN+{n}")).ok_or_else(bad)
}

/// SIGRTMIN as glibc and musl programs see it (the first two are taken by the threads
/// library), as Docker's signal table numbers them.
fn libc_sigrtmin() -> i32 {
    34
}

/// What `--security-opt` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityOptions {
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// `seccomp=…`: `None` is the default profile.
    pub seccomp: Option<SeccompChoice>,
    /// `writable-cgroups=true`: mount `/sys/fs/cgroup` read-write.
    pub writable_cgroups: bool,
}

/// A `seccomp=` choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// `seccomp=unconfined`.
    Unconfined,
    /// `seccomp=<profile JSON>` (the CLI sends the profile file's content).
    Profile(String),
}

/// Parses `--security-opt` entries with moby's rules and messages. `apparmor=` and `label=`
/// are accepted and ignored: this host has neither AppArmor nor SELinux.
pub fn parse_security_opts(opts: &[String]) -> Result<SecurityOptions> {
    let mut out = SecurityOptions::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue;
        }
        // `key:value` is the deprecated spelling of `key=value`.
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(SpecError::invalid(format!(
                "invalid --security-opt 1: {opt:?}"
            )));
        };
        let bool_value = || {
            parse_go_bool(value)
                .ok_or_else(|| SpecError::invalid(format!("invalid --security-opt 2: {opt:?}")))
        };
        match key {
            "label" | "apparmor" => {}
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => Some(SeccompChoice::Unconfined),
                    "builtin" | "" => None,
                    profile => Some(SeccompChoice::Profile(profile.to_owned())),
                }
            }
            "no-new-privileges" => out.no_new_privileges = bool_value()?,
            "writable-cgroups" => out.writable_cgroups = bool_value()?,
            _ => {
                return Err(SpecError::invalid(format!(
                    "invalid --security-opt 2: {opt:?}"
                )));
            }
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ContainerConfig;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            user: "app".into(),
            env: strings(&["PATH=/img/bin", "LANG=C", "FOO=image"]),
            cmd: strings(&["nginx", "-g", "daemon off;"]),
            entrypoint: strings(&["/docker-entrypoint.sh"]),
            working_dir: "/srv".into(),
            stop_signal: "SIGQUIT".into(),
            labels: [
                ("a".to_owned(), "image".to_owned()),
                ("b".to_owned(), "image".to_owned()),
            ]
            .into(),
        }
    }

    #[test]
    fn merge_fills_from_the_image() {
        let mut c = ContainerConfig::default();
        merge_image_config(&image(), &mut c);
        assert_eq!(c.user, "app");
        assert_eq!(c.env, image().env);
        assert_eq!(c.cmd, image().cmd);
        assert_eq!(c.entrypoint.as_deref(), Some(&image().entrypoint[..]));
        assert_eq!(
            (c.working_dir.as_str(), c.stop_signal.as_deref()),
            ("/srv", Some("SIGQUIT"))
        );
    }

    #[test]
    fn merge_keeps_the_containers_choices() {
        let mut c = ContainerConfig {
            user: "root".into(),
            env: strings(&["FOO=mine", "X=1"]),
            cmd: strings(&["sh"]),
            labels: [("a".to_owned(), "mine".to_owned())].into(),
            ..ContainerConfig::default()
        };
        merge_image_config(&image(), &mut c);
        assert_eq!(c.user, "root");
        assert_eq!(
            c.env,
            strings(&["FOO=mine", "X=1", "PATH=/img/bin", "LANG=C"])
        );
        // Cmd given, entrypoint not: the image's entrypoint stays, with our cmd.
        assert_eq!(c.cmd, strings(&["sh"]));
        assert_eq!(c.entrypoint.as_deref(), Some(&image().entrypoint[..]));
        assert_eq!(c.labels.get("a").map(String::as_str), Some("mine"));
        assert_eq!(c.labels.get("b").map(String::as_str), Some("image"));
    }

    #[test]
    fn a_given_entrypoint_resets_the_images_cmd() {
        let mut c = ContainerConfig {
            entrypoint: Some(strings(&["/bin/sh", "-c"])),
            ..ContainerConfig::default()
        };
        merge_image_config(&image(), &mut c);
        assert!(c.cmd.is_empty());
        assert_eq!(
            command(c.entrypoint.as_deref(), &c.cmd).unwrap(),
            strings(&["/bin/sh", "-c"])
        );

        // `--entrypoint ""` with a command: just the command.
        let mut c = ContainerConfig {
            entrypoint: Some(strings(&[""])),
            cmd: strings(&["ls", "-l"]),
            ..ContainerConfig::default()
        };
        merge_image_config(&image(), &mut c);
        assert_eq!(
            command(c.entrypoint.as_deref(), &c.cmd).unwrap(),
            strings(&["ls", "-l"])
        );

        // `--entrypoint ""` and nothing else: no command at all.
        let mut c = ContainerConfig {
            entrypoint: Some(strings(&[""])),
            ..ContainerConfig::default()
        };
        merge_image_config(&image(), &mut c);
        assert_eq!(
            command(c.entrypoint.as_deref(), &c.cmd)
                .unwrap_err()
                .to_string(),
            "No command specified"
        );
    }

    #[test]
    fn environment_defaults_and_overrides() {
        let env = environment(
            &strings(&["A=1", "PATH=/x", "HOSTNAME=mine"]),
            "h1",
            true,
            "/root",
        )
        .unwrap();
        assert_eq!(
            env,
            strings(&[
                "PATH=/x",
                "HOSTNAME=mine",
                "TERM=xterm",
                "A=1",
                "HOME=/root"
            ])
        );
        let env = environment(&strings(&["HOME=/h", "TERM"]), "h1", true, "/root").unwrap();
        assert_eq!(
            env,
            strings(&[&format!("PATH={DEFAULT_PATH}"), "HOSTNAME=h1", "HOME=/h"])
        );
        assert!(environment(&strings(&["=x"]), "h", false, "/").is_err());
        assert!(environment(&strings(&["A=\0"]), "h", false, "/").is_err());
    }

    #[test]
    fn working_dirs() {
        assert_eq!(working_dir("").unwrap(), "/");
        assert_eq!(working_dir("/a/../b/").unwrap(), "/b");
        assert_eq!(
            working_dir("rel").unwrap_err().to_string(),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
    }

    #[test]
    fn stop_signals() {
        assert_eq!(parse_stop_signal("SIGTERM").unwrap(), "SIGTERM");
        assert_eq!(parse_stop_signal("quit").unwrap(), "SIGQUIT");
        assert_eq!(parse_stop_signal("9").unwrap(), "SIGKILL");
        assert_eq!(parse_stop_signal("SIGRTMIN+3").unwrap(), "SIGRTMIN+3");
        assert_eq!(parse_stop_signal("RTMAX").unwrap(), "SIGRTMIN+30");
        assert_eq!(parse_stop_signal("37").unwrap(), "SIGRTMIN+3");
        for bad in ["", "0", "65", "SIGFOO", "RTMIN+99", "-1"] {
            assert_eq!(
                parse_stop_signal(bad).unwrap_err().to_string(),
                format!("Invalid signal: {bad}")
            );
        }
    }

    #[test]
    fn security_opts() {
        let o = parse_security_opts(&strings(&[
            "no-new-privileges",
            "seccomp=unconfined",
            "apparmor=x",
            "label=disable",
        ]))
        .unwrap();
        assert!(o.no_new_privileges);
        assert_eq!(o.seccomp, Some(SeccompChoice::Unconfined));
        let o = parse_security_opts(&strings(&["no-new-privileges=false", "seccomp={}"])).unwrap();
        assert!(!o.no_new_privileges);
        assert_eq!(o.seccomp, Some(SeccompChoice::Profile("{}".into())));
        assert!(
            parse_security_opts(&strings(&["no-new-privileges:true"]))
                .unwrap()
                .no_new_privileges
        );
        assert_eq!(
            parse_security_opts(&strings(&["bogus"]))
                .unwrap_err()
                .to_string(),
            r#"invalid --security-opt 1: "bogus""#
        );
        assert_eq!(
            parse_security_opts(&strings(&["foo=bar"]))
                .unwrap_err()
                .to_string(),
            r#"invalid --security-opt 2: "foo=bar""#
        );
        assert!(parse_security_opts(&strings(&["no-new-privileges=maybe"])).is_err());
    }
}
