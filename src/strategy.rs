//! proptest strategies for [`Fault`]s, fault schedules and whole
//! [`Scenario`]s, with a [`FaultKinds`] knob saying which faults to draw.
//!
//! Everything is built from proptest combinators, so shrinking is
//! structural: a schedule shrinks toward fewer faults, each fault toward a
//! shorter duration, an earlier time, lower replica ids and fewer replicas
//! affected, and a scenario toward fewer clients, fewer operations, fewer
//! keys and plainer operations (reads and writes only). Seeds never shrink:
//! a smaller seed is not a simpler run.
//!
//! Faults are drawn within a horizon (ms): the workload phase ends when the
//! clients finish, and faults scheduled after that never fire. Replica ids
//! are always below the cluster size (turmoil panics on links to hosts that
//! do not exist).
//!
//! A space respects what its system declares ([`ScenarioSpace::declared_by`]):
//! cluster sizes, the roles faults may target, the workload's operation
//! kinds, whether a majority must survive, and the trace events worth
//! striking at: a share of the faults ([`FaultKinds::triggered`], one in
//! five by default) waits for one of those events instead of a time,
//! struck at the replica that emitted it or elsewhere, at once or a few ms
//! later (a window that opens with the event is hit inside, not only at its
//! edge).
//!
//! Cases are drawn by a [`Search`] mode: `random` draws every case from the
//! whole space; `swarm` first draws a narrower configuration per case
//! (a subset of the kinds, how many faults, how long, how many triggered,
//! the think time). Both are non-adaptive and every swarm case is a plain
//! [`Scenario`], so replay, shrinking and sweep shards work the same.
//!
//! ```
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//! use replisim::strategy::{FaultKinds, ScenarioSpace};
//!
//! let space = ScenarioSpace::new("my-store", FaultKinds::crashes().simultaneous(3)).replicas(3);
//! let scenario = space.strategy().new_tree(&mut TestRunner::deterministic()).unwrap().current();
//! assert_eq!(scenario.replicas, 3);
//! assert!(scenario.validate().is_ok());
//! ```

use std::{collections::BTreeSet, ops::RangeInclusive};

use proptest::{
    collection::vec,
    option,
    prelude::*,
    sample::{select, subsequence},
    strategy::{BoxedStrategy, Union},
};
use serde::{Deserialize, Serialize};

use crate::{
    node::{Churning, System},
    registry::{Registry, SystemError},
    sim::{Buggify, DiskSpec, Fault, Scenario, ScheduledFault, Target, Trigger},
    workload::{KeyValue, Mix, Workload},
};

/// How cases are drawn from a [`ScenarioSpace`]. `random` and `swarm` are
/// non-adaptive: every case is a function of the runner's seed and its
/// index, so the shards of a sweep add up. `guided` is adaptive: each case
/// depends on what the earlier ones reached (still a function of the seed,
/// but only in order), so it does not shard.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Search {
    /// Every case draws its faults from every allowed kind, with the
    /// space's knobs as they are.
    #[default]
    Random,
    /// Swarm testing (Groce et al., 2012; TigerBeetle's simulator): each
    /// case first draws a configuration (a non-empty subset of the allowed
    /// kinds, at most how many faults, how many at once, how long they
    /// last, how many wait for a declared event, the clients' think time),
    /// then a random case within it. Leaving kinds out makes the others
    /// dense: a case of only crashes triggered on votes is drawn often.
    Swarm,
    /// Coverage-guided search ([`crate::guided`]): keeps a corpus of the
    /// cases that reached something no earlier case did (pairs of trace
    /// events, roles and epochs, fault effects) and derives most new
    /// cases by mutating them (a fault's time, target, trigger or
    /// duration, a fault added, removed or doubled, the knobs), the rest
    /// drawn fresh (as `random` and `swarm` draw them). A strategy cannot
    /// learn from runs: [`ScenarioSpace::strategy`] draws guided cases as
    /// `random` does, and the adaptive loop is
    /// [`crate::guided::Cases`], which the explorer and the sweep run.
    Guided,
}

impl Search {
    /// The modes' names, as [`Search::from_str`](std::str::FromStr) knows them.
    pub const NAMES: [&str; 3] = ["random", "swarm", "guided"];

    /// Every mode, in the order of [`Search::NAMES`].
    pub const ALL: [Search; 3] = [Search::Random, Search::Swarm, Search::Guided];

    /// Whether each case depends on the results of earlier ones (so a
    /// sweep cannot be cut into shards that add up).
    pub fn is_adaptive(self) -> bool {
        self == Search::Guided
    }
}

/// A search mode's name that is not one of [`Search::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown search mode {0:?}: expected random, swarm or guided")]
pub struct UnknownSearch(pub String);

impl std::str::FromStr for Search {
    type Err = UnknownSearch;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "random" => Ok(Search::Random),
            "swarm" => Ok(Search::Swarm),
            "guided" => Ok(Search::Guided),
            _ => Err(UnknownSearch(name.to_string())),
        }
    }
}

impl std::fmt::Display for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Search::Random => "random",
            Search::Swarm => "swarm",
            Search::Guided => "guided",
        })
    }
}

