//! Consistent hashing: where a key lives and who stands in for it.
//!
//! Every node holds one token, the nodes' tokens evenly spaced around a
//! 64-bit ring in id order; a key lives at the xxh3 hash of its name. The
//! node whose token range holds that point *heads* the key, and the key's
//! preference list is the `n` nodes from its head on, clockwise. The nodes
//! after them, in ring order, are the fallbacks a sloppy quorum asks when
//! preference-list nodes are unreachable. So keys fall into one *range*
//! per node (the keys it heads), each replicated on the same `n` nodes:
//! anti-entropy compares ranges.

/// The ring of a cluster of `nodes`, each key kept by `n` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ring {
    nodes: usize,
    n: usize,
}

impl Ring {
    pub fn new(nodes: usize, n: usize) -> Self {
        Ring {
            nodes,
            n: n.min(nodes),
        }
    }

    /// The node whose range holds `key`.
    pub fn head(&self, key: &str) -> usize {
        let point = xxhash_rust::xxh3::xxh3_64(key.as_bytes()) as u128;
        ((point * self.nodes as u128) >> 64) as usize
    }

    /// Every node in ring order from `key`'s head: its preference list
    /// (the first `n`), then its fallbacks.
    pub fn walk(&self, key: &str) -> Vec<usize> {
        self.walk_from(self.head(key))
    }

    fn walk_from(&self, head: usize) -> Vec<usize> {
        (0..self.nodes).map(|i| (head + i) % self.nodes).collect()
    }

    /// The nodes that keep `key`.
    pub fn owners(&self, key: &str) -> Vec<usize> {
        self.owners_of_range(self.head(key))
    }

    /// The nodes that keep the range `head` heads.
    pub fn owners_of_range(&self, head: usize) -> Vec<usize> {
        let mut walk = self.walk_from(head);
        walk.truncate(self.n);
        walk
    }

    /// The ranges both `a` and `b` keep, by head.
    pub fn shared_ranges(&self, a: usize, b: usize) -> Vec<usize> {
        (0..self.nodes)
            .filter(|&head| {
                let owners = self.owners_of_range(head);
                owners.contains(&a) && owners.contains(&b)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_lists_are_n_consecutive_nodes_and_fallbacks_follow() {
        let ring = Ring::new(5, 3);
        for k in 0..50 {
            let key = format!("k{k}");
            let walk = ring.walk(&key);
            assert_eq!(walk.len(), 5);
            assert_eq!(walk[0], ring.head(&key));
            assert_eq!(ring.owners(&key), walk[..3]);
            assert!(ring.shared_ranges(walk[0], walk[2]).contains(&walk[0]));
        }
        let heads: std::collections::BTreeSet<usize> =
            (0..50).map(|k| ring.head(&format!("k{k}"))).collect();
        assert_eq!(heads.len(), 5, "keys spread over every range");
        assert_eq!(Ring::new(2, 3).owners("k0").len(), 2);
    }
}
