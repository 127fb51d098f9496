//! Cases one at a time, for every [`Search`] mode, and the adaptive one:
//! coverage-guided search.
//!
//! [`Cases`] is the stream a search loop pulls from: `next_case` gives the
//! next scenario, `ran` tells it what that scenario's run reached. For
//! `random` and `swarm` the stream ignores what runs reached (each case is
//! the space's strategy drawn from a runner seeded once); for `guided` it
//! is [`Guided`]:
//!
//! - what a run reached is a set of features ([`Reached::of`]): the pairs
//!   of consecutive trace events of each host ([`Outcome::trace_edges`]),
//!   with coarse hit counts (once, 2-3 times, more: the counts follow the
//!   workload's length, and AFL's finer buckets would call nearly every
//!   case new), the roles replicas took
//!   with their epochs (terms, views) and how often the roles changed
//!   hands, the moments the system declares worth striking at that the
//!   run reached and how many replicas emitted them
//!   ([`Outcome::moments_reached`]), the faults that fired and were
//!   effective by kind, the fault effects by kind and magnitude, the
//!   replicas' exits, replicas lost, and how soon the replicas agreed;
//! - a case that reached a feature no earlier case did joins the corpus;
//!   three mutations in four start from an entry that reached a new
//!   state (a role, epoch, fault effect...), not only new trace edges,
//!   which are many and mostly follow the workload;
//! - after a few fresh cases, every other case is a corpus entry
//!   (chosen by a tournament that favours entries mutated least often)
//!   with one to three mutations: a fault's time shifted, its target,
//!   trigger or duration changed, its kind redrawn, a fault added, removed,
//!   doubled on another replica at the same moment, or taken from another
//!   entry, a knob changed (seed, clients, operations, keys, think time),
//!   and, from what the entry's run showed, a replica struck (crashed,
//!   paused, isolated, lost, or every replica's power cut) at a moment it
//!   reached there (its last occurrence or any, at once or a few ms
//!   after), or the replicas some key was placed on
//!   ([`Outcome::placement`]) cut off from the rest; half the strikes
//!   cut every replica's power; an entry that reached a new state is
//!   first probed in a case of its own (a follow-up, before other
//!   mutations): every replica's power cut a few ms after a replica last
//!   reached a moment there, and off until the workload ends, so that no
//!   later write masks what the disks held then (a crash-consistency
//!   probe, as ALICE and CrashMonkey make at each persistence point);
//!   the others are drawn fresh, three in four as `random` draws and the
//!   rest as `swarm` does: guided search keeps most of random's reach and
//!   spends the other half of its cases near what was new.
//!
//! Every choice comes from generators seeded with the search's seed (a
//! proptest runner for what the space's strategies draw, ChaCha for the
//! rest), and what a run reached depends only on its scenario: the same
//! seed gives the same sequence of cases, as long as each case's result
//! is reported before the next case is asked for, in order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::{
    strategy::{BoxedStrategy, Strategy, ValueTree},
    test_runner::{Config, TestRunner},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use xxhash_rust::xxh3::Xxh3;

use crate::{
    sim::{Fault, MomentReached, Outcome, RunOptions, Scenario, ScheduledFault, Target, Trigger},
    strategy::{self, FaultKind, ScenarioSpace, Search},
};

/// Why no case could be drawn (a strategy that rejects every value).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot draw a scenario: {0}")]
pub struct DrawError(String);

/// The cases of one search, in order.
pub struct Cases {
    source: Source,
}

enum Source {
    /// Non-adaptive: the space's strategy, drawn again and again.
    Drawn {
        strategy: BoxedStrategy<Scenario>,
        runner: Box<TestRunner>,
    },
    Guided(Box<Guided>),
}

impl Cases {
    /// The cases of `space` (drawn as its [`ScenarioSpace::search`] says)
    /// from `seed`.
    pub fn new(space: &ScenarioSpace, seed: u64) -> Self {
        let source = match space.search {
            Search::Guided => Source::Guided(Box::new(Guided::new(space, seed))),
            Search::Random | Search::Swarm => Source::Drawn {
                strategy: space.strategy(),
                runner: Box::new(strategy::seeded_runner(Config::default(), seed)),
            },
        };
        Cases { source }
    }

