//! Clients of the engine, and the operator that performs manual failover.

use std::{collections::BTreeMap, rc::Rc};

use super::{
    EngineConfig,
    messages::{Request, RequestId, Response},
};
use crate::{
    history::{Completion, Op},
    net::{RpcClient, RpcConfig},
    node::{ClientContext, KvClient, completion_of_error},
};

/// A client: mutations (and reads, unless configured otherwise) go to the
/// replica the [`crate::node::Directory`] names as primary.
pub(super) struct Client {
    ctx: ClientContext,
    config: EngineConfig,
    connections: BTreeMap<usize, RpcClient<Request, Response>>,
    /// Sequence number of the last request.
    seq: u64,
}

impl Client {
    pub fn new(ctx: ClientContext, config: EngineConfig) -> Self {
        Client {
            ctx,
            config,
            connections: BTreeMap::new(),
            seq: 0,
        }
    }

    fn target(&self, op: &Op) -> (usize, bool) {
        let primary = self.ctx.directory.primary();
        let replicas = self.ctx.replicas.len();
        if self.config.read_from_backup && !op.is_mutation() && replicas > 1 {
            let offset = 1 + (self.ctx.process as usize % (replicas - 1));
            return ((primary + offset) % replicas, true);
        }
        (primary, false)
    }
}

#[async_trait::async_trait(?Send)]
impl KvClient for Client {
    async fn call(&mut self, op: &Op) -> Completion {
        let (target, at_backup) = self.target(op);
        let rpc = RpcConfig {
            request_timeout: self.config.client_timeout,
            ..self.config.rpc
        };
        let connection = self.connections.entry(target).or_insert_with(|| {
            RpcClient::new(self.ctx.net.clone(), self.ctx.replicas[target].clone(), rpc)
        });
        self.seq += 1;
        let request = Request::Client {
            op: op.clone(),
            at_backup,
            id: RequestId {
                client: self.ctx.process,
                seq: self.seq,
            },
        };
        match connection.call(&request).await {
            Ok(Response::Client(completion)) => completion,
            Ok(Response::Refused(reason)) => Completion::Fail(reason),
            Ok(other) => Completion::Info(format!("unexpected answer {other:?}")),
            Err(error) => completion_of_error(error),
        }
    }
}

/// How many rounds the operator waits for every survivor to report its
/// position before promoting the best of those that answered, and how many
/// it keeps trying while none has answered.
const STATUS_ROUNDS: usize = 5;
const MAX_ROUNDS: usize = 50;

/// Manual failover (and reconfiguration after a backup is lost): find the
/// most up-to-date survivor, promote it under a new epoch with the
/// survivors as members, and return it.
pub(super) async fn fail_over(
    ctx: ClientContext,
    lost: Rc<[usize]>,
    config: EngineConfig,
) -> Option<usize> {
    let survivors: Vec<usize> = (0..ctx.replicas.len())
        .filter(|id| !lost.contains(id))
        .collect();
    // With the primary alive, only the membership changes: the primary
    // stays (a backup's position, asked at another moment than the
    // primary's, could look newer and would take acknowledged writes
    // back). With it lost, any survivor may take over.
    let current = ctx.directory.primary();
    let candidates = if lost.contains(&current) {
        survivors.clone()
    } else {
        vec![current]
    };
    let mut connections: BTreeMap<usize, RpcClient<Request, Response>> = candidates
        .iter()
        .map(|&id| {
            (
                id,
                RpcClient::new(ctx.net.clone(), ctx.replicas[id].clone(), config.rpc),
            )
        })
        .collect();
    let mut positions = BTreeMap::new();
    for round in 0..MAX_ROUNDS {
        // Ask every candidate that has not answered yet, all at once.
        let asks = connections
            .iter_mut()
            .filter(|(id, _)| !positions.contains_key(*id))
            .map(|(&id, connection)| async move { (id, connection.call(&Request::Status).await) });
        for (id, answer) in futures_util::future::join_all(asks).await {
            if let Ok(Response::Status {
                epoch,
                last_index,
                last_epoch,
                ..
            }) = answer
            {
                positions.insert(id, (epoch, last_epoch, last_index));
            }
        }
        if positions.len() == candidates.len() || (round >= STATUS_ROUNDS && !positions.is_empty())
        {
            break;
        }
    }
    // The most up-to-date candidate; on a tie the lowest id.
    let (&best, _) = positions
        .iter()
        .max_by_key(|(id, (_, last_epoch, last_index))| {
            (*last_epoch, *last_index, std::cmp::Reverse(**id))
        })?;
    let epoch = positions.values().map(|(epoch, ..)| epoch).max()? + 1;
    tracing::info!(target: "replisim::engine", best, epoch, ?positions, "failing over");
    let promote = Request::Promote {
        epoch,
        members: survivors,
    };
    let connection = connections.get_mut(&best)?;
    for _ in 0..STATUS_ROUNDS {
        if let Ok(Response::Done) = connection.call(&promote).await {
            return Some(best);
        }
    }
    None
}
