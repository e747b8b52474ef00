//! `docker update`: new resource limits and restart policy for a container. Values of 0 (or
//! empty) leave a setting as it is, as in Docker. A running container's cgroup gets them at
//! once; the record and the bundle keep them, so a restart keeps them too.

use berth_errdefs::{CategorizedError, Category};

use super::{Containers, HostConfig, RestartPolicy, Result, files, invalid, sys};

/// What `POST /containers/{id}/update` may change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateRequest {
    /// `--memory`.
    pub memory: i64,
    /// `--memory-swap`.
    pub memory_swap: i64,
    /// `--memory-reservation`.
    pub memory_reservation: i64,
    /// `--cpus` × 10⁹.
    pub nano_cpus: i64,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpu-period`.
    pub cpu_period: i64,
    /// `--cpu-quota`.
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit`; `None` leaves it.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight`.
    pub blkio_weight: u16,
    /// `--restart`; `None` (or an empty name) leaves it.
    pub restart_policy: Option<RestartPolicy>,
}

/// Docker's `conflictingUpdateOptions` are invalid-parameter errors.
fn conflict(msg: &str) -> CategorizedError {
    invalid(format!("Conflicting options: {msg}"))
}

/// The new host config: `old` with every setting `req` gives, checked as Docker does.
pub(crate) fn merge(old: &HostConfig, req: &UpdateRequest) -> Result<HostConfig> {
    let mut h = old.clone();
    if req.memory < 0 || req.memory_swap < -1 || req.memory_reservation < 0 {
        return Err(invalid("Invalid value: a memory limit cannot be negative"));
    }
    if req.blkio_weight != 0 {
        h.blkio_weight = req.blkio_weight;
    }
    if req.cpu_shares != 0 {
        h.cpu_shares = req.cpu_shares;
    }
    if req.nano_cpus != 0 {
        h.nano_cpus = req.nano_cpus;
    }
    if req.cpu_period != 0 {
        h.cpu_period = req.cpu_period;
    }
    if req.cpu_quota != 0 {
        h.cpu_quota = req.cpu_quota;
    }
    if !req.cpuset_cpus.is_empty() {
        h.cpuset_cpus = req.cpuset_cpus.clone();
    }
    if !req.cpuset_mems.is_empty() {
        h.cpuset_mems = req.cpuset_mems.clone();
    }
    if req.memory != 0 {
        if h.memory_swap > 0 && req.memory > h.memory_swap && req.memory_swap == 0 {
            return Err(conflict(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        h.memory = req.memory;
    }
    if req.memory_swap != 0 {
        h.memory_swap = req.memory_swap;
    }
    if req.memory_reservation != 0 {
        h.memory_reservation = req.memory_reservation;
    }
    if req.pids_limit.is_some() {
        h.pids_limit = req.pids_limit;
    }
    if let Some(policy) = req.restart_policy.as_ref().filter(|p| !p.name.is_empty()) {
        if h.auto_remove && policy.name != "no" {
            return Err(conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        h.restart_policy = Some(policy.clone());
    }
    Ok(h)
}

impl Containers {
    /// `POST /containers/{id}/update`: returns Docker's warnings (none so far).
    pub async fn update(&self, name_or_id: &str, req: &UpdateRequest) -> Result<Vec<String>> {
        let c = self.find(name_or_id)?;
        let _op = c.op.lock().await;
        let (config, old, running) = {
            let r = c.rec();
            (r.config.clone(), r.host_config.clone(), r.state.running)
        };
        let new = merge(&old, req)?;
        let spec_cfg = files::spec_config(&config, &new)?;
        let host = berth_spec::HostFacts::probe();
        let resources = berth_spec::linux_resources(&spec_cfg.host.resources, &host)
            .map_err(|e| CategorizedError::from_error(&e))?;
        if running {
            let cgroup = self.cgroup_of(&c.id)?;
            let to_apply = resources.clone();
            tokio::task::spawn_blocking(move || cgroup.apply(&to_apply))
                .await
                .map_err(|e| sys("update task", e))?
                .map_err(|e| {
                    CategorizedError::new(
                        Category::System,
                        format!("Cannot update container {}: {e}", c.id),
                    )
                })?;
        }
        self.store_resources(&c.id, &resources)?;
        let record = {
            let mut r = c.rec();
            r.host_config = new;
            r.clone()
        };
        self.save(&c)?;
        self.publish(&record, "update", &[]);
        Ok(Vec::new())
    }

    /// Puts the limits into the bundle's `linux.resources` (devices stay as they are), so the
    /// next start of the same bundle uses them. A missing bundle is regenerated at start from
    /// the record, which already has them.
    fn store_resources(&self, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let path = self.bundle_dir(id).join("config.json");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(sys("read the bundle", e)),
        };
        let mut spec: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| sys("parse the bundle", e))?;
        let new = serde_json::to_value(r).map_err(|e| sys("encode resources", e))?;
        let Some(slot) = spec
            .get_mut("linux")
            .and_then(|l| l.as_object_mut())
            .map(|l| {
                l.entry("resources")
                    .or_insert_with(|| serde_json::json!({}))
            })
            .and_then(|r| r.as_object_mut())
        else {
            return Err(sys("bundle", "linux.resources is not an object"));
        };
        for key in ["memory", "cpu", "pids", "blockIO"] {
            match new.get(key).filter(|v| !v.is_null()) {
                Some(v) => slot.insert(key.to_owned(), v.clone()),
                None => slot.remove(key),
            };
        }
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| sys("encode the spec", e))?;
        files::write_replace(&path, &json)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn zero_leaves_settings_and_values_replace_them() {
        let old = HostConfig {
            memory: 64 << 20,
            cpu_shares: 512,
            pids_limit: Some(50),
            ..Default::default()
        };
        let same = merge(&old, &UpdateRequest::default()).unwrap();
        assert_eq!(same, old);
        let req = UpdateRequest {
            memory: 32 << 20,
            pids_limit: Some(10),
            cpuset_cpus: "0".into(),
            restart_policy: Some(RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            }),
            ..Default::default()
        };
        let new = merge(&old, &req).unwrap();
        assert_eq!(new.memory, 32 << 20);
        assert_eq!(new.cpu_shares, 512);
        assert_eq!(new.pids_limit, Some(10));
        assert_eq!(new.cpuset_cpus, "0");
        assert_eq!(new.restart_policy.unwrap().name, "always");
    }

    #[test]
    fn docker_conflicts_are_refused() {
        let old = HostConfig {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            auto_remove: true,
            ..Default::default()
        };
        let req = UpdateRequest {
            memory: 256 << 20,
            ..Default::default()
        };
        let e = merge(&old, &req).unwrap_err();
        assert!(e.message.contains("memoryswap"), "{}", e.message);
        let req = UpdateRequest {
            restart_policy: Some(RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            }),
            ..Default::default()
        };
        assert!(
            merge(&old, &req)
                .unwrap_err()
                .message
                .contains("AutoRemove")
        );
        let req = UpdateRequest {
            memory: -5,
            ..Default::default()
        };
        assert_eq!(
            merge(&old, &req).unwrap_err().category,
            Category::InvalidParameter
        );
    }
}
