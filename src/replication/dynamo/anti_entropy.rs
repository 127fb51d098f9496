//! Anti-entropy: a node that missed writes catches up without waiting for
//! a read of them.
//!
//! Every `anti_entropy_interval` a node pulls from its next peer (in turn)
//! among those that keep some range it keeps: it sends a digest (xxh3) of
//! its versions of each shared range, and the peer answers with its own
//! versions of every key of each range whose digest differs, which the
//! node merges in. A one-level Merkle tree: one hash per range, then the
//! range's keys. Each node pulls; so every pair exchanges both ways.
//!
//! The planted bug `anti-entropy-skips-range` leaves out the range the
//! pulling node heads: a node that missed a write of its own range never
//! catches up, unless a read repairs it or a hint reaches it.

use std::{collections::BTreeMap, rc::Rc};

use super::{
    Bug,
    replica::{Replica, Request, Response},
    version::Version,
};

impl Replica {
    /// Pulls from the peers in turn, forever.
    pub async fn anti_entropy(self: Rc<Self>) {
        let peers: Vec<usize> = (0..self.peers.count())
            .filter(|&peer| peer != self.id && !self.ring.shared_ranges(self.id, peer).is_empty())
            .collect();
        if peers.is_empty() {
            return std::future::pending().await;
        }
        for peer in peers.iter().cycle() {
            tokio::time::sleep(self.config.anti_entropy_interval).await;
            let ranges = self
                .ring
                .shared_ranges(self.id, *peer)
                .into_iter()
                .filter(|&head| {
                    self.config.bug != Some(Bug::AntiEntropySkipsRange) || head != self.id
                })
                .map(|head| (head, self.digest(head)))
                .collect();
            match self.peers.call(*peer, &Request::Digests { ranges }).await {
                Ok(Response::Ranges(keys)) if !keys.is_empty() => {
                    // A disk error trips the node's fail-stop.
                    self.keep_all(keys).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::trace!(target: "replisim::dynamo", peer, %error, "anti-entropy failed");
                }
            }
        }
    }

    /// This node's versions of every key of the ranges whose digest
    /// differs from `theirs`.
    pub fn differing(&self, theirs: &BTreeMap<usize, u64>) -> BTreeMap<String, Vec<Version>> {
        let state = self.state.get();
        state
            .store
            .iter()
            .filter(|(key, _)| {
                let head = self.ring.head(key);
                theirs
                    .get(&head)
                    .is_some_and(|&digest| digest != self.digest(head))
            })
            .map(|(key, siblings)| (key.clone(), siblings.0.clone()))
            .collect()
    }

    /// The digest of this node's versions of the range `head` heads.
    fn digest(&self, head: usize) -> u64 {
        let state = self.state.get();
        let range: BTreeMap<&String, _> = state
            .store
            .iter()
            .filter(|(key, siblings)| !siblings.is_empty() && self.ring.head(key) == head)
            .collect();
        let bytes = serde_json::to_vec(&range).unwrap_or_default();
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }
}
