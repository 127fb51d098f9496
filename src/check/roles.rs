//! Exclusive roles: no two replicas ever hold one role in the same epoch.
//! Raft's election safety (at most one leader per term) and a view-based
//! primary/backup's one primary per view are this property of the roles
//! replicas publish with their epochs ([`crate::node::Roles`]). Two
//! holders at different times count too: a second leader of a term elected
//! after the first crashed is as wrong as two at once (each may have
//! accepted writes the other never saw). The evidence names the role, the
//! epoch and when each holder took it: "leader of epoch 1 held by
//! replica-1 (from 173 ms) and replica-2 (from 542 ms)".

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::Verdict;

/// A role held by two or more replicas in one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRole {
    pub role: String,
    pub epoch: u64,
    /// Each holder and when it first took the role in that epoch
    /// (simulated ns), earliest first.
    pub holders: Vec<(usize, u64)>,
}

impl fmt::Display for SharedRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holders: Vec<String> = self
            .holders
            .iter()
            .map(|(replica, time)| format!("replica-{replica} (from {} ms)", time / 1_000_000))
            .collect();
        write!(
            f,
            "{} of epoch {} held by {}",
            self.role,
            self.epoch,
            holders.join(" and ")
        )
    }
}

/// Judges the roles taken in a run, given as `(time in simulated ns,
/// replica, role, epoch)` in time order: a violation for the first role
/// and epoch two replicas held; `unknown` when no replica took a role.
pub fn exclusive<'a>(
    takes: impl IntoIterator<Item = (u64, usize, &'a str, u64)>,
) -> Verdict<SharedRole> {
    let mut holders: BTreeMap<(&str, u64), Vec<(usize, u64)>> = BTreeMap::new();
    let mut shared = None;
    for (time, replica, role, epoch) in takes {
        let held = holders.entry((role, epoch)).or_default();
        if held.iter().all(|&(r, _)| r != replica) {
            held.push((replica, time));
            if held.len() == 2 {
                shared.get_or_insert((role, epoch));
            }
        }
    }
    match shared {
        Some(key) => Verdict::Violation(SharedRole {
            role: key.0.to_string(),
            epoch: key.1,
            holders: holders.remove(&key).unwrap_or_default(),
        }),
        None if holders.is_empty() => {
            Verdict::Unknown("no replica took a role with an epoch".to_string())
        }
        None => Verdict::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn one_holder_per_epoch_holds() {
        let takes = [
            (10 * MS, 0, "leader", 1),
            (20 * MS, 0, "leader", 1),
            (30 * MS, 1, "leader", 2),
        ];
        assert_eq!(exclusive(takes), Verdict::Ok);
    }

    #[test]
    fn a_second_holder_of_an_epoch_is_named_even_after_the_first_left() {
        let takes = [
            (173 * MS, 1, "leader", 1),
            (300 * MS, 0, "primary", 1),
            (542 * MS, 2, "leader", 1),
        ];
        let Verdict::Violation(shared) = exclusive(takes) else {
            panic!("two leaders of epoch 1 not seen");
        };
        assert_eq!(
            shared.to_string(),
            "leader of epoch 1 held by replica-1 (from 173 ms) and replica-2 (from 542 ms)"
        );
    }

    #[test]
    fn no_role_taken_is_unknown() {
        assert!(matches!(exclusive([]), Verdict::Unknown(_)));
    }
}
