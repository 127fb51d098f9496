//! The Async stage (and the transport of the Sync stage): one task per
//! backup that pushes the primary's log to it, Raft-style. It starts
//! optimistic (assuming the backup is up to date), steps back when the
//! backup reports a gap or a disagreeing entry, heartbeats the commit point
//! when there is nothing new, and retries across broken connections until
//! the replica stops being primary of the epoch it was started for. In the
//! asynchronous mode it ships lazily, once per `async_ship_interval`.
//!
//! With automatic failover it also reports each backup's answers: a fenced
//! primary's read lease counts the acknowledgements (stamped with when it
//! sent the message, by its clock), a naive primary drops a backup that
//! stops answering from its Sync stage, and a fenced primary told of a
//! newer epoch steps down.

use std::rc::Rc;

use tokio::time::{sleep, timeout};

use super::{
    messages::{Replicate, Request, Response},
    replica::Replica,
};
use crate::net::RpcClient;

pub(super) async fn ship(replica: Rc<Replica>, backup: usize, epoch: u64) {
    let mut client: RpcClient<Request, Response> = RpcClient::new(
        replica.net.clone(),
        replica.peers[backup].clone(),
        replica.config.rpc,
    );
    let mut new_entries = replica.last_tx.subscribe();
    let mut next = replica.state.borrow().last_index() + 1;
    loop {
        let (request, last) = {
            let state = replica.state.borrow();
            if state.meta.epoch != epoch || state.meta.primary != replica.id {
                return;
            }
            let last = state.last_index();
            let from = next.clamp(1, last + 1);
            let until = last.min(from - 1 + replica.config.batch as u64);
            let request = Request::Replicate(Replicate {
                from: replica.id,
                epoch,
                prev_index: from - 1,
                prev_epoch: state.epoch_at(from - 1),
                entries: state.log[(from - 1) as usize..until as usize].to_vec(),
                commit: state.commit,
            });
            (request, last)
        };
        new_entries.mark_unchanged();
        let sent = replica.lease_stamp();
        let answer = client.call(&request).await;
        replica.mark_responsive(backup, matches!(answer, Ok(Response::Replicated { .. })));
        match answer {
            Ok(Response::Replicated {
                ok: true,
                last_index,
                ..
            }) => {
                next = last_index + 1;
                replica.record_lease(backup, sent);
                replica.record_match(backup, last_index);
            }
            Ok(Response::Replicated {
                ok: false,
                epoch: theirs,
                last_index,
            }) => {
                if theirs > epoch {
                    tracing::warn!(target: "replisim::engine", backup, theirs, "a newer epoch exists; this primary is stale");
                    replica.step_down(theirs, backup).await;
                    return;
                }
                next = last_index + 1;
                continue;
            }
            Ok(other) => {
                tracing::debug!(target: "replisim::engine", backup, ?other, "unexpected answer to replicate");
                sleep(replica.config.heartbeat).await;
                continue;
            }
            Err(error) => {
                tracing::debug!(target: "replisim::engine", backup, %error, "replicate failed");
                sleep(replica.config.rpc.min_backoff).await;
                continue;
            }
        }
        if replica.mode.required_acks(1) == 0 {
            sleep(replica.config.async_ship_interval).await;
        } else if next > last {
            let _ = timeout(replica.config.heartbeat, new_entries.changed()).await;
        }
    }
}
