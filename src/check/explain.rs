//! The evidence of a linearizability violation.
//!
//! The evidence takes one of two forms. A [`Conflict`]: a small set of
//! operations that cannot all linearize, and why (what the unique-values
//! fast path finds). Or a prefix and what cannot follow it (what the
//! search finds). The search reports the longest linearizable prefix it found. From it,
//! `explain` derives the operations that break it: of the operations not
//! in the prefix, the *candidates* are those invoked before the earliest
//! completion among them (only they could be linearized next); the one
//! with that earliest completion had to be, yet none of the candidates
//! leads to a linearization (each is either illegal in the prefix's final
//! state, or legal but a dead end). The prefix and the candidates are the
//! smallest self-contained account: the prefix explains the state, the
//! candidates show what cannot follow it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::Model;
use super::search::{Timed, entries};

/// How many of the prefix's last steps [`NonLinearizable`]'s `Display` shows.
const SHOWN_STEPS: usize = 8;

/// One operation, as the explanation shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpInfo {
    /// Index of the operation in the checked list (for key-value
    /// histories: in [`crate::history::History::operations`]).
    pub index: usize,
    pub client: u64,
    pub invoked: u64,
    /// `None`: it never completed, or its outcome is unknown.
    pub completed: Option<u64>,
    /// The operation and what it observed, e.g. `read -> "3"`.
    pub description: String,
}

/// An operation of the linearizable prefix and the state after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub op: OpInfo,
    pub state_after: String,
}

/// An operation that could have come next but cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub op: OpInfo,
    /// Whether the model accepts it after the prefix (then it is a dead
    /// end: nothing linearizes after it).
    pub legal_next: bool,
    /// Whether it is the operation that completed before any
    /// linearization could include it.
    pub completed_first: bool,
}

/// Operations that cannot all linearize, whatever else happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// Why, naming the operations by index.
    pub reason: String,
    /// The operations, in invocation order.
    pub ops: Vec<OpInfo>,
}

/// Why a history (one key of it) is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonLinearizable {
    /// The key, for key-value histories.
    pub key: Option<String>,
    /// Operations checked for this key (after dropping those that constrain
    /// nothing: failed operations, indeterminate reads).
    pub operations: usize,
    pub initial_state: String,
    /// The longest linearizable prefix, in linearization order.
    pub prefix: Vec<Step>,
    /// The operations that cannot follow the prefix.
    pub blocked: Vec<Blocked>,
    /// A conflicting set found without a search (then `prefix` and
    /// `blocked` are empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
}

impl NonLinearizable {
    /// The indexes of the operations the evidence blames: the conflicting
    /// set, or the operations that cannot follow the prefix.
    pub fn blamed(&self) -> Vec<usize> {
        match &self.conflict {
            Some(conflict) => conflict.ops.iter().map(|o| o.index).collect(),
            None => self.blocked.iter().map(|b| b.op.index).collect(),
        }
    }
}

/// Operation `i` of `ops` as the evidence shows it; `index` maps `i` to
/// the index reported.
pub(crate) fn op_info<M: Model>(
    model: &M,
    ops: &[Timed<M::Op>],
    i: usize,
    index: &impl Fn(usize) -> usize,
) -> OpInfo {
    OpInfo {
        index: index(i),
        client: ops[i].client,
        invoked: ops[i].call,
        completed: ops[i].ret,
        description: model.describe_op(&ops[i].op),
    }
}

/// Builds the evidence from the search's longest prefix. `index` maps a
/// position in `ops` to the index reported in [`OpInfo::index`].
pub(crate) fn explain<M: Model>(
    model: &M,
    ops: &[Timed<M::Op>],
    longest: &[u32],
    index: impl Fn(usize) -> usize,
) -> NonLinearizable {
    let info = |i: usize| op_info(model, ops, i, &index);
    let mut state = model.init();
    let initial_state = model.describe_state(&state);
    let mut in_prefix = vec![false; ops.len()];
    let mut prefix = Vec::with_capacity(longest.len());
    for &i in longest {
        let i = i as usize;
        in_prefix[i] = true;
        if let Some(next) = model.step(&state, &ops[i].op) {
            state = next;
        }
        prefix.push(Step {
            op: info(i),
            state_after: model.describe_state(&state),
        });
    }
    let mut blocked: Vec<Blocked> = Vec::new();
    for entry in entries(ops) {
        let i = entry.op as usize;
        if in_prefix[i] {
            continue;
        }
        if entry.is_return {
            let first = blocked.iter_mut().find(|b| b.op.index == index(i));
            if let Some(first) = first {
                first.completed_first = true;
            }
            break;
        }
        blocked.push(Blocked {
            op: info(i),
            legal_next: model.step(&state, &ops[i].op).is_some(),
            completed_first: false,
        });
    }
    NonLinearizable {
        key: None,
        operations: ops.len(),
        initial_state,
        prefix,
        blocked,
        conflict: None,
    }
}

impl fmt::Display for OpInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let completed = self
            .completed
            .map_or_else(|| "unknown".to_string(), |t| t.to_string());
        write!(
            f,
            "op {} by client {}, invoked {} completed {}: {}",
            self.index, self.client, self.invoked, completed, self.description
        )
    }
}

impl fmt::Display for NonLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "key {key:?}: ")?;
        }
        if let Some(conflict) = &self.conflict {
            write!(
                f,
                "{} of {} operations cannot all linearize: {}",
                conflict.ops.len(),
                self.operations,
                conflict.reason
            )?;
            for op in &conflict.ops {
                write!(f, "\n  {op}")?;
            }
            return Ok(());
        }
        let final_state = self
            .prefix
            .last()
            .map_or(&self.initial_state, |s| &s.state_after);
        writeln!(
            f,
            "only {} of {} operations linearize (state {} -> {}); none of the operations that could come next can:",
            self.prefix.len(),
            self.operations,
            self.initial_state,
            final_state
        )?;
        for b in &self.blocked {
            let why = if b.legal_next {
                "legal, but nothing linearizes after it"
            } else {
                "illegal in that state"
            };
            let first = if b.completed_first {
                "; it completed before any linearization could include it"
            } else {
                ""
            };
            writeln!(f, "  {}  <- {why}{first}", b.op)?;
        }
        let skip = self.prefix.len().saturating_sub(SHOWN_STEPS);
        write!(
            f,
            "the linearizable prefix ends (last {} of {} steps):",
            self.prefix.len() - skip,
            self.prefix.len()
        )?;
        for step in &self.prefix[skip..] {
            write!(f, "\n  {}  => {}", step.op, step.state_after)?;
        }
        Ok(())
    }
}
