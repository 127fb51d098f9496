//! Convergence (strong eventual consistency): after heal and quiesce, every
//! surviving replica holds the same state. The harness snapshots the states
//! before the final reads, and measures with [`agree`] how long after the
//! last heal they came to agree. A replica that never reported its state makes the verdict
//! `unknown`.
//!
//! A system that spreads its keys over the replicas (consistent hashing:
//! each key on a few of them) publishes where each key belongs
//! ([`crate::node::StateProbe::publish_placement`]); a key is then
//! compared only among the surviving replicas it belongs to, each of which
//! must hold it as the others do. A replica it does not belong to may hold
//! a copy for a while (a hinted handoff not yet delivered) without making
//! the replicas diverge.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use serde::{Deserialize, Serialize};

use super::Verdict;
/// The contents of one replica, key by key (each value as the workload's
/// reads render it), as a replica publishes it for this check.
pub type ReplicaState = BTreeMap<String, String>;

/// The replicas each key belongs to, for systems that do not keep every
/// key on every replica (keys absent here are on every replica).
pub type Placement = BTreeMap<String, BTreeSet<usize>>;

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

/// Whether every replica reported a state and all of them agree.
pub fn agree(states: &BTreeMap<usize, Option<ReplicaState>>, placement: &Placement) -> bool {
    if !placement.is_empty() {
        return check(states, placement).is_ok();
    }
    // Every replica holds every key: equal states, compared without
    // building the check's evidence (this runs at every quiet step).
    let mut reported = states.values();
    match reported.next() {
        Some(Some(first)) => reported.all(|s| s.as_ref() == Some(first)),
        Some(None) => false,
        None => true,
    }
}

/// Whether the surviving replicas hold equal states, each key among the
/// replicas it belongs to (`unknown` when one did not report).
pub fn check(
    states: &BTreeMap<usize, Option<ReplicaState>>,
    placement: &Placement,
) -> Verdict<Disagreement> {
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
                .filter(|(id, _)| {
                    placement
                        .get(key)
                        .is_none_or(|holders| holders.contains(id))
                })
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
        let everywhere = Placement::new();
        let same = BTreeMap::from([(0, Some(a.clone())), (1, Some(a.clone()))]);
        assert!(check(&same, &everywhere).is_ok());
        let diverged = BTreeMap::from([(0, Some(a)), (1, Some(b))]);
        assert!(check(&diverged, &everywhere).is_violation());
        let silent = BTreeMap::from([(0, None)]);
        assert!(matches!(check(&silent, &everywhere), Verdict::Unknown(_)));
        assert!(agree(&same, &everywhere));
        assert!(!agree(&diverged, &everywhere) && !agree(&silent, &everywhere));
    }

    #[test]
    fn placed_keys_are_compared_among_their_replicas_only() {
        let state = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<ReplicaState>(),
            )
        };
        let placement = Placement::from([
            ("a".to_string(), BTreeSet::from([0, 1])),
            ("b".to_string(), BTreeSet::from([1, 2])),
        ]);
        let spread = BTreeMap::from([
            (0, state(&[("a", "1")])),
            (1, state(&[("a", "1"), ("b", "2")])),
            (2, state(&[("b", "2"), ("a", "1")])),
        ]);
        assert!(check(&spread, &placement).is_ok(), "2 may hold a hint of a");
        let behind = BTreeMap::from([
            (0, state(&[])),
            (1, state(&[("a", "1"), ("b", "2")])),
            (2, state(&[("b", "2")])),
        ]);
        let Verdict::Violation(disagreement) = check(&behind, &placement) else {
            panic!("replica 0 lacks a");
        };
        assert_eq!(
            disagreement.differences["a"],
            BTreeMap::from([(0, None), (1, Some("1".to_string()))])
        );
    }
}