/// One kind of fault a strategy may draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A replica crashes (unsynced writes lost) and restarts after a while.
    Crash,
    /// A replica's machine is lost for good, disk included.
    Lose,
    /// Every replica crashes at the same moment (a power loss) and they
    /// restart together after a while.
    PowerLoss,
    /// A replica stops talking to everyone for a while.
    Pause,
    /// A majority/minority split of the replicas.
    Partition,
    /// One replica cut off from the others.
    Isolate,
    /// Two halves joined only through one replica.
    Bridge,
    /// Messages in one direction dropped.
    OneWay,
    /// Slow links.
    Slow,
    /// Messages held back, then delivered in a flood.
    Hold,
    /// Links that lose a share of their messages.
    Lossy,
    /// A replica's transport re-sends requests after reconnecting.
    Duplicate,
    /// A replica's clock off and drifting.
    ClockSkew,
    /// Unsynced writes tear at 512-byte blocks on a crash ([`DiskSpec`]).
    TornWrites,
    /// Disk reads and writes fail now and then ([`DiskSpec`]).
    IoErrors,
    /// Disk reads return corrupted bytes now and then ([`DiskSpec`]).
    Corruption,
}

impl FaultKind {
    /// Every kind, simplest first (shrinking prefers earlier kinds).
    pub const ALL: [FaultKind; 16] = [
        FaultKind::Crash,
        FaultKind::Lose,
        FaultKind::PowerLoss,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Bridge,
        FaultKind::OneWay,
        FaultKind::Slow,
        FaultKind::Hold,
        FaultKind::Lossy,
        FaultKind::Duplicate,
        FaultKind::ClockSkew,
        FaultKind::TornWrites,
        FaultKind::IoErrors,
        FaultKind::Corruption,
    ];

    /// Disk classes are properties of the whole run ([`Scenario::disk`]),
    /// not scheduled faults.
    pub fn is_disk(self) -> bool {
        matches!(
            self,
            FaultKind::TornWrites | FaultKind::IoErrors | FaultKind::Corruption
        )
    }
}

/// Which faults to draw, how many may strike at the same moment, how long
/// they may last, and how many wait for a declared event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultKinds {
    kinds: BTreeSet<FaultKind>,
    simultaneous: usize,
    /// Longest duration of a fault (ms); the horizon when `None`.
    longest_ms: Option<u64>,
    /// Percent of faults triggered by an event the system declares.
    triggered: u8,
    /// Percent of cases that also draw a churn, when the system declares a
    /// churning moment (half by default: the other half keeps the plain
    /// random schedules).
    churn: u8,
}

impl FaultKinds {
    /// The given kinds, one fault at a time, one in five triggered by a
    /// declared event (when the system declares some).
    pub fn only(kinds: &[FaultKind]) -> Self {
        FaultKinds {
            kinds: kinds.iter().copied().collect(),
            simultaneous: 1,
            longest_ms: None,
            triggered: 20,
            churn: 50,
        }
    }

    /// No faults at all.
    pub fn none() -> Self {
        FaultKinds::only(&[])
    }

    /// Partitions of every shape: majority/minority, isolation, bridge, one-way.
    pub fn partitions() -> Self {
        use FaultKind::*;
        FaultKinds::only(&[Partition, Isolate, Bridge, OneWay])
    }

    /// Crashes followed by restarts on the same disk: one replica's, or
    /// every replica's at once (a power loss).
    pub fn crashes() -> Self {
        FaultKinds::only(&[FaultKind::Crash, FaultKind::PowerLoss])
    }

    /// Crashes and power losses, machines lost with their disks, and torn
    /// unsynced writes.
    pub fn crashes_with_disk_loss() -> Self {
        use FaultKind::*;
        FaultKinds::only(&[Crash, PowerLoss, Lose, TornWrites])
    }

    /// Everything the network can do: partitions, slow, held, lossy links,
    /// duplicated requests, paused replicas.
    pub fn network() -> Self {
        use FaultKind::*;
        FaultKinds::partitions().with_all(&[Pause, Slow, Hold, Lossy, Duplicate])
    }

    /// Every kind.
    pub fn everything() -> Self {
        FaultKinds::only(&FaultKind::ALL)
    }

    /// The names of the presets, as [`FaultKinds::preset`] knows them.
    pub const PRESETS: [&str; 6] = [
        "everything",
        "crashes",
        "crashes-with-disk-loss",
        "partitions",
        "network",
        "none",
    ];

    /// A preset by name (see [`FaultKinds::PRESETS`]).
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "everything" => FaultKinds::everything(),
            "crashes" => FaultKinds::crashes(),
            "crashes-with-disk-loss" => FaultKinds::crashes_with_disk_loss(),
            "partitions" => FaultKinds::partitions(),
            "network" => FaultKinds::network(),
            "none" => FaultKinds::none(),
            _ => return None,
        })
    }

    /// These kinds plus `kind`.
    pub fn with(mut self, kind: FaultKind) -> Self {
        self.kinds.insert(kind);
        self
    }

    /// These kinds plus `kinds`.
    pub fn with_all(self, kinds: &[FaultKind]) -> Self {
        kinds.iter().fold(self, |k, &kind| k.with(kind))
    }

    /// These kinds without `kind`.
    pub fn without(mut self, kind: FaultKind) -> Self {
        self.kinds.remove(&kind);
        self
    }

    /// Up to `n` faults strike at the same simulated moment ("both backups
    /// crash and the primary is lost"); at least 1.
    pub fn simultaneous(mut self, n: usize) -> Self {
        self.simultaneous = n.max(1);
        self
    }

    /// Faults last at most `ms` (at least 1).
    pub fn lasting_at_most(mut self, ms: u64) -> Self {
        self.longest_ms = Some(ms.max(1));
        self
    }

    /// `percent` of the faults (at most 100) wait for one of the events
    /// the system declares ([`crate::node::Declaration::events`]) instead
    /// of a time: "crash the replica that just granted a vote".
    pub fn triggered(mut self, percent: u8) -> Self {
        self.triggered = percent.min(100);
        self
    }

    /// `percent` of the cases (at most 100) also strike the holder of a
    /// role at the first few occurrences of a moment the system declares
    /// churning ([`crate::node::Moment::churning`]): "crash the leader each
    /// time one is elected, three times".
    pub fn churn(mut self, percent: u8) -> Self {
        self.churn = percent.min(100);
        self
    }

    pub fn contains(&self, kind: FaultKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The kinds a churn strikes a role's holder with: those that end by
    /// themselves (a crash restarts, an isolation or pause heals).
    fn churning(&self) -> Vec<FaultKind> {
        [FaultKind::Crash, FaultKind::Pause, FaultKind::Isolate]
            .into_iter()
            .filter(|&k| self.contains(k))
            .collect()
    }

    /// The kinds that are scheduled faults (not disk classes), simplest first.
    fn scheduled(&self) -> Vec<FaultKind> {
        self.kinds
            .iter()
            .copied()
            .filter(|k| !k.is_disk())
            .collect()
    }
}

