//! The replica software shared by every CRDT: the durable state file, the
//! request handler and the gossip loop.
//!
//! - Durable state: the whole [`Durable`] value (the store, the actor's
//!   incarnation and update count, each client's last applied request) in
//!   one [`DurableValue`] (a file replaced atomically and fsync'd). Every
//!   change, a client's update or a join of gossip, goes through
//!   [`DurableValue::change`]: it applies the change to a copy, stores the
//!   copy, and only then makes it the replica's state, one change at a time. A client is answered
//!   after its update is durable; a write the disk refused never happened.
//!   A replica that starts on an empty disk is a new incarnation (its
//!   clock's reading): its counters and tags never collide with those its
//!   lost former self gossiped.
//! - Requests: updates and reads from clients, and gossip from peers. A
//!   client's request carries its process number and sequence number; a
//!   replica remembers each process's last applied update, and answers a
//!   request equal to it (the duplication fault re-sends the previous
//!   request on a new connection) without applying it twice. Only an equal
//!   request is a duplicate: one-shot real clients (`replisim kv`) all
//!   start at sequence 1, so a lower or repeated number with another
//!   operation is a new update. Reads are local and change nothing.
//! - Gossip: every `gossip_interval` the replica sends its whole state to
//!   one peer, which joins it and answers with its own joined state, which
//!   the sender joins in turn (push-pull). Peers are taken in rounds, each
//!   round a fresh random permutation of the other replicas (from
//!   [`NodeContext::rng`], seeded by the harness, so runs repeat): the
//!   order is random, yet every peer is reached once per round, so after a
//!   heal every pair of replicas exchanges state within two rounds of the
//!   slowest gossip.
//! - A failed store is a fail-stop: the replica's software returns the
//!   disk's error and the harness restarts it, which recovers from the file.

use std::{cell::RefCell, collections::BTreeMap, rc::Rc};

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{
    CrdtConfig,
    lattice::{Crdt, Origin, Store},
};
use crate::{
    history::{Completion, Op},
    net::{Handler, RpcClient, serve},
    node::{Clock, NodeContext, NodeResult},
    storage::{DurableValue, StorageError},
};

/// What a replica is asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "C: Crdt")]
pub(super) enum Request<C: Crdt> {
    /// A client's operation, its `seq`-th.
    Client { process: u64, seq: u64, op: Op },
    /// A peer's whole state, to join; answered with the joined state.
    Gossip(Store<C>),
}

/// What a replica answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "C: Crdt")]
pub(super) enum Response<C: Crdt> {
    /// How the client's operation ended.
    Done(Completion),
    /// The replica's state after joining the gossip.
    State(Store<C>),
}

/// Everything a replica keeps on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: Crdt")]
struct Durable<C: Crdt> {
    store: Store<C>,
    /// When this disk's incarnation started (the clock, ns).
    incarnation: u64,
    /// Client updates applied by this incarnation.
    updates: u64,
    /// Each client's last applied update, with its sequence number.
    applied: BTreeMap<u64, (u64, Op)>,
}

const STATE_FILE: &str = "crdt-state";

pub(super) struct Replica<C: Crdt> {
    id: usize,
    config: CrdtConfig,
    clock: Clock,
    state: DurableValue<Durable<C>>,
    failure: RefCell<Option<StorageError>>,
    failed: Notify,
}

