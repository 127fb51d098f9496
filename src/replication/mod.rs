//! The built-in replication protocols. Each sees only [`crate::net`],
//! [`crate::storage`], `tokio::time` and `tracing`, and plugs into the
//! harness through [`crate::node::System`] like a user's own code.
//!
//! - [`kv`]: the key-value state machine every protocol replicates.
//! - [`four_stage`]: the seed's Request / Sync / Response / Async engine,
//!   with the width of the Sync stage as its one parameter: synchronous
//!   (every backup), semi-synchronous (k backups) and asynchronous (none).
//! - [`primary_backup`]: the engine failing over by itself, naive and
//!   fenced.
//! - [`crdt`]: state-based CRDTs (PN-Counter, OR-Set, LWW-Register)
//!   applied locally and gossiped.
//! - [`raft`]: majority consensus with leader election.
//! - [`dynamo`]: leaderless quorums (N, R, W) with siblings, read repair,
//!   hinted handoff and anti-entropy.

pub mod crdt;
pub mod dynamo;
pub mod four_stage;
pub mod kv;
pub mod primary_backup;
pub mod raft;

use crate::registry::Registry;

/// A registry of every built-in protocol: `sync`, `semi-sync:K`, `async`,
/// `primary-backup`, `primary-backup:fenced`, `raft`, `crdt-counter`,
/// `crdt-set`, `lww`, `dynamo:N/R/W`.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    four_stage::register(&mut registry);
    primary_backup::register(&mut registry);
    raft::register(&mut registry);
    crdt::register(&mut registry);
    dynamo::register(&mut registry);
    registry.sweep_by_default([
        "sync",
        "semi-sync:1",
        "async",
        "primary-backup",
        "primary-backup:fenced",
        "raft",
        "crdt-counter",
        "crdt-set",
        "lww",
        "dynamo:3/2/2",
    ]);
    registry
}