/// A replica: the holder of one of `roles` (the first is the simplest) or
/// an id below `replicas`.
fn target(replicas: usize, roles: &[String]) -> BoxedStrategy<Target> {
    let by_role = roles.iter().map(|role| Just(Target::role(role)).boxed());
    let by_id = std::iter::once((0..replicas).prop_map(Target::Replica).boxed());
    Union::new(by_role.chain(by_id)).boxed()
}

/// A non-empty proper subset of the replicas and the rest, shrinking toward
/// one replica on the first side. With one replica both sides are it.
fn split(replicas: usize) -> BoxedStrategy<(Vec<usize>, Vec<usize>)> {
    if replicas < 2 {
        return Just((vec![0], vec![0])).boxed();
    }
    subsequence((0..replicas).collect::<Vec<_>>(), 1..replicas)
        .prop_map(move |side| {
            let rest = (0..replicas).filter(|r| !side.contains(r)).collect();
            (side, rest)
        })
        .boxed()
}

/// Where faults may strike: how many replicas, which roles they publish,
/// and which trace events they declare worth striking at.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    pub replicas: usize,
    pub roles: &'a [String],
    pub events: &'a [Trigger],
}

/// Delays (ms) a triggered fault may wait after its event, when it does
/// not fire at once: one per scale, from the next tick to a few round
/// trips, so a window that opens with the event is hit inside.
const TRIGGER_DELAYS_MS: [u64; 6] = [1, 2, 4, 8, 16, 32];

/// With probability `percent`, one of `cluster`'s events, emitted by any
/// replica or by one, its fault fired at once or after one of
/// [`TRIGGER_DELAYS_MS`] (half of them at once; shrinks toward no trigger,
/// then any replica, then no delay).
pub(crate) fn trigger(
    cluster: Cluster,
    percent: u8,
) -> BoxedStrategy<Option<(Trigger, Option<usize>)>> {
    if cluster.events.is_empty() || percent == 0 || cluster.replicas == 0 {
        return Just(None).boxed();
    }
    let event = (
        select(cluster.events.to_vec()),
        option::of(0..cluster.replicas),
        trigger_delay(),
    )
        .prop_map(|(trigger, emitter, delay)| (trigger.delayed(delay), emitter));
    match percent {
        100.. => event.prop_map(Some).boxed(),
        _ => option::weighted(f64::from(percent) / 100.0, event).boxed(),
    }
}

/// A fault of `kind` in `cluster`. Disk classes have no scheduled fault;
/// they give `Heal` (which does nothing on its own).
fn fault_of(kind: FaultKind, cluster: Cluster) -> BoxedStrategy<Fault> {
    let r = cluster.replicas;
    let target = || target(r, cluster.roles);
    match kind {
        FaultKind::Crash => target().prop_map(|node| Fault::Crash { node }).boxed(),
        FaultKind::Lose => target().prop_map(|node| Fault::Lose { node }).boxed(),
        FaultKind::PowerLoss => Just(Fault::PowerLoss).boxed(),
        FaultKind::Pause => target().prop_map(|node| Fault::Pause { node }).boxed(),
        FaultKind::Isolate => target().prop_map(|node| Fault::Isolate { node }).boxed(),
        FaultKind::Duplicate => target().prop_map(|node| Fault::Duplicate { node }).boxed(),
        FaultKind::ClockSkew => (target(), -2_000i64..=2_000, -100_000i64..=100_000)
            .prop_map(|(node, offset_ms, drift_ppm)| Fault::ClockSkew {
                node,
                offset_ms,
                drift_ppm,
            })
            .boxed(),
        // The minority side is listed; the rest form the majority.
        FaultKind::Partition => split(r)
            .prop_map(|(minority, _)| Fault::Partition {
                groups: vec![minority],
            })
            .boxed(),
        FaultKind::Bridge => (0..r, split(r))
            .prop_map(move |(bridge, (left, right))| {
                let without =
                    |side: Vec<usize>| side.into_iter().filter(|&x| x != bridge).collect();
                Fault::Bridge {
                    left: without(left),
                    right: without(right),
                    bridge,
                }
            })
            .boxed(),
        FaultKind::OneWay => split(r)
            .prop_map(|(from, to)| Fault::OneWay { from, to })
            .boxed(),
        FaultKind::Slow => (split(r), 10u64..=300)
            .prop_map(|((between, and), latency_ms)| Fault::Slow {
                between,
                and,
                latency_ms,
            })
            .boxed(),
        FaultKind::Hold => split(r)
            .prop_map(|(between, and)| Fault::Hold { between, and })
            .boxed(),
        FaultKind::Lossy => (split(r), 1u8..=50)
            .prop_map(|((between, and), percent)| Fault::Lossy {
                between,
                and,
                percent,
            })
            .boxed(),
        FaultKind::TornWrites | FaultKind::IoErrors | FaultKind::Corruption => {
            Just(Fault::Heal).boxed()
        }
    }
}

