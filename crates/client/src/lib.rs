//! A Docker Engine API client for the berth daemon (or any Docker-compatible daemon) over a
//! unix socket.
//!
//! Layer 7: it speaks HTTP to the daemon and never imports the engine or the API server, so
//! the `berth` CLI exercises exactly the wire the docker CLI does. Every call opens its own
//! connection (the socket is local, a connect costs microseconds), which also gives each
//! hijacked stream the connection of its own the docker CLI uses.
//!
//! The API version is negotiated from `/_ping` like the docker CLI: the daemon's
//! `Api-Version`, capped at the version whose bodies this client sends ([`MAX_API_VERSION`]),
//! 1.24 when the header is missing.

mod api;
mod error;
mod fs;
mod host;
mod netvol;
pub mod stream;
pub mod types;

pub use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

pub use api::{LogsOptions, WaitHandle};
pub use error::ClientError;
pub use host::{DEFAULT_HOST, Host};
/// A streamed answer body (logs, events, pull progress, save).
pub use hyper::body::Incoming;

/// The newest API version whose request bodies this client sends.
pub const MAX_API_VERSION: &str = "1.41";
/// What the docker CLI assumes when `/_ping` carries no `Api-Version`.
pub const FALLBACK_API_VERSION: &str = "1.24";
/// The most of an error body that is read (a hostile daemon cannot exhaust memory).
const MAX_ERROR_BODY: usize = 1 << 20;

/// A request body: empty, JSON, or streamed from a channel.
pub type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// A raw duplex stream after a `101` upgrade (attach, exec start).
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// A connection-less handle on one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    version: String,
}

/// An empty request body.
pub fn empty_body() -> ReqBody {
    Full::new(Bytes::new())
        .map_err(|n| match n {})
        .boxed_unsync()
}

/// A JSON request body.
pub fn json_body(value: &impl serde::Serialize) -> Result<ReqBody, ClientError> {
    let bytes = serde_json::to_vec(value)?;
    Ok(Full::new(Bytes::from(bytes))
        .map_err(|n| match n {})
        .boxed_unsync())
}

/// A body of the chunks sent on a channel (a build context made on another thread); an
/// `Err` chunk aborts the request.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> ReqBody {
    use futures_util::StreamExt;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(hyper::body::Frame::data), rx))
    });
    BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream.boxed()))
}

/// A body streamed from `reader` (image load, import): sent chunked as it is read.
pub fn reader_body(reader: impl tokio::io::AsyncRead + Send + Unpin + 'static) -> ReqBody {
    use futures_util::StreamExt;
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(hyper::body::Frame::data(Bytes::from(buf))), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    });
    BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream.boxed()))
}

impl Client {
    /// A client for `host`, at the fallback version until [`Client::negotiate`] runs.
    pub fn new(host: Host) -> Client {
        Client {
            host,
            version: MAX_API_VERSION.to_owned(),
        }
    }

    /// The daemon's address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The API version used in request paths.
    pub fn api_version(&self) -> &str {
        &self.version
    }

