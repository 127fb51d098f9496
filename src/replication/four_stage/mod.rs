//! The four-stage replication engine (synchronous, semi-synchronous and
//! asynchronous primary/backup replication) from the seed chapter.
//!
//! Every write goes through the seed's four stages:
//!
//! 1. **Request**: a client sends the write to the primary.
//! 2. **Sync**: the primary appends it to its write-ahead log and fsyncs,
//!    then waits until [`Mode::required_acks`] backups have durably appended
//!    it too (backups persist before they ack).
//! 3. **Response**: the write is applied to the primary's store and the
//!    client is answered.
//! 4. **Async**: a shipper per backup keeps pushing the log to backups that
//!    did not take part in the Sync stage, retrying across broken
//!    connections; its heartbeats also carry the commit point. With no
//!    Sync stage at all, shipping is lazy: every
//!    [`EngineConfig::async_ship_interval`].
//!
//! With [`Mode::Sync`] the Sync stage waits for every backup (N-of-N), with
//! [`Mode::SemiSync`] for k, with [`Mode::Async`] for none. Reads go to the
//! primary and see only committed writes; [`EngineConfig::read_from_backup`]
//! sends them to a backup instead, which serves what the primary had told
//! it was committed (so stale reads can be shown). A restarted primary
//! treats its whole log as committed; a restarted backup waits for the
//! primary's commit point.
//!
//! Every client request carries a `RequestId`; replicas apply a
//! client's requests at most once, so duplicates (at-least-once retries)
//! change nothing. A replica whose disk fails stops (fail-stop) and is
//! restarted by its supervisor, recovering from what it had synced.
//!
//! Failover is manual in `sync`, `semi-sync:K` and `async`, as the seed
//! describes for primary/backup systems: the operator
//! ([`System::fail_over`]) asks every survivor for its log position,
//! promotes the most up-to-date one under a new epoch and tells the rest to
//! follow it. Log entries carry their epoch; a backup that finds its log
//! disagreeing with the primary's at some index truncates from there (the
//! check Raft's AppendEntries makes), and messages from an older epoch are
//! refused.
//!
//! The same engine also fails over by itself ([`Failover::Naive`] and
//! [`Failover::Fenced`], the systems of
//! [`crate::replication::primary_backup`]): the module `view` holds the
//! failure detector and the view change; the replica, the shipper and the
//! client take their few variant-specific turns (a primary that degrades its
//! Sync stage, read leases, redirects) from [`Failover`].
//!
//! Files: `messages` (the wire protocol), `replica` (a node's state and
//! request handlers), `shipper` (the Async stage), `client` (clients and the
//! failover operator), `view` (automatic failover).

mod client;
mod messages;
mod replica;
mod shipper;
mod view;

use std::{fmt, rc::Rc, str::FromStr, time::Duration};

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    check::Guarantee,
    net::RpcConfig,
    node::{ClientContext, Declaration, KvClient, Moment, NodeContext, NodeResult, System},
    registry::{Registry, SystemError, SystemSpec},
};

/// How many backups the Sync stage waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Every backup (N-of-N).
    Sync,
    /// `k` backups (capped at the number of backups).
    SemiSync(usize),
    /// None: the primary answers after its own durable write.
    Async,
}

impl Mode {
    /// Acks needed before the Response stage, given the number of backups.
    pub fn required_acks(self, backups: usize) -> usize {
        match self {
            Mode::Sync => backups,
            Mode::SemiSync(k) => k.min(backups),
            Mode::Async => 0,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Sync => write!(f, "sync"),
            Mode::SemiSync(k) => write!(f, "semi-sync:{k}"),
            Mode::Async => write!(f, "async"),
        }
    }
}

/// A mode name that is not `sync`, `semi-sync:K` or `async`.
#[derive(Debug, thiserror::Error)]
#[error("unknown replication mode {0:?}: expected sync, semi-sync:K or async")]
pub struct BadMode(String);