/// One fault of the scheduled `kinds` in `cluster`, firing within
/// `horizon_ms` and (unless it is permanent) undone after at most
/// `horizon_ms`. With no scheduled kind, a `Heal` (a fault that does nothing).
pub fn fault(
    kinds: &FaultKinds,
    cluster: Cluster,
    horizon_ms: u64,
) -> BoxedStrategy<ScheduledFault> {
    (
        0..horizon_ms.max(1),
        timed_fault(kinds, cluster, horizon_ms),
    )
        .prop_map(|(at_ms, mut fault)| {
            fault.at_ms = at_ms;
            fault
        })
        .boxed()
}

/// A fault at time 0 with its duration, and maybe its trigger; the caller
/// sets the time (with a trigger, when it is armed). A fault triggered by
/// an event one replica emits strikes that replica when it is a node fault
/// ("crash the replica that just granted a vote").
fn timed_fault(
    kinds: &FaultKinds,
    cluster: Cluster,
    horizon_ms: u64,
) -> BoxedStrategy<ScheduledFault> {
    let scheduled = kinds.scheduled();
    if scheduled.is_empty() {
        return Just(ScheduledFault::at(0, Fault::Heal)).boxed();
    }
    let faults = Union::new(scheduled.into_iter().map(|k| fault_of(k, cluster)));
    let longest = kinds
        .longest_ms
        .unwrap_or(horizon_ms)
        .min(horizon_ms)
        .max(1);
    (faults, 1..=longest, trigger(cluster, kinds.triggered))
        .prop_map(|(mut fault, for_ms, trigger)| {
            let permanent = matches!(fault, Fault::Lose { .. });
            let trigger = trigger.map(|(mut trigger, emitter)| {
                if let Some(id) = emitter {
                    trigger.host = Some(Target::Replica(id));
                    retarget(&mut fault, id);
                }
                trigger
            });
            let mut scheduled = ScheduledFault::at(0, fault);
            scheduled.trigger = trigger;
            if permanent {
                scheduled
            } else {
                scheduled.lasting(for_ms)
            }
        })
        .boxed()
}

/// Up to `max_faults` faults of `kinds` in `cluster` within `horizon_ms`.
/// Shrinks toward fewer faults (down to none).
///
/// With [`FaultKinds::simultaneous`]`(n)` faults come in bursts: up to `n`
/// distinct replicas struck at the same moment (a burst of node faults
/// names replicas by id; link faults keep their own sets). A burst shrinks
/// toward fewer replicas.
pub fn schedule(
    kinds: &FaultKinds,
    cluster: Cluster,
    horizon_ms: u64,
    max_faults: usize,
) -> BoxedStrategy<Vec<ScheduledFault>> {
    let replicas = cluster.replicas;
    if kinds.scheduled().is_empty() || max_faults == 0 || replicas == 0 {
        return Just(Vec::new()).boxed();
    }
    let n = kinds.simultaneous.min(replicas);
    let burst = (
        0..horizon_ms.max(1),
        vec(timed_fault(kinds, cluster, horizon_ms), n),
        subsequence((0..replicas).collect::<Vec<_>>(), 1..=n),
    )
        .prop_map(move |(at_ms, faults, nodes)| {
            faults
                .into_iter()
                .zip(nodes)
                .map(|(mut f, node)| {
                    f.at_ms = at_ms;
                    if n > 1 {
                        retarget(&mut f.fault, node);
                    }
                    f
                })
                .collect::<Vec<_>>()
        });
    vec(burst, 0..=max_faults)
        .prop_map(move |bursts| bursts.into_iter().flatten().take(max_faults).collect())
        .boxed()
}

/// A moment worth striking a replica at, time after time: its trigger and
/// whom to strike ([`crate::node::Moment::churning`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Churn {
    pub trigger: Trigger,
    pub strike: Churning,
}

/// Strikes of one churn: the Raft paper's figure 8 takes three leaders
/// struck in turn, and drawing one to three strikes found it a third as
/// often (1.3 against 4.4 cases in 1000).
const CHURN_STRIKES: usize = 3;

