//! One Dynamo node: its durable state, the requests it serves, and the
//! tasks it runs beside them (hint delivery, anti-entropy).
//!
//! The whole state ([`Durable`]: the store of the keys this node keeps,
//! the hints it holds for others, its actor and the counter of the dots it
//! issued) is one [`DurableValue`]: every change is fsync'd before
//! anything that depends on it is answered. A disk error is a fail-stop:
//! the node's software returns it and the harness restarts it, which
//! recovers from the file.

use std::{cell::RefCell, collections::BTreeMap, rc::Rc};

use serde::{Deserialize, Serialize};

use super::{
    Bug, DynamoConfig, Quorums,
    ring::Ring,
    version::{Context, Dot, Siblings, Version},
};
use crate::{
    net::{Handler, NetError, Network, RpcClient, serve},
    node::{NodeContext, NodeResult},
    storage::{DurableValue, FailStop, StorageError},
};

/// What a node is asked, by clients and by other nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Request {
    /// A client's write, with the context of what it saw of the key.
    Put {
        key: String,
        value: String,
        context: Context,
    },
    /// A client's read.
    Get { key: String },
    /// Keep these versions of `key`: for this node, or (`hint`) for that
    /// unreachable node, to deliver later.
    Store {
        key: String,
        versions: Vec<Version>,
        hint: Option<usize>,
    },
    /// Hints delivered: keep these keys' versions.
    Deliver {
        keys: BTreeMap<String, Vec<Version>>,
    },
    /// What this node has of `key` (stored, or hinted for another).
    Fetch { key: String },
    /// Anti-entropy: the asker's digest of each range both keep; answered
    /// with this node's versions of the ranges whose digests differ.
    Digests { ranges: BTreeMap<usize, u64> },
}

/// What a node answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Response {
    /// A client's write is acknowledged by W nodes; what the client has
    /// now seen of the key.
    Written { context: Context },
    /// A client's read: the siblings' values and their context.
    Read {
        values: Vec<String>,
        context: Context,
    },
    /// Not enough nodes answered; `maybe_stored` when some may have kept
    /// the write.
    Unavailable { reason: String, maybe_stored: bool },
    /// Stored durably.
    Stored,
    /// A node's versions of one key.
    Versions(Vec<Version>),
    /// A node's versions of the keys of the ranges that differ.
    Ranges(BTreeMap<String, Vec<Version>>),
}

/// Everything a node keeps on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Durable {
    /// This disk's actor: `r<id>.<incarnation>`.
    pub actor: String,
    /// The last dot counter issued.
    pub counter: u64,
    /// The keys this node keeps.
    pub store: BTreeMap<String, Siblings>,
    /// Versions held for unreachable nodes, by node, to deliver.
    pub hints: BTreeMap<usize, BTreeMap<String, Siblings>>,
}

const STATE_FILE: &str = "dynamo-state";

pub(super) struct Replica {
    pub id: usize,
    pub quorums: Quorums,
    pub config: DynamoConfig,
    pub ring: Ring,
    pub state: DurableValue<Durable>,
    /// With [`Bug::HintDroppedOnRestart`], the hints, kept here instead.
    volatile_hints: RefCell<BTreeMap<usize, BTreeMap<String, Siblings>>>,
    pub peers: Peers,
    fail_stop: FailStop,
}

