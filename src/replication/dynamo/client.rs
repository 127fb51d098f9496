//! The client: each operation goes to a node chosen as a load balancer in
//! front of the cluster would (the client's number plus its operation
//! count, modulo the cluster size), and to the next node when that one
//! cannot be reached at all; one that may have reached its node is never
//! re-sent elsewhere. The client keeps, per key, the context of everything
//! it has seen (its acknowledged writes' and its reads'), and sends it with
//! each write, which supersedes exactly that.

use std::collections::BTreeMap;

use super::{
    DynamoConfig,
    replica::{Request, Response},
    version::Context,
};
use crate::{
    history::{Completion, Op},
    net::RpcClient,
    node::{ClientContext, KvClient, completion_of_error},
};

pub(super) struct Client {
    ctx: ClientContext,
    config: DynamoConfig,
    connections: BTreeMap<usize, RpcClient<Request, Response>>,
    /// What this client has seen of each key.
    contexts: BTreeMap<String, Context>,
    /// Operations performed, to rotate over the nodes.
    calls: usize,
}

impl Client {
    pub fn new(ctx: ClientContext, config: DynamoConfig) -> Self {
        Client {
            ctx,
            config,
            connections: BTreeMap::new(),
            contexts: BTreeMap::new(),
            calls: 0,
        }
    }

    /// Sends `request` to the chosen node, or the next that can be reached.
    async fn call(&mut self, request: &Request) -> Result<Response, Completion> {
        let nodes = self.ctx.replicas.len();
        let first = (self.ctx.process as usize + self.calls) % nodes;
        self.calls += 1;
        let mut outcome = Completion::Fail("no nodes".into());
        for node in (0..nodes).map(|i| (first + i) % nodes) {
            let (net, addr, rpc) = (
                &self.ctx.net,
                &self.ctx.replicas[node],
                self.config.client_rpc,
            );
            let connection = self
                .connections
                .entry(node)
                .or_insert_with(|| RpcClient::new(net.clone(), addr.clone(), rpc));
            match connection.call(request).await {
                Ok(response) => return Ok(response),
                Err(error) if error.never_sent() => outcome = completion_of_error(error),
                Err(error) => return Err(completion_of_error(error)),
            }
        }
        Err(outcome)
    }
}

#[async_trait::async_trait(?Send)]
impl KvClient for Client {
    async fn call(&mut self, op: &Op) -> Completion {
        let request = match op {
            Op::Read { key, .. } => Request::Get { key: key.clone() },
            Op::Write { key, value } => Request::Put {
                key: key.clone(),
                value: value.clone(),
                context: self.contexts.get(key).cloned().unwrap_or_default(),
            },
            other => {
                return Completion::Fail(format!(
                    "dynamo stores registers: it has no {}",
                    other.name()
                ));
            }
        };
        let response = match self.call(&request).await {
            Ok(response) => response,
            Err(completion) => return completion,
        };
        let key = op.key().to_string();
        match response {
            Response::Written { context } => {
                self.contexts.entry(key).or_default().join(&context);
                Completion::Ok(None)
            }
            Response::Read {
                mut values,
                context,
            } => {
                self.contexts.entry(key).or_default().join(&context);
                match values.len() {
                    0 | 1 => Completion::Ok(values.pop()),
                    _ => Completion::Siblings(values),
                }
            }
            Response::Unavailable {
                reason,
                maybe_stored: true,
            } => Completion::Info(reason),
            Response::Unavailable { reason, .. } => Completion::Fail(reason),
            other => Completion::Info(format!("unexpected answer {other:?}")),
        }
    }
}
