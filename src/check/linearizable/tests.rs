//! Hand-written histories for the linearizability checker, including the
//! ones that must fail.

use super::*;
use crate::check::generate::Spec;
use std::collections::BTreeMap;
use std::time::Duration;

/// A linearizable history whose written values repeat (Jepsen's
/// cas-register style), so that only the search decides it.
fn repeated_values(ops: usize, keys: usize) -> History {
    Spec {
        unique: false,
        ..Spec::new(ops, keys, 5, 3)
    }
    .generate()
}

/// An operation on key `k` by process `p` over `[t0, t1]`.
fn on(
    key: &str,
    p: u64,
    t0: u64,
    t1: u64,
    kind: EventType,
    op: Op,
    read: Option<&str>,
) -> Operation {
    let op = match op {
        Op::Read { value, .. } => Op::Read {
            key: key.into(),
            value,
        },
        Op::Write { value, .. } => Op::Write {
            key: key.into(),
            value,
        },
        Op::Append { value, .. } => Op::Append {
            key: key.into(),
            value,
        },
        Op::Cas { from, to, .. } => Op::Cas {
            key: key.into(),
            from,
            to,
        },
        other => panic!("these tests use key-value operations, not {other:?}"),
    };
    let done = kind != EventType::Invoke;
    Operation {
        process: p,
        op,
        invoke_time: t0,
        complete_time: done.then_some(t1),
        kind,
        result: read.map(String::from),
        siblings: Vec::new(),
    }
}

fn write(p: u64, t0: u64, t1: u64, kind: EventType, v: &str) -> Operation {
    on(
        "k",
        p,
        t0,
        t1,
        kind,
        Op::Write {
            key: String::new(),
            value: v.into(),
        },
        None,
    )
}

fn append(p: u64, t0: u64, t1: u64, v: &str) -> Operation {
    on(
        "k",
        p,
        t0,
        t1,
        EventType::Ok,
        Op::Append {
            key: String::new(),
            value: v.into(),
        },
        None,
    )
}

fn read(p: u64, t0: u64, t1: u64, v: Option<&str>) -> Operation {
    on(
        "k",
        p,
        t0,
        t1,
        EventType::Ok,
        Op::Read {
            key: String::new(),
            value: None,
        },
        v,
    )
}

fn cas(p: u64, t0: u64, t1: u64, kind: EventType, from: &str, to: &str) -> Operation {
    let op = Op::Cas {
        key: String::new(),
        from: from.into(),
        to: to.into(),
    };
    on("k", p, t0, t1, kind, op, None)
}

use EventType::{Fail, Info, Invoke, Ok as Done};

