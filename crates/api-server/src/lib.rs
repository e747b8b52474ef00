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
use tokio::net::UnixListener;

pub use body::JsonBody;
pub use error::ApiError;
pub use listener::bind_unix;
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
    listeners: Vec<UnixListener>,
    backend: Backend,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let service = axum::ServiceExt::<Request>::into_make_service(app(backend.clone()));
        let mut stop = stop_rx.clone();
        servers.spawn(
            axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .into_future(),
        );
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
