//! Seeded key-value histories for the checker's benchmark and tests, and
//! their text in Porcupine's key-value log format.
//!
//! [`Spec::generate`] simulates a linearizable store: each client runs one
//! operation at a time, each operation takes effect at a random point
//! inside its interval, and (optionally) some time out (`info`), having
//! taken effect or not. Written values are unique (`v17`: the 17th
//! operation's) or, as in Jepsen's cas-register workload, drawn from a
//! small range. A [`Spec::stale_read`] plants one read that returns a value
//! overwritten before the read was invoked: the history is then not
//! linearizable, provably so.
//!
//! ```
//! use replisim::check::generate::{Spec, porcupine_kv};
//!
//! let spec = Spec { cas: false, timeouts: false, ..Spec::new(100, 2, 5, 1) };
//! let text = porcupine_kv(&spec.generate()).unwrap();
//! assert_eq!(text.lines().count(), 200);
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{Completion, EventType, History, Op};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Operations in all.
    pub ops: usize,
    pub keys: usize,
    /// Concurrent clients, each running one operation at a time.
    pub clients: usize,
    pub seed: u64,
    /// Compare-and-sets among the operations (else only reads and writes).
    pub cas: bool,
    /// About 2% of the operations time out (`info`).
    pub timeouts: bool,
    /// Every write writes a value of its own (else one of 5 values).
    pub unique: bool,
    /// One read in the second half returns a stale value (needs `unique`
    /// and a write overwritten before some read; else nothing is planted).
    pub stale_read: bool,
}

impl Spec {
    /// Reads, writes and compare-and-sets with unique values, about 2%
    /// timing out, linearizable.
    pub fn new(ops: usize, keys: usize, clients: usize, seed: u64) -> Spec {
        Spec {
            ops,
            keys,
            clients,
            seed,
            cas: true,
            timeouts: true,
            unique: true,
            stale_read: false,
        }
    }

    /// The history; times are nanoseconds. The same spec gives the same
    /// history.
    pub fn generate(&self) -> History {
        let mut planned = self.plan();
        let mut by_effect: Vec<usize> = (0..planned.len()).collect();
        by_effect.sort_by_key(|&i| planned[i].effect);
        let mut store: BTreeMap<String, String> = BTreeMap::new();
        for i in by_effect {
            let p = &mut planned[i];
            let current = store.get(p.op.key()).cloned();
            p.outcome = match &p.op {
                Op::Read { .. } => Completion::Ok(current),
                Op::Cas { from, .. } if current.as_ref() != Some(from) => {
                    Completion::Fail("mismatch".into())
                }
                Op::Write { key, value } | Op::Cas { key, to: value, .. } => {
                    if p.happens {
                        store.insert(key.clone(), value.clone());
                    }
                    Completion::Ok(None)
                }
                other => {
                    unreachable!("the generator draws key-value operations only, not {other:?}")
                }
            };
            if p.timed_out {
                p.outcome = Completion::Info("timeout".into());
            }
        }
        if self.stale_read && self.unique {
            plant_stale_read(&mut planned);
        }
        let mut events: Vec<(u64, bool, usize)> = planned
            .iter()
            .enumerate()
            .flat_map(|(i, p)| [(p.invoke, false, i), (p.complete, true, i)])
            .collect();
        events.sort_unstable();
        let mut history = History::default();
        for (time, is_completion, i) in events {
            let p = &planned[i];
            if is_completion {
                history.complete(p.client, time, p.op.clone(), &p.outcome);
            } else {
                history.invoke(p.client, time, p.op.clone());
            }
        }
        history
    }

    /// Every operation with its interval and effect point, not yet its outcome.
    fn plan(&self) -> Vec<Planned> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let keys = self.keys.max(1);
        let mut free: BinaryHeap<Reverse<(u64, u64)>> = (0..self.clients.max(1) as u64)
            .map(|c| Reverse((0, c)))
            .collect();
        let mut planned = Vec::with_capacity(self.ops);
        for n in 0..self.ops {
            let Some(Reverse((start, client))) = free.pop() else {
                break;
            };
            let invoke = start + rng.random_range(1..1_000);
            let complete = invoke + rng.random_range(1_000..100_000);
            let effect = rng.random_range(invoke..=complete);
            let key = format!("k{}", rng.random_range(0..keys));
            let value = |rng: &mut ChaCha8Rng, back: usize| match self.unique {
                true => format!("v{}", n.saturating_sub(back)),
                false => rng.random_range(0..5).to_string(),
            };
            let op = match rng.random_range(0..10) {
                0..5 => Op::Read { key, value: None },
                8.. if self.cas => {
                    let back = rng.random_range(1..50);
                    Op::Cas {
                        key,
                        from: value(&mut rng, back),
                        to: value(&mut rng, 0),
                    }
                }
                _ => Op::Write {
                    key,
                    value: value(&mut rng, 0),
                },
            };
            let timed_out = self.timeouts && rng.random_bool(0.02);
            planned.push(Planned {
                client,
                invoke,
                effect,
                complete,
                op,
                happens: !timed_out || rng.random_bool(0.5),
                timed_out,
                outcome: Completion::Ok(None),
            });
            free.push(Reverse((complete, client)));
        }
        planned
    }
}

