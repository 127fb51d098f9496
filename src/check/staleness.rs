//! Staleness: reads that missed a write acknowledged before they were
//! invoked (`no-stale-read`), the same restricted to each client's own
//! writes (`read-your-writes`), and how much they missed ([`Staleness`]:
//! the probabilistically bounded staleness of a weak quorum, as numbers).
//!
//! Judged over registers (reads, writes, appends, compare-and-sets; a
//! history with other operations answers `unknown`). A read `r` of key
//! `k` returned its values (its value and its siblings, see
//! [`crate::history::Completion::Siblings`]). An acknowledged mutation `w`
//! of `k` that completed before `r` was invoked is *missed* by `r` when
//! none of `r`'s values reflects it (a write's or compare-and-set's value,
//! followed only by appended tokens; an append's token anywhere) and none
//! reflects an overwrite that may have followed `w` (completed `ok` or
//! indeterminate, and not before `w` was invoked): durability's rule for
//! the final read ([`super::durability`]), applied to every read as it
//! was invoked. A linearizable history has no stale read.
//!
//! How much a stale read missed: the number of acknowledged versions it
//! missed, and how long before its invocation the first of them was
//! acknowledged (simulated time).
//!
//! These checks take the clients' operations, without the final reads
//! (whose misses are durability's business).

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::{Verdict, durability::may_follow};
use crate::history::{Op, Operation};

/// One read that missed acknowledged writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleRead {
    pub process: u64,
    pub key: String,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    /// Every value it returned (`None`: the key read as unset).
    pub values: Vec<Option<String>>,
    /// How many acknowledged writes it missed.
    pub missed: usize,
    /// How long before the read was invoked the first of them was
    /// acknowledged.
    pub behind_ns: u64,
    /// The last acknowledged of the writes it missed.
    pub newest_missed: Op,
}

impl fmt::Display for StaleRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} read {} at {:.3} ms and got {:?}: missed {} acknowledged write(s), the first acknowledged {:.3} ms before, the last {:?}",
            self.process,
            self.key,
            self.invoke_ns as f64 / 1e6,
            self.values,
            self.missed,
            self.behind_ns as f64 / 1e6,
            self.newest_missed
        )
    }
}

/// The evidence of `no-stale-read`: every stale read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleReads {
    pub reads: Vec<StaleRead>,
    pub staleness: Staleness,
}

/// How many evidence lines a report prints.
const SHOWN: usize = 3;

impl fmt::Display for StaleReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.staleness)?;
        write_examples(f, &self.reads)
    }
}

fn write_examples(f: &mut fmt::Formatter<'_>, reads: &[StaleRead]) -> fmt::Result {
    for read in reads.iter().take(SHOWN) {
        write!(f, "\n    {read}")?;
    }
    if reads.len() > SHOWN {
        write!(f, "\n    ({} more)", reads.len() - SHOWN)?;
    }
    Ok(())
}

/// The evidence of `read-your-writes`: the reads that missed their own
/// client's acknowledged writes, and how many per client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissedOwnWrites {
    /// Per client (process), how many of its reads missed its own writes.
    pub clients: BTreeMap<u64, usize>,
    pub reads: Vec<StaleRead>,
}

impl fmt::Display for MissedOwnWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_client: Vec<String> = self
            .clients
            .iter()
            .map(|(process, reads)| format!("process {process} in {reads} read(s)"))
            .collect();
        write!(
            f,
            "{} client(s) did not read their own acknowledged writes: {}",
            self.clients.len(),
            per_client.join(", ")
        )?;
        write_examples(f, &self.reads)
    }
}

/// How stale the reads of one run (or, added up, of a sweep) were.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staleness {
    /// `ok` reads judged.
    pub reads: usize,
    /// Those that missed an acknowledged write.
    pub stale: usize,
    /// Acknowledged versions missed, summed over the stale reads, and the
    /// most one read missed.
    pub versions_missed: u64,
    pub max_versions: u64,
    /// How far behind the stale reads were (ms from the first missed
    /// acknowledgement to the read's invocation), summed, and the most.
    pub behind_ms: u64,
    pub max_behind_ms: u64,
}

impl Staleness {
    fn of(reads: usize, stale: &[StaleRead]) -> Self {
        let mut staleness = Staleness {
            reads,
            ..Staleness::default()
        };
        for read in stale {
            let ms = read.behind_ns / 1_000_000;
            staleness.add(Staleness {
                reads: 0,
                stale: 1,
                versions_missed: read.missed as u64,
                max_versions: read.missed as u64,
                behind_ms: ms,
                max_behind_ms: ms,
            });
        }
        staleness
    }

