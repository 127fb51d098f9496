//! Workloads: what clients do, and how the history they record is judged.
//!
//! A [`Workload`] defines its operations (which kinds a [`Mix`] weighs, and
//! how each client's operations are generated from the scenario's seed),
//! the reads that observe the final state, and the checks that fit it: its
//! sequential model for linearizability and its own notion of a lost
//! acknowledged write. The sizes (clients, operations, keys, think time,
//! the mix) are the scenario's [`WorkloadSpec`]; proptest shrinks them
//! (see [`crate::strategy`]), so generation shrinks with them.
//!
//! Five ship: [`KeyValue`] (read, write, append, compare-and-set),
//! [`Registers`] (its reads and writes only), [`MultiValue`] (reads and
//! writes of registers whose reads return siblings),
//! [`Counter`] (add an amount, possibly negative; read) and [`Set`]
//! (insert, remove, read). A system says which one it serves
//! ([`crate::node::System::workload`]). A user's own workload implements
//! the trait in their crate, with [`Op::Call`] operations and a model of
//! their own:
//!
//! ```
//! use std::collections::BTreeMap;
//! use replisim::check::{Verdict, durability, explain::NonLinearizable};
//! use replisim::check::linearizable::SearchLimits;
//! use replisim::history::{Op, Operation};
//! use replisim::workload::{Workload, WorkloadSpec, key};
//!
//! /// Clients toggle a flag and read it.
//! struct Flags;
//!
//! impl Workload for Flags {
//!     fn name(&self) -> &str { "flags" }
//!     fn kinds(&self) -> &[&'static str] { &["read", "toggle"] }
//!     fn operations(&self, spec: &WorkloadSpec, _seed: u64, _process: u64) -> Vec<Op> {
//!         (0..spec.ops_per_client)
//!             .map(|n| Op::Call { key: key(n % spec.keys), name: "toggle".into(), arg: None, value: None })
//!             .collect()
//!     }
//!     fn linearizability(&self, _ops: &[Operation], _limits: &SearchLimits) -> Verdict<NonLinearizable> {
//!         Verdict::Unknown("flags have no model yet".into())
//!     }
//!     fn durability(&self, _ops: &[Operation], _final: &BTreeMap<String, Option<String>>)
//!         -> Verdict<durability::LostWrites> {
//!         Verdict::Ok
//!     }
//! }
//!
//! let spec = WorkloadSpec::default();
//! assert_eq!(Flags.operations(&spec, 1, 0).len(), spec.ops_per_client);
//! assert!(Flags.validate(&spec).is_err(), "the default mix names key-value operations");
//! ```

mod counter;
mod kv;
mod set;

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

pub use counter::Counter;
pub use kv::{KeyValue, MultiValue, Registers};
pub use set::Set;

use crate::{
    check::{Verdict, durability, explain::NonLinearizable, linearizable::SearchLimits},
    history::{Op, Operation},
};

/// A family of client operations, their generation and their checks.
pub trait Workload {
    /// A short name for reports (`kv`, `counter`, `set`).
    fn name(&self) -> &str;

