//! One replica of the four-stage engine: recovery from its write-ahead log,
//! its in-memory state, and the handlers for client, peer and operator
//! requests. Disk updates are serialised by one async mutex around the WAL;
//! the in-memory state sits in a `RefCell` that is never held across an
//! `.await`.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
};

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, watch};

use super::{
    Bug, EngineConfig, Mode, PRIMARY,
    messages::{Entry, Replicate, Request, RequestId, Response},
    shipper,
};
use crate::{
    effect,
    history::{Completion, Op},
    net::{Handler, Network, serve},
    node::{NodeContext, NodeResult, Roles},
    replication::kv::KvStore,
    storage::{MetaFile, StorageError, Wal},
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
    store: KvStore,
    applied: u64,
    pub commit: u64,
    /// Per backup, the highest index known to match the primary's log.
    matched: BTreeMap<usize, u64>,
    /// Indexes whose client waits for the result, and the results ready.
    waiting: BTreeSet<u64>,
    results: BTreeMap<u64, Completion>,
    /// Per client, the last request applied and its result (for dedup).
    sessions: BTreeMap<u64, (u64, Completion)>,
    /// A primary serves reads only once its commit point reached this: the
    /// length of its log when it recovered or was promoted.
    serving_from: u64,
}

impl State {
    /// The state of a replica that recovered `log` from disk: nothing
    /// applied or committed yet.
    fn recovered(meta: Meta, log: Vec<Entry>) -> Self {
        State {
            meta,
            log,
            store: KvStore::default(),
            applied: 0,
            commit: 0,
            matched: BTreeMap::new(),
            waiting: BTreeSet::new(),
            results: BTreeMap::new(),
            sessions: BTreeMap::new(),
            serving_from: 0,
        }
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
            let id = entry.request;
            let result = match self.duplicate_result(id) {
                Some(result) => result,
                None => {
                    let result = self.store.apply(&entry.op);
                    self.sessions.insert(id.client, (id.seq, result.clone()));
                    result
                }
            };
            if self.waiting.remove(&entry.index) {
                self.results.insert(entry.index, result);
            }
            self.applied += 1;
        }
    }

    /// The result of a request already applied (a duplicate), if it was.
    fn duplicate_result(&self, id: RequestId) -> Option<Completion> {
        let (seq, result) = self.sessions.get(&id.client)?;
        match id.seq.cmp(seq) {
            std::cmp::Ordering::Greater => None,
            std::cmp::Ordering::Equal => Some(result.clone()),
            std::cmp::Ordering::Less => Some(Completion::Fail("stale duplicate request".into())),
        }
    }

    /// Drops entries after `len`, rebuilding the store if applied ones go.
    fn truncate(&mut self, len: u64) {
        let dropped = self.last_index().saturating_sub(len);
        tracing::info!(target: "replisim::engine", len, dropped, "truncating a log that disagrees with the primary's");
        effect::record("log_entries_truncated", dropped);
        self.log.truncate(len as usize);
        self.commit = self.commit.min(len);
        if self.applied > len {
            self.store = KvStore::default();
            self.sessions.clear();
            self.applied = 0;
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
    pub peers: Rc<[String]>,
    pub net: Rc<dyn Network>,
    pub state: RefCell<State>,
    wal: Mutex<Wal<Entry>>,
    meta_file: MetaFile<Meta>,
    commit_tx: watch::Sender<u64>,
    /// The primary's last log index, watched by its shippers.
    pub last_tx: watch::Sender<u64>,
    /// Set when the disk failed: the replica stops (fail-stop).
    failed: Notify,
    /// Where it publishes whether it is the primary, and in which epoch.
    roles: Roles,
}

/// The replica's software: recover, then serve until the host dies.
pub(super) async fn run(
    node: NodeContext,
    mode: Mode,
    config: EngineConfig,
    bug: Option<Bug>,
) -> NodeResult {
    let (wal, entries) = Wal::open(node.disk.clone(), WAL_PATH).await?;
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
        peers: node.replicas.clone(),
        net: node.net.clone(),
        state: RefCell::new(state),
        wal: Mutex::new(wal),
        meta_file,
        commit_tx: watch::Sender::new(commit),
        last_tx: watch::Sender::new(last),
        failed: Notify::new(),
        roles: node.roles.clone(),
    });
    replica.publish_role();
    let probe = Rc::downgrade(&replica);
    node.state.publish(move || {
        probe
            .upgrade()
            .map(|r| r.state.borrow().store.snapshot())
            .unwrap_or_default()
    });
    replica.advance_commit();
    replica.start_shippers_if_primary();
    let listener = node.net.bind(node.port()).await?;
    let handler_replica = replica.clone();
    // The handler's future is boxed for every request: no wrapper around
    // `handle`'s own, which would hold the request and the replica twice
    // and outgrow the allocator's per-thread cache of small blocks.
    let handler: Handler<Request, Response> =
        Rc::new(move |request| Box::pin(handler_replica.clone().handle(request).map(Some)));
    tokio::select! {
        served = serve(listener, handler) => served?,
        () = replica.failed.notified() => {
            tracing::warn!(target: "replisim::engine", "stopping after a disk failure");
        }
    }
    Ok(())
}

