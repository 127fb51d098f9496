//! Checkers of counter histories: `add` (an amount, possibly negative) and
//! `read` (the decimal value; an unset counter reads as `null` or `"0"`,
//! both 0).
//!
//! This module owns the [`CounterModel`] model and the counter's two checks:
//!
//! - [`linearizability`]: each key on its own against [`CounterModel`], with
//!   Jepsen semantics: an `ok` add took effect in its interval, an
//!   indeterminate one (`info`, or never completed) may take effect any
//!   time after its call or never, a failed one is dropped; an `ok` read
//!   must see exactly the counter's value, other reads are dropped.
//! - [`durability()`]: each key's final value is the sum of its `ok` adds
//!   plus the sum of some subset of its indeterminate adds, so within
//!   [acknowledged + the negative indeterminate adds, acknowledged + the
//!   positive ones]: an eventually consistent counter that drops no
//!   acknowledged add (and applies none twice) ends there too.
//!
//! Arithmetic wraps on `i64` overflow, in the model and in durability
//! alike, so both stay total functions of the history.

use std::collections::{BTreeMap, BTreeSet};

use super::Verdict;
use super::durability::{self, LostWrite};
use super::explain::NonLinearizable;
use super::linearizable::{SearchLimits, check_per_key};
use super::model::Model;
use crate::history::{Op, Operation};

/// The most distinct sums of indeterminate adds [`durability()`] tracks per
/// key before it answers `unknown`.
const MAX_REACHABLE_SUMS: usize = 1 << 16;

/// A counter starting at 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct CounterModel;

/// A counter operation with its observed outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterOp {
    Add(i64),
    /// A read that returned this value.
    Read(i64),
}

impl Model for CounterModel {
    type State = i64;
    type Op = CounterOp;

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, state: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            CounterOp::Add(amount) => Some(state.wrapping_add(amount)),
            CounterOp::Read(value) => (value == *state).then_some(*state),
        }
    }

    fn describe_op(&self, op: &CounterOp) -> String {
        match op {
            CounterOp::Add(amount) => format!("add {amount}"),
            CounterOp::Read(value) => format!("read -> {value}"),
        }
    }

    fn describe_state(&self, state: &i64) -> String {
        state.to_string()
    }

    fn is_read_only(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Read(_))
    }
}

/// The value a counter read returned (`None`: unset, which is 0).
fn parse_value(read: Option<&str>) -> Result<i64, String> {
    read.map_or(Ok(0), |text| {
        text.parse()
            .map_err(|_| format!("counter value {text:?} is not a decimal integer"))
    })
}

/// Checks the counter operations of `ops` (adds and reads; other
/// operations are skipped), key by key. The first violating key wins and
/// its evidence names it; indexes refer to `ops`. A read result that is
/// not a decimal integer makes the verdict unknown.
pub fn linearizability(ops: &[Operation], limits: &SearchLimits) -> Verdict<NonLinearizable> {
    check_per_key(
        ops,
        limits,
        || CounterModel,
        |_, o| {
            Ok(match o.op {
                Op::Add { amount, .. } => Some(CounterOp::Add(amount)),
                Op::Read { .. } => Some(CounterOp::Read(parse_value(o.result.as_deref())?)),
                _ => None,
            })
        },
    )
}

/// Checks that no acknowledged add is lost: for each key with an `ok` add,
/// the final read (`final_reads`: key to value; absent keys' reads failed,
/// which makes the verdict unknown) must lie within [the sum of the key's
/// `ok` adds plus its negative indeterminate adds, that sum plus its
/// positive ones], and equal the `ok` sum plus the sum of some subset of
/// the indeterminate adds (past 2^16 distinct subset sums only the bounds
/// are judged, and a value within them is unknown).
///
/// A counter cannot tell which add its final value misses, so a violating
/// key lists every one of its `ok` adds as a [`LostWrite`]: together, they
/// are what the final value fails to reflect (an add applied twice shows
/// the same way). A key without `ok` adds has nothing acknowledged to
/// lose and is not judged here; whether its final value is possible is
/// the linearizability check's question when the final reads are part of
/// the history (as the simulator records them).
pub fn durability(
    ops: &[Operation],
    final_reads: &BTreeMap<String, Option<String>>,
) -> Verdict<durability::LostWrites> {
    let mut adds: BTreeMap<&str, KeyAdds> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.may_have_happened()) {
        if let Op::Add { key, amount } = &o.op {
            let key_adds = adds.entry(key).or_default();
            if o.is_ok() {
                key_adds.ok.push(o);
                key_adds.acknowledged = key_adds.acknowledged.wrapping_add(*amount);
            } else {
                key_adds.maybe.push(*amount);
            }
        }
    }
    let (mut lost, mut summary, mut unknown) = (Vec::new(), Vec::new(), None);
    for (key, key_adds) in adds.iter().filter(|(_, a)| !a.ok.is_empty()) {
        match key_adds.lost(final_reads, key) {
            Ok(None) => {}
            Ok(Some((line, key_lost))) => {
                summary.push(line);
                lost.extend(key_lost);
            }
            Err(reason) => {
                unknown.get_or_insert(reason);
            }
        }
    }
    durability::summarised(lost, summary, unknown)
}

