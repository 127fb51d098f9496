//! Link faults: the network between replicas, as turmoil link states.
//! Partitions of every shape (partition, isolate, bridge, one-way) cut
//! links; heal repairs the cuts; slow, hold and lossy change how links
//! carry messages. Each link fault in force is a [`LinkEntry`] per link,
//! tagged with the fault that put it there.
//!
//! A link fault is effective through the messages on its links while it is
//! in force (see [`Fault`]): a cut or a lossy link when turmoil drops a
//! message there, a hold when it holds one, a slow link when it carries
//! one. Messages in flight on a link when a cut or a hold comes count too:
//! the cut drops them, the hold holds them. Heal is effective when it
//! repairs a cut.

use std::{net::IpAddr, time::Duration};

use super::{Applied, Nemesis, Strike, host};
use crate::sim::{
    fault::Fault,
    links::{LinkEvent, LinkMessage},
    trace,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkFault {
    Cut,
    /// A cut that isolates a paused replica (healed by its own undo, not by `Heal`).
    Pause,
    CutOneWay,
    Hold,
    Slow(Duration),
    Lossy(u8),
}

impl LinkFault {
    /// Faults that set the same turmoil link state share one number.
    fn link_state(self) -> u8 {
        match self {
            LinkFault::Cut | LinkFault::Pause => 0,
            LinkFault::CutOneWay => 1,
            LinkFault::Hold => 2,
            LinkFault::Slow(_) => 3,
            LinkFault::Lossy(_) => 4,
        }
    }

    /// The message event on its links that shows the fault effective (a
    /// pause shows itself by its replica running).
    fn shown_by(self) -> Option<LinkEvent> {
        match self {
            LinkFault::Cut | LinkFault::CutOneWay | LinkFault::Lossy(_) => Some(LinkEvent::Dropped),
            LinkFault::Hold => Some(LinkEvent::Held),
            LinkFault::Slow(_) => Some(LinkEvent::Sent),
            LinkFault::Pause => None,
        }
    }

    /// The fault window it belongs to, put on links from host `from`.
    fn window(self, from: &str) -> String {
        match self {
            LinkFault::Cut | LinkFault::CutOneWay => "partition".into(),
            LinkFault::Pause => format!("{from} paused"),
            LinkFault::Hold => "held links".into(),
            LinkFault::Slow(_) => "slow links".into(),
            LinkFault::Lossy(_) => "lossy links".into(),
        }
    }

    /// Whether it strikes only messages from the first host to the second.
    fn directed(self) -> bool {
        self == LinkFault::CutOneWay
    }

    /// Whether it drops or holds the messages in flight when it comes.
    fn catches_in_flight(self) -> bool {
        matches!(
            self,
            LinkFault::Cut | LinkFault::CutOneWay | LinkFault::Hold
        )
    }
}

/// One link fault in force: which fault put it there, on which hosts.
#[derive(Debug, Clone)]
pub(super) struct LinkEntry {
    pub fault: usize,
    from: String,
    to: String,
    /// The hosts' addresses, as turmoil's message events name them.
    ends: (IpAddr, IpAddr),
    kind: LinkFault,
}

impl LinkEntry {
    /// Whether a message from `src` to `dst` crosses this link fault.
    fn carries(&self, src: IpAddr, dst: IpAddr) -> bool {
        (src, dst) == self.ends || (!self.kind.directed() && (dst, src) == self.ends)
    }
}

pub(super) fn apply(n: &mut Nemesis, sim: &mut turmoil::Sim, strike: &Strike) -> Applied {
    let (id, now) = (strike.id, strike.now);
    match strike.fault {
        Fault::Partition { groups } => {
            let mut side = vec![groups.len(); n.replicas];
            for (g, group) in groups.iter().enumerate() {
                for &r in group {
                    side[r] = g;
                }
            }
            let pairs = n.replica_pairs(|a, b| side[a] != side[b]);
            n.on_links(sim, id, pairs, LinkFault::Cut, now)
        }
        Fault::Isolate { .. } => {
            let Some(r) = strike.node else {
                return Applied::default();
            };
            let pairs = n.replica_pairs(|a, b| (a == r) != (b == r));
            n.on_links(sim, id, pairs, LinkFault::Cut, now)
        }
        Fault::Bridge { left, right, .. } => {
            let pairs = n.replica_pairs(|a, b| {
                (left.contains(&a) && right.contains(&b))
                    || (left.contains(&b) && right.contains(&a))
            });
            n.on_links(sim, id, pairs, LinkFault::Cut, now)
        }
        Fault::OneWay { from, to } => {
            n.on_links(sim, id, cross(from, to), LinkFault::CutOneWay, now)
        }
        Fault::Heal => Applied::effective(n.heal_partitions(sim, now)),
        Fault::Slow {
            between,
            and,
            latency_ms,
        } => {
            let latency = Duration::from_millis(*latency_ms);
            n.on_links(sim, id, cross(between, and), LinkFault::Slow(latency), now)
        }
        Fault::Hold { between, and } => {
            n.on_links(sim, id, cross(between, and), LinkFault::Hold, now)
        }
        Fault::Lossy {
            between,
            and,
            percent,
        } => n.on_links(
            sim,
            id,
            cross(between, and),
            LinkFault::Lossy(*percent),
            now,
        ),
        other => unreachable!("{} is not a link fault", other.kind_name()),
    }
}

impl Nemesis {
    /// Puts link fault `kind` of fault `id` on `pairs`, undone by its own
    /// undo, effective at once when it catches a message in flight, else
    /// when its message event shows on its links.
    fn on_links(
        &mut self,
        sim: &mut turmoil::Sim,
        id: usize,
        pairs: Vec<(String, String)>,
        kind: LinkFault,
        now: Duration,
    ) -> Applied {
        let caught = kind.catches_in_flight() && in_flight(sim, &pairs, kind.directed());
        let window = kind.window(pairs.first().map_or("", |(from, _)| from));
        self.add_links(sim, id, pairs, kind);
        self.open(window, now);
        Applied::effective(caught)
            .watch(move |n, messages| n.shows(id, messages))
            .undo(move |n, sim, now| {
                n.remove_links(sim, |entry| entry.fault == id, now);
            })
    }

    /// Whether one of `messages` shows link fault `id` effective.
    fn shows(&self, id: usize, messages: &[LinkMessage]) -> bool {
        self.links
            .iter()
            .filter(|entry| entry.fault == id)
            .any(|entry| {
                entry.kind.shown_by().is_some_and(|event| {
                    messages
                        .iter()
                        .any(|m| m.event == event && entry.carries(m.src, m.dst))
                })
            })
    }

    fn replica_pairs(&self, split: impl Fn(usize, usize) -> bool) -> Vec<(String, String)> {
        (0..self.replicas)
            .flat_map(|a| (a + 1..self.replicas).map(move |b| (a, b)))
            .filter(|&(a, b)| split(a, b))
            .map(|(a, b)| (host(a), host(b)))
            .collect()
    }

    pub(super) fn add_links(
        &mut self,
        sim: &mut turmoil::Sim,
        fault: usize,
        pairs: Vec<(String, String)>,
        kind: LinkFault,
    ) {
        let effect = match kind {
            LinkFault::Cut | LinkFault::CutOneWay | LinkFault::Pause => "links_cut",
            LinkFault::Hold => "links_held",
            LinkFault::Slow(_) => "links_slowed",
            LinkFault::Lossy(_) => "links_lossy",
        };
        trace::add_effect(effect, pairs.len() as u64);
        for (from, to) in pairs {
            match kind {
                LinkFault::Cut | LinkFault::Pause => sim.partition(from.as_str(), to.as_str()),
                LinkFault::CutOneWay => sim.partition_oneway(from.as_str(), to.as_str()),
                LinkFault::Hold => sim.hold(from.as_str(), to.as_str()),
                LinkFault::Slow(latency) => {
                    sim.set_link_max_message_latency(from.as_str(), to.as_str(), latency)
                }
                LinkFault::Lossy(percent) => {
                    sim.set_link_fail_rate(from.as_str(), to.as_str(), f64::from(percent) / 100.0)
                }
            }
            let ends = (sim.lookup(from.as_str()), sim.lookup(to.as_str()));
            self.links.push(LinkEntry {
                fault,
                from,
                to,
                ends,
                kind,
            });
        }
    }

    /// Removes the matching link faults, restoring each link that no other
    /// fault of the same kind still affects; says whether any matched.
    pub(super) fn remove_links(
        &mut self,
        sim: &mut turmoil::Sim,
        matching: impl Fn(&LinkEntry) -> bool,
        now: Duration,
    ) -> bool {
        let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.links)
            .into_iter()
            .partition(|e| matching(e));
        self.links = kept;
        let any = !removed.is_empty();
        for entry in removed {
            let same_kind = |e: &LinkEntry| e.kind.link_state() == entry.kind.link_state();
            let still = self.links.iter().any(|e| {
                same_kind(e)
                    && ((e.from == entry.from && e.to == entry.to)
                        || (entry.kind != LinkFault::CutOneWay
                            && e.from == entry.to
                            && e.to == entry.from))
            });
            if still {
                continue;
            }
            let (from, to) = (entry.from.as_str(), entry.to.as_str());
            if matches!(
                entry.kind,
                LinkFault::Cut | LinkFault::Pause | LinkFault::CutOneWay
            ) {
                trace::add_effect("links_repaired", 1);
            }
            match entry.kind {
                LinkFault::Cut | LinkFault::Pause => sim.repair(from, to),
                LinkFault::CutOneWay => sim.repair_oneway(from, to),
                LinkFault::Hold => sim.release(from, to),
                LinkFault::Slow(_) => sim.set_link_max_message_latency(from, to, self.base_latency),
                LinkFault::Lossy(_) => sim.set_link_fail_rate(from, to, 0.0),
            }
        }
        let open: Vec<String> = self
            .windows
            .iter()
            .filter(|w| w.2.is_none())
            .map(|w| w.0.clone())
            .collect();
        for label in open {
            if !self.links.iter().any(|e| e.kind.window(&e.from) == label)
                && !label.ends_with("down")
                && !label.ends_with("lost")
            {
                self.close(&label, now);
            }
        }
        any
    }

    /// Repairs every cut but the pauses'; says whether there was one.
    fn heal_partitions(&mut self, sim: &mut turmoil::Sim, now: Duration) -> bool {
        self.remove_links(
            sim,
            |e| matches!(e.kind, LinkFault::Cut | LinkFault::CutOneWay),
            now,
        )
    }
}

