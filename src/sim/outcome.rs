//! [`Outcome`]: what a run produced, and the [`Verdicts`] the checkers
//! reach on it. The workload's own checks judge the history
//! (linearizability against its model, durability); convergence compares
//! the replicas' published states, log agreement their published logs;
//! every exit of a replica's software is judged expected or not. Only
//! the guarantees the system claims
//! can fail a run; the others are computed and shown apart.

use std::{cell::RefCell, collections::BTreeMap, fmt, rc::Rc};

use serde::{Deserialize, Serialize};

use super::{
    fault::{FaultCount, Trigger},
    scenario::Scenario,
};
use crate::{
    check::convergence::{Placement, ReplicaState},
    check::{
        Guarantee, Verdict, availability, convergence, durability,
        exits::{self, Exit, ExitCounts},
        explain::NonLinearizable,
        linearizable::SearchLimits,
        liveness,
        log_agreement::{self, LogDisagreement, PublishedLog},
        roles,
        staleness::{self, MissedOwnWrites, StaleReads, Staleness},
        stats::{self, FaultWindow, PhaseStats},
    },
    history::{History, Operation},
    points::PointCount,
    workload::{Workload, final_values},
};

/// The inert kinds among `faults` (by kind, as [`RunStats::faults`] and the
/// sweep's summaries hold them), described for a warning: `crash (3 fired,
/// none effective)`, `duplicate (not applicable: ...)`; `None` when every
/// kind that fired was effective at least once.
pub fn inert_faults(faults: &BTreeMap<String, FaultCount>) -> Option<String> {
    let inert: Vec<String> = faults
        .iter()
        .filter(|(_, count)| count.is_inert())
        .map(|(kind, count)| match count.is_not_applicable() {
            true => format!(
                "{kind} (not applicable: the system sent no message through replisim's \
                 framing or Network::message)"
            ),
            false => format!("{kind} ({} fired, none effective)", count.fired),
        })
        .collect();
    (!inert.is_empty()).then(|| inert.join(", "))
}

/// Counters of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    pub simulated_ms: u64,
    pub faults_applied: usize,
    /// Fired, effective and not applicable, by fault kind (`crash`,
    /// `partition`, ..., and the disk classes `torn-writes`, `io-errors`,
    /// `corruption`).
    pub faults: BTreeMap<String, FaultCount>,
    /// Trace events folded into the digest.
    pub trace_events: u64,
    /// What the faults did, by kind (see [`crate::effect`]): nodes crashed,
    /// messages dropped, connections broken, disk bytes dropped...
    pub effects: BTreeMap<String, u64>,
    /// Exits of the replicas' software, expected and not.
    #[serde(default)]
    pub exits: ExitCounts,
    /// How long after the last heal (the end of the workload, when every
    /// fault is healed) the surviving replicas' published states came to
    /// agree and stayed equal until the snapshot at the end of the quiet
    /// period; `None` when they did not agree then.
    #[serde(default)]
    pub converged_after_ms: Option<u64>,
    /// Each `buggify!` point reached in the run ([`crate::points`]): times
    /// reached, and `hits`, times fired.
    #[serde(default)]
    pub buggify: BTreeMap<String, PointCount>,
    /// Each `sometimes!` assertion reached: times reached, and `hits`,
    /// times it held.
    #[serde(default)]
    pub sometimes: BTreeMap<String, PointCount>,
}

impl RunStats {
    /// When the replicas came to agree, for reports: `12 ms after the last
    /// heal`, or that they did not.
    pub fn convergence(&self) -> String {
        match self.converged_after_ms {
            Some(ms) => format!("{ms} ms after the last heal"),
            None => "not by the end of the quiet period".into(),
        }
    }
}

/// A replica took a role in an epoch (`Some`), or gave it up (`None`), at
/// `time` (simulated ns), as the run loop saw it after a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    pub time: u64,
    pub replica: usize,
    pub role: String,
    pub epoch: Option<u64>,
}