    /// The next case.
    pub fn next_case(&mut self) -> Result<Scenario, DrawError> {
        match &mut self.source {
            Source::Drawn { strategy, runner } => draw(strategy, runner),
            Source::Guided(guided) => guided.next_case(),
        }
    }

    /// What the run of `scenario` (the last case given) reached; only
    /// guided search uses it. Returns how many features were new.
    pub fn ran(&mut self, scenario: &Scenario, reached: &Reached) -> usize {
        match &mut self.source {
            Source::Drawn { .. } => 0,
            Source::Guided(guided) => guided.ran(scenario, reached),
        }
    }

    /// How to run the cases: guided search reads each run's trace edges
    /// and the moments its replicas reached.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            coverage: matches!(self.source, Source::Guided(_)),
        }
    }

    /// The guided search's corpus size (0 for the other modes).
    pub fn corpus_len(&self) -> usize {
        match &self.source {
            Source::Drawn { .. } => 0,
            Source::Guided(guided) => guided.corpus.len(),
        }
    }
}

/// One value of `strategy`.
fn draw<T: std::fmt::Debug>(
    strategy: &BoxedStrategy<T>,
    runner: &mut TestRunner,
) -> Result<T, DrawError> {
    strategy
        .new_tree(runner)
        .map(|tree| tree.current())
        .map_err(|reason| DrawError(reason.to_string()))
}

/// What one run reached, as a set of hashed features (see the module
/// docs). Small and `Send`: a sweep computes it on the worker that ran
/// the case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    /// The trace's edges, with their coarse hit counts.
    edges: BTreeSet<u64>,
    /// Everything else: the protocol's states (roles, epochs), the declared
    /// moments reached, what the faults did, and the `buggify!` and
    /// `sometimes!` points reached.
    states: BTreeSet<u64>,
    /// Where mutations of this run's scenario may strike: the declared
    /// moments each replica reached, and the groups of replicas its keys
    /// were placed on.
    handles: Handles,
}

/// What a run showed of where to strike next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Handles {
    /// The declared moments each replica reached, with how often.
    moments: Vec<MomentReached>,
    /// The distinct groups of replicas some key was placed on, when fewer
    /// than all of them ([`Outcome::placement`]).
    groups: Vec<Vec<usize>>,
}

impl Handles {
    /// A moment reached, by a replica that reached it (a moment first,
    /// then one of its replicas, each uniformly): the trigger on that
    /// moment from that replica, the replica, and how often it reached it
    /// (at least 1). `moments` must not be empty.
    fn pick(&self, rng: &mut ChaCha8Rng) -> (Trigger, usize, u64) {
        let moments = self.by_moment();
        let (moment, emitters) = &moments[rng.random_range(0..moments.len())];
        let reached = emitters[rng.random_range(0..emitters.len())];
        let trigger = (*moment).clone().on(Target::Replica(reached.replica));
        (trigger, reached.replica, u64::from(reached.count.max(1)))
    }

    /// Each distinct moment reached (in the order they came), with the
    /// replicas that reached it and how often.
    fn by_moment(&self) -> Vec<(&Trigger, Vec<&MomentReached>)> {
        let mut moments: Vec<(&Trigger, Vec<&MomentReached>)> = Vec::new();
        for reached in &self.moments {
            match moments.iter_mut().find(|(m, _)| **m == reached.moment) {
                Some((_, emitters)) => emitters.push(reached),
                None => moments.push((&reached.moment, vec![reached])),
            }
        }
        moments
    }
}

