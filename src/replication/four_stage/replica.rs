//! One replica of the four-stage engine: recovery from its write-ahead log,
//! its in-memory state, and the handlers for client, peer and operator
//! requests. Disk updates are serialised by one async mutex around the WAL;
//! the in-memory state sits in a `RefCell` that is never held across an
//! `.await`.
//!
//! With automatic failover ([`Failover`]) a replica also answers view
//! changes ([`Replica::grant`]), notes when it last heard from its primary
//! (for the failure detector in `view`) and, fenced, keeps the read lease's
//! acknowledgements; a fenced primary starts its epoch with a barrier entry
//! and commits by counting only entries of its own epoch (Raft's rule), so
//! whatever it inherited commits with its first entry.

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
    time::Duration,
};

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{Mutex, MutexGuard, watch},
    time::{Instant, sleep},
};

use super::{
    Bug, EngineConfig, Failover, Mode, PRIMARY,
    messages::{Entry, Replicate, Request, RequestId, Response},
    shipper, view,
};
use crate::{
    effect,
    history::{Completion, Op},
    net::{Handler, Network, serve},
    node::{Clock, NodeContext, NodeResult, Roles},
    replication::kv::KvMachine,
    storage::{FailStop, MetaFile, StorageError, Wal},
};

const WAL_PATH: &str = "wal";
const META_PATH: &str = "meta";

/// Who leads, persisted before it is acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Meta {
    pub epoch: u64,
    pub primary: usize,
    /// Replicas that take part in replication (the lost ones are dropped at failover).
    pub members: Vec<usize>,
}

/// A replica's volatile state, rebuilt from disk on restart.
pub(super) struct State {
    pub meta: Meta,
    pub log: Vec<Entry>,
    machine: KvMachine,
    applied: u64,
    /// How often `machine` changed: the published state's version.
    changes: u64,
    pub commit: u64,
    /// Per backup, the highest index known to match the primary's log.
    matched: BTreeMap<usize, u64>,
    /// Indexes whose client waits for the result, and the results ready.
    waiting: BTreeSet<u64>,
    results: BTreeMap<u64, Completion>,
    /// A primary serves reads only once its commit point reached this: the
    /// length of its log when it recovered or was promoted.
    serving_from: u64,
    /// Fenced primary: per backup, when (by this replica's clock) it sent
    /// the last heartbeat or replicate message the backup acknowledged.
    lease_acks: BTreeMap<usize, Duration>,
    /// Naive primary: the backups dropped from the Sync stage because they
    /// stopped answering (until they answer again).
    unresponsive: BTreeSet<usize>,
}

impl State {
    /// The state of a replica that recovered `log` from disk: nothing
    /// applied or committed yet.
    fn recovered(meta: Meta, log: Vec<Entry>) -> Self {
        State {
            meta,
            log,
            machine: KvMachine::default(),
            applied: 0,
            changes: 0,
            commit: 0,
            matched: BTreeMap::new(),
            waiting: BTreeSet::new(),
            results: BTreeMap::new(),
            serving_from: 0,
            lease_acks: BTreeMap::new(),
            unresponsive: BTreeSet::new(),
        }
    }

    /// A fenced primary's first entry of `epoch`: a read of no key, which
    /// changes nothing. Committing it commits the log it inherited.
    fn append_barrier(&mut self) -> Entry {
        let entry = Entry {
            index: self.last_index() + 1,
            epoch: self.meta.epoch,
            op: Op::Read {
                key: String::new(),
                value: None,
            },
            request: RequestId {
                client: u64::MAX,
                seq: self.meta.epoch,
            },
        };
        self.log.push(entry.clone());
        entry
    }

    pub fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    pub fn epoch_at(&self, index: u64) -> u64 {
        match index {
            0 => 0,
            i => self.log[i as usize - 1].epoch,
        }
    }

