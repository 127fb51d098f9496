//! The harness: the only layer that touches `turmoil::Sim`.
//!
//! [`run_system`] turns a [`Scenario`] and a system into an [`Outcome`]: replicas and clients
//! become turmoil hosts, the run loop applies each [`Fault`] at its
//! simulated time, and at the end heals everything, lets the cluster
//! quiesce, performs final reads and snapshots every replica. Files:
//! `scenario` (the input), `fault` (its faults),
//! `harness` (the run loop), `nemesis` (applying and undoing faults by
//! family, and judging which were effective), `links` (turmoil's message
//! events on links, for the nemesis), `outcome` (the result and its verdicts),
//! `trace` (digest, logs, effect counters and event triggers, a file each),
//! `determinism` (the run-twice check), [`repro`] (saving failures and printing the
//! command that reproduces them).

mod determinism;
mod fault;
mod harness;
mod links;
mod nemesis;
mod outcome;
pub mod repro;
mod scenario;
mod trace;

pub use crate::points::Buggify;
pub use determinism::{DeterminismError, Divergence, check_determinism};
pub use fault::{Family, Fault, FaultCount, ScheduledFault, Target, Trigger};
pub use harness::{RunError, RunOptions, run_recorded, run_system, run_with};
pub use outcome::{MomentReached, Outcome, RoleChange, RunStats, Status, Verdicts, inert_faults};
pub use scenario::{DiskSpec, NetworkSpec, PhaseLimits, Scenario, ScenarioError};