impl Reached {
    /// The features of `outcome`.
    pub fn of(outcome: &Outcome) -> Self {
        let feature = |tag: &str, a: &[u8], b: u64| {
            let mut hasher = Xxh3::new();
            hasher.update(tag.as_bytes());
            hasher.update(a);
            hasher.update(&b.to_le_bytes());
            hasher.digest()
        };
        let edges = outcome
            .trace_edges
            .iter()
            .map(|(edge, hits)| feature("edge", &edge.to_le_bytes(), coarse(u64::from(*hits))))
            .collect();
        let mut states = BTreeSet::new();
        let mut add = |tag: &str, a: &[u8], b: u64| {
            states.insert(feature(tag, a, b));
        };
        let mut changes: BTreeMap<&str, (u64, BTreeSet<usize>)> = Default::default();
        for change in &outcome.role_changes {
            let epoch = change.epoch.map_or(u64::MAX, bucket);
            add("role", change.role.as_bytes(), epoch);
            let (count, holders) = changes.entry(&change.role).or_default();
            *count += 1;
            holders.insert(change.replica);
        }
        for (role, (count, holders)) in changes {
            add("role changes", role.as_bytes(), bucket(count));
            add("role holders", role.as_bytes(), holders.len() as u64);
        }
        let groups: BTreeSet<Vec<usize>> = outcome
            .placement
            .values()
            .filter(|group| !group.is_empty() && group.len() < outcome.scenario.replicas)
            .map(|group| group.iter().copied().collect())
            .collect();
        let handles = Handles {
            moments: outcome.moments_reached.clone(),
            groups: groups.into_iter().collect(),
        };
        for (moment, emitters) in handles.by_moment() {
            let moment = moment.to_string();
            let total = emitters.iter().map(|e| u64::from(e.count)).sum();
            add("moment", moment.as_bytes(), bucket(total));
            add("moment emitters", moment.as_bytes(), emitters.len() as u64);
        }
        for (kind, count) in &outcome.stats.faults {
            add("fired", kind.as_bytes(), bucket(count.fired));
            add("effective", kind.as_bytes(), bucket(count.effective));
        }
        for (kind, amount) in &outcome.stats.effects {
            add("effect", kind.as_bytes(), bucket(*amount));
        }
        for (point, count) in outcome.stats.buggify.iter().chain(&outcome.stats.sometimes) {
            add("point reached", point.as_bytes(), bucket(count.reached));
            add("point hit", point.as_bytes(), bucket(count.hits));
        }
        let exits = outcome.stats.exits;
        add("exits", b"expected", bucket(exits.expected));
        add("exits", b"unexpected", bucket(exits.unexpected));
        add("lost", b"", outcome.lost.len() as u64);
        let converged = outcome.stats.converged_after_ms.map_or(u64::MAX, bucket);
        add("converged", b"", converged);
        Reached {
            edges,
            states,
            handles,
        }
    }

