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

pub mod four_stage;
pub mod kv;
pub mod primary_backup;

use crate::registry::Registry;

/// A registry of every built-in protocol: `sync`, `semi-sync:K`, `async`,
/// `primary-backup`, `primary-backup:fenced`.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    four_stage::register(&mut registry);
    primary_backup::register(&mut registry);
    registry
}
