//! cgroup management for berth: detecting the host's hierarchies (v1, v2 or hybrid), creating
//! and removing a container's cgroups, applying OCI `linux.resources` to them, moving
//! processes in, freezing, and reading usage for `docker stats`.
//!
//! It is used by berth's OCI runtime and by the engine. It must not import anything from berth
//! above it (the runtime, shim, engine, …): it depends only on `oci-spec` and system crates.
//!
//! # Hierarchies
//!
//! [`Hierarchy::detect`] reads `/proc/self/mountinfo`. In hybrid mode (v1 controllers plus a
//! cgroup2 mount at `/sys/fs/cgroup/unified`) a [`Cgroup`] also has a directory in the cgroup2
//! mount: processes join it, and it takes hugetlb limits when v1 has no hugetlb controller,
//! and the `unified` key/values. A `Hierarchy::V2 { root }` may be built by hand for any
//! cgroup2 mount, which is how tests exercise the v2 code on a hybrid host.
//!
//! # Order of writes
//!
//! [`Cgroup::apply`] validates everything first, then writes in a fixed order:
//!
//! - v1: cpuset (`cpus`, `mems`) → devices (each rule in order) → memory (limit and
//!   memory+swap ordered so memsw ≥ limit holds at every moment: swap first when raising,
//!   limit first when lowering; then soft limit, `oom_control`, swappiness, use_hierarchy)
//!   → cpu (realtime runtime/period, shares, CFS period/burst/quota with EINVAL retries after
//!   the quota, idle) → pids → blkio (weights, then throttles) → hugetlb → net_cls/net_prio
//!   → hybrid cgroup2 side (hugetlb when v1 lacks it, then `unified`).
//! - v2: pids → memory (`swap.max`, `max`, `low`) → io → cpu (`idle`, `weight`, `max.burst`,
//!   `max`) → devices (eBPF) → cpuset → hugetlb → `unified` (last, so it overrides).
//!
//! Conversions from OCI's v1-shaped values to v2 follow runc (see [`convert`]).
//!
//! # Values
//!
//! As in runc, 0 leaves most numbers unset and -1 means unlimited; a pids limit of 0 or less
//! is unlimited. Kernel memory limits (`kernel`, `kernelTCP`) are ignored: Linux deprecated
//! them. A requested setting whose file this kernel lacks (`memory.memsw.*` without swap
//! accounting, `blkio.weight` without CFQ) is a [`CgroupError::MissingFile`]; settings v2 has
//! no file for at all (swappiness, realtime CPU, disableOOMKiller, …) are
//! [`CgroupError::Unsupported`] there. rdma limits are not implemented yet.
//!
//! # Devices
//!
//! Rules apply in order; per access bit (r, w, m) the last matching rule decides and no match
//! denies. v1 writes them to `devices.allow`/`devices.deny`; v2 compiles them into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program attached with bpf(2).

mod cgroup;
pub mod convert;
mod devices;
mod ebpf;
mod error;
mod fs;
mod hierarchy;
mod path;
mod stats;
mod v1;
mod v2;
mod validate;

pub use cgroup::Cgroup;
pub(crate) use cgroup::mkdir;
pub use error::CgroupError;
pub use hierarchy::{Hierarchy, OwnCgroups};
pub use stats::{CpuStats, IoEntry, MemoryStats, PidsStats, Stats};
