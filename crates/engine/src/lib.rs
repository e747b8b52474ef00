//! berth's domain layer: the services behind the Engine API. This first slice has
//! [`System`] (version and host facts for `/version` and `/info`) and [`Events`] (the event
//! bus behind `/events`).
//!
//! Each service is a small struct that owns its state; the daemon's composition root builds
//! them and hands them to the API server. This crate never sees HTTP and must not import
//! `berth-api-types` or anything above layer 2: it speaks in its own domain types, and the API
//! server translates. Every error type here implements [`berth_errdefs::HasCategory`].

pub mod build;
pub mod containers;
pub mod events;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;

pub use berth_builder::CacheRecord;
pub use build::{Build, BuildFailure, BuildOptions, Progress};
pub use containers::{Containers, ContainersConfig};
pub use events::{Event, EventQuery, EventType, Events, EventsError, Subscription};
pub use images::Images;
pub use networks::{Networks, NetworksConfig};
pub use system::{
    CgroupFacts, HostFacts, InfoReport, System, SystemConfig, SystemError, VersionReport,
};
pub use volumes::Volumes;
