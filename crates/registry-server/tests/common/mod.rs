//! A registry served on an ephemeral loopback port, and small push helpers.

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use anyhow::{Result, ensure};
use berth_content::Digest;
use berth_registry_server::{Options, Registry};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub struct Server {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub dir: TempDir,
    pub client: Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(options: Options) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, options).await
    }

    pub async fn start_in(dir: TempDir, options: Options) -> Result<Server> {
        let registry = Registry::open(dir.path(), options)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(berth_registry_server::serve(listener, registry));
        Ok(Server {
            base: format!("http://{addr}"),
            addr,
            dir,
            client: Client::builder().pool_max_idle_per_host(0).build()?,
            task,
        })
    }

    /// Stops serving and gives the root back (for gc).
    pub async fn stop(self) -> TempDir {
        self.task.abort();
        let _ = self.task.await;
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Result<Response> {
        Ok(self.request(Method::GET, path).send().await?)
    }

    /// Monolithic push: `POST ?digest=` with the body.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(data);
        let r = self
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .body(data.to_vec())
            .send()
            .await?;
        ensure!(
            r.status() == StatusCode::CREATED,
            "push blob: {} {}",
            r.status(),
            r.text().await?
        );
        Ok(digest)
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<Response> {
        Ok(self
            .request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await?)
    }

    /// Pushes a config and one layer, and returns an OCI manifest over them (not pushed).
    pub async fn image_manifest(&self, repo: &str, layer: &[u8]) -> Result<Vec<u8>> {
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
            .to_string();
        let config_digest = self.push_blob(repo, config.as_bytes()).await?;
        let layer_digest = self.push_blob(repo, layer).await?;
        Ok(manifest_over(
            &config_digest,
            config.len(),
            &[(layer_digest, layer.len())],
        ))
    }
}

pub fn manifest_over(config: &Digest, config_size: usize, layers: &[(Digest, usize)]) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .map(|(d, s)| json!({"mediaType": OCI_LAYER, "digest": d.to_string(), "size": s}))
        .collect();
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": config_size},
        "layers": layers,
    })
    .to_string()
    .into_bytes()
}

/// The first error code of a distribution error body.
pub async fn error_code(r: Response) -> Result<String> {
    let body: Value = r.json().await?;
    Ok(body["errors"][0]["code"].as_str().unwrap_or("").to_owned())
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub fn options(delete_enabled: bool) -> Options {
    Options {
        delete_enabled,
        htpasswd: None,
    }
}

pub fn with_htpasswd(text: &str) -> Result<Options> {
    Ok(Options {
        delete_enabled: false,
        htpasswd: Some(Arc::new(berth_registry_server::Htpasswd::parse(text)?)),
    })
}

/// A self-signed certificate for 127.0.0.1 (`ca.crt`, `key.pem` in `dir`) made with openssl;
/// false when openssl is missing.
pub fn self_signed(dir: &std::path::Path) -> Result<bool> {
    let out = match std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("ca.crt"))
        .output()
    {
        Ok(out) => out,
        Err(_) => return Ok(false),
    };
    ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(true)
}
