//! One Raft replica: recovery, the election timer, the leader's
//! replicators, and the handlers for client and peer requests.
//!
//! Every change that must be durable (term, vote, log) happens while the
//! disk lock (`Disk`'s async mutex) is held, and is synced before the
//! answer that depends on it is sent; the state in memory sits in a
//! `RefCell` never held across an `.await`.

use std::{cell::Cell, rc::Rc, time::Duration};

use futures_util::{StreamExt, stream::FuturesUnordered};
use rand::Rng;
use tokio::{
    sync::{Mutex, watch},
    time::{Instant, sleep, sleep_until},
};

use super::{
    Bug, LEADER, RaftConfig,
    messages::{AppendEntries, Command, Entry, Request, Response},
    state::{Hard, Role, State},
};
use crate::{
    history::{Completion, Op},
    net::{Handler, Network, RpcClient, serve},
    node::{NodeContext, NodeResult, Roles, StateProbe},
    replication::kv::RequestId,
    storage::{FailStop, MetaFile, StorageError, Wal},
};

const LOG_PATH: &str = "raft-log";
const HARD_PATH: &str = "raft-hard";

/// The durable half: the log and the term/vote cell, one writer at a time.
struct Disk {
    log: Wal<Entry>,
    hard: MetaFile<Hard>,
}

pub(super) struct Replica {
    id: usize,
    peers: Rc<[String]>,
    net: Rc<dyn Network>,
    config: RaftConfig,
    bug: Option<Bug>,
    state: std::cell::RefCell<State>,
    disk: Mutex<Disk>,
    /// Bumped whenever the leader has something new to send (entries,
    /// commit index); its replicators wait on it.
    changed: watch::Sender<u64>,
    /// The applied index, watched by waiting client requests.
    applied: watch::Sender<u64>,
    /// Last time a current leader or a granted vote reset the election timer.
    heard: Cell<Instant>,
    /// Tripped when the disk failed: the replica stops with that error.
    fail_stop: FailStop,
    roles: Roles,
    /// Where the state and log are published, once this start of the
    /// replica caught up (a recovered log's commit point is unknown until
    /// a leader tells it: before that its state is not reported at all).
    probe: StateProbe,
    published: Cell<bool>,
}

/// What a leader does after a follower's answer to an append.
enum Answered {
    /// A newer term, or no longer leading this term: stop replicating.
    Stop,
    /// The follower is behind: send again at once.
    More,
    /// Up to date: wait for news or the next beat.
    Done,
    /// No answer (or a refusal): retry after a while.
    Failed,
}

/// The replica's software: recover, then serve until the host dies.
pub(super) async fn run(node: NodeContext, config: RaftConfig, bug: Option<Bug>) -> NodeResult {
    let (log, entries) = Wal::open(node.disk.clone(), LOG_PATH).await?;
    let hard_file = MetaFile::new(node.disk.clone(), HARD_PATH);
    let hard: Hard = hard_file.load().await?.unwrap_or_default();
    tracing::info!(target: "replisim::raft", term = hard.term, entries = entries.len(), "recovered");
    let replica = Rc::new(Replica {
        id: node.id,
        peers: node.replicas.clone(),
        net: node.net.clone(),
        config,
        bug,
        state: State::recovered(hard, entries).into(),
        disk: Mutex::new(Disk {
            log,
            hard: hard_file,
        }),
        changed: watch::Sender::new(0),
        applied: watch::Sender::new(0),
        heard: Cell::new(Instant::now()), // determinism-ok: tokio's clock, simulated under turmoil
        fail_stop: FailStop::default(),
        roles: node.roles.clone(),
        probe: node.state.clone(),
        published: Cell::new(false),
    });
    // A previous start's readers (after a disk failure) report nothing.
    node.state.clear();
    if replica.state.borrow().entries().is_empty() {
        replica.publish();
    }
    let listener = node.net.bind(node.port()).await?;
    let handler_replica = replica.clone();
    let handler: Handler<Request, Response> = Rc::new(move |request| {
        let replica = handler_replica.clone();
        Box::pin(async move { Some(replica.handle(request).await) })
    });
    let mut rng = node.rng();
    tokio::select! {
        served = serve(listener, handler) => served?,
        () = replica.clone().elections(&mut rng) => {}
        error = replica.fail_stop.stopped() => {
            tracing::warn!(target: "replisim::raft", "stopping after a disk failure");
            return Err(error.into());
        }
    }
    Ok(())
}