/// With [`FaultKinds::churn`]'s probability, a churn: one of `churns`, and
/// three (`CHURN_STRIKES`) faults of one kind on its role's holder (or on one replica,
/// at its own occurrences, for a moment that strikes its emitter), the
/// j-th fired at the j-th occurrence of its moment after they are armed,
/// at once or after one of `TRIGGER_DELAYS_MS` (1 to 32 ms), each undone after a
/// while (all brief, or all long: up to twice the horizon, or
/// [`FaultKinds::lasting_at_most`]): Jepsen's kill-leader nemesis, and the Raft paper's figure 8
/// (three leaders in turn, each struck soon after its election) within
/// reach. Shrinks toward no churn (replisim's structural shrinker,
/// [`crate::shrink`], drops single strikes).
pub fn churn(
    kinds: &FaultKinds,
    cluster: Cluster,
    churns: &[Churn],
    horizon_ms: u64,
) -> BoxedStrategy<Vec<ScheduledFault>> {
    let node_kinds = kinds.churning();
    if churns.is_empty() || node_kinds.is_empty() || kinds.churn == 0 || cluster.replicas == 0 {
        return Just(Vec::new()).boxed();
    }
    let longest = kinds
        .longest_ms
        .unwrap_or(2 * horizon_ms)
        .clamp(1, 2 * horizon_ms.max(1));
    // One scale per churn: brief strikes, or ones that outlast an election
    // or two (a leader cut off while the next is elected and struck).
    let scale = select(vec![(1, (longest / 8).max(1)), (longest / 2, longest)])
        .prop_flat_map(|(low, high)| vec((trigger_delay(), low..=high), CHURN_STRIKES));
    let drawn = (
        0..horizon_ms.max(2) / 2,
        select(churns.to_vec()),
        0..cluster.replicas,
        Union::new(node_kinds.into_iter().map(|k| fault_of(k, cluster))),
        scale,
    )
        .prop_map(|(at_ms, churn, replica, fault, strikes)| {
            let (node, host) = match &churn.strike {
                Churning::Role(role) => (Target::role(role), None),
                Churning::Emitter => (Target::Replica(replica), Some(Target::Replica(replica))),
            };
            (1..)
                .zip(strikes)
                .map(|(nth, (delay, for_ms))| {
                    let mut fault = fault.clone();
                    if let Some(target) = fault.node_mut() {
                        *target = node.clone();
                    }
                    let mut trigger = churn.trigger.clone().nth(nth).delayed(delay);
                    trigger.host = host.clone();
                    ScheduledFault::at(at_ms, fault)
                        .lasting(for_ms)
                        .when(trigger)
                })
                .collect()
        });
    match kinds.churn {
        100.. => drawn.boxed(),
        percent => option::weighted(f64::from(percent) / 100.0, drawn)
            .prop_map(Option::unwrap_or_default)
            .boxed(),
    }
}

/// The kinds that strike a replica itself (its process or its machine),
/// not its links.
const STRIKING: [FaultKind; 5] = [
    FaultKind::Crash,
    FaultKind::Pause,
    FaultKind::Isolate,
    FaultKind::Lose,
    FaultKind::PowerLoss,
];

/// A fault of those of `kinds` that strike a replica itself (crash, pause,
/// isolate, lose, power loss), untriggered, at time 0, lasting as
/// [`fault`]'s do; `None` when `kinds` has none of them.
pub(crate) fn strike(
    kinds: &FaultKinds,
    cluster: Cluster,
    horizon_ms: u64,
) -> Option<BoxedStrategy<ScheduledFault>> {
    let striking: BTreeSet<FaultKind> = STRIKING
        .into_iter()
        .filter(|&k| kinds.contains(k))
        .collect();
    let narrow = FaultKinds {
        kinds: striking,
        triggered: 0,
        ..kinds.clone()
    };
    (!narrow.kinds.is_empty()).then(|| timed_fault(&narrow, cluster, horizon_ms))
}

/// A delay (ms) after a trigger's event: none, or one of
/// [`TRIGGER_DELAYS_MS`] (half and half).
pub(crate) fn trigger_delay() -> BoxedStrategy<u64> {
    prop_oneof![Just(0), select(&TRIGGER_DELAYS_MS[..])].boxed()
}

/// A delay (ms) after a trigger's event, never none: one of
/// [`TRIGGER_DELAYS_MS`].
pub(crate) fn trigger_delay_after() -> BoxedStrategy<u64> {
    select(&TRIGGER_DELAYS_MS[..]).boxed()
}

/// Points a node fault at replica `id`; link faults are left alone.
pub(crate) fn retarget(fault: &mut Fault, id: usize) {
    if let Some(node) = fault.node_mut() {
        *node = Target::Replica(id);
    }
}

/// The disk classes of `kinds`, each shrinking toward off.
fn disk(kinds: &FaultKinds) -> BoxedStrategy<DiskSpec> {
    let probability = |on: bool| {
        if on {
            (0u32..=20).prop_map(|n| f64::from(n) / 1_000.0).boxed()
        } else {
            Just(0.0).boxed()
        }
    };
    let torn = if kinds.contains(FaultKind::TornWrites) {
        any::<bool>().boxed()
    } else {
        Just(false).boxed()
    };
    (
        torn,
        probability(kinds.contains(FaultKind::IoErrors)),
        probability(kinds.contains(FaultKind::Corruption)),
    )
        .prop_map(
            |(torn_writes, io_error_probability, corruption_probability)| DiskSpec {
                torn_writes,
                io_error_probability,
                corruption_probability,
            },
        )
        .boxed()
}