impl FromStr for Mode {
    type Err = BadMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(Mode::Sync),
            "async" => Ok(Mode::Async),
            other => other
                .strip_prefix("semi-sync:")
                .and_then(|k| k.parse().ok())
                .map(Mode::SemiSync)
                .ok_or_else(|| BadMode(other.to_string())),
        }
    }
}

/// Timing and routing knobs of the engine: a scenario's `config` (every
/// field optional; durations as `{"secs": .., "nanos": ..}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Timeouts and backoff of every connection.
    pub rpc: RpcConfig,
    /// How long a client waits for one operation before recording `info`.
    pub client_timeout: Duration,
    /// A shipper with nothing to send still contacts its backup this often.
    pub heartbeat: Duration,
    /// Most log entries in one replicate message.
    pub batch: usize,
    /// With no backup to wait for (the asynchronous mode), the Async stage
    /// ships what accumulated this often, as lazy replication does; writes
    /// waiting in a Sync stage are shipped at once.
    pub async_ship_interval: Duration,
    /// Clients read from a backup (chosen by process number) instead of the primary.
    pub read_from_backup: bool,
    /// The failure detector and the read lease of the systems that fail
    /// over by themselves (ignored by `sync`, `semi-sync:K` and `async`).
    pub failover: FailoverConfig,
}

/// Timing of automatic failover ([`Failover::Naive`], [`Failover::Fenced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverConfig {
    /// A backup that heard nothing from the primary for this long (plus
    /// one [`EngineConfig::heartbeat`] per backup ranked before it, so
    /// backups do not all start at once) starts a failover.
    pub suspect_after: Duration,
    /// The fenced primary serves reads only while a majority acknowledged
    /// a heartbeat it sent less than `lease * (1 - max_drift_ppm / 10^6)`
    /// ago by its own clock; a replica acknowledges a view change only
    /// `lease` after it last acknowledged the primary, by its own clock.
    pub lease: Duration,
    /// The clock drift the lease allows for, in millionths. A clock that
    /// drifts or jumps further breaks the lease.
    pub max_drift_ppm: u32,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            suspect_after: Duration::from_millis(150),
            lease: Duration::from_millis(100),
            max_drift_ppm: 100_000,
        }
    }
}

impl FailoverConfig {
    /// How long after sending a heartbeat its acknowledgements keep the
    /// primary's lease, by the primary's own clock: the lease shortened by
    /// the drift bound.
    pub fn lease_by_own_clock(&self) -> Duration {
        let drift = f64::from(self.max_drift_ppm.min(1_000_000)) / 1e6;
        self.lease.mul_f64(1.0 - drift)
    }
}

/// Who replaces a failed primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// The operator, through [`System::fail_over`] (`sync`, `semi-sync:K`,
    /// `async`).
    Operator,
    /// The backups, unfenced: a backup that suspects the primary promotes
    /// itself at once under the next epoch; backups follow whoever ships to
    /// them (no epoch check); a primary follows no one and drops from its
    /// Sync stage the backups that stop answering.
    Naive,
    /// The backups, by a view change a majority acknowledges: epochs are
    /// checked on every message, writes commit on a majority, reads are
    /// fenced by a lease. `epochs_checked: false` is a planted bug:
    /// replicate messages of an older epoch are accepted.
    Fenced { epochs_checked: bool },
}

impl Failover {
    /// The replicas fail over by themselves.
    pub fn is_automatic(self) -> bool {
        self != Failover::Operator
    }

    pub fn is_fenced(self) -> bool {
        matches!(self, Failover::Fenced { .. })
    }

    /// Replicate messages of an older epoch are refused.
    pub fn epochs_checked(self) -> bool {
        match self {
            Failover::Operator => true,
            Failover::Naive => false,
            Failover::Fenced { epochs_checked } => epochs_checked,
        }
    }
}