/// A declared moment one replica reached in a run, and how often
/// ([`Outcome::moments_reached`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MomentReached {
    /// The trigger that matches the moment's events (from any replica).
    pub moment: Trigger,
    pub replica: usize,
    pub count: u32,
}

/// Everything a run produced.
#[derive(Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    /// The guarantees the system claims.
    pub claims: Vec<Guarantee>,
    /// The workload that generated the history and judges it.
    pub workload: Rc<dyn Workload>,
    pub history: History,
    /// Each surviving replica's state at the end of the quiet period,
    /// before the final reads (`None`: it never came back up to report).
    pub replica_states: BTreeMap<usize, Option<ReplicaState>>,
    /// Where each key of those states belongs, for a system that published
    /// a placement (empty: every key on every replica).
    pub placement: Placement,
    /// The logs the surviving replicas published after quiescence, by id
    /// (replicas that publish none are absent).
    pub replica_logs: BTreeMap<usize, PublishedLog>,
    /// The first committed entry the published logs showed replaced during
    /// the run (checked at every step, not only at the end).
    pub log_replaced: Option<LogDisagreement>,
    /// Replicas lost for good.
    pub lost: Vec<usize>,
    pub fault_windows: Vec<FaultWindow>,
    /// Every role a replica took or gave up, in order.
    pub role_changes: Vec<RoleChange>,
    /// Every exit of a replica's software, in order.
    pub exits: Vec<Exit>,
    /// Whether the final reads finished within their limit.
    pub final_reads_done: bool,
    pub stats: RunStats,
    /// When each message was delivered (simulated ns), for per-phase statistics.
    pub message_times: Vec<u64>,
    /// What the run reached: each pair of consecutive trace events of one
    /// host (keyed by a hash of their two callsites, stable within a
    /// build) with how often it occurred. Coverage-guided search
    /// ([`crate::guided`]) keeps the scenarios that reach new ones. Counted
    /// only when the run was asked to ([`super::RunOptions::coverage`]).
    pub trace_edges: BTreeMap<u64, u32>,
    /// The moments its system declares worth striking at
    /// ([`crate::node::Declaration::events`]) that each replica reached,
    /// with how often (in the declaration's order, then by host name): where
    /// a fault triggered on one would have struck. Counted only with
    /// [`super::RunOptions::coverage`].
    pub moments_reached: Vec<MomentReached>,
    /// Digest of the ordered trace events: equal digests, equal runs.
    pub digest: u64,
    /// The last verdicts computed, with the search limits they had: the
    /// checkers run once however often a test and its runner ask.
    pub(crate) checked: RefCell<Option<(SearchLimits, Verdicts)>>,
}

impl Outcome {
    /// The digest as 16 hex digits.
    pub fn digest_hex(&self) -> String {
        format!("{:016x}", self.digest)
    }

    /// The values the final reads saw, by key (keys whose read failed are absent).
    pub fn final_reads(&self) -> BTreeMap<String, Option<String>> {
        final_values(&self.final_read_operations())
    }

    /// The clients' operations, without the final reads.
    pub fn workload_operations(&self) -> Vec<Operation> {
        self.split_operations().0
    }

    /// The final reads, as operations (the liveness probes).
    pub fn final_read_operations(&self) -> Vec<Operation> {
        self.split_operations().1
    }