/// The space of scenarios a strategy draws from. Build with
/// [`ScenarioSpace::new`], fit it to a system with
/// [`ScenarioSpace::declared_by`], and narrow it with the builder methods.
#[derive(Debug, Clone)]
pub struct ScenarioSpace {
    /// The system's name, as its registry knows it.
    pub system: String,
    pub kinds: FaultKinds,
    pub replicas: RangeInclusive<usize>,
    pub clients: RangeInclusive<usize>,
    /// Operations per client; shrinks toward the low end.
    pub ops_per_client: RangeInclusive<usize>,
    pub keys: RangeInclusive<usize>,
    pub max_faults: usize,
    /// Faults fire within this many ms of the start (the workload's likely
    /// duration: about 10 ms per operation of one client).
    pub horizon_ms: u64,
    /// The system's configuration in every scenario.
    pub config: serde_json::Value,
    /// The planted bug in every scenario.
    pub bug: Option<String>,
    /// The roles faults may target (the system's declared roles).
    pub roles: Vec<String>,
    /// The workload's operation kinds, simplest first.
    pub operations: Vec<&'static str>,
    /// Keep a majority of replicas: never lose more than a minority for good.
    pub needs_quorum: bool,
    /// The trace events faults may be triggered on (the system's declared
    /// events).
    pub events: Vec<Trigger>,
    /// The moments worth striking a role's holder at, time after time (the
    /// system's declared churning moments).
    pub churns: Vec<Churn>,
    /// How cases are drawn.
    pub search: Search,
    /// Whether and how the code's `buggify!` points fire in every scenario
    /// (`None`, the default: never; see [`crate::points`]).
    pub buggify: Option<Buggify>,
}

impl ScenarioSpace {
    /// Scenarios of the system called `name` with faults of `kinds`: 2 to 5
    /// replicas, 1 to 3 clients of 1 to 30 key-value operations on 1 to 4
    /// keys, up to 4 faults within the first 300 ms, faults aimed at
    /// replica ids only (until [`ScenarioSpace::declared_by`] names roles).
    pub fn new(name: &str, kinds: FaultKinds) -> Self {
        ScenarioSpace {
            system: name.to_string(),
            kinds,
            replicas: 2..=5,
            clients: 1..=3,
            ops_per_client: 1..=30,
            keys: 1..=4,
            max_faults: 4,
            horizon_ms: 300,
            config: serde_json::Value::Null,
            bug: None,
            roles: Vec::new(),
            operations: KeyValue.kinds().to_vec(),
            needs_quorum: false,
            events: Vec::new(),
            churns: Vec::new(),
            search: Search::Random,
            buggify: None,
        }
    }

    /// The space of the registered system `name`, fitted to its declaration.
    pub fn registered(
        registry: &Registry,
        name: &str,
        kinds: FaultKinds,
    ) -> Result<Self, SystemError> {
        let system = registry.build(name, &serde_json::Value::Null, None)?;
        Ok(ScenarioSpace::new(name, kinds).declared_by(&*system))
    }

    /// Fits the space to what `system` declares: cluster sizes (within the
    /// current range where they overlap), the roles faults may target, its
    /// workload's operations, whether a majority must survive, and the
    /// events faults may be triggered on.
    pub fn declared_by(mut self, system: &dyn System) -> Self {
        let declared = system.declaration();
        let low = (*self.replicas.start()).max(*declared.replicas.start());
        let high = (*self.replicas.end()).min(*declared.replicas.end());
        self.replicas = if low <= high {
            low..=high
        } else {
            declared.replicas.clone()
        };
        self.roles = declared.roles;
        self.operations = system.workload().kinds().to_vec();
        self.needs_quorum = declared.needs_quorum;
        self.events = declared.events.iter().map(Trigger::from).collect();
        self.churns = declared
            .events
            .iter()
            .filter_map(|moment| {
                Some(Churn {
                    trigger: Trigger::from(moment),
                    strike: moment.churn.clone()?,
                })
            })
            .collect();
        self
    }

    /// Cases drawn by `search`.
    pub fn search(mut self, search: Search) -> Self {
        self.search = search;
        self
    }

