//! The set workload: clients insert unique elements (`c<process>-<n>`),
//! remove elements they inserted earlier, and read whole sets (a sorted
//! JSON array of strings).

use std::collections::BTreeMap;

use rand::Rng;

use super::{Workload, WorkloadSpec, client_rng, key};
use crate::{
    check::{Verdict, durability, explain::NonLinearizable, linearizable::SearchLimits, set},
    history::{Op, Operation},
};

/// Inserts, removes and reads, checked against a set of strings per key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Set;

impl Workload for Set {
    fn name(&self) -> &str {
        "set"
    }

    fn kinds(&self) -> &[&'static str] {
        &["read", "insert", "remove"]
    }

    fn operations(&self, spec: &WorkloadSpec, seed: u64, process: u64) -> Vec<Op> {
        let mut rng = client_rng(seed, process);
        let total = spec.mix.total();
        // Elements this client inserted, per key, that it may remove.
        let mut inserted: Vec<Vec<String>> = vec![Vec::new(); spec.keys];
        (0..spec.ops_per_client)
            .map(|n| {
                let k = rng.random_range(0..spec.keys);
                let key = key(k);
                match spec.mix.pick(self.kinds(), rng.random_range(0..total)) {
                    "read" => Op::Read { key, value: None },
                    "remove" if !inserted[k].is_empty() => {
                        let i = rng.random_range(0..inserted[k].len());
                        let element = inserted[k].swap_remove(i);
                        Op::Remove { key, element }
                    }
                    _ => {
                        let element = format!("c{process}-{n}");
                        inserted[k].push(element.clone());
                        Op::Insert { key, element }
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
        set::linearizability(ops, limits)
    }

    fn durability(
        &self,
        ops: &[Operation],
        final_reads: &BTreeMap<String, Option<String>>,
    ) -> Verdict<durability::LostWrites> {
        set::durability(ops, final_reads)
    }
}
