//! Workloads: what clients do, generated from the scenario's seed.
//!
//! Every client runs its operations one after another with a think time
//! between them. Written values are unique per run (`c<process>-<n>`), and
//! appends add `c<process>-<n>;` so that a read tells which writes it saw.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::scenario::{ScenarioError, millis};
use crate::history::Op;

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

/// Relative weights of reads, writes, appends and compare-and-sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    pub read: u32,
    pub write: u32,
    pub append: u32,
    pub cas: u32,
}

impl Mix {
    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.read + self.write + self.append + self.cas
    }
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            ops_per_client: 50,
            keys: 4,
            mix: Mix {
                read: 2,
                write: 2,
                append: 1,
                cas: 1,
            },
            think_time: Duration::from_millis(5),
        }
    }
}

impl WorkloadSpec {
    pub(crate) fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |field: &str, problem: &str| ScenarioError::Invalid {
            field: format!("workload.{field}"),
            problem: problem.to_string(),
        };
        if self.keys == 0 {
            return Err(bad("keys", "must be at least 1"));
        }
        if self.mix.total() == 0 {
            return Err(bad("mix", "all weights are zero"));
        }
        Ok(())
    }

    /// The operations of client `process` in a run seeded with `seed`.
    /// A compare-and-set expects the value this client last wrote to that
    /// key (so some succeed and some fail).
    pub fn operations(&self, seed: u64, process: u64) -> Vec<Op> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ process.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut last_written: Vec<Option<String>> = vec![None; self.keys];
        let Mix {
            read,
            write,
            append,
            ..
        } = self.mix;
        (0..self.ops_per_client)
            .map(|n| {
                let k = rng.random_range(0..self.keys);
                let key = format!("k{k}");
                let value = format!("c{process}-{n}");
                let pick = rng.random_range(0..self.mix.total());
                if pick < read {
                    Op::Read { key, value: None }
                } else if pick < read + write {
                    last_written[k] = Some(value.clone());
                    Op::Write { key, value }
                } else if pick < read + write + append {
                    last_written[k] = None;
                    Op::Append {
                        key,
                        value: format!("{value};"),
                    }
                } else {
                    let from = last_written[k].take().unwrap_or_default();
                    last_written[k] = Some(value.clone());
                    Op::Cas {
                        key,
                        from,
                        to: value,
                    }
                }
            })
            .collect()
    }
}