    /// Exactly `n` replicas.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n..=n;
        self
    }

    /// At most `n` faults.
    pub fn max_faults(mut self, n: usize) -> Self {
        self.max_faults = n;
        self
    }

    /// Operations per client in `ops`, and a horizon to match.
    pub fn ops_per_client(mut self, ops: RangeInclusive<usize>) -> Self {
        self.horizon_ms = (*ops.end() as u64 * 10).max(10);
        self.ops_per_client = ops;
        self
    }

    /// The system's configuration in every scenario.
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// `buggify!` points fire in every scenario as `buggify` says
    /// ([`Buggify::default`]: FoundationDB's rates). It draws nothing: the
    /// cases drawn are the same with and without it, only their runs differ.
    pub fn buggify(mut self, buggify: Buggify) -> Self {
        self.buggify = Some(buggify);
        self
    }

    /// The planted bug `name` in every scenario.
    pub fn bug(mut self, name: &str) -> Self {
        self.bug = Some(name.to_string());
        self
    }

    /// The strategy, drawing cases as [`ScenarioSpace::search`] says; for
    /// [`Search::Guided`], fresh cases as `random` draws them: a strategy
    /// cannot learn from the runs, [`crate::guided::Cases`] does.
    pub fn strategy(&self) -> BoxedStrategy<Scenario> {
        match self.search {
            Search::Random | Search::Guided => self.random(),
            Search::Swarm => self.swarm(),
        }
    }

    /// Where faults may strike in a scenario of `replicas` replicas of this space.
    pub fn cluster(&self, replicas: usize) -> Cluster<'_> {
        Cluster {
            replicas,
            roles: &self.roles,
            events: &self.events,
        }
    }

    /// Swarm testing: a narrower space per case (see [`Search::Swarm`]),
    /// then a random case of it. Shrinks toward the first kinds, fewer and
    /// shorter faults, untriggered ones.
    fn swarm(&self) -> BoxedStrategy<Scenario> {
        let space = self.clone();
        let kinds: Vec<FaultKind> = self.kinds.kinds.iter().copied().collect();
        let subset = match kinds.len() {
            0 => Just(Vec::new()).boxed(),
            n => subsequence(kinds, 1..=n).boxed(),
        };
        let horizon = self.horizon_ms.max(1);
        let longest = select(vec![horizon / 30, horizon / 6, horizon / 2, horizon]);
        (
            subset,
            0..=self.max_faults,
            1..=self.kinds.simultaneous,
            longest,
            select(vec![0u8, 25, 50, 100]),
            select(vec![5u64, 1, 20]),
        )
            .prop_flat_map(
                move |(subset, max_faults, simultaneous, longest, triggered, think_ms)| {
                    let mut narrow = space.clone();
                    narrow.kinds = FaultKinds::only(&subset)
                        .churn(space.kinds.churn)
                        .simultaneous(simultaneous)
                        .lasting_at_most(longest)
                        .triggered(triggered);
                    narrow.max_faults = max_faults;
                    narrow.random().prop_map(move |mut scenario| {
                        scenario.workload.think_time = std::time::Duration::from_millis(think_ms);
                        scenario
                    })
                },
            )
            .boxed()
    }

    /// Every case drawn from the whole space.
    fn random(&self) -> BoxedStrategy<Scenario> {
        let space = self.clone();
        self.replicas
            .clone()
            .prop_flat_map(move |replicas| {
                let space = space.clone();
                let cluster = Cluster {
                    replicas,
                    roles: &space.roles,
                    events: &space.events,
                };
                (
                    any::<u64>().no_shrink(),
                    space.clients.clone(),
                    space.ops_per_client.clone(),
                    space.keys.clone(),
                    mix(&space.operations),
                    schedule(&space.kinds, cluster, space.horizon_ms, space.max_faults),
                    disk(&space.kinds),
                    churn(&space.kinds, cluster, &space.churns, space.horizon_ms),
                )
                    .prop_map(
                        move |(seed, clients, ops, keys, mix, mut faults, disk, churn)| {
                            faults.extend(churn);
                            let mut scenario = Scenario::new(&space.system, seed);
                            scenario.bug = space.bug.clone();
                            scenario.config = space.config.clone();
                            scenario.buggify = space.buggify;
                            scenario.replicas = replicas;
                            scenario.clients = clients;
                            scenario.workload.ops_per_client = ops;
                            scenario.workload.keys = keys;
                            scenario.workload.mix = mix;
                            scenario.faults = keep_survivors(faults, replicas, space.needs_quorum);
                            scenario.disk = disk;
                            scenario
                        },
                    )
            })
            .boxed()
    }
}

/// A proptest runner whose draws are a function of `seed` alone (what
/// sweeps, explorations and guided search draw from).
pub fn seeded_runner(
    config: proptest::test_runner::Config,
    seed: u64,
) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Scenarios of the system called `name` with faults of `kinds`, over the
/// default [`ScenarioSpace`].
pub fn scenario(name: &str, kinds: FaultKinds) -> BoxedStrategy<Scenario> {
    ScenarioSpace::new(name, kinds).strategy()
}

