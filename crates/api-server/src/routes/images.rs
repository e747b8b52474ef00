//! Image routes: import (`POST /images/create?fromSrc=-`), pull (`?fromImage=`), push,
//! list, inspect, history, tag, remove, save (`/images/get`, `/images/{name}/get`), load,
//! prune, and `POST /auth` (registry login). Image names in paths
//! keep their `/` and `:`, so everything under `/images/` that is not a fixed endpoint is
//! taken apart by its last segment.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_engine::Images;
use berth_engine::images::{ImportOptions, ListOptions, PullRequest, PushRequest};
use berth_errdefs::{CategorizedError, Category};
use berth_reference::{Filters, Reference};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Backend;
use crate::error::{ApiError, json_response};

type Pairs = Query<Vec<(String, String)>>;

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route("/auth", post(login))
        .route("/images/create", post(create))
        .route("/images/json", get(list))
        .route("/images/get", get(save_many))
        .route("/images/load", post(load))
        .route("/images/prune", post(prune))
        .route(
            "/images/{*rest}",
            get(get_named).post(post_named).delete(remove),
        )
}

pub(super) fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn all<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(super) fn flag(pairs: &[(String, String)], name: &str) -> bool {
    first(pairs, name).is_some_and(|v| !matches!(v, "" | "0" | "false" | "False" | "FALSE"))
}

fn filters(pairs: &[(String, String)]) -> Result<Filters, ApiError> {
    match first(pairs, "filters").filter(|v| !v.is_empty()) {
        Some(json) => Ok(Filters::parse(json)?),
        None => Ok(Filters::new()),
    }
}

/// A blocking reader over a request body, fed by an async task.
struct BodyReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

pub(super) fn body_reader(req: Request) -> impl Read + Send + 'static {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut stream = req.into_body().into_data_stream();
    tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if tx.send(bytes).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!("request body ended early: {e}");
                    break;
                }
            }
        }
    });
    BodyReader {
        rx,
        current: Bytes::new(),
    }
}