    fn apply_to(&mut self, target: u64) {
        while self.applied < target.min(self.last_index()) {
            let entry = &self.log[self.applied as usize];
            let result = self.machine.apply(entry.request, &entry.op);
            if self.waiting.remove(&entry.index) {
                self.results.insert(entry.index, result);
            }
            self.applied += 1;
            self.changes += 1;
        }
    }

    /// Drops entries after `len`, rebuilding the store if applied ones go.
    fn truncate(&mut self, len: u64) {
        let dropped = self.last_index().saturating_sub(len);
        tracing::info!(target: "replisim::engine", len, dropped, "truncating a log that disagrees with the primary's");
        effect::record("log_entries_truncated", dropped);
        self.log.truncate(len as usize);
        // A client waiting for a dropped entry must not take the result of
        // whatever entry takes its index later: it learns its entry was
        // replaced.
        self.waiting.retain(|&index| index <= len);
        self.commit = self.commit.min(len);
        if self.applied > len {
            self.machine = KvMachine::default();
            self.applied = 0;
            self.changes += 1;
            self.apply_to(self.commit);
        }
    }
}

/// Everything the handlers and shippers of one replica share.
pub(super) struct Replica {
    pub id: usize,
    pub mode: Mode,
    pub config: EngineConfig,
    bug: Option<Bug>,
    pub failover: Failover,
    /// This node's wall clock: read only for the fenced read lease.
    clock: Clock,
    /// When (simulated time) it last heard from its primary, or granted a
    /// view change: the failure detector's input.
    pub heard: Cell<Instant>,
    /// Fenced: when (by its own clock) it last acknowledged a primary.
    last_ack: Cell<Option<Duration>>,
    pub peers: Rc<[String]>,
    pub net: Rc<dyn Network>,
    pub state: RefCell<State>,
    wal: Mutex<Wal<Entry>>,
    meta_file: MetaFile<Meta>,
    commit_tx: watch::Sender<u64>,
    /// The primary's last log index, watched by its shippers.
    pub last_tx: watch::Sender<u64>,
    /// Tripped when the disk failed: the replica stops with that error.
    fail_stop: FailStop,
    /// Where it publishes whether it is the primary, and in which epoch.
    roles: Roles,
}

/// What kind of replica to run.
pub(super) struct Setup {
    pub mode: Mode,
    pub config: EngineConfig,
    pub bug: Option<Bug>,
    pub failover: Failover,
}

