//! Versions and siblings: dots and causal contexts.
//!
//! Every write gets a *dot*, the coordinating node's actor (its id and
//! disk incarnation) and a counter that actor never reuses, and keeps the
//! *context* its client sent: the dots of everything that client had seen
//! of the key. A version is superseded by another whose context covers its
//! dot; two versions neither of which covers the other are concurrent and
//! both kept: siblings. (A dot beside the context, not an increment of
//! it, is what keeps two writes through one coordinator with the same
//! context concurrent, as they are. The context keeps each actor's dots
//! as a set, not as the highest counter a version vector keeps: a
//! coordinator's counter runs over every client's writes, so the highest
//! counter a client saw does not mean it saw the lower ones.)

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use serde::{Deserialize, Serialize};

/// One write's identity: its coordinator's actor and counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dot {
    pub actor: String,
    pub counter: u64,
}

/// A causal context: the dots seen, by actor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context(pub BTreeMap<String, BTreeSet<u64>>);

impl Context {
    /// Whether the context covers `dot`.
    pub fn covers(&self, dot: &Dot) -> bool {
        self.0
            .get(&dot.actor)
            .is_some_and(|seen| seen.contains(&dot.counter))
    }

    /// The union of both.
    pub fn join(&mut self, other: &Context) {
        for (actor, counters) in &other.0 {
            self.0.entry(actor.clone()).or_default().extend(counters);
        }
    }

    fn add(&mut self, dot: &Dot) {
        self.0
            .entry(dot.actor.clone())
            .or_default()
            .insert(dot.counter);
    }
}

/// One stored write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub dot: Dot,
    /// What its client had seen when it wrote.
    pub context: Context,
    pub value: String,
}

impl Version {
    /// Its context with its own dot: what a client that saw it has seen.
    pub fn covering(&self) -> Context {
        let mut context = self.context.clone();
        context.add(&self.dot);
        context
    }
}

/// A key's versions: none supersedes another, sorted by dot (so equal
/// sets are equal values, and digests of them agree).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Siblings(pub Vec<Version>);

impl Siblings {
    /// Joins `incoming` in: the union, without what anything supersedes.
    /// Two copies of one dot keep the wider context.
    pub fn merge(&mut self, incoming: &[Version]) {
        let mut by_dot: BTreeMap<Dot, Version> =
            self.0.drain(..).map(|v| (v.dot.clone(), v)).collect();
        for version in incoming {
            by_dot
                .entry(version.dot.clone())
                .and_modify(|mine| mine.context.join(&version.context))
                .or_insert_with(|| version.clone());
        }
        let all: Vec<Version> = by_dot.into_values().collect();
        self.0 = all
            .iter()
            .filter(|v| {
                !all.iter()
                    .any(|other| other.dot != v.dot && other.context.covers(&v.dot))
            })
            .cloned()
            .collect();
    }

    /// What a client that read these has seen.
    pub fn context(&self) -> Context {
        let mut context = Context::default();
        for version in &self.0 {
            context.join(&version.covering());
        }
        context
    }

    /// The values, sorted, each once.
    pub fn values(&self) -> Vec<String> {
        let mut values: Vec<String> = self.0.iter().map(|v| v.value.clone()).collect();
        values.sort();
        values.dedup();
        values
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Siblings {
    /// `c0-3 @r1.7:4, c1-2 @r0.9:2`: each value with its dot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .0
            .iter()
            .map(|v| format!("{} @{}:{}", v.value, v.dot.actor, v.dot.counter))
            .collect();
        f.write_str(&shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(actor: &str, counter: u64, context: &[(&str, u64)], value: &str) -> Version {
        Version {
            dot: Dot {
                actor: actor.into(),
                counter,
            },
            context: Context(
                context
                    .iter()
                    .map(|(a, c)| (a.to_string(), BTreeSet::from([*c])))
                    .collect(),
            ),
            value: value.into(),
        }
    }

    #[test]
    fn concurrent_writes_stay_siblings_until_a_write_that_saw_both() {
        let mut key = Siblings::default();
        key.merge(&[version("a", 1, &[], "x")]);
        key.merge(&[version("a", 2, &[], "y")]);
        assert_eq!(key.values(), ["x", "y"], "same coordinator, same context");
        let seen = key.context();
        key.merge(&[version("b", 1, &[("a", 2)], "z")]);
        assert_eq!(key.values(), ["x", "z"], "z saw y only");
        key.merge(&[version("b", 2, &[("a", 1)], "w")]);
        assert_eq!(key.values(), ["w", "z"]);
        let second = Dot {
            actor: "a".into(),
            counter: 2,
        };
        assert!(seen.covers(&second));
    }

    #[test]
    fn merge_is_commutative_and_idempotent() {
        let a = [version("a", 1, &[], "x"), version("b", 3, &[("a", 1)], "y")];
        let b = [version("c", 1, &[], "z"), version("a", 1, &[], "x")];
        let mut ab = Siblings::default();
        ab.merge(&a);
        ab.merge(&b);
        let mut ba = Siblings::default();
        ba.merge(&b);
        ba.merge(&a);
        assert_eq!(ab, ba);
        let again = ab.clone();
        ab.merge(&again.0);
        assert_eq!(ab, again);
        assert_eq!(ab.values(), ["y", "z"]);
    }
}
