//! The nemesis: applies [`Fault`]s to a running turmoil simulation, undoes
//! them when their time is up, and heals everything at the end of the
//! workload. It keeps the books the outcome reports: which replicas are
//! down or lost, the fault windows, and the effects each fault had.

use std::{cell::Cell, collections::BTreeSet, rc::Rc, time::Duration};

use super::{
    fault::{Fault, ScheduledFault},
    trace,
};
use crate::{
    check::stats::FaultWindow,
    node::{Roles, StateProbe},
};

/// A clock skew: offset plus drift since the skew began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Skew {
    offset_ms: i64,
    drift_ppm: i64,
    since: Duration,
}

impl Skew {
    /// `base` (a true time since the epoch) as the skewed clock shows it at
    /// simulated time `now`.
    pub fn apply(self, base: Duration, now: Duration) -> Duration {
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

    pub fn is_none(self) -> bool {
        self.offset_ms == 0 && self.drift_ppm == 0
    }
}

/// Per-replica switches the nemesis flips and the replica's network and
/// clock read.
#[derive(Clone, Default)]
pub(super) struct ReplicaFaults {
    pub duplicate: Rc<Cell<bool>>,
    pub skew: Rc<Cell<Skew>>,
    /// Set by the replica's host when its software returned by itself.
    pub exited: Rc<Cell<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkFault {
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
}

/// One link fault in force: which fault put it there, on which hosts.
#[derive(Debug, Clone)]
struct LinkEntry {
    fault: usize,
    from: String,
    to: String,
    kind: LinkFault,
}

enum Undo {
    Restart(usize),
    Links(usize),
    StopDuplicating(usize),
    ResetClock(usize),
}

pub(super) struct Nemesis {
    replicas: usize,
    base_latency: Duration,
    pub crashed: BTreeSet<usize>,
    pub lost: BTreeSet<usize>,
    links: Vec<LinkEntry>,
    undo: Vec<(Duration, Undo)>,
    windows: Vec<(String, Duration, Option<Duration>)>,
    pub faults: Vec<ReplicaFaults>,
    probes: Vec<StateProbe>,
    roles: Vec<Roles>,
    pub applied: usize,
}

/// What the harness must do after a fault: fail over (a replica is lost).
pub(super) struct FailOver;

pub(super) fn host(id: usize) -> String {
    format!("replica-{id}")
}

impl Nemesis {
    pub fn new(
        replicas: usize,
        base_latency: Duration,
        probes: Vec<StateProbe>,
        roles: Vec<Roles>,
    ) -> Self {
        Nemesis {
            replicas,
            base_latency,
            crashed: BTreeSet::new(),
            lost: BTreeSet::new(),
            links: Vec::new(),
            undo: Vec::new(),
            windows: Vec::new(),
            faults: (0..replicas).map(|_| ReplicaFaults::default()).collect(),
            probes,
            roles,
            applied: 0,
        }
    }