/// Operation weights over `kinds`, shrinking toward the first two only.
fn mix(kinds: &[&'static str]) -> BoxedStrategy<Mix> {
    let kinds = kinds.to_vec();
    let weights: Vec<BoxedStrategy<u32>> = (0..kinds.len())
        .map(|i| {
            if i < 2 {
                (1u32..=2).boxed()
            } else {
                (0u32..=1).boxed()
            }
        })
        .collect();
    weights
        .prop_map(move |weights| Mix::new(kinds.iter().copied().zip(weights)))
        .boxed()
}

/// Drops the machine losses that would leave no machine (or, with
/// `needs_quorum`, no majority): such a cluster has nothing to check.
pub(crate) fn keep_survivors(
    faults: Vec<ScheduledFault>,
    replicas: usize,
    needs_quorum: bool,
) -> Vec<ScheduledFault> {
    let most_lost = if needs_quorum {
        (replicas - 1) / 2
    } else {
        replicas - 1
    };
    let mut losses = 0;
    faults
        .into_iter()
        .filter(|f| {
            let lose = matches!(f.fault, Fault::Lose { .. });
            losses += usize::from(lose);
            !lose || losses <= most_lost
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::test_runner::TestRunner;

    use super::*;

    proptest! {
        #[test]
        fn scenarios_are_valid_and_keep_to_their_knobs(
            scenario in ScenarioSpace::new("sync", FaultKinds::everything().simultaneous(3)).strategy()
        ) {
            prop_assert!(scenario.validate().is_ok(), "{:?}", scenario.validate());
            prop_assert!(scenario.faults.len() <= 4);
            prop_assert!(scenario.faults.iter().all(|f| f.at_ms < 300));
            let losses = scenario.faults.iter().filter(|f| matches!(f.fault, Fault::Lose { .. })).count();
            prop_assert!(losses < scenario.replicas);
        }

        #[test]
        fn a_system_that_needs_a_quorum_never_loses_a_majority(
            scenario in ScenarioSpace {
                needs_quorum: true,
                ..ScenarioSpace::new("raft", FaultKinds::only(&[FaultKind::Lose]).simultaneous(5))
            }
            .max_faults(5)
            .strategy()
        ) {
            let losses = scenario.faults.iter().filter(|f| matches!(f.fault, Fault::Lose { .. })).count();
            prop_assert!(losses <= (scenario.replicas - 1) / 2, "{} of {}", losses, scenario.replicas);
        }

        #[test]
        fn swarm_cases_are_valid_and_keep_to_their_knobs(
            scenario in ScenarioSpace {
                events: vec![Trigger::message("granted vote")],
                ..ScenarioSpace::new("sync", FaultKinds::everything().simultaneous(3))
            }
            .search(Search::Swarm)
            .strategy()
        ) {
            prop_assert!(scenario.validate().is_ok(), "{:?}", scenario.validate());
            prop_assert!(scenario.faults.len() <= 4);
            prop_assert!(scenario.faults.iter().all(|f| f.at_ms < 300 && f.for_ms.is_none_or(|d| d <= 300)));
        }

        /// A node fault triggered by one replica's event strikes that
        /// replica (without bursts, which name their own replicas).
        #[test]
        fn triggered_node_faults_strike_the_emitter(
            faults in schedule(&FaultKinds::crashes().triggered(100), Cluster { events: &[Trigger::message("granted vote")][..], ..cluster(3) }, 100, 4)
        ) {
            for f in faults {
                let trigger = f.trigger.as_ref().expect("every fault triggered");
                prop_assert_eq!(trigger.message.as_deref(), Some("granted vote"));
                if let (Some(host), Fault::Crash { node }) = (&trigger.host, &f.fault) {
                    prop_assert_eq!(host, node);
                }
            }
        }

        /// A churn strikes its role's holder at the first, second, ...
        /// occurrence of its moment, from one arming time.
        #[test]
        fn churns_strike_the_role_at_successive_occurrences(
            faults in churn(
                &FaultKinds::everything().churn(100),
                cluster(3),
                &[Churn { trigger: Trigger::message("became leader"), strike: Churning::Role("primary".into()) }],
                300,
            )
        ) {
            prop_assert!((1..=CHURN_STRIKES).contains(&faults.len()));
            for (nth, f) in (1..).zip(&faults) {
                let trigger = f.trigger.as_ref().expect("every strike triggered");
                prop_assert_eq!(trigger.nth, nth);
                prop_assert_eq!(f.at_ms, faults[0].at_ms);
                prop_assert_eq!(f.fault.clone().node_mut().cloned(), Some(Target::role("primary")));
            }
        }

        #[test]
        fn roles_are_targeted_only_when_declared(
            scenario in ScenarioSpace::new("plain", FaultKinds::crashes()).strategy()
        ) {
            for f in &scenario.faults {
                prop_assert!(
                    matches!(f.fault, Fault::Crash { node: Target::Replica(_) } | Fault::PowerLoss),
                    "{f}"
                );
            }
        }

        #[test]
        fn partitions_only_draws_partitions(faults in schedule(&FaultKinds::partitions(), cluster(3), 100, 5)) {
            for f in faults {
                prop_assert!(matches!(
                    f.fault,
                    Fault::Partition { .. } | Fault::Isolate { .. } | Fault::Bridge { .. } | Fault::OneWay { .. }
                ), "{f}");
            }
        }
    }

    /// A cluster of `replicas` whose replicas hold the role "primary".
    fn cluster(replicas: usize) -> Cluster<'static> {
        static ROLES: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["primary".to_string()]);
        Cluster {
            replicas,
            roles: &ROLES,
            events: &[],
        }
    }

    /// The minimal schedule proptest finds for a test that "fails" on the
    /// schedules `fails` accepts.
    fn minimal(
        strategy: BoxedStrategy<Vec<ScheduledFault>>,
        fails: fn(&[ScheduledFault]) -> bool,
    ) -> Vec<ScheduledFault> {
        let mut runner = TestRunner::deterministic();
        let result = runner.run(&strategy, |faults| {
            prop_assert!(!fails(&faults));
            Ok(())
        });
        match result {
            Err(proptest::test_runner::TestError::Fail(_, minimal)) => minimal,
            other => panic!("no failing schedule was drawn: {other:?}"),
        }
    }

    fn crashes(faults: &[ScheduledFault]) -> usize {
        faults
            .iter()
            .filter(|f| matches!(f.fault, Fault::Crash { .. }))
            .count()
    }

    /// A schedule that "fails" whenever it holds a crash shrinks to one
    /// crash of the primary, at time 0, for 1 ms.
    #[test]
    fn schedules_shrink_to_one_short_simple_fault() {
        let minimal = minimal(
            schedule(&FaultKinds::everything(), cluster(5), 500, 6),
            |f| crashes(f) > 0,
        );
        let crash = Fault::Crash {
            node: Target::role("primary"),
        };
        assert_eq!(minimal, vec![ScheduledFault::at(0, crash).lasting(1)]);
    }

    /// Two simultaneous crashes shrink to exactly two, at time 0, for 1 ms.
    #[test]
    fn bursts_shrink_to_the_replicas_needed() {
        let kinds = FaultKinds::everything().simultaneous(3);
        let minimal = minimal(schedule(&kinds, cluster(5), 500, 6), |faults| {
            faults.iter().any(|f| {
                faults
                    .iter()
                    .filter(|g| g.at_ms == f.at_ms && matches!(g.fault, Fault::Crash { .. }))
                    .count()
                    >= 2
            })
        });
        assert_eq!(minimal.len(), 2, "{minimal:?}");
        assert!(minimal.iter().all(|f| f.at_ms == 0
            && f.for_ms == Some(1)
            && matches!(f.fault, Fault::Crash { .. })));
        assert_ne!(minimal[0].fault, minimal[1].fault, "two distinct replicas");
    }
}
