//! Raft (Ongaro and Ousterhout, "In Search of an Understandable Consensus
//! Algorithm", 2014): majority consensus from the seed chapter's design
//! space, on replisim's framed TCP ([`crate::net`]) and fsync'd storage
//! ([`crate::storage`]), written only against the public API a user's
//! crate has.
//!
//! - **Elections**: a follower that hears from no leader for a random
//!   timeout ([`RaftConfig::election_timeout`], drawn from the node's seeded
//!   RNG) becomes a candidate of the next term and asks for votes; a vote
//!   goes to at most one candidate per term, and only to one whose log is at
//!   least as up-to-date (last term, then length). A majority makes it
//!   leader: it publishes the role [`LEADER`] with its term and logs
//!   `became leader` (with `term`), so faults and triggers can aim at it.
//!   The declaration names the events random strategies may trigger faults
//!   on (`EVENTS`: a leader elected, an index committed, a vote granted,
//!   a log cut, an election started, entries appended).
//! - **Replication**: one replicator per follower sends `AppendEntries`
//!   with the consistency check on `(prev_index, prev_term)`, pipelined
//!   ([`RaftConfig::pipeline`] in flight, each on its own connection, each
//!   carrying everything from the follower's next index), so appends arrive
//!   out of order and a late one repeats entries the follower has; a follower
//!   truncates only on a real conflict (same index, other term), never an
//!   entry it knows committed. The leader commits the highest index a
//!   majority holds *if it is of its own term* (§5.4.2) and logs
//!   `committed index` (with `index`) for each. A new leader with no entry
//!   of its term after a heartbeat appends a blank one.
//! - **Durability**: the term and vote ([`MetaFile`](crate::storage::MetaFile))
//!   and the log ([`Wal`](crate::storage::Wal)) are fsync'd before the
//!   answer (vote, append acknowledgement) or the replication that depends
//!   on them; a restarted replica recovers both and knows nothing committed
//!   until a leader tells it.
//! - **Clients**: every operation, reads included, goes through the log,
//!   so reads are linearizable. Followers redirect to the leader they know;
//!   clients find the leader themselves (no directory) and retry with the
//!   same request id within their deadline; the state machine applies each
//!   (client, sequence number) at most once ([`KvMachine`](crate::replication::kv::KvMachine)).
//! - A replica whose disk fails stops (fail-stop) and is restarted.
//!
//! No snapshots or log compaction: logs grow for the length of a run.
//!
//! Files: `messages` (the wire protocol and log entry), `state` (the
//! replica's state and the rules without I/O), `replica` (the node: timers,
//! handlers, replicators), `client` (leader discovery and retries).

mod client;
mod messages;
mod replica;
mod state;

use std::{rc::Rc, time::Duration};

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    check::Guarantee,
    net::RpcConfig,
    node::{ClientContext, Declaration, KvClient, Moment, NodeContext, NodeResult, System},
    registry::{Registry, SystemError, SystemSpec},
};

/// The role a Raft replica publishes while it leads, with its term.
pub const LEADER: &str = "leader";

/// The trace events (on target `replisim::raft`) the declaration names
/// for faults to strike at: the moments the planted bugs' windows open
/// (a vote answered, a log cut, an entry committed, a leader elected, an
/// election started, entries appended by a follower).
const EVENTS: [&str; 6] = [
    "became leader",
    "committed index",
    "granted vote",
    "truncating the log",
    "starting an election",
    "appended entries",
];

/// `message` as a declared moment, with whom striking at each of its first
/// few occurrences is worth it: the leader once elected, once it committed,
/// once a follower cut its log (leader churn, figure 8); the voter once it
/// voted.
fn moment(message: &str) -> Moment {
    let moment = Moment::new("replisim::raft", message);
    match message {
        "became leader" | "committed index" | "truncating the log" => moment.churning(LEADER),
        "granted vote" => moment.churning_emitter(),
        _ => moment,
    }
}

/// Timing knobs: a scenario's `config` (every field optional; durations as
/// `{"secs": .., "nanos": ..}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Timeouts and backoff of every connection.
    pub rpc: RpcConfig,
    /// How long a client tries (finding the leader, retrying) before it
    /// records `info` (or `fail`, when no attempt can have taken effect).
    pub client_timeout: Duration,
    /// A leader contacts each follower at least this often.
    pub heartbeat: Duration,
    /// Election timeouts are drawn uniformly from this range (ms).
    pub election_timeout: (u64, u64),
    /// Most log entries in one `AppendEntries`.
    pub batch: usize,
    /// Most `AppendEntries` in flight to one follower, each on its own
    /// connection (at least 1: one at a time).
    pub pipeline: usize,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            rpc: RpcConfig::default(),
            client_timeout: Duration::from_millis(1000),
            heartbeat: Duration::from_millis(50),
            election_timeout: (150, 300),
            batch: 64,
            pipeline: 2,
        }
    }
}

/// Deliberately broken variants (a scenario's `bug`, `--bug NAME`), kept
/// so the suite proves on every run that the nemesis and the checkers
/// catch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// The leader commits entries of earlier terms by counting replicas
    /// (the Raft paper's figure 8), and so appends no blank entry when
    /// elected: that entry is how a correct leader commits them.
    CommitOldTermByCount,
    /// Votes are granted without the log up-to-date check.
    VoteWithoutLogCheck,
    /// A vote is answered before it is durable: the term and vote (one
    /// record) reach the disk only with the next change of term, so a
    /// crash forgets both and the voter may vote again in that term.
    VoteBeforePersist,
    /// An `AppendEntries` that only repeats entries the follower has
    /// truncates the follower's log after them.
    TruncateOnStaleAppend,
}

/// Raft as a [`System`].
#[derive(Debug, Clone, Default)]
pub struct Raft {
    pub config: RaftConfig,
    pub bug: Option<Bug>,
}

/// Registers `raft`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "raft",
        "raft (majority consensus: leader election, log replication)",
        build,
    );
}

fn build(spec: &SystemSpec) -> Result<Rc<dyn System>, SystemError> {
    if spec.params.is_some() {
        return Err(spec.bad_params("raft takes no parameters"));
    }
    Ok(Rc::new(Raft {
        config: spec.config()?,
        bug: spec.bug()?,
    }))
}

impl System for Raft {
    /// 3 to 5 replicas (Raft is meant for odd sizes; 4 works, with a
    /// majority of 3), a majority needed, the `leader` role, and every
    /// guarantee: liveness too, since a healed majority elects a leader.
    fn declaration(&self) -> Declaration {
        Declaration {
            replicas: 3..=5,
            roles: vec![LEADER.to_string()],
            needs_quorum: true,
            claims: Guarantee::ALL.to_vec(),
            operator_failover: false,
            events: EVENTS.iter().map(|message| moment(message)).collect(),
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(replica::run(node, self.config, self.bug))
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(client::Client::new(ctx, self.config))
    }
}
