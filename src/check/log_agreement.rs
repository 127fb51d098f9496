//! Log agreement for log-based protocols: no two replicas hold different
//! entries at the same committed index.
//!
//! Each replica contributes its log, a list of `(term, entry)` (the term or
//! epoch that wrote the entry), and its commit length: the number of
//! leading entries it considers committed. Indexes are 0-based positions
//! in the log. An index is compared between every pair of replicas that
//! both committed it; uncommitted suffixes may differ freely. A replica
//! claiming more committed entries than its log holds is a violation too
//! (it would serve entries it does not have). Logs are compared from their
//! first entry; compacted prefixes are the caller's to restore or trim.
//!
//! Replicas of a simulated run publish their logs as [`PublishedLog`]s
//! (through [`crate::node::StateProbe::publish_log`]); [`check_published`]
//! judges those, naming replicas by their ids. A run also watches them as
//! it goes ([`CommittedSoFar`]): an entry once committed anywhere is never
//! replaced, even if every replica that committed it later lost it (the
//! Raft paper's figure 8 commits an entry and overwrites it before the run
//! ends); and a running replica never drops from its log an entry that is
//! committed (anywhere), even one beyond its own commit index: a
//! committed entry is the cluster's, and only a crash may take away what
//! a replica had not yet made durable.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::Verdict;

/// The first disagreement found, in index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogDisagreement {
    /// Two replicas committed different entries at `index`.
    Entry {
        index: usize,
        replica: usize,
        /// `(term, entry)` at `index` on `replica`, debug-printed.
        held: String,
        other_replica: usize,
        other_held: String,
    },
    /// `replica` claims `committed` entries but its log holds `len`.
    CommitBeyondLog {
        replica: usize,
        committed: usize,
        len: usize,
    },
    /// `replica`, running, dropped (or replaced) the entry at `index`,
    /// which it held and which was committed.
    Dropped {
        index: usize,
        replica: usize,
        /// `(term, entry)` it held there, debug-printed.
        held: String,
    },
}

impl fmt::Display for LogDisagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogDisagreement::Entry {
                index,
                replica,
                held,
                other_replica,
                other_held,
            } => write!(
                f,
                "committed index {index} differs: replica {replica} holds {held}, replica {other_replica} holds {other_held}"
            ),
            LogDisagreement::CommitBeyondLog {
                replica,
                committed,
                len,
            } => write!(
                f,
                "replica {replica} claims {committed} committed entries but its log holds {len}"
            ),
            LogDisagreement::Dropped {
                index,
                replica,
                held,
            } => write!(
                f,
                "replica {replica} dropped committed index {index} ({held}) from its log while running"
            ),
        }
    }
}

/// One entry of a replica's log as it publishes it: its index (from 1),
/// the term (or epoch) that wrote it, and a digest of its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    pub digest: u64,
}

impl LogEntry {
    /// The entry at `index`, written in `term`, whose command encodes as
    /// `command` (any stable encoding: only equality of digests matters).
    pub fn new(index: u64, term: u64, command: &[u8]) -> Self {
        LogEntry {
            index,
            term,
            digest: xxhash_rust::xxh3::xxh3_64(command),
        }
    }
}

/// A replica's whole log, from index 1, and how many of its leading
/// entries it considers committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedLog {
    pub entries: Vec<LogEntry>,
    pub commit: u64,
}

/// Checks the logs replicas published, by replica id: `unknown` when none
/// did, or when a log does not run from index 1 without gaps.
pub fn check_published(logs: &BTreeMap<usize, PublishedLog>) -> Verdict<LogDisagreement> {
    if logs.is_empty() {
        return Verdict::Unknown("no replica published its log".into());
    }
    let ids: Vec<usize> = logs.keys().copied().collect();
    let mut entries = Vec::with_capacity(logs.len());
    for (&id, log) in logs {
        if let Some((position, entry)) = (1..)
            .zip(&log.entries)
            .find(|(position, entry)| entry.index != *position)
        {
            return Verdict::Unknown(format!(
                "replica-{id} published entry {} at position {position}",
                entry.index
            ));
        }
        entries.push(log.entries.iter().map(|e| (e.term, e.digest)).collect());
    }
    let committed: Vec<usize> = logs.values().map(|log| log.commit as usize).collect();
    check_log_agreement(&entries, &committed).map(|evidence| match evidence {
        LogDisagreement::Entry {
            index,
            replica,
            held,
            other_replica,
            other_held,
        } => LogDisagreement::Entry {
            index,
            replica: ids[replica],
            held,
            other_replica: ids[other_replica],
            other_held,
        },
        LogDisagreement::CommitBeyondLog {
            replica,
            committed,
            len,
        } => LogDisagreement::CommitBeyondLog {
            replica: ids[replica],
            committed,
            len,
        },
        dropped @ LogDisagreement::Dropped { .. } => dropped,
    })
}

