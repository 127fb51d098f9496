//! Linearizability of key-value histories, with Jepsen semantics.
//!
//! Keys are independent (P-compositionality: a history is linearizable iff
//! each key's sub-history is), so each key is checked on its own, in
//! parallel, stopping at the first refuted key (`keys` says how, and which
//! key the evidence names), against [`Register`] (keys without appends) or
//! [`StringCell`]. A register key whose written values are unique is
//! decided without a search, in O(n log n) (`unique` says which operations
//! fit); other keys are searched. How each operation enters the check,
//! under [`Conventions`]:
//!
//! | operation | `ok` | `fail` | `info` / never completed |
//! |---|---|---|---|
//! | read | must see the value (nil: see [`NilRead`]) | dropped | dropped |
//! | write, append | took effect in its interval | dropped | may take effect any time after its call, or never |
//! | cas | value was `from`, became `to` | dropped, or "value was not `from`" under [`FailedCas::CompareFailed`] | as `info` write, if the value was `from` |
//!
//! Dropped operations constrain nothing, so dropping them changes no
//! verdict and shrinks the search.
//!
//! [`SearchLimits`] bounds the search; past a limit the verdict is
//! `Unknown`. The step budget and the memory limit are deterministic: how
//! many steps a search takes and how many bytes its memo holds (by its own
//! accounting) depend on the key's operations alone, and each key has both
//! to itself, so under them a verdict is a function of the history, the
//! same on every run and every machine, however the keys are spread over
//! threads. The time limit is not: it is for interactive use (`replisim
//! check`), and covers the whole check. A violation on any key is a
//! definite answer even if another key ran out of its budget.
//!
//! Other workloads' histories (counters, sets) are checked key by key the
//! same way, against their own models, with `check_per_key`: the rules
//! of the table's first two rows apply to their reads and mutations.

use std::time::{Duration, Instant};

use super::Verdict;
use super::explain::{NonLinearizable, explain};
use super::keys::{KeyOutcome, check_keys};
use super::model::{CellOp, Model, Register, StringCell, Values};
pub use super::search::Timed;
use super::search::{self, Limit, SearchOutcome};
use super::unique;
use crate::history::{Conventions, EventType, FailedCas, History, NilRead, Op, Operation};

/// The default bound on one key's memo.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

/// Bounds on a linearizability check; past them the verdict is `Unknown`.
/// The default, `replisim check`'s, is 60 s, no step budget and
/// [`DEFAULT_MEMORY_LIMIT`]; only a check without a time limit is a
/// function of the history alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchLimits {
    /// Wall-clock time for the whole check (`None`: unbounded).
    pub time_limit: Option<Duration>,
    /// Search steps per key (`None`: unbounded). A step is one visit of an
    /// operation's call or return in the search; the count depends on the
    /// key's operations alone.
    pub step_limit: Option<u64>,
    /// Approximate bytes of memoised search states per key, by the memo's
    /// own accounting (not the allocator's). Keys searched at once (one
    /// per core) each have their own.
    pub memory_limit: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            time_limit: Some(Duration::from_secs(60)),
            step_limit: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }
}

impl SearchLimits {
    /// The limits of property tests and seed sweeps: 10 million search
    /// steps and 256 MiB of memo per key, no time limit, so verdicts are
    /// the same on every run and machine (a sharded sweep counts what the
    /// whole sweep counts). 10 million steps take about 1 to 1.6 s on the
    /// hardest keys (many timed-out writes) on a shared 2-core machine, in
    /// tests' build and in release alike.
    pub const DETERMINISTIC: SearchLimits = SearchLimits {
        time_limit: None,
        step_limit: Some(10_000_000),
        memory_limit: 256 << 20,
    };

