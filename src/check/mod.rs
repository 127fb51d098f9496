//! Checkers: pure functions from a recorded history (and final replica
//! states) to a [`Verdict`].
//!
//! Module map:
//! - [`model`]: the sequential specifications a history is checked
//!   against ([`model::Model`]; a register, a string cell with append);
//! - `search` (private): the Wing & Gong / Lowe linearizability search with
//!   Porcupine's memoisation, generic over a model; `memo` (private): its
//!   linearized-set bitset and memo table;
//! - `unique` (private): registers whose written values are unique,
//!   decided without a search (Gibbons & Korach);
//! - `keys` (private): checking keys in parallel, stopping at the first
//!   refuted one;
//! - [`linearizable`]: linearizability of key-value histories, key by
//!   key, under a format's [`crate::history::Conventions`];
//! - [`explain`]: the evidence of a violation (a conflicting set of
//!   operations, or the longest linearizable prefix and the operations
//!   that cannot follow it);
//! - [`log_agreement`]: committed entries of replicated logs agree;
//! - [`roles`]: no two replicas hold one role in the same epoch;
//! - [`stats`]: availability and latency per fault phase;
//! - [`durability`]: every acknowledged write survives in the final state;
//! - [`convergence`]: replicas hold equal states after heal and quiesce;
//! - [`exits`]: every exit of a replica's software is a fail-stop on an
//!   injected fault;
//! - [`counter`]: counter histories (add, read): the [`counter::CounterModel`]
//!   model, linearizability and durability (every acknowledged add counted);
//! - [`set`]: set histories (insert, remove, read): the [`set::SetModel`] model,
//!   linearizability and durability (every acknowledged insert kept unless
//!   a remove may have followed);
//! - [`staleness`]: reads that missed a write acknowledged before they
//!   were invoked (`no-stale-read`), or their own client's
//!   (`read-your-writes`), and how much they missed;
//! - [`siblings`]: durability of multi-value registers (reads return
//!   siblings, writes supersede what their client saw);
//! - [`availability`]: the share of operations completed, overall and
//!   during faults (the one-line summary of [`stats`]);
//! - `file`: checking a history file ([`check_file`]) (what `replisim check` runs);
//! - [`mod@bench`]: the checker benchmark; [`generate`]: the seeded
//!   histories it checks, and their Porcupine key-value log.
//!
//! Every checker answers `Ok`, `Violation(evidence)` or `Unknown(reason)`
//! (Porcupine's `Ok | Illegal | Unknown`), so reports consume one shape.

pub mod availability;
#[doc(hidden)]
pub mod bench;
pub mod convergence;
pub mod counter;
pub mod durability;
pub mod exits;
pub mod explain;
mod file;
#[doc(hidden)]
pub mod generate;
#[cfg(test)]
mod import_fuzz;
mod keys;
pub mod linearizable;
pub mod liveness;
pub mod log_agreement;
mod memo;
pub mod model;
pub mod roles;
mod search;
pub mod set;
pub mod siblings;
pub mod staleness;
pub mod stats;
#[cfg(test)]
mod test_history;
mod unique;

pub use file::{CheckError, CheckOptions, CheckReport, check_file, check_imported};

use std::fmt;

use serde::{Deserialize, Serialize};

/// A guarantee a system can claim; each has a checker that decides it on
/// every run. Claims decide what fails a run: a check a system does not
/// claim is still computed and shown, apart from the claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    /// The history is linearizable against the workload's model.
    Linearizable,
    /// No acknowledged write is missing from the final state.
    Durable,
    /// Surviving replicas hold equal states after heal and quiesce.
    Convergent,
    /// The system serves requests again after the faults healed.
    Live,
    /// Every exit of a replica's software is a fail-stop on an injected
    /// fault (see [`exits`]).
    NoUnexpectedExit,
    /// Replicas that publish their logs never hold different entries at an
    /// index both consider committed ([`log_agreement`]).
    LogAgreement,
    /// No read missed a write acknowledged before it was invoked
    /// ([`staleness`]).
    NoStaleRead,
    /// No read missed a write its own client had acknowledged before
    /// invoking it ([`staleness`]).
    ReadYourWrites,
    /// No two replicas ever held one role in the same epoch: one leader
    /// per term, one primary per view ([`roles`]).
    ExclusiveRoles,
}

impl Guarantee {
    /// Every guarantee, in report order.
    pub const ALL: [Guarantee; 9] = [
        Guarantee::Linearizable,
        Guarantee::Durable,
        Guarantee::Convergent,
        Guarantee::Live,
        Guarantee::NoUnexpectedExit,
        Guarantee::LogAgreement,
        Guarantee::NoStaleRead,
        Guarantee::ReadYourWrites,
        Guarantee::ExclusiveRoles,
    ];

    /// The safety guarantees: nothing bad happens (every guarantee but
    /// liveness).
    pub const SAFETY: [Guarantee; 4] = [
        Guarantee::Linearizable,
        Guarantee::Durable,
        Guarantee::Convergent,
        Guarantee::NoUnexpectedExit,
    ];

    /// The name in reports and JSON: `linearizable`, `durable`,
    /// `convergent`, `live`, `no-unexpected-exit`, `log-agreement`,
    /// `no-stale-read`, `read-your-writes`, `exclusive-roles`.
    pub fn name(self) -> &'static str {
        match self {
            Guarantee::Linearizable => "linearizable",
            Guarantee::Durable => "durable",
            Guarantee::Convergent => "convergent",
            Guarantee::Live => "live",
            Guarantee::NoUnexpectedExit => "no-unexpected-exit",
            Guarantee::LogAgreement => "log-agreement",
            Guarantee::NoStaleRead => "no-stale-read",
            Guarantee::ReadYourWrites => "read-your-writes",
            Guarantee::ExclusiveRoles => "exclusive-roles",
        }
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a checker concluded.
///
/// Serialised as `{"verdict":"ok"}`, `{"verdict":"violation","evidence":…}`
/// or `{"verdict":"unknown","evidence":"reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "evidence", rename_all = "snake_case")]
pub enum Verdict<E> {
    /// The property holds.
    Ok,
    /// The property is violated; the evidence explains how.
    Violation(E),
    /// The checker could not decide (step, memory or time limit, unusable input).
    Unknown(String),
}

impl<E> Verdict<E> {
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok)
    }

    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::Violation(_))
    }

    /// Transforms the evidence, keeping the verdict.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Verdict<F> {
        match self {
            Verdict::Ok => Verdict::Ok,
            Verdict::Violation(e) => Verdict::Violation(f(e)),
            Verdict::Unknown(reason) => Verdict::Unknown(reason),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Verdict<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ok => write!(f, "ok"),
            Verdict::Violation(evidence) => write!(f, "violation: {evidence}"),
            Verdict::Unknown(reason) => write!(f, "unknown: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_print_and_serialise() {
        let v: Verdict<String> = Verdict::Violation("lost write".into());
        assert_eq!(v.to_string(), "violation: lost write");
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"verdict":"violation","evidence":"lost write"}"#);
        assert_eq!(serde_json::from_str::<Verdict<String>>(&json).unwrap(), v);
        let ok: Verdict<String> = Verdict::Ok;
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"verdict":"ok"}"#);
        assert_eq!(
            Verdict::<String>::Unknown("timeout".into()).to_string(),
            "unknown: timeout"
        );
    }
}
