//! Raft's clients: they find the leader themselves (a follower's redirect,
//! or the next replica in turn) and retry the same request, under the same
//! id, until their deadline. A redirect to a replica that already failed
//! this request is stale advice (a follower on the minority side of a cut
//! still names its old leader): the client tries the next replica that has
//! not failed instead, rather than bouncing between the two until the cut
//! heals; once every replica failed, all get another chance.

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::{Instant, sleep};

use super::{
    RaftConfig,
    messages::{Request, Response},
};
use crate::{
    history::{Completion, Op},
    net::RpcClient,
    node::{ClientContext, KvClient},
    replication::kv::RequestId,
};

pub(super) struct Client {
    ctx: ClientContext,
    config: RaftConfig,
    connections: BTreeMap<usize, RpcClient<Request, Response>>,
    /// The replica believed to lead.
    leader: usize,
    /// Sequence number of the last request.
    seq: u64,
}

impl Client {
    pub fn new(ctx: ClientContext, config: RaftConfig) -> Self {
        // Clients start at different replicas, so a lost guess costs one hop.
        let leader = ctx.process as usize % ctx.replicas.len();
        Client {
            ctx,
            config,
            connections: BTreeMap::new(),
            leader,
            seq: 0,
        }
    }

    /// The next replica in turn that has not failed this request (any,
    /// once every one has: then they are all given another chance).
    fn next_guess(&mut self, failed: &mut BTreeSet<usize>) {
        let n = self.ctx.replicas.len();
        if failed.len() >= n {
            failed.clear();
        }
        self.leader = (1..=n)
            .map(|step| (self.leader + step) % n)
            .find(|r| !failed.contains(r))
            .unwrap_or((self.leader + 1) % n);
    }
}

#[async_trait::async_trait(?Send)]
impl KvClient for Client {
    async fn call(&mut self, op: &Op) -> Completion {
        self.seq += 1;
        let request = Request::Client {
            op: op.clone(),
            id: RequestId {
                client: self.ctx.process,
                seq: self.seq,
            },
        };
        let deadline = Instant::now() + self.config.client_timeout; // determinism-ok: simulated time
        // Whether some attempt may have reached a leader (then the
        // operation may take effect: `info`, not `fail`).
        let mut maybe_applied = false;
        let mut last_error = String::from("no replica answered");
        // Replicas that timed out, refused or could not commit this request.
        let mut failed = BTreeSet::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now()); // determinism-ok: simulated time
            if left.is_zero() {
                break;
            }
            let target = self.leader;
            let connection = self.connections.entry(target).or_insert_with(|| {
                RpcClient::new(
                    self.ctx.net.clone(),
                    self.ctx.replicas[target].clone(),
                    self.config.rpc,
                )
            });
            // One attempt at a time, so a dead replica costs one timeout.
            let attempt = left.min(self.config.rpc.request_timeout);
            match connection.call_within(&request, attempt).await {
                Ok(Response::Client(Completion::Info(reason))) => {
                    maybe_applied = true;
                    last_error = reason;
                    failed.insert(target);
                    self.next_guess(&mut failed);
                }
                Ok(Response::Client(completion)) => return completion,
                Ok(Response::Redirect {
                    leader: Some(leader),
                }) if leader != target && !failed.contains(&leader) => self.leader = leader,
                Ok(Response::Redirect {
                    leader: Some(leader),
                }) if leader != target => {
                    // Stale advice: this replica is no help either for now.
                    last_error = format!("replica {target} names replica {leader}, which failed");
                    failed.insert(target);
                    self.next_guess(&mut failed);
                    sleep(self.config.heartbeat).await;
                }
                Ok(Response::Redirect { .. }) => {
                    last_error = format!("replica {target} knows no leader");
                    self.next_guess(&mut failed);
                    sleep(self.config.heartbeat).await;
                }
                Ok(Response::Refused(reason)) => {
                    last_error = reason;
                    failed.insert(target);
                    self.next_guess(&mut failed);
                }
                Ok(other) => {
                    maybe_applied = true;
                    last_error = format!("unexpected answer {other:?}");
                }
                Err(error) => {
                    maybe_applied |= !error.never_sent();
                    last_error = error.to_string();
                    failed.insert(target);
                    self.next_guess(&mut failed);
                }
            }
        }
        match maybe_applied {
            true => Completion::Info(last_error),
            false => Completion::Fail(last_error),
        }
    }
}
