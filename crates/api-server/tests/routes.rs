//! The API in-process: requests go through the same service the daemon serves (prefix
//! rewrite, middleware, routes), without a socket.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use berth_api_server::{Backend, app};
use berth_engine::{Event, EventType, Events, System, SystemConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn backend(dir: &tempfile::TempDir) -> Backend {
    let system = System::new(SystemConfig {
        data_root: dir.path().to_owned(),
        exec_root: dir.path().join("exec"),
        runtimes: BTreeMap::from([("berth".into(), "/usr/bin/berth".into())]),
        default_runtime: "berth".into(),
        debug: false,
        labels: vec![],
    })
    .expect("system");
    let events = Arc::new(Events::default());
    let images = Arc::new(berth_image::ImageStore::open(&dir.path().join("data")).expect("images"));
    let networks = berth_engine::Networks::open(
        berth_engine::NetworksConfig {
            data_root: dir.path().join("data"),
            bridge: "berth-rt0".into(),
            bip: Some("10.254.254.1/24".into()),
            fixed_cidr: None,
            default_pools: vec![],
            firewall_table: "berth_routes_test".into(),
            mtu: None,
        },
        events.clone(),
    )
    .expect("networks");
    let containers = berth_engine::Containers::open(
        berth_engine::ContainersConfig {
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            shim_binary: "/nonexistent/berth".into(),
            runtime: None,
            init_path: None,
            init_default: false,
            cgroup_parent: String::new(),
        },
        images.clone(),
        events.clone(),
        networks.clone(),
    )
    .expect("containers");
    let build =
        berth_engine::Build::open(images.clone(), containers.clone(), &dir.path().join("data"))
            .expect("build");
    let images = Arc::new(berth_engine::Images::new(
        images,
        events.clone(),
        containers.clone(),
    ));
    let volumes =
        berth_engine::Volumes::open(&dir.path().join("data"), events.clone()).expect("volumes");
    containers.use_volumes(volumes.clone());
    Backend {
        volumes,
        system: Arc::new(system),
        events,
        containers,
        images,
        networks,
        build,
    }
}

async fn send(backend: &Backend, request: Request<Body>) -> Reply {
    let response = app(backend.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(backend: &Backend, uri: &str) -> Reply {
    send(
        backend,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

#[tokio::test]
async fn ping_carries_the_negotiation_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backend(&dir);
    let reply = get(&backend, "/_ping").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "OK");
    assert_eq!(reply.header("api-version"), Some("1.41"));
    assert_eq!(reply.header("ostype"), Some("linux"));
    assert_eq!(reply.header("builder-version"), Some("1"));
    assert_eq!(reply.header("docker-experimental"), Some("false"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    assert_eq!(
        reply.header("cache-control"),
        Some("no-cache, no-store, must-revalidate")
    );
    let head = send(
        &backend,
        Request::head("/_ping")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.body, "");
    assert_eq!(head.header("api-version"), Some("1.41"));
}

#[tokio::test]
async fn version_prefixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backend(&dir);
    for uri in ["/version", "/v1.41/version", "/v1.24/version"] {
        let reply = get(&backend, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.json()["ApiVersion"], "1.41");
        assert_eq!(reply.json()["MinAPIVersion"], "1.24");
        assert!(
            reply
                .header("server")
                .is_some_and(|s| s.starts_with("Docker/"))
        );
    }
    let too_new = get(&backend, "/v1.99/version").await;
    assert_eq!(too_new.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        too_new.json()["message"],
        "client version 1.99 is too new. Maximum supported API version is 1.41"
    );
    let too_old = get(&backend, "/v1.11/version").await;
    assert_eq!(too_old.status, StatusCode::BAD_REQUEST);
    assert!(too_old.body.starts_with("client version 1.11 is too old"));
    assert_eq!(
        too_old.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn unknown_routes_are_page_not_found_without_api_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backend(&dir);
    let reply = get(&backend, "/v1.41/no/such/thing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, "{\"message\":\"page not found\"}\n");
    assert_eq!(reply.header("api-version"), None);
    assert_eq!(reply.header("ostype"), Some("linux"));
}

#[tokio::test]
async fn json_bodies_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backend(&dir);
    let post = |content_type: &'static str, body: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/v1.41/containers/create")
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request")
    };
    let malformed = send(&backend, post("application/json", "{bad")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.json()["message"].is_string());
    let wrong_type = send(&backend, post("application/x-www-form-urlencoded", "{}")).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong_type.json()["message"],
        "Content-Type specified (application/x-www-form-urlencoded) must be 'application/json'"
    );
    let untyped = send(
        &backend,
        Request::post("/containers/create")
            .body(Body::from("{}"))
            .expect("request"),
    )
    .await;
    assert_eq!(untyped.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        untyped.json()["message"],
        "Content-Type specified () must be 'application/json'"
    );
    let empty = send(
        &backend,
        Request::post("/containers/create")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        empty.json()["message"],
        "config cannot be empty in order to create a container"
    );
    let valid = send(
        &backend,
        post("application/json", "{\"Image\":\"busybox\"}"),
    )
    .await;
    // No image store content: the image is missing.
    assert_eq!(valid.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn info_has_every_field_docker_sends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backend(&dir);
    let info = get(&backend, "/v1.41/info").await.json();
    assert_eq!(info["DockerRootDir"], dir.path().display().to_string());
    assert_eq!(info["SecurityOptions"][0], "name=seccomp,profile=default");
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    assert_eq!(info["DefaultRuntime"], "berth");
    assert!(
        info["SystemTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/golden/info.json"
    );
    if let Ok(text) = std::fs::read_to_string(golden) {
        let golden: serde_json::Value = serde_json::from_str(&text).expect("golden");
        let keys = |v: &serde_json::Value| {
            v.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(keys(&info), keys(&golden));
    }
}

#[tokio::test]
async fn events_replay_a_window_and_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backend(&dir);
    backend.events.publish(Event::now(
        EventType::Volume,
        "create",
        "v1",
        BTreeMap::from([("driver".into(), "local".into())]),
    ));
    backend.events.publish(Event::now(
        EventType::Container,
        "start",
        "c1",
        BTreeMap::from([("image".into(), "bb:1".into())]),
    ));
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1;
    let reply = get(&backend, &format!("/v1.41/events?since=0&until={until}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let lines: Vec<serde_json::Value> = reply
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", reply.body);
    assert_eq!(lines[0]["Type"], "volume");
    assert!(lines[0].get("status").is_none());
    assert_eq!(lines[1]["status"], "start");
    assert_eq!(lines[1]["from"], "bb:1");

    let filtered = get(
        &backend,
        &format!(
            "/events?since=0&until={until}&filters=%7B%22type%22%3A%7B%22volume%22%3Atrue%7D%7D"
        ),
    )
    .await;
    assert_eq!(filtered.body.lines().count(), 1, "{}", filtered.body);

    let bad = get(
        &backend,
        "/events?filters=%7B%22colour%22%3A%7B%22x%22%3Atrue%7D%7D",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["message"], "invalid filter 'colour'");
}

async fn post_body(backend: &Backend, uri: &str, body: &'static [u8]) -> Reply {
    send(
        backend,
        Request::post(uri)
            .header("content-type", "application/x-tar")
            .body(Body::from(body))
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn image_routes_refuse_bad_input_with_4xx() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = backend(&dir);
    let reply = get(&backend, "/v1.41/images/json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "[]\n");

    let garbage: &'static [u8] = &[0x5a; 4096];
    let reply = post_body(
        &backend,
        "/v1.41/images/create?fromSrc=-&repo=junk&tag=1",
        garbage,
    )
    .await;
    assert!(
        reply.status.is_client_error(),
        "{:?} {}",
        reply.status,
        reply.body
    );
    let reply = post_body(&backend, "/v1.41/images/load?quiet=1", garbage).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(get(&backend, "/v1.41/images/json").await.body, "[]\n");

    let reply = get(&backend, "/v1.41/images/a/b:c/json").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json()["message"],
        "no such image: a/b:c: No such image: a/b:c"
    );
    let reply = get(&backend, "/v1.41/images/nosuch/history").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = get(&backend, "/v1.41/images/get?names=nosuch").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = post_body(&backend, "/v1.41/images/nosuch/tag?repo=x&tag=1", b"").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = send(
        &backend,
        Request::delete("/v1.41/images/nosuch")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["message"], "No such image: nosuch:latest");
    let reply = post_body(
        &backend,
        "/v1.41/images/create?fromImage=127.0.0.1%3A1%2Fbusybox&tag=latest",
        b"",
    )
    .await;
    // An unreachable registry (a loopback port nobody serves: tests never leave this
    // machine): the pull fails before any stream starts, naming the registry's API.
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.body
    );
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Get \"http://127.0.0.1:1/v2/"),
        "{}",
        reply.body
    );
    let reply = post_body(&backend, "/v1.41/images/prune", b"").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        serde_json::json!({"ImagesDeleted": null, "SpaceReclaimed": 0})
    );
}