/// One key's adds that may have happened.
#[derive(Default)]
struct KeyAdds<'a> {
    ok: Vec<&'a Operation>,
    /// The sum of the `ok` adds.
    acknowledged: i64,
    /// Amounts of the indeterminate adds.
    maybe: Vec<i64>,
}

impl KeyAdds<'_> {
    /// What is wrong with the final value of `key` and the adds it does
    /// not reflect (`None`: nothing), or why it cannot be judged.
    fn lost(
        &self,
        final_reads: &BTreeMap<String, Option<String>>,
        key: &str,
    ) -> Result<Option<(String, Vec<LostWrite>)>, String> {
        let (read, value) = durability::final_read(final_reads, key, parse_value)?;
        let bound = |sign: i64| {
            let same_sign = self.maybe.iter().filter(|a| a.signum() == sign);
            same_sign.fold(self.acknowledged, |s, a| s.wrapping_add(*a))
        };
        let (low, high) = (bound(-1), bound(1));
        let outside = !(low..=high).contains(&value);
        if !outside {
            let mut sums = BTreeSet::from([0i64]);
            for &amount in &self.maybe {
                let shifted: Vec<i64> = sums.iter().map(|s| s.wrapping_add(amount)).collect();
                sums.extend(shifted);
                if sums.len() > MAX_REACHABLE_SUMS {
                    return Err(format!(
                        "more than {MAX_REACHABLE_SUMS} possible sums of indeterminate adds on key {key:?}"
                    ));
                }
            }
            if sums.contains(&value.wrapping_sub(self.acknowledged)) {
                return Ok(None);
            }
        }
        let summary = format!(
            "key {key:?} ends at {value}, {}its {} acknowledged adds sum to {}{}",
            match outside {
                true => format!("outside [{low}, {high}]: "),
                false => "but ".to_string(),
            },
            self.ok.len(),
            self.acknowledged,
            match self.maybe.len() {
                0 => String::new(),
                n => format!(" (plus any of {n} unacknowledged ones)"),
            }
        );
        let involved = self.ok.iter().map(|o| LostWrite::new(o, read.clone()));
        Ok(Some((summary, involved.collect())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        check::test_history::{info, ok, read, run},
        history::{Completion, History},
    };

    fn add(h: &mut History, p: u64, t: (u64, u64), key: &str, amount: i64, c: Completion) {
        let op = Op::Add {
            key: key.into(),
            amount,
        };
        run(h, p, t, op, c);
    }

    fn check(h: &History) -> Verdict<NonLinearizable> {
        linearizability(&h.operations(), &SearchLimits::default())
    }

    fn finals(entries: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        let entry = |&(k, v): &(&str, Option<&str>)| (k.to_string(), v.map(String::from));
        entries.iter().map(entry).collect()
    }

    #[test]
    fn concurrent_adds_and_reads_linearize() {
        let mut h = History::default();
        read(&mut h, 2, (0, 1), "c", None);
        add(&mut h, 0, (2, 10), "c", 5, ok());
        add(&mut h, 1, (3, 9), "c", -2, ok());
        // Sees -2 alone: the add of 5 is concurrent, not yet applied.
        read(&mut h, 2, (4, 6), "c", Some("-2"));
        read(&mut h, 2, (11, 12), "c", Some("3"));
        add(
            &mut h,
            0,
            (13, 14),
            "c",
            1,
            Completion::Fail("refused".into()),
        );
        read(&mut h, 2, (15, 16), "c", Some("3"));
        // Another key and another workload's operation are independent.
        read(&mut h, 3, (0, 1), "d", Some("0"));
        h.invoke(
            4,
            2,
            Op::Insert {
                key: "c".into(),
                element: "x".into(),
            },
        );
        assert_eq!(check(&h), Verdict::Ok);
    }

    #[test]
    fn stale_read_after_ok_add_is_a_violation_on_its_key() {
        let mut h = History::default();
        add(&mut h, 0, (0, 1), "a", 1, ok());
        read(&mut h, 1, (2, 3), "a", Some("1"));
        add(&mut h, 0, (4, 5), "b", 4, ok());
        read(&mut h, 1, (6, 7), "b", Some("0"));
        let ops = h.operations();
        let Verdict::Violation(evidence) = linearizability(&ops, &SearchLimits::default()) else {
            panic!("a read of 0 after an acknowledged add of 4 must be a violation");
        };
        assert_eq!(evidence.key.as_deref(), Some("b"));
        assert_eq!(evidence.prefix.last().unwrap().state_after, "4");
        let stale = &evidence.blocked[0].op;
        assert_eq!((stale.index, stale.description.as_str()), (3, "read -> 0"));
    }

    #[test]
    fn info_add_may_or_may_not_have_happened() {
        for seen in ["1", "3"] {
            let mut h = History::default();
            add(&mut h, 0, (0, 1), "c", 1, ok());
            add(&mut h, 1, (2, 3), "c", 2, info());
            read(&mut h, 2, (4, 5), "c", Some(seen));
            read(&mut h, 2, (6, 7), "c", Some(seen));
            assert_eq!(check(&h), Verdict::Ok, "read {seen}");
        }
        let mut h = History::default();
        add(&mut h, 1, (2, 3), "c", 2, info());
        read(&mut h, 2, (4, 5), "c", Some("2"));
        read(&mut h, 2, (6, 7), "c", Some("0"));
        assert!(check(&h).is_violation(), "once seen, it happened");
    }

    #[test]
    fn malformed_read_is_unknown() {
        let mut h = History::default();
        read(&mut h, 0, (0, 1), "c", Some("twelve"));
        let Verdict::Unknown(reason) = check(&h) else {
            panic!("an unparseable read cannot be judged");
        };
        assert!(
            reason.contains("\"twelve\"") && reason.contains("\"c\""),
            "{reason}"
        );
        let final_read = durability(&[], &finals(&[("c", Some("twelve"))]));
        assert!(final_read.is_ok(), "no acknowledged add: nothing to judge");
        add(&mut h, 0, (2, 3), "c", 1, ok());
        let verdict = durability(&h.operations(), &finals(&[("c", Some("twelve"))]));
        assert!(matches!(verdict, Verdict::Unknown(r) if r.contains("twelve")));
    }

    #[test]
    fn durability_needs_every_ok_add_and_a_subset_of_the_rest() {
        let mut h = History::default();
        add(&mut h, 0, (0, 1), "c", 5, ok());
        add(&mut h, 1, (0, 1), "c", 3, info());
        add(
            &mut h,
            2,
            (0, 1),
            "c",
            7,
            Completion::Fail("refused".into()),
        );
        h.invoke(
            3,
            2,
            Op::Add {
                key: "c".into(),
                amount: 10,
            },
        );
        add(&mut h, 0, (2, 3), "z", 0, ok());
        let ops = h.operations();
        let zero = ("z", None);
        for value in ["5", "8", "15", "18"] {
            let verdict = durability(&ops, &finals(&[("c", Some(value)), zero]));
            assert_eq!(verdict, Verdict::Ok, "final {value}");
        }
        for value in [Some("12"), Some("3"), None] {
            let Verdict::Violation(evidence) = durability(&ops, &finals(&[("c", value), zero]))
            else {
                panic!("final {value:?} misses the acknowledged add");
            };
            assert_eq!(evidence.lost.len(), 1);
            assert_eq!(evidence.lost[0].op, ops[0].op);
            assert_eq!(evidence.lost[0].final_value.as_deref(), value);
            let ends = value.unwrap_or("0");
            let why = match ends {
                "12" => "but ",
                _ => "outside [5, 18]: ",
            };
            assert_eq!(
                evidence.summary,
                [format!(
                    "key \"c\" ends at {ends}, {why}its 1 acknowledged adds sum to 5 \
                     (plus any of 2 unacknowledged ones)"
                )]
            );
        }
        let verdict = durability(&ops, &finals(&[("c", Some("5"))]));
        assert!(
            matches!(verdict, Verdict::Unknown(r) if r.contains("z")),
            "z's read failed"
        );
    }

    #[test]
    fn too_many_possible_sums_is_unknown() {
        let mut h = History::default();
        add(&mut h, 0, (0, 1), "c", 1, ok());
        for bit in 0..17 {
            add(&mut h, bit + 1, (0, 1), "c", 2 << bit, info());
        }
        let verdict = durability(&h.operations(), &finals(&[("c", Some("1"))]));
        assert!(matches!(verdict, Verdict::Unknown(_)), "{verdict:?}");
        // Below the acknowledged sum with no negative add to explain it:
        // judged by the bounds alone.
        let verdict = durability(&h.operations(), &finals(&[("c", Some("0"))]));
        assert!(verdict.is_violation(), "{verdict:?}");
    }
}
