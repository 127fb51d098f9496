//! The set state machine the primary/backup system replicates for the
//! [`Set`] workload: one set of strings per key, read as a sorted JSON
//! array.

use std::{
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
};

use replisim::{
    check::convergence::ReplicaState,
    history::{Completion, Op},
    workload::{Set, Workload},
};

use crate::primary_backup::StateMachine;

/// Sets by key; a key is set by its first insert and reads as `None`
/// before it.
#[derive(Debug, Clone, Default)]
pub struct Sets(BTreeMap<String, BTreeSet<String>>);

/// A set as a read answers it: its elements as a sorted JSON array.
fn text(set: &BTreeSet<String>) -> String {
    serde_json::to_string(set).expect("strings always serialise")
}

impl StateMachine for Sets {
    fn workload() -> Rc<dyn Workload> {
        Rc::new(Set)
    }

    fn apply(&mut self, op: &Op) -> Completion {
        match op {
            Op::Insert { key, element } => {
                self.0
                    .entry(key.clone())
                    .or_default()
                    .insert(element.clone());
                Completion::Ok(None)
            }
            Op::Remove { key, element } => {
                if let Some(set) = self.0.get_mut(key) {
                    set.remove(element);
                }
                Completion::Ok(None)
            }
            Op::Read { key, .. } => Completion::Ok(self.0.get(key).map(text)),
            other => Completion::Fail(format!("sets have no {} operation", other.name())),
        }
    }

    fn render(&self) -> ReplicaState {
        self.0
            .iter()
            .map(|(key, set)| (key.clone(), text(set)))
            .collect()
    }
}