/// Runs one node until its host crashes or its disk fails.
pub(super) async fn run(node: NodeContext, quorums: Quorums, config: DynamoConfig) -> NodeResult {
    let state = DurableValue::open(node.disk.clone(), STATE_FILE, || Durable {
        actor: format!("r{}.{}", node.id, node.clock.now().as_nanos()),
        counter: 0,
        store: BTreeMap::new(),
        hints: BTreeMap::new(),
    })
    .await?;
    let (actor, counter) = (state.get().actor.clone(), state.get().counter);
    tracing::info!(target: "replisim::dynamo", actor, counter, "recovered");
    let ring = Ring::new(node.replicas.len(), quorums.n);
    let replica = Rc::new(Replica {
        id: node.id,
        quorums,
        config,
        ring,
        state,
        volatile_hints: RefCell::default(),
        peers: Peers::new(&node, config),
        fail_stop: FailStop::default(),
    });
    node.state.publish_weak_versioned(
        &replica,
        |r| {
            r.state
                .get()
                .store
                .iter()
                .filter(|(_, siblings)| !siblings.is_empty())
                .map(|(key, siblings)| (key.clone(), siblings.to_string()))
                .collect()
        },
        |r| r.state.changes(),
    );
    node.state.publish_placement(move |key| ring.owners(key));
    let listener = node.net.bind(node.port()).await?;
    let handling = replica.clone();
    let handler: Handler<Request, Response> = Rc::new(move |request| {
        let replica = handling.clone();
        Box::pin(async move { Some(replica.handle(request).await) })
    });
    let error = tokio::select! {
        served = serve(listener, handler) => return Ok(served?),
        () = replica.clone().deliver_hints() => return Ok(()),
        () = replica.clone().anti_entropy() => return Ok(()),
        error = replica.fail_stop.stopped() => error,
    };
    tracing::warn!(target: "replisim::dynamo", %error, "stopping after a disk failure");
    Err(error.into())
}

impl Replica {
    /// Serves one request.
    pub async fn handle(self: Rc<Self>, request: Request) -> Response {
        match request {
            Request::Put {
                key,
                value,
                context,
            } => self.put(key, value, context).await,
            Request::Get { key } => self.get(key).await,
            Request::Store {
                key,
                versions,
                hint,
            } => self.store(&key, &versions, hint).await,
            Request::Deliver { keys } => self.keep_all(keys).await,
            Request::Fetch { key } => Response::Versions(self.fetch(&key)),
            Request::Digests { ranges } => Response::Ranges(self.differing(&ranges)),
        }
    }

    /// Keeps `versions` of `key`, for this node or as a hint for another.
    pub async fn store(&self, key: &str, versions: &[Version], hint: Option<usize>) -> Response {
        let hint = hint.filter(|&target| target != self.id);
        if let (Some(target), Some(Bug::HintDroppedOnRestart)) = (hint, self.config.bug) {
            merge_into(&mut self.volatile_hints.borrow_mut(), target, key, versions);
            tracing::debug!(target: "replisim::dynamo", key, target, "stored a hint");
            return Response::Stored;
        }
        let changed = self
            .state
            .change(|state| match hint {
                Some(target) => merge_into(&mut state.hints, target, key, versions),
                None => state
                    .store
                    .entry(key.to_string())
                    .or_default()
                    .merge(versions),
            })
            .await;
        match changed {
            Ok(()) => {
                if let Some(target) = hint {
                    tracing::debug!(target: "replisim::dynamo", key, target, "stored a hint");
                }
                Response::Stored
            }
            Err(error) => self.unavailable(error),
        }
    }

    /// Keeps every key of `keys` (delivered hints, or versions pulled by
    /// anti-entropy).
    pub async fn keep_all(&self, keys: BTreeMap<String, Vec<Version>>) -> Response {
        let changed = self
            .state
            .change(|state| {
                for (key, versions) in &keys {
                    state.store.entry(key.clone()).or_default().merge(versions);
                }
            })
            .await;
        match changed {
            Ok(()) => Response::Stored,
            Err(error) => self.unavailable(error),
        }
    }

    /// What this node has of `key`: its stored versions, and those it
    /// holds as hints for others.
    pub fn fetch(&self, key: &str) -> Vec<Version> {
        let mut found = self.state.get().store.get(key).cloned().unwrap_or_default();
        self.with_hints(|hints| {
            for hinted in hints.values().filter_map(|held| held.get(key)) {
                found.merge(&hinted.0);
            }
        });
        found.0
    }

    /// The next dot of this node's actor, durable before it is used.
    pub async fn next_dot(&self) -> Result<Dot, StorageError> {
        self.state
            .change(|state| {
                state.counter += 1;
                Dot {
                    actor: state.actor.clone(),
                    counter: state.counter,
                }
            })
            .await
    }

