//! What a run reached, for coverage-guided search:
//!
//! - each pair of consecutive trace events of one host (the edge from one
//!   callsite to the next, as AFL counts edges of a program), with how
//!   often it occurred. An event is known by its callsite (target, file
//!   and line), never by its fields, so runs that take the same paths
//!   through the code reach the same edges whatever values they carried.
//!   Callsites are hashed from their text, so an edge's key is the same in
//!   every process of one build;
//! - how often each host emitted each of the moments its system declares
//!   worth striking at ([`crate::node::Moment`]): where a fault triggered
//!   on that moment would have struck. An event's fields are only read as
//!   text when its target is a moment's.

use std::collections::BTreeMap;

use tracing::Event;
use xxhash_rust::xxh3::xxh3_64;

use super::triggers::Texts;
use crate::sim::fault::Trigger;

/// Each declared moment a host reached, with how often.
pub(super) type MomentCounts = Vec<(Trigger, Box<str>, u32)>;

/// The edges and moments reached so far, and each host's last event.
pub(super) struct Coverage {
    /// Each host's name and the callsite of its last event (a handful of
    /// hosts: scanned).
    last: Vec<(Box<str>, u64)>,
    edges: BTreeMap<u64, u32>,
    /// The system's declared moments, as triggers that match them.
    moments: Vec<Trigger>,
    /// How often each (moment's index, host) occurred (a handful:
    /// scanned).
    moments_reached: Vec<(usize, Box<str>, u32)>,
}

impl Coverage {
    /// Counts edges, and the occurrences of `moments`.
    pub fn new(moments: Vec<Trigger>) -> Self {
        Coverage {
            last: Vec::new(),
            edges: BTreeMap::new(),
            moments,
            moments_reached: Vec::new(),
        }
    }

    /// Counts the edge from `host`'s previous event to this one, and the
    /// moment it is, if it is one.
    pub fn add(&mut self, host: &str, event: &Event<'_>) {
        let meta = event.metadata();
        let site = xxh3_64(meta.target().as_bytes()) ^ xxh3_64(meta.name().as_bytes());
        let previous = match self.last.iter_mut().find(|(name, _)| **name == *host) {
            Some((_, last)) => std::mem::replace(last, site),
            None => {
                self.last.push((host.into(), site));
                0
            }
        };
        let edge = previous.rotate_left(17) ^ site;
        *self.edges.entry(edge).or_default() += 1;
        if !self.moments.iter().any(|m| m.matches_target(meta.target())) {
            return;
        }
        let texts = Texts::of(event);
        for (i, moment) in self.moments.iter().enumerate() {
            if !(moment.matches_target(meta.target()) && moment.matches_fields(|n| texts.get(n))) {
                continue;
            }
            let reached = &mut self.moments_reached;
            match reached.iter().position(|(m, h, _)| *m == i && **h == *host) {
                Some(at) => reached[at].2 += 1,
                None => reached.push((i, host.into(), 1)),
            }
        }
    }

    /// Every edge reached, with how often; and each moment a host
    /// reached, with how often (in the order of the moments, then hosts).
    pub fn finish(mut self) -> (BTreeMap<u64, u32>, MomentCounts) {
        self.moments_reached.sort();
        let moments = self.moments_reached.into_iter();
        let reached = moments.map(|(i, host, count)| (self.moments[i].clone(), host, count));
        (self.edges, reached.collect())
    }
}
