//! Turns a container's Docker configuration into an OCI runtime spec (`config.json`) with
//! Docker's defaults, as moby's `daemon/oci_linux.go` and `pkg/oci/defaults.go` do: the 14
//! default capabilities (inheritable and ambient empty), the default seccomp profile with its
//! capability-, architecture- and kernel-conditioned rules, masked and read-only paths,
//! default mounts and devices, namespaces, sysctls, resources, rlimits, the user resolved in
//! the container's own `/etc/passwd`, and the parsers for `-v`, `--mount`, `--device`,
//! `--ulimit`, `--security-opt`.
//!
//! Layer 1: imports `oci-spec` and `berth-errdefs`, never the engine, the API types or the
//! runtime. Invalid input is a [`SpecError`] in Docker's words, categorised (mostly
//! InvalidParameter) so the engine answers 400. Nothing here starts processes or changes the
//! host: it reads host facts ([`HostFacts`]), the container's passwd/group files, device
//! nodes for `--device`/`--privileged`, and asks the engine for volumes ([`VolumeSource`]).
//!
//! ```no_run
//! use berth_spec::{ContainerConfig, NoVolumes, RuntimeContext, generate};
//!
//! let cfg = ContainerConfig { cmd: vec!["sh".into()], ..ContainerConfig::default() };
//! let ctx = RuntimeContext::new("0123456789ab", "/var/lib/berth/snapshots/1/fs");
//! let spec = generate(&cfg, &ctx, &NoVolumes)?;
//! # Ok::<(), berth_spec::SpecError>(())
//! ```

mod caps;
mod config;
mod devices;
mod error;
mod generate;
mod host;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod seccomp;
mod user;

pub use caps::{
    ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capability_sets, container_capabilities,
    normalize_capabilities,
};
pub use config::{
    ContainerConfig, DeviceMapping, HostConfig, IpcNamespace, MountKind, MountSpec,
    NetworkNamespace, PidNamespace, Resources, RuntimeContext, Ulimit,
};
pub use devices::{default_device_rules, parse_device, parse_device_cgroup_rule};
pub use error::{Result, SpecError};
pub use generate::{
    DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, OCI_VERSION, STOP_SIGNAL_ANNOTATION, generate,
};
pub use host::{HostFacts, caps_from_mask, parse_kernel_version};
pub use mounts::{
    DEFAULT_SHM_SIZE, INIT_PATH, NoVolumes, VolumeRequest, VolumeSource, parse_bind, parse_bytes,
    parse_mount_flag,
};
pub use process::{
    DEFAULT_PATH, ImageConfig, SeccompChoice, SecurityOptions, merge_image_config,
    parse_security_opts, parse_stop_signal,
};
pub use resources::{linux_resources, parse_ulimit};
pub use seccomp::{DEFAULT_PROFILE, DockerProfile, ProfileTarget, native_arch, read_profile_file};
pub use user::{ResolvedUser, resolve_user};
