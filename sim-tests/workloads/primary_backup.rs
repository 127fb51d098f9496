//! A primary with backups, written once and generic over the state machine
//! it replicates ([`StateMachine`]), the way a user would write one against
//! replisim's public API only.
//!
//! This file owns the whole replication machinery: the messages, the
//! replica's [`Store`] (a write-ahead log of mutations and the machine they
//! build), the primary and backup roles, the client, the [`System`]
//! declaration, and the planted [`Bug`]s.
//!
//! - Replica 0 is the primary, holding role `primary` in epoch 1. Clients
//!   talk to it only. A mutation is appended to its WAL and fsync'd before
//!   it is applied and answered; reads are answered from the state.
//! - Every applied mutation is forwarded, fire-and-forget, to each backup,
//!   which logs and applies it. A backup that is down or unreachable misses
//!   the entry for good, so backups may diverge: the system claims
//!   linearizable and durable, not convergent.
//! - Every replica recovers its state from its own WAL on restart.

use std::{cell::RefCell, marker::PhantomData, rc::Rc};

use futures_util::future::LocalBoxFuture;
use replisim::{
    check::{Guarantee, convergence::ReplicaState},
    history::{Completion, Op},
    net::{Handler, Network, RpcClient, RpcConfig, serve},
    node::{
        ClientContext, Declaration, KvClient, NodeContext, NodeResult, System, completion_of_error,
    },
    storage::{StorageError, Wal},
    workload::Workload,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};

/// What the generic machinery replicates: a deterministic state machine
/// over one workload's operations.
pub trait StateMachine: Clone + Default + 'static {
    /// The workload whose operations the machine serves.
    fn workload() -> Rc<dyn Workload>;

    /// Applies `op`: a mutation changes the state, a read answers with the
    /// key's text (`None` when unset). An operation of another workload
    /// fails, changing nothing.
    fn apply(&mut self, op: &Op) -> Completion;

    /// Every set key's text, exactly as a read of it answers, for the
    /// convergence check.
    fn render(&self) -> ReplicaState;
}

/// A planted bug of the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The primary applies and answers a mutation before its WAL record is
    /// synced; the sync is deferred to the next mutation, so a crash of
    /// the primary loses the acknowledged mutations since the last one.
    AckBeforePersist,
    /// The primary answers reads from a copy of its state refreshed only
    /// every [`STALE_READS_REFRESH`] mutations.
    StaleReads,
}

impl Bug {
    /// The name a scenario records it under.
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforePersist => "ack-before-persist",
            Bug::StaleReads => "stale-reads",
        }
    }
}

/// With [`Bug::StaleReads`], the primary refreshes the copy reads see
/// after this many mutations.
const STALE_READS_REFRESH: usize = 4;

/// The replica clients talk to.
const PRIMARY: usize = 0;
/// The role the primary publishes, and the only epoch there is.
const PRIMARY_ROLE: &str = "primary";
const EPOCH: u64 = 1;
/// Where each replica keeps its write-ahead log.
const WAL_PATH: &str = "wal";

/// The primary/backup system replicating machine `M`, correct or with a
/// planted [`Bug`].
pub struct PrimaryBackup<M> {
    bug: Option<Bug>,
    machine: PhantomData<fn() -> M>,
}

impl<M> PrimaryBackup<M> {
    /// The correct system.
    pub fn new() -> Self {
        PrimaryBackup {
            bug: None,
            machine: PhantomData,
        }
    }

    /// The system with `bug` planted.
    pub fn with_bug(bug: Bug) -> Self {
        PrimaryBackup {
            bug: Some(bug),
            machine: PhantomData,
        }
    }
}

impl<M: StateMachine> System for PrimaryBackup<M> {
    fn declaration(&self) -> Declaration {
        Declaration {
            replicas: 1..=5,
            roles: vec![PRIMARY_ROLE.to_string()],
            needs_quorum: false,
            claims: vec![Guarantee::Linearizable, Guarantee::Durable],
            ..Declaration::default()
        }
    }

    fn workload(&self) -> Rc<dyn Workload> {
        M::workload()
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        let bug = self.bug;
        Box::pin(async move {
            let store = Store::<M>::recover(&node).await?;
            let replica = Rc::new(if node.id == PRIMARY {
                node.roles.hold(PRIMARY_ROLE, EPOCH);
                Replica::Primary(Primary::new(store, &node, bug))
            } else {
                Replica::Backup(store)
            });
            let handler: Handler<Request, Completion> =
                Rc::new(move |request| Box::pin(replica.clone().handle(request)));
            serve(node.net.bind(node.port()).await?, handler).await?;
            Ok(())
        })
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(PrimaryClient(RpcClient::new(
            ctx.net,
            ctx.replicas[PRIMARY].clone(),
            RpcConfig::default(),
        )))
    }
}

/// What replicas receive.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Request {
    /// A client's operation (answered).
    Client(Op),
    /// A mutation the primary applied, for a backup (not answered).
    Replicate(Op),
}

/// How a mutation's log record is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    /// Synced before the mutation is applied.
    Synced,
    /// Left unsynced until the next mutation ([`Bug::AckBeforePersist`]).
    Deferred,
}

/// A replica's state machine and the write-ahead log of the mutations
/// that built it. The log's lock orders mutations; the state is never
/// borrowed across an `.await`.
struct Store<M> {
    log: Mutex<Wal<Op>>,
    state: Rc<RefCell<M>>,
}

