//! Checking the keys of a history each on its own, in parallel, stopping
//! at the first refuted key.
//!
//! Keys are independent (P-compositionality: a history is linearizable iff
//! each key's sub-history is), so the history's verdict combines the
//! keys': not linearizable if any key is refuted, else unknown if any key
//! could not be settled, else linearizable. One worker thread per core
//! takes keys from a shared queue, each search on one thread, the keys
//! with fewest operations first: they are the quickest to settle, and the
//! sooner one is refuted, the sooner the rest can stop. A small history
//! (fewer than [`PARALLEL_MIN_OPS`] operations) is checked on the caller's
//! thread alone. Each key has the whole step budget and memory limit to
//! itself; the time limit is the whole check's.
//!
//! When a key is refuted, the searches of other keys are cancelled (a flag
//! each search polls), so a key that cannot be settled never holds up the
//! verdict of one that can. Which keys are cancelled, and so which key the
//! evidence names:
//! - without a time limit, only the keys above the refuted one (in key
//!   order); the keys below it still run to their end. The evidence names
//!   the lowest refutable key, and verdict and evidence are functions of
//!   the history alone, whatever the threads' timing.
//! - with a time limit, every other key, at once. The verdict is the same
//!   (a refuted key is refuted whatever else runs), but of several
//!   refutable keys the evidence names the lowest refuted by then.
//!
//! With more keys than workers, keys are taken in two rounds: every key
//! first gets a probe of at most [`PROBE_STEPS`] steps, then the keys the
//! probe left undecided get their full budget. A refutable key queued
//! behind hard ones is thus reached after a probe of each, not after
//! their whole budget. A probe changes no verdict: a search is a
//! function of its key's operations, and one that ends within the probe
//! ends the same way with more steps.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant; // determinism-ok: the checker's optional time limit; checks run after a simulation, never inside one

use super::Verdict;
use super::explain::NonLinearizable;
use super::linearizable::SearchLimits;
use super::search::{Bounds, Limit};
use crate::history::Operation;

/// Histories with fewer operations are checked on the caller's thread:
/// starting workers would cost more than they save.
const PARALLEL_MIN_OPS: usize = 2_000;

/// The probe round's step budget per key.
const PROBE_STEPS: u64 = 1 << 17;

/// What one key's check ended with.
pub(crate) enum KeyOutcome {
    Done(Verdict<NonLinearizable>),
    Stopped(Limit),
}

/// Checks each key of `ops` with `check_key`, given the key's operations'
/// indexes in `ops` and its search's bounds. The evidence names the key,
/// and so does an unknown verdict's reason (of the lowest unsettled key).
pub(crate) fn check_keys(
    ops: &[Operation],
    limits: &SearchLimits,
    check_key: impl Fn(&[usize], &mut Bounds<'_>) -> KeyOutcome + Sync,
) -> Verdict<NonLinearizable> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_key.entry(op.op.key()).or_default().push(i);
    }
    let keys: Vec<(&str, Vec<usize>)> = by_key.into_iter().collect();
    let workers = if ops.len() < PARALLEL_MIN_OPS {
        1
    } else {
        // determinism-ok: the worker count changes no verdict (see the module doc)
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        cores.min(keys.len())
    };
    let check = Check {
        keys: &keys,
        limits,
        deadline: limits.time_limit.map(|d| Instant::now() + d), // determinism-ok: not simulated
        cancel: keys.iter().map(|_| AtomicBool::new(false)).collect(),
        verdicts: Mutex::new(keys.iter().map(|_| None).collect()),
    };
    let mut pending: Vec<usize> = (0..keys.len()).collect();
    pending.sort_by_key(|&k| keys[k].1.len());
    if keys.len() > workers {
        let probe = limits
            .step_limit
            .map_or(PROBE_STEPS, |l| l.min(PROBE_STEPS));
        pending = check.round(&pending, Some(probe), workers, &check_key);
    }
    check.round(&pending, limits.step_limit, workers, &check_key);
    check.verdict()
}

/// One check's shared state.
struct Check<'a> {
    keys: &'a [(&'a str, Vec<usize>)],
    limits: &'a SearchLimits,
    deadline: Option<Instant>,
    /// Per key: raised when its verdict no longer matters.
    cancel: Vec<AtomicBool>,
    /// Per key: its verdict, once settled.
    verdicts: Mutex<Vec<Option<Verdict<NonLinearizable>>>>,
}

