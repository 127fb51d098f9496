//! Primary/backup replication with automatic failover, the seed chapter's
//! primary/backup pattern with a failure detector instead of a human
//! operator, in two variants built on the four-stage engine
//! ([`crate::replication::four_stage`]: log shipping with epochs, log
//! matching, at-most-once requests, the fsync'd log and meta file; its
//! `view` module holds the failure detector and the view changes):
//!
//! - `primary-backup` ([`Variant::Naive`]), the variant many real systems
//!   started as: a backup that stops hearing from the primary promotes
//!   itself under the next epoch; nothing stops the old primary; backups
//!   follow whoever ships to them; the primary waits for every backup that
//!   answers and drops the ones that stop answering (as real systems
//!   degrade). After a partition both sides accept writes: split brain.
//! - `primary-backup:fenced` ([`Variant::Fenced`]): epochs checked on every
//!   message, the view change acknowledged by a majority (each acknowledger
//!   persists the new epoch first), writes committed on a majority, the
//!   most up-to-date replica of the acknowledging majority promoted, and
//!   reads fenced by a lease that allows for a bounded clock drift
//!   ([`crate::replication::four_stage::FailoverConfig`]). A clock that
//!   drifts or jumps beyond that bound breaks the lease: a deposed primary
//!   can then serve stale reads.
//!
//! Both publish the role `primary` with their epoch and claim
//! linearizable, durable and convergent (the naive one so the suite shows
//! it breaking them). Neither opts into the operator's failover: there is
//! no manual path, failover is the replicas' own business. Clients follow
//! the replicas' redirects to the primary. The fenced variant declares that
//! it needs a quorum. Its planted bug `epoch-not-checked` accepts
//! replicate messages of older epochs.

use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::{
    check::Guarantee,
    node::{ClientContext, Declaration, KvClient, NodeContext, NodeResult, System},
    registry::{Registry, SystemError, SystemSpec},
    replication::four_stage::{
        self, EngineConfig, Failover, Mode, PRIMARY, engine_client, replica_software,
    },
};

/// Which primary/backup system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `primary-backup`: unfenced failover.
    Naive,
    /// `primary-backup:fenced`: majority view changes, epochs, read leases.
    Fenced,
}

/// Deliberately broken variants of `primary-backup:fenced` (a scenario's `bug`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Backups accept replicate messages of an older epoch (and follow
    /// their sender): a deposed primary that comes back takes over again.
    EpochNotChecked,
}

/// A primary/backup system with automatic failover. Its configuration is
/// the engine's ([`EngineConfig`], with its `failover` timing).
#[derive(Debug, Clone)]
pub struct PrimaryBackup {
    pub variant: Variant,
    pub config: EngineConfig,
    pub bug: Option<Bug>,
}

impl PrimaryBackup {
    fn failover(&self) -> Failover {
        match self.variant {
            Variant::Naive => Failover::Naive,
            Variant::Fenced => Failover::Fenced {
                epochs_checked: self.bug != Some(Bug::EpochNotChecked),
            },
        }
    }
}

/// Registers `primary-backup` and `primary-backup:fenced`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "primary-backup",
        "primary-backup[:fenced] (automatic failover; fenced: majority view changes, epochs, read leases)",
        build,
    );
}

fn build(spec: &SystemSpec) -> Result<Rc<dyn System>, SystemError> {
    let variant = match spec.params {
        None => Variant::Naive,
        Some("fenced") => Variant::Fenced,
        Some(other) => return Err(spec.bad_params(format!("{other:?} is not \"fenced\""))),
    };
    let bug = match variant {
        Variant::Naive => spec.no_bug().map(|()| None)?,
        Variant::Fenced => spec.bug()?,
    };
    Ok(Rc::new(PrimaryBackup {
        variant,
        config: spec.config()?,
        bug,
    }))
}

impl System for PrimaryBackup {
    fn declaration(&self) -> Declaration {
        Declaration {
            roles: vec![PRIMARY.to_string()],
            claims: [&Guarantee::SAFETY[..], &[Guarantee::ExclusiveRoles]].concat(),
            needs_quorum: self.variant == Variant::Fenced,
            events: four_stage::events(),
            ..Declaration::default()
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        // Naive: every backup that answers; fenced: with the primary, a
        // majority of all the replicas.
        let mode = match self.variant {
            Variant::Naive => Mode::Sync,
            Variant::Fenced => Mode::SemiSync(node.replicas.len() / 2),
        };
        replica_software(node, mode, self.config, None, self.failover())
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        engine_client(ctx, self.config, self.failover())
    }
}