impl<M: StateMachine> Store<M> {
    /// Replays `node`'s log and publishes the resulting state for the
    /// convergence check.
    async fn recover(node: &NodeContext) -> Result<Self, StorageError> {
        let (log, mutations) = Wal::open(node.disk.clone(), WAL_PATH).await?;
        let mut machine = M::default();
        for op in &mutations {
            machine.apply(op);
        }
        let state = Rc::new(RefCell::new(machine));
        let probe = state.clone();
        node.state.publish(move || probe.borrow().render());
        Ok(Store {
            log: Mutex::new(log),
            state,
        })
    }

    /// Logs `op` as `persist` says, applies it, and hands it to `then`
    /// before the next mutation can start (so `then` sees log order).
    async fn mutate(
        &self,
        op: Op,
        persist: Persist,
        then: impl FnOnce(Op),
    ) -> Result<Completion, StorageError> {
        let mut log = self.log.lock().await;
        match persist {
            Persist::Synced => log.append_sync(&op).await?,
            // The previous mutation's sync, deferred to now; this one's
            // waits for the next mutation.
            Persist::Deferred => {
                log.sync().await?;
                log.append(&op).await?;
            }
        }
        let result = self.state.borrow_mut().apply(&op);
        then(op);
        Ok(result)
    }

    fn read(&self, op: &Op) -> Completion {
        self.state.borrow_mut().apply(op)
    }
}

/// One replica's role.
enum Replica<M> {
    Primary(Primary<M>),
    /// A backup only logs and applies what the primary forwards.
    Backup(Store<M>),
}

impl<M: StateMachine> Replica<M> {
    async fn handle(self: Rc<Self>, request: Request) -> Option<Completion> {
        match (&*self, request) {
            (Replica::Primary(primary), Request::Client(op)) => Some(primary.execute(op).await),
            (Replica::Backup(store), Request::Replicate(op)) => {
                if let Err(error) = store.mutate(op, Persist::Synced, drop).await {
                    tracing::warn!(%error, "backup could not log a forwarded mutation");
                }
                None
            }
            (Replica::Backup(_), Request::Client(_)) => {
                Some(Completion::Fail("not the primary".into()))
            }
            (Replica::Primary(_), Request::Replicate(_)) => None,
        }
    }
}

/// The primary: serves clients and feeds the backups.
struct Primary<M> {
    store: Store<M>,
    persist: Persist,
    /// One queue per backup, drained by its forwarder.
    backups: Vec<mpsc::UnboundedSender<Request>>,
    /// With [`Bug::StaleReads`], what reads are answered from.
    stale: Option<RefCell<Stale<M>>>,
}

/// A copy of the state and the mutations it lacks.
struct Stale<M> {
    copy: M,
    behind: usize,
}

impl<M: StateMachine> Primary<M> {
    fn new(store: Store<M>, node: &NodeContext, bug: Option<Bug>) -> Self {
        let backups = (0..node.replicas.len())
            .filter(|&id| id != PRIMARY)
            .map(|id| forwarder(node.net.clone(), node.replicas[id].clone()))
            .collect();
        let stale = (bug == Some(Bug::StaleReads)).then(|| {
            RefCell::new(Stale {
                copy: store.state.borrow().clone(),
                behind: 0,
            })
        });
        let persist = match bug {
            Some(Bug::AckBeforePersist) => Persist::Deferred,
            _ => Persist::Synced,
        };
        Primary {
            store,
            persist,
            backups,
            stale,
        }
    }

    async fn execute(&self, op: Op) -> Completion {
        if !op.is_mutation() {
            return match &self.stale {
                Some(stale) => stale.borrow_mut().copy.apply(&op),
                None => self.store.read(&op),
            };
        }
        let forward = |op: Op| {
            for backup in &self.backups {
                // A closed queue means the host is going down.
                let _ = backup.send(Request::Replicate(op.clone()));
            }
        };
        match self.store.mutate(op, self.persist, forward).await {
            Ok(result) => {
                self.refresh_stale_copy();
                result
            }
            // The record may or may not have reached the disk.
            Err(error) => Completion::Info(error.to_string()),
        }
    }

    fn refresh_stale_copy(&self) {
        if let Some(stale) = &self.stale {
            let mut stale = stale.borrow_mut();
            stale.behind += 1;
            if stale.behind == STALE_READS_REFRESH {
                stale.copy = self.store.state.borrow().clone();
                stale.behind = 0;
            }
        }
    }
}

/// A queue whose requests are sent, in order and fire-and-forget, to the
/// backup at `addr`; a request that cannot be sent is dropped.
fn forwarder(net: Rc<dyn Network>, addr: String) -> mpsc::UnboundedSender<Request> {
    let (queue, mut requests) = mpsc::unbounded_channel();
    let mut backup = RpcClient::<Request, Completion>::new(net, addr, RpcConfig::default());
    tokio::task::spawn_local(async move {
        while let Some(request) = requests.recv().await {
            if let Err(error) = backup.notify(&request).await {
                tracing::debug!(%error, "a backup missed a forwarded mutation");
            }
        }
    });
    queue
}

/// A client of the primary.
struct PrimaryClient(RpcClient<Request, Completion>);

#[async_trait::async_trait(?Send)]
impl KvClient for PrimaryClient {
    async fn call(&mut self, op: &Op) -> Completion {
        self.0
            .call(&Request::Client(op.clone()))
            .await
            .unwrap_or_else(completion_of_error)
    }
}
