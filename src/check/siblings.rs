//! Durability of multi-value registers, whose reads return every
//! concurrent value (siblings) and whose writes name the versions they
//! supersede (Dynamo's contexts): every acknowledged write is among the
//! final siblings of its key, or causally superseded by a write whose
//! context included it.
//!
//! A write's context is read from the history, as a client of such a
//! store builds it: everything its client had observed on that key before
//! invoking it, that is, its own earlier acknowledged writes and the
//! values its earlier `ok` reads returned, each with that write's own
//! context (so the relation is transitive). A client that sends a context
//! it learned from an operation it reported as failed or indeterminate,
//! or a store that widens a version's context on its own, supersedes
//! writes this rule does not excuse: such a write is reported lost.
//!
//! An acknowledged write survives when its value is among the final
//! read's values, or in the context of one of them. A key whose final
//! read failed makes the verdict `unknown`.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Verdict,
    durability::{LostWrite, LostWrites, verdict},
};
use crate::history::{Op, Operation};

/// Checks `ops` (the whole history) against the final reads, as
/// operations with their siblings.
pub fn durability(ops: &[Operation], final_reads: &[Operation]) -> Verdict<LostWrites> {
    let contexts = contexts(ops);
    let mut finals: BTreeMap<&str, &Operation> = BTreeMap::new();
    for read in final_reads.iter().filter(|r| r.is_ok()) {
        finals.insert(read.op.key(), read);
    }
    let mut lost = Vec::new();
    let mut unknown = None;
    for (i, w) in ops.iter().enumerate() {
        let Op::Write { key, .. } = &w.op else {
            continue;
        };
        if !w.is_ok() {
            continue;
        }
        let Some(last) = finals.get(key.as_str()) else {
            unknown.get_or_insert(format!("the final read of {key} did not succeed"));
            continue;
        };
        let survives = last.values().into_iter().flatten().any(|value| {
            contexts
                .writes
                .get(&(key.as_str(), value))
                .is_some_and(|&live| live == i || contexts.of[live].contains(&i))
        });
        if !survives {
            let shown: Vec<&str> = last.values().into_iter().flatten().collect();
            lost.push(LostWrite::new(w, Some(shown.join(" | "))));
        }
    }
    verdict(lost, unknown)
}

/// Every write's context: the indices (into the operations) of the
/// writes its client had observed on its key.
struct Contexts<'a> {
    /// The write of each (key, value).
    writes: BTreeMap<(&'a str, &'a str), usize>,
    /// Per operation, its context (empty but for writes).
    of: Vec<BTreeSet<usize>>,
}

fn contexts(ops: &[Operation]) -> Contexts<'_> {
    let mut writes = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        if let Op::Write { key, value } = &o.op {
            writes.insert((key.as_str(), value.as_str()), i);
        }
    }
    // A write's context is fixed when it is invoked; what an operation
    // observed is learned when it completes. Every write a read returned
    // was invoked before that read completed, so its context is known by
    // then (a process has one operation at a time: at a tie, its
    // completion comes before its next invocation).
    let mut steps: Vec<(u64, bool, usize)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        steps.push((o.invoke_time, true, i));
        if let (true, Some(done)) = (o.is_ok(), o.complete_time) {
            steps.push((done, false, i));
        }
    }
    steps.sort();
    let mut of = vec![BTreeSet::new(); ops.len()];
    // What each (process, key) has observed so far.
    let mut observed: BTreeMap<(u64, &str), BTreeSet<usize>> = BTreeMap::new();
    for (_, invoked, i) in steps {
        let o = &ops[i];
        let key = o.op.key();
        if invoked {
            if matches!(o.op, Op::Write { .. }) {
                of[i] = observed.get(&(o.process, key)).cloned().unwrap_or_default();
            }
            continue;
        }
        let learned: Vec<usize> = match &o.op {
            Op::Write { .. } => vec![i],
            Op::Read { .. } => o
                .values()
                .into_iter()
                .flatten()
                .filter_map(|value| writes.get(&(key, value)).copied())
                .collect(),
            _ => Vec::new(),
        };
        for w in learned {
            let inherited = of[w].clone();
            let seen = observed.entry((o.process, key)).or_default();
            seen.insert(w);
            seen.extend(inherited);
        }
    }
    Contexts { writes, of }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_history::{info, ok, read, run};
    use crate::history::{Completion, History};

    fn write(h: &mut History, p: u64, t: (u64, u64), value: &str) {
        crate::check::test_history::write(h, p, t, value, ok());
    }

    fn final_read(h: &mut History, t: (u64, u64), values: &[&str]) -> Vec<Operation> {
        let op = Op::Read {
            key: "k".into(),
            value: None,
        };
        let completion = match values {
            [] => Completion::Ok(None),
            [one] => Completion::Ok(Some(one.to_string())),
            many => Completion::Siblings(many.iter().map(|v| v.to_string()).collect()),
        };
        run(h, 9, t, op, completion);
        h.operations()
            .into_iter()
            .filter(|o| o.process == 9)
            .collect()
    }

    #[test]
    fn concurrent_writes_must_all_be_siblings() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a");
        write(&mut h, 1, (1, 3), "b");
        let both = final_read(&mut h.clone(), (10, 11), &["a", "b"]);
        assert!(durability(&h.operations(), &both).is_ok());
        let one = final_read(&mut h, (10, 11), &["b"]);
        let Verdict::Violation(lost) = durability(&h.operations(), &one) else {
            panic!("a was dropped without a write that saw it");
        };
        assert_eq!(lost.lost.len(), 1);
        assert_eq!(lost.lost[0].process, 0);
    }

    #[test]
    fn a_write_after_reading_siblings_supersedes_them() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a");
        write(&mut h, 1, (1, 3), "b");
        let op = Op::Read {
            key: "k".into(),
            value: None,
        };
        run(
            &mut h,
            2,
            (4, 5),
            op,
            Completion::Siblings(vec!["a".into(), "b".into()]),
        );
        write(&mut h, 2, (6, 7), "c");
        let last = final_read(&mut h, (10, 11), &["c"]);
        assert!(durability(&h.operations(), &last).is_ok());
    }

    #[test]
    fn a_clients_own_writes_and_their_contexts_are_superseded_transitively() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a");
        read(&mut h, 1, (3, 4), "k", Some("a"));
        write(&mut h, 1, (5, 6), "b");
        write(&mut h, 1, (7, 8), "c");
        let last = final_read(&mut h, (10, 11), &["c"]);
        assert!(durability(&h.operations(), &last).is_ok());
    }

    #[test]
    fn what_an_indeterminate_write_saw_is_not_excused_by_it() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a");
        let op = Op::Write {
            key: "k".into(),
            value: "b".into(),
        };
        run(&mut h, 1, (3, 4), op, info());
        let last = final_read(&mut h, (10, 11), &["b"]);
        assert!(
            durability(&h.operations(), &last).is_violation(),
            "process 1 never saw a"
        );
    }

    #[test]
    fn a_failed_final_read_is_unknown() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a");
        assert!(matches!(
            durability(&h.operations(), &[]),
            Verdict::Unknown(_)
        ));
    }
}