impl Replica {
    /// Publishes the state and log readers (once).
    fn publish(self: &Rc<Self>) {
        if self.published.replace(true) {
            return;
        }
        let probe = Rc::downgrade(self);
        self.probe.publish(move || {
            probe
                .upgrade()
                .map(|r| r.state.borrow().snapshot())
                .unwrap_or_default()
        });
        let probe = Rc::downgrade(self);
        self.probe.publish_log(move || {
            probe
                .upgrade()
                .map(|r| r.state.borrow().published())
                .unwrap_or_default()
        });
    }

    fn cluster(&self) -> usize {
        self.peers.len()
    }

    fn others(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.cluster()).filter(move |&p| p != self.id)
    }

    fn term(&self) -> u64 {
        self.state.borrow().hard.term
    }

    fn is_leader_of(&self, term: u64) -> bool {
        let state = self.state.borrow();
        state.role == Role::Leader && state.hard.term == term
    }

    /// Records a disk failure: the replica stops serving (fail-stop).
    fn disk_failed(&self, error: StorageError) -> Response {
        tracing::warn!(target: "replisim::raft", %error, "disk failure");
        // A stopped replica reports nothing.
        self.probe.clear();
        let refused = Response::Refused(format!("disk failure: {error}"));
        self.fail_stop.trip(error);
        refused
    }

    async fn handle(self: &Rc<Self>, request: Request) -> Response {
        let result = match request {
            Request::Client { op, id } => return self.client_request(op, id).await,
            Request::Vote {
                term,
                candidate,
                last_index,
                last_term,
            } => self.vote(term, candidate, last_index, last_term).await,
            Request::Append(message) => self.append(message).await,
        };
        result.unwrap_or_else(|error| self.disk_failed(error))
    }

    /// Adopts `term` (newer than ours) as a follower, durably, with no vote.
    async fn adopt_term(&self, disk: &mut Disk, term: u64) -> Result<(), StorageError> {
        disk.hard.store(&Hard::of(term)).await?;
        self.follow_term(term);
        Ok(())
    }

    /// Adopts `term` as a follower with no vote, in memory only.
    fn follow_term(&self, term: u64) {
        let mut state = self.state.borrow_mut();
        state.hard = Hard::of(term);
        state.leader = None;
        self.become_follower(&mut state);
    }

    fn become_follower(&self, state: &mut State) {
        if state.role == Role::Leader {
            tracing::info!(target: "replisim::raft", term = state.hard.term, "stepped down");
            self.roles.release(LEADER);
        }
        state.role = Role::Follower;
    }

    /// `RequestVote`.
    async fn vote(
        &self,
        term: u64,
        candidate: usize,
        last_index: u64,
        last_term: u64,
    ) -> Result<Response, StorageError> {
        let mut disk = self.disk.lock().await;
        // The planted bug answers before the term and vote (one record)
        // are durable: they reach the disk with the next change of term,
        // so a crash before it forgets both.
        let deferred = self.bug == Some(Bug::VoteBeforePersist);
        if term > self.term() {
            match deferred {
                true => self.follow_term(term),
                false => self.adopt_term(&mut disk, term).await?,
            }
        }
        let grant = {
            let state = self.state.borrow();
            term == state.hard.term
                && state.hard.voted_for.is_none_or(|v| v == candidate)
                && (self.bug == Some(Bug::VoteWithoutLogCheck)
                    || state.up_to_date(last_term, last_index))
        };
        if grant {
            let hard = Hard {
                term,
                voted_for: Some(candidate),
            };
            if !deferred {
                disk.hard.store(&hard).await?;
            }
            self.state.borrow_mut().hard = hard;
            self.heard.set(Instant::now()); // determinism-ok: simulated time
            tracing::debug!(target: "replisim::raft", term, candidate, "granted vote");
        }
        Ok(Response::Vote {
            term: self.term(),
            granted: grant,
        })
    }

    /// `AppendEntries`.
    async fn append(self: &Rc<Self>, message: AppendEntries) -> Result<Response, StorageError> {
        let AppendEntries {
            term,
            leader,
            prev_index,
            prev_term,
            entries,
            commit,
        } = message;
        let mut disk = self.disk.lock().await;
        let refuse = |state: &State, last_index| Response::Append {
            term: state.hard.term,
            ok: false,
            last_index,
        };
        if term < self.term() {
            return Ok(refuse(&self.state.borrow(), 0));
        }
        if term > self.term() {
            self.adopt_term(&mut disk, term).await?;
        }
        {
            let mut state = self.state.borrow_mut();
            self.become_follower(&mut state);
            state.leader = Some(leader);
            self.heard.set(Instant::now()); // determinism-ok: simulated time
            if prev_index > state.last_index() {
                let last = state.last_index();
                return Ok(refuse(&state, last));
            }
            if state.term_at(prev_index) != prev_term {
                return Ok(refuse(&state, prev_index - 1));
            }
        }
        let shipped = entries.len() as u64;
        let mut fresh = Vec::new();
        for entry in entries {
            let (last, existing, committed) = {
                let state = self.state.borrow();
                (state.last_index(), state.term_at(entry.index), state.commit)
            };
            if entry.index <= last {
                if existing == entry.term {
                    continue;
                }
                // A real conflict: this entry and all after it go.
                if entry.index <= committed {
                    tracing::error!(target: "replisim::raft", index = entry.index, committed, "refusing to truncate a committed entry");
                    return Ok(refuse(&self.state.borrow(), 0));
                }
                self.truncate(&mut disk, entry.index - 1).await?;
            }
            disk.log.append(&entry).await?;
            fresh.push(entry);
        }
        let matched = prev_index + shipped;
        if fresh.is_empty() {
            // The planted bug: a repeat of entries the follower has cuts
            // off everything after them.
            if self.bug == Some(Bug::TruncateOnStaleAppend)
                && self.state.borrow().last_index() > matched
            {
                self.truncate(&mut disk, matched).await?;
            }
        } else {
            disk.log.sync().await?;
            tracing::debug!(target: "replisim::raft", first = fresh[0].index, count = fresh.len(), "appended entries");
            let mut state = self.state.borrow_mut();
            for entry in fresh {
                state.push(entry);
            }
        }
        let mut state = self.state.borrow_mut();
        state.commit = state.commit.max(commit.min(matched));
        state.apply_committed();
        self.applied.send_replace(state.applied());
        // Caught up with a leader that knows what is committed (a leader
        // that has committed nothing of its own term sends 0).
        if commit > 0 && state.commit >= commit {
            self.publish();
        }
        Ok(Response::Append {
            term: state.hard.term,
            ok: true,
            last_index: matched,
        })
    }

    /// Cuts the log (durably) to `len` entries.
    async fn truncate(&self, disk: &mut Disk, len: u64) -> Result<(), StorageError> {
        let dropped = self.state.borrow().last_index().saturating_sub(len);
        tracing::info!(target: "replisim::raft", len, dropped, "truncating the log");
        crate::effect::record("log_entries_truncated", dropped);
        disk.log.truncate_to(len as usize).await?;
        self.state.borrow_mut().truncate(len);
        Ok(())
    }

    /// A client's operation: appended by the leader, answered once applied.
    async fn client_request(self: &Rc<Self>, op: Op, id: RequestId) -> Response {
        let (index, term) = {
            let mut disk = self.disk.lock().await;
            let entry = {
                let state = self.state.borrow();
                if state.role != Role::Leader {
                    return Response::Redirect {
                        leader: state.leader,
                    };
                }
                if let Some(result) = state.duplicate_result(id) {
                    return Response::Client(result);
                }
                Entry {
                    index: state.last_index() + 1,
                    term: state.hard.term,
                    command: Command::Client { op, request: id },
                }
            };
            if let Err(error) = disk.log.append(&entry).await {
                return self.disk_failed(error);
            }
            if let Err(error) = disk.log.sync().await {
                return self.disk_failed(error);
            }
            let mut state = self.state.borrow_mut();
            state.wait_for(entry.index, id);
            let at = (entry.index, entry.term);
            state.push(entry);
            at
        };
        self.changed.send_modify(|v| *v += 1);
        self.advance_commit(term);
        let mut applied = self.applied.subscribe();
        let waited = tokio::time::timeout(
            self.config.client_timeout,
            applied.wait_for(|&a| a >= index),
        )
        .await;
        let result = self.state.borrow_mut().take_result(index);
        match (waited, result) {
            (_, Some(result)) => Response::Client(result),
            _ => Response::Client(Completion::Info(
                "not committed in time (leadership may have changed)".into(),
            )),
        }
    }

    /// The election timer: a follower or candidate that heard from no
    /// leader for a random timeout starts an election.
    async fn elections(self: Rc<Self>, rng: &mut impl Rng) {
        let (low, high) = self.config.election_timeout;
        loop {
            let timeout = Duration::from_millis(rng.random_range(low..=high));
            sleep(timeout).await;
            let leading = self.state.borrow().role == Role::Leader;
            if !leading
                && self.heard.get().elapsed() >= timeout
                && let Err(error) = self.clone().campaign().await
            {
                self.disk_failed(error);
            }
        }
    }

    async fn campaign(self: Rc<Self>) -> Result<(), StorageError> {
        let (term, last_index, last_term) = {
            let disk = self.disk.lock().await;
            let hard = Hard {
                term: self.term() + 1,
                voted_for: Some(self.id),
            };
            disk.hard.store(&hard).await?;
            let mut state = self.state.borrow_mut();
            state.hard = hard;
            state.role = Role::Candidate;
            state.leader = None;
            (hard.term, state.last_index(), state.last_term())
        };
        self.heard.set(Instant::now()); // determinism-ok: simulated time
        tracing::debug!(target: "replisim::raft", term, "starting an election");
        let request = Request::Vote {
            term,
            candidate: self.id,
            last_index,
            last_term,
        };
        // Ask every peer, again and again while it does not answer (Raft
        // reissues unanswered RPCs), until a majority granted, a newer term
        // showed up, or the shortest election timeout passed.
        let mut asks: FuturesUnordered<_> = self
            .others()
            .map(|peer| {
                let request = request.clone();
                let replica = self.clone();
                async move {
                    let mut client: RpcClient<Request, Response> = RpcClient::new(
                        replica.net.clone(),
                        replica.peers[peer].clone(),
                        replica.config.rpc,
                    );
                    while replica.state.borrow().role == Role::Candidate && replica.term() == term {
                        if let Ok(Response::Vote { term, granted }) = client.call(&request).await {
                            return Some((term, granted));
                        }
                        sleep(replica.config.heartbeat / 5).await;
                    }
                    None
                }
            })
            .collect();
        let mut votes = 1;
        let patience = Duration::from_millis(self.config.election_timeout.0);
        let count = async {
            while let Some(answer) = asks.next().await {
                let Some((theirs, granted)) = answer else {
                    continue;
                };
                if theirs > term {
                    return Some(theirs);
                }
                votes += usize::from(granted && theirs == term);
                if votes > self.cluster() / 2 {
                    break;
                }
            }
            None
        };
        if let Ok(Some(newer)) = tokio::time::timeout(patience, count).await {
            let mut disk = self.disk.lock().await;
            if newer > self.term() {
                self.adopt_term(&mut disk, newer).await?;
            }
            return Ok(());
        }
        drop(asks);
        let won = {
            let mut state = self.state.borrow_mut();
            let won = votes > self.cluster() / 2
                && state.role == Role::Candidate
                && state.hard.term == term;
            if won {
                state.role = Role::Leader;
                state.leader = Some(self.id);
                let next = state.last_index() + 1;
                state.next = self.others().map(|p| (p, next)).collect();
                state.matched = self.others().map(|p| (p, 0)).collect();
            }
            won
        };
        if won {
            tracing::info!(target: "replisim::raft", term, votes, "became leader");
            self.roles.hold(LEADER, term);
            for peer in self.others() {
                tokio::task::spawn_local(self.clone().replicate(peer, term));
            }
            // The blank entry is how a leader commits earlier terms' entries
            // safely; the planted bug commits them by counting, so it has
            // no use for one (its window: until an entry of this term, a
            // client's, reaches a majority).
            if self.bug != Some(Bug::CommitOldTermByCount) {
                tokio::task::spawn_local(self.clone().blank_entry(term));
            }
            self.advance_commit(term);
        }
        Ok(())
    }

    /// A new leader whose log got no entry of its term within a heartbeat
    /// appends a blank one, so that entries of earlier terms commit.
    async fn blank_entry(self: Rc<Self>, term: u64) {
        sleep(self.config.heartbeat).await;
        let mut disk = self.disk.lock().await;
        let entry = {
            let state = self.state.borrow();
            if !(state.role == Role::Leader && state.hard.term == term) || state.last_term() == term
            {
                return;
            }
            Entry {
                index: state.last_index() + 1,
                term,
                command: Command::Blank,
            }
        };
        if let Err(error) = disk.log.append(&entry).await {
            self.disk_failed(error);
            return;
        }
        if let Err(error) = disk.log.sync().await {
            self.disk_failed(error);
            return;
        }
        self.state.borrow_mut().push(entry);
        drop(disk);
        self.changed.send_modify(|v| *v += 1);
        self.advance_commit(term);
    }

    /// Keeps `peer`'s log in step with this leader's for as long as it
    /// leads in `term`: entries as they come, heartbeats otherwise.
    ///
    /// Appends are pipelined: up to [`RaftConfig::pipeline`] are in flight
    /// at once, each on a connection of its own, and each carries every
    /// entry from the follower's next index on (the leader advances that
    /// index only on an answer). So appends may arrive out of order, and a
    /// late one repeats entries the follower already has: Raft's follower
    /// rules make that harmless.
    async fn replicate(self: Rc<Self>, peer: usize, term: u64) {
        let mut idle: Vec<RpcClient<Request, Response>> = (0..self.config.pipeline.max(1))
            .map(|_| RpcClient::new(self.net.clone(), self.peers[peer].clone(), self.config.rpc))
            .collect();
        let mut in_flight = FuturesUnordered::new();
        let mut changed = self.changed.subscribe();
        // Something to send as soon as a connection is free; otherwise the
        // next send (a heartbeat, or a retry after a failure) is at `wake`.
        let mut due = true;
        let mut wake = Instant::now(); // determinism-ok: simulated time
        while self.is_leader_of(term) {
            if due && let Some(mut client) = idle.pop() {
                let request = self.append_request(peer, term);
                changed.mark_unchanged();
                due = false;
                wake = Instant::now() + self.config.heartbeat; // determinism-ok: simulated time
                in_flight.push(async move {
                    let response = client.call(&request).await;
                    (client, response)
                });
                continue;
            }
            tokio::select! {
                Some((client, response)) = in_flight.next() => {
                    idle.push(client);
                    match self.answered(peer, term, response).await {
                        Answered::Stop => return,
                        Answered::More => due = true,
                        Answered::Done => {}
                        Answered::Failed => {
                            // Unreachable, refused or timed out: retry after a beat.
                            let retry = Instant::now() + self.config.heartbeat / 5; // determinism-ok: simulated time
                            wake = wake.min(retry);
                        }
                    }
                }
                Ok(()) = changed.changed(), if !due => due = true,
                () = sleep_until(wake), if !due => due = true,
            }
        }
    }

    /// The `AppendEntries` for `peer`: a batch from its next index on.
    fn append_request(&self, peer: usize, term: u64) -> Request {
        let state = self.state.borrow();
        let next = state.next[&peer];
        let prev_index = next - 1;
        let upto = (prev_index as usize + self.config.batch).min(state.entries().len());
        Request::Append(AppendEntries {
            term,
            leader: self.id,
            prev_index,
            prev_term: state.term_at(prev_index),
            entries: state.entries()[prev_index as usize..upto].to_vec(),
            commit: state.commit,
        })
    }

    /// Takes `peer`'s answer to an append: its match and next index, a
    /// newer term (this leader steps down), or a failure.
    async fn answered(
        self: &Rc<Self>,
        peer: usize,
        term: u64,
        response: Result<Response, crate::net::NetError>,
    ) -> Answered {
        let Ok(Response::Append {
            term: theirs,
            ok,
            last_index,
        }) = response
        else {
            return Answered::Failed;
        };
        if theirs > term {
            let mut disk = self.disk.lock().await;
            if theirs > self.term()
                && let Err(error) = self.adopt_term(&mut disk, theirs).await
            {
                self.disk_failed(error);
            }
            return Answered::Stop;
        }
        if !self.is_leader_of(term) {
            return Answered::Stop;
        }
        let more = {
            let mut state = self.state.borrow_mut();
            let next = state.next[&peer];
            if ok {
                let matched = state.matched[&peer].max(last_index);
                state.matched.insert(peer, matched);
                state.next.insert(peer, matched + 1);
                matched < state.last_index()
            } else {
                // Back off toward the follower's log; at index 1
                // already, wait for the next beat.
                let back = (last_index + 1).min(next.saturating_sub(1)).max(1);
                state.next.insert(peer, back);
                back < next
            }
        };
        if ok {
            self.advance_commit(term);
        }
        if more { Answered::More } else { Answered::Done }
    }

    /// Moves the leader's commit index as far as the commit rule allows,
    /// and applies.
    fn advance_commit(self: &Rc<Self>, term: u64) {
        let any_term = self.bug == Some(Bug::CommitOldTermByCount);
        let (from, to, applied) = {
            let mut state = self.state.borrow_mut();
            if !(state.role == Role::Leader && state.hard.term == term) {
                return;
            }
            let from = state.commit;
            let to = state.commit_target(self.id, self.cluster(), any_term);
            state.commit = to;
            state.apply_committed();
            (from, to, state.applied())
        };
        for index in from + 1..=to {
            tracing::info!(target: "replisim::raft", index, term, "committed index");
        }
        if to > from {
            // Its own term's entry committed: this leader's commit point is
            // known, and with it its state.
            self.publish();
            self.applied.send_replace(applied);
            self.changed.send_modify(|v| *v += 1);
        }
    }
}