/// The replica's software: recover, then serve until the host dies.
pub(super) async fn run(node: NodeContext, setup: Setup) -> NodeResult {
    let Setup {
        mode,
        config,
        bug,
        failover,
    } = setup;
    let (mut wal, entries) = Wal::open(node.disk.clone(), WAL_PATH).await?;
    let meta_file = MetaFile::new(node.disk.clone(), META_PATH);
    let meta = match meta_file.load().await? {
        Some(meta) => meta,
        None => Meta {
            epoch: 1,
            primary: 0,
            members: (0..node.replicas.len()).collect(),
        },
    };
    let mut state = State::recovered(meta, entries);
    // Nothing recovered counts as committed yet: which entries were
    // committed before the crash is not known. A backup waits for the commit
    // point the primary ships; a primary commits its log again as the Sync
    // stage's backups confirm it (at once without a Sync stage) and serves
    // no read before, or a read could expose an entry the backups lack,
    // which a failover would then take back.
    if state.meta.primary == node.id {
        // A fenced primary that crashed before its barrier was durable
        // writes it now: without an entry of its epoch it could commit nothing.
        if failover.is_fenced() && state.epoch_at(state.last_index()) != state.meta.epoch {
            wal.append_sync(&state.append_barrier()).await?;
        }
        state.serving_from = state.last_index();
    }
    tracing::info!(target: "replisim::engine", entries = state.log.len(), epoch = state.meta.epoch, primary = state.meta.primary, "recovered");
    let last = state.last_index();
    let commit = state.commit;
    let replica = Rc::new(Replica {
        id: node.id,
        mode,
        config,
        bug,
        failover,
        clock: node.clock.clone(),
        heard: Cell::new(Instant::now()), // determinism-ok: tokio's clock, simulated under turmoil
        last_ack: Cell::new(None),
        peers: node.replicas.clone(),
        net: node.net.clone(),
        state: RefCell::new(state),
        wal: Mutex::new(wal),
        meta_file,
        commit_tx: watch::Sender::new(commit),
        last_tx: watch::Sender::new(last),
        fail_stop: FailStop::default(),
        roles: node.roles.clone(),
    });
    replica.publish_role();
    node.state.publish_weak_versioned(
        &replica,
        |r| r.state.borrow().machine.store().snapshot(),
        |r| r.state.borrow().changes,
    );
    replica.advance_commit();
    replica.start_shippers_if_primary();
    if failover.is_automatic() {
        tokio::task::spawn_local(view::watch(replica.clone()));
    }
    let listener = node.net.bind(node.port()).await?;
    let handler_replica = replica.clone();
    // The handler's future is boxed for every request: no wrapper around
    // `handle`'s own, which would hold the request and the replica twice
    // and outgrow the allocator's per-thread cache of small blocks.
    let handler: Handler<Request, Response> =
        Rc::new(move |request| Box::pin(handler_replica.clone().handle(request).map(Some)));
    tokio::select! {
        served = serve(listener, handler) => served?,
        error = replica.fail_stop.stopped() => {
            tracing::warn!(target: "replisim::engine", "stopping after a disk failure");
            // The disk's error, kept whole: the harness tells a fail-stop on
            // an injected I/O error from its chain.
            return Err(error.into());
        }
    }
    Ok(())
}

impl Replica {
    async fn handle(self: Rc<Self>, request: Request) -> Response {
        match request {
            Request::Client { op, at_backup, id } => match self.redirect(&op, at_backup) {
                Some(redirect) => redirect,
                None => Response::Client(self.client_op(op, at_backup, id).await),
            },
            Request::Replicate(message) => self.replicate(message).await,
            Request::Status => {
                let state = self.state.borrow();
                Response::Status {
                    epoch: state.meta.epoch,
                    primary: state.meta.primary,
                    last_index: state.last_index(),
                    last_epoch: state.epoch_at(state.last_index()),
                }
            }
            Request::Promote { epoch, members } => self.promote(epoch, members).await,
            Request::ViewChange { epoch } => self.grant(epoch).await,
        }
    }

    /// With automatic failover, where a client request that this replica
    /// must not serve should go instead: mutations and reads to the primary,
    /// and, fenced, no read to a primary without a lease.
    fn redirect(&self, op: &Op, at_backup: bool) -> Option<Response> {
        if !self.failover.is_automatic() || (at_backup && !op.is_mutation()) {
            return None;
        }
        let state = self.state.borrow();
        if state.meta.primary != self.id {
            return Some(Response::Redirect {
                primary: Some(state.meta.primary),
            });
        }
        if self.failover.is_fenced() && !op.is_mutation() && !self.holds_lease(&state) {
            tracing::debug!(target: "replisim::engine", "no read lease: read refused");
            return Some(Response::Redirect { primary: None });
        }
        None
    }

    /// Fenced primary: a majority (itself included) acknowledged a message
    /// it sent less than the lease (shortened by the drift bound) ago, by
    /// its own clock.
    fn holds_lease(&self, state: &State) -> bool {
        let now = self.clock.now();
        let term = self.config.failover.lease_by_own_clock();
        let fresh = state
            .lease_acks
            .values()
            .filter(|&&sent| now.saturating_sub(sent) < term)
            .count();
        fresh + 1 > state.meta.members.len() / 2
    }

    /// Fenced: the clock reading to stamp a message with, for the lease.
    pub fn lease_stamp(&self) -> Option<Duration> {
        self.failover.is_fenced().then(|| self.clock.now())
    }

