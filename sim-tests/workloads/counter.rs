//! The counter state machine the primary/backup system replicates for the
//! [`Counter`] workload: one `i64` per key, read as its decimal text.

use std::{collections::BTreeMap, rc::Rc};

use replisim::{
    check::convergence::ReplicaState,
    history::{Completion, Op},
    workload::{Counter, Workload},
};

use crate::primary_backup::StateMachine;

/// Counters by key; an unset key reads as `None`.
#[derive(Debug, Clone, Default)]
pub struct Counters(BTreeMap<String, i64>);

impl StateMachine for Counters {
    fn workload() -> Rc<dyn Workload> {
        Rc::new(Counter)
    }

    fn apply(&mut self, op: &Op) -> Completion {
        match op {
            Op::Add { key, amount } => {
                let value = self.0.entry(key.clone()).or_default();
                *value = value.wrapping_add(*amount);
                Completion::Ok(None)
            }
            Op::Read { key, .. } => Completion::Ok(self.0.get(key).map(i64::to_string)),
            other => Completion::Fail(format!("counters have no {} operation", other.name())),
        }
    }

    fn render(&self) -> ReplicaState {
        self.0
            .iter()
            .map(|(key, value)| (key.clone(), value.to_string()))
            .collect()
    }
}
