//! The client against berth's registry server on loopback, with fronts that add Bearer
//! token auth or misbehave (wrong bytes, dropped connections, huge manifests).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_content::ContentStore;
use berth_reference::{Digest, Reference};
use berth_registry_client::manifest::{self, DOCKER_CONFIG, DOCKER_LAYER_GZIP, OCI_INDEX};
use berth_registry_client::{
    Client, ClientError, Credentials, Descriptor, Options, Platform, Progress, PushImage,
};
use berth_registry_server::Registry;
use tempfile::TempDir;
use tower::ServiceExt;

/// A registry (and whatever front the test puts before it) on an ephemeral loopback port.
struct Server {
    addr: std::net::SocketAddr,
    registry: Router,
    _dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// The registry alone.
    async fn plain() -> Result<Server> {
        Server::with_front(|registry| registry).await
    }

    /// The registry behind `front`, which gets the registry's router to forward to.
    async fn with_front(front: impl FnOnce(Router) -> Router) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let registry = Registry::open(dir.path(), Default::default())?.router();
        let app = front(registry.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Server {
            addr,
            registry,
            _dir: dir,
            task,
        })
    }

    fn reference(&self, name: &str) -> Result<Reference> {
        Ok(Reference::parse_normalized(&format!(
            "{}/{name}",
            self.addr
        ))?)
    }

    /// Puts raw bytes straight into the registry (bypassing any front).
    async fn put(&self, method: &str, path: &str, kind: &str, body: Vec<u8>) -> Result<()> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, kind)
            .body(Body::from(body))?;
        let response = self.registry.clone().oneshot(req).await?;
        ensure!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        Ok(())
    }
}

async fn forward(registry: Router, req: Request) -> Response {
    match registry.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// A one-file tar layer.
fn layer_tar(name: &str, content: &[u8]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, content)?;
    Ok(b.into_inner()?)
}

fn put_blob(store: &ContentStore, data: &[u8]) -> Result<Digest> {
    let digest = Digest::sha256_of(data);
    let cd = berth_content::Digest::parse(digest.as_str())?;
    let mut w = store.writer(Some(cd), Some(data.len() as u64))?;
    w.write_all(data)?;
    w.commit()?;
    Ok(digest)
}

/// An image in `store` with one layer per entry of `layers` (gzip), for `arch`.
fn make_image(store: &ContentStore, arch: &str, layers: &[&[u8]]) -> Result<PushImage> {
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    for (i, content) in layers.iter().enumerate() {
        let tar = layer_tar(&format!("file{i}"), content)?;
        diff_ids.push(Digest::sha256_of(&tar).to_string());
        let blob = gzip(&tar)?;
        let digest = put_blob(store, &blob)?;
        let id = digest.hex()[..12].to_owned();
        descs.push((desc(DOCKER_LAYER_GZIP, blob.len(), digest), id));
    }
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let digest = put_blob(store, config.as_bytes())?;
    Ok(PushImage {
        config: desc(DOCKER_CONFIG, config.len(), digest),
        layers: descs,
        mount_from: Vec::new(),
    })
}

fn desc(kind: &str, size: usize, digest: Digest) -> Descriptor {
    Descriptor {
        media_type: kind.to_owned(),
        size: size as u64,
        digest,
        platform: None,
    }
}

fn client() -> Result<Client> {
    Ok(Client::new(Options::default())?)
}

fn store() -> Result<(TempDir, ContentStore)> {
    let dir = tempfile::tempdir()?;
    let store = ContentStore::open(dir.path().join("content"))?;
    Ok((dir, store))
}

fn has(store: &ContentStore, d: &Digest) -> bool {
    berth_content::Digest::parse(d.as_str()).is_ok_and(|d| store.exists(&d))
}

/// Collects progress events.
#[derive(Default)]
struct Events(Mutex<Vec<Progress>>);