    /// A backup acknowledged a message sent at `sent` (by this replica's clock).
    pub fn record_lease(&self, backup: usize, sent: Option<Duration>) {
        if let Some(sent) = sent {
            self.state.borrow_mut().lease_acks.insert(backup, sent);
        }
    }

    /// Naive primary: `backup` answered (or stopped answering); the Sync
    /// stage waits only for the backups that answer.
    pub fn mark_responsive(&self, backup: usize, responsive: bool) {
        if self.failover != Failover::Naive {
            return;
        }
        let changed = {
            let mut state = self.state.borrow_mut();
            match responsive {
                true => state.unresponsive.remove(&backup),
                false => state.unresponsive.insert(backup),
            }
        };
        if changed {
            tracing::info!(target: "replisim::engine", backup, responsive, "sync stage membership changed");
            self.advance_commit();
        }
    }

    /// Restarts the failure detector's wait: a view change was granted or
    /// started, or this primary stepped down.
    pub fn restart_detector(&self) {
        self.heard.set(Instant::now()); // determinism-ok: tokio's clock, simulated under turmoil
    }

    /// The failure detector's input: the primary was just heard from (and,
    /// fenced, this replica acknowledged its lease).
    fn heard_from_primary(&self) {
        self.restart_detector();
        if self.failover.is_fenced() {
            self.last_ack.set(Some(self.clock.now()));
        }
    }

    /// Fenced view change: acknowledge `epoch` unless this replica is
    /// already there, is the primary, or acknowledged the primary less than
    /// a lease ago (by its own clock). The epoch is persisted before the
    /// answer; from then on older epochs are refused.
    pub async fn grant(&self, epoch: u64) -> Response {
        let _wal = self.wal.lock().await;
        let current = self.state.borrow().meta.clone();
        if epoch <= current.epoch {
            return Response::Denied {
                epoch: current.epoch,
            };
        }
        if current.primary == self.id {
            return Response::Refused("the primary is alive".into());
        }
        if let Some(acked) = self.last_ack.get()
            && self.clock.now() < acked + self.config.failover.lease
        {
            return Response::Refused("the primary's lease may still run".into());
        }
        // The old primary stays named until the new one ships: a hint only,
        // its older epoch is refused.
        let meta = Meta { epoch, ..current };
        if let Err(error) = self.meta_file.store(&meta).await {
            return Response::Refused(self.disk_failed(error));
        }
        tracing::info!(target: "replisim::engine", epoch, "view change acknowledged");
        self.restart_detector();
        let mut state = self.state.borrow_mut();
        state.meta = meta;
        Response::Granted {
            last_epoch: state.epoch_at(state.last_index()),
            last_index: state.last_index(),
        }
    }

    /// Fenced primary: a backup knows the newer `epoch`; this primary is
    /// deposed. It steps down, naming that backup as its best guess of who
    /// knows the new primary, and waits to be shipped to (or suspects).
    pub async fn step_down(&self, epoch: u64, backup: usize) {
        if !self.failover.is_fenced() {
            return;
        }
        let _wal = self.wal.lock().await;
        let current = self.state.borrow().meta.clone();
        if epoch <= current.epoch {
            return;
        }
        let meta = Meta {
            epoch,
            primary: backup,
            members: current.members,
        };
        if let Err(error) = self.meta_file.store(&meta).await {
            self.disk_failed(error);
            return;
        }
        tracing::info!(target: "replisim::engine", epoch, "deposed: stepping down");
        self.restart_detector();
        self.state.borrow_mut().meta = meta;
        self.publish_role();
    }

    /// Publishes the primary role with its epoch while this replica
    /// believes it is the primary.
    fn publish_role(&self) {
        let meta = &self.state.borrow().meta;
        if meta.primary == self.id {
            self.roles.hold(PRIMARY, meta.epoch);
        } else {
            self.roles.release(PRIMARY);
        }
    }

    fn is_primary(&self) -> bool {
        self.state.borrow().meta.primary == self.id
    }

