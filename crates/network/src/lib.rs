//! berth's container networking mechanisms: Linux bridges and veth pairs over rtnetlink
//! ([`links`]), address management with persistent allocations ([`ipam`]), berth's own
//! nftables table for NAT, isolation and published ports ([`firewall`]), `-p` parsing and host
//! port reservations ([`ports`]), the embedded DNS resolver ([`dns`]), a userland proxy
//! ([`proxy`]) and room in a Docker Engine's iptables `FORWARD` chain ([`forward`]).
//!
//! This crate is layer 3. It imports only lower layers (`errdefs`) and never the engine or the
//! API: it offers mechanisms, and the engine decides when to use them. Every error type here
//! implements [`berth_errdefs::HasCategory`].
//!
//! The daemon's threads never change network namespace: work inside a container's namespace
//! runs on a short-lived thread ([`links::in_netns`], [`dns::bind_in_netns`]).

pub mod dns;
pub mod firewall;
pub mod forward;
pub mod ipam;
pub mod links;
pub mod ports;
pub mod proxy;

mod persist;
