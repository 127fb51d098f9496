//! The unique-values fast path on hand-written histories, and against the
//! search on random ones.

use proptest::prelude::*;

use super::*;
use crate::check::linearizable::{SearchLimits, check_model};
use crate::check::model::Values;

/// A register over values `"a"`, `"b"`, ... (indexes 0, 1, ...).
fn register(initial: Option<u32>) -> Register {
    let mut values = Values::default();
    for v in 0..40u8 {
        values.intern(
            &((b'a' + v % 26) as char)
                .to_string()
                .repeat(1 + v as usize / 26),
        );
    }
    Register { values, initial }
}

fn t(op: CellOp, call: u64, ret: Option<u64>) -> Timed<CellOp> {
    Timed {
        op,
        client: call,
        call,
        ret,
    }
}

use CellOp::{Cas, MaybeCas, Read, Write};
const A: u32 = 0;
const B: u32 = 1;
const C: u32 = 2;

/// The conflict's operations and reason, or `None` if linearizable.
fn conflict(ops: &[Timed<CellOp>]) -> Option<(Vec<usize>, String)> {
    match decide(&register(None), ops, |i| i).expect("unique values") {
        Verdict::Ok => None,
        Verdict::Violation(evidence) => {
            let conflict = evidence.conflict.expect("a conflict");
            Some((
                conflict.ops.iter().map(|o| o.index).collect(),
                conflict.reason,
            ))
        }
        Verdict::Unknown(reason) => panic!("{reason}"),
    }
}

#[test]
fn refutations_name_the_conflicting_operations_and_why() {
    type Case = (
        &'static str,
        Vec<Timed<CellOp>>,
        &'static [usize],
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "stale read",
            vec![
                t(Write(A), 0, Some(1)),
                t(Write(B), 2, Some(3)),
                t(Read(Some(A)), 4, Some(5)),
            ],
            &[0, 1, 2],
            "\"a\" must stay current from op 0 completing to op 2 being invoked; but op 1 (\"b\") ran entirely inside that stretch",
        ),
        (
            "a value nobody wrote",
            vec![t(Write(A), 0, Some(1)), t(Read(Some(C)), 2, Some(3))],
            &[1],
            "op 1 observes a value that no operation which may have taken effect writes",
        ),
        (
            "two compare-and-sets from one value",
            vec![
                t(Write(A), 0, Some(1)),
                t(Cas { from: A, to: B }, 2, Some(5)),
                t(Cas { from: A, to: C }, 3, Some(6)),
            ],
            &[0, 1, 2],
            "op 1 and op 2 both replaced \"a\" (written by op 0) by compare-and-set",
        ),
        (
            "a cycle of compare-and-sets",
            vec![
                t(Cas { from: A, to: B }, 0, Some(1)),
                t(Cas { from: B, to: A }, 2, Some(3)),
            ],
            &[0, 1],
            "op 0, op 1 each replaced, by compare-and-set, the value the next one wrote",
        ),
        (
            "a read before its write",
            vec![
                t(Read(Some(A)), 0, Some(1)),
                t(Write(A), 2, Some(3)),
                t(Read(Some(A)), 4, Some(5)),
            ],
            &[0, 1],
            "op 0 must take effect after op 1",
        ),
        (
            "two stretches overlap",
            vec![
                t(Write(A), 0, Some(3)),
                t(Write(B), 1, Some(4)),
                t(Read(Some(A)), 5, Some(6)),
                t(Read(Some(B)), 6, Some(7)),
            ],
            &[0, 1, 2, 3],
            "\"a\" must stay current from op 0 completing to op 2 being invoked, and \"b\" must stay current from op 1 completing to op 3 being invoked; these stretches overlap",
        ),
        (
            "a compare-and-set chain around a write",
            vec![
                t(Write(A), 0, Some(1)),
                t(Cas { from: A, to: B }, 2, Some(3)),
                t(Write(C), 4, Some(5)),
                t(Read(Some(B)), 6, Some(7)),
                t(Read(Some(A)), 0, Some(9)),
            ],
            &[0, 1, 2, 3],
            "\"a\" then \"b\" must stay current from op 0 completing to op 3 being invoked; but op 2 (\"c\") ran entirely inside that stretch",
        ),
    ];
    for (name, ops, expected, reason) in cases {
        let (found, text) = conflict(&ops).unwrap_or_else(|| panic!("{name}: not refuted"));
        assert_eq!(found, expected, "{name}: {text}");
        assert!(text.contains(reason), "{name}: {text}");
    }
}