    /// Records a disk failure: the replica stops serving (fail-stop).
    fn disk_failed(&self, error: StorageError) -> String {
        tracing::warn!(target: "replisim::engine", %error, "disk failure");
        let text = format!("disk failure: {error}");
        self.fail_stop.trip(error);
        text
    }

    async fn client_op(self: &Rc<Self>, op: Op, at_backup: bool, id: RequestId) -> Completion {
        let backup_read = at_backup && !op.is_mutation();
        if !self.is_primary() && !backup_read {
            let primary = self.state.borrow().meta.primary;
            return Completion::Fail(format!("not the primary (replica {primary} is)"));
        }
        if let Op::Read { key, .. } = &op {
            let state = self.state.borrow();
            if !backup_read && state.commit < state.serving_from {
                return Completion::Fail(
                    "the primary is still confirming its log with its backups".into(),
                );
            }
            return Completion::Ok(state.machine.store().get(key).cloned());
        }
        // Request -> Sync: durable on the primary first.
        let index = {
            let mut wal = self.wal.lock().await;
            let entry = {
                let state = self.state.borrow();
                if state.meta.primary != self.id {
                    return Completion::Fail("no longer the primary".into());
                }
                if let Some(result) = state.machine.duplicate_result(id) {
                    return result;
                }
                Entry {
                    index: state.last_index() + 1,
                    epoch: state.meta.epoch,
                    op,
                    request: id,
                }
            };
            if let Err(error) = wal.append_sync(&entry).await {
                return Completion::Info(self.disk_failed(error));
            }
            let mut state = self.state.borrow_mut();
            state.waiting.insert(entry.index);
            state.log.push(entry);
            state.last_index()
        };
        self.last_tx.send_replace(index);
        self.advance_commit();
        // Sync -> Response: wait for the required backups.
        let mut commit = self.commit_tx.subscribe();
        if commit.wait_for(|&c| c >= index).await.is_err() {
            return Completion::Info("replica shut down".into());
        }
        let result = self.state.borrow_mut().results.remove(&index);
        // Response: a reply that leaves late (a slow network card, a
        // descheduled thread) reaches a client that gave up on it.
        if crate::buggify!("reply late after commit") {
            sleep(self.config.client_timeout).await;
        }
        result.unwrap_or_else(|| Completion::Info("entry was replaced by a newer primary".into()))
    }

    /// Records that `backup` holds the primary's log up to `index`.
    pub fn record_match(&self, backup: usize, index: u64) {
        self.state.borrow_mut().matched.insert(backup, index);
        self.advance_commit();
    }

    /// Moves the commit point to the highest index that enough backups hold.
    fn advance_commit(&self) {
        let commit = {
            let mut state = self.state.borrow_mut();
            if state.meta.primary != self.id {
                return;
            }
            // What each responsive backup holds (a handful: scanned, not
            // collected).
            let acked = || {
                state
                    .meta
                    .members
                    .iter()
                    .filter(|&&m| m != self.id && !state.unresponsive.contains(&m))
                    .map(|m| state.matched.get(m).copied().unwrap_or(0))
            };
            let need = self.mode.required_acks(acked().count());
            let mut reached = match need {
                0 => state.last_index(),
                // The highest index `n` backups hold.
                n => acked()
                    .filter(|&index| acked().filter(|&held| held >= index).count() >= n)
                    .max()
                    .expect("no more acknowledgements required than backups"),
            }
            .min(state.last_index());
            // Fenced: entries of older epochs commit only under one of this
            // epoch (a majority holding them proves nothing: Raft's rule).
            if self.failover.is_fenced() && state.epoch_at(reached) != state.meta.epoch {
                reached = state.commit;
            }
            let commit = reached.max(state.commit);
            state.commit = commit;
            state.apply_to(commit);
            commit
        };
        self.commit_tx.send_replace(commit);
    }