impl Events {
    fn push(&self, p: Progress) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(p);
    }
    fn all(&self) -> Vec<Progress> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_by_tag_and_by_digest() -> Result<()> {
    let server = Server::plain().await?;
    let (_src_dir, src) = store()?;
    let image = make_image(&src, "amd64", &[b"one", b"two", b"three", b"four"])?;
    let reference = server.reference("test/img:1")?;
    let events = Events::default();
    let pushed = client()?
        .push(&reference, None, &src, &image, &|p| events.push(p))
        .await?;
    let pushed_ids = events
        .all()
        .iter()
        .filter(|p| matches!(p, Progress::Pushed { .. }))
        .count();
    assert_eq!(pushed_ids, 4, "{:?}", events.all());

    // Pushing again uploads nothing.
    let again = Events::default();
    let pushed2 = client()?
        .push(&reference, None, &src, &image, &|p| again.push(p))
        .await?;
    assert_eq!(pushed, pushed2);
    assert!(
        again
            .all()
            .iter()
            .all(|p| matches!(p, Progress::LayerExists { .. })),
        "{:?}",
        again.all()
    );

    let (_dst_dir, dst) = store()?;
    let events = Events::default();
    let pulled = client()?
        .pull(&reference, &Platform::linux_amd64(), None, &dst, &|p| {
            events.push(p)
        })
        .await?;
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(pulled.config, image.config);
    let layers: Vec<Descriptor> = image.layers.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(pulled.layers, layers);
    for d in layers.iter().chain([&image.config]) {
        assert!(has(&dst, &d.digest), "{} missing", d.digest);
    }
    let complete = events
        .all()
        .iter()
        .filter(|p| matches!(p, Progress::DownloadComplete { .. }))
        .count();
    assert_eq!(complete, 4, "{:?}", events.all());

    // By digest, into the same store: every layer already exists.
    let by_digest = reference
        .clone()
        .name_only()
        .with_digest(pushed.digest.clone());
    let events = Events::default();
    let again = client()?
        .pull(&by_digest, &Platform::linux_amd64(), None, &dst, &|p| {
            events.push(p)
        })
        .await?;
    assert_eq!(again, pulled);
    assert!(
        events
            .all()
            .iter()
            .filter(|p| !matches!(p, Progress::Resolved))
            .all(|p| matches!(p, Progress::AlreadyExists { .. })),
        "{:?}",
        events.all()
    );

    assert_eq!(client()?.tags(&reference, None).await?, ["1"]);

    // Another repository of the registry mounts the blobs instead of receiving them.
    let other = server.reference("other/img:1")?;
    let mounting = PushImage {
        mount_from: vec!["test/img".to_owned()],
        ..image.clone()
    };
    let events = Events::default();
    let pushed3 = client()?
        .push(&other, None, &src, &mounting, &|p| events.push(p))
        .await?;
    assert_eq!(pushed3.digest, pushed.digest);
    let mounted = events
        .all()
        .iter()
        .filter(|p| matches!(p, Progress::Mounted { from, .. } if from == "test/img"))
        .count();
    assert_eq!(mounted, 4, "{:?}", events.all());
    assert!(
        !events
            .all()
            .iter()
            .any(|p| matches!(p, Progress::Pushed { .. })),
        "{:?}",
        events.all()
    );

    // A missing tag is a 404 in Docker's words.
    let missing = server.reference("test/img:nope")?;
    let err = client()?
        .pull(&missing, &Platform::linux_amd64(), None, &dst, &|_| {})
        .await
        .err()
        .context("pulled a missing tag")?;
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "manifest for {}/test/img:nope not found: manifest unknown: manifest unknown",
            server.addr
        )),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_list_pulls_the_asked_platform() -> Result<()> {
    let server = Server::plain().await?;
    let (_src_dir, src) = store()?;
    let amd = make_image(&src, "amd64", &[b"amd64 layer"])?;
    let arm = make_image(&src, "arm64", &[b"arm64 layer"])?;
    let c = client()?;
    let mut entries = Vec::new();
    for (image, arch) in [(&arm, "arm64"), (&amd, "amd64")] {
        let r = server.reference(&format!("multi/img:{arch}"))?;
        let pushed = c.push(&r, None, &src, image, &|_| {}).await?;
        entries.push(serde_json::json!({
            "mediaType": manifest::DOCKER_MANIFEST, "size": pushed.size,
            "digest": pushed.digest.to_string(),
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
            .to_string();
    let index_digest = Digest::sha256_of(index.as_bytes());
    server
        .put(
            "PUT",
            "/v2/multi/img/manifests/both",
            OCI_INDEX,
            index.into_bytes(),
        )
        .await?;

    let r = server.reference("multi/img:both")?;
    let (_d1, s1) = store()?;
    let pulled = c
        .pull(&r, &Platform::linux_amd64(), None, &s1, &|_| {})
        .await?;
    assert_eq!(pulled.config, amd.config);
    assert_eq!(
        pulled.digest, index_digest,
        "the index's digest is recorded"
    );
    assert!(!has(&s1, &arm.layers[0].0.digest));

    let (_d2, s2) = store()?;
    let pulled = c
        .pull(&r, &Platform::parse("linux/arm64")?, None, &s2, &|_| {})
        .await?;
    assert_eq!(pulled.config, arm.config);

    let (_d3, s3) = store()?;
    let err = c
        .pull(&r, &Platform::parse("linux/s390x")?, None, &s3, &|_| {})
        .await
        .err()
        .context("pulled a missing platform")?;
    assert_eq!(
        err.to_string(),
        "no matching manifest for linux/s390x in the manifest list entries"
    );
    Ok(())
}

/// A Docker Hub-like front: every `/v2/` request needs `Bearer <token>`; `/token` hands one
/// out for `user:secret` Basic credentials and records the scopes asked for.
struct TokenFront {
    scopes: Mutex<Vec<String>>,
    tokens_issued: AtomicUsize,
}

async fn token_server() -> Result<(Server, Arc<TokenFront>)> {
    let front = Arc::new(TokenFront {
        scopes: Mutex::new(Vec::new()),
        tokens_issued: AtomicUsize::new(0),
    });
    let f = front.clone();
    let addr_cell: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let cell = addr_cell.clone();
    let server = Server::with_front(move |registry| {
        let issue = move |req: Request| {
            let f = f.clone();
            async move {
                let good = format!(
                    "Basic {}",
                    base64_encode(b"user:secret")
                );
                let auth = req.headers().get(header::AUTHORIZATION);
                if auth.and_then(|v| v.to_str().ok()) != Some(good.as_str()) {
                    return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
                }
                let query = req.uri().query().unwrap_or("").to_owned();
                for pair in query.split('&') {
                    if let Some(s) = pair.strip_prefix("scope=") {
                        f.scopes
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(s.replace("%3A", ":").replace("%2C", ",").replace("%2F", "/"));
                    }
                }
                f.tokens_issued.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"token": "tok-123", "expires_in": 300}))
                    .into_response()
            }
        };
        let guard = move |req: Request| {
            let registry = registry.clone();
            let cell = cell.clone();
            async move {
                let ok = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .is_some_and(|v| v == "Bearer tok-123");
                if ok {
                    return forward(registry, req).await;
                }
                let realm = cell.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let challenge = format!(
                    r#"Bearer realm="http://{realm}/token",service="test-registry",scope="repository:x:pull""#
                );
                let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                let mut r = (StatusCode::UNAUTHORIZED, body).into_response();
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
        };
        Router::new().route("/token", get(issue)).fallback(guard)
    })
    .await?;
    *addr_cell.lock().unwrap_or_else(|p| p.into_inner()) = server.addr.to_string();
    Ok((server, front))
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_as_docker_hub_does_it() -> Result<()> {
    let (server, front) = token_server().await?;
    let (_src_dir, src) = store()?;
    let image = make_image(&src, "amd64", &[b"secret layer"])?;
    let reference = server.reference("private/img:1")?;
    let creds = Credentials {
        username: "user".into(),
        password: "secret".into(),
        registry_token: None,
    };
    let c = client()?;

    let err = c
        .push(&reference, None, &src, &image, &|_| {})
        .await
        .err()
        .context("anonymous push went through")?;
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err}");
    let wrong = Credentials {
        password: "wrong".into(),
        ..creds.clone()
    };
    let err = c
        .push(&reference, Some(wrong.clone()), &src, &image, &|_| {})
        .await
        .err()
        .context("push with a wrong password went through")?;
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err}");

    let pushed = c
        .push(&reference, Some(creds.clone()), &src, &image, &|_| {})
        .await?;
    let (_dst_dir, dst) = store()?;
    let pulled = c
        .pull(
            &reference,
            &Platform::linux_amd64(),
            Some(creds.clone()),
            &dst,
            &|_| {},
        )
        .await?;
    assert_eq!(pulled.digest, pushed.digest);
    assert!(has(&dst, &image.layers[0].0.digest));
    let scopes = front
        .scopes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(
        scopes,
        vec![
            "repository:private/img:pull,push".to_owned(),
            "repository:private/img:pull".to_owned()
        ],
        "one token per session, for the repository's scope"
    );
    assert_eq!(front.tokens_issued.load(Ordering::SeqCst), 2);

    c.login(&server.addr.to_string(), creds).await?;
    let err = c
        .login(&server.addr.to_string(), wrong)
        .await
        .err()
        .context("login with a wrong password")?;
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err}");
    Ok(())
}