/// Checks that committed entries agree; `committed[r]` is replica `r`'s
/// commit length. Unequal slice lengths give `Unknown`.
pub fn check_log_agreement<T: Eq + fmt::Debug>(
    logs: &[Vec<(u64, T)>],
    committed: &[usize],
) -> Verdict<LogDisagreement> {
    if logs.len() != committed.len() {
        return Verdict::Unknown(format!(
            "{} logs but {} commit lengths",
            logs.len(),
            committed.len()
        ));
    }
    for (replica, (log, &c)) in logs.iter().zip(committed).enumerate() {
        if c > log.len() {
            return Verdict::Violation(LogDisagreement::CommitBeyondLog {
                replica,
                committed: c,
                len: log.len(),
            });
        }
    }
    let longest = committed.iter().copied().max().unwrap_or(0);
    for index in 0..longest {
        let mut holders = (0..logs.len()).filter(|&r| committed[r] > index);
        let Some(first) = holders.next() else {
            continue;
        };
        let expected = &logs[first][index];
        if let Some(other) = holders.find(|&r| logs[r][index] != *expected) {
            return Verdict::Violation(LogDisagreement::Entry {
                index,
                replica: first,
                held: format!("{expected:?}"),
                other_replica: other,
                other_held: format!("{:?}", logs[other][index]),
            });
        }
    }
    Verdict::Ok
}

/// The entries committed so far in a run, as replicas' published logs
/// showed them at each step: the first replica to commit each index, and
/// the first time another committed something else there.
#[derive(Debug, Clone, Default)]
pub struct CommittedSoFar {
    /// By position: the entry first seen committed there, and by whom.
    entries: Vec<(LogEntry, usize)>,
    /// By replica: how many of `entries` its log held, in this life of
    /// the replica (since it last started).
    held: BTreeMap<usize, usize>,
    violation: Option<LogDisagreement>,
}

impl CommittedSoFar {
    /// Takes `replica`'s log as it is now (a log not running from index 1
    /// without gaps is left to [`check_published`] to call unknown).
    pub fn observe(&mut self, replica: usize, log: &PublishedLog) {
        if self.violation.is_some() {
            return;
        }
        let committed = log.entries.iter().take(log.commit as usize);
        for (position, entry) in committed.enumerate() {
            match self.entries.get(position) {
                None => self.entries.push((*entry, replica)),
                Some((seen, by)) if !same(seen, entry) => {
                    self.violation = Some(LogDisagreement::Entry {
                        index: position,
                        replica: *by,
                        held: format!("{:?}", (seen.term, seen.digest)),
                        other_replica: replica,
                        other_held: format!("{:?}", (entry.term, entry.digest)),
                    });
                    return;
                }
                Some(_) => {}
            }
        }
        self.still_holds(replica, log);
    }

    /// The replica stopped (crashed or lost): what it held unsynced may
    /// be gone when it starts again.
    pub fn stopped(&mut self, replica: usize) {
        self.held.remove(&replica);
    }

    /// Checks that `replica` still holds the committed entries it held at
    /// the last step (a log is cut or replaced from some index on, so the
    /// last one held tells), then counts those it holds now.
    fn still_holds(&mut self, replica: usize, log: &PublishedLog) {
        if log.entries.first().is_some_and(|e| e.index != 1) {
            return;
        }
        let held = self.held.entry(replica).or_default();
        if let Some(last) = held.checked_sub(1) {
            let (committed, _) = &self.entries[last];
            if !log.entries.get(last).is_some_and(|e| same(e, committed)) {
                self.violation = Some(LogDisagreement::Dropped {
                    index: last,
                    replica,
                    held: format!("{:?}", (committed.term, committed.digest)),
                });
                return;
            }
        }
        while let (Some((committed, _)), Some(entry)) =
            (self.entries.get(*held), log.entries.get(*held))
        {
            if !same(committed, entry) {
                break;
            }
            *held += 1;
        }
    }

    /// The first committed entry replaced or dropped during the run, if any.
    pub fn violation(&self) -> Option<&LogDisagreement> {
        self.violation.as_ref()
    }
}

