//! Docker Engine API 1.41 wire structs: the JSON bodies berth's API server sends and receives,
//! with Docker's exact field names, types and null-versus-empty choices.
//!
//! This crate is layer 0. It holds data only — no logic, no I/O — and depends on nothing but
//! `serde`. The engine never imports it: the API server translates engine facts into these
//! types at the edge.

mod events;
mod system;

pub use events::{EventActor, EventMessage};
pub use system::{
    Commit, ComponentVersion, DiscreteGenericResource, GenericResource, IndexInfo,
    NamedGenericResource, PeerNode, Platform, PluginsInfo, RegistryServiceConfig, Runtime,
    SwarmInfo, SystemInfo, Version,
};

use serde::{Deserialize, Serialize};

/// The newest API version berth implements and reports (`ApiVersion`).
pub const API_VERSION: &str = "1.41";

/// The oldest API version berth accepts in a `/v1.NN/` prefix and reports (`MinAPIVersion`).
pub const MIN_API_VERSION: &str = "1.24";

/// The body of every error response: `{"message":"No such container: x"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The text the docker CLI prints after `Error response from daemon: `.
    pub message: String,
}
