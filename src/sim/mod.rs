//! The harness: the only layer that touches `turmoil::Sim`.
//!
//! [`run`] turns a [`Scenario`] into an [`Outcome`]: replicas and clients
//! become turmoil hosts, the run loop applies each [`Fault`] at its
//! simulated time, and at the end heals everything, lets the cluster
//! quiesce, performs final reads and snapshots every replica. Files:
//! [`scenario`] (the input), [`fault`] and [`workload`] (its parts),
//! `harness` (the run loop), `nemesis` (applying and undoing faults), [`outcome`] (the result and its verdicts),
//! [`trace`] (digest and logs), `determinism` (the run-twice check), [`repro`] (saving failures and printing the
//! command that reproduces them).

mod determinism;
pub mod fault;
mod harness;
mod nemesis;
pub mod outcome;
pub mod repro;
pub mod scenario;
pub mod trace;
pub mod workload;

pub use determinism::{DeterminismError, Divergence, check_determinism};
pub use fault::{Fault, Role, ScheduledFault, Target, Trigger};
pub use harness::{RunError, builtin_system, run, run_system};
pub use outcome::{Outcome, Verdicts};
pub use scenario::{DiskSpec, Limits, NetworkSpec, Scenario, ScenarioError};
pub use workload::{Mix, WorkloadSpec};