    /// Applies fault number `id`; a node fault strikes replica `node` (its
    /// target as the harness resolved it). `others` are the non-replica
    /// hosts (clients, operator) a pause cuts.
    pub fn apply(
        &mut self,
        sim: &mut turmoil::Sim,
        id: usize,
        scheduled: &ScheduledFault,
        node: Option<usize>,
        now: Duration,
        others: &[String],
    ) -> Option<FailOver> {
        tracing::info!(target: "replisim::nemesis", fault = %scheduled.fault, "fault");
        self.applied += 1;
        let until = scheduled.for_ms.map(|d| now + Duration::from_millis(d));
        let undo = |this: &mut Self, action: Undo| {
            if let Some(at) = until {
                this.undo.push((at, action));
            }
        };
        match scheduled.fault {
            Fault::Crash { .. } => {
                let r = node?;
                if self.lost.contains(&r) || !self.crashed.insert(r) {
                    return None;
                }
                sim.crash(host(r));
                self.forget(r);
                trace::add_effect("nodes_crashed", 1);
                self.open(format!("replica-{r} down"), now);
                undo(self, Undo::Restart(r));
            }
            Fault::Restart { .. } => self.restart(sim, node?, now),
            Fault::Lose { .. } => {
                let r = node?;
                if !self.lost.insert(r) {
                    return None;
                }
                if !self.crashed.remove(&r) {
                    sim.crash(host(r));
                }
                self.forget(r);
                trace::add_effect("nodes_lost", 1);
                self.open(format!("replica-{r} lost"), now);
                return Some(FailOver);
            }
            Fault::Pause { .. } => {
                let r = node?;
                let everyone = (0..self.replicas)
                    .filter(|&o| o != r)
                    .map(host)
                    .chain(others.iter().cloned());
                let pairs: Vec<_> = everyone.map(|o| (host(r), o)).collect();
                self.add_links(sim, id, pairs, LinkFault::Pause);
                trace::add_effect("nodes_paused", 1);
                self.open(format!("replica-{r} paused"), now);
                undo(self, Undo::Links(id));
            }
            Fault::Partition { ref groups } => {
                let mut side = vec![groups.len(); self.replicas];
                for (g, group) in groups.iter().enumerate() {
                    for &r in group {
                        side[r] = g;
                    }
                }
                let pairs = self.replica_pairs(|a, b| side[a] != side[b]);
                self.cut(sim, id, pairs, now);
                undo(self, Undo::Links(id));
            }
            Fault::Isolate { .. } => {
                let r = node?;
                let pairs = self.replica_pairs(|a, b| (a == r) != (b == r));
                self.cut(sim, id, pairs, now);
                undo(self, Undo::Links(id));
            }
            Fault::Bridge {
                ref left,
                ref right,
                ..
            } => {
                let pairs = self.replica_pairs(|a, b| {
                    (left.contains(&a) && right.contains(&b))
                        || (left.contains(&b) && right.contains(&a))
                });
                self.cut(sim, id, pairs, now);
                undo(self, Undo::Links(id));
            }
            Fault::OneWay { ref from, ref to } => {
                let pairs = cross(from, to);
                self.add_links(sim, id, pairs, LinkFault::CutOneWay);
                self.open("partition".into(), now);
                undo(self, Undo::Links(id));
            }
            Fault::Heal => self.heal_partitions(sim, now),
            Fault::Slow {
                ref between,
                ref and,
                latency_ms,
            } => {
                let latency = Duration::from_millis(latency_ms);
                self.add_links(sim, id, cross(between, and), LinkFault::Slow(latency));
                self.open("slow links".into(), now);
                undo(self, Undo::Links(id));
            }
            Fault::Hold {
                ref between,
                ref and,
            } => {
                self.add_links(sim, id, cross(between, and), LinkFault::Hold);
                self.open("held links".into(), now);
                undo(self, Undo::Links(id));
            }
            Fault::Lossy {
                ref between,
                ref and,
                percent,
            } => {
                self.add_links(sim, id, cross(between, and), LinkFault::Lossy(percent));
                self.open("lossy links".into(), now);
                undo(self, Undo::Links(id));
            }
            Fault::Duplicate { .. } => {
                let r = node?;
                self.faults[r].duplicate.set(true);
                trace::add_effect("nodes_duplicating", 1);
                undo(self, Undo::StopDuplicating(r));
            }
            Fault::ClockSkew {
                offset_ms,
                drift_ppm,
                ..
            } => {
                let r = node?;
                self.faults[r].skew.set(Skew {
                    offset_ms,
                    drift_ppm,
                    since: now,
                });
                trace::add_effect("clocks_skewed", 1);
                undo(self, Undo::ResetClock(r));
            }
        }
        None
    }

    /// Undoes the faults whose time is up.
    pub fn undo_due(&mut self, sim: &mut turmoil::Sim, now: Duration) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.undo)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.undo = later;
        for (_, action) in due {
            match action {
                Undo::Restart(r) => self.restart(sim, r, now),
                Undo::Links(fault) => self.remove_links(sim, |entry| entry.fault == fault, now),
                Undo::StopDuplicating(r) => self.faults[r].duplicate.set(false),
                Undo::ResetClock(r) => self.faults[r].skew.set(Skew::default()),
            }
        }
    }

