//! Typed calls for a container's files: the archive endpoints of `docker cp`, `export`,
//! `diff` (`changes`) and `commit`, with the paths and queries the docker CLI sends.

use base64::Engine as _;
use hyper::Method;
use serde_json::Value;

use crate::{Client, ClientError, Incoming, ReqBody, empty_body, read_all};

/// The most of a `changes` or `commit` answer that is read.
const MAX_BODY: usize = 256 << 20;

/// The header with a path's stat.
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn archive_path(id: &str) -> String {
    format!("/containers/{id}/archive")
}

/// The decoded `X-Docker-Container-Path-Stat` (`name`, `size`, `mode`, `mtime`,
/// `linkTarget`), `Null` when absent or unreadable.
fn stat_of(response: &hyper::Response<Incoming>) -> Value {
    response
        .headers()
        .get(STAT_HEADER)
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or(Value::Null)
}

impl Client {
    /// `HEAD /containers/{id}/archive?path=`: the path's stat.
    pub async fn container_stat_path(&self, id: &str, path: &str) -> Result<Value, ClientError> {
        let response = self
            .request(
                Method::HEAD,
                &archive_path(id),
                &[("path", path.to_owned())],
                empty_body(),
                &[],
            )
            .await?;
        Ok(stat_of(&response))
    }

    /// `GET /containers/{id}/archive?path=`: the stat and the tar.
    pub async fn container_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(Value, Incoming), ClientError> {
        let response = self
            .request(
                Method::GET,
                &archive_path(id),
                &[("path", path.to_owned())],
                empty_body(),
                &[],
            )
            .await?;
        Ok((stat_of(&response), response.into_body()))
    }

    /// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=true&copyUIDGID=`.
    pub async fn container_extract(
        &self,
        id: &str,
        dir: &str,
        copy_uid_gid: bool,
        tar: ReqBody,
    ) -> Result<(), ClientError> {
        let mut q = vec![
            ("path", dir.to_owned()),
            ("noOverwriteDirNonDir", "true".to_owned()),
        ];
        if copy_uid_gid {
            q.push(("copyUIDGID", "true".to_owned()));
        }
        let response = self
            .request(
                Method::PUT,
                &archive_path(id),
                &q,
                tar,
                &[("Content-Type", "application/x-tar")],
            )
            .await?;
        read_all(response.into_body(), MAX_BODY).await?;
        Ok(())
    }

    /// `GET /containers/{id}/changes`: `[{Path, Kind}]`.
    pub async fn container_changes(&self, id: &str) -> Result<Vec<Value>, ClientError> {
        let list: Option<Vec<Value>> = self
            .get_json(&format!("/containers/{id}/changes"), &[])
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: the new id.
    pub async fn container_commit(&self, query: &[(&str, String)]) -> Result<String, ClientError> {
        let answer: Value = self.post_json("/commit", query, &Value::Null).await?;
        Ok(answer["Id"].as_str().unwrap_or_default().to_owned())
    }
}