/// A blocking writer whose bytes become a response body.
pub(super) struct BodyWriter {
    pub(super) tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A JSON-message stream response (§3): objects separated by `\r\n`.
fn json_stream(messages: &[Value]) -> Response {
    let mut body = Vec::new();
    for m in messages {
        body.extend_from_slice(m.to_string().as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Part `index` of `platform=os/arch[/variant]`, if given.
fn platform_part(pairs: &[(String, String)], index: usize) -> Option<String> {
    first(pairs, "platform")
        .and_then(|p| p.split('/').nth(index))
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
}

/// The `X-Registry-Auth` header, empty when absent.
fn registry_auth(req: &Request) -> String {
    req.headers()
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// One JSON message as a stream chunk.
fn message_line(message: &Value) -> Result<Bytes, io::Error> {
    let mut line = message.to_string().into_bytes();
    line.extend_from_slice(b"\r\n");
    Ok(Bytes::from(line))
}

/// Runs a pull or push whose messages arrive on `rx`: an error before the first message is
/// the response's status (as dockerd answers a missing manifest with 404); after it, the
/// stream ends with an `errorDetail` message and the status stays 200.
async fn job_stream(
    job: impl Future<Output = Result<(), CategorizedError>> + Send + 'static,
    mut rx: mpsc::UnboundedReceiver<Value>,
) -> Result<Response, ApiError> {
    let mut handle = tokio::spawn(job);
    let Some(first_message) = rx.recv().await else {
        return match (&mut handle).await {
            Ok(Ok(())) => Ok(json_stream(&[])),
            Ok(Err(e)) => Err(ApiError::new(e.category, e.message)),
            Err(e) => Err(ApiError::new(Category::System, e.to_string())),
        };
    };
    let state = (Some(first_message), rx, Some(handle));
    let stream = futures_util::stream::unfold(state, |(pending, mut rx, handle)| async move {
        if let Some(m) = pending {
            return Some((message_line(&m), (None, rx, handle)));
        }
        if let Some(m) = rx.recv().await {
            return Some((message_line(&m), (None, rx, handle)));
        }
        let message = match handle?.await {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => e.message,
            Err(e) => e.to_string(),
        };
        let error = json!({ "errorDetail": { "message": message }, "error": message });
        Some((message_line(&error), (None, rx, None)))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `POST /images/create?fromImage=&tag=&platform=`: a pull.
async fn pull(
    images: Arc<Images>,
    pairs: &[(String, String)],
    auth: String,
) -> Result<Response, ApiError> {
    let request = PullRequest {
        image: first(pairs, "fromImage").unwrap_or_default().to_owned(),
        tag: first(pairs, "tag").unwrap_or_default().to_owned(),
        platform: first(pairs, "platform").unwrap_or_default().to_owned(),
        auth,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    job_stream(async move { images.pull(request, tx).await }, rx).await
}

/// `POST /auth`: `docker login`.
async fn login(State(images): State<Arc<Images>>, body: Bytes) -> Result<Response, ApiError> {
    images.login(body.to_vec()).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "IdentityToken": "", "Status": "Login Succeeded" }),
    ))
}

/// `POST /images/create`: `fromImage=` pulls, `fromSrc=-` imports the body.
async fn create(
    State(images): State<Arc<Images>>,
    Query(pairs): Pairs,
    req: Request,
) -> Result<Response, ApiError> {
    if first(&pairs, "fromImage").is_some_and(|v| !v.is_empty()) {
        let auth = registry_auth(&req);
        return pull(images, &pairs, auth).await;
    }
    let source = match first(&pairs, "fromSrc") {
        Some("-") => "-".to_owned(),
        Some(url) if !url.is_empty() => {
            return Err(ApiError::new(
                Category::NotImplemented,
                format!("importing from a URL ({url}) is not implemented yet"),
            ));
        }
        _ => return Err(ApiError::invalid("fromImage or fromSrc is required")),
    };
    let tag = match first(&pairs, "repo").filter(|v| !v.is_empty()) {
        None => None,
        Some(repo) => {
            let mut reference = Reference::parse_normalized(repo)?;
            if let Some(tag) = first(&pairs, "tag").filter(|v| !v.is_empty()) {
                reference = reference.with_tag(tag)?;
            }
            Some(reference)
        }
    };
    let opts = ImportOptions {
        tag,
        changes: all(&pairs, "changes")
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        message: first(&pairs, "message")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        source: Some(source),
        os: platform_part(&pairs, 0),
        architecture: platform_part(&pairs, 1),
        ..ImportOptions::default()
    };
    let id = images.import(Box::new(body_reader(req)), opts).await?;
    Ok(json_stream(&[json!({ "status": id })]))
}

/// `GET /images/json`.
async fn list(
    State(images): State<Arc<Images>>,
    Query(pairs): Pairs,
) -> Result<Response, ApiError> {
    let opts = ListOptions {
        all: flag(&pairs, "all"),
        filters: filters(&pairs)?,
    };
    let list = images.list(opts).await?;
    Ok(json_response(StatusCode::OK, &list))
}

/// `GET /images/{name}/json|history|get`.
async fn get_named(
    State(images): State<Arc<Images>>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/json") {
        // dockerd wraps the store's error here: `no such image: x: No such image: x:latest`.
        let inspect = images
            .inspect(name.to_owned())
            .await
            .map_err(|e| match e.category {
                Category::NotFound => {
                    ApiError::new(e.category, format!("no such image: {name}: {}", e.message))
                }
                _ => ApiError::new(e.category, e.message),
            })?;
        return Ok(json_response(StatusCode::OK, &inspect));
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let history = images.history(name.to_owned()).await?;
        return Ok(json_response(StatusCode::OK, &history));
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(images, vec![name.to_owned()]).await;
    }
    Err(super::not_found_error())
}

/// `POST /images/{name}/tag` and `POST /images/{name}/push`.
async fn post_named(
    State(images): State<Arc<Images>>,
    Path(rest): Path<String>,
    Query(pairs): Pairs,
    req: Request,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = first(&pairs, "repo").unwrap_or_default();
        if repo.is_empty() {
            return Err(ApiError::invalid(
                "repository name must have at least one component",
            ));
        }
        let tag = first(&pairs, "tag").unwrap_or_default();
        images
            .tag(name.to_owned(), repo.to_owned(), tag.to_owned())
            .await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let request = PushRequest {
            name: name.to_owned(),
            tag: first(&pairs, "tag").unwrap_or_default().to_owned(),
            auth: registry_auth(&req),
            // berth's own: how to compress layers stored uncompressed.
            compression: first(&pairs, "compression").unwrap_or_default().to_owned(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        return job_stream(async move { images.push(request, tx).await }, rx).await;
    }
    Err(super::not_found_error())
}

/// `DELETE /images/{name}?force=&noprune=`.
async fn remove(
    State(images): State<Arc<Images>>,
    Path(name): Path<String>,
    Query(pairs): Pairs,
) -> Result<Response, ApiError> {
    let items = images
        .remove(name, flag(&pairs, "force"), flag(&pairs, "noprune"))
        .await?;
    Ok(json_response(StatusCode::OK, &items))
}

/// `GET /images/get?names=a&names=b`.
async fn save_many(
    State(images): State<Arc<Images>>,
    Query(pairs): Pairs,
) -> Result<Response, ApiError> {
    let names: Vec<String> = all(&pairs, "names")
        .into_iter()
        .map(str::to_owned)
        .collect();
    save(images, names).await
}

async fn save(images: Arc<Images>, names: Vec<String>) -> Result<Response, ApiError> {
    if names.is_empty() {
        return Err(ApiError::invalid("no image names given"));
    }
    images.check_save(names.clone()).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    let writer = BodyWriter { tx: tx.clone() };
    tokio::spawn(async move {
        if let Err(e) = images.save(names, Box::new(writer)).await {
            tracing::warn!("docker save failed: {}", e.message);
            let _ = tx.send(Err(io::Error::other(e.message))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(response)
}

/// `POST /images/load?quiet=`: the archive is checked and registered whole before the
/// answer starts, so a bad archive is a 400 and leaves nothing behind.
async fn load(
    State(images): State<Arc<Images>>,
    Query(_pairs): Pairs,
    req: Request,
) -> Result<Response, ApiError> {
    let loaded = images.load(Box::new(body_reader(req))).await?;
    let mut messages = Vec::new();
    for image in &loaded {
        for (tag, old) in &image.replaced {
            messages.push(json!({
                "stream": format!(
                    "The image {} already exists, renaming the old one with ID {} to empty string\n",
                    tag.familiar_string(),
                    old.as_str()
                )
            }));
        }
        if image.tags.is_empty() {
            messages.push(json!({
                "stream": format!("Loaded image ID: {}\n", image.id.as_str())
            }));
        }
        for tag in &image.tags {
            messages.push(json!({
                "stream": format!("Loaded image: {}\n", tag.familiar_string())
            }));
        }
    }
    Ok(json_stream(&messages))
}

/// `POST /images/prune?filters=`.
async fn prune(
    State(images): State<Arc<Images>>,
    Query(pairs): Pairs,
) -> Result<Response, ApiError> {
    let report = images.prune(filters(&pairs)?).await?;
    let deleted: Value = if report.images_deleted.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(&report.images_deleted).unwrap_or(Value::Null)
    };
    let body: BTreeMap<&str, Value> = BTreeMap::from([
        ("ImagesDeleted", deleted),
        ("SpaceReclaimed", json!(report.space_reclaimed)),
    ]);
    Ok(json_response(StatusCode::OK, &body))
}