#[test]
fn what_the_read_mapping_allows() {
    let linearizable: Vec<(&str, Vec<Timed<CellOp>>)> = vec![
        (
            "concurrent write and read",
            vec![t(Write(A), 0, Some(5)), t(Read(Some(A)), 1, Some(2))],
        ),
        (
            "read of the initial value",
            vec![t(Read(None), 0, Some(1)), t(Write(A), 0, Some(2))],
        ),
        (
            "observed info write",
            vec![t(Write(A), 0, None), t(Read(Some(A)), 10, Some(11))],
        ),
        (
            "unobserved info write",
            vec![
                t(Write(A), 0, Some(1)),
                t(Write(B), 2, None),
                t(Read(Some(A)), 10, Some(11)),
            ],
        ),
        (
            "compare-and-set chain",
            vec![
                t(Write(A), 0, Some(1)),
                t(Cas { from: A, to: B }, 2, Some(3)),
                t(MaybeCas { from: B, to: C }, 4, None),
                t(Read(Some(C)), 8, Some(9)),
            ],
        ),
        (
            "unobserved info compare-and-set from nothing",
            vec![t(MaybeCas { from: C, to: A }, 0, None)],
        ),
    ];
    for (name, ops) in linearizable {
        assert_eq!(conflict(&ops), None, "{name}");
    }
    let register = register(None);
    let outside: Vec<(&str, Vec<Timed<CellOp>>)> = vec![
        (
            "a value written twice",
            vec![t(Write(A), 0, Some(1)), t(Write(A), 2, Some(3))],
        ),
        ("an append", vec![t(CellOp::Append(A), 0, Some(1))]),
        (
            "a failed compare",
            vec![t(CellOp::CasFailed { from: A }, 0, Some(1))],
        ),
    ];
    for (name, ops) in outside {
        assert!(decide(&register, &ops, |i| i).is_none(), "{name}");
    }
    let initial_a = super::super::model::Register {
        initial: Some(A),
        ..register
    };
    assert!(decide(&initial_a, &[t(Write(A), 0, Some(1))], |i| i).is_none());
    assert_eq!(
        decide(&initial_a, &[t(Read(Some(A)), 0, Some(1))], |i| i),
        Some(Verdict::Ok)
    );
}

/// One generated operation: (kind, call, length, where in its interval it
/// takes effect, whether its outcome is unknown, whether it took effect).
type Planned = (u8, u64, u64, u64, bool, bool);