    fn start(&self) -> search::Bounds<'static> {
        search::Bounds {
            deadline: self.time_limit.map(|d| Instant::now() + d), // determinism-ok: not simulated
            step_limit: self.step_limit,
            memory_bytes: self.memory_limit,
            steps: 0,
            cancel: None,
        }
    }

    /// Why a search stopped at `limit`, for an unknown verdict.
    pub(super) fn reason(&self, limit: Limit) -> String {
        match limit {
            Limit::Time => format!(
                "time limit of {:.3} s reached",
                self.time_limit.unwrap_or_default().as_secs_f64()
            ),
            Limit::Steps => format!(
                "step budget of {} steps reached",
                self.step_limit.unwrap_or_default()
            ),
            Limit::Memory => format!("memory limit of {} MiB reached", self.memory_limit >> 20),
            Limit::Cancelled => "cancelled".to_string(),
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
    check_keys(ops, limits, |indexes, bounds| {
        let KeyOps {
            mut values,
            timed,
            source,
            appends,
        } = KeyOps::new(ops, indexes, conventions);
        let index = |i: usize| source[i];
        if appends {
            let initial = conventions.initial.clone();
            let model = StringCell { values, initial };
            run(&model, &timed, index, bounds)
        } else {
            let initial = conventions.initial.as_deref().map(|v| values.intern(v));
            let model = Register { values, initial };
            match unique::decide(&model, &timed, index) {
                Some(verdict) => KeyOutcome::Done(verdict),
                None => run(&model, &timed, index, bounds),
            }
        }
    })
}

/// Checks operations of any model; evidence indexes refer to `ops`.
pub fn check_model<M: Model>(
    model: &M,
    ops: &[Timed<M::Op>],
    limits: &SearchLimits,
) -> Verdict<NonLinearizable> {
    match run(model, ops, |i| i, &mut limits.start()) {
        KeyOutcome::Done(verdict) => verdict,
        KeyOutcome::Stopped(limit) => Verdict::Unknown(limits.reason(limit)),
    }
}

/// Checks each key's operations against a fresh model from `new_model`,
/// for workloads whose operations map one to one onto the model's, with
/// Jepsen semantics: failed operations, and reads that did not complete
/// `ok`, are dropped; other `ok` operations took effect in their interval;
/// indeterminate ones may take effect any time after their call, or never.
///
/// `translate` turns each remaining operation into the model's (interning
/// into the key's model as it needs to): `Ok(None)` skips an operation of
/// another workload; `Err(reason)` (an unusable read result) makes that
/// key's verdict unknown. Evidence indexes refer to `ops`, and name the key.
pub(crate) fn check_per_key<M: Model>(
    ops: &[Operation],
    limits: &SearchLimits,
    new_model: impl Fn() -> M + Sync,
    translate: impl Fn(&mut M, &Operation) -> Result<Option<M::Op>, String> + Sync,
) -> Verdict<NonLinearizable> {
    check_keys(ops, limits, |indexes, bounds| {
        let mut model = new_model();
        let (mut timed, mut source) = (Vec::new(), Vec::new());
        for &i in indexes {
            let o = &ops[i];
            let read = matches!(o.op, Op::Read { .. });
            let dropped = o.kind == EventType::Fail || (read && !o.is_ok());
            if dropped {
                continue;
            }
            let op = match translate(&mut model, o) {
                Ok(Some(op)) => op,
                Ok(None) => continue,
                Err(reason) => return KeyOutcome::Done(Verdict::Unknown(reason)),
            };
            let ret = if o.is_ok() { o.complete_time } else { None };
            timed.push(Timed {
                op,
                client: o.process,
                call: o.invoke_time,
                ret,
            });
            source.push(i);
        }
        run(&model, &timed, |i| source[i], bounds)
    })
}

/// Runs one search within `bounds`. `index` maps a position in `timed` to
/// the index the evidence reports.
fn run<M: Model>(
    model: &M,
    timed: &[Timed<M::Op>],
    index: impl Fn(usize) -> usize,
    bounds: &mut search::Bounds<'_>,
) -> KeyOutcome {
    match search::search(model, timed, bounds) {
        SearchOutcome::Linearizable => KeyOutcome::Done(Verdict::Ok),
        SearchOutcome::Illegal { longest } => {
            KeyOutcome::Done(Verdict::Violation(explain(model, timed, &longest, index)))
        }
        SearchOutcome::Stopped(limit) => KeyOutcome::Stopped(limit),
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
                    // Reads were handled above; other workloads' operations
                    // are not key-value operations and constrain nothing here.
                    _ => return None,
                };
                Some((op, ret))
            }
        }
    }
}

#[cfg(test)]
mod tests;