/// Deliberately broken variants of the engine (a scenario's `bug`). They
/// stay in the code so the test suite can prove, on every run, that the
/// nemesis and the checkers catch real bugs of the kind replication code
/// has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Backups acknowledge replicated entries before they fsync them (the
    /// fsync waits for the next replicate message): a crash of the backups
    /// after the primary answered loses acknowledged writes.
    AckBeforePersist,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rpc: RpcConfig::default(),
            client_timeout: Duration::from_millis(500),
            heartbeat: Duration::from_millis(50),
            batch: 64,
            async_ship_interval: Duration::from_millis(25),
            read_from_backup: false,
            failover: FailoverConfig::default(),
        }
    }
}

/// The engine as a [`System`] the harness (or `replisim serve`) runs.
#[derive(Debug, Clone)]
pub struct FourStage {
    pub mode: Mode,
    pub config: EngineConfig,
    pub bug: Option<Bug>,
}

impl FourStage {
    pub fn new(mode: Mode, config: EngineConfig) -> Self {
        FourStage {
            mode,
            config,
            bug: None,
        }
    }

    /// The same engine with a planted bug.
    pub fn with_bug(self, bug: Bug) -> Self {
        FourStage {
            bug: Some(bug),
            ..self
        }
    }
}

/// The role a four-stage replica publishes while it is the primary.
pub const PRIMARY: &str = "primary";

/// The engine's trace events worth striking at (each system on the engine
/// declares them): a promotion, a view change acknowledged, a suspected
/// primary, entries a backup applied.
pub fn events() -> Vec<Moment> {
    [
        "promoted to primary",
        "view change acknowledged",
        "primary suspected",
        "applied replicated entries",
    ]
    .into_iter()
    .map(|message| Moment::new("replisim::engine", message))
    .collect()
}

/// Registers `sync`, `semi-sync:K` and `async`.
pub fn register(registry: &mut Registry) {
    for (family, usage) in [
        (
            "sync",
            "sync (every backup acknowledges before the client is answered)",
        ),
        ("semi-sync", "semi-sync:K (K backups acknowledge)"),
        ("async", "async (no backup acknowledges)"),
    ] {
        registry.register(family, usage, build);
    }
}

fn build(spec: &SystemSpec) -> Result<Rc<dyn System>, SystemError> {
    let mode: Mode = spec.name.parse().map_err(|e: BadMode| spec.bad_params(e))?;
    Ok(Rc::new(FourStage {
        mode,
        config: spec.config()?,
        bug: spec.bug()?,
    }))
}

impl System for FourStage {
    fn declaration(&self) -> Declaration {
        Declaration {
            roles: vec![PRIMARY.to_string()],
            // Its log is not published, so log agreement is not claimed.
            claims: vec![
                Guarantee::Linearizable,
                Guarantee::Durable,
                Guarantee::Convergent,
                Guarantee::Live,
                Guarantee::NoUnexpectedExit,
            ],
            operator_failover: true,
            events: events(),
            ..Declaration::default()
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        replica_software(node, self.mode, self.config, self.bug, Failover::Operator)
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        engine_client(ctx, self.config, Failover::Operator)
    }

    fn fail_over(
        &self,
        ctx: ClientContext,
        lost: Vec<usize>,
    ) -> LocalBoxFuture<'static, Option<usize>> {
        Box::pin(client::fail_over(ctx, Rc::from(lost), self.config))
    }
}

/// A replica of the engine with the given Sync stage, configuration,
/// planted bug and failover: for the systems built on the engine.
pub(crate) fn replica_software(
    node: NodeContext,
    mode: Mode,
    config: EngineConfig,
    bug: Option<Bug>,
    failover: Failover,
) -> LocalBoxFuture<'static, NodeResult> {
    Box::pin(replica::run(
        node,
        replica::Setup {
            mode,
            config,
            bug,
            failover,
        },
    ))
}

/// A client of the engine: it follows the operator's [`crate::node::Directory`]
/// with [`Failover::Operator`], and the replicas' redirects otherwise.
pub(crate) fn engine_client(
    ctx: ClientContext,
    config: EngineConfig,
    failover: Failover,
) -> Box<dyn KvClient> {
    Box::new(client::Client::new(ctx, config, failover.is_automatic()))
}
