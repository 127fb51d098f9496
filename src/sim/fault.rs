//! Faults as values: what the nemesis does to the cluster, and when.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A replica, by id or by the role it holds when the fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    Replica(usize),
    Role(Role),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Whichever replica the operator names as primary at that moment.
    Primary,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Replica(id) => write!(f, "replica-{id}"),
            Target::Role(Role::Primary) => write!(f, "the primary"),
        }
    }
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// The process dies: volatile state and unsynced disk writes are gone,
    /// synced data survives. It stays down until a `restart` (or the end).
    Crash { node: Target },
    /// A crashed replica starts again on the same disk.
    Restart { node: Target },
    /// The machine is lost for good, disk included. Losing the primary
    /// makes the operator fail over to the most up-to-date survivor.
    Lose { node: Target },
    /// Replicas in different groups cannot reach each other (clients still
    /// reach everyone). Replicas in no group form one more group.
    Partition { groups: Vec<Vec<usize>> },
    /// Every partition is repaired.
    Heal,
}

impl Fault {
    /// Checks replica ids against the cluster size.
    pub fn validate(&self, replicas: usize) -> Result<(), String> {
        let check = |id: usize| {
            if id < replicas {
                Ok(())
            } else {
                Err(format!(
                    "replica {id} does not exist (there are {replicas})"
                ))
            }
        };
        match self {
            Fault::Crash { node } | Fault::Restart { node } | Fault::Lose { node } => match node {
                Target::Replica(id) => check(*id),
                Target::Role(_) => Ok(()),
            },
            Fault::Partition { groups } => groups.iter().flatten().try_for_each(|&id| check(id)),
            Fault::Heal => Ok(()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash { node } => write!(f, "crash {node}"),
            Fault::Restart { node } => write!(f, "restart {node}"),
            Fault::Lose { node } => write!(f, "lose {node} for good"),
            Fault::Partition { groups } => write!(f, "partition {groups:?}"),
            Fault::Heal => write!(f, "heal partitions"),
        }
    }
}

/// A fault and the simulated time (ms since the start) it fires at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFault {
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}
