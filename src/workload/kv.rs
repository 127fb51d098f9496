//! The key-value workload: reads, writes, appends and compare-and-sets on
//! string values. Written values are unique per run (`c<process>-<n>`),
//! and appends add `c<process>-<n>;`, so that a read tells which writes it
//! saw. A compare-and-set expects the value this client last wrote to that
//! key (so some succeed and some fail).

use std::collections::BTreeMap;

use rand::Rng;

use super::{Workload, WorkloadSpec, client_rng, key};
use crate::{
    check::{
        Verdict, durability, explain::NonLinearizable, linearizable, linearizable::SearchLimits,
        siblings,
    },
    history::{Format, Op, Operation},
};

/// Reads, writes, appends and compare-and-sets, checked against a
/// string-valued register per key.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyValue;

impl Workload for KeyValue {
    fn name(&self) -> &str {
        "kv"
    }

    fn kinds(&self) -> &[&'static str] {
        &["read", "write", "append", "cas"]
    }

    fn operations(&self, spec: &WorkloadSpec, seed: u64, process: u64) -> Vec<Op> {
        let mut rng = client_rng(seed, process);
        let value = |n: usize| format!("c{process}-{n}");
        // Which of this client's operations last wrote each key's value.
        let mut last_written: Vec<Option<usize>> = vec![None; spec.keys];
        let total = spec.mix.total();
        (0..spec.ops_per_client)
            .map(|n| {
                let k = rng.random_range(0..spec.keys);
                let key = key(k);
                match spec.mix.pick(self.kinds(), rng.random_range(0..total)) {
                    "read" => Op::Read { key, value: None },
                    "write" => {
                        last_written[k] = Some(n);
                        Op::Write {
                            key,
                            value: value(n),
                        }
                    }
                    "append" => {
                        last_written[k] = None;
                        Op::Append {
                            key,
                            value: format!("{};", value(n)),
                        }
                    }
                    _ => {
                        let from = last_written[k].replace(n).map(value).unwrap_or_default();
                        Op::Cas {
                            key,
                            from,
                            to: value(n),
                        }
                    }
                }
            })
            .collect()
    }

    fn linearizability(
        &self,
        ops: &[Operation],
        limits: &SearchLimits,
    ) -> Verdict<NonLinearizable> {
        linearizable::check_operations(ops, &Format::Json.conventions(), limits)
    }

    fn durability(
        &self,
        ops: &[Operation],
        final_reads: &BTreeMap<String, Option<String>>,
    ) -> Verdict<durability::LostWrites> {
        durability::check(ops, final_reads)
    }
}

/// Reads and writes only, judged like [`KeyValue`]: the operations a
/// register replicated without coordination (last-writer-wins) can serve.
#[derive(Debug, Clone, Copy, Default)]
pub struct Registers;

impl Workload for Registers {
    fn name(&self) -> &str {
        "registers"
    }

    fn kinds(&self) -> &[&'static str] {
        &["read", "write"]
    }

    fn operations(&self, spec: &WorkloadSpec, seed: u64, process: u64) -> Vec<Op> {
        KeyValue.operations(spec, seed, process)
    }

    fn linearizability(
        &self,
        ops: &[Operation],
        limits: &SearchLimits,
    ) -> Verdict<NonLinearizable> {
        KeyValue.linearizability(ops, limits)
    }

    fn durability(
        &self,
        ops: &[Operation],
        final_reads: &BTreeMap<String, Option<String>>,
    ) -> Verdict<durability::LostWrites> {
        KeyValue.durability(ops, final_reads)
    }
}

/// Reads and writes of multi-value registers (a Dynamo-style store): a
/// read returns every concurrent value, its siblings
/// ([`crate::history::Completion::Siblings`]), and a client's write
/// supersedes what its client observed of the key. Durability is
/// [`siblings::durability`]: every acknowledged write among the final
/// siblings, or superseded by a write whose context included it. The
/// register's model (linearizability) sees the first value of each read.
#[derive(Debug, Clone, Copy, Default)]
pub struct MultiValue;

impl Workload for MultiValue {
    fn name(&self) -> &str {
        "multi-value"
    }

    fn kinds(&self) -> &[&'static str] {
        Registers.kinds()
    }

    fn operations(&self, spec: &WorkloadSpec, seed: u64, process: u64) -> Vec<Op> {
        Registers.operations(spec, seed, process)
    }

    fn linearizability(
        &self,
        ops: &[Operation],
        limits: &SearchLimits,
    ) -> Verdict<NonLinearizable> {
        Registers.linearizability(ops, limits)
    }

    /// The value each final read recorded first; [`Workload::durability_of_final_reads`]
    /// judges every sibling.
    fn durability(
        &self,
        ops: &[Operation],
        final_reads: &BTreeMap<String, Option<String>>,
    ) -> Verdict<durability::LostWrites> {
        Registers.durability(ops, final_reads)
    }

    fn durability_of_final_reads(
        &self,
        ops: &[Operation],
        final_reads: &[Operation],
    ) -> Verdict<durability::LostWrites> {
        siblings::durability(ops, final_reads)
    }
}
