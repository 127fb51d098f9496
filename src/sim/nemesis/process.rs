//! Process faults: what a replica's own software goes through. Duplication
//! (its transport re-sends requests after reconnecting, or writes messages
//! of its own framing twice) and clock skew (its wall clock off and
//! drifting). Each is a switch on the replica ([`ReplicaFaults`]) that its
//! network and its clock read; they mark the fault behind the switch
//! effective in the ledger when the software meets it: a duplicate sent, a
//! skewed clock read. Duplication applies only to a system whose messages
//! replisim sees (its framing, or [`crate::net::Network::message`]): in a
//! run with none, it is reported not applicable.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

use super::{Applied, Ledger, Nemesis, Strike, host};
use crate::{
    effect,
    net::DuplicationFault,
    node::Clock,
    sim::{fault::Fault, trace},
};

/// A clock skew: offset plus drift since the skew began, put there by the
/// fault numbered `fault`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Skew {
    offset_ms: i64,
    drift_ppm: i64,
    since: Duration,
    fault: usize,
}

impl Skew {
    /// `base` (a true time since the epoch) as the skewed clock shows it at
    /// simulated time `now`.
    fn apply(self, base: Duration, now: Duration) -> Duration {
        let drift_ns = (now.saturating_sub(self.since).as_nanos() as i64)
            .saturating_mul(self.drift_ppm)
            / 1_000_000;
        let shift_ns = self
            .offset_ms
            .saturating_mul(1_000_000)
            .saturating_add(drift_ns);
        let base_ns = base.as_nanos() as i64;
        Duration::from_nanos(base_ns.saturating_add(shift_ns).max(0) as u64)
    }

    fn is_none(self) -> bool {
        self.offset_ms == 0 && self.drift_ppm == 0
    }
}

/// Per-replica switches the process faults flip, read by the replica's
/// network and clock.
#[derive(Clone)]
pub(in crate::sim) struct ReplicaFaults {
    /// The duplicate faults in force on the replica, by number.
    duplicating: Rc<RefCell<Vec<usize>>>,
    skew: Rc<Cell<Skew>>,
    ledger: Ledger,
}

impl ReplicaFaults {
    pub(super) fn new(ledger: Ledger) -> Self {
        ReplicaFaults {
            duplicating: Rc::default(),
            skew: Rc::default(),
            ledger,
        }
    }

    /// The replica's wall clock: skewed while a clock skew is in force, and
    /// a read of it then makes that fault effective.
    pub(in crate::sim) fn clock(&self) -> Clock {
        let (skew, ledger) = (self.skew.clone(), self.ledger.clone());
        Clock::new(move || {
            let base = turmoil::since_epoch().unwrap_or_default();
            let skew = skew.get();
            if skew.is_none() {
                return base;
            }
            trace::add_effect("skewed_clock_reads", 1);
            ledger.effective(skew.fault);
            skew.apply(base, turmoil::sim_elapsed().unwrap_or_default())
        })
    }

    /// Every switch off (the end of the workload).
    pub(super) fn clear(&self) {
        self.duplicating.borrow_mut().clear();
        self.skew.set(Skew::default());
    }
}

pub(super) fn apply(n: &mut Nemesis, strike: &Strike) -> Applied {
    let (Some(r), id) = (strike.node, strike.id) else {
        return Applied::default();
    };
    let faults = n.faults[r].clone();
    match *strike.fault {
        Fault::Duplicate { .. } => {
            faults.duplicating.borrow_mut().push(id);
            trace::add_effect("nodes_duplicating", 1);
            Applied {
                needs: Some(effect::MESSAGES_DELIVERED),
                ..Applied::default()
            }
            .undo(move |_, _, _| faults.duplicating.borrow_mut().retain(|&d| d != id))
        }
        Fault::ClockSkew {
            offset_ms,
            drift_ppm,
            ..
        } => {
            faults.skew.set(Skew {
                offset_ms,
                drift_ppm,
                since: strike.now,
                fault: id,
            });
            trace::add_effect("clocks_skewed", 1);
            Applied::default().undo(move |_, _, _| {
                if faults.skew.get().fault == id {
                    faults.skew.set(Skew::default());
                }
            })
        }
        ref other => unreachable!("{} is not a process fault", other.kind_name()),
    }
}

impl Nemesis {
    /// The duplication fault as the network of replica `own` (or of a
    /// client, `None`) sees it: messages to a duplicating replica, and
    /// every message of a duplicating replica, are duplicated. Asked just
    /// before a duplicate would be sent, it credits the faults behind it.
    pub(in crate::sim) fn duplication(&self, own: Option<usize>) -> DuplicationFault {
        let replicas: Vec<(String, Rc<RefCell<Vec<usize>>>)> = self
            .faults
            .iter()
            .enumerate()
            .map(|(id, faults)| (host(id), faults.duplicating.clone()))
            .collect();
        let own = own.map(|id| self.faults[id].duplicating.clone());
        let ledger = self.ledger.clone();
        Rc::new(move |addr: &str| {
            let peer = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
            let theirs = replicas
                .iter()
                .filter(|(host, _)| host == peer)
                .map(|(_, faults)| faults);
            let mut duplicated = false;
            for faults in own.iter().chain(theirs) {
                for &id in faults.borrow().iter() {
                    ledger.effective(id);
                    duplicated = true;
                }
            }
            duplicated
        })
    }
}
