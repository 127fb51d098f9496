//! Linearizability of key-value histories, with Jepsen semantics.
//!
//! Keys are independent (P-compositionality: a history is linearizable iff
//! each key's sub-history is), so each key is checked on its own, in key
//! order, against [`Register`] (keys without appends) or [`StringCell`].
//! How each operation enters the search, under [`Conventions`]:
//!
//! | operation | `ok` | `fail` | `info` / never completed |
//! |---|---|---|---|
//! | read | must see the value (nil: see [`NilRead`]) | dropped | dropped |
//! | write, append | took effect in its interval | dropped | may take effect any time after its call, or never |
//! | cas | value was `from`, became `to` | dropped, or "value was not `from`" under [`FailedCas::CompareFailed`] | as `info` write, if the value was `from` |
//!
//! Dropped operations constrain nothing, so dropping them changes no
//! verdict and shrinks the search. The time limit covers the whole
//! history; the memory limit bounds each key's memo. A violation on any key
//! is a definite answer even if another key ran out of time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Verdict;
use super::explain::{NonLinearizable, explain};
use super::model::{CellOp, Model, Register, StringCell, Values};
pub use super::search::Timed;
use super::search::{self, Limit, Outcome};
use crate::history::{Conventions, EventType, FailedCas, History, NilRead, Op, Operation};

/// The default bound on one key's memo.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

/// Bounds on a linearizability check; past them the verdict is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchLimits {
    /// Wall-clock time for the whole check (`None`: unbounded).
    pub time_limit: Option<Duration>,
    /// Approximate bytes of memoised search states per key.
    pub memory_limit: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            time_limit: Some(Duration::from_secs(60)),
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }
}

impl SearchLimits {
    fn start(&self) -> search::Limits {
        search::Limits {
            deadline: self.time_limit.map(|d| Instant::now() + d),
            memory_bytes: self.memory_limit,
        }
    }

    fn reason(&self, limit: Limit, key: Option<&str>) -> String {
        let key = key.map_or_else(String::new, |k| format!(" on key {k:?}"));
        match limit {
            Limit::Time => format!(
                "time limit of {:.3} s reached{key}",
                self.time_limit.unwrap_or_default().as_secs_f64()
            ),
            Limit::Memory => format!(
                "memory limit of {} MiB reached{key}",
                self.memory_limit >> 20
            ),
        }
    }
}

/// Checks a whole history.
pub fn check_history(
    history: &History,
    conventions: &Conventions,
    limits: &SearchLimits,
) -> Verdict<NonLinearizable> {
    check_operations(&history.operations(), conventions, limits)
}

/// Checks paired operations (as [`History::operations`] returns them);
/// evidence indexes refer to `ops`.
pub fn check_operations(
    ops: &[Operation],
    conventions: &Conventions,
    limits: &SearchLimits,
) -> Verdict<NonLinearizable> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_key.entry(op.op.key()).or_default().push(i);
    }
    let bounds = limits.start();
    let mut unknown = None;
    for (key, indexes) in by_key {
        let KeyOps {
            mut values,
            timed,
            source,
            appends,
        } = KeyOps::new(ops, &indexes, conventions);
        let (outcome, evidence) = if appends {
            let initial = conventions.initial.clone();
            run(&StringCell { values, initial }, &timed, &source, bounds)
        } else {
            let initial = conventions.initial.as_deref().map(|v| values.intern(v));
            run(&Register { values, initial }, &timed, &source, bounds)
        };
        match (outcome, evidence) {
            (_, Some(mut evidence)) => {
                evidence.key = Some(key.to_string());
                return Verdict::Violation(evidence);
            }
            (Some(limit), None) => {
                unknown.get_or_insert_with(|| limits.reason(limit, Some(key)));
            }
            (None, None) => {}
        }
    }
    unknown.map_or(Verdict::Ok, Verdict::Unknown)
}