    /// Adds another run's (or shard's) counts.
    pub fn add(&mut self, other: Staleness) {
        self.reads += other.reads;
        self.stale += other.stale;
        self.versions_missed += other.versions_missed;
        self.max_versions = self.max_versions.max(other.max_versions);
        self.behind_ms += other.behind_ms;
        self.max_behind_ms = self.max_behind_ms.max(other.max_behind_ms);
    }
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} reads stale", self.stale, self.reads)?;
        if self.stale > 0 {
            let stale = self.stale as f64;
            write!(
                f,
                ", missing {:.1} acknowledged versions on average ({} at most), {:.1} ms behind on average ({} ms at most)",
                self.versions_missed as f64 / stale,
                self.max_versions,
                self.behind_ms as f64 / stale,
                self.max_behind_ms
            )?;
        }
        Ok(())
    }
}

/// The operations staleness is judged over: a register's.
pub const REGISTER_OPERATIONS: [&str; 4] = ["read", "write", "append", "cas"];

/// The stale reads among `ops` and how many reads were judged, or why
/// they cannot be judged; `own` counts only the writes of the reader's
/// own client as missed (any write may still excuse a read).
fn stale_reads(ops: &[Operation], own: bool) -> Result<(usize, Vec<StaleRead>), String> {
    if let Some(other) = ops
        .iter()
        .find(|o| !REGISTER_OPERATIONS.contains(&o.op.name()))
    {
        return Err(unjudged(other.op.name()));
    }
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for o in ops {
        by_key.entry(o.op.key()).or_default().push(o);
    }
    let mut judged = 0;
    let mut stale = Vec::new();
    for key_ops in by_key.values() {
        let mutations: Vec<&Operation> = key_ops
            .iter()
            .copied()
            .filter(|o| o.op.is_mutation() && o.may_have_happened())
            .collect();
        let appends: Vec<&str> = mutations
            .iter()
            .filter_map(|o| match &o.op {
                Op::Append { value, .. } => Some(value.as_str()),
                _ => None,
            })
            .collect();
        for r in key_ops
            .iter()
            .filter(|o| o.is_ok() && matches!(o.op, Op::Read { .. }))
        {
            judged += 1;
            if let Some(read) = missed_by(r, &mutations, &appends, own) {
                stale.push(read);
            }
        }
    }
    stale.sort_by_key(|r| (r.invoke_ns, r.process));
    Ok((judged, stale))
}

/// Why a history with `operation` is not judged.
pub fn unjudged(operation: &str) -> String {
    format!(
        "staleness is judged over registers ({}); this history has {operation}",
        REGISTER_OPERATIONS.join(", ")
    )
}

/// What read `r` missed among the key's `mutations`, if anything.
fn missed_by(
    r: &Operation,
    mutations: &[&Operation],
    appends: &[&str],
    own: bool,
) -> Option<StaleRead> {
    let values = r.values();
    let reflects = |o: &Operation| {
        values
            .iter()
            .flatten()
            .any(|v| reflected(&o.op, v, appends))
    };
    let seen_overwrites: Vec<&Operation> = mutations
        .iter()
        .copied()
        .filter(|o| !matches!(o.op, Op::Append { .. }) && reflects(o))
        .collect();
    let missed: Vec<&Operation> = mutations
        .iter()
        .copied()
        .filter(|w| w.is_ok() && w.complete_time.is_some_and(|done| done < r.invoke_time))
        .filter(|w| !own || w.process == r.process)
        .filter(|w| {
            !reflects(w)
                && !seen_overwrites
                    .iter()
                    .any(|o| !std::ptr::eq(*o, *w) && may_follow(o, w))
        })
        .collect();
    let first = missed.iter().filter_map(|w| w.complete_time).min()?;
    let newest = missed.iter().max_by_key(|w| w.complete_time)?;
    Some(StaleRead {
        process: r.process,
        key: r.op.key().to_string(),
        invoke_ns: r.invoke_time,
        complete_ns: r.complete_time.unwrap_or_default(),
        values: values.iter().map(|v| v.map(str::to_string)).collect(),
        missed: missed.len(),
        behind_ns: r.invoke_time - first,
        newest_missed: newest.op.clone(),
    })
}

/// Whether the value `v` reflects `op`: an append's token is in it; a
/// write's (or compare-and-set's) value is all of it, or its start with
/// only appended tokens after it (`appends`: the key's appended tokens).
fn reflected(op: &Op, v: &str, appends: &[&str]) -> bool {
    match op {
        Op::Append { value, .. } => v.contains(value.as_str()),
        Op::Write { value, .. } | Op::Cas { to: value, .. } => {
            v.strip_prefix(value.as_str()).is_some_and(|rest| {
                rest.is_empty() || appends.iter().any(|token| rest.starts_with(token))
            })
        }
        _ => false,
    }
}