    /// Asks `/_ping` for the daemon's API version and uses it (capped at ours).
    pub async fn negotiate(&mut self) -> Result<(), ClientError> {
        let response = self
            .send_raw(Method::GET, "/_ping".to_owned(), empty_body(), &[])
            .await?;
        let server = response
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.version = negotiated_version(server.as_deref());
        // As the docker CLI: a version forced in the environment wins over the ping.
        if let Some(forced) = std::env::var("DOCKER_API_VERSION")
            .ok()
            .filter(|v| parse_version(v).is_some())
        {
            self.version = forced;
        }
        Ok(())
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>, ClientError> {
        let stream = UnixStream::connect(&self.host.socket)
            .await
            .map_err(|source| ClientError::Connect {
                host: self.host.url.clone(),
                source,
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends with the exchange (or the upgrade); its error, if any,
        // reaches the caller through the response future.
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// The versioned path and query for an endpoint.
    fn uri(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut uri = format!("/v{}{}", self.version, path);
        if !query.is_empty() {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            uri.push('?');
            uri.push_str(&ser.finish());
        }
        uri
    }

    async fn send_raw(
        &self,
        method: Method,
        uri: String,
        body: ReqBody,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, ClientError> {
        let mut sender = self.connect().await?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "api.moby.localhost")
            .header(
                "User-Agent",
                concat!("berth-client/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body).map_err(|e| {
            ClientError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })?;
        Ok(sender.send_request(request).await?)
    }

    /// Sends a request; an error status becomes [`ClientError::Daemon`]. 304 counts as
    /// success, as in the docker CLI.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, ClientError> {
        let response = self
            .send_raw(method, self.uri(path, query), body, headers)
            .await?;
        check_status(response).await
    }

    /// GET, decoding a JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let response = self
            .request(Method::GET, path, query, empty_body(), &[])
            .await?;
        read_json(response).await
    }

    /// POST without a body, ignoring the answer's body.
    pub async fn post_empty(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(), ClientError> {
        let response = self
            .request(Method::POST, path, query, empty_body(), &[])
            .await?;
        read_all(response.into_body(), MAX_ERROR_BODY).await?;
        Ok(())
    }

    /// POST a JSON body, decoding a JSON answer.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let response = self
            .request(
                Method::POST,
                path,
                query,
                json_body(body)?,
                &[("Content-Type", "application/json")],
            )
            .await?;
        read_json(response).await
    }

    /// A POST that switches protocols (attach, exec start): the raw duplex stream.
    pub async fn hijack(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Hijacked, ClientError> {
        let body = match body {
            Some(v) => json_body(v)?,
            None => empty_body(),
        };
        let headers = [
            ("Content-Type", "application/json"),
            ("Connection", "Upgrade"),
            ("Upgrade", "tcp"),
        ];
        let response = self
            .send_raw(Method::POST, self.uri(path, query), body, &headers)
            .await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status().as_u16();
            check_status(response).await?;
            return Err(ClientError::NoUpgrade(status));
        }
        let upgraded = hyper::upgrade::on(response).await?;
        Ok(TokioIo::new(upgraded))
    }
}

/// The version to use given the daemon's `Api-Version` header.
pub fn negotiated_version(server: Option<&str>) -> String {
    let Some(server) = server.map(str::trim).filter(|s| parse_version(s).is_some()) else {
        return FALLBACK_API_VERSION.to_owned();
    };
    if parse_version(server) > parse_version(MAX_API_VERSION) {
        MAX_API_VERSION.to_owned()
    } else {
        server.to_owned()
    }
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Turns an error status into [`ClientError::Daemon`] with the daemon's message.
async fn check_status(response: Response<Incoming>) -> Result<Response<Incoming>, ClientError> {
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED || status.is_informational() {
        return Ok(response);
    }
    let body = read_all(response.into_body(), MAX_ERROR_BODY).await?;
    Err(ClientError::Daemon {
        status: status.as_u16(),
        message: error_message(&body, status),
    })
}

/// The `message` of Docker's error body, or the body's text when it is not JSON.
fn error_message(body: &[u8], status: StatusCode) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(body) {
        return e.message;
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    if text.is_empty() {
        format!("{status}")
    } else {
        text
    }
}

/// The next data chunk of a body (`None` at its end).
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, ClientError> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// A whole body, refused past `limit` bytes.
pub async fn read_all(mut body: Incoming, limit: usize) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await? {
        if out.len() + chunk.len() > limit {
            return Err(ClientError::Io(std::io::Error::other(format!(
                "answer from the daemon larger than {limit} bytes"
            ))));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The most of a JSON document that is read (inspect of a huge container stays far below).
const MAX_JSON_BODY: usize = 256 << 20;

async fn read_json<T: serde::de::DeserializeOwned>(
    response: Response<Incoming>,
) -> Result<T, ClientError> {
    let body = read_all(response.into_body(), MAX_JSON_BODY).await?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_negotiation_follows_the_docker_cli() {
        assert_eq!(negotiated_version(Some("1.41")), "1.41");
        assert_eq!(negotiated_version(Some("1.40")), "1.40");
        assert_eq!(negotiated_version(Some("1.51")), "1.41");
        assert_eq!(negotiated_version(Some("1.100")), "1.41");
        assert_eq!(negotiated_version(None), "1.24");
        assert_eq!(negotiated_version(Some("garbage")), "1.24");
    }

    #[test]
    fn error_bodies_give_the_daemon_message() {
        let s = StatusCode::NOT_FOUND;
        assert_eq!(
            error_message(br#"{"message":"No such container: x"}"#, s),
            "No such container: x"
        );
        assert_eq!(error_message(b"plain text\n", s), "plain text");
        assert_eq!(error_message(b"", s), "404 Not Found");
    }

    #[test]
    fn queries_are_form_encoded() {
        let c = Client::new(Host::parse("/x.sock").expect("host"));
        assert_eq!(
            c.uri(
                "/containers/create",
                &[("name", "wire bad!".into()), ("all", "1".into())]
            ),
            "/v1.41/containers/create?name=wire+bad%21&all=1"
        );
        assert_eq!(c.uri("/info", &[]), "/v1.41/info");
    }
}
