//! The nemesis: applies [`Fault`]s to a running turmoil simulation, undoes
//! them when their time is up, and heals everything at the end of the
//! workload. It keeps the books the outcome reports: which replicas are
//! down or lost, the fault windows, and what each fault did ([`Ledger`]).
//!
//! Faults are applied by [`Family`], one file each: `node` (crash,
//! restart, lose, pause), `link` (partitions of every shape, heal, slow,
//! held and lossy links) and `process` (duplication, clock skew). A
//! family's `apply` does the fault and answers with an [`Applied`]: whether
//! the fault was effective at once, how to undo it, what to watch for
//! while it is in force, and what the system must do for it to apply at
//! all. After every simulation step the nemesis holds the watches of the
//! faults in force against that step (turmoil's message events on their
//! links, which replicas run); the replicas' own instrumentation (their
//! clock, their network) marks the faults it meets in the ledger. So
//! adding a fault kind takes its value ([`Fault`], with its definition of
//! effective), its strategy ([`crate::strategy`]) and its application in
//! its family's file; nothing here names a kind.

mod link;
mod node;
mod process;

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
    time::Duration,
};

use process::ReplicaFaults;

use super::{
    fault::FaultCount,
    fault::{Family, Fault, ScheduledFault},
    links::LinkMessage,
    trace,
};
use crate::{
    check::stats::FaultWindow,
    node::{Roles, StateProbe},
};

/// What each scheduled fault did, by its number in the scenario. Shared
/// with the replicas' instrumentation, which marks the faults it meets.
#[derive(Clone, Default)]
pub(super) struct Ledger(Rc<RefCell<Vec<Record>>>);

#[derive(Debug, Clone, Copy, Default)]
struct Record {
    fired: bool,
    effective: bool,
    /// An effect counter the run must raise for the fault to apply to the
    /// system at all.
    needs: Option<&'static str>,
}

impl Ledger {
    /// A ledger for a scenario of `faults` faults.
    pub fn new(faults: usize) -> Self {
        Ledger(Rc::new(RefCell::new(vec![Record::default(); faults])))
    }

    /// Fault `id` fired (applied, or skipped for want of a target).
    pub fn fired(&self, id: usize) {
        self.0.borrow_mut()[id].fired = true;
    }

    /// Fault `id` did what it is there to do.
    pub fn effective(&self, id: usize) {
        self.0.borrow_mut()[id].effective = true;
    }

    fn needs(&self, id: usize, effect: &'static str) {
        self.0.borrow_mut()[id].needs = Some(effect);
    }

    /// Faults fired, effective and not applicable, by kind, given the
    /// run's effect counters.
    pub fn counts(
        &self,
        faults: &[ScheduledFault],
        effects: &BTreeMap<String, u64>,
    ) -> BTreeMap<String, FaultCount> {
        let mut counts = BTreeMap::<String, FaultCount>::new();
        for (record, scheduled) in self.0.borrow().iter().zip(faults) {
            if !record.fired {
                continue;
            }
            let unmet = record
                .needs
                .is_some_and(|effect| effects.get(effect).copied().unwrap_or(0) == 0);
            counts
                .entry(scheduled.fault.kind_name().to_string())
                .or_default()
                .add(FaultCount {
                    fired: 1,
                    effective: u64::from(record.effective),
                    not_applicable: u64::from(!record.effective && unmet),
                });
        }
        counts
    }
}

/// A fault being applied.
pub(super) struct Strike<'a> {
    /// Its number in the scenario.
    pub id: usize,
    pub fault: &'a Fault,
    /// The replica a node-targeted fault strikes, as the harness resolved it.
    pub node: Option<usize>,
    pub now: Duration,
    /// The hosts other than replicas (clients, operator): a pause cuts them too.
    pub others: &'a [String],
}

