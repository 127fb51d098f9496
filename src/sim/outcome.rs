//! [`Outcome`]: what a run produced, and the [`Verdicts`] the checkers
//! reach on it.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::scenario::Scenario;
use crate::{
    check::{
        Verdict, availability, convergence, durability,
        explain::NonLinearizable,
        linearizable::{self, SearchLimits},
        stats::{self, FaultWindow, PhaseStats},
    },
    history::{Format, History, Operation},
    node::ReplicaState,
};

/// Counters of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    pub simulated_ms: u64,
    pub faults_applied: usize,
    /// Trace events folded into the digest.
    pub trace_events: u64,
    /// What the faults did, by kind (see [`crate::effect`]): nodes crashed,
    /// messages dropped, connections broken, disk bytes dropped...
    pub effects: BTreeMap<String, u64>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub scenario: Scenario,
    pub history: History,
    /// Each surviving replica's state after quiescence (`None`: it never
    /// came back up to report).
    pub replica_states: BTreeMap<usize, Option<ReplicaState>>,
    /// Replicas lost for good.
    pub lost: Vec<usize>,
    pub fault_windows: Vec<FaultWindow>,
    /// Whether the final reads finished within their limit.
    pub final_reads_done: bool,
    pub stats: RunStats,
    /// When each message was delivered (simulated ns), for per-phase statistics.
    #[serde(default)]
    pub message_times: Vec<u64>,
    /// Digest of the ordered trace events: equal digests, equal runs.
    pub digest: u64,
}

impl Outcome {
    /// The digest as 16 hex digits.
    pub fn digest_hex(&self) -> String {
        format!("{:016x}", self.digest)
    }

    /// The values the final reads saw, by key (keys whose read failed are absent).
    pub fn final_reads(&self) -> BTreeMap<String, Option<String>> {
        let reader = self.scenario.clients as u64;
        self.history
            .operations()
            .into_iter()
            .filter(|op| op.process == reader && op.is_ok())
            .map(|op| (op.op.key().to_string(), op.result))
            .collect()
    }

    /// The clients' operations, without the final reads.
    pub fn workload_operations(&self) -> Vec<Operation> {
        let reader = self.scenario.clients as u64;
        let mut operations = self.history.operations();
        operations.retain(|op| op.process != reader);
        operations
    }

    /// Availability, latency and messages per operation before, during and
    /// after each fault.
    pub fn phases(&self) -> Vec<PhaseStats> {
        stats::phase_stats(
            &self.workload_operations(),
            &self.fault_windows,
            &self.message_times,
        )
    }

    /// Runs the checkers.
    pub fn verdicts(&self) -> Verdicts {
        self.verdicts_within(&SearchLimits::default())
    }

    /// Runs the checkers, the linearizability search within `limits` (it
    /// answers `unknown` past them).
    pub fn verdicts_within(&self, limits: &SearchLimits) -> Verdicts {
        Verdicts {
            linearizability: linearizable::check_history(
                &self.history,
                &Format::Json.conventions(),
                limits,
            ),
            durability: durability::check(&self.history, &self.final_reads()),
            convergence: convergence::check(&self.replica_states),
            availability: availability::measure(&self.workload_operations(), &self.fault_windows),
        }
    }
}

/// The checkers' findings on one outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdicts {
    /// The whole history, final reads included, against a key-value store.
    pub linearizability: Verdict<NonLinearizable>,
    pub durability: Verdict<durability::Evidence>,
    pub convergence: Verdict<convergence::Evidence>,
    pub availability: availability::Availability,
}

impl Verdicts {
    /// Whether every safety check holds (availability is measured, not judged).
    pub fn passed(&self) -> bool {
        self.linearizability.is_ok() && self.durability.is_ok() && self.convergence.is_ok()
    }

    /// Whether some safety check found a violation (`unknown` is none).
    pub fn violated(&self) -> bool {
        self.linearizability.is_violation()
            || self.durability.is_violation()
            || self.convergence.is_violation()
    }
}

impl fmt::Display for Verdicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "linearizable: {}", self.linearizability)?;
        writeln!(f, "durability:   {}", self.durability)?;
        writeln!(f, "convergence:  {}", self.convergence)?;
        write!(f, "availability: {}", self.availability)
    }
}
