//! replisim: deterministic simulation testing for replication code.
//!
//! Real async (tokio) replication code runs inside turmoil's simulated
//! network and filesystem; seeded workloads and fault schedules drive it;
//! checkers decide from the recorded history whether the system stayed
//! durable, convergent and available. Every run is a pure function of one
//! serialisable [`sim::Scenario`].
//!
//! Layers (see ARCHITECTURE.md in the repository): [`net`] and [`storage`]
//! are traits with a simulated and a real implementation each; [`node`] is
//! the plug a [`node::System`] implements (and declares its cluster sizes,
//! roles and claimed guarantees through); [`workload`]s generate client
//! operations and judge their histories; [`sim`] is the harness and never
//! names a protocol; [`registry`] maps system names to factories;
//! [`replication`] holds the built-in protocols, written against the same
//! public API as a user's; [`history`] and [`check`] are pure; [`serve`]
//! runs the same replica code over real sockets and disks.
//! [`strategy`] (proptest strategies for faults and scenarios) and
//! [`testing`] (the property-test runner) are what a user's `#[test]`
//! functions call; [`points`] holds `buggify!` and `sometimes!`, which
//! code under test calls; [`guided`] draws cases one at a time for any search
//! mode, coverage-guided search among them, and [`shrink`] shrinks a
//! failing scenario without proptest; [`sweep`] sweeps seeds (`replisim explore`); [`report`]
//! draws a run as a self-contained HTML timeline; `cli` (the default feature
//! `cli`) is the command-line tool over any registry.
//!
//! A user's crate needs only replisim, tokio and proptest: what its system
//! code needs from elsewhere is re-exported here ([`macro@async_trait`],
//! [`LocalBoxFuture`], [`serde`], [`serde_json`]).

#[cfg(not(tokio_unstable))]
compile_error!(
    "replisim needs `--cfg tokio_unstable`: without it turmoil cannot seed each host's tokio \
     runtime and simulations are not deterministic. Add to .cargo/config.toml:\n\
     [build]\nrustflags = [\"--cfg\", \"tokio_unstable\"]"
);

pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod codec;
pub mod effect;
pub mod guided;
pub mod history;
pub mod net;
pub mod node;
pub mod points;
pub mod registry;
pub mod replication;
pub mod report;
pub mod serve;
pub mod shrink;
pub mod sim;
pub mod storage;
pub mod strategy;
pub mod sweep;
pub mod testing;
pub mod workload;

pub use async_trait::async_trait;
pub use futures_util::future::LocalBoxFuture;
pub use serde;
pub use serde_json;
