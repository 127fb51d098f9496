//! Convergence (strong eventual consistency): after heal and quiesce, every
//! surviving replica holds the same state. The harness snapshots the states
//! before the final reads, and measures with [`agree`] how long after the
//! last heal they came to agree. A replica that never reported its state makes the verdict
//! `unknown`.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::Verdict;
/// The contents of one replica, key by key (each value as the workload's
/// reads render it), as a replica publishes it for this check.
pub type ReplicaState = BTreeMap<String, String>;

/// Keys on which replicas disagree, with each replica's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disagreement {
    pub differences: BTreeMap<String, BTreeMap<usize, Option<String>>>,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replicas diverge on {} key(s)", self.differences.len())?;
        for (key, values) in &self.differences {
            write!(f, "\n    {key}:")?;
            for (replica, value) in values {
                write!(f, " replica-{replica}={value:?}")?;
            }
        }
        Ok(())
    }
}

/// Whether every replica reported a state and all of them are equal.
pub fn agree(states: &BTreeMap<usize, Option<ReplicaState>>) -> bool {
    let mut reported = states.values();
    match reported.next() {
        Some(Some(first)) => reported.all(|s| s.as_ref() == Some(first)),
        Some(None) => false,
        None => true,
    }
}

/// Whether the surviving replicas hold equal states (`unknown` when one
/// did not report).
pub fn check(states: &BTreeMap<usize, Option<ReplicaState>>) -> Verdict<Disagreement> {
    let mut reported = BTreeMap::new();
    for (&id, state) in states {
        match state {
            Some(state) => reported.insert(id, state),
            None => return Verdict::Unknown(format!("replica-{id} did not report its state")),
        };
    }
    let keys: std::collections::BTreeSet<&String> =
        reported.values().flat_map(|s| s.keys()).collect();
    let differences: BTreeMap<String, BTreeMap<usize, Option<String>>> = keys
        .into_iter()
        .filter_map(|key| {
            let values: BTreeMap<usize, Option<String>> = reported
                .iter()
                .map(|(&id, state)| (id, state.get(key).cloned()))
                .collect();
            let first = values.values().next()?;
            values
                .values()
                .any(|v| v != first)
                .then(|| (key.clone(), values))
        })
        .collect();
    if differences.is_empty() {
        Verdict::Ok
    } else {
        Verdict::Violation(Disagreement { differences })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_states_converge_and_different_ones_do_not() {
        let a = ReplicaState::from([("k".to_string(), "1".to_string())]);
        let b = ReplicaState::new();
        let same = BTreeMap::from([(0, Some(a.clone())), (1, Some(a.clone()))]);
        assert!(check(&same).is_ok());
        let diverged = BTreeMap::from([(0, Some(a)), (1, Some(b))]);
        assert!(check(&diverged).is_violation());
        let silent = BTreeMap::from([(0, None)]);
        assert!(matches!(check(&silent), Verdict::Unknown(_)));
        assert!(agree(&same) && !agree(&diverged) && !agree(&silent));
    }
}