    /// The history's operations: the clients', and the final reads (the
    /// operator's, the process after the last client).
    fn split_operations(&self) -> (Vec<Operation>, Vec<Operation>) {
        let reader = self.scenario.clients as u64;
        self.history
            .operations()
            .into_iter()
            .partition(|op| op.process != reader)
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

    /// Moments (simulated ns) a role was given up (a crash, a loss, a
    /// step-down) and no other replica held it: the leader or primary is
    /// gone.
    pub fn role_losses(&self) -> Vec<u64> {
        let mut holders: BTreeMap<&str, BTreeMap<usize, u64>> = BTreeMap::new();
        let mut losses = Vec::new();
        for change in &self.role_changes {
            let held = holders.entry(change.role.as_str()).or_default();
            match change.epoch {
                Some(epoch) => {
                    held.insert(change.replica, epoch);
                }
                None => {
                    if held.remove(&change.replica).is_some() && held.is_empty() {
                        losses.push(change.time);
                    }
                }
            }
        }
        losses
    }

    /// After each of [`Outcome::role_losses`], the simulated ns until the
    /// next write was acknowledged (losses with no later acknowledged
    /// write are left out): how long the system took to recover its leader.
    pub fn recovery_times(&self) -> Vec<u64> {
        stats::times_to_next_write(&self.workload_operations(), &self.role_losses())
    }

    /// Runs the checkers.
    pub fn verdicts(&self) -> Verdicts {
        self.verdicts_within(&SearchLimits::default())
    }

    /// Runs the checkers, the linearizability search within `limits` (it
    /// answers `unknown` past them).
    pub fn verdicts_within(&self, limits: &SearchLimits) -> Verdicts {
        if let Some((checked_with, verdicts)) = &*self.checked.borrow()
            && checked_with == limits
        {
            return verdicts.clone();
        }
        let verdicts = self.check(limits);
        *self.checked.borrow_mut() = Some((*limits, verdicts.clone()));
        verdicts
    }

    /// The verdicts last computed on this outcome, if any.
    pub fn checked_verdicts(&self) -> Option<Verdicts> {
        self.checked.borrow().as_ref().map(|(_, v)| v.clone())
    }

    /// Every checker, over the history paired into operations once.
    fn check(&self, limits: &SearchLimits) -> Verdicts {
        let ops = self.history.operations();
        let (workload, probes) = self.split_operations();
        // Staleness is a register's notion: a workload with other
        // operations is not judged, even in a run that drew none of them.
        let other = self
            .workload
            .kinds()
            .iter()
            .find(|kind| !staleness::REGISTER_OPERATIONS.contains(kind));
        Verdicts {
            claims: self.claims.clone(),
            linearizability: self.workload.linearizability(&ops, limits),
            durability: self.workload.durability_of_final_reads(&ops, &probes),
            convergence: convergence::check(&self.replica_states, &self.placement),
            liveness: liveness::check(&workload, &probes, &self.fault_windows),
            exits: exits::check(&self.exits),
            log_agreement: match &self.log_replaced {
                Some(replaced) => Verdict::Violation(replaced.clone()),
                None => log_agreement::check_published(&self.replica_logs),
            },
            no_stale_read: other.map_or_else(
                || staleness::no_stale_read(&workload),
                |kind| Verdict::Unknown(staleness::unjudged(kind)),
            ),
            read_your_writes: other.map_or_else(
                || staleness::read_your_writes(&workload),
                |kind| Verdict::Unknown(staleness::unjudged(kind)),
            ),
            exclusive_roles: roles::exclusive(
                self.role_changes
                    .iter()
                    .filter_map(|c| Some((c.time, c.replica, c.role.as_str(), c.epoch?))),
            ),
            availability: availability::measure(&workload, &self.fault_windows),
            staleness: other.map_or_else(|| staleness::measure(&workload), |_| None),
        }
    }
}

/// How one check ended, without its evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Violated,
    Unknown,
}

impl<E> From<&Verdict<E>> for Status {
    fn from(verdict: &Verdict<E>) -> Self {
        match verdict {
            Verdict::Ok => Status::Ok,
            Verdict::Violation(_) => Status::Violated,
            Verdict::Unknown(_) => Status::Unknown,
        }
    }
}