    async fn replicate(&self, message: Replicate) -> Response {
        let Replicate {
            from,
            epoch,
            prev_index,
            prev_epoch,
            entries,
            commit,
        } = message;
        let mut wal = self.wal.lock().await;
        if self.bug == Some(Bug::AckBeforePersist)
            && let Err(error) = wal.sync().await
        {
            return Response::Refused(self.disk_failed(error));
        }
        let (known_epoch, last) = {
            let state = self.state.borrow();
            (state.meta.epoch, state.last_index())
        };
        let refuse = |last_index| Response::Replicated {
            ok: false,
            epoch: known_epoch.max(epoch),
            last_index,
        };
        if epoch < known_epoch && self.failover.epochs_checked() {
            return refuse(last);
        }
        if self.failover == Failover::Naive && self.is_primary() {
            return Response::Refused("a primary follows no one".into());
        }
        // With epochs checked an older epoch was refused above, so only a
        // newer epoch or another primary of this one changes who leads.
        let leader_changed = {
            let current = &self.state.borrow().meta;
            epoch != current.epoch || current.primary != from
        };
        if leader_changed {
            let meta = Meta {
                epoch,
                primary: from,
                members: self.state.borrow().meta.members.clone(),
            };
            if let Err(error) = self.meta_file.store(&meta).await {
                return Response::Refused(self.disk_failed(error));
            }
            tracing::info!(target: "replisim::engine", epoch, primary = from, "following a new primary");
            self.state.borrow_mut().meta = meta;
            self.publish_role();
        }
        if self.failover.is_automatic() {
            self.heard_from_primary();
        }
        if prev_index > last {
            return refuse(last);
        }
        if self.state.borrow().epoch_at(prev_index) != prev_epoch {
            let keep = prev_index - 1;
            if let Err(error) = wal.truncate_to(keep as usize).await {
                return Response::Refused(self.disk_failed(error));
            }
            self.state.borrow_mut().truncate(keep);
            return refuse(keep);
        }
        let shipped = entries.len() as u64;
        let mut fresh = Vec::new();
        for entry in entries {
            let (len, existing) = {
                let state = self.state.borrow();
                (
                    state.last_index(),
                    state.epoch_at(entry.index.min(state.last_index())),
                )
            };
            if entry.index <= len {
                if existing == entry.epoch {
                    continue;
                }
                if let Err(error) = wal.truncate_to(entry.index as usize - 1).await {
                    return Response::Refused(self.disk_failed(error));
                }
                self.state.borrow_mut().truncate(entry.index - 1);
            }
            if let Err(error) = wal.append(&entry).await {
                return Response::Refused(self.disk_failed(error));
            }
            fresh.push(entry);
        }
        if !fresh.is_empty() {
            // The planted bug acknowledges now and syncs with the next message.
            if self.bug != Some(Bug::AckBeforePersist)
                && let Err(error) = wal.sync().await
            {
                return Response::Refused(self.disk_failed(error));
            }
            tracing::debug!(target: "replisim::engine", from, first = fresh[0].index, count = fresh.len(), "applied replicated entries");
            self.state.borrow_mut().log.extend(fresh);
            // Persisted, not yet acknowledged: a backup this slow looks
            // dead to its primary, which retries or drops it.
            if crate::buggify!("backup slow to acknowledge") {
                sleep(self.config.rpc.request_timeout).await;
            }
        }
        let mut state = self.state.borrow_mut();
        let matched = prev_index + shipped;
        state.commit = state.commit.max(commit.min(matched));
        let target = state.commit;
        state.apply_to(target);
        Response::Replicated {
            ok: true,
            epoch,
            last_index: matched,
        }
    }