/// Checks operations of any model; evidence indexes refer to `ops`.
pub fn check_model<M: Model>(
    model: &M,
    ops: &[Timed<M::Op>],
    limits: &SearchLimits,
) -> Verdict<NonLinearizable> {
    match search::search(model, ops, limits.start()) {
        Outcome::Linearizable => Verdict::Ok,
        Outcome::Illegal { longest } => Verdict::Violation(explain(model, ops, &longest, |i| i)),
        Outcome::Stopped(limit) => Verdict::Unknown(limits.reason(limit, None)),
    }
}

/// Runs one key's search: the limit that stopped it, or the evidence.
/// `source` maps a position in `timed` to the history operation's index.
fn run<M: Model<Op = CellOp>>(
    model: &M,
    timed: &[Timed<CellOp>],
    source: &[usize],
    bounds: search::Limits,
) -> (Option<Limit>, Option<NonLinearizable>) {
    match search::search(model, timed, bounds) {
        Outcome::Linearizable => (None, None),
        Outcome::Illegal { longest } => {
            let evidence = explain(model, timed, &longest, |i| source[i]);
            (None, Some(evidence))
        }
        Outcome::Stopped(limit) => (Some(limit), None),
    }
}

/// One key's operations, ready for the search.
struct KeyOps {
    values: Values,
    timed: Vec<Timed<CellOp>>,
    /// For each entry of `timed`, its index in the history's operations.
    source: Vec<usize>,
    appends: bool,
}

impl KeyOps {
    fn new(ops: &[Operation], indexes: &[usize], conventions: &Conventions) -> Self {
        let mut cell = KeyOps {
            values: Values::default(),
            timed: Vec::with_capacity(indexes.len()),
            source: Vec::with_capacity(indexes.len()),
            appends: false,
        };
        for &i in indexes {
            let operation = &ops[i];
            let (op, ret) = match cell.translate(operation, conventions) {
                Some(translated) => translated,
                None => continue,
            };
            cell.timed.push(Timed {
                op,
                client: operation.process,
                call: operation.invoke_time,
                ret,
            });
            cell.source.push(i);
        }
        cell
    }

    /// The search operation and its completion time, or `None` when the
    /// operation constrains nothing.
    fn translate(
        &mut self,
        o: &Operation,
        conventions: &Conventions,
    ) -> Option<(CellOp, Option<u64>)> {
        let values = &mut self.values;
        let done = o.complete_time;
        match (&o.op, o.kind) {
            (Op::Read { .. }, EventType::Ok) => match (&o.result, conventions.nil_read) {
                (None, NilRead::Unconstrained) => None,
                (None, NilRead::Unset) => Some((CellOp::Read(None), done)),
                (Some(v), _) => Some((CellOp::Read(Some(values.intern(v))), done)),
            },
            (Op::Read { .. }, _) => None,
            (Op::Cas { from, .. }, EventType::Fail) => {
                (conventions.failed_cas == FailedCas::CompareFailed).then(|| {
                    (
                        CellOp::CasFailed {
                            from: values.intern(from),
                        },
                        done,
                    )
                })
            }
            (_, EventType::Fail) => None,
            (op, kind) => {
                let ret = if kind == EventType::Ok { done } else { None };
                let op = match op {
                    Op::Write { value, .. } => CellOp::Write(values.intern(value)),
                    Op::Append { value, .. } => {
                        self.appends = true;
                        CellOp::Append(values.intern(value))
                    }
                    Op::Cas { from, to, .. } => {
                        let (from, to) = (values.intern(from), values.intern(to));
                        if ret.is_some() {
                            CellOp::Cas { from, to }
                        } else {
                            CellOp::MaybeCas { from, to }
                        }
                    }
                    Op::Read { .. } => return None,
                };
                Some((op, ret))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        };
        let done = kind != EventType::Invoke;
        Operation {
            process: p,
            op,
            invoke_time: t0,
            complete_time: done.then_some(t1),
            kind,
            result: read.map(String::from),
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
            text.contains("key \"k\": only 2 of 3 operations linearize"),
            "{text}"
        );
        assert!(
            text.contains("op 3 by client 1, invoked 4 completed 5: read -> \"a\""),
            "{text}"
        );
    }

    #[test]
    fn limits_give_unknown_and_other_models_plug_in() {
        let history = crate::check::bench::generate_history(3_000, 1, 5, 3);
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
}