/// `no-stale-read`: no read of `ops` (the clients', without the final
/// reads) missed a write acknowledged before it was invoked.
pub fn no_stale_read(ops: &[Operation]) -> Verdict<StaleReads> {
    match stale_reads(ops, false) {
        Err(reason) => Verdict::Unknown(reason),
        Ok((_, stale)) if stale.is_empty() => Verdict::Ok,
        Ok((judged, stale)) => Verdict::Violation(StaleReads {
            staleness: Staleness::of(judged, &stale),
            reads: stale,
        }),
    }
}

/// `read-your-writes`, per client: no read missed a write its own client
/// had acknowledged before invoking it.
pub fn read_your_writes(ops: &[Operation]) -> Verdict<MissedOwnWrites> {
    let reads = match stale_reads(ops, true) {
        Err(reason) => return Verdict::Unknown(reason),
        Ok((_, reads)) => reads,
    };
    let mut clients = BTreeMap::new();
    for read in &reads {
        *clients.entry(read.process).or_default() += 1;
    }
    match clients.is_empty() {
        true => Verdict::Ok,
        false => Verdict::Violation(MissedOwnWrites { clients, reads }),
    }
}

/// How stale the reads of `ops` were (`None` when they cannot be judged).
pub fn measure(ops: &[Operation]) -> Option<Staleness> {
    let (judged, stale) = stale_reads(ops, false).ok()?;
    Some(Staleness::of(judged, &stale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_history::{info, ok, read, run, write};
    use crate::history::{Completion, History};

    #[test]
    fn a_read_older_than_an_acknowledged_write_is_stale() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a", ok());
        write(&mut h, 0, (3, 4), "b", ok());
        read(&mut h, 1, (5, 6), "k", Some("a"));
        read(&mut h, 1, (7, 8), "k", None);
        read(&mut h, 0, (9, 10), "k", Some("b"));
        let Verdict::Violation(evidence) = no_stale_read(&h.operations()) else {
            panic!("two stale reads");
        };
        assert_eq!(evidence.reads.len(), 2);
        assert_eq!(
            (evidence.reads[0].missed, evidence.reads[0].behind_ns),
            (1, 1)
        );
        assert_eq!(
            (evidence.reads[1].missed, evidence.reads[1].behind_ns),
            (2, 5)
        );
        assert_eq!(evidence.staleness.reads, 3);
        assert_eq!(evidence.staleness.max_versions, 2);
        assert!(
            read_your_writes(&h.operations()).is_ok(),
            "process 1 wrote nothing"
        );
    }

    #[test]
    fn concurrent_and_indeterminate_overwrites_excuse_a_read() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a", ok());
        write(&mut h, 1, (1, 5), "b", info());
        read(&mut h, 2, (6, 7), "k", Some("b"));
        write(&mut h, 0, (8, 12), "c", ok());
        read(&mut h, 2, (10, 11), "k", Some("b"));
        assert!(no_stale_read(&h.operations()).is_ok());
    }

    #[test]
    fn a_client_missing_its_own_write_breaks_read_your_writes() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a", ok());
        read(&mut h, 0, (3, 4), "k", None);
        let Verdict::Violation(evidence) = read_your_writes(&h.operations()) else {
            panic!("process 0 missed its write");
        };
        assert_eq!(evidence.clients, BTreeMap::from([(0, 1)]));
        assert!(evidence.to_string().contains("process 0 in 1 read(s)"));
    }

    #[test]
    fn a_sibling_counts_as_seen_and_prefixes_are_not_values() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "c0-1", ok());
        write(&mut h, 1, (1, 2), "c1-1", ok());
        let op = Op::Read {
            key: "k".into(),
            value: None,
        };
        run(
            &mut h,
            2,
            (3, 4),
            op,
            Completion::Siblings(vec!["c0-1".into(), "c1-1".into()]),
        );
        assert!(no_stale_read(&h.operations()).is_ok());
        write(&mut h, 0, (5, 6), "c0-10", ok());
        read(&mut h, 2, (7, 8), "k", Some("c0-1"));
        read(&mut h, 2, (9, 10), "k", Some("c0-10"));
        let Verdict::Violation(evidence) = no_stale_read(&h.operations()) else {
            panic!("c0-1 is not c0-10");
        };
        assert_eq!(evidence.reads.len(), 1);
    }

    #[test]
    fn other_workloads_are_not_judged() {
        let mut h = History::default();
        let add = Op::Add {
            key: "k".into(),
            amount: 1,
        };
        run(&mut h, 0, (1, 2), add, ok());
        assert!(matches!(
            no_stale_read(&h.operations()),
            Verdict::Unknown(_)
        ));
        assert_eq!(measure(&h.operations()), None);
    }
}
