//! `GET /events`: a chunked stream of JSON lines.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_api_types::{EventActor, EventMessage};
use berth_engine::{Event, EventQuery, EventType, Events};
use berth_reference::Filters;
use bytes::Bytes;

use crate::Backend;
use crate::error::ApiError;
use crate::time::parse_timestamp;

pub(super) fn routes() -> Router<Backend> {
    Router::new().route("/events", get(events))
}

async fn events(
    State(events): State<Arc<Events>>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let time = |name: &str| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| parse_timestamp(name, v))
            .transpose()
    };
    let filters = match params.get("filters").filter(|v| !v.is_empty()) {
        Some(json) => Filters::parse(json)?,
        None => Filters::new(),
    };
    let subscription = events.subscribe(EventQuery {
        since: time("since")?,
        until: time("until")?,
        filters,
    })?;
    let lines = futures_util::stream::unfold(subscription, |mut subscription| async move {
        let event = subscription.next().await?;
        Some((Ok::<_, Infallible>(event_line(event)), subscription))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response())
}

fn event_line(event: Event) -> Bytes {
    let mut line = serde_json::to_vec(&event_message(event)).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn event_message(event: Event) -> EventMessage {
    // Container and image events keep the pre-1.22 fields clients still read (`from` only
    // for containers), as dockerd fills them.
    let container = event.kind == EventType::Container;
    let legacy = container || event.kind == EventType::Image;
    EventMessage {
        status: legacy.then(|| event.action.clone()),
        id: legacy.then(|| event.actor_id.clone()),
        from: container
            .then(|| event.attributes.get("image").cloned())
            .flatten(),
        kind: event.kind.as_str().into(),
        action: event.action,
        actor: EventActor {
            id: event.actor_id,
            attributes: event.attributes,
        },
        scope: event.scope.into(),
        time: event.time_nano.div_euclid(1_000_000_000),
        time_nano: event.time_nano,
    }
}