fn same(a: &LogEntry, b: &LogEntry) -> bool {
    (a.term, a.digest) == (b.term, b.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_prefixes_must_agree() {
        let a = vec![(1, "x"), (1, "y"), (2, "z")];
        let b = vec![(1, "x"), (1, "y"), (3, "w")];
        let logs = [a, b];
        let cases: [(&[usize], Verdict<LogDisagreement>); 4] = [
            (&[2, 2], Verdict::Ok),
            (&[3, 2], Verdict::Ok),
            (
                &[3, 3],
                Verdict::Violation(LogDisagreement::Entry {
                    index: 2,
                    replica: 0,
                    held: "(2, \"z\")".into(),
                    other_replica: 1,
                    other_held: "(3, \"w\")".into(),
                }),
            ),
            (
                &[4, 0],
                Verdict::Violation(LogDisagreement::CommitBeyondLog {
                    replica: 0,
                    committed: 4,
                    len: 3,
                }),
            ),
        ];
        for (committed, expected) in cases {
            assert_eq!(
                check_log_agreement(&logs, committed),
                expected,
                "{committed:?}"
            );
        }
        assert!(matches!(
            check_log_agreement(&logs, &[1]),
            Verdict::Unknown(_)
        ));
    }

    /// A published log of `(term, command)` entries from index 1.
    fn log(terms: &[(u64, &str)], commit: u64) -> PublishedLog {
        PublishedLog {
            entries: (1..)
                .zip(terms)
                .map(|(i, (t, c))| LogEntry::new(i, *t, c.as_bytes()))
                .collect(),
            commit,
        }
    }

    #[test]
    fn published_logs_are_judged_by_replica_id() {
        let mut logs = BTreeMap::new();
        assert!(matches!(check_published(&logs), Verdict::Unknown(_)));
        logs.insert(2, log(&[(1, "a"), (1, "b")], 2));
        logs.insert(4, log(&[(1, "a"), (2, "c")], 1));
        assert_eq!(check_published(&logs), Verdict::Ok);
        logs.get_mut(&4).unwrap().commit = 2;
        let Verdict::Violation(LogDisagreement::Entry {
            index,
            replica,
            other_replica,
            ..
        }) = check_published(&logs)
        else {
            panic!("a committed disagreement must be found");
        };
        assert_eq!((index, replica, other_replica), (1, 2, 4));
        logs.get_mut(&4).unwrap().entries.remove(0);
        assert!(matches!(check_published(&logs), Verdict::Unknown(_)));
    }

    /// A running replica that cuts a committed entry off its log, even one
    /// beyond its own commit index, is caught that step; one that stopped
    /// in between (a crash took what it had not synced) is not.
    #[test]
    fn a_running_replica_never_drops_a_committed_entry() {
        let mut seen = CommittedSoFar::default();
        seen.observe(0, &log(&[(1, "a"), (1, "b")], 2));
        seen.observe(1, &log(&[(1, "a"), (1, "b")], 1));
        seen.stopped(1);
        seen.observe(1, &log(&[(1, "a")], 1));
        seen.observe(1, &log(&[(1, "a"), (1, "b"), (1, "c")], 1));
        assert_eq!(seen.violation(), None);
        seen.observe(1, &log(&[(1, "a")], 1));
        assert!(
            matches!(
                seen.violation(),
                Some(LogDisagreement::Dropped {
                    index: 1,
                    replica: 1,
                    ..
                })
            ),
            "{:?}",
            seen.violation()
        );
    }

    /// An index committed by one replica, then by another with another
    /// entry (the first having lost it meanwhile), is a violation.
    #[test]
    fn entries_committed_during_the_run_are_never_replaced() {
        let mut seen = CommittedSoFar::default();
        seen.observe(0, &log(&[(1, "a"), (2, "x")], 2));
        seen.observe(1, &log(&[(1, "a"), (3, "y")], 1));
        seen.stopped(0);
        seen.observe(0, &log(&[(1, "a")], 1));
        assert_eq!(seen.violation(), None);
        seen.observe(1, &log(&[(1, "a"), (3, "y")], 2));
        let Some(LogDisagreement::Entry {
            index,
            replica,
            other_replica,
            ..
        }) = seen.violation()
        else {
            panic!("a replaced committed entry must be found");
        };
        assert_eq!((*index, *replica, *other_replica), (1, 0, 1));
    }
}