    /// The operation kinds a [`Mix`] weighs, simplest first: strategies
    /// always draw the first two and shrink the others away.
    fn kinds(&self) -> &[&'static str];

    /// The operations of client `process` in a run seeded with `seed`.
    fn operations(&self, spec: &WorkloadSpec, seed: u64, process: u64) -> Vec<Op>;

    /// The reads that observe the final state after the cluster quiesced:
    /// by default one [`Op::Read`] of every key.
    fn final_reads(&self, spec: &WorkloadSpec) -> Vec<Op> {
        (0..spec.keys)
            .map(|k| Op::Read {
                key: key(k),
                value: None,
            })
            .collect()
    }

    /// Linearizability of the whole history's operations (final reads
    /// included, as [`crate::history::History::operations`] pairs them) against this
    /// workload's sequential model.
    fn linearizability(&self, ops: &[Operation], limits: &SearchLimits)
    -> Verdict<NonLinearizable>;

    /// Whether every acknowledged mutation among `ops` is reflected in the
    /// final reads (key to value; keys whose final read failed are absent).
    fn durability(
        &self,
        ops: &[Operation],
        final_reads: &BTreeMap<String, Option<String>>,
    ) -> Verdict<durability::LostWrites>;

    /// Durability judged from the final reads themselves (`final_reads`:
    /// the `ok` ones say what the keys hold, siblings included): by
    /// default [`Workload::durability`] over the value each returned. A
    /// workload whose reads return siblings judges them all
    /// ([`MultiValue`]).
    fn durability_of_final_reads(
        &self,
        ops: &[Operation],
        final_reads: &[Operation],
    ) -> Verdict<durability::LostWrites> {
        self.durability(ops, &final_values(final_reads))
    }

    /// Checks a spec against this workload: the mix may weigh only
    /// [`Workload::kinds`], and not all of them zero.
    fn validate(&self, spec: &WorkloadSpec) -> Result<(), InvalidWorkload> {
        spec.validate_sizes()?;
        let bad = |problem: String| InvalidWorkload {
            field: "workload.mix".into(),
            problem,
        };
        if let Some(kind) = spec
            .mix
            .0
            .keys()
            .find(|k| !self.kinds().contains(&k.as_str()))
        {
            return Err(bad(format!(
                "the {} workload has no operation {kind:?} (it has {})",
                self.name(),
                self.kinds().join(", ")
            )));
        }
        if spec.mix.total() == 0 {
            return Err(bad("all weights are zero".into()));
        }
        Ok(())
    }
}

/// A workload spec its workload cannot run; `field` names the offending
/// part (`workload.mix`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidWorkload {
    pub field: String,
    pub problem: String,
}

/// The values the `ok` reads among `reads` returned, by key (the value
/// each recorded, siblings aside).
pub fn final_values(reads: &[Operation]) -> BTreeMap<String, Option<String>> {
    reads
        .iter()
        .filter(|op| op.is_ok())
        .map(|op| (op.op.key().to_string(), op.result.clone()))
        .collect()
}

/// The name of key number `k`: `k0`, `k1`, ...
pub fn key(k: usize) -> String {
    format!("k{k}")
}

/// The shape of the client workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub ops_per_client: usize,
    /// Keys are `k0` .. `k<keys-1>`.
    pub keys: usize,
    /// Relative weights of the operation kinds.
    pub mix: Mix,
    #[serde(with = "millis")]
    pub think_time: Duration,
}

/// Relative weights of a workload's operation kinds, by name (a kind left
/// out weighs nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mix(pub BTreeMap<String, u32>);

impl Mix {
    /// `kinds` with `weights`, pairwise.
    pub fn new(weights: impl IntoIterator<Item = (&'static str, u32)>) -> Self {
        Mix(weights
            .into_iter()
            .map(|(kind, weight)| (kind.to_string(), weight))
            .collect())
    }

    /// The weight of `kind` (0 if absent).
    pub fn weight(&self, kind: &str) -> u32 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.0.values().sum()
    }

    /// Draws one of `kinds` by weight from `pick` in `0..self.total()`.
    pub fn pick<'k>(&self, kinds: &[&'k str], mut pick: u32) -> &'k str {
        for kind in kinds {
            let weight = self.weight(kind);
            if pick < weight {
                return kind;
            }
            pick -= weight;
        }
        kinds.last().copied().unwrap_or_default()
    }
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            ops_per_client: 50,
            keys: 4,
            mix: Mix::new([("read", 2), ("write", 2), ("append", 1), ("cas", 1)]),
            think_time: Duration::from_millis(5),
        }
    }
}

impl WorkloadSpec {
    /// The default sizes with `kinds` weighted 2, 2, 1, 1, ... (the first
    /// two twice as often as the rest).
    pub fn for_kinds(kinds: &[&'static str]) -> Self {
        let weights = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| (*kind, if i < 2 { 2 } else { 1 }));
        WorkloadSpec {
            mix: Mix::new(weights),
            ..WorkloadSpec::default()
        }
    }

    fn validate_sizes(&self) -> Result<(), InvalidWorkload> {
        if self.keys == 0 {
            return Err(InvalidWorkload {
                field: "workload.keys".into(),
                problem: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// The seeded generator of one client's operations.
pub(crate) fn client_rng(seed: u64, process: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ process.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Durations as whole milliseconds in JSON.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}
