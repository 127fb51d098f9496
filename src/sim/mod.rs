//! The harness: the only layer that touches `turmoil::Sim`.
//!
//! [`run`] turns a [`Scenario`] into an [`Outcome`]: replicas and clients
//! become turmoil hosts, the run loop applies each [`Fault`] at its
//! simulated time, and at the end heals everything, lets the cluster
//! quiesce, performs final reads and snapshots every replica. Files:
//! [`scenario`] (the input), [`fault`] and [`workload`] (its parts),
//! `harness` (the run loop), [`outcome`] (the result and its verdicts),
//! [`trace`] (digest and logs), [`repro`] (saving failures and printing the
//! command that reproduces them).

pub mod fault;
mod harness;
pub mod outcome;
pub mod repro;
pub mod scenario;
pub mod trace;
pub mod workload;

pub use fault::{Fault, Role, ScheduledFault, Target};
pub use harness::{RunError, run, run_system};
pub use outcome::{Outcome, Verdicts};
pub use scenario::{Limits, NetworkSpec, Scenario, ScenarioError};
pub use workload::{Mix, WorkloadSpec};