/// A front that answers the blob `digest` with `respond(request number, request)`.
async fn blob_front<F>(digest: Digest, respond: F) -> Result<Server>
where
    F: Fn(usize, &Request) -> Option<Response> + Send + Sync + 'static,
{
    let respond = Arc::new(respond);
    let count = Arc::new(AtomicUsize::new(0));
    Server::with_front(move |registry| {
        Router::new().fallback(move |req: Request| {
            let registry = registry.clone();
            let respond = respond.clone();
            let count = count.clone();
            let digest = digest.clone();
            async move {
                if req.uri().path().ends_with(&format!("/blobs/{digest}")) && req.method() == "GET"
                {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    if let Some(r) = respond(n, &req) {
                        return r;
                    }
                }
                forward(registry, req).await
            }
        })
    })
    .await
}

/// A body that sends `data` and then breaks the connection.
fn broken_body(data: Vec<u8>, announced: usize) -> Response {
    use futures_util::StreamExt;
    // The pause lets the bytes reach the client before the connection breaks.
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(data))])
        .chain(futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            Err(std::io::Error::other("connection dropped"))
        }));
    let mut r = Body::from_stream(stream).into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    r
}

/// Pushes a one-layer image through the plain registry of `server`.
async fn push_one(server: &Server, name: &str, content: &[u8]) -> Result<(PushImage, TempDir)> {
    let (dir, src) = store()?;
    let image = make_image(&src, "amd64", &[content])?;
    // Straight to the registry, so the front's faults do not apply to the push.
    for (d, _) in image
        .layers
        .iter()
        .map(|(d, i)| (d, i))
        .chain([(&image.config, &String::new())])
    {
        let data = std::fs::read(src.blob_path(&berth_content::Digest::parse(d.digest.as_str())?))?;
        server
            .put(
                "POST",
                &format!("/v2/{name}/blobs/uploads/?digest={}", d.digest),
                "application/octet-stream",
                data,
            )
            .await?;
    }
    let layers: Vec<Descriptor> = image.layers.iter().map(|(d, _)| d.clone()).collect();
    let body = manifest::docker_manifest(&image.config, &layers);
    server
        .put(
            "PUT",
            &format!("/v2/{name}/manifests/1"),
            manifest::DOCKER_MANIFEST,
            body,
        )
        .await?;
    Ok((image, dir))
}