/// Undoes a fault: the nemesis, the simulation, the time.
type Undo = Box<dyn FnOnce(&mut Nemesis, &mut turmoil::Sim<'_>, Duration)>;

/// Says whether a fault in force showed an effect in the last step, given
/// the nemesis and turmoil's message events on links in that step.
type Watch = Box<dyn Fn(&Nemesis, &[LinkMessage]) -> bool>;

/// What applying a fault did, and what comes of it.
#[derive(Default)]
struct Applied {
    /// It changed something at once.
    effective: bool,
    /// How to undo it when its `for_ms` is up (`None`: nothing to undo).
    undo: Option<Undo>,
    /// What shows it effective later, while it is in force.
    watch: Option<Watch>,
    /// An effect counter the run must raise for the fault to apply to the
    /// system at all (else it is reported not applicable).
    needs: Option<&'static str>,
    /// A replica was lost for good: the harness must fail over.
    fail_over: bool,
}

impl Applied {
    /// Applied; effective at once or not.
    fn effective(effective: bool) -> Self {
        Applied {
            effective,
            ..Applied::default()
        }
    }

    fn undo(
        mut self,
        undo: impl FnOnce(&mut Nemesis, &mut turmoil::Sim<'_>, Duration) + 'static,
    ) -> Self {
        self.undo = Some(Box::new(undo));
        self
    }

    fn watch(mut self, watch: impl Fn(&Nemesis, &[LinkMessage]) -> bool + 'static) -> Self {
        self.watch = Some(Box::new(watch));
        self
    }
}

pub(super) struct Nemesis {
    replicas: usize,
    base_latency: Duration,
    pub crashed: BTreeSet<usize>,
    pub lost: BTreeSet<usize>,
    links: Vec<link::LinkEntry>,
    /// Undo at a time, of the fault with a number.
    undo: Vec<(Duration, usize, Undo)>,
    /// The faults in force not yet shown effective, with what would show it.
    watches: Vec<(usize, Watch)>,
    windows: Vec<(String, Duration, Option<Duration>)>,
    pub faults: Vec<ReplicaFaults>,
    /// Set by a replica's host when its software returned by itself.
    pub exited: Vec<Rc<Cell<bool>>>,
    probes: Vec<StateProbe>,
    roles: Vec<Roles>,
    pub ledger: Ledger,
    pub applied: usize,
}

/// What the harness must do after a fault: fail over (a replica is lost).
pub(super) struct FailOver;

pub(super) fn host(id: usize) -> String {
    format!("replica-{id}")
}

/// The replica a host name ([`host`]) names; `None` for other hosts
/// (clients, the harness).
pub(super) fn replica_of(host: &str) -> Option<usize> {
    host.strip_prefix("replica-")?.parse().ok()
}

impl Nemesis {
    pub fn new(
        replicas: usize,
        base_latency: Duration,
        probes: Vec<StateProbe>,
        roles: Vec<Roles>,
        ledger: Ledger,
    ) -> Self {
        Nemesis {
            replicas,
            base_latency,
            crashed: BTreeSet::new(),
            lost: BTreeSet::new(),
            links: Vec::new(),
            undo: Vec::new(),
            watches: Vec::new(),
            windows: Vec::new(),
            faults: (0..replicas)
                .map(|_| ReplicaFaults::new(ledger.clone()))
                .collect(),
            exited: (0..replicas).map(|_| Rc::default()).collect(),
            probes,
            roles,
            ledger,
            applied: 0,
        }
    }

    /// Applies a fault: its family does it; the nemesis books whether it
    /// was effective, when to undo it and what to watch for meanwhile.
    pub fn apply(
        &mut self,
        sim: &mut turmoil::Sim,
        strike: &Strike,
        for_ms: Option<u64>,
    ) -> Option<FailOver> {
        tracing::info!(target: "replisim::nemesis", fault = %strike.fault, "fault");
        self.applied += 1;
        let applied = match strike.fault.family() {
            Family::Node => node::apply(self, sim, strike),
            Family::Link => link::apply(self, sim, strike),
            Family::Process => process::apply(self, strike),
        };
        let id = strike.id;
        if applied.effective {
            self.ledger.effective(id);
        } else if let Some(watch) = applied.watch {
            self.watches.push((id, watch));
            trace::watch_links(true);
        }
        if let Some(effect) = applied.needs {
            self.ledger.needs(id, effect);
        }
        if let (Some(undo), Some(ms)) = (applied.undo, for_ms) {
            self.undo
                .push((strike.now + Duration::from_millis(ms), id, undo));
        }
        applied.fail_over.then_some(FailOver)
    }

    /// Whether every replica is crashed or lost with no restart to come
    /// from an undo: no undo pending of a fault for which `node_fault`
    /// holds (by fault number).
    pub fn all_down(&self, node_fault: impl Fn(usize) -> bool) -> bool {
        (0..self.replicas).all(|r| self.crashed.contains(&r) || self.lost.contains(&r))
            && !self.undo.iter().any(|(_, id, _)| node_fault(*id))
    }

    /// Undoes the faults whose time is up.
    pub fn undo_due(&mut self, sim: &mut turmoil::Sim, now: Duration) {
        if self.undo.iter().all(|(at, ..)| *at > now) {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.undo)
            .into_iter()
            .partition(|(at, ..)| *at <= now);
        self.undo = later;
        for (_, id, undo) in due {
            undo(self, sim, now);
            self.watches.retain(|(watched, _)| *watched != id);
        }
    }

    /// After a simulation step: credits the faults in force whose watch
    /// saw their effect in that step.
    pub fn observe(&mut self) {
        if self.watches.is_empty() {
            return;
        }
        let messages = trace::take_link_messages();
        let shown: Vec<usize> = self
            .watches
            .iter()
            .filter(|(_, watch)| watch(self, &messages))
            .map(|(id, _)| *id)
            .collect();
        for &id in &shown {
            self.ledger.effective(id);
        }
        self.watches.retain(|(id, _)| !shown.contains(id));
        if self.watches.is_empty() {
            trace::watch_links(false);
        }
    }

    /// End of the workload: every fault is undone and crashed replicas restart.
    pub fn heal_everything(&mut self, sim: &mut turmoil::Sim, now: Duration) {
        self.undo.clear();
        self.watches.clear();
        trace::watch_links(false);
        self.remove_links(sim, |_| true, now);
        for r in self.crashed.clone() {
            node::restart(self, sim, r, now);
        }
        for faults in &self.faults {
            faults.clear();
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
            if self.exited[r].replace(false)
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

    /// Whether replica `r` runs (neither crashed nor lost).
    fn is_running(&self, r: usize) -> bool {
        !self.crashed.contains(&r) && !self.lost.contains(&r)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts by kind: a fault that never fired is not counted; one that
    /// fired and was never effective while the effect it needs stayed at
    /// zero is not applicable too.
    #[test]
    fn the_ledger_counts_by_kind_and_tells_not_applicable_from_inert() {
        let node = crate::sim::Target::Replica(0);
        let faults: Vec<ScheduledFault> = [
            Fault::Crash { node: node.clone() },
            Fault::Crash { node: node.clone() },
            Fault::Duplicate { node: node.clone() },
            Fault::Heal,
        ]
        .into_iter()
        .map(|fault| ScheduledFault::at(0, fault))
        .collect();
        let ledger = Ledger::new(faults.len());
        for id in 0..3 {
            ledger.fired(id);
        }
        ledger.effective(0);
        ledger.needs(2, "messages_delivered");
        let counts = ledger.counts(&faults, &BTreeMap::new());
        let count = |fired, effective, not_applicable| FaultCount {
            fired,
            effective,
            not_applicable,
        };
        assert_eq!(counts["crash"], count(2, 1, 0));
        assert_eq!(counts["duplicate"], count(1, 0, 1));
        assert!(!counts.contains_key("heal"));
        let delivered = BTreeMap::from([("messages_delivered".to_string(), 3)]);
        let counts = ledger.counts(&faults, &delivered);
        assert_eq!(counts["duplicate"], count(1, 0, 0));
    }
}
