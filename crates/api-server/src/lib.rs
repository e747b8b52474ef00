//! The Docker Engine API over HTTP: routing, the `/v1.NN` prefix, translation between wire
//! structs (`berth-api-types`) and engine calls (`berth-engine`), streams, and the one place
//! where an error's category becomes an HTTP status ([`ApiError`]).
//!
//! Handlers are thin: parse the request, make one typed engine call, translate the answer.
//! Decisions belong to the engine. This crate is layer 3: nothing in berth imports it except
//! the `berth` binary's composition root.

mod body;
mod detach;
mod error;
mod listener;
mod middleware;
mod routes;
mod time;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use berth_engine::{Build, Containers, Events, Images, Networks, System, Volumes};

pub use body::JsonBody;
pub use error::ApiError;
pub use listener::{ApiListener, bind_unix};
pub use middleware::{RequestedVersion, strip_version};

/// The engine services the API server calls: each router takes only what it needs.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Version and info.
    pub system: Arc<System>,
    /// The event bus.
    pub events: Arc<Events>,
    /// Containers.
    pub containers: Arc<Containers>,
    /// Images.
    pub images: Arc<Images>,
    /// Networks.
    pub networks: Arc<Networks>,
    /// `docker build`.
    pub build: Arc<Build>,
    /// Volumes.
    pub volumes: Arc<Volumes>,
}

/// The routes with the shared middleware (version check, Docker's response headers), before
/// the prefix is stripped. Use [`app`] to serve.
pub fn router(backend: Backend) -> Router {
    routes::router(backend)
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn(middleware::common))
}

/// The whole service: [`router`] behind the `/v1.NN` prefix rewrite, which must run before
/// routing (a `Router::layer` would run after it).
pub fn app(backend: Backend) -> tower::util::MapRequest<Router, fn(Request) -> Request> {
    tower::util::MapRequest::new(router(backend), strip_version as fn(Request) -> Request)
}

/// How long open connections (an `/events` stream, say) may run on after shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves the API on every listener until `shutdown` resolves, then lets connections finish
/// for at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    listeners: Vec<ApiListener>,
    backend: Backend,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let service = axum::ServiceExt::<Request>::into_make_service(app(backend.clone()));
        let mut stop = stop_rx.clone();
        let stopped = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        match listener {
            ApiListener::Unix(l) => {
                servers.spawn(
                    axum::serve(l, service)
                        .with_graceful_shutdown(stopped)
                        .into_future(),
                );
            }
            ApiListener::Tcp(l) => {
                servers.spawn(
                    axum::serve(l, service)
                        .with_graceful_shutdown(stopped)
                        .into_future(),
                );
            }
            ApiListener::Tls(l, config) => {
                servers.spawn(serve_tls(l, config, app(backend.clone()), stopped));
            }
        }
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    let drain = async {
        let mut result = Ok(());
        while let Some(joined) = servers.join_next().await {
            match joined {
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(std::io::Error::other(e)),
                Ok(Ok(())) => {}
            }
        }
        result
    };
    match tokio::time::timeout(SHUTDOWN_GRACE, drain).await {
        Ok(result) => result,
        Err(_) => {
            tracing::info!("connections still open after the shutdown grace period; closing them");
            Ok(())
        }
    }
}

/// The TLS accept loop: each connection's handshake runs on its own task (a slow client
/// holds up no one), then HTTP/1.1 with upgrades for attach and exec. Stops accepting when
/// `stopped` resolves; open connections get the shutdown grace like the others.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    app: tower::util::MapRequest<Router, fn(Request) -> Request>,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::pin!(stopped);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut stopped => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: keep serving the others.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return tracing::debug!("TLS handshake with {peer}: {e}"),
                    Err(_) => return tracing::debug!("TLS handshake with {peer}: timed out"),
                };
            let service = tower::ServiceBuilder::new()
                .map_request(|r: hyper::Request<hyper::body::Incoming>| {
                    r.map(axum::body::Body::new)
                })
                .service(app);
            let service = hyper_util::service::TowerToHyperService::new(service);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .with_upgrades()
                .await
            {
                tracing::debug!("API connection from {peer}: {e}");
            }
        });
    }
}
