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
//! Failover is manual, as the seed describes for primary/backup systems: the
//! operator ([`System::fail_over`]) asks every survivor for its log
//! position, promotes the most up-to-date one under a new epoch and tells the
//! rest to follow it. Log entries carry their epoch; a backup that finds its
//! log disagreeing with the primary's at some index truncates from there
//! (the check Raft's AppendEntries makes), and messages from an older epoch
//! are refused.
//!
//! Files: `messages` (the wire protocol), `replica` (a node's state and
//! request handlers), `shipper` (the Async stage), `client` (clients and the
//! failover operator).

mod client;
mod messages;
mod replica;
mod shipper;

use std::{fmt, rc::Rc, str::FromStr, time::Duration};

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    check::Guarantee,
    net::RpcConfig,
    node::{ClientContext, Declaration, KvClient, NodeContext, NodeResult, System},
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
            ],
            operator_failover: true,
            ..Declaration::default()
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(replica::run(node, self.mode, self.config, self.bug))
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(client::Client::new(ctx, self.config))
    }

    fn fail_over(
        &self,
        ctx: ClientContext,
        lost: Vec<usize>,
    ) -> LocalBoxFuture<'static, Option<usize>> {
        Box::pin(client::fail_over(ctx, Rc::from(lost), self.config))
    }
}
