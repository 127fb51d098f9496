//! Clients of the engine, and the operator that performs manual failover.
//!
//! With operator failover a client sends to the primary the
//! [`crate::node::Directory`] names. With automatic failover there is no
//! operator: a client keeps its own guess (the directory's at first),
//! follows the replicas' redirects, and moves to the next replica when its
//! guess does not answer.

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
    /// With automatic failover, the replica this client believes is the
    /// primary; `None`: it follows the directory.
    guess: Option<usize>,
}

impl Client {
    pub fn new(ctx: ClientContext, config: EngineConfig, follow_redirects: bool) -> Self {
        let guess = follow_redirects.then(|| ctx.directory.primary());
        Client {
            ctx,
            config,
            connections: BTreeMap::new(),
            seq: 0,
            guess,
        }
    }

    fn target(&self, op: &Op) -> (usize, bool) {
        let primary = self.guess.unwrap_or_else(|| self.ctx.directory.primary());
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
        self.seq += 1;
        let id = RequestId {
            client: self.ctx.process,
            seq: self.seq,
        };
        if self.guess.is_none() {
            let (target, at_backup) = self.target(op);
            return self.send(target, op, at_backup, id).await;
        }
        // Automatic failover: follow redirects, each replica at most once
        // or twice; the request is re-sent only when it cannot have been
        // applied (redirected, or never sent).
        let replicas = self.ctx.replicas.len();
        let mut outcome = Completion::Fail("no replica accepted the request".into());
        for _ in 0..2 * replicas {
            let (target, at_backup) = self.target(op);
            let next = (target + 1) % replicas;
            let answer = self.exchange(target, op, at_backup, id).await;
            let guess = match answer {
                Ok(Response::Redirect { primary: Some(p) }) if p != target => p,
                Ok(Response::Redirect { .. }) => next,
                Ok(answer) => {
                    return completion_of(answer);
                }
                Err(error) => {
                    self.guess = Some(next);
                    match completion_of_error(error) {
                        Completion::Fail(reason) => {
                            outcome = Completion::Fail(reason);
                            continue;
                        }
                        unknown => return unknown,
                    }
                }
            };
            self.guess = Some(guess);
        }
        outcome
    }
}

impl Client {
    /// Sends one request to `target` and turns the answer into a completion.
    async fn send(&mut self, target: usize, op: &Op, at_backup: bool, id: RequestId) -> Completion {
        match self.exchange(target, op, at_backup, id).await {
            Ok(answer) => completion_of(answer),
            Err(error) => completion_of_error(error),
        }
    }

    async fn exchange(
        &mut self,
        target: usize,
        op: &Op,
        at_backup: bool,
        id: RequestId,
    ) -> Result<Response, crate::net::NetError> {
        let rpc = RpcConfig {
            request_timeout: self.config.client_timeout,
            ..self.config.rpc
        };
        let connection = self.connections.entry(target).or_insert_with(|| {
            RpcClient::new(self.ctx.net.clone(), self.ctx.replicas[target].clone(), rpc)
        });
        let request = Request::Client {
            op: op.clone(),
            at_backup,
            id,
        };
        connection.call(&request).await
    }
}

/// A replica's answer to a client request, as the history records it.
fn completion_of(answer: Response) -> Completion {
    match answer {
        Response::Client(completion) => completion,
        Response::Refused(reason) => Completion::Fail(reason),
        other => Completion::Info(format!("unexpected answer {other:?}")),
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
