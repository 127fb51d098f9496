//! Dynamo-style leaderless replication (`dynamo:N/R/W`): consistent
//! hashing, quorums of N, R and W, version vectors with siblings, read
//! repair, sloppy quorums with hinted handoff, and anti-entropy.
//!
//! - Placement (`ring`): one token per node, evenly spaced; a key's
//!   preference list is the N nodes from its head on; the nodes after them
//!   are its fallbacks.
//! - Versions ([`version`]): dotted version vectors; concurrent writes are
//!   kept side by side (siblings) and returned together; a client's write
//!   carries the context of everything it saw of the key (its earlier
//!   writes' and reads' contexts) and supersedes exactly that.
//! - Any node coordinates (`coordinator`): a write gets a dot from its
//!   coordinator (counters fsync'd before use) and is sent to the N nodes
//!   of its preference list; the client is answered after W of them stored
//!   it durably. A read asks the N and answers with the merge of the first
//!   R answers, then repairs the ones that answered with less (read repair,
//!   after the answer). With a sloppy quorum (the default, as in Dynamo),
//!   a preference-list node that cannot be reached is replaced by the next
//!   fallback, which keeps the write as a hint for it; with a strict one
//!   (`{"sloppy_quorum": false}`) it is not, and fewer than W answers fail
//!   the request.
//! - Hints (`handoff`): a fallback keeps hinted writes apart, on disk,
//!   and delivers them to their node every `handoff_interval` until it
//!   takes them; it answers reads of them meanwhile.
//! - Anti-entropy (`anti_entropy`): every `anti_entropy_interval` a node
//!   pulls from the next peer that keeps some of its ranges: it sends a
//!   digest per shared range, and the peer answers with its versions of
//!   the ranges whose digests differ (a one-level Merkle tree).
//! - Storage (`replica`): a node's whole state (its store, its hints, its
//!   actor's counter) is one [`DurableValue`](crate::storage::DurableValue),
//!   fsync'd before anything that depends on it is answered. A node that
//!   starts on an empty disk is a new actor.
//! - Clients (`client`): each operation goes to a node chosen as a load
//!   balancer would (rotating, from the client's number), the next one when
//!   that node cannot be reached; the client keeps each key's context.
//!
//! Claims: `durable` (every acknowledged write is among the final siblings
//! or superseded by a write whose context included it, [`MultiValue`]),
//! `convergent` (each key's surviving preference-list nodes hold the same
//! versions after the quiet period: the nodes publish their placement) and
//! `no-unexpected-exit`; with a strict quorum and R+W>N also
//! `no-stale-read` and `read-your-writes`, which a sloppy quorum loses when
//! a partition puts the write on fallbacks the read does not ask, and
//! R+W≤N loses without any fault. It never claims `linearizable`.
//!
//! Planted bugs (`--bug`): `read-repair-overwrites-sibling` (read repair
//! writes back the first sibling as superseding the others),
//! `anti-entropy-skips-range` (a node never pulls the range it heads),
//! `hint-dropped-on-restart` (hints live in memory only: a fallback that
//! restarts forgets them).

mod anti_entropy;
mod client;
mod coordinator;
mod handoff;
mod replica;
mod ring;
pub mod version;

use std::{rc::Rc, time::Duration};

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    check::Guarantee,
    net::RpcConfig,
    node::{ClientContext, Declaration, KvClient, Moment, NodeContext, NodeResult, System},
    registry::{Registry, SystemError, SystemSpec},
    workload::{MultiValue, Workload},
};

/// Deliberately broken Dynamo (a scenario's `bug`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Read repair resolves siblings: it writes back the first as
    /// superseding the others, which vanish though no client saw them.
    ReadRepairOverwritesSibling,
    /// A node's anti-entropy never pulls the range it heads.
    AntiEntropySkipsRange,
    /// Hints are kept in memory only: a fallback that restarts forgets them.
    HintDroppedOnRestart,
}

/// N, R and W.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorums {
    /// Nodes that keep each key.
    pub n: usize,
    /// Answers a read waits for.
    pub r: usize,
    /// Acknowledgements a write waits for.
    pub w: usize,
}

impl std::str::FromStr for Quorums {
    type Err = String;

    /// `N/R/W`, with 1 <= R, W <= N.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let [n, r, w] = parts[..] else {
            return Err(format!("{text:?} is not N/R/W (three numbers)"));
        };
        let number = |name: &str, part: &str| {
            part.parse::<usize>()
                .map_err(|_| format!("{name} = {part:?} is not a number"))
        };
        let quorums = Quorums {
            n: number("N", n)?,
            r: number("R", r)?,
            w: number("W", w)?,
        };
        if quorums.n == 0 {
            return Err("N must be at least 1".into());
        }
        for (name, value) in [("R", quorums.r), ("W", quorums.w)] {
            if !(1..=quorums.n).contains(&value) {
                return Err(format!(
                    "{name} = {value} must be between 1 and N = {}",
                    quorums.n
                ));
            }
        }
        Ok(quorums)
    }
}

