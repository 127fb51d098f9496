//! The determinism check: run a scenario twice and compare. When the two
//! runs' digests differ, the first trace event where they part is named,
//! which is what one needs to find the source of nondeterminism.

use std::{fmt, rc::Rc};

use super::{
    harness::{RunError, RunOptions, run_traced},
    scenario::Scenario,
};
use crate::node::System;

/// Two runs of one scenario that did not behave the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub first_digest: u64,
    pub second_digest: u64,
    /// Index of the first trace line that differs.
    pub line: usize,
    /// That line in each run (`None`: that run's trace had ended).
    pub first: Option<String>,
    pub second: Option<String>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the same scenario gave digests {:016x} and {:016x}; the traces part at event {}:",
            self.first_digest, self.second_digest, self.line
        )?;
        writeln!(
            f,
            "  first run:  {}",
            self.first.as_deref().unwrap_or("(trace ended)")
        )?;
        write!(
            f,
            "  second run: {}",
            self.second.as_deref().unwrap_or("(trace ended)")
        )
    }
}

/// Why the check could not tell or found a difference.
#[derive(Debug, thiserror::Error)]
pub enum DeterminismError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{0}")]
    Diverged(Box<Divergence>),
}

/// Runs `scenario` twice against `system` and checks both runs have the
/// same digest; returns it.
///
/// ```
/// # use futures_util::future::LocalBoxFuture;
/// # use replisim::history::{Completion, Op};
/// # use replisim::node::{ClientContext, KvClient, NodeContext, NodeResult, System};
/// # struct Silent;
/// # struct Refused;
/// # #[async_trait::async_trait(?Send)]
/// # impl KvClient for Refused {
/// #     async fn call(&mut self, _op: &Op) -> Completion { Completion::Fail("refused".into()) }
/// # }
/// # impl System for Silent {
/// #     fn replica(&self, _node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
/// #         Box::pin(std::future::pending())
/// #     }
/// #     fn client(&self, _ctx: ClientContext) -> Box<dyn KvClient> { Box::new(Refused) }
/// # }
/// use std::rc::Rc;
/// use replisim::sim::{check_determinism, Scenario};
/// let mut scenario = Scenario::new("silent", 3);
/// scenario.workload.ops_per_client = 5;
/// check_determinism(&scenario, Rc::new(Silent)).unwrap();
/// ```
pub fn check_determinism(
    scenario: &Scenario,
    system: Rc<dyn System>,
) -> Result<u64, DeterminismError> {
    let (first, first_lines) = run_traced(scenario, system.clone(), RunOptions::default(), true)?;
    let (second, second_lines) = run_traced(scenario, system, RunOptions::default(), true)?;
    if first.digest == second.digest {
        return Ok(first.digest);
    }
    let line = first_lines
        .iter()
        .zip(&second_lines)
        .position(|(a, b)| a != b)
        .unwrap_or(first_lines.len().min(second_lines.len()));
    Err(DeterminismError::Diverged(Box::new(Divergence {
        first_digest: first.digest,
        second_digest: second.digest,
        line,
        first: first_lines.get(line).cloned(),
        second: second_lines.get(line).cloned(),
    })))
}
