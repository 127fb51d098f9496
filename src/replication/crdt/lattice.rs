//! The three state-based CRDTs, one value per key, and the join of a
//! replica's whole store:
//!
//! - [`PnCounter`]: a PN-Counter, two G-Counters (one entry per actor,
//!   joined by maximum) for the increments and the decrements;
//! - [`OrSet`]: an observed-remove set, add-wins: every insert adds a
//!   unique tag, a remove tombstones the tags it has observed, and the
//!   element is present while one of its tags is not tombstoned; join is
//!   union (tags added concurrently with a remove survive it);
//! - [`LwwRegister`]: the value with the highest `(timestamp, actor)`; the
//!   timestamp comes from the writing replica's own clock, so a clock that
//!   runs behind makes its newer writes lose.
//!
//! An *actor* is a replica in one incarnation of its disk
//! ([`Origin::actor`]): a replica whose disk was lost starts a new actor,
//! so its fresh counters and tags never collide with those its former self
//! gossiped before the loss.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{check::convergence::ReplicaState, history::Op};

/// Where and when a client update is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The replica and its disk's incarnation: `r<id>.<incarnation>`.
    pub actor: String,
    /// A tag unique to this update: the actor and its update count.
    pub tag: String,
    /// The replica's clock reading, in ns since the Unix epoch.
    pub time: u64,
}

/// One key's value in a state-based CRDT.
pub trait Crdt: Clone + Default + PartialEq + Serialize + DeserializeOwned + 'static {
    /// Applies a client update; `Err` names an operation this type has not.
    fn update(&mut self, op: &Op, origin: &Origin) -> Result<(), String>;
    /// The value as the workload's reads render it (`None`: unset).
    fn read(&self) -> Option<String>;
    /// The join: the least upper bound of `self` and `other`.
    fn merge(&mut self, other: &Self);
}

/// Joins `theirs` into `mine` key by key: keys only they know are copied,
/// keys both know are joined with `join`. With `keep_mine` (the planted
/// bug `merge-not-commutative`) keys both know keep `mine`'s value, so the
/// result depends on the order of the arguments.
pub(crate) fn join_map<K: Ord + Clone, V: Clone>(
    mine: &mut BTreeMap<K, V>,
    theirs: &BTreeMap<K, V>,
    keep_mine: bool,
    join: impl Fn(&mut V, &V),
) {
    for (key, value) in theirs {
        match mine.get_mut(key) {
            None => {
                mine.insert(key.clone(), value.clone());
            }
            Some(_) if keep_mine => {}
            Some(own) => join(own, value),
        }
    }
}

/// A replica's data: one CRDT per key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: Crdt")]
pub struct Store<C: Crdt>(pub BTreeMap<String, C>);

impl<C: Crdt> Default for Store<C> {
    fn default() -> Self {
        Store(BTreeMap::new())
    }
}

impl<C: Crdt> Store<C> {
    /// Applies a client update to its key.
    pub fn update(&mut self, op: &Op, origin: &Origin) -> Result<(), String> {
        let mut value = self.0.get(op.key()).cloned().unwrap_or_default();
        value.update(op, origin)?;
        self.0.insert(op.key().to_string(), value);
        Ok(())
    }

    /// The value of `key` as reads render it.
    pub fn read(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(C::read)
    }

    /// Joins another replica's store into this one (see `join_map` for
    /// `keep_mine`).
    pub fn merge(&mut self, other: &Store<C>, keep_mine: bool) {
        join_map(&mut self.0, &other.0, keep_mine, C::merge);
    }

    /// The whole state, key by key, each key's CRDT as JSON: replicas
    /// converged when these are equal, not merely their rendered values.
    pub fn snapshot(&self) -> ReplicaState {
        self.0
            .iter()
            .map(|(key, value)| {
                let json = serde_json::to_string(value).unwrap_or_else(|e| e.to_string());
                (key.clone(), json)
            })
            .collect()
    }
}

fn unsupported(what: &str, op: &Op) -> Result<(), String> {
    Err(format!("a {what} has no {} operation", op.name()))
}

/// A PN-Counter: per actor, the sum of its increments and of its decrements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnCounter {
    #[serde(rename = "p")]
    increments: BTreeMap<String, u64>,
    #[serde(rename = "n")]
    decrements: BTreeMap<String, u64>,
}

impl Crdt for PnCounter {
    fn update(&mut self, op: &Op, origin: &Origin) -> Result<(), String> {
        let Op::Add { amount, .. } = op else {
            return unsupported("counter", op);
        };
        let side = match *amount >= 0 {
            true => &mut self.increments,
            false => &mut self.decrements,
        };
        let entry = side.entry(origin.actor.clone()).or_default();
        *entry = entry.wrapping_add(amount.unsigned_abs());
        Ok(())
    }

    fn read(&self) -> Option<String> {
        let sum =
            |side: &BTreeMap<String, u64>| side.values().fold(0u64, |s, v| s.wrapping_add(*v));
        Some((sum(&self.increments).wrapping_sub(sum(&self.decrements)) as i64).to_string())
    }