/// Timing and quorum mode (a scenario's `config`, durations as the
/// engine's: `{"handoff_interval": {"secs": 0, "nanos": 50000000}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamoConfig {
    /// Replace unreachable preference-list nodes by fallbacks (Dynamo's
    /// sloppy quorum) rather than fail.
    pub sloppy_quorum: bool,
    /// Time between two rounds of hint delivery.
    pub handoff_interval: Duration,
    /// Time between two anti-entropy exchanges of a node.
    pub anti_entropy_interval: Duration,
    /// Requests between nodes (a coordinator's to the replicas, hints,
    /// anti-entropy): a short deadline, so an unreachable node is replaced
    /// quickly.
    pub peer_rpc: RpcConfig,
    /// Clients' requests to their coordinator.
    pub client_rpc: RpcConfig,
    /// The planted bug (from the scenario's `bug`, not its config).
    #[serde(skip)]
    pub(crate) bug: Option<Bug>,
}

impl Default for DynamoConfig {
    fn default() -> Self {
        DynamoConfig {
            sloppy_quorum: true,
            handoff_interval: Duration::from_millis(50),
            anti_entropy_interval: Duration::from_millis(20),
            peer_rpc: RpcConfig {
                request_timeout: Duration::from_millis(100),
                ..RpcConfig::default()
            },
            client_rpc: RpcConfig {
                request_timeout: Duration::from_millis(600),
                ..RpcConfig::default()
            },
            bug: None,
        }
    }
}

/// The trace events worth striking at (target `replisim::dynamo`): a
/// fallback just took a hint (its only copy, perhaps), a read just
/// repaired a replica.
const EVENTS: [&str; 2] = ["stored a hint", "repaired a replica"];

/// `dynamo:N/R/W`.
pub struct Dynamo {
    quorums: Quorums,
    config: DynamoConfig,
}

impl System for Dynamo {
    /// N to N+2 nodes (so that fallbacks exist), no roles, no quorum of
    /// the cluster needed; the claims of the module's doc.
    fn declaration(&self) -> Declaration {
        let Quorums { n, r, w } = self.quorums;
        let mut claims = vec![
            Guarantee::Durable,
            Guarantee::Convergent,
            Guarantee::NoUnexpectedExit,
        ];
        if !self.config.sloppy_quorum && r + w > n {
            claims.extend([Guarantee::NoStaleRead, Guarantee::ReadYourWrites]);
        }
        Declaration {
            replicas: n..=(n + 2).min(64),
            claims,
            events: EVENTS
                .iter()
                .map(|message| Moment::new("replisim::dynamo", message))
                .collect(),
            ..Declaration::default()
        }
    }

    fn workload(&self) -> Rc<dyn Workload> {
        Rc::new(MultiValue)
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(replica::run(node, self.quorums, self.config))
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(client::Client::new(ctx, self.config))
    }
}

/// Registers `dynamo:N/R/W`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "dynamo",
        "dynamo:N/R/W (leaderless quorums: N copies, R answers, W acknowledgements)",
        build,
    );
}

fn build(spec: &SystemSpec) -> Result<Rc<dyn System>, SystemError> {
    let params = spec
        .params
        .ok_or_else(|| spec.bad_params("expected dynamo:N/R/W, as dynamo:3/2/2"))?;
    let quorums = params.parse::<Quorums>().map_err(|e| spec.bad_params(e))?;
    let mut config: DynamoConfig = spec.config()?;
    config.bug = spec.bug()?;
    Ok(Rc::new(Dynamo { quorums, config }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_named_in_errors() {
        let registry = crate::replication::registry();
        let null = serde_json::Value::Null;
        let system = registry.build("dynamo:3/2/2", &null, None).unwrap();
        assert_eq!(system.declaration().replicas, 3..=5);
        for (name, problem) in [
            ("dynamo", "expected dynamo:N/R/W"),
            ("dynamo:3/2", "not N/R/W"),
            ("dynamo:3/x/2", "R = \"x\" is not a number"),
            ("dynamo:3/4/2", "R = 4 must be between 1 and N = 3"),
            ("dynamo:3/2/0", "W = 0 must be between 1 and N = 3"),
            ("dynamo:0/1/1", "N must be at least 1"),
        ] {
            let error = registry.build(name, &null, None).err().unwrap();
            assert!(error.to_string().contains(problem), "{name}: {error}");
        }
        let error = registry
            .build("dynamo:3/2/2", &null, Some("merge-not-commutative"))
            .err()
            .unwrap();
        assert!(error.to_string().starts_with("bug:"), "{error}");
    }

    #[test]
    fn only_a_strict_overlapping_quorum_claims_fresh_reads() {
        let registry = crate::replication::registry();
        let strict = serde_json::json!({"sloppy_quorum": false});
        let claims = |name: &str, config: &serde_json::Value| {
            registry
                .build(name, config, None)
                .unwrap()
                .declaration()
                .claims
        };
        let null = serde_json::Value::Null;
        assert!(!claims("dynamo:3/2/2", &null).contains(&Guarantee::ReadYourWrites));
        assert!(claims("dynamo:3/2/2", &strict).contains(&Guarantee::ReadYourWrites));
        assert!(!claims("dynamo:3/1/1", &strict).contains(&Guarantee::NoStaleRead));
        assert!(!claims("dynamo:3/2/2", &null).contains(&Guarantee::Linearizable));
    }
}