    pub async fn promote(self: &Rc<Self>, epoch: u64, members: Vec<usize>) -> Response {
        let mut wal = self.wal.lock().await;
        if epoch < self.state.borrow().meta.epoch {
            return Response::Refused("stale epoch".into());
        }
        let meta = Meta {
            epoch,
            primary: self.id,
            members,
        };
        if let Err(error) = self.meta_file.store(&meta).await {
            return Response::Refused(self.disk_failed(error));
        }
        // The new epoch is on disk and nobody knows yet: the old primary
        // may act in the meantime.
        if crate::buggify!("slow promotion") {
            sleep(self.config.heartbeat).await;
        }
        // Like a restarted primary, a promoted one commits its log again as
        // its backups confirm it, and serves reads only after that.
        {
            let mut state = self.state.borrow_mut();
            state.meta = meta;
            state.matched.clear();
            state.lease_acks.clear();
            state.unresponsive.clear();
        }
        if self.failover.is_fenced()
            && let Err(error) = self.write_barrier(&mut wal).await
        {
            return Response::Refused(self.disk_failed(error));
        }
        let last = {
            let mut state = self.state.borrow_mut();
            state.serving_from = state.last_index();
            state.serving_from
        };
        self.publish_role();
        tracing::info!(target: "replisim::engine", epoch, last, "promoted to primary");
        self.last_tx.send_replace(last);
        self.advance_commit();
        self.start_shippers_if_primary();
        Response::Done
    }

    /// Appends and syncs the barrier entry of this primary's epoch.
    async fn write_barrier(
        &self,
        wal: &mut MutexGuard<'_, Wal<Entry>>,
    ) -> Result<(), StorageError> {
        let entry = self.state.borrow_mut().append_barrier();
        if let Err(error) = wal.append_sync(&entry).await {
            self.state.borrow_mut().log.pop();
            return Err(error);
        }
        Ok(())
    }

    fn start_shippers_if_primary(self: &Rc<Self>) {
        let state = self.state.borrow();
        if state.meta.primary != self.id {
            return;
        }
        for &backup in state.meta.members.iter().filter(|&&m| m != self.id) {
            tokio::task::spawn_local(shipper::ship(self.clone(), backup, state.meta.epoch));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, epoch: u64, value: &str, seq: u64) -> Entry {
        Entry {
            index,
            epoch,
            op: Op::Append {
                key: "k".into(),
                value: value.into(),
            },
            request: RequestId { client: 7, seq },
        }
    }

    fn state(log: Vec<Entry>) -> State {
        let meta = Meta {
            epoch: 1,
            primary: 0,
            members: vec![0, 1],
        };
        State::recovered(meta, log)
    }

    #[test]
    fn a_duplicated_request_is_applied_once() {
        let mut state = state(vec![
            entry(1, 1, "a;", 1),
            entry(2, 1, "a;", 1),
            entry(3, 1, "b;", 2),
            entry(4, 1, "a;", 1),
        ]);
        state.waiting.extend([2, 4]);
        state.apply_to(4);
        assert_eq!(
            state.machine.store().get("k").map(String::as_str),
            Some("a;b;")
        );
        assert_eq!(
            state.results[&2],
            Completion::Ok(None),
            "the duplicate gets the first result"
        );
        assert!(
            matches!(state.results[&4], Completion::Fail(_)),
            "a stale duplicate fails"
        );
    }

    #[test]
    fn truncating_applied_entries_rebuilds_the_store() {
        let mut state = state(vec![
            entry(1, 1, "a;", 1),
            entry(2, 1, "b;", 2),
            entry(3, 2, "c;", 3),
        ]);
        state.commit = 3;
        state.apply_to(3);
        assert_eq!(state.epoch_at(3), 2);
        assert_eq!(state.epoch_at(0), 0);
        state.truncate(1);
        assert_eq!(state.last_index(), 1);
        assert_eq!(state.commit, 1);
        assert_eq!(
            state.machine.store().get("k").map(String::as_str),
            Some("a;")
        );
        state.log.push(entry(2, 3, "b;", 2));
        state.commit = 2;
        state.apply_to(2);
        assert_eq!(
            state.machine.store().get("k").map(String::as_str),
            Some("a;b;"),
            "the session was rebuilt too"
        );
    }
}
