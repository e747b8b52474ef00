//! `docker exec`: extra processes in a running container, run by its shim. The process is
//! the container's own (from its bundle: environment, capabilities, seccomp, user) with the
//! exec's command, environment, working directory and user on top.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_errdefs::{CategorizedError, Category};
use berth_shim::protocol::Request;
use serde::Deserialize;

use super::{Containers, Result, invalid, shim, sys};

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    /// `user[:group]` (the container's when empty).
    pub user: String,
    /// `--privileged` (accepted; the container's capabilities apply).
    pub privileged: bool,
    /// Allocate a pty.
    pub tty: bool,
    /// Forward stdin.
    pub attach_stdin: bool,
    /// Send stdout.
    pub attach_stdout: bool,
    /// Send stderr.
    pub attach_stderr: bool,
    /// Extra `KEY=value`s.
    pub env: Option<Vec<String>>,
    /// Working directory (the container's when empty).
    pub working_dir: String,
    /// The command.
    pub cmd: Option<Vec<String>>,
    /// `--detach-keys` (Docker's syntax; the default sequence when empty).
    pub detach_keys: String,
}

/// What `GET /exec/{id}/json` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecInfo {
    /// The exec's id.
    pub id: String,
    /// Its container.
    pub container_id: String,
    /// How it was created.
    pub config: ExecConfig,
    /// Started and not yet exited.
    pub running: bool,
    /// Started at all.
    pub started: bool,
    /// The exit code once it has exited.
    pub exit_code: Option<i32>,
    /// Its pid once started.
    pub pid: i32,
}

impl Containers {
    /// `POST /containers/{id}/exec`: registers an exec; returns its id.
    pub fn exec_create(&self, name_or_id: &str, config: ExecConfig) -> Result<String> {
        let c = self.find(name_or_id)?;
        let (running, paused) = {
            let r = c.rec();
            (r.state.running, r.state.paused)
        };
        if !running {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("Container {} is not running", c.id),
            ));
        }
        if paused {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!(
                    "Container {} is paused, unpause the container before exec",
                    c.id
                ),
            ));
        }
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            return Err(invalid("No exec command specified"));
        }
        let id = berth_reference::generate_id();
        self.execs_lock().insert(
            id.clone(),
            ExecInfo {
                id: id.clone(),
                container_id: c.id.clone(),
                config,
                running: false,
                started: false,
                exit_code: None,
                pid: 0,
            },
        );
        Ok(id)
    }

    fn exec_info(&self, exec_id: &str) -> Result<ExecInfo> {
        self.execs_lock().get(exec_id).cloned().ok_or_else(|| {
            CategorizedError::new(
                Category::NotFound,
                format!("No such exec instance: {exec_id}"),
            )
        })
    }

    /// `POST /exec/{id}/start`: starts the process; unless `detach`, returns the attach
    /// stream (connected before the process starts, so no output is lost) and whether it
    /// is a TTY.
    pub async fn exec_start(
        self: &Arc<Self>,
        exec_id: &str,
        detach: bool,
    ) -> Result<(bool, Option<tokio::net::UnixStream>)> {
        let info = self.exec_info(exec_id)?;
        {
            let mut execs = self.execs_lock();
            let Some(e) = execs.get_mut(exec_id) else {
                return Err(invalid("exec removed"));
            };
            if e.started {
                return Err(CategorizedError::new(
                    Category::Conflict,
                    format!("Exec {exec_id} has already been started"),
                ));
            }
            e.started = true;
        }
        let c = self.find(&info.container_id)?;
        if !c.rec().state.running {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("Container {} is not running", c.id),
            ));
        }
        let process = self.exec_process(&c.id, &info.config)?;
        let state_dir = self.state_dir(&c.id);
        let tty = info.config.tty;
        shim::call(
            &state_dir,
            Request::Exec {
                exec_id: exec_id.to_owned(),
                process: Box::new(process),
                tty,
                stdin: info.config.attach_stdin,
            },
        )
        .await?;
        let stream = if detach {
            None
        } else {
            Some(
                shim::attach_to(
                    &state_dir,
                    super::AttachOptions {
                        stdin: info.config.attach_stdin,
                        stdout: info.config.attach_stdout,
                        stderr: info.config.attach_stderr,
                    },
                    Some(exec_id),
                )
                .await?,
            )
        };
        let pid = shim::exec_start(&state_dir, exec_id).await?;
        if let Some(e) = self.execs_lock().get_mut(exec_id) {
            e.running = true;
            e.pid = pid;
        }
        let this = self.clone();
        let exec_id = exec_id.to_owned();
        tokio::spawn(async move {
            let code = match shim::exec_wait(&state_dir, &exec_id).await {
                Ok(exit) => exit.exit_code,
                Err(_) => -1,
            };
            if let Some(e) = this.execs_lock().get_mut(&exec_id) {
                e.running = false;
                e.exit_code = Some(code);
            }
        });
        Ok((tty, stream))
    }

    /// `GET /exec/{id}/json`. Asks the shim when the exit may not be recorded yet, so that
    /// a client reading it right after the stream closed sees the exit code.
    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInfo> {
        let mut info = self.exec_info(exec_id)?;
        if info.running {
            let state_dir = self.state_dir(&info.container_id);
            if let Ok(Some(exit)) = shim::exec_exit(&state_dir, exec_id).await {
                info.running = false;
                info.exit_code = Some(exit);
                if let Some(e) = self.execs_lock().get_mut(exec_id) {
                    e.running = false;
                    e.exit_code = Some(exit);
                }
            }
        }
        Ok(info)
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, exec_id: &str, width: u16, height: u16) -> Result<()> {
        let info = self.exec_info(exec_id)?;
        shim::call(
            &self.state_dir(&info.container_id),
            Request::Resize {
                width,
                height,
                exec_id: Some(exec_id.to_owned()),
            },
        )
        .await
    }

    pub(super) fn exec_process(
        &self,
        id: &str,
        cfg: &ExecConfig,
    ) -> Result<oci_spec::runtime::Process> {
        let bundle = self.bundle_dir(id).join("config.json");
        let data = std::fs::read(&bundle).map_err(|e| sys("read the bundle", e))?;
        let spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&data).map_err(|e| sys("parse the bundle", e))?;
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_args(cfg.cmd.clone());
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut order = Vec::new();
        for entry in process
            .env()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .chain(cfg.env.clone().unwrap_or_default())
        {
            let key = entry.split('=').next().unwrap_or("").to_owned();
            if !env.contains_key(&key) {
                order.push(key.clone());
            }
            env.insert(key, entry);
        }
        process.set_env(Some(
            order.iter().filter_map(|k| env.get(k).cloned()).collect(),
        ));
        if !cfg.working_dir.is_empty() {
            process.set_cwd(cfg.working_dir.clone().into());
        }
        process.set_terminal(Some(cfg.tty));
        if !cfg.user.is_empty() {
            let user = berth_spec::resolve_user(&self.rootfs_dir(id), &cfg.user, &[])
                .map_err(|e| CategorizedError::from_error(&e))?;
            let mut u = process.user().clone();
            u.set_uid(user.uid);
            u.set_gid(user.gid);
            u.set_additional_gids(Some(user.additional_gids));
            process.set_user(u);
        }
        Ok(process)
    }
}
