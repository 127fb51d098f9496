//! The client of every CRDT system: it sends each operation to its home
//! replica (its process number modulo the cluster size), where it is
//! applied at once. An operation that could not be sent at all (the
//! replica unreachable) moves on to the next replica; one that may have
//! reached its replica is never re-sent elsewhere, and ends `info` when no
//! answer comes.

use std::{collections::BTreeMap, marker::PhantomData};

use super::{
    CrdtConfig,
    lattice::Crdt,
    replica::{Request, Response},
};
use crate::{
    history::{Completion, Op},
    net::RpcClient,
    node::{ClientContext, KvClient, completion_of_error},
};

pub(super) struct Client<C: Crdt> {
    ctx: ClientContext,
    config: CrdtConfig,
    connections: BTreeMap<usize, RpcClient<Request<C>, Response<C>>>,
    /// Sequence number of the last request.
    seq: u64,
    _crdt: PhantomData<C>,
}

impl<C: Crdt> Client<C> {
    pub fn new(ctx: ClientContext, config: CrdtConfig) -> Self {
        Client {
            ctx,
            config,
            connections: BTreeMap::new(),
            seq: 0,
            _crdt: PhantomData,
        }
    }
}

#[async_trait::async_trait(?Send)]
impl<C: Crdt> KvClient for Client<C> {
    async fn call(&mut self, op: &Op) -> Completion {
        self.seq += 1;
        let request = Request::Client {
            process: self.ctx.process,
            seq: self.seq,
            op: op.clone(),
        };
        let replicas = self.ctx.replicas.len();
        let home = self.ctx.process as usize % replicas;
        let mut outcome = Completion::Fail("no replicas".into());
        for replica in (0..replicas).map(|i| (home + i) % replicas) {
            let (net, addr, rpc) = (&self.ctx.net, &self.ctx.replicas[replica], self.config.rpc);
            let connection = self
                .connections
                .entry(replica)
                .or_insert_with(|| RpcClient::new(net.clone(), addr.clone(), rpc));
            outcome = match connection.call(&request).await {
                Ok(Response::Done(completion)) => return completion,
                Ok(Response::State(_)) => {
                    return Completion::Info("answered with a gossip state".into());
                }
                Err(error) if error.never_sent() => completion_of_error(error),
                Err(error) => return completion_of_error(error),
            };
        }
        outcome
    }
}