#[test]
fn verdicts_on_small_histories() {
    let compare_failed = Conventions {
        failed_cas: FailedCas::CompareFailed,
        ..Conventions::default()
    };
    let nil_free = Conventions {
        nil_read: NilRead::Unconstrained,
        ..Conventions::default()
    };
    let zero = Conventions {
        initial: Some("0".into()),
        ..Conventions::default()
    };
    let own = Conventions::default();
    let cases: Vec<(&str, Vec<Operation>, &Conventions, bool)> = vec![
        (
            "write then read",
            vec![write(0, 0, 1, Done, "a"), read(1, 2, 3, Some("a"))],
            &own,
            true,
        ),
        (
            "stale read",
            vec![
                write(0, 0, 1, Done, "a"),
                write(0, 2, 3, Done, "b"),
                read(1, 4, 5, Some("a")),
            ],
            &own,
            false,
        ),
        (
            "lost write",
            vec![write(0, 0, 1, Done, "a"), read(1, 2, 3, None)],
            &own,
            false,
        ),
        (
            "never-written value",
            vec![write(0, 0, 1, Done, "a"), read(1, 2, 3, Some("z"))],
            &own,
            false,
        ),
        (
            "concurrent read sees either",
            vec![
                write(0, 0, 1, Done, "a"),
                write(0, 2, 6, Done, "b"),
                read(1, 3, 4, Some("a")),
                read(2, 3, 5, Some("b")),
            ],
            &own,
            true,
        ),
        (
            "info write appears later",
            vec![write(0, 0, 1, Info, "a"), read(1, 10, 11, Some("a"))],
            &own,
            true,
        ),
        (
            "info write may never happen",
            vec![write(0, 0, 1, Info, "a"), read(1, 10, 11, None)],
            &own,
            true,
        ),
        (
            "info write seen before its call",
            vec![read(1, 0, 1, Some("a")), write(0, 5, 6, Info, "a")],
            &own,
            false,
        ),
        (
            "unfinished write appears later",
            vec![write(0, 0, 0, Invoke, "a"), read(1, 10, 11, Some("a"))],
            &own,
            true,
        ),
        (
            "failed write never happens",
            vec![write(0, 0, 1, Fail, "a"), read(1, 2, 3, Some("a"))],
            &own,
            false,
        ),
        (
            "concurrent cas both succeed",
            vec![
                write(0, 0, 1, Done, "a"),
                cas(1, 2, 5, Done, "a", "b"),
                cas(2, 3, 6, Done, "a", "c"),
            ],
            &own,
            false,
        ),
        (
            "concurrent cas one fails",
            vec![
                write(0, 0, 1, Done, "a"),
                cas(1, 2, 5, Done, "a", "b"),
                cas(2, 3, 6, Fail, "a", "c"),
            ],
            &own,
            true,
        ),
        (
            "info cas takes effect",
            vec![
                write(0, 0, 1, Done, "a"),
                cas(1, 2, 3, Info, "a", "b"),
                read(2, 4, 5, Some("b")),
            ],
            &own,
            true,
        ),
        (
            "failed cas did not happen",
            vec![write(0, 0, 1, Done, "a"), cas(1, 2, 3, Fail, "a", "b")],
            &own,
            true,
        ),
        (
            "failed cas saw another value",
            vec![write(0, 0, 1, Done, "a"), cas(1, 2, 3, Fail, "a", "b")],
            &compare_failed,
            false,
        ),
        (
            "nil read of written key",
            vec![write(0, 0, 1, Done, "a"), read(1, 2, 3, None)],
            &nil_free,
            true,
        ),
        ("initial value", vec![read(1, 0, 1, Some("0"))], &zero, true),
        (
            "appends in order",
            vec![
                append(0, 0, 1, "x"),
                append(0, 2, 3, "y"),
                read(1, 4, 5, Some("xy")),
            ],
            &own,
            true,
        ),
        (
            "appends out of order",
            vec![
                append(0, 0, 1, "x"),
                append(0, 2, 3, "y"),
                read(1, 4, 5, Some("yx")),
            ],
            &own,
            false,
        ),
        (
            "concurrent appends",
            vec![
                append(0, 0, 3, "x"),
                append(1, 1, 2, "y"),
                read(2, 4, 5, Some("yx")),
            ],
            &own,
            true,
        ),
    ];
    for (name, ops, conventions, linearizable) in cases {
        let verdict = check_operations(&ops, conventions, &SearchLimits::default());
        assert_eq!(verdict.is_ok(), linearizable, "{name}: {verdict:?}");
        assert_eq!(verdict.is_violation(), !linearizable, "{name}: {verdict:?}");
    }
}

#[test]
fn explains_a_stale_read() {
    let ops = vec![
        on(
            "other",
            5,
            0,
            1,
            Done,
            Op::Write {
                key: String::new(),
                value: "q".into(),
            },
            None,
        ),
        write(0, 0, 1, Done, "a"),
        write(0, 2, 3, Done, "b"),
        read(1, 4, 5, Some("a")),
        // "b" written twice: no unique-values shortcut, the search explains.
        write(2, 6, 7, Done, "b"),
    ];
    let Verdict::Violation(evidence) =
        check_operations(&ops, &Conventions::default(), &SearchLimits::default())
    else {
        panic!("stale read not found");
    };
    assert_eq!(evidence.key.as_deref(), Some("k"));
    let prefix: Vec<_> = evidence
        .prefix
        .iter()
        .map(|s| (s.op.index, s.state_after.as_str()))
        .collect();
    assert_eq!(prefix, [(1, "\"a\""), (2, "\"b\"")]);
    assert_eq!(evidence.blocked.len(), 1);
    let blocked = &evidence.blocked[0];
    assert_eq!(
        (blocked.op.index, blocked.op.client, blocked.op.invoked),
        (3, 1, 4)
    );
    assert!(blocked.completed_first && !blocked.legal_next);
    let text = evidence.to_string();
    assert!(
        text.contains("key \"k\": only 2 of 4 operations linearize"),
        "{text}"
    );
    assert!(
        text.contains("op 3 by client 1, invoked 4 completed 5: read -> \"a\""),
        "{text}"
    );
}

