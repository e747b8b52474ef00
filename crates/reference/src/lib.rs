//! Names and identities as Docker spells them: image references (`busybox` →
//! `docker.io/library/busybox`), content digests, image and container ids, container names,
//! and the Engine API's `filters` parameter.
//!
//! Everything here is pure string handling with Docker's exact rules and error messages, so the
//! API server, the engine, the image store and the CLI all agree on what a name means. It is
//! layer 0: the only berth crate it imports is `berth-errdefs`, whose [`HasCategory`] every
//! error type here implements (all are `InvalidParameter`, except a prefix that matches nothing,
//! which is `NotFound`).
//!
//! - [`Reference`]: `parse_normalized`, `familiar_string`, `with_default_tag`, …
//! - [`Digest`]: `sha256:<hex>` parsing and hashing ([`Sha256Digester`] for streams).
//! - [`ContainerId`], [`ImageId`], [`generate_id`], [`truncate_id`], [`resolve_prefix`].
//! - [`ContainerName`], [`random_name`].
//! - [`Filters`].
//!
//! [`HasCategory`]: berth_errdefs::HasCategory

mod digest;
mod filters;
mod id;
mod name;
mod reference;

pub use digest::{Algorithm, Digest, DigestError, Sha256Digester};
pub use filters::{FilterError, Filters, LabelLookup};
pub use id::{
    ContainerId, ID_LEN, IdError, ImageId, PrefixError, SHORT_ID_LEN, generate_id, is_full_id,
    resolve_prefix, truncate_id,
};
pub use name::{ContainerName, NameError, random_name};
pub use reference::{
    AnyReference, DEFAULT_DOMAIN, DEFAULT_TAG, NAME_MAX_LEN, Reference, ReferenceError,
};
