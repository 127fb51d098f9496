//! CRDT replication, the seed chapter's other end of the design space: no
//! Sync stage at all. A replica applies a client's update to its own state
//! at once (durably: fsync'd before the answer), answers, and gossips its
//! whole state to its peers periodically; receiving a state is a join, so
//! replicas that saw the same updates hold equal states whatever the order
//! (strong eventual consistency). Writes are accepted on both sides of a
//! partition and converge after the heal.
//!
//! - `crdt-counter`: a PN-Counter per key ([`lattice::PnCounter`]), over the
//!   counter workload ([`crate::workload::Counter`]);
//! - `crdt-set`: an add-wins observed-remove set per key
//!   ([`lattice::OrSet`]), over the set workload ([`crate::workload::Set`]);
//! - `lww`: a last-writer-wins register per key ([`lattice::LwwRegister`]),
//!   timestamped by the writing replica's own clock
//!   ([`crate::node::NodeContext::clock`]), over reads and writes of the
//!   key-value workload ([`crate::workload::Registers`]: a register cannot
//!   append or compare-and-set without coordination, so its clients never
//!   ask). A clock running behind makes a newer acknowledged write lose to
//!   an older one: `durable` fails, as the seed chapter warns.
//!
//! Module map: [`lattice`] (the three types and the join of a store),
//! `replica` (durable state, requests, gossip: shared by all three),
//! `client` (the client, also shared).
//!
//! Claims: `convergent`, `durable` and `no-unexpected-exit`, not
//! `linearizable` (a read sees its own replica's state, which may lack
//! what others acknowledged: the linearizability check runs and is shown
//! as not claimed). Durable holds while disks survive: an update lives on
//! its replica's disk until gossip copies it, so losing that machine for
//! good before then loses it, as in asynchronous replication.
//!
//! Planted bug `merge-not-commutative` (`--bug`, any of the three): the
//! join of two stores keeps the receiver's value for every key both
//! know, so `merge(a, b) != merge(b, a)` and replicas that exchanged
//! states diverge for good.

mod client;
pub mod lattice;
mod replica;

use std::{marker::PhantomData, rc::Rc, time::Duration};

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    check::Guarantee,
    net::RpcConfig,
    node::{ClientContext, Declaration, KvClient, NodeContext, NodeResult, System},
    registry::{Registry, SystemError, SystemSpec},
    workload::{Counter, Registers, Set, Workload},
};
use lattice::{Crdt, LwwRegister, OrSet, PnCounter};

/// Deliberately broken CRDTs (a scenario's `bug`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// The join keeps the receiver's value for keys both sides know.
    MergeNotCommutative,
}

/// Timing of the gossip and the requests (a scenario's `config`:
/// `{"gossip_interval": {"secs": 0, "nanos": 10000000}}`, as the engine's
/// durations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrdtConfig {
    /// Time between two gossip exchanges of a replica.
    pub gossip_interval: Duration,
    /// Deadline of one gossip exchange: short, so that a peer cut off
    /// delays the gossip to the others only briefly.
    pub gossip_timeout: Duration,
    /// Timeouts and backoff of clients' requests (a real disk's fsync
    /// takes a while: the default deadline is 500 ms).
    pub rpc: RpcConfig,
    /// The planted bug's join (set from the scenario's `bug`, not its config).
    #[serde(skip)]
    pub(crate) keep_mine: bool,
}

impl Default for CrdtConfig {
    fn default() -> Self {
        CrdtConfig {
            gossip_interval: Duration::from_millis(10),
            gossip_timeout: Duration::from_millis(100),
            rpc: RpcConfig {
                request_timeout: Duration::from_millis(500),
                ..RpcConfig::default()
            },
            keep_mine: false,
        }
    }
}

/// A CRDT system replicating one `C` per key.
pub struct CrdtSystem<C> {
    config: CrdtConfig,
    workload: Rc<dyn Workload>,
    _crdt: PhantomData<C>,
}

impl<C: Crdt> System for CrdtSystem<C> {
    fn declaration(&self) -> Declaration {
        Declaration {
            claims: vec![
                Guarantee::Durable,
                Guarantee::Convergent,
                Guarantee::NoUnexpectedExit,
            ],
            ..Declaration::default()
        }
    }

    fn workload(&self) -> Rc<dyn Workload> {
        self.workload.clone()
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(replica::run::<C>(node, self.config))
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(client::Client::<C>::new(ctx, self.config))
    }
}

/// Registers `crdt-counter`, `crdt-set` and `lww`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "crdt-counter",
        "crdt-counter (PN-Counter, gossip)",
        build::<PnCounter>(|| Rc::new(Counter)),
    );
    registry.register(
        "crdt-set",
        "crdt-set (add-wins OR-Set, gossip)",
        build::<OrSet>(|| Rc::new(Set)),
    );
    registry.register(
        "lww",
        "lww (last-writer-wins registers, gossip)",
        build::<LwwRegister>(|| Rc::new(Registers)),
    );
}

fn build<C: Crdt>(
    workload: fn() -> Rc<dyn Workload>,
) -> impl Fn(&SystemSpec) -> Result<Rc<dyn System>, SystemError> + Send + Sync + 'static {
    move |spec| {
        if let Some(params) = spec.params {
            return Err(spec.bad_params(format!("{params:?}: takes no parameters")));
        }
        let mut config: CrdtConfig = spec.config()?;
        config.keep_mine = spec.bug::<Bug>()? == Some(Bug::MergeNotCommutative);
        Ok(Rc::new(CrdtSystem::<C> {
            config,
            workload: workload(),
            _crdt: PhantomData,
        }))
    }
}