#[test]
fn limits_give_unknown_and_other_models_plug_in() {
    let history = repeated_values(3_000, 1);
    let no_time = SearchLimits {
        time_limit: Some(Duration::ZERO),
        ..SearchLimits::default()
    };
    let no_memory = SearchLimits {
        memory_limit: 1 << 10,
        ..SearchLimits::default()
    };
    for limits in [no_time, no_memory] {
        let verdict = check_history(&history, &Conventions::default(), &limits);
        assert!(matches!(verdict, Verdict::Unknown(_)), "{verdict:?}");
    }
    let mut values = Values::default();
    let a = values.intern("a");
    let model = Register {
        values,
        initial: None,
    };
    let timed = |op, call, ret| Timed {
        op,
        client: 0,
        call,
        ret,
    };
    let good = [
        timed(CellOp::Write(a), 0, Some(1)),
        timed(CellOp::Read(Some(a)), 2, Some(3)),
    ];
    assert_eq!(
        check_model(&model, &good, &SearchLimits::default()),
        Verdict::Ok
    );
    let bad = [
        timed(CellOp::Read(Some(a)), 0, Some(1)),
        timed(CellOp::Write(a), 2, Some(3)),
    ];
    assert!(check_model(&model, &bad, &SearchLimits::default()).is_violation());
}

/// Limits with no time limit and a budget of `steps`.
fn steps_only(steps: u64) -> SearchLimits {
    SearchLimits {
        time_limit: None,
        step_limit: Some(steps),
        ..SearchLimits::default()
    }
}

#[test]
fn a_step_budget_gives_the_same_unknown_every_run_and_an_ample_one_decides() {
    let history = repeated_values(3_000, 1);
    let own = Conventions::default();
    let unknown = Verdict::Unknown(r#"step budget of 100 steps reached on key "k0""#.into());
    for _ in 0..2 {
        assert_eq!(check_history(&history, &own, &steps_only(100)), unknown);
    }
    let ample = crate::testing::HOLDS_LIMITS;
    assert_eq!(ample.time_limit, None);
    assert_eq!(check_history(&history, &own, &ample), Verdict::Ok);
    // A violation too: unknown within a budget too small to find it (with
    // a value written twice, so that the search must find it).
    let bad = [
        write(0, 0, 1, Done, "a"),
        write(2, 0, 1, Done, "a"),
        read(1, 2, 3, Some("b")),
    ];
    let unknown = Verdict::Unknown(r#"step budget of 1 steps reached on key "k""#.into());
    for _ in 0..2 {
        assert_eq!(check_operations(&bad, &own, &steps_only(1)), unknown);
    }
    assert!(check_operations(&bad, &own, &ample).is_violation());
}

/// The steps each key's search takes alone, unbounded, in key order.
fn steps_per_key(ops: &[Operation]) -> Vec<u64> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_key.entry(op.op.key()).or_default().push(i);
    }
    by_key
        .values()
        .map(|indexes| {
            let KeyOps {
                values,
                timed,
                appends,
                ..
            } = KeyOps::new(ops, indexes, &Conventions::default());
            assert!(!appends);
            let model = Register {
                values,
                initial: None,
            };
            let mut bounds = SearchLimits {
                time_limit: None,
                ..SearchLimits::default()
            }
            .start();
            let outcome = search::search(&model, &timed, &mut bounds);
            assert!(matches!(outcome, SearchOutcome::Linearizable));
            bounds.steps
        })
        .collect()
}

