//! Checkers of set histories: `insert` and `remove` of an element, and
//! `read` (the elements as a sorted JSON array of strings, `["a","b"]`;
//! an unset set reads as `null`, the empty set).
//!
//! This module owns the [`SetModel`] model and the set's two checks:
//!
//! - [`linearizability`]: each key on its own against [`SetModel`], with Jepsen
//!   semantics: an `ok` insert or remove took effect in its interval, an
//!   indeterminate one (`info`, or never completed) may take effect any
//!   time after its call or never, a failed one is dropped; an `ok` read
//!   must see exactly the set's elements, other reads are dropped. A read
//!   listing an element twice matches no set.
//! - [`durability()`]: every element inserted `ok` is in the final set,
//!   unless a remove of it may have followed the insert. For an
//!   eventually consistent set this is add-wins: an insert that every
//!   remove of its element preceded, or overlapped without being able to
//!   follow it, must survive them (an add-wins OR-Set keeps it; a
//!   remove-wins set, or a join that drops concurrent inserts, does not).

use std::collections::{BTreeMap, BTreeSet};

use super::Verdict;
use super::durability::{self, LostWrite};
use super::explain::NonLinearizable;
use super::linearizable::{SearchLimits, check_per_key};
use super::model::{Model, Values};
use crate::history::{Op, Operation};

/// A set of strings, initially empty; elements are interned per key.
#[derive(Debug, Clone, Default)]
pub struct SetModel {
    pub elements: Values,
}

/// A set operation with its observed outcome; elements are indexes into
/// the model's [`SetModel::elements`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetOp {
    Insert(u32),
    Remove(u32),
    /// A read that returned these elements, sorted by index.
    Read(Vec<u32>),
}

impl SetModel {
    /// The elements, sorted as strings, as a JSON array.
    fn describe(&self, ids: &[u32]) -> String {
        let mut names: Vec<&str> = ids.iter().map(|&id| self.elements.get(id)).collect();
        names.sort_unstable();
        serde_json::to_string(&names).unwrap_or_default()
    }
}

impl Model for SetModel {
    /// The elements' indexes, sorted and distinct.
    type State = Vec<u32>;
    type Op = SetOp;

    fn init(&self) -> Vec<u32> {
        Vec::new()
    }

    fn step(&self, state: &Vec<u32>, op: &SetOp) -> Option<Vec<u32>> {
        let mut next = state.clone();
        match op {
            SetOp::Insert(e) => {
                if let Err(at) = state.binary_search(e) {
                    next.insert(at, *e);
                }
            }
            SetOp::Remove(e) => {
                if let Ok(at) = state.binary_search(e) {
                    next.remove(at);
                }
            }
            SetOp::Read(elements) => return (elements == state).then_some(next),
        }
        Some(next)
    }

    fn describe_op(&self, op: &SetOp) -> String {
        match op {
            SetOp::Insert(e) => format!("insert {:?}", self.elements.get(*e)),
            SetOp::Remove(e) => format!("remove {:?}", self.elements.get(*e)),
            SetOp::Read(elements) => format!("read -> {}", self.describe(elements)),
        }
    }

    fn describe_state(&self, state: &Vec<u32>) -> String {
        self.describe(state)
    }

    fn is_read_only(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_))
    }

    fn heap_bytes(&self, state: &Vec<u32>) -> usize {
        state.capacity() * size_of::<u32>()
    }
}

/// The elements a set read returned (`None`: unset, the empty set).
fn parse_elements(read: Option<&str>) -> Result<Vec<String>, String> {
    read.map_or(Ok(Vec::new()), |text| {
        serde_json::from_str(text)
            .map_err(|e| format!("set value {text:?} is not a JSON array of strings ({e})"))
    })
}

/// Checks the set operations of `ops` (inserts, removes and reads; other
/// operations are skipped), key by key. The first violating key wins and
/// its evidence names it; indexes refer to `ops`. A read result that is
/// not a JSON array of strings makes the verdict unknown.
pub fn linearizability(ops: &[Operation], limits: &SearchLimits) -> Verdict<NonLinearizable> {
    check_per_key(ops, limits, SetModel::default, |set, o| {
        Ok(match &o.op {
            Op::Insert { element, .. } => Some(SetOp::Insert(set.elements.intern(element))),
            Op::Remove { element, .. } => Some(SetOp::Remove(set.elements.intern(element))),
            Op::Read { .. } => {
                let elements = parse_elements(o.result.as_deref())?;
                let mut ids: Vec<u32> = elements.iter().map(|e| set.elements.intern(e)).collect();
                ids.sort_unstable();
                Some(SetOp::Read(ids))
            }
            _ => None,
        })
    })
}

