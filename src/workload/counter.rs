//! The counter workload: clients add amounts (possibly negative) to
//! counters and read them. Amounts are small and never zero, so a read
//! tells which adds it saw.

use std::collections::BTreeMap;

use rand::Rng;

use super::{Workload, WorkloadSpec, client_rng, key};
use crate::{
    check::{Verdict, counter, durability, explain::NonLinearizable, linearizable::SearchLimits},
    history::{Op, Operation},
};

/// Adds and reads, checked against an integer counter per key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

impl Workload for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn kinds(&self) -> &[&'static str] {
        &["read", "add"]
    }

    fn operations(&self, spec: &WorkloadSpec, seed: u64, process: u64) -> Vec<Op> {
        let mut rng = client_rng(seed, process);
        let total = spec.mix.total();
        (0..spec.ops_per_client)
            .map(|_| {
                let key = key(rng.random_range(0..spec.keys));
                match spec.mix.pick(self.kinds(), rng.random_range(0..total)) {
                    "read" => Op::Read { key, value: None },
                    _ => {
                        let amount = rng.random_range(1..=9);
                        let amount = if rng.random_bool(0.3) {
                            -amount
                        } else {
                            amount
                        };
                        Op::Add { key, amount }
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
        counter::linearizability(ops, limits)
    }

    fn durability(
        &self,
        ops: &[Operation],
        final_reads: &BTreeMap<String, Option<String>>,
    ) -> Verdict<durability::LostWrites> {
        counter::durability(ops, final_reads)
    }
}