#[test]
fn step_counts_repeat_and_each_key_has_the_whole_budget() {
    let history = repeated_values(3_000, 2);
    let ops = history.operations();
    let steps = steps_per_key(&ops);
    assert_eq!(steps, steps_per_key(&ops));
    assert!(steps.iter().all(|&n| n > 1_000), "{steps:?}");
    let own = Conventions::default();
    let most = *steps.iter().max().unwrap();
    let hardest = if steps[0] == most { "k0" } else { "k1" };
    let stopped = |n: u64, key: &str| {
        Verdict::Unknown(format!("step budget of {n} steps reached on key {key:?}"))
    };
    assert_eq!(check_operations(&ops, &own, &steps_only(most)), Verdict::Ok);
    assert_eq!(
        check_operations(&ops, &own, &steps_only(most - 1)),
        stopped(most - 1, hardest)
    );
    let least = *steps.iter().min().unwrap();
    assert_eq!(
        check_operations(&ops, &own, &steps_only(least - 1)),
        stopped(least - 1, "k0")
    );
}

/// `ops` with every operation moved to key `key`.
fn on_key(key: &str, ops: &[Operation]) -> Vec<Operation> {
    ops.iter()
        .map(|o| {
            let mut o = o.clone();
            match &mut o.op {
                Op::Read { key: k, .. }
                | Op::Write { key: k, .. }
                | Op::Append { key: k, .. }
                | Op::Cas { key: k, .. } => *k = key.to_string(),
                other => panic!("key-value operations only, not {other:?}"),
            }
            o
        })
        .collect()
}

/// A stale read on key `key`, at times from `t`.
fn stale(key: &str, t: u64) -> Vec<Operation> {
    let ops = [
        write(0, t, t + 1, Done, "a"),
        write(0, t + 2, t + 3, Done, "b"),
        read(1, t + 4, t + 5, Some("a")),
    ];
    on_key(key, &ops)
}

#[test]
fn a_refuted_key_answers_even_when_another_key_runs_out_of_budget() {
    // "a" takes the search thousands of steps; "b" and "d" are refuted at
    // once (the unique-values path), "c" is linearizable.
    let hard = on_key("a", &repeated_values(3_000, 1).operations());
    let easy = on_key("c", &Spec::new(50, 1, 3, 9).generate().operations());
    let mut ops = [hard.clone(), stale("b", 10), easy, stale("d", 20)].concat();
    ops.sort_by_key(|o| o.invoke_time);
    let own = Conventions::default();
    let budget = steps_only(1_000);
    assert!(matches!(
        check_operations(&hard, &own, &budget),
        Verdict::Unknown(_)
    ));
    let first = check_operations(&ops, &own, &budget);
    let Verdict::Violation(evidence) = &first else {
        panic!("{first:?}");
    };
    assert_eq!(evidence.key.as_deref(), Some("b"));
    // Deterministic, evidence and all, and the same with a time limit and
    // no step budget (the hard key would then run long, but is cancelled).
    for _ in 0..5 {
        assert_eq!(check_operations(&ops, &own, &budget), first);
    }
    let timed = check_operations(&ops, &own, &SearchLimits::default());
    assert!(timed.is_violation(), "{timed:?}");
    // Without "b", "d" is reported; without both, the hard key's unknown.
    let without = |keys: &[&str]| -> Vec<Operation> {
        ops.iter()
            .filter(|o| !keys.contains(&o.op.key()))
            .cloned()
            .collect()
    };
    let Verdict::Violation(evidence) = check_operations(&without(&["b"]), &own, &budget) else {
        panic!("the stale read on d is not found");
    };
    assert_eq!(evidence.key.as_deref(), Some("d"));
    assert_eq!(
        check_operations(&without(&["b", "d"]), &own, &budget),
        Verdict::Unknown(r#"step budget of 1000 steps reached on key "a""#.into())
    );
}

/// Whether some order of `ops` respecting real time is legal: the
/// definition, by brute force (operations without a return may be left out).
fn brute_force(
    model: &Register,
    ops: &[Timed<CellOp>],
    left: &mut Vec<usize>,
    state: Option<u32>,
) -> bool {
    if left.iter().all(|&i| ops[i].ret.is_none()) {
        return true;
    }
    for k in 0..left.len() {
        let i = left[k];
        let blocked = left
            .iter()
            .any(|&j| ops[j].ret.is_some_and(|r| r < ops[i].call));
        if blocked {
            continue;
        }
        if let Some(next) = model.step(&state, &ops[i].op) {
            left.remove(k);
            let found = brute_force(model, ops, left, next);
            left.insert(k, i);
            if found {
                return true;
            }
        }
    }
    false
}

#[test]
fn search_agrees_with_brute_force_on_random_histories() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut values = Values::default();
    let (a, b) = (values.intern("a"), values.intern("b"));
    let model = Register {
        values,
        initial: None,
    };
    let (mut ok, mut bad) = (0, 0);
    for _ in 0..3_000 {
        let ops: Vec<Timed<CellOp>> = (0..rng.random_range(1..7))
            .map(|_| {
                let v = if rng.random_bool(0.5) { a } else { b };
                let w = if rng.random_bool(0.5) { a } else { b };
                let op = match rng.random_range(0..6) {
                    0 => CellOp::Read(rng.random_bool(0.8).then_some(v)),
                    1 | 2 => CellOp::Write(v),
                    3 => CellOp::Cas { from: v, to: w },
                    4 => CellOp::MaybeCas { from: v, to: w },
                    _ => CellOp::CasFailed { from: v },
                };
                let call = rng.random_range(0..10);
                let open = matches!(op, CellOp::MaybeCas { .. }) || rng.random_bool(0.1);
                let ret = (!open).then(|| call + rng.random_range(0..5));
                Timed {
                    op,
                    client: 0,
                    call,
                    ret,
                }
            })
            .collect();
        let expected = brute_force(&model, &ops, &mut (0..ops.len()).collect(), None);
        let verdict = check_model(&model, &ops, &SearchLimits::default());
        assert_eq!(verdict.is_ok(), expected, "{ops:?}");
        if expected { ok += 1 } else { bad += 1 }
    }
    assert!(ok > 300 && bad > 300, "{ok} linearizable, {bad} not");
}

