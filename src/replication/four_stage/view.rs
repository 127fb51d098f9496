//! Automatic failover: the failure detector every replica runs, and the
//! view change a backup starts when it suspects the primary.
//!
//! **Detector.** A backup notes (in simulated time) when it last heard from
//! its primary: every replicate message or heartbeat, every
//! [`EngineConfig::heartbeat`](super::EngineConfig::heartbeat). After
//! [`FailoverConfig::suspect_after`](super::FailoverConfig::suspect_after)
//! of silence, plus one heartbeat per backup ranked before it (ranks count
//! from the replica after the primary, so backups do not all start at once,
//! deterministically) and a fraction of a heartbeat per id (replicas that
//! believe in different primaries can share a rank: the id breaks the tie),
//! it starts a view change, then waits a whole period before it may start
//! another.
//!
//! **Naive view change** ([`Failover::Naive`]): the backup promotes itself
//! at once under the next epoch. Nothing asks the old primary or the other
//! backups; they follow whoever ships to them.
//!
//! **Fenced view change** ([`Failover::Fenced`]): the candidate asks every
//! other replica to acknowledge the next epoch ([`Replica::grant`]: persist
//! it, refuse older epochs from then on, answer with the log's position;
//! refused by the primary itself and by a replica that acknowledged the
//! primary less than a lease ago). As soon as a majority acknowledged, its
//! own counted last (so a candidate cut off from the others changes
//! nothing), the most up-to-date of them, by (epoch of its last entry, last
//! index), then the lowest id, becomes primary, as the operator's failover
//! chooses. Every replica stays a member, so every later majority
//! intersects this one: a deposed primary can commit nothing, and a
//! committed entry is on the log the next view starts from.

use std::{collections::BTreeMap, rc::Rc};

use futures_util::{StreamExt, stream::FuturesUnordered};
use tokio::time::sleep;

use super::{
    Failover,
    messages::{Request, Response},
    replica::Replica,
};
use crate::net::RpcClient;

/// How often the candidate asks the chosen replica to take over.
const PROMOTE_TRIES: usize = 3;

/// The failure detector: runs as long as the replica.
pub(super) async fn watch(replica: Rc<Replica>) {
    let timing = replica.config.failover;
    let replicas = replica.peers.len();
    // The highest epoch any replica told this one about.
    let mut known = 0;
    loop {
        sleep(replica.config.heartbeat).await;
        let (primary, epoch) = {
            let state = replica.state.borrow();
            (state.meta.primary, state.meta.epoch)
        };
        if primary == replica.id {
            continue;
        }
        let rank = (replica.id + replicas - primary - 1) % replicas;
        let heartbeat = replica.config.heartbeat;
        let patience = timing.suspect_after
            + heartbeat * rank as u32
            + heartbeat / replicas as u32 * replica.id as u32;
        // A detector that suspects too early (a GC pause on the backup, a
        // timer fired late) starts a view change under a live primary.
        if replica.heard.get().elapsed() < patience && !crate::buggify!("primary suspected early") {
            continue;
        }
        tracing::info!(target: "replisim::engine", primary, epoch, "primary suspected");
        replica.restart_detector();
        let next = epoch.max(known) + 1;
        let all = (0..replicas).collect();
        match replica.failover {
            Failover::Naive => {
                replica.promote(next, all).await;
            }
            Failover::Fenced { .. } => known = known.max(elect(&replica, next).await),
            Failover::Operator => return,
        }
    }
}

/// A fenced view change to `epoch` started by `replica`; returns the
/// highest epoch a replica answered with (to start above it next time).
async fn elect(replica: &Rc<Replica>, epoch: u64) -> u64 {
    let replicas = replica.peers.len();
    let mut asks: FuturesUnordered<_> = (0..replicas)
        .filter(|&id| id != replica.id)
        .map(|id| {
            let mut client: RpcClient<Request, Response> = RpcClient::new(
                replica.net.clone(),
                replica.peers[id].clone(),
                replica.config.rpc,
            );
            async move { (id, client.call(&Request::ViewChange { epoch }).await) }
        })
        .collect();
    let mut positions = BTreeMap::new();
    let mut known = epoch;
    while positions.len() < replicas / 2
        && let Some((id, answer)) = asks.next().await
    {
        match answer {
            Ok(Response::Granted {
                last_epoch,
                last_index,
            }) => {
                positions.insert(id, (last_epoch, last_index));
            }
            Ok(Response::Denied { epoch: theirs }) => known = known.max(theirs),
            _ => {}
        }
    }
    drop(asks);
    if positions.len() < replicas / 2 {
        tracing::info!(target: "replisim::engine", epoch, granted = positions.len(), "view change not acknowledged by a majority");
        return known;
    }
    match replica.grant(epoch).await {
        Response::Granted {
            last_epoch,
            last_index,
        } => positions.insert(replica.id, (last_epoch, last_index)),
        _ => return known,
    };
    let Some((&best, _)) = positions
        .iter()
        .max_by_key(|(id, (last_epoch, last_index))| {
            (*last_epoch, *last_index, std::cmp::Reverse(**id))
        })
    else {
        return known;
    };
    tracing::info!(target: "replisim::engine", epoch, best, ?positions, "view change acknowledged by a majority");
    let members: Vec<usize> = (0..replicas).collect();
    if best == replica.id {
        replica.promote(epoch, members).await;
        return known;
    }
    let mut client: RpcClient<Request, Response> = RpcClient::new(
        replica.net.clone(),
        replica.peers[best].clone(),
        replica.config.rpc,
    );
    let promote = Request::Promote { epoch, members };
    for _ in 0..PROMOTE_TRIES {
        if let Ok(Response::Done) = client.call(&promote).await {
            break;
        }
    }
    known
}