    /// How many features.
    pub fn len(&self) -> usize {
        self.edges.len() + self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// AFL's hit-count buckets: 0, 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+.
fn bucket(n: u64) -> u64 {
    match n {
        0..=3 => n,
        4..=7 => 4,
        8..=15 => 5,
        16..=31 => 6,
        32..=127 => 7,
        _ => 8,
    }
}

/// Coarser buckets for the trace's edges: once, 2-3 times, more. Their
/// counts move with every change of the workload's length, and finer
/// buckets would call most cases new.
fn coarse(n: u64) -> u64 {
    bucket(n).min(4)
}

/// Fresh cases drawn before any is mutated, so the corpus starts varied.
const WARM_UP: u64 = 8;

/// The most entries the corpus keeps (the oldest go first).
const CORPUS_LIMIT: usize = 256;

/// The mutation that strikes a replica at a moment it reached.
const STRIKE: usize = 9;

/// The mutation that cuts a placed group of replicas off.
const CUT: usize = 10;

/// The mutation that cuts every replica's power at a moment reached, until
/// the workload ends (a follow-up's).
const PROBE: usize = 13;

/// The most entries waiting for their follow-up probe.
const FOLLOW_UPS_LIMIT: usize = 16;

/// A scenario that reached something new, how often it was mutated, and
/// whether what it reached first was a state (not only trace edges).
struct Entry {
    scenario: Scenario,
    picked: u32,
    new_state: bool,
    handles: Handles,
}

/// Coverage-guided search over a [`ScenarioSpace`] (see the module docs).
pub struct Guided {
    space: ScenarioSpace,
    fresh_random: BoxedStrategy<Scenario>,
    fresh_swarm: BoxedStrategy<Scenario>,
    /// Draws fresh scenarios and faults.
    runner: TestRunner,
    /// Chooses entries and mutations.
    rng: ChaCha8Rng,
    seen: BTreeSet<u64>,
    corpus: Vec<Entry>,
    /// Entries that just reached a new state, each probed at a moment it
    /// reached in a case of its own before other mutations (AFL's
    /// deterministic stage for a fresh entry, in one case).
    follow_ups: VecDeque<(Scenario, Handles)>,
    drawn: u64,
}

impl Guided {
    /// A search of `space` from `seed`, with an empty corpus.
    pub fn new(space: &ScenarioSpace, seed: u64) -> Self {
        Guided {
            fresh_random: space.clone().search(Search::Random).strategy(),
            fresh_swarm: space.clone().search(Search::Swarm).strategy(),
            space: space.clone(),
            runner: strategy::seeded_runner(Config::default(), seed),
            rng: ChaCha8Rng::seed_from_u64(seed),
            seen: BTreeSet::new(),
            corpus: Vec::new(),
            follow_ups: VecDeque::new(),
            drawn: 0,
        }
    }

    /// The next case: a mutated corpus entry, or a fresh draw.
    pub fn next_case(&mut self) -> Result<Scenario, DrawError> {
        self.drawn += 1;
        if let Some((mut scenario, handles)) = self.follow_ups.pop_front() {
            self.apply(PROBE, &mut scenario, &handles)?;
            return Ok(self.keep_survivors(scenario));
        }
        let fresh = self.corpus.is_empty() || self.drawn <= WARM_UP || self.rng.random_bool(0.5);
        if fresh {
            let strategy = match self.rng.random_ratio(3, 4) {
                true => &self.fresh_random,
                false => &self.fresh_swarm,
            };
            return draw(strategy, &mut self.runner);
        }
        let picked = self.pick();
        let entry = &self.corpus[picked];
        let (mut scenario, handles) = (entry.scenario.clone(), entry.handles.clone());
        let mutations = self.rng.random_range(1..=3);
        for _ in 0..mutations {
            self.mutate(&mut scenario, &handles)?;
        }
        Ok(self.keep_survivors(scenario))
    }

    /// `scenario` without the machine losses that would leave too few
    /// replicas.
    fn keep_survivors(&self, mut scenario: Scenario) -> Scenario {
        scenario.faults =
            strategy::keep_survivors(scenario.faults, scenario.replicas, self.space.needs_quorum);
        scenario
    }

    /// Adds `scenario` to the corpus if `reached` holds a feature no
    /// earlier case reached; how many were new.
    pub fn ran(&mut self, scenario: &Scenario, reached: &Reached) -> usize {
        let mut new = |features: &BTreeSet<u64>| {
            features
                .iter()
                .filter(|feature| self.seen.insert(**feature))
                .count()
        };
        let (states, edges) = (new(&reached.states), new(&reached.edges));
        if states + edges > 0 {
            if self.corpus.len() == CORPUS_LIMIT {
                // The oldest entry that reached only edges goes first.
                let oldest = self.corpus.iter().position(|e| !e.new_state).unwrap_or(0);
                self.corpus.remove(oldest);
            }
            if states > 0
                && !reached.handles.moments.is_empty()
                && self.follow_ups.len() < FOLLOW_UPS_LIMIT
            {
                self.follow_ups
                    .push_back((scenario.clone(), reached.handles.clone()));
            }
            self.corpus.push(Entry {
                scenario: scenario.clone(),
                picked: 0,
                new_state: states > 0,
                handles: reached.handles.clone(),
            });
        }
        states + edges
    }

    /// A corpus entry: three times in four among those that reached a new
    /// state (when there are some), else among all; of two drawn at
    /// random, the one mutated less often (the later on a tie: newer
    /// entries reached something more recently).
    fn pick(&mut self) -> usize {
        let states: Vec<usize> = (0..self.corpus.len())
            .filter(|&i| self.corpus[i].new_state)
            .collect();
        let pool: Vec<usize> = match !states.is_empty() && self.rng.random_ratio(3, 4) {
            true => states,
            false => (0..self.corpus.len()).collect(),
        };
        let a = pool[self.rng.random_range(0..pool.len())];
        let b = pool[self.rng.random_range(0..pool.len())];
        let (first, second) = (a.min(b), a.max(b));
        let chosen = match self.corpus[first].picked < self.corpus[second].picked {
            true => first,
            false => second,
        };
        self.corpus[chosen].picked += 1;
        chosen
    }

    /// One random mutation of `scenario`, derived from a corpus entry
    /// whose run showed `handles` (one that applies: a scenario without
    /// faults gets one added or struck at a moment its entry reached).
    fn mutate(&mut self, scenario: &mut Scenario, handles: &Handles) -> Result<(), DrawError> {
        // Striking at a reached moment and cutting a placed group off
        // count twice: they aim where the entry's run showed action.
        let choice = match scenario.faults.len() {
            0 => [0, STRIKE][self.rng.random_range(0..2)],
            _ => [0, 1, 2, 3, 4, 5, 6, 7, 8, STRIKE, STRIKE, CUT, CUT, 11, 12]
                [self.rng.random_range(0..15)],
        };
        self.apply(choice, scenario, handles)
    }

    /// Mutation `choice` of `scenario` (see [`Guided::mutate`]).
    fn apply(
        &mut self,
        choice: usize,
        scenario: &mut Scenario,
        handles: &Handles,
    ) -> Result<(), DrawError> {
        let (space, runner, rng) = (&self.space, &mut self.runner, &mut self.rng);
        let horizon = space.horizon_ms.max(1);
        let n = scenario.faults.len();
        let replicas = scenario.replicas;
        // Without what they need, they add or remove a fault instead.
        let can_cut = !handles.groups.is_empty() && space.kinds.contains(FaultKind::Partition);
        let choice = match choice {
            STRIKE | PROBE if handles.moments.is_empty() => 0,
            PROBE if !space.kinds.contains(FaultKind::PowerLoss) => STRIKE,
            CUT if !can_cut => 0,
            choice => choice,
        };
        let i = rng.random_range(0..n.max(1));
        match choice {
            // Add a fault, within the space's fault budget.
            0 if n < space.max_faults.max(1) => {
                scenario
                    .faults
                    .extend(fresh_fault(space, runner, replicas)?);
            }
            0 | 1 => {
                scenario.faults.remove(i);
            }
            2 => {
                let fault = &mut scenario.faults[i];
                let shift = rng.random_range(0..=horizon / 4 + 1);
                fault.at_ms = match rng.random_bool(0.5) {
                    true => fault.at_ms.saturating_sub(shift),
                    false => (fault.at_ms + shift).min(horizon - 1),
                };
            }
            3 => {
                let target = match (space.roles.is_empty(), rng.random_bool(0.5)) {
                    (false, true) => {
                        Target::role(&space.roles[rng.random_range(0..space.roles.len())])
                    }
                    _ => Target::Replica(rng.random_range(0..replicas)),
                };
                if let Some(node) = scenario.faults[i].fault.node_mut() {
                    *node = target;
                }
            }
            4 => {
                let trigger = draw(&strategy::trigger(space.cluster(replicas), 100), runner)?;
                let fault = &mut scenario.faults[i];
                fault.trigger = match fault.trigger.is_some() {
                    true => None,
                    false => trigger.map(|(trigger, emitter)| {
                        if let Some(id) = emitter {
                            strategy::retarget(&mut fault.fault, id);
                        }
                        trigger
                    }),
                };
            }
            5 => {
                let fault = &mut scenario.faults[i];
                if let Some(ms) = fault.for_ms {
                    fault.for_ms = Some(match rng.random_bool(0.5) {
                        true => (ms / 2).max(1),
                        false => (ms * 2).min(horizon),
                    });
                }
            }
            // The same fault on another replica at the same moment: "two
            // replicas die together".
            6 if n < space.max_faults.max(1) => {
                let mut twin = scenario.faults[i].clone();
                let other = rng.random_range(0..replicas);
                strategy::retarget(&mut twin.fault, other);
                scenario.faults.push(twin);
            }
            // Another kind (or the same kind redrawn), at the same time,
            // on the same trigger.
            6 | 7 => {
                if let Some(drawn) = fresh_fault(space, runner, replicas)? {
                    let old = &scenario.faults[i];
                    scenario.faults[i] = ScheduledFault {
                        at_ms: old.at_ms,
                        trigger: old.trigger.clone(),
                        ..drawn
                    };
                }
            }
            8 if self.corpus.len() > 1 => {
                let other = &self.corpus[rng.random_range(0..self.corpus.len())].scenario;
                let valid = other.faults.iter().filter(|f| {
                    f.fault.validate(scenario.replicas).is_ok()
                        && f.trigger
                            .as_ref()
                            .is_none_or(|t| t.validate(scenario.replicas).is_ok())
                });
                let spliced: Vec<_> = valid.cloned().collect();
                if !spliced.is_empty() && n < space.max_faults.max(1) {
                    let fault = spliced[rng.random_range(0..spliced.len())].clone();
                    scenario.faults.push(fault);
                }
            }
            // Every replica's power cut a little after the last time a
            // replica reached a moment in the entry's run (time for what
            // the moment allowed to be acknowledged), and off until the
            // workload ends, so no later write masks what the disks held
            // then: a crash-consistency probe, as ALICE and CrashMonkey
            // make at each persistence point.
            PROBE => {
                let (trigger, _, last) = handles.pick(rng);
                let delay = draw(&strategy::trigger_delay_after(), runner)?;
                let fault =
                    ScheduledFault::at(0, Fault::PowerLoss).when(trigger.nth(last).delayed(delay));
                add_or_replace(scenario, fault, i, space.max_faults);
            }
            // A replica struck at a moment it reached in the entry's run
            // ("the fallback that just took a hint crashes"): the moment's
            // last occurrence there (what the run ends with), or any, at
            // once or a little after; half the time every replica's power
            // is cut instead, for a while.
            STRIKE => {
                let (trigger, replica, count) = handles.pick(rng);
                if let Some(strike) =
                    strategy::strike(&space.kinds, space.cluster(replicas), horizon)
                {
                    let mut fault = draw(&strike, runner)?;
                    strategy::retarget(&mut fault.fault, replica);
                    if space.kinds.contains(FaultKind::PowerLoss) && rng.random_bool(0.5) {
                        fault.fault = Fault::PowerLoss;
                    }
                    let nth = match rng.random_bool(0.5) {
                        true => count,
                        false => rng.random_range(1..=count),
                    };
                    let delay = draw(&strategy::trigger_delay(), runner)?;
                    fault.trigger = Some(trigger.nth(nth).delayed(delay));
                    add_or_replace(scenario, fault, i, space.max_faults);
                }
            }
            // The replicas some key was placed on cut off from the rest
            // (its owners away from the nodes that stand in for them), for
            // a while or until the workload ends.
            CUT => {
                let group = handles.groups[rng.random_range(0..handles.groups.len())].clone();
                let at_ms = rng.random_range(0..horizon);
                let mut fault = ScheduledFault::at(
                    at_ms,
                    Fault::Partition {
                        groups: vec![group],
                    },
                );
                if rng.random_bool(0.5) {
                    fault = fault.lasting(rng.random_range(1..=horizon));
                }
                add_or_replace(scenario, fault, i, space.max_faults);
            }
            _ => mutate_knob(space, rng, scenario),
        }
        Ok(())
    }
}

/// Adds `fault` to `scenario` within `max_faults`, or puts it in the place
/// of fault `i` when there is no room.
fn add_or_replace(scenario: &mut Scenario, fault: ScheduledFault, i: usize, max_faults: usize) {
    match scenario.faults.len() < max_faults.max(1) {
        true => scenario.faults.push(fault),
        false => scenario.faults[i] = fault,
    }
}

/// Changes one knob of `scenario` within `space`: the seed (the network's
/// timing), the clients, the operations per client, the keys, or the
/// think time.
fn mutate_knob(space: &ScenarioSpace, rng: &mut ChaCha8Rng, scenario: &mut Scenario) {
    match rng.random_range(0..5) {
        0 => scenario.seed = rng.random(),
        1 => scenario.clients = rng.random_range(space.clients.clone()),
        2 => scenario.workload.ops_per_client = rng.random_range(space.ops_per_client.clone()),
        3 => scenario.workload.keys = rng.random_range(space.keys.clone()),
        _ => {
            let think_ms = [0u64, 1, 5, 20][rng.random_range(0..4)];
            scenario.workload.think_time = std::time::Duration::from_millis(think_ms);
        }
    }
}

/// A fresh fault of `space`'s kinds in a cluster of `replicas`; `None`
/// when the space has no scheduled kinds.
fn fresh_fault(
    space: &ScenarioSpace,
    runner: &mut TestRunner,
    replicas: usize,
) -> Result<Option<ScheduledFault>, DrawError> {
    let strategy = strategy::fault(&space.kinds, space.cluster(replicas), space.horizon_ms);
    let fault = draw(&strategy, runner)?;
    Ok((fault.fault != Fault::Heal).then_some(fault))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sim::Trigger, strategy::FaultKinds};

    fn space() -> ScenarioSpace {
        ScenarioSpace {
            roles: vec!["primary".into()],
            events: vec![Trigger::message("granted vote")],
            ..ScenarioSpace::new("sync", FaultKinds::everything().simultaneous(2))
        }
        .search(Search::Guided)
    }

    /// What a run "reached", made up from its scenario: its fault kinds
    /// and their count, so that new combinations are new coverage.
    fn reached(scenario: &Scenario) -> Reached {
        let features: BTreeSet<u64> = scenario
            .faults
            .iter()
            .map(|f| xxhash_rust::xxh3::xxh3_64(f.fault.kind_name().as_bytes()))
            .collect();
        let edges = BTreeSet::from([scenario.faults.len() as u64]);
        Reached {
            edges,
            states: features,
            handles: Handles::default(),
        }
    }

    fn run(seed: u64, cases: usize) -> (Vec<Scenario>, usize) {
        let mut guided = Cases::new(&space(), seed);
        let scenarios = (0..cases)
            .map(|_| {
                let scenario = guided.next_case().unwrap();
                guided.ran(&scenario, &reached(&scenario));
                scenario
            })
            .collect();
        (scenarios, guided.corpus_len())
    }

    #[test]
    fn the_same_seed_and_results_give_the_same_cases() {
        let (a, corpus) = run(7, 120);
        assert_eq!(a, run(7, 120).0);
        assert_ne!(a, run(8, 120).0);
        assert!(corpus > 1, "nothing new reached: corpus of {corpus}");
    }

    #[test]
    fn mutated_cases_are_valid_and_keep_to_the_space() {
        let space = space();
        let (scenarios, _) = run(3, 300);
        for scenario in &scenarios {
            assert!(scenario.validate().is_ok(), "{:?}", scenario.validate());
            assert!(
                scenario.faults.len() <= space.max_faults,
                "{:?}",
                scenario.faults
            );
            assert!(scenario.faults.iter().all(|f| f.at_ms < space.horizon_ms));
            assert!(
                space
                    .ops_per_client
                    .contains(&scenario.workload.ops_per_client)
            );
        }
    }

    /// After the warm-up most cases are mutations of corpus entries: they
    /// keep an earlier case's seed or faults.
    #[test]
    fn most_cases_after_the_warm_up_derive_from_earlier_ones() {
        let (scenarios, _) = run(5, 200);
        let derived = scenarios
            .iter()
            .enumerate()
            .skip(WARM_UP as usize)
            .filter(|(i, s)| {
                scenarios[..*i].iter().any(|earlier| {
                    earlier.seed == s.seed
                        || (!s.faults.is_empty() && earlier.faults[..] == s.faults[..])
                })
            })
            .count();
        assert!(
            derived * 2 > scenarios.len() - WARM_UP as usize,
            "{derived} derived"
        );
    }

    /// An entry whose run showed replica 1 reach the space's moment 5
    /// times and a key placed on replicas 0 and 1 gets a follow-up that
    /// cuts every replica's power a little after replica 1 reached that
    /// moment the fifth time, until the workload ends, then more cases
    /// that strike replica 1 there and cases that cut 0 and 1 off.
    #[test]
    fn mutations_strike_at_reached_moments_and_cut_placed_groups() {
        let space = space();
        let mut guided = Guided::new(&space, 11);
        let mut entry = Scenario::new("sync", 1);
        entry.replicas = 3;
        let reached = Reached {
            edges: BTreeSet::new(),
            states: BTreeSet::from([1]),
            handles: Handles {
                moments: vec![MomentReached {
                    moment: space.events[0].clone(),
                    replica: 1,
                    count: 5,
                }],
                groups: vec![vec![0, 1]],
            },
        };
        guided.ran(&entry, &reached);
        // The entry reached a new state: the next case is its follow-up,
        // the entry probed at the moment's last occurrence, and nothing
        // else changed.
        let follow_up = guided.next_case().unwrap();
        assert_eq!(follow_up.seed, entry.seed);
        assert_eq!(follow_up.faults.len(), 1, "{:?}", follow_up.faults);
        let probe = &follow_up.faults[0];
        assert_eq!((&probe.fault, probe.for_ms), (&Fault::PowerLoss, None));
        let trigger = probe.trigger.as_ref().unwrap();
        assert_eq!(trigger.host, Some(Target::Replica(1)));
        assert_eq!(trigger.message, space.events[0].message);
        assert_eq!(trigger.nth, 5);
        assert!(trigger.delay_ms > 0, "{trigger:?}");
        let (mut struck, mut cut) = (0, 0);
        for _ in 0..400 {
            let case = guided.next_case().unwrap();
            for fault in &case.faults {
                let moment = fault.trigger.as_ref().filter(|t| {
                    t.message == space.events[0].message && t.host == Some(Target::Replica(1))
                });
                if let Some(trigger) = moment {
                    assert!((1..=5).contains(&trigger.nth.max(1)), "{trigger:?}");
                    struck += 1;
                }
                if fault.fault
                    == (Fault::Partition {
                        groups: vec![vec![0, 1]],
                    })
                {
                    cut += 1;
                }
            }
        }
        assert!(struck > 0 && cut > 0, "struck {struck}, cut {cut}");
    }

    /// A run asked for coverage counts the declared moments each replica
    /// reached, and `Reached` keeps them and the groups keys were placed
    /// on; a run not asked counts none.
    #[test]
    fn runs_count_the_moments_replicas_reached() {
        let registry = crate::replication::registry();
        let mut scenario = Scenario::new("dynamo:3/2/2", 7);
        scenario.replicas = 5;
        scenario.clients = 2;
        scenario.workload.ops_per_client = 6;
        scenario.workload.keys = 1;
        scenario.workload.mix = crate::workload::Mix::new([("read", 1), ("write", 1)]);
        // k0's preference list is replicas 3, 4 and 0: cut off, its writes
        // go to fallbacks 1 and 2 as hints.
        scenario.faults = vec![ScheduledFault::at(
            20,
            Fault::Partition {
                groups: vec![vec![0, 3, 4]],
            },
        )];
        let options = RunOptions { coverage: true };
        let outcome = registry.run_with(&scenario, options).unwrap();
        let stored_a_hint = Trigger::message("stored a hint").with_target("replisim::dynamo");
        let hinted: BTreeSet<usize> = outcome
            .moments_reached
            .iter()
            .filter(|reached| reached.moment == stored_a_hint)
            .map(|reached| reached.replica)
            .collect();
        assert_eq!(
            hinted,
            BTreeSet::from([1, 2]),
            "{:?}",
            outcome.moments_reached
        );
        let reached = Reached::of(&outcome);
        assert!(reached.handles.groups.contains(&vec![0, 3, 4]));
        assert!(
            reached
                .handles
                .moments
                .iter()
                .any(|r| r.moment == stored_a_hint && r.replica == 1 && r.count > 0)
        );
        let plain = registry.run(&scenario).unwrap();
        assert!(plain.moments_reached.is_empty());
    }

    #[test]
    fn hit_counts_fall_in_afl_buckets() {
        let buckets: Vec<u64> = [0, 1, 3, 4, 7, 8, 16, 100, 1000].map(bucket).to_vec();
        assert_eq!(buckets, [0, 1, 3, 4, 4, 5, 6, 7, 8]);
    }
}