/// Whether a message is in flight on one of the links `pairs` (from the
/// first host to the second only, when `directed`).
fn in_flight(sim: &turmoil::Sim, pairs: &[(String, String)], directed: bool) -> bool {
    let ends: Vec<(IpAddr, IpAddr)> = pairs
        .iter()
        .map(|(a, b)| (sim.lookup(a.as_str()), sim.lookup(b.as_str())))
        .collect();
    let mut found = false;
    sim.links(|links| {
        found = links.flatten().any(|message| {
            let (src, dst) = message.pair();
            let (src, dst) = (src.ip(), dst.ip());
            ends.iter()
                .any(|&end| end == (src, dst) || (!directed && end == (dst, src)))
        });
    });
    found
}

fn cross(a: &[usize], b: &[usize]) -> Vec<(String, String)> {
    a.iter()
        .flat_map(|&x| {
            b.iter()
                .filter(move |&&y| y != x)
                .map(move |&y| (host(x), host(y)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: LinkFault) -> LinkEntry {
        LinkEntry {
            fault: 0,
            from: host(0),
            to: host(1),
            ends: (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])),
            kind,
        }
    }

    /// A one-way cut is crossed only from its first host to its second;
    /// every other link fault both ways.
    #[test]
    fn a_message_crosses_a_one_way_cut_only_in_its_direction() {
        let (a, b, c) = (
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 2]),
            IpAddr::from([10, 0, 0, 3]),
        );
        let one_way = entry(LinkFault::CutOneWay);
        assert!(one_way.carries(a, b) && !one_way.carries(b, a));
        for kind in [LinkFault::Cut, LinkFault::Hold, LinkFault::Lossy(10)] {
            let both = entry(kind);
            assert!(both.carries(a, b) && both.carries(b, a), "{kind:?}");
            assert!(!both.carries(a, c), "{kind:?}");
        }
    }
}