impl Check<'_> {
    /// Checks the `pending` keys within `budget` steps each, in that
    /// order; returns those stopped by a budget below the check's own, in
    /// the same order.
    fn round(
        &self,
        pending: &[usize],
        budget: Option<u64>,
        workers: usize,
        check_key: &(impl Fn(&[usize], &mut Bounds<'_>) -> KeyOutcome + Sync),
    ) -> Vec<usize> {
        let short = budget.unwrap_or(u64::MAX) < self.limits.step_limit.unwrap_or(u64::MAX);
        let next = AtomicUsize::new(0);
        let undecided = Mutex::new(Vec::new());
        let work = || {
            while let Some(&key) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
                if self.cancel[key].load(Ordering::Relaxed) {
                    continue;
                }
                let mut bounds = Bounds {
                    deadline: self.deadline,
                    step_limit: budget,
                    memory_bytes: self.limits.memory_limit,
                    steps: 0,
                    cancel: Some(&self.cancel[key]),
                };
                let verdict = match check_key(&self.keys[key].1, &mut bounds) {
                    KeyOutcome::Done(verdict) => verdict,
                    KeyOutcome::Stopped(Limit::Cancelled) => continue,
                    KeyOutcome::Stopped(Limit::Steps) if short => {
                        lock(&undecided).push(key);
                        continue;
                    }
                    KeyOutcome::Stopped(limit) => Verdict::Unknown(self.limits.reason(limit)),
                };
                if verdict.is_violation() {
                    self.refuted(key);
                }
                lock(&self.verdicts)[key] = Some(verdict);
            }
        };
        // determinism-ok: keys are searched independently; the module doc
        // says why the verdict does not depend on the threads' timing.
        std::thread::scope(|scope| {
            for _ in 1..workers {
                scope.spawn(work);
            }
            work();
        });
        let mut stopped = vec![false; self.keys.len()];
        for &key in lock(&undecided).iter() {
            stopped[key] = true;
        }
        pending.iter().copied().filter(|&k| stopped[k]).collect()
    }

    /// Cancels the keys whose verdicts no longer matter once `key` is refuted.
    fn refuted(&self, key: usize) {
        let from = if self.deadline.is_some() { 0 } else { key + 1 };
        for (other, flag) in self.cancel.iter().enumerate().skip(from) {
            if other != key {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The lowest refuted key's violation, else the lowest unsettled key's
    /// unknown, else linearizable.
    fn verdict(self) -> Verdict<NonLinearizable> {
        let verdicts = self
            .verdicts
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut unknown = None;
        for ((key, _), verdict) in self.keys.iter().zip(verdicts) {
            match verdict {
                Some(Verdict::Violation(mut evidence)) => {
                    evidence.key = Some(key.to_string());
                    return Verdict::Violation(evidence);
                }
                Some(Verdict::Unknown(reason)) => {
                    unknown.get_or_insert_with(|| format!("{reason} on key {key:?}"));
                }
                Some(Verdict::Ok) | None => {}
            }
        }
        unknown.map_or(Verdict::Ok, Verdict::Unknown)
    }
}

/// Locks a mutex whose holders never panic while holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::explain::NonLinearizable;
    use crate::history::{EventType, Op};

    /// `n` reads of each key, enough to be checked in parallel.
    fn ops(keys: &[&str], n: usize) -> Vec<Operation> {
        let read = |key: &str, t: u64| Operation {
            process: 0,
            op: Op::Read {
                key: key.into(),
                value: None,
            },
            invoke_time: t,
            complete_time: Some(t),
            kind: EventType::Ok,
            result: None,
            siblings: Vec::new(),
        };
        (0..n)
            .flat_map(|t| keys.iter().map(move |&k| read(k, t as u64)))
            .collect()
    }

    fn refuted() -> Verdict<NonLinearizable> {
        Verdict::Violation(NonLinearizable {
            key: None,
            operations: 0,
            initial_state: "unset".into(),
            prefix: Vec::new(),
            blocked: Vec::new(),
            conflict: None,
        })
    }

    /// Checks keys whose searches "need" the given steps (`None`: refuted
    /// at once); returns the verdict and the budgets each key was given.
    fn run(
        needs: &[(&str, Option<u64>)],
        limits: &SearchLimits,
    ) -> (Verdict<NonLinearizable>, BTreeMap<String, Vec<Option<u64>>>) {
        let keys: Vec<&str> = needs.iter().map(|&(k, _)| k).collect();
        let ops = ops(&keys, PARALLEL_MIN_OPS);
        let budgets = Mutex::new(BTreeMap::<String, Vec<Option<u64>>>::new());
        let verdict = check_keys(&ops, limits, |indexes, bounds| {
            let key = ops[indexes[0]].op.key();
            lock(&budgets)
                .entry(key.to_string())
                .or_default()
                .push(bounds.step_limit);
            match needs.iter().find(|&&(k, _)| k == key).and_then(|&(_, n)| n) {
                None => KeyOutcome::Done(refuted()),
                Some(n) if bounds.step_limit.is_some_and(|l| l < n) => {
                    KeyOutcome::Stopped(Limit::Steps)
                }
                Some(_) => KeyOutcome::Done(Verdict::Ok),
            }
        });
        (verdict, budgets.into_inner().unwrap())
    }

    #[test]
    fn keys_the_probe_leaves_open_get_the_whole_budget() {
        let hard = PROBE_STEPS * 2;
        let needs = [("a", Some(hard)), ("b", Some(10)), ("c", Some(10))];
        let (verdict, budgets) = run(&needs, &SearchLimits::DETERMINISTIC);
        assert_eq!(verdict, Verdict::Ok);
        let full = SearchLimits::DETERMINISTIC.step_limit;
        assert_eq!(budgets["a"], [Some(PROBE_STEPS), full]);
        assert_eq!(budgets["b"], [Some(PROBE_STEPS)]);
        let short = SearchLimits {
            step_limit: Some(hard - 1),
            ..SearchLimits::DETERMINISTIC
        };
        let (verdict, _) = run(&needs, &short);
        let reason = format!("step budget of {} steps reached on key \"a\"", hard - 1);
        assert_eq!(verdict, Verdict::Unknown(reason));
    }

    #[test]
    fn the_lowest_refuted_key_is_reported_and_a_refutation_beats_unknown() {
        let needs = [
            ("a", Some(u64::MAX)),
            ("b", Some(10)),
            ("c", None),
            ("d", None),
        ];
        for _ in 0..3 {
            let (Verdict::Violation(evidence), budgets) = run(&needs, &SearchLimits::DETERMINISTIC)
            else {
                panic!("not refuted");
            };
            assert_eq!(evidence.key.as_deref(), Some("c"));
            // The key below the refuted one ran to its end.
            assert_eq!(
                budgets["a"].last(),
                Some(&SearchLimits::DETERMINISTIC.step_limit)
            );
        }
    }
}