    /// End of the workload: every fault is undone and crashed replicas restart.
    pub fn heal_everything(&mut self, sim: &mut turmoil::Sim, now: Duration) {
        self.undo.clear();
        self.remove_links(sim, |_| true, now);
        for r in self.crashed.clone() {
            self.restart(sim, r, now);
        }
        for faults in &self.faults {
            faults.duplicate.set(false);
            faults.skew.set(Skew::default());
        }
        for (_, _, end) in self.windows.iter_mut() {
            end.get_or_insert(now);
        }
    }

    /// A replica whose software exited (not crashed by us) is restarted, as
    /// a supervisor would. Called after every step: it reads the flag the
    /// replica's host sets, not turmoil's host table.
    pub fn supervise(&mut self, sim: &mut turmoil::Sim) {
        for r in 0..self.replicas {
            if self.faults[r].exited.replace(false)
                && !self.crashed.contains(&r)
                && !self.lost.contains(&r)
            {
                tracing::info!(target: "replisim::nemesis", replica = r, "replica software exited; restarting it");
                trace::add_effect("replica_exits", 1);
                sim.bounce(host(r));
            }
        }
    }

    pub fn windows(&self, end_of_run: Duration) -> Vec<FaultWindow> {
        self.windows
            .iter()
            .map(|(label, start, end)| FaultWindow {
                start: start.as_nanos() as u64,
                end: end.unwrap_or(end_of_run).as_nanos() as u64,
                label: label.clone(),
            })
            .collect()
    }

    /// A dead replica publishes no state and holds no role.
    fn forget(&self, r: usize) {
        self.probes[r].clear();
        self.roles[r].clear();
    }

    fn restart(&mut self, sim: &mut turmoil::Sim, r: usize, now: Duration) {
        if self.crashed.remove(&r) {
            sim.bounce(host(r));
            trace::add_effect("nodes_restarted", 1);
            self.close(&format!("replica-{r} down"), now);
        }
    }

    fn replica_pairs(&self, split: impl Fn(usize, usize) -> bool) -> Vec<(String, String)> {
        (0..self.replicas)
            .flat_map(|a| (a + 1..self.replicas).map(move |b| (a, b)))
            .filter(|&(a, b)| split(a, b))
            .map(|(a, b)| (host(a), host(b)))
            .collect()
    }

    fn cut(
        &mut self,
        sim: &mut turmoil::Sim,
        id: usize,
        pairs: Vec<(String, String)>,
        now: Duration,
    ) {
        self.add_links(sim, id, pairs, LinkFault::Cut);
        self.open("partition".into(), now);
    }

    fn add_links(
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
            self.links.push(LinkEntry {
                fault,
                from,
                to,
                kind,
            });
        }
    }

    /// Removes the matching link faults, restoring each link that no other
    /// fault of the same kind still affects.
    fn remove_links(
        &mut self,
        sim: &mut turmoil::Sim,
        matching: impl Fn(&LinkEntry) -> bool,
        now: Duration,
    ) {
        let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.links)
            .into_iter()
            .partition(|e| matching(e));
        self.links = kept;
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
            if !self.links.iter().any(|e| self.window_label(e) == label)
                && !label.ends_with("down")
                && !label.ends_with("lost")
            {
                self.close(&label, now);
            }
        }
    }

    fn heal_partitions(&mut self, sim: &mut turmoil::Sim, now: Duration) {
        self.remove_links(
            sim,
            |e| matches!(e.kind, LinkFault::Cut | LinkFault::CutOneWay),
            now,
        );
    }

    /// The fault window a link fault belongs to.
    fn window_label(&self, entry: &LinkEntry) -> String {
        match entry.kind {
            LinkFault::Cut | LinkFault::CutOneWay => "partition".into(),
            LinkFault::Pause => format!("{} paused", entry.from),
            LinkFault::Hold => "held links".into(),
            LinkFault::Slow(_) => "slow links".into(),
            LinkFault::Lossy(_) => "lossy links".into(),
        }
    }

    fn open(&mut self, label: String, now: Duration) {
        if !self
            .windows
            .iter()
            .any(|(l, _, end)| *l == label && end.is_none())
        {
            self.windows.push((label, now, None));
        }
    }

    fn close(&mut self, label: &str, now: Duration) {
        for (_, _, end) in self.windows.iter_mut().filter(|(l, ..)| l == label) {
            end.get_or_insert(now);
        }
    }
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