impl Replica {
    async fn handle(self: Rc<Self>, request: Request) -> Response {
        match request {
            Request::Client { op, at_backup, id } => {
                Response::Client(self.client_op(op, at_backup, id).await)
            }
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
        }
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
    fn disk_failed(&self, error: &StorageError) -> String {
        tracing::warn!(target: "replisim::engine", %error, "disk failure");
        self.failed.notify_one();
        format!("disk failure: {error}")
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
            return Completion::Ok(state.store.get(key).cloned());
        }
        // Request -> Sync: durable on the primary first.
        let index = {
            let mut wal = self.wal.lock().await;
            let entry = {
                let state = self.state.borrow();
                if state.meta.primary != self.id {
                    return Completion::Fail("no longer the primary".into());
                }
                if let Some(result) = state.duplicate_result(id) {
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
                return Completion::Info(self.disk_failed(&error));
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
            let mut acked: Vec<u64> = state
                .meta
                .members
                .iter()
                .filter(|&&m| m != self.id)
                .map(|m| state.matched.get(m).copied().unwrap_or(0))
                .collect();
            acked.sort_unstable_by(|a, b| b.cmp(a));
            let need = self.mode.required_acks(acked.len());
            let reached = match need {
                0 => state.last_index(),
                n => acked[n - 1],
            };
            let commit = reached.min(state.last_index()).max(state.commit);
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
            return Response::Refused(self.disk_failed(&error));
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
        if epoch < known_epoch {
            return refuse(last);
        }
        let current = self.state.borrow().meta.clone();
        if epoch > current.epoch || current.primary != from {
            let meta = Meta {
                epoch,
                primary: from,
                members: current.members,
            };
            if let Err(error) = self.meta_file.store(&meta).await {
                return Response::Refused(self.disk_failed(&error));
            }
            tracing::info!(target: "replisim::engine", epoch, primary = from, "following a new primary");
            self.state.borrow_mut().meta = meta;
            self.publish_role();
        }
        if prev_index > last {
            return refuse(last);
        }
        if self.state.borrow().epoch_at(prev_index) != prev_epoch {
            let keep = prev_index - 1;
            if let Err(error) = wal.truncate_to(keep as usize).await {
                return Response::Refused(self.disk_failed(&error));
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
                    return Response::Refused(self.disk_failed(&error));
                }
                self.state.borrow_mut().truncate(entry.index - 1);
            }
            if let Err(error) = wal.append(&entry).await {
                return Response::Refused(self.disk_failed(&error));
            }
            fresh.push(entry);
        }
        if !fresh.is_empty() {
            // The planted bug acknowledges now and syncs with the next message.
            if self.bug != Some(Bug::AckBeforePersist)
                && let Err(error) = wal.sync().await
            {
                return Response::Refused(self.disk_failed(&error));
            }
            tracing::debug!(target: "replisim::engine", from, first = fresh[0].index, count = fresh.len(), "applied replicated entries");
            self.state.borrow_mut().log.extend(fresh);
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

    async fn promote(self: &Rc<Self>, epoch: u64, members: Vec<usize>) -> Response {
        let _wal = self.wal.lock().await;
        if epoch < self.state.borrow().meta.epoch {
            return Response::Refused("stale epoch".into());
        }
        let meta = Meta {
            epoch,
            primary: self.id,
            members,
        };
        if let Err(error) = self.meta_file.store(&meta).await {
            return Response::Refused(self.disk_failed(&error));
        }
        // Like a restarted primary, a promoted one commits its log again as
        // its backups confirm it, and serves reads only after that.
        let last = {
            let mut state = self.state.borrow_mut();
            state.meta = meta;
            state.matched.clear();
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
        assert_eq!(state.store.get("k").map(String::as_str), Some("a;b;"));
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
        assert_eq!(state.store.get("k").map(String::as_str), Some("a;"));
        state.log.push(entry(2, 3, "b;", 2));
        state.commit = 2;
        state.apply_to(2);
        assert_eq!(
            state.store.get("k").map(String::as_str),
            Some("a;b;"),
            "the session was rebuilt too"
        );
    }
}