/// Checks that no acknowledged insert is lost: an element inserted `ok`
/// must be in its key's final set (`final_reads`: key to value; absent
/// keys' reads failed, which makes the verdict unknown), unless a remove
/// of that element, `ok` or indeterminate, may have followed the insert
/// (it did not complete before the insert was invoked). Each lost insert
/// is a [`LostWrite`].
pub fn durability(
    ops: &[Operation],
    final_reads: &BTreeMap<String, Option<String>>,
) -> Verdict<durability::LostWrites> {
    let mut removes: BTreeMap<(&str, &str), Vec<&Operation>> = BTreeMap::new();
    for o in ops {
        if let Op::Remove { key, element } = &o.op {
            removes.entry((key, element)).or_default().push(o);
        }
    }
    let mut finals = BTreeMap::new();
    let (mut lost, mut unknown) = (Vec::new(), None);
    for w in ops.iter().filter(|o| o.is_ok()) {
        let Op::Insert { key, element } = &w.op else {
            continue;
        };
        let final_set = finals.entry(key.as_str()).or_insert_with(|| {
            durability::final_read(final_reads, key, parse_elements)
                .map(|(read, elements)| (read, BTreeSet::from_iter(elements)))
        });
        let (read, elements) = match final_set {
            Ok(final_set) => final_set,
            Err(reason) => {
                unknown.get_or_insert_with(|| reason.clone());
                continue;
            }
        };
        let removed_later = || {
            let removes = removes.get(&(key.as_str(), element.as_str()));
            removes.is_some_and(|rs| rs.iter().any(|r| durability::may_follow(r, w)))
        };
        if !elements.contains(element) && !removed_later() {
            lost.push(LostWrite::new(w, (*read).clone()));
        }
    }
    durability::verdict(lost, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        check::test_history::{info, ok, read, run},
        history::{Completion, History},
    };

    fn insert(h: &mut History, p: u64, t: (u64, u64), key: &str, e: &str, c: Completion) {
        let op = Op::Insert {
            key: key.into(),
            element: e.into(),
        };
        run(h, p, t, op, c);
    }

    fn remove(h: &mut History, p: u64, t: (u64, u64), key: &str, e: &str, c: Completion) {
        let op = Op::Remove {
            key: key.into(),
            element: e.into(),
        };
        run(h, p, t, op, c);
    }

    fn check(h: &History) -> Verdict<NonLinearizable> {
        linearizability(&h.operations(), &SearchLimits::default())
    }

    fn finals(key: &str, value: Option<&str>) -> BTreeMap<String, Option<String>> {
        BTreeMap::from([(key.to_string(), value.map(String::from))])
    }

    #[test]
    fn concurrent_inserts_removes_and_reads_linearize() {
        let mut h = History::default();
        read(&mut h, 3, (0, 1), "s", None);
        insert(&mut h, 0, (2, 10), "s", "b", ok());
        insert(&mut h, 1, (3, 9), "s", "a", ok());
        read(&mut h, 3, (4, 6), "s", Some(r#"["a"]"#));
        read(&mut h, 3, (11, 12), "s", Some(r#"["a","b"]"#));
        remove(&mut h, 0, (13, 20), "s", "a", ok());
        remove(
            &mut h,
            1,
            (14, 15),
            "s",
            "c",
            Completion::Fail("refused".into()),
        );
        read(&mut h, 3, (16, 17), "s", Some(r#"["a","b"]"#));
        read(&mut h, 3, (21, 22), "s", Some(r#"["b"]"#));
        read(&mut h, 4, (0, 1), "t", Some("[]"));
        assert_eq!(check(&h), Verdict::Ok);
    }

    #[test]
    fn stale_read_after_ok_insert_is_a_violation_on_its_key() {
        let mut h = History::default();
        insert(&mut h, 0, (0, 1), "a", "x", ok());
        read(&mut h, 1, (2, 3), "a", Some(r#"["x"]"#));
        insert(&mut h, 0, (4, 5), "b", "x", ok());
        insert(&mut h, 0, (6, 7), "b", "y", ok());
        read(&mut h, 1, (8, 9), "b", Some(r#"["x"]"#));
        let ops = h.operations();
        let Verdict::Violation(evidence) = linearizability(&ops, &SearchLimits::default()) else {
            panic!("a read missing an acknowledged insert must be a violation");
        };
        assert_eq!(evidence.key.as_deref(), Some("b"));
        assert_eq!(evidence.prefix.last().unwrap().state_after, r#"["x","y"]"#);
        let stale = &evidence.blocked[0].op;
        assert_eq!(
            (stale.index, stale.description.as_str()),
            (4, r#"read -> ["x"]"#)
        );
    }

    #[test]
    fn info_insert_may_or_may_not_have_happened() {
        for seen in [r#"["a"]"#, r#"["a","b"]"#] {
            let mut h = History::default();
            insert(&mut h, 0, (0, 1), "s", "a", ok());
            insert(&mut h, 1, (2, 3), "s", "b", info());
            read(&mut h, 2, (4, 5), "s", Some(seen));
            assert_eq!(check(&h), Verdict::Ok, "read {seen}");
            let ops = h.operations();
            assert_eq!(durability(&ops, &finals("s", Some(seen))), Verdict::Ok);
        }
        let mut h = History::default();
        insert(&mut h, 1, (2, 3), "s", "b", info());
        read(&mut h, 2, (4, 5), "s", Some(r#"["b"]"#));
        read(&mut h, 2, (6, 7), "s", None);
        assert!(check(&h).is_violation(), "once seen, it happened");
        let mut h = History::default();
        read(&mut h, 2, (0, 1), "s", Some(r#"["a","a"]"#));
        assert!(check(&h).is_violation(), "a set holds an element once");
    }

    #[test]
    fn durability_catches_a_lost_insert() {
        let mut h = History::default();
        insert(&mut h, 0, (0, 1), "s", "a", ok());
        insert(&mut h, 0, (2, 3), "s", "b", ok());
        insert(
            &mut h,
            0,
            (4, 5),
            "s",
            "c",
            Completion::Fail("refused".into()),
        );
        let ops = h.operations();
        assert_eq!(
            durability(&ops, &finals("s", Some(r#"["a","b"]"#))),
            Verdict::Ok
        );
        let Verdict::Violation(evidence) = durability(&ops, &finals("s", Some(r#"["b"]"#))) else {
            panic!("a is missing");
        };
        assert_eq!(evidence.lost.len(), 1);
        assert_eq!(evidence.lost[0].op, ops[0].op);
        assert_eq!(evidence.lost[0].final_value.as_deref(), Some(r#"["b"]"#));
        let verdict = durability(&ops, &finals("s", None));
        assert!(matches!(verdict, Verdict::Violation(e) if e.lost.len() == 2));
        let verdict = durability(&ops, &BTreeMap::new());
        assert!(
            matches!(verdict, Verdict::Unknown(_)),
            "the final read failed"
        );
    }

    #[test]
    fn durability_accepts_a_removal_that_may_have_followed() {
        let mut h = History::default();
        insert(&mut h, 0, (0, 5), "s", "a", ok());
        remove(&mut h, 1, (2, 3), "s", "a", info());
        remove(&mut h, 1, (4, 5), "s", "b", info());
        let ops = h.operations();
        assert_eq!(durability(&ops, &finals("s", None)), Verdict::Ok);
        let mut h = History::default();
        remove(&mut h, 1, (0, 1), "s", "a", ok());
        remove(
            &mut h,
            1,
            (2, 3),
            "s",
            "a",
            Completion::Fail("refused".into()),
        );
        insert(&mut h, 0, (4, 5), "s", "a", ok());
        let ops = h.operations();
        let verdict = durability(&ops, &finals("s", Some("[]")));
        assert!(
            verdict.is_violation(),
            "the ok remove finished before the insert, the other failed"
        );
    }

    #[test]
    fn malformed_read_is_unknown() {
        let mut h = History::default();
        insert(&mut h, 0, (0, 1), "s", "a", ok());
        read(&mut h, 1, (2, 3), "s", Some("a,b"));
        let Verdict::Unknown(reason) = check(&h) else {
            panic!("an unparseable read cannot be judged");
        };
        assert!(
            reason.contains("\"a,b\"") && reason.contains("\"s\""),
            "{reason}"
        );
        let verdict = durability(&h.operations(), &finals("s", Some("[1]")));
        assert!(matches!(verdict, Verdict::Unknown(r) if r.contains("[1]")));
    }
}
