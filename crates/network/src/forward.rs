//! Living next to a Docker Engine: its iptables `filter FORWARD` chain.
//!
//! Docker sets that chain's policy to DROP (when it turns on forwarding itself) and loads
//! `br_netfilter`, so both routed traffic of berth's bridges and traffic between containers
//! on one bridge pass through it. A packet must be accepted by every base chain on the
//! forward hook, so berth's own nftables table cannot overrule that DROP: berth's containers
//! would lose the outside world, their published ports and each other as soon as Docker
//! starts. Docker keeps one chain for other people's rules, `DOCKER-USER` (jumped to first,
//! kept across Docker restarts); berth lets its bridges' traffic through there, or at the top
//! of `FORWARD` itself when the policy is DROP without Docker. These rules only undo the
//! iptables verdict: berth's own table still filters (isolation, `--internal`, published
//! ports only).
//!
//! The `iptables` binary is used, as Docker uses it, so whichever backend (nft or legacy) the
//! host's Docker writes to is the one berth writes to. Without `iptables` there is no such
//! chain to worry about.

use std::process::{Command, Stdio};

use berth_errdefs::{Category, HasCategory};

/// Docker's chain for rules of its users.
pub const DOCKER_USER: &str = "DOCKER-USER";

/// An `iptables` failure.
#[derive(Debug, thiserror::Error)]
#[error("iptables {args}: {message}")]
pub struct ForwardError {
    args: String,
    message: String,
}

impl HasCategory for ForwardError {
    fn category(&self) -> Category {
        Category::System
    }
}

/// Where a bridge's ACCEPT rules go, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardChain {
    /// Docker's `DOCKER-USER`.
    DockerUser,
    /// `FORWARD` itself: its policy is DROP and Docker's chain does not exist.
    Forward,
}

impl ForwardChain {
    fn name(self) -> &'static str {
        match self {
            ForwardChain::DockerUser => DOCKER_USER,
            ForwardChain::Forward => "FORWARD",
        }
    }
}

/// The host's iptables, through the `iptables` binary.
#[derive(Debug, Clone)]
pub struct IptablesForward {
    binary: String,
}

impl IptablesForward {
    /// The host's `iptables`, or `None` when no `PATH` directory has one (looked up, not
    /// run: this is on the daemon's start-up path).
    pub fn detect() -> Option<IptablesForward> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("iptables"))
            .find(|p| p.is_file())
            .map(|p| IptablesForward {
                binary: p.display().to_string(),
            })
    }

    /// Which chain needs berth's ACCEPT rules now: `DOCKER-USER` if it exists, `FORWARD` if
    /// its policy drops, else none.
    pub fn chain_in_use(&self) -> Result<Option<ForwardChain>, ForwardError> {
        if self.run(&["-S", DOCKER_USER]).is_ok() {
            return Ok(Some(ForwardChain::DockerUser));
        }
        let forward = self.run(&["-S", "FORWARD"])?;
        let drops = forward.lines().any(|l| {
            let l = l.trim();
            l == "-P FORWARD DROP" || l == "-P FORWARD REJECT"
        });
        Ok(drops.then_some(ForwardChain::Forward))
    }

    /// Lets the bridges' traffic through the chain in use (no-op when none is). Idempotent.
    pub fn allow(&self, bridges: &[String]) -> Result<Option<ForwardChain>, ForwardError> {
        let Some(chain) = self.chain_in_use()? else {
            return Ok(None);
        };
        for bridge in bridges {
            for dir in ["-i", "-o"] {
                let rule = rule(dir, bridge);
                if !self.has(chain, &rule) {
                    let mut args = vec!["-I", chain.name(), "1"];
                    args.extend(rule.iter().map(String::as_str));
                    self.run(&args)?;
                }
            }
        }
        Ok(Some(chain))
    }

    /// Removes `bridge`'s rules from both chains (the chain in use may have changed since
    /// they were added: Docker started or stopped). Missing rules are not an error.
    pub fn revoke(&self, bridge: &str) {
        for chain in [ForwardChain::DockerUser, ForwardChain::Forward] {
            for dir in ["-i", "-o"] {
                let rule = rule(dir, bridge);
                // Bounded: one rule is deleted per call; duplicates are at most a handful.
                for _ in 0..8 {
                    if !self.has(chain, &rule) {
                        break;
                    }
                    let mut args = vec!["-D", chain.name()];
                    args.extend(rule.iter().map(String::as_str));
                    if self.run(&args).is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// True when `chain` holds `rule` (as `iptables -C` checks).
    pub fn has(&self, chain: ForwardChain, rule: &[String]) -> bool {
        let mut args = vec!["-C", chain.name()];
        args.extend(rule.iter().map(String::as_str));
        self.run(&args).is_ok()
    }

    fn run(&self, args: &[&str]) -> Result<String, ForwardError> {
        let fail = |message: String| ForwardError {
            args: args.join(" "),
            message,
        };
        // `-w`: wait for the xtables lock instead of failing when Docker holds it.
        let out = Command::new(&self.binary)
            .arg("-w")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The ACCEPT rule for traffic entering (`-i`) or leaving (`-o`) the host through `bridge`.
pub fn rule(dir: &str, bridge: &str) -> Vec<String> {
    [dir, bridge, "-j", "ACCEPT"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}
