//! Typed calls, one per endpoint the `berth` CLI uses, with the queries the docker CLI sends.

use hyper::Method;
use hyper::body::Incoming;

use crate::types::{
    ContainerCreate, ContainerSummary, ExecConfig, ExecInspect, IdResponse, ImageSummary,
    WaitResponse,
};
use crate::{Client, ClientError, Hijacked, ReqBody, empty_body, read_all};

/// A path segment as the docker CLI puts it: names and ids as typed, unescaped.
fn seg(kind: &str, id: &str, rest: &str) -> String {
    format!("/{kind}/{id}{rest}")
}

fn flag(on: bool, name: &'static str, out: &mut Vec<(&'static str, String)>) {
    if on {
        out.push((name, "1".to_owned()));
    }
}

/// A wait whose headers have arrived; the body comes when the condition is met.
pub struct WaitHandle {
    body: Incoming,
}

impl WaitHandle {
    /// Waits for the container's exit status.
    pub async fn status(self) -> Result<WaitResponse, ClientError> {
        let body = read_all(self.body, 1 << 20).await?;
        Ok(serde_json::from_slice(&body)?)
    }
}

/// The query of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub timestamps: bool,
    pub tail: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Client {
    pub async fn version(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/version", &[]).await
    }

    pub async fn info(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/info", &[]).await
    }

    /// `GET /containers/json`.
    pub async fn containers(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: &berth_reference::Filters,
    ) -> Result<Vec<ContainerSummary>, ClientError> {
        let mut q = Vec::new();
        flag(all, "all", &mut q);
        if let Some(n) = limit {
            q.push(("limit", n.to_string()));
        }
        flag(size, "size", &mut q);
        if !filters.is_empty() {
            q.push(("filters", filters.to_json()));
        }
        self.get_json("/containers/json", &q).await
    }

    /// `GET /images/json`.
    pub async fn images(
        &self,
        all: bool,
        filters: &berth_reference::Filters,
    ) -> Result<Vec<ImageSummary>, ClientError> {
        let mut q = Vec::new();
        flag(all, "all", &mut q);
        if !filters.is_empty() {
            q.push(("filters", filters.to_json()));
        }
        self.get_json("/images/json", &q).await
    }

    /// Inspect as the daemon wrote it (its field order kept, as `docker inspect` prints).
    pub async fn inspect_raw(&self, kind: &str, id: &str) -> Result<Vec<u8>, ClientError> {
        let response = self
            .request(Method::GET, &seg(kind, id, "/json"), &[], empty_body(), &[])
            .await?;
        read_all(response.into_body(), 256 << 20).await
    }

    pub async fn container_inspect(&self, id: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(&seg("containers", id, "/json"), &[]).await
    }

    pub async fn image_inspect(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(&seg("images", name, "/json"), &[]).await
    }

    pub async fn container_create(
        &self,
        name: Option<&str>,
        body: &ContainerCreate,
    ) -> Result<IdResponse, ClientError> {
        let q: Vec<_> = name.map(|n| ("name", n.to_owned())).into_iter().collect();
        self.post_json("/containers/create", &q, body).await
    }

    /// `POST …/start` (a 304 for a running container is success).
    pub async fn container_start(&self, id: &str) -> Result<(), ClientError> {
        self.post_empty(&seg("containers", id, "/start"), &[]).await
    }

    /// `POST …/wait`; returns once the headers are in, as the CLI needs before `start`.
    pub async fn container_wait(
        &self,
        id: &str,
        condition: Option<&str>,
    ) -> Result<WaitHandle, ClientError> {
        let q: Vec<_> = condition
            .map(|c| ("condition", c.to_owned()))
            .into_iter()
            .collect();
        let response = self
            .request(
                Method::POST,
                &seg("containers", id, "/wait"),
                &q,
                empty_body(),
                &[],
            )
            .await?;
        Ok(WaitHandle {
            body: response.into_body(),
        })
    }

    /// `POST …/attach?stream=1…` (hijacked).
    pub async fn container_attach(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Hijacked, ClientError> {
        let mut q = Vec::new();
        flag(stderr, "stderr", &mut q);
        flag(stdin, "stdin", &mut q);
        flag(stdout, "stdout", &mut q);
        q.push(("stream", "1".to_owned()));
        self.hijack(&seg("containers", id, "/attach"), &q, None)
            .await
    }

    pub async fn container_resize(&self, id: &str, h: u16, w: u16) -> Result<(), ClientError> {
        let q = [("h", h.to_string()), ("w", w.to_string())];
        self.post_empty(&seg("containers", id, "/resize"), &q).await
    }

    pub async fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ClientError> {
        let mut q = Vec::new();
        if let Some(s) = signal {
            q.push(("signal", s.to_owned()));
        }
        if let Some(t) = timeout {
            q.push(("t", t.to_string()));
        }
        self.post_empty(&seg("containers", id, "/stop"), &q).await
    }

    pub async fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
    ) -> Result<(), ClientError> {
        let q: Vec<_> = timeout.map(|t| ("t", t.to_string())).into_iter().collect();
        self.post_empty(&seg("containers", id, "/restart"), &q)
            .await
    }

    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<(), ClientError> {
        let q: Vec<_> = signal
            .map(|s| ("signal", s.to_owned()))
            .into_iter()
            .collect();
        self.post_empty(&seg("containers", id, "/kill"), &q).await
    }

    pub async fn container_remove(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ClientError> {
        let mut q = Vec::new();
        flag(force, "force", &mut q);
        flag(volumes, "v", &mut q);
        let response = self
            .request(
                Method::DELETE,
                &seg("containers", id, ""),
                &q,
                empty_body(),
                &[],
            )
            .await?;
        read_all(response.into_body(), 1 << 20).await?;
        Ok(())
    }

    /// A simple `POST /containers/{id}/<action>` (pause, unpause).
    pub async fn container_action(&self, id: &str, action: &str) -> Result<(), ClientError> {
        self.post_empty(&seg("containers", id, &format!("/{action}")), &[])
            .await
    }

    pub async fn container_rename(&self, id: &str, name: &str) -> Result<(), ClientError> {
        self.post_empty(
            &seg("containers", id, "/rename"),
            &[("name", name.to_owned())],
        )
        .await
    }

    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<serde_json::Value, ClientError> {
        let q: Vec<_> = ps_args
            .map(|a| ("ps_args", a.to_owned()))
            .into_iter()
            .collect();
        self.get_json(&seg("containers", id, "/top"), &q).await
    }

    /// `GET …/logs`: the response whose body is the (framed or raw) log stream.
    pub async fn container_logs(
        &self,
        id: &str,
        opts: &LogsOptions,
    ) -> Result<Incoming, ClientError> {
        let mut q = Vec::new();
        flag(opts.follow, "follow", &mut q);
        if let Some(s) = &opts.since {
            q.push(("since", s.clone()));
        }
        q.push(("stderr", "1".to_owned()));
        q.push(("stdout", "1".to_owned()));
        q.push((
            "tail",
            opts.tail.clone().unwrap_or_else(|| "all".to_owned()),
        ));
        flag(opts.timestamps, "timestamps", &mut q);
        if let Some(u) = &opts.until {
            q.push(("until", u.clone()));
        }
        let response = self
            .request(
                Method::GET,
                &seg("containers", id, "/logs"),
                &q,
                empty_body(),
                &[],
            )
            .await?;
        Ok(response.into_body())
    }

    pub async fn exec_create(&self, id: &str, config: &ExecConfig) -> Result<String, ClientError> {
        let r: IdResponse = self
            .post_json(&seg("containers", id, "/exec"), &[], config)
            .await?;
        Ok(r.id)
    }

    /// `POST /exec/{id}/start` hijacked (attached exec).
    pub async fn exec_start_attached(
        &self,
        exec_id: &str,
        tty: bool,
    ) -> Result<Hijacked, ClientError> {
        let body = serde_json::json!({"Detach": false, "Tty": tty});
        self.hijack(&seg("exec", exec_id, "/start"), &[], Some(&body))
            .await
    }

    /// `POST /exec/{id}/start` with `Detach: true`.
    pub async fn exec_start_detached(&self, exec_id: &str, tty: bool) -> Result<(), ClientError> {
        let body = serde_json::json!({"Detach": true, "Tty": tty});
        let response = self
            .request(
                Method::POST,
                &seg("exec", exec_id, "/start"),
                &[],
                crate::json_body(&body)?,
                &[("Content-Type", "application/json")],
            )
            .await?;
        read_all(response.into_body(), 1 << 20).await?;
        Ok(())
    }

    pub async fn exec_resize(&self, exec_id: &str, h: u16, w: u16) -> Result<(), ClientError> {
        let q = [("h", h.to_string()), ("w", w.to_string())];
        self.post_empty(&seg("exec", exec_id, "/resize"), &q).await
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect, ClientError> {
        self.get_json(&seg("exec", exec_id, "/json"), &[]).await
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub async fn image_tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), ClientError> {
        let q = [("repo", repo.to_owned()), ("tag", tag.to_owned())];
        self.post_empty(&seg("images", source, "/tag"), &q).await
    }

    /// `DELETE /images/{name}`: the Untagged/Deleted list.
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        let mut q = Vec::new();
        flag(force, "force", &mut q);
        flag(no_prune, "noprune", &mut q);
        let response = self
            .request(
                Method::DELETE,
                &seg("images", name, ""),
                &q,
                empty_body(),
                &[],
            )
            .await?;
        let body = read_all(response.into_body(), 16 << 20).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    pub async fn image_history(&self, name: &str) -> Result<Vec<serde_json::Value>, ClientError> {
        self.get_json(&seg("images", name, "/history"), &[]).await
    }

    /// A POST whose answer is a stream (JSON messages, a tar): the body to read.
    pub async fn post_stream(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        headers: &[(&str, &str)],
    ) -> Result<Incoming, ClientError> {
        let response = self
            .request(Method::POST, path, query, body, headers)
            .await?;
        Ok(response.into_body())
    }

    /// A GET whose answer is a stream (events, save).
    pub async fn get_stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Incoming, ClientError> {
        let response = self
            .request(Method::GET, path, query, empty_body(), &[])
            .await?;
        Ok(response.into_body())
    }

    /// `POST /{containers|images}/prune`.
    pub async fn prune(
        &self,
        kind: &str,
        filters: &berth_reference::Filters,
    ) -> Result<serde_json::Value, ClientError> {
        let q: Vec<_> = (!filters.is_empty())
            .then(|| ("filters", filters.to_json()))
            .into_iter()
            .collect();
        let response = self
            .request(
                Method::POST,
                &format!("/{kind}/prune"),
                &q,
                empty_body(),
                &[],
            )
            .await?;
        let body = read_all(response.into_body(), 16 << 20).await?;
        Ok(serde_json::from_slice(&body)?)
    }
}