#[test]
fn explains_a_stale_read_of_unique_values_by_the_conflicting_operations() {
    let ops = [stale("k", 0), stale("other", 0)].concat();
    let Verdict::Violation(evidence) =
        check_operations(&ops, &Conventions::default(), &SearchLimits::default())
    else {
        panic!("stale read not found");
    };
    assert!(evidence.prefix.is_empty() && evidence.blocked.is_empty());
    assert_eq!(evidence.blamed(), [0, 1, 2]);
    let text = evidence.to_string();
    assert!(
        text.starts_with(
            "key \"k\": 3 of 3 operations cannot all linearize: \"a\" must stay current from op 0 completing to op 2 being invoked; but op 1 (\"b\") ran entirely inside that stretch"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("\n  op 2 by client 1, invoked 4 completed 5: read -> \"a\""),
        "{text}"
    );
}

#[test]
fn the_unique_values_path_agrees_with_the_search_on_generated_histories() {
    let (mut ok, mut bad) = (0, 0);
    for seed in 0..30 {
        let spec = Spec {
            stale_read: seed % 2 == 1,
            ..Spec::new(400, 1, 6, seed)
        };
        let ops = spec.generate().operations();
        let indexes: Vec<usize> = (0..ops.len()).collect();
        let KeyOps {
            values,
            timed,
            appends,
            ..
        } = KeyOps::new(&ops, &indexes, &Conventions::default());
        assert!(!appends);
        let model = Register {
            values,
            initial: None,
        };
        let fast = unique::decide(&model, &timed, |i| i).expect("unique values");
        let search = check_model(&model, &timed, &SearchLimits::default());
        assert_eq!(fast.is_ok(), search.is_ok(), "seed {seed}: {fast}");
        assert_eq!(fast.is_ok(), !spec.stale_read, "seed {seed}: {fast}");
        if fast.is_ok() { ok += 1 } else { bad += 1 }
    }
    assert_eq!((ok, bad), (15, 15));
}
