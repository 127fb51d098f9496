//! What a run reached, for coverage-guided search: each pair of
//! consecutive trace events of one host (the edge from one callsite to the
//! next, as AFL counts edges of a program), with how often it occurred.
//! An event is known by its callsite (target, file and line), never by
//! its fields, so runs that take the same paths through the code reach
//! the same edges whatever values they carried. Callsites are hashed from
//! their text, so an edge's key is the same in every process of one build.

use std::collections::BTreeMap;

use tracing::Metadata;
use xxhash_rust::xxh3::xxh3_64;

/// The edges reached so far, and each host's last event.
#[derive(Default)]
pub(super) struct Coverage {
    /// Each host's name and the callsite of its last event (a handful of
    /// hosts: scanned).
    last: Vec<(Box<str>, u64)>,
    edges: BTreeMap<u64, u32>,
}

impl Coverage {
    /// Counts the edge from `host`'s previous event to this one.
    pub fn add(&mut self, host: &str, meta: &Metadata<'_>) {
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
    }

    /// Every edge reached, with how often.
    pub fn edges(self) -> BTreeMap<u64, u32> {
        self.edges
    }
}
