//! Node faults: a replica's process and machine (crash, restart, lose,
//! pause, and a power loss that crashes them all), each effective on a
//! replica in the right state (see [`Fault`]). A crash, a loss and a pause
//! strike a running replica (a loss also one crashed, whose disk it
//! takes); a restart, a crashed one.
//! A pause is a cut of every link of the replica's, and is effective if the
//! replica runs at any step while it is paused (a crashed replica restarted
//! meanwhile included).

use std::time::Duration;

use super::{Applied, Nemesis, Strike, host, link::LinkFault};
use crate::sim::{fault::Fault, trace};

pub(super) fn apply(n: &mut Nemesis, sim: &mut turmoil::Sim, strike: &Strike) -> Applied {
    if let Fault::PowerLoss = strike.fault {
        return power_loss(n, sim, strike.now);
    }
    let (Some(r), now, id) = (strike.node, strike.now, strike.id) else {
        return Applied::default();
    };
    match strike.fault {
        Fault::Crash { .. } => {
            if !crash(n, sim, r, now) {
                return Applied::default();
            }
            Applied::effective(true).undo(move |n, sim, now| {
                restart(n, sim, r, now);
            })
        }
        Fault::Restart { .. } => Applied::effective(restart(n, sim, r, now)),
        Fault::Lose { .. } => {
            if !n.lost.insert(r) {
                return Applied::default();
            }
            if !n.crashed.remove(&r) {
                sim.crash(host(r));
            }
            forget(n, r);
            trace::add_effect("nodes_lost", 1);
            n.open(format!("replica-{r} lost"), now);
            Applied {
                fail_over: true,
                ..Applied::effective(true)
            }
        }
        Fault::Pause { .. } => {
            let everyone = (0..n.replicas)
                .filter(|&o| o != r)
                .map(host)
                .chain(strike.others.iter().cloned());
            let pairs: Vec<_> = everyone.map(|o| (host(r), o)).collect();
            n.add_links(sim, id, pairs, LinkFault::Pause);
            trace::add_effect("nodes_paused", 1);
            n.open(format!("replica-{r} paused"), now);
            Applied::effective(n.is_running(r))
                .watch(move |n, _| n.is_running(r))
                .undo(move |n, sim, now| {
                    n.remove_links(sim, |entry| entry.fault == id, now);
                })
        }
        other => unreachable!("{} is not a node fault", other.kind_name()),
    }
}

/// Crashes every running replica; restarts them together when undone.
fn power_loss(n: &mut Nemesis, sim: &mut turmoil::Sim, now: Duration) -> Applied {
    let struck: Vec<usize> = (0..n.replicas).filter(|&r| crash(n, sim, r, now)).collect();
    Applied::effective(!struck.is_empty()).undo(move |n, sim, now| {
        for r in struck {
            restart(n, sim, r, now);
        }
    })
}

/// Crashes replica `r` if it is running; says whether it was.
fn crash(n: &mut Nemesis, sim: &mut turmoil::Sim, r: usize, now: Duration) -> bool {
    if n.lost.contains(&r) || !n.crashed.insert(r) {
        return false;
    }
    sim.crash(host(r));
    forget(n, r);
    trace::add_effect("nodes_crashed", 1);
    n.open(format!("replica-{r} down"), now);
    true
}

/// Restarts replica `r` if it is crashed; says whether it was.
pub(super) fn restart(n: &mut Nemesis, sim: &mut turmoil::Sim, r: usize, now: Duration) -> bool {
    if !n.crashed.remove(&r) {
        return false;
    }
    sim.bounce(host(r));
    trace::add_effect("nodes_restarted", 1);
    n.close(&format!("replica-{r} down"), now);
    true
}

/// A dead replica publishes no state and holds no role.
fn forget(n: &Nemesis, r: usize) {
    n.probes[r].clear();
    n.roles[r].clear();
}