fn random_bytes(n: usize) -> Vec<u8> {
    // Incompressible enough, and deterministic: a counter through sha256.
    use sha2::Digest as _;
    let mut out = Vec::with_capacity(n + 32);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(&sha2::Sha256::digest(i.to_le_bytes()));
        i += 1;
    }
    out.truncate(n);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_whose_bytes_do_not_match_its_digest_is_rejected_and_not_stored() -> Result<()> {
    let content = random_bytes(64 << 10);
    let layer = gzip(&layer_tar("file0", &content)?)?;
    let digest = Digest::sha256_of(&layer);
    let size = layer.len();
    let server = blob_front(digest.clone(), move |_, _| {
        let mut evil = vec![0u8; size];
        evil[..5].copy_from_slice(b"evil!");
        Some((StatusCode::OK, evil).into_response())
    })
    .await?;
    push_one(&server, "bad/img", &content).await?;
    let (dir, dst) = store()?;
    let err = client()?
        .pull(
            &server.reference("bad/img:1")?,
            &Platform::linux_amd64(),
            None,
            &dst,
            &|_| {},
        )
        .await
        .err()
        .context("pulled a corrupt blob")?;
    assert_eq!(
        err.to_string(),
        format!("filesystem layer verification failed for digest {digest}")
    );
    assert!(!has(&dst, &digest));
    let ingests = std::fs::read_dir(dir.path().join("content/ingest"))?.count();
    assert_eq!(ingests, 0, "the rejected bytes were left behind");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_blob_resumes_with_range() -> Result<()> {
    let content = random_bytes(256 << 10);
    let layer = gzip(&layer_tar("file0", &content)?)?;
    let digest = Digest::sha256_of(&layer);
    let half = layer[..layer.len() / 2].to_vec();
    let total = layer.len();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let server = blob_front(digest.clone(), move |n, req| {
        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.lock().unwrap_or_else(|p| p.into_inner()).push(range);
        // The first answer breaks halfway; later ones go to the registry.
        (n == 0).then(|| broken_body(half.clone(), total))
    })
    .await?;
    let (image, _src) = push_one(&server, "drop/img", &content).await?;
    let (_dir, dst) = store()?;
    let pulled = client()?
        .pull(
            &server.reference("drop/img:1")?,
            &Platform::linux_amd64(),
            None,
            &dst,
            &|_| {},
        )
        .await?;
    assert_eq!(pulled.layers[0].digest, image.layers[0].0.digest);
    assert!(has(&dst, &digest));
    let ranges = ranges.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(
        ranges,
        vec![None, Some(format!("bytes={}-", total / 2))],
        "the second request continues where the first broke"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_always_drops_fails_cleanly() -> Result<()> {
    let content = random_bytes(128 << 10);
    let layer = gzip(&layer_tar("file0", &content)?)?;
    let digest = Digest::sha256_of(&layer);
    let quarter = layer[..layer.len() / 4].to_vec();
    let total = layer.len();
    // Ignores Range and always breaks after a quarter.
    let server = blob_front(digest.clone(), move |_, _| {
        Some(broken_body(quarter.clone(), total))
    })
    .await?;
    push_one(&server, "flaky/img", &content).await?;
    let (_dir, dst) = store()?;
    let err = client()?
        .pull(
            &server.reference("flaky/img:1")?,
            &Platform::linux_amd64(),
            None,
            &dst,
            &|_| {},
        )
        .await
        .err()
        .context("pulled through a broken connection")?;
    assert!(
        matches!(err, ClientError::Incomplete { attempts: 5, .. }),
        "{err}"
    );
    assert!(!has(&dst, &digest));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_misdigested_manifest_is_refused() -> Result<()> {
    let server = Server::with_front(|registry| {
        Router::new().fallback(move |req: Request| {
            let registry = registry.clone();
            async move {
                if req.uri().path().ends_with("/manifests/huge") {
                    let mut r = (StatusCode::OK, vec![b' '; 5 << 20]).into_response();
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(manifest::DOCKER_MANIFEST),
                    );
                    return r;
                }
                if req.uri().path().ends_with("/manifests/hugeconfig") {
                    let body = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1073741824,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"layers":[]}"#;
                    return (StatusCode::OK, body).into_response();
                }
                if req.uri().path().ends_with("/manifests/lying") {
                    // A valid manifest whose announced digest is another's.
                    let mut r = (StatusCode::OK, r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","size":1,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"layers":[]}"#).into_response();
                    r.headers_mut().insert(
                        "docker-content-digest",
                        HeaderValue::from_static("sha256:1111111111111111111111111111111111111111111111111111111111111111"),
                    );
                    return r;
                }
                if req.uri().path().ends_with("/manifests/chunked") {
                    // No Content-Length: the limit must hold while reading.
                    let chunks = (0..80)
                        .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 64 << 10])));
                    return Body::from_stream(futures_util::stream::iter(chunks)).into_response();
                }
                forward(registry, req).await
            }
        })
    })
    .await?;
    let (_dir, dst) = store()?;
    for tag in ["huge", "chunked", "hugeconfig"] {
        let err = client()?
            .pull(
                &server.reference(&format!("big/img:{tag}"))?,
                &Platform::linux_amd64(),
                None,
                &dst,
                &|_| {},
            )
            .await
            .err()
            .context("accepted a huge manifest")?;
        assert!(matches!(err, ClientError::TooLarge { .. }), "{tag}: {err}");
    }
    let err = client()?
        .pull(
            &server.reference("big/img:lying")?,
            &Platform::linux_amd64(),
            None,
            &dst,
            &|_| {},
        )
        .await
        .err()
        .context("accepted a manifest that is not what the registry said")?;
    assert!(err.to_string().contains("does not match"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_pulls_of_one_image_share_the_blobs() -> Result<()> {
    let server = Server::plain().await?;
    let (_src_dir, src) = store()?;
    let image = make_image(
        &src,
        "amd64",
        &[&random_bytes(1 << 20), &random_bytes(300 << 10)],
    )?;
    let reference = server.reference("shared/img:1")?;
    let c = client()?;
    c.push(&reference, None, &src, &image, &|_| {}).await?;
    let (_dst_dir, dst) = store()?;
    let p = Platform::linux_amd64();
    let (a, b) = tokio::join!(
        c.pull(&reference, &p, None, &dst, &|_| {}),
        c.pull(&reference, &p, None, &dst, &|_| {})
    );
    assert_eq!(a?, b?);
    for (d, _) in &image.layers {
        assert!(has(&dst, &d.digest));
    }
    Ok(())
}

/// A self-signed certificate for 127.0.0.1 (`cert.pem`, `key.pem` in `dir`), by openssl.
fn self_signed(dir: &std::path::Path) -> Result<()> {
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=127.0.0.1", "-days", "1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // Its own trust anchor, so it must not claim to be a CA (webpki refuses a CA as
        // the end entity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .context("run openssl")?;
    ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_certs_d_root_and_refused_with_a_wrong_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    std::fs::create_dir_all(&good)?;
    std::fs::create_dir_all(&bad)?;
    self_signed(&good)?;
    self_signed(&bad)?;
    let registry = Registry::open(&dir.path().join("root"), Default::default())?;
    let tls = berth_registry_server::tls::load(&good.join("cert.pem"), &good.join("key.pem"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(berth_registry_server::tls::serve(listener, registry, tls));
    struct Abort(tokio::task::JoinHandle<std::io::Result<()>>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _task = Abort(task);

    let certs = |ca: &std::path::Path, name: &str| -> Result<Options> {
        let certs_dir = dir.path().join(name);
        std::fs::create_dir_all(certs_dir.join(addr.to_string()))?;
        std::fs::copy(
            ca.join("cert.pem"),
            certs_dir.join(addr.to_string()).join("ca.crt"),
        )?;
        Ok(Options {
            certs_dir: Some(certs_dir),
            ..Options::default()
        })
    };
    let trusted = Client::new(certs(&good, "certs-good")?)?;
    let (_src_dir, src) = store()?;
    let image = make_image(&src, "amd64", &[b"over tls"])?;
    let reference = Reference::parse_normalized(&format!("{addr}/tls/img:1"))?;
    let pushed = trusted
        .push(&reference, None, &src, &image, &|_| {})
        .await?;
    let (_dst_dir, dst) = store()?;
    let pulled = trusted
        .pull(&reference, &Platform::linux_amd64(), None, &dst, &|_| {})
        .await?;
    assert_eq!(pulled.digest, pushed.digest);

    let untrusted = Client::new(certs(&bad, "certs-bad")?)?;
    let (_d2, dst2) = store()?;
    let err = untrusted
        .pull(&reference, &Platform::linux_amd64(), None, &dst2, &|_| {})
        .await
        .err()
        .context("trusted a certificate it should not")?;
    assert!(matches!(err, ClientError::Http { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("Get \"https://{addr}/v2/")),
        "{err}"
    );
    Ok(())
}
