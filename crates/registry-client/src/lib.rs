//! berth's registry client: the OCI distribution API as Docker speaks it.
//!
//! - Resolve a reference (tag or `@sha256:` digest) to an image manifest: Docker schema 2
//!   and OCI manifests, manifest lists and OCI indexes with a platform choice
//!   ([`manifest`]); manifests are bounded in size and checked against their digest.
//! - Auth ([`auth`]): anonymous, Basic, and the Bearer token flow a `WWW-Authenticate`
//!   challenge starts (realm, service, `repository:<name>:<actions>` scope), with the
//!   credentials of an `X-Registry-Auth` header.
//! - Pull ([`Client::pull`]): layers fetched in parallel (default 3), each streamed into a
//!   resumable ingest of the content store named after its digest, resumed with `Range`
//!   after a dropped connection, shared with a concurrent pull of the same blob, and only
//!   visible once its digest checked out. A [`LayerTap`] gets each layer's bytes as they
//!   arrive (to unpack while downloading), and their end only once the digest matched.
//! - Push ([`Client::push`]): `HEAD` to skip blobs the registry has, monolithic uploads
//!   (chunked `PATCH`es with `Content-Range` for blobs over [`Options::push_chunk_size`]),
//!   the manifest `PUT` in Docker's byte-exact serialisation.
//! - Login ([`Client::login`]).
//!
//! Plain HTTP is used only for loopback registries and `insecure_registries`;
//! `docker.io` means `registry-1.docker.io`.
//!
//! Layer 3 (mechanisms): it imports `berth-content`, `berth-reference` and
//! `berth-errdefs`. Registering what was pulled as an image is the image store's job.

pub mod auth;
mod client;
mod error;
mod http;
pub mod manifest;
mod tap;

pub use auth::{Challenge, Credentials};
pub use client::{
    Client, DEFAULT_PUSH_CHUNK_SIZE, MAX_MANIFEST_SIZE, Options, Progress, ProgressFn, Pulled,
    PushImage, Pushed,
};
pub use error::{ClientError, Result};
pub use http::{api_host, is_loopback};
pub use manifest::{Descriptor, Platform};
pub use tap::{LayerTap, TAP_CHUNKS, TapChunk, TapReader};
