//! `GET /events`: one [`EventMessage`] per line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One event as streamed by `GET /events`.
///
/// Container events also carry the pre-1.22 `status`, `id` and `from` fields; other object
/// types leave them out entirely (they are omitted, not null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// Legacy: the action, for container events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Legacy: the actor's id, for container events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Legacy: the container's image, for container events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The object type: `container`, `image`, `volume`, `network`, `daemon`, `plugin`, ….
    #[serde(rename = "Type")]
    pub kind: String,
    /// What happened: `create`, `start`, `die`, `mount`, ….
    #[serde(rename = "Action")]
    pub action: String,
    /// The object the event is about.
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    /// `local` (or `swarm`).
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventActor {
    /// Its id (or name, for volumes).
    #[serde(rename = "ID")]
    pub id: String,
    /// Extra facts: `name`, `image`, `exitCode`, the object's labels, ….
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}