/// Runs one replica until its host crashes or its disk fails.
pub(super) async fn run<C: Crdt>(node: NodeContext, config: CrdtConfig) -> NodeResult {
    let state = DurableValue::open(node.disk.clone(), STATE_FILE, || Durable {
        store: Store::default(),
        incarnation: node.clock.now().as_nanos() as u64,
        updates: 0,
        applied: BTreeMap::new(),
    })
    .await?;
    let (incarnation, updates) = (state.get().incarnation, state.get().updates);
    tracing::info!(target: "replisim::crdt", incarnation, updates, "recovered");
    let replica = Rc::new(Replica {
        id: node.id,
        config,
        clock: node.clock.clone(),
        state,
        failure: RefCell::new(None),
        failed: Notify::new(),
    });
    node.state.publish_weak_versioned(
        &replica,
        |r| r.state.get().store.snapshot(),
        |r| r.state.changes(),
    );
    let listener = node.net.bind(node.port()).await?;
    let handling = replica.clone();
    let handler: Handler<Request<C>, Response<C>> = Rc::new(move |request| {
        let replica = handling.clone();
        Box::pin(async move { Some(replica.handle(request).await) })
    });
    tokio::select! {
        served = serve(listener, handler) => served?,
        () = replica.gossip(&node) => {}
        () = replica.failed.notified() => {
            tracing::warn!(target: "replisim::crdt", "stopping after a disk failure");
        }
    }
    // The disk's error, kept whole: the harness tells a fail-stop on an
    // injected I/O error from its chain.
    match replica.failure.take() {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

impl<C: Crdt> Replica<C> {
    async fn handle(&self, request: Request<C>) -> Response<C> {
        match request {
            Request::Client { process, seq, op } => {
                Response::Done(self.client_op(process, seq, op).await)
            }
            Request::Gossip(theirs) => {
                match self
                    .state
                    .change(|state| state.store.merge(&theirs, self.config.keep_mine))
                    .await
                {
                    Ok(()) => {}
                    Err(error) => self.disk_failed(error),
                }
                Response::State(self.state.get().store.clone())
            }
        }
    }

    async fn client_op(&self, process: u64, seq: u64, op: Op) -> Completion {
        if let Op::Read { key, .. } = &op {
            return Completion::Ok(self.state.get().store.read(key));
        }
        let now = self.clock.now().as_nanos() as u64;
        let id = self.id;
        let applied = self
            .state
            .change(|state| {
                if state.applied.get(&process) == Some(&(seq, op.clone())) {
                    return Ok(());
                }
                state.updates += 1;
                let actor = format!("r{id}.{}", state.incarnation);
                let origin = Origin {
                    tag: format!("{actor}:{}", state.updates),
                    actor,
                    time: now,
                };
                state.store.update(&op, &origin)?;
                state.applied.insert(process, (seq, op.clone()));
                Ok(())
            })
            .await;
        match applied {
            Ok(Ok(())) => Completion::Ok(None),
            Ok(Err(refused)) => Completion::Fail(refused),
            Err(error) => {
                let text = format!("disk failure: {error}");
                self.disk_failed(error);
                Completion::Fail(text)
            }
        }
    }

    fn disk_failed(&self, error: StorageError) {
        tracing::warn!(target: "replisim::crdt", %error, "disk failure");
        self.failure.borrow_mut().get_or_insert(error);
        self.failed.notify_one();
    }

    /// Gossips forever (see the module's doc).
    async fn gossip(&self, node: &NodeContext) {
        let mut peers: Vec<usize> = (0..node.replicas.len()).filter(|&p| p != self.id).collect();
        let mut clients: BTreeMap<usize, RpcClient<Request<C>, Response<C>>> = peers
            .iter()
            .map(|&p| {
                let client =
                    RpcClient::new(node.net.clone(), node.replicas[p].clone(), self.config.rpc);
                (p, client)
            })
            .collect();
        if peers.is_empty() {
            return std::future::pending().await;
        }
        let mut rng = node.rng();
        loop {
            peers.shuffle(&mut rng);
            for peer in &peers {
                tokio::time::sleep(self.config.gossip_interval).await;
                let client = clients.get_mut(peer).expect("a client per peer");
                let request = Request::Gossip(self.state.get().store.clone());
                let exchange = client.call_within(&request, self.config.gossip_timeout);
                match exchange.await {
                    Ok(Response::State(theirs)) => {
                        let joined = self
                            .state
                            .change(|state| state.store.merge(&theirs, self.config.keep_mine));
                        if let Err(error) = joined.await {
                            self.disk_failed(error);
                        }
                    }
                    Ok(Response::Done(_)) => {
                        tracing::warn!(target: "replisim::crdt", peer, "gossip answered as a client request");
                    }
                    Err(error) => {
                        tracing::debug!(target: "replisim::crdt", peer, %error, "gossip failed");
                    }
                }
            }
        }
    }
}