    fn merge(&mut self, other: &Self) {
        let max = |mine: &mut u64, theirs: &u64| *mine = (*mine).max(*theirs);
        join_map(&mut self.increments, &other.increments, false, max);
        join_map(&mut self.decrements, &other.decrements, false, max);
    }
}

/// An observed-remove set: each element's tags, and the removed tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrSet {
    tags: BTreeMap<String, BTreeSet<String>>,
    removed: BTreeSet<String>,
}

impl Crdt for OrSet {
    fn update(&mut self, op: &Op, origin: &Origin) -> Result<(), String> {
        match op {
            Op::Insert { element, .. } => {
                let tags = self.tags.entry(element.clone()).or_default();
                tags.insert(origin.tag.clone());
            }
            Op::Remove { element, .. } => {
                let observed = self.tags.get(element).into_iter().flatten();
                self.removed.extend(observed.cloned());
            }
            other => return unsupported("set", other),
        }
        Ok(())
    }

    fn read(&self) -> Option<String> {
        let present: Vec<&String> = self
            .tags
            .iter()
            .filter(|(_, tags)| tags.iter().any(|t| !self.removed.contains(t)))
            .map(|(element, _)| element)
            .collect();
        serde_json::to_string(&present).ok()
    }

    fn merge(&mut self, other: &Self) {
        join_map(&mut self.tags, &other.tags, false, |mine, theirs| {
            mine.extend(theirs.iter().cloned())
        });
        self.removed.extend(other.removed.iter().cloned());
    }
}

/// A last-writer-wins register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwRegister {
    /// `(timestamp in ns, actor, value)` of the winning write, if any.
    write: Option<(u64, String, String)>,
}

impl Crdt for LwwRegister {
    fn update(&mut self, op: &Op, origin: &Origin) -> Result<(), String> {
        let Op::Write { value, .. } = op else {
            return unsupported("last-writer-wins register", op);
        };
        self.merge(&LwwRegister {
            write: Some((origin.time, origin.actor.clone(), value.clone())),
        });
        Ok(())
    }

    fn read(&self) -> Option<String> {
        self.write.as_ref().map(|(_, _, value)| value.clone())
    }

    fn merge(&mut self, other: &Self) {
        if other.write > self.write {
            self.write.clone_from(&other.write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(actor: &str, n: u64, time: u64) -> Origin {
        Origin {
            actor: actor.into(),
            tag: format!("{actor}:{n}"),
            time,
        }
    }

    fn add(amount: i64) -> Op {
        Op::Add {
            key: "k".into(),
            amount,
        }
    }

    /// Join is commutative, associative and idempotent on each type: two
    /// replicas that saw the same updates in any order agree.
    #[test]
    fn joins_commute_and_absorb() {
        let (mut a, mut b) = (Store::<PnCounter>::default(), Store::<PnCounter>::default());
        a.update(&add(5), &origin("a", 1, 0)).unwrap();
        b.update(&add(-2), &origin("b", 1, 0)).unwrap();
        b.update(&add(3), &origin("b", 2, 0)).unwrap();
        let (mut ab, mut ba) = (a.clone(), b.clone());
        ab.merge(&b, false);
        ba.merge(&a, false);
        assert_eq!(ab, ba);
        ab.merge(&ab.clone(), false);
        assert_eq!(ab, ba);
        assert_eq!(ab.read("k").as_deref(), Some("6"));
        // The planted bug: a key both know keeps the receiver's value.
        let (mut ab, mut ba) = (a.clone(), b.clone());
        ab.merge(&b, true);
        ba.merge(&a, true);
        assert_ne!(ab, ba);
    }

    /// A remove tombstones only the tags it observed: an insert it did not
    /// see wins.
    #[test]
    fn or_set_is_add_wins() {
        let (insert, remove) = (
            Op::Insert {
                key: "k".into(),
                element: "x".into(),
            },
            Op::Remove {
                key: "k".into(),
                element: "x".into(),
            },
        );
        let (mut a, mut b) = (OrSet::default(), OrSet::default());
        a.update(&insert, &origin("a", 1, 0)).unwrap();
        b.merge(&a);
        b.update(&remove, &origin("b", 1, 0)).unwrap();
        a.update(&insert, &origin("a", 2, 0)).unwrap();
        a.merge(&b);
        b.merge(&a);
        assert_eq!(a, b);
        assert_eq!(a.read().as_deref(), Some(r#"["x"]"#));
        b.update(&remove, &origin("b", 2, 0)).unwrap();
        assert_eq!(b.read().as_deref(), Some("[]"));
    }

    /// The highest timestamp wins, whatever the order of the writes.
    #[test]
    fn lww_keeps_the_highest_timestamp() {
        let write = |value: &str| Op::Write {
            key: "k".into(),
            value: value.into(),
        };
        let mut r = LwwRegister::default();
        r.update(&write("new"), &origin("a", 1, 20)).unwrap();
        r.update(&write("newer-but-behind"), &origin("b", 1, 10))
            .unwrap();
        assert_eq!(r.read().as_deref(), Some("new"));
        assert!(r.update(&add(1), &origin("a", 2, 30)).is_err());
    }
}
