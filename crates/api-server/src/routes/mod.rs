//! The routes, one module per Docker API area. Each handler takes only the engine service
//! it needs (axum `FromRef` substates of [`Backend`]).

mod archive;
mod build;
mod containers;
mod df;
mod events;
mod images;
mod networks;
mod stats;
mod system;
mod volumes;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::response::{IntoResponse, Response};
use berth_engine::{Build, Containers, Events, Images, Networks, System, Volumes};
use berth_errdefs::Category;

use crate::Backend;
use crate::error::ApiError;
use crate::middleware::NoApiVersionHeader;

impl FromRef<Backend> for Arc<System> {
    fn from_ref(backend: &Backend) -> Arc<System> {
        backend.system.clone()
    }
}

impl FromRef<Backend> for Arc<Events> {
    fn from_ref(backend: &Backend) -> Arc<Events> {
        backend.events.clone()
    }
}

impl FromRef<Backend> for Arc<Containers> {
    fn from_ref(backend: &Backend) -> Arc<Containers> {
        backend.containers.clone()
    }
}

impl FromRef<Backend> for Arc<Build> {
    fn from_ref(backend: &Backend) -> Arc<Build> {
        backend.build.clone()
    }
}

impl FromRef<Backend> for Arc<Images> {
    fn from_ref(backend: &Backend) -> Arc<Images> {
        backend.images.clone()
    }
}

impl FromRef<Backend> for Arc<Volumes> {
    fn from_ref(backend: &Backend) -> Arc<Volumes> {
        backend.volumes.clone()
    }
}

impl FromRef<Backend> for Arc<Networks> {
    fn from_ref(backend: &Backend) -> Arc<Networks> {
        backend.networks.clone()
    }
}

pub(crate) fn router(backend: Backend) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(events::routes())
        .merge(containers::routes())
        .merge(archive::routes())
        .merge(images::routes())
        .merge(networks::routes())
        .merge(build::routes())
        .merge(volumes::routes())
        .merge(stats::routes())
        .merge(df::routes())
        .with_state(backend)
}

/// The `page not found` error, for handlers that match a path pattern but not the path.
pub(crate) fn not_found_error() -> ApiError {
    ApiError::new(Category::NotFound, "page not found")
}

/// dockerd's answer to a path no route matches.
pub(crate) async fn not_found() -> Response {
    let mut response = not_found_error().into_response();
    response.extensions_mut().insert(NoApiVersionHeader);
    response
}
