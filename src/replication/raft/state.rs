//! A Raft replica's state in memory, and the rules that need no I/O: the
//! log up-to-date check, the commit rule, applying committed entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::messages::{Command, Entry};
use crate::{
    history::Completion,
    node::{LogEntry, PublishedLog},
    replication::kv::{KvMachine, RequestId},
};

/// What must be durable before a replica acts on it (Raft's persistent
/// state besides the log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hard {
    pub term: u64,
    pub voted_for: Option<usize>,
}

impl Hard {
    /// `term`, with no vote yet.
    pub fn of(term: u64) -> Self {
        Hard {
            term,
            voted_for: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

pub struct State {
    pub hard: Hard,
    pub role: Role,
    /// The leader of the current term, once known.
    pub leader: Option<usize>,
    log: Vec<Entry>,
    /// The log as the log-agreement check reads it, kept alongside (the
    /// harness reads it at every step).
    shown: Vec<LogEntry>,
    pub commit: u64,
    applied: u64,
    machine: KvMachine,
    /// Entries a client waits for, with the request they hold.
    waiting: BTreeMap<u64, RequestId>,
    /// Results of waited-for entries, once applied.
    results: BTreeMap<u64, Completion>,
    /// The leader's view of each follower's log: the next index to send and
    /// the highest index known to match.
    pub next: BTreeMap<usize, u64>,
    pub matched: BTreeMap<usize, u64>,
}

impl State {
    /// A replica that recovered `hard` and `log` from its disk: a follower,
    /// nothing known committed.
    pub fn recovered(hard: Hard, log: Vec<Entry>) -> Self {
        State {
            hard,
            role: Role::Follower,
            leader: None,
            shown: log.iter().map(shown).collect(),
            log,
            commit: 0,
            applied: 0,
            machine: KvMachine::default(),
            waiting: BTreeMap::new(),
            results: BTreeMap::new(),
            next: BTreeMap::new(),
            matched: BTreeMap::new(),
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.log
    }

    /// Appends `entry` (the next index) to the log in memory.
    pub fn push(&mut self, entry: Entry) {
        self.shown.push(shown(&entry));
        self.log.push(entry);
    }

    pub fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    /// The term of the entry at `index` (0 for index 0 or past the end).
    pub fn term_at(&self, index: u64) -> u64 {
        match index {
            0 => 0,
            i => self.log.get(i as usize - 1).map_or(0, |e| e.term),
        }
    }

    pub fn last_term(&self) -> u64 {
        self.term_at(self.last_index())
    }

    /// Raft's election restriction: a candidate's log is at least as
    /// up-to-date as ours (higher last term, or the same and as long).
    pub fn up_to_date(&self, last_term: u64, last_index: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// The highest index a leader may commit with `cluster` replicas: held
    /// by a majority (this leader included) and, unless `any_term`, written
    /// in the current term (Raft §5.4.2; the leader's own entries imply the
    /// earlier ones).
    pub fn commit_target(&self, me: usize, cluster: usize, any_term: bool) -> u64 {
        let majority = cluster / 2 + 1;
        (self.commit + 1..=self.last_index())
            .rev()
            .find(|&n| {
                let holders = 1 + self
                    .matched
                    .iter()
                    .filter(|&(&peer, &m)| peer != me && m >= n)
                    .count();
                holders >= majority && (any_term || self.term_at(n) == self.hard.term)
            })
            .unwrap_or(self.commit)
    }

    /// Waits for entry `index`, which holds `request`.
    pub fn wait_for(&mut self, index: u64, request: RequestId) {
        self.waiting.insert(index, request);
    }

    /// The result of entry `index` once applied: `None` before; an `info`
    /// when another entry took its place.
    pub fn take_result(&mut self, index: u64) -> Option<Completion> {
        self.results.remove(&index)
    }

    /// The result a request already applied would get again, if it was.
    pub fn duplicate_result(&self, request: RequestId) -> Option<Completion> {
        self.machine.duplicate_result(request)
    }

    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies every committed entry not applied yet.
    pub fn apply_committed(&mut self) {
        while self.applied < self.commit.min(self.last_index()) {
            let entry = &self.log[self.applied as usize];
            let result = match &entry.command {
                Command::Blank => None,
                Command::Client { op, request } => {
                    Some((self.machine.apply(*request, op), request))
                }
            };
            let index = entry.index;
            if let Some(waited) = self.waiting.remove(&index) {
                let result = match result {
                    Some((result, request)) if *request == waited => result,
                    _ => Completion::Info("another leader's entry took its place".into()),
                };
                self.results.insert(index, result);
            }
            self.applied += 1;
        }
    }

    /// Drops the entries after `len` (never committed ones: the caller
    /// checks); the clients waiting for them learn it.
    pub fn truncate(&mut self, len: u64) {
        self.log.truncate(len as usize);
        self.shown.truncate(len as usize);
        let gone: Vec<u64> = self.waiting.range(len + 1..).map(|(&i, _)| i).collect();
        for index in gone {
            self.waiting.remove(&index);
            self.results.insert(
                index,
                Completion::Info("the entry was replaced by another leader's".into()),
            );
        }
        if self.applied > len {
            // Only a planted bug truncates applied entries: rebuild.
            self.machine = KvMachine::default();
            self.applied = 0;
            self.commit = self.commit.min(len);
            self.apply_committed();
        }
    }

    /// The store's contents, for the convergence check.
    pub fn snapshot(&self) -> crate::check::convergence::ReplicaState {
        self.machine.store().snapshot()
    }

    /// The log as the log-agreement check reads it.
    pub fn published(&self) -> PublishedLog {
        PublishedLog {
            entries: self.shown.clone(),
            commit: self.commit,
        }
    }
}

/// `entry` as the log-agreement check reads it.
fn shown(entry: &Entry) -> LogEntry {
    let command = serde_json::to_vec(&entry.command).unwrap_or_default();
    LogEntry::new(entry.index, entry.term, &command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn entry(index: u64, term: u64, seq: u64) -> Entry {
        Entry {
            index,
            term,
            command: Command::Client {
                op: Op::Append {
                    key: "k".into(),
                    value: format!("{seq};"),
                },
                request: RequestId { client: 1, seq },
            },
        }
    }

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        let state = State::recovered(Hard::default(), vec![entry(1, 1, 1), entry(2, 2, 2)]);
        assert!(state.up_to_date(2, 2));
        assert!(state.up_to_date(3, 1), "a later last term wins");
        assert!(!state.up_to_date(2, 1), "same term, shorter");
        assert!(!state.up_to_date(1, 9), "an earlier last term loses");
    }

    /// Figure 8 of the Raft paper: an entry of an earlier term on a
    /// majority is not committed by counting; one of the current term is.
    #[test]
    fn only_current_term_entries_commit_by_counting() {
        let hard = Hard {
            term: 4,
            voted_for: Some(0),
        };
        let mut state = State::recovered(hard, vec![entry(1, 1, 1), entry(2, 2, 2)]);
        state.matched.extend([(1, 2), (2, 0), (3, 0), (4, 0)]);
        state.matched.insert(2, 2);
        assert_eq!(state.commit_target(0, 5, false), 0);
        assert_eq!(state.commit_target(0, 5, true), 2, "the planted bug");
        state.push(entry(3, 4, 3));
        state.matched.extend([(1, 3), (2, 3)]);
        assert_eq!(state.commit_target(0, 5, false), 3);
    }

    #[test]
    fn waiting_clients_learn_when_their_entry_is_replaced() {
        let mut state = State::recovered(Hard::default(), vec![entry(1, 1, 1)]);
        state.wait_for(1, RequestId { client: 1, seq: 1 });
        state.push(entry(2, 1, 2));
        state.wait_for(2, RequestId { client: 1, seq: 2 });
        state.truncate(1);
        assert!(matches!(state.take_result(2), Some(Completion::Info(_))));
        state.commit = 1;
        state.apply_committed();
        assert_eq!(state.take_result(1), Some(Completion::Ok(None)));
        assert_eq!(state.published().commit, 1);
    }
}
