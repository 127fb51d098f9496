//! Checkers: pure functions from a history (and final states) to verdicts.
//!
//! - [`durability`]: every acknowledged write survives in the final state.
//! - [`convergence`]: replicas hold equal states after heal and quiesce.
//! - [`availability`]: how many operations completed, overall and during faults.

pub mod availability;
pub mod convergence;
pub mod durability;

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a checker concluded: the property holds, it is violated (with the
/// evidence), or the checker could not tell (and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict<E> {
    Ok,
    Violation(E),
    Unknown(String),
}

impl<E> Verdict<E> {
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok)
    }

    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::Violation(_))
    }
}

impl<E: fmt::Display> fmt::Display for Verdict<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ok => write!(f, "ok"),
            Verdict::Violation(evidence) => write!(f, "VIOLATED: {evidence}"),
            Verdict::Unknown(reason) => write!(f, "unknown ({reason})"),
        }
    }
}
