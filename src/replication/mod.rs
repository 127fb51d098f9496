//! The built-in replication protocols. Each sees only [`crate::net`],
//! [`crate::storage`], `tokio::time` and `tracing`, and plugs into the
//! harness through [`crate::node::System`] like a user's own code.
//!
//! - [`kv`]: the key-value state machine every protocol replicates.
//! - [`four_stage`]: the seed's Request / Sync / Response / Async engine,
//!   with the width of the Sync stage as its one parameter: synchronous
//!   (every backup), semi-synchronous (k backups) and asynchronous (none).
//! - [`raft`]: majority consensus with leader election.

pub mod four_stage;
pub mod kv;
pub mod raft;

use crate::registry::Registry;

/// A registry of every built-in protocol: `sync`, `semi-sync:K`, `async`,
/// `raft`.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    four_stage::register(&mut registry);
    raft::register(&mut registry);
    registry
}