/// One generated operation.
struct Planned {
    client: u64,
    invoke: u64,
    effect: u64,
    complete: u64,
    op: Op,
    happens: bool,
    timed_out: bool,
    outcome: Completion,
}

impl Planned {
    /// The value this operation definitely wrote, if it did.
    fn written(&self) -> Option<&str> {
        match (&self.op, &self.outcome) {
            (Op::Write { value, .. } | Op::Cas { to: value, .. }, Completion::Ok(_)) => Some(value),
            _ => None,
        }
    }
}

/// Makes the first read of the second half that can be made stale read
/// a value written by `old` and overwritten by `new`, where `old`
/// completed before `new` was invoked and `new` completed before the read
/// was invoked: with unique values no linearization allows it.
fn plant_stale_read(planned: &mut [Planned]) {
    for r in planned.len() / 2..planned.len() {
        if !matches!(planned[r].op, Op::Read { .. }) {
            continue;
        }
        let before = |limit: u64| {
            planned
                .iter()
                .filter(|w| w.op.key() == planned[r].op.key() && w.complete < limit)
                .filter(|w| w.written().is_some())
                .max_by_key(|w| w.complete)
        };
        let Some(new) = before(planned[r].invoke) else {
            continue;
        };
        let Some(old) = before(new.invoke).and_then(Planned::written) else {
            continue;
        };
        let stale = old.to_string();
        planned[r].outcome = Completion::Ok(Some(stale));
        return;
    }
}

/// An operation Porcupine's key-value log cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Porcupine's key-value log holds only ok gets, puts and appends, not {0}")]
pub struct NotKv(String);

/// The history as Porcupine's key-value log (`test_data/kv/*.txt`): one
/// EDN map per event, in order (times are not written; order is what
/// counts); an unset key reads as `""`, Porcupine's initial value.
pub fn porcupine_kv(history: &History) -> Result<String, NotKv> {
    let mut out = String::new();
    for e in &history.events {
        let (f, value) = match &e.op {
            Op::Read { value, .. } => ("get", value.as_deref().unwrap_or("")),
            Op::Write { value, .. } => ("put", value.as_str()),
            Op::Append { value, .. } => ("append", value.as_str()),
            other => return Err(NotKv(format!("{} operations", other.name()))),
        };
        let (kind, value) = match e.kind {
            EventType::Invoke if f == "get" => ("invoke", "nil".to_string()),
            EventType::Invoke => ("invoke", format!("{value:?}")),
            EventType::Ok => ("ok", format!("{value:?}")),
            EventType::Fail | EventType::Info => {
                return Err(NotKv("fail or info completions".into()));
            }
        };
        let _ = writeln!(
            out,
            "{{:process {}, :type :{kind}, :f :{f}, :key {:?}, :value {value}}}",
            e.process,
            e.op.key()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::check::linearizable::{SearchLimits, check_history};
    use crate::history::{Conventions, Format, parse};

    #[test]
    fn generated_histories_are_linearizable_and_deterministic() {
        let spec = Spec::new(2_000, 3, 5, 7);
        let history = spec.generate();
        assert_eq!(history, spec.generate());
        assert_eq!(history.operations().len(), 2_000);
        let verdict = check_history(&history, &Conventions::default(), &SearchLimits::default());
        assert_eq!(verdict, Verdict::Ok);
        let repeated = Spec {
            unique: false,
            ..spec
        };
        let verdict = check_history(
            &repeated.generate(),
            &Conventions::default(),
            &SearchLimits::default(),
        );
        assert_eq!(verdict, Verdict::Ok);
    }

    #[test]
    fn a_planted_stale_read_survives_the_round_trip_through_porcupines_format() {
        let spec = Spec {
            cas: false,
            timeouts: false,
            stale_read: true,
            ..Spec::new(400, 1, 10, 3)
        };
        let history = spec.generate();
        let text = porcupine_kv(&history).unwrap();
        let imported = parse(&text, Some(Format::PorcupineKv)).unwrap();
        assert_eq!(imported.history.operations().len(), 400);
        let verdict = check_history(
            &imported.history,
            &imported.conventions,
            &SearchLimits::default(),
        );
        assert!(verdict.is_violation(), "{verdict:?}");
        let fine = Spec {
            stale_read: false,
            ..spec
        }
        .generate();
        let imported = parse(porcupine_kv(&fine).unwrap(), Some(Format::PorcupineKv)).unwrap();
        let verdict = check_history(
            &imported.history,
            &imported.conventions,
            &SearchLimits::default(),
        );
        assert_eq!(verdict, Verdict::Ok);
        assert!(porcupine_kv(&Spec::new(100, 1, 3, 1).generate()).is_err());
    }
}