    /// Reads the hints, wherever they are kept.
    fn with_hints<R>(
        &self,
        read: impl FnOnce(&BTreeMap<usize, BTreeMap<String, Siblings>>) -> R,
    ) -> R {
        match self.config.bug {
            Some(Bug::HintDroppedOnRestart) => read(&self.volatile_hints.borrow()),
            _ => read(&self.state.get().hints),
        }
    }

    /// The hints held for `target`.
    pub fn hints_for(&self, target: usize) -> BTreeMap<String, Siblings> {
        self.with_hints(|hints| hints.get(&target).cloned().unwrap_or_default())
    }

    /// The nodes hints are held for.
    pub fn hinted_nodes(&self) -> Vec<usize> {
        self.with_hints(|hints| hints.keys().copied().collect())
    }

    /// Forgets the hints for `target` that `delivered` holds (more may
    /// have come meanwhile).
    pub async fn forget_hints(
        &self,
        target: usize,
        delivered: &BTreeMap<String, Siblings>,
    ) -> Result<(), StorageError> {
        let forget = |hints: &mut BTreeMap<usize, BTreeMap<String, Siblings>>| {
            if let Some(held) = hints.get_mut(&target) {
                held.retain(|key, siblings| delivered.get(key) != Some(siblings));
                if held.is_empty() {
                    hints.remove(&target);
                }
            }
        };
        match self.config.bug {
            Some(Bug::HintDroppedOnRestart) => {
                forget(&mut self.volatile_hints.borrow_mut());
                Ok(())
            }
            _ => self.state.change(|state| forget(&mut state.hints)).await,
        }
    }

    /// A disk error: the node stops (see the module's doc).
    pub fn unavailable(&self, error: StorageError) -> Response {
        let reason = format!("disk failure: {error}");
        tracing::warn!(target: "replisim::dynamo", %error, "disk failure");
        self.fail_stop.trip(error);
        Response::Unavailable {
            reason,
            maybe_stored: true,
        }
    }

    /// Trips the fail-stop on a disk error from a background task.
    pub fn disk_failed(&self, error: StorageError) {
        self.unavailable(error);
    }
}

fn merge_into(
    hints: &mut BTreeMap<usize, BTreeMap<String, Siblings>>,
    target: usize,
    key: &str,
    versions: &[Version],
) {
    hints
        .entry(target)
        .or_default()
        .entry(key.to_string())
        .or_default()
        .merge(versions);
}

/// Connections to the other nodes, several per node so that concurrent
/// requests (a coordinator's, hint delivery, anti-entropy) do not queue
/// behind one another.
pub(super) struct Peers {
    net: Rc<dyn Network>,
    addrs: Rc<[String]>,
    config: DynamoConfig,
    idle: RefCell<BTreeMap<usize, Vec<RpcClient<Request, Response>>>>,
}

impl Peers {
    fn new(node: &NodeContext, config: DynamoConfig) -> Self {
        Peers {
            net: node.net.clone(),
            addrs: node.replicas.clone(),
            config,
            idle: RefCell::default(),
        }
    }

    /// Sends `request` to node `peer` and waits for its answer. A
    /// connection found broken (the peer restarted since it was last
    /// used) is reopened once: every request between nodes is idempotent
    /// (merges and reads).
    pub async fn call(&self, peer: usize, request: &Request) -> Result<Response, NetError> {
        let idle = self.idle.borrow_mut().entry(peer).or_default().pop();
        let mut client = idle.unwrap_or_else(|| {
            RpcClient::new(
                self.net.clone(),
                self.addrs[peer].clone(),
                self.config.peer_rpc,
            )
        });
        let answer = match client.call(request).await {
            Err(NetError::Broken { .. }) => client.call(request).await,
            answer => answer,
        };
        self.idle.borrow_mut().entry(peer).or_default().push(client);
        answer
    }

    /// How many nodes there are.
    pub fn count(&self) -> usize {
        self.addrs.len()
    }
}