/// The checkers' findings on one outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdicts {
    /// The guarantees the system claims: only these fail a run.
    pub claims: Vec<Guarantee>,
    /// The whole history, final reads included, against the workload's model.
    pub linearizability: Verdict<NonLinearizable>,
    pub durability: Verdict<durability::LostWrites>,
    pub convergence: Verdict<convergence::Disagreement>,
    /// Whether the system served the final reads after the faults healed.
    pub liveness: Verdict<liveness::Stall>,
    /// Whether every exit of a replica's software was a fail-stop on an
    /// injected fault.
    pub exits: Verdict<exits::UnexpectedExits>,
    /// Committed entries of the published logs agree (`unknown` when no
    /// replica published its log).
    pub log_agreement: Verdict<LogDisagreement>,
    /// No client's read missed a write acknowledged before it was invoked.
    pub no_stale_read: Verdict<StaleReads>,
    /// No client's read missed its own acknowledged write.
    pub read_your_writes: Verdict<MissedOwnWrites>,
    /// No two replicas held one role in the same epoch (`unknown` when no
    /// replica took a role).
    pub exclusive_roles: Verdict<roles::SharedRole>,
    pub availability: availability::Availability,
    /// How stale the clients' reads were (`None`: a history of other
    /// operations than a register's).
    pub staleness: Option<Staleness>,
}

impl Verdicts {
    /// How the check of `guarantee` ended.
    pub fn status(&self, guarantee: Guarantee) -> Status {
        match guarantee {
            Guarantee::Linearizable => (&self.linearizability).into(),
            Guarantee::Durable => (&self.durability).into(),
            Guarantee::Convergent => (&self.convergence).into(),
            Guarantee::Live => (&self.liveness).into(),
            Guarantee::NoUnexpectedExit => (&self.exits).into(),
            Guarantee::LogAgreement => (&self.log_agreement).into(),
            Guarantee::NoStaleRead => (&self.no_stale_read).into(),
            Guarantee::ReadYourWrites => (&self.read_your_writes).into(),
            Guarantee::ExclusiveRoles => (&self.exclusive_roles).into(),
        }
    }

    /// The check of `guarantee`, with its evidence, as one line.
    pub fn describe(&self, guarantee: Guarantee) -> String {
        match guarantee {
            Guarantee::Linearizable => self.linearizability.to_string(),
            Guarantee::Durable => self.durability.to_string(),
            Guarantee::Convergent => self.convergence.to_string(),
            Guarantee::Live => self.liveness.to_string(),
            Guarantee::NoUnexpectedExit => self.exits.to_string(),
            Guarantee::LogAgreement => self.log_agreement.to_string(),
            Guarantee::NoStaleRead => self.no_stale_read.to_string(),
            Guarantee::ReadYourWrites => self.read_your_writes.to_string(),
            Guarantee::ExclusiveRoles => self.exclusive_roles.to_string(),
        }
    }

    /// Whether every claimed guarantee holds (availability is measured,
    /// not judged).
    pub fn passed(&self) -> bool {
        self.claims.iter().all(|&g| self.status(g) == Status::Ok)
    }

    /// Whether a claimed guarantee is violated (`unknown` is not).
    pub fn violated(&self) -> bool {
        self.claims
            .iter()
            .any(|&g| self.status(g) == Status::Violated)
    }

    /// Whether some claimed guarantee could not be decided.
    pub fn unknown(&self) -> bool {
        self.claims
            .iter()
            .any(|&g| self.status(g) == Status::Unknown)
    }
}

impl fmt::Display for Verdicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (claimed, unclaimed): (Vec<Guarantee>, Vec<Guarantee>) = Guarantee::ALL
            .into_iter()
            .partition(|g| self.claims.contains(g));
        for g in claimed {
            writeln!(f, "{:<14} {}", format!("{g}:"), self.describe(g))?;
        }
        for g in unclaimed {
            writeln!(
                f,
                "{:<14} {} (not claimed)",
                format!("{g}:"),
                self.describe(g)
            )?;
        }
        if let Some(staleness) = &self.staleness {
            writeln!(f, "{:<14} {staleness}", "staleness:")?;
        }
        write!(f, "{:<14} {}", "availability:", self.availability)
    }
}