/// A unique-values register history: simulated, so linearizable, unless
/// `tamper` makes one operation observe another value.
fn history(
    planned: &[Planned],
    initial: Option<u32>,
    tamper: Option<(usize, u32)>,
) -> Vec<Timed<CellOp>> {
    let mut ops: Vec<(u64, Timed<CellOp>, bool)> = planned
        .iter()
        .enumerate()
        .map(|(i, &(kind, call, len, at, unknown, happens))| {
            let (call, ret) = (call * 4, call * 4 + len * 4);
            let effect = call + at % (len * 4 + 1);
            let v = i as u32 + 1;
            let op = match kind % 3 {
                0 => Read(None),
                1 => Write(v),
                _ => Cas { from: 0, to: v },
            };
            let read = matches!(op, Read(_));
            let ret = (!unknown || read).then_some(ret);
            (effect, t(op, call, ret), happens || ret.is_some())
        })
        .collect();
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].0, i));
    let mut state = initial;
    let mut kept = vec![true; ops.len()];
    for i in order {
        let (_, op, happens) = &mut ops[i];
        match op.op {
            Read(_) => op.op = Read(state),
            Write(v) if *happens => state = Some(v),
            Cas { to, .. } => {
                let mut from = 0;
                match state {
                    Some(current) if *happens => {
                        from = current;
                        state = Some(to);
                    }
                    // A compare that failed is dropped, as the checker
                    // drops it; one of unknown outcome stays, not taking
                    // effect (nothing will observe it unless tampered).
                    _ => kept[i] = op.ret.is_none(),
                }
                op.op = match op.ret {
                    Some(_) => Cas { from, to },
                    None => MaybeCas { from, to },
                };
            }
            _ => {}
        }
    }
    let mut ops: Vec<Timed<CellOp>> = ops
        .into_iter()
        .zip(kept)
        .filter_map(|((_, op, _), kept)| kept.then_some(op))
        .collect();
    if let Some((i, pick)) = tamper.filter(|_| !ops.is_empty()) {
        // Mostly a value some operation writes; now and then one nobody does.
        let mut values: Vec<Option<u32>> = ops
            .iter()
            .filter_map(|o| written(&o.op))
            .map(Some)
            .collect();
        values.extend([initial, None, Some(planned.len() as u32 + 1)]);
        let value = values[pick as usize % values.len()];
        let i = i % ops.len();
        match &mut ops[i].op {
            Read(v) => *v = value,
            Cas { from, .. } | MaybeCas { from, .. } => *from = value.unwrap_or(0),
            _ => {}
        }
    }
    ops
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// The fast path and the search agree, and a refutation's conflict is
    /// itself refuted by the search (however the writes it observes from
    /// outside it behave), and minimal: taking out any of its operations,
    /// with those that observe what it wrote, leaves operations that
    /// linearize.
    #[test]
    fn the_fast_path_agrees_with_the_search(
        planned in prop::collection::vec(
            (0u8..3, 0u64..16, 0u64..4, 0u64..32, prop::bool::weighted(0.2), any::<bool>()),
            1..11,
        ),
        tamper in prop::option::of((any::<usize>(), any::<u32>())),
        initial in any::<bool>(),
    ) {
        let register = register(initial.then_some(0));
        let ops = history(&planned, register.initial, tamper);
        let fast = decide(&register, &ops, |i| i);
        let Some(fast) = fast else {
            return Err(TestCaseError::fail("unique values, yet no decision"));
        };
        let search = check_model(&register, &ops, &SearchLimits::default());
        prop_assert_eq!(fast.is_ok(), search.is_ok(), "{:?}\n{:?}\n{:?}", ops, fast, search);
        if tamper.is_none() {
            prop_assert!(fast.is_ok());
        }
        if let Verdict::Violation(evidence) = fast {
            let conflict = evidence.conflict.expect("a conflict");
            let set: Vec<usize> = conflict.ops.iter().map(|o| o.index).collect();
            // The set, with a write that may take effect any time (or
            // never) for each value it observes that another operation wrote.
            let sub = |set: &[usize]| {
                let mut sub: Vec<Timed<CellOp>> = set.iter().map(|&i| ops[i].clone()).collect();
                for &i in set {
                    let outside = ops.iter().enumerate().find_map(|(w, o)| {
                        let v = written(&o.op)?;
                        (!set.contains(&w) && observed(&ops[i].op) == Some(Some(v))).then_some(v)
                    });
                    if let Some(v) = outside {
                        sub.push(t(Write(v), 0, None));
                    }
                }
                sub
            };
            prop_assert!(check_model(&register, &sub(&set), &SearchLimits::default()).is_violation());
            for &out in &set {
                // `out`, and what observes what it or they wrote.
                let mut gone = vec![out];
                while let Some(&i) = set.iter().find(|&&i| {
                    !gone.contains(&i)
                        && gone.iter().any(|&g| {
                            written(&ops[g].op).is_some_and(|w| observed(&ops[i].op) == Some(Some(w)))
                        })
                }) {
                    gone.push(i);
                }
                let rest: Vec<usize> = set.iter().copied().filter(|i| !gone.contains(i)).collect();
                let verdict = check_model(&register, &sub(&rest), &SearchLimits::default());
                prop_assert!(verdict.is_ok(), "{} without op {}: {:?}", conflict.reason, out, rest);
            }
        }
    }
}
