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
//! ```
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//! use replisim::strategy::{FaultKinds, ScenarioSpace};
//!
//! let space = ScenarioSpace::new("sync", FaultKinds::crashes().simultaneous(3)).replicas(3);
//! let scenario = space.strategy().new_tree(&mut TestRunner::deterministic()).unwrap().current();
//! assert_eq!(scenario.replicas, 3);
//! assert!(scenario.validate().is_ok());
//! ```

use std::{collections::BTreeSet, ops::RangeInclusive};

use proptest::{
    collection::vec,
    prelude::*,
    sample::subsequence,
    strategy::{BoxedStrategy, Union},
};

use crate::{
    replication::four_stage::EngineConfig,
    sim::{DiskSpec, Fault, Mix, Role, Scenario, ScheduledFault, Target},
};

/// One kind of fault a strategy may draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A replica crashes (unsynced writes lost) and restarts after a while.
    Crash,
    /// A replica's machine is lost for good, disk included.
    Lose,
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
    pub const ALL: [FaultKind; 15] = [
        FaultKind::Crash,
        FaultKind::Lose,
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

/// Which faults to draw, and how many may strike at the same moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultKinds {
    kinds: BTreeSet<FaultKind>,
    simultaneous: usize,
}

impl FaultKinds {
    /// The given kinds, one fault at a time.
    pub fn only(kinds: &[FaultKind]) -> Self {
        FaultKinds {
            kinds: kinds.iter().copied().collect(),
            simultaneous: 1,
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

    /// Crashes followed by restarts on the same disk.
    pub fn crashes() -> Self {
        FaultKinds::only(&[FaultKind::Crash])
    }

    /// Crashes, machines lost with their disks, and torn unsynced writes.
    pub fn crashes_with_disk_loss() -> Self {
        use FaultKind::*;
        FaultKinds::only(&[Crash, Lose, TornWrites])
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

    pub fn contains(&self, kind: FaultKind) -> bool {
        self.kinds.contains(&kind)
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

/// A replica: the current primary (the simplest) or an id below `replicas`.
fn target(replicas: usize) -> BoxedStrategy<Target> {
    prop_oneof![
        Just(Target::Role(Role::Primary)),
        (0..replicas).prop_map(Target::Replica),
    ]
    .boxed()
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

/// A fault of `kind` among `replicas` replicas. Disk classes have no
/// scheduled fault; they give `Heal` (which does nothing on its own).
fn fault_of(kind: FaultKind, replicas: usize) -> BoxedStrategy<Fault> {
    let r = replicas;
    match kind {
        FaultKind::Crash => target(r).prop_map(|node| Fault::Crash { node }).boxed(),
        FaultKind::Lose => target(r).prop_map(|node| Fault::Lose { node }).boxed(),
        FaultKind::Pause => target(r).prop_map(|node| Fault::Pause { node }).boxed(),
        FaultKind::Isolate => target(r).prop_map(|node| Fault::Isolate { node }).boxed(),
        FaultKind::Duplicate => target(r).prop_map(|node| Fault::Duplicate { node }).boxed(),
        FaultKind::ClockSkew => (target(r), -2_000i64..=2_000, -100_000i64..=100_000)
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

/// One fault of the scheduled `kinds` among `replicas` replicas, firing
/// within `horizon_ms` and (unless it is permanent) undone after at most
/// `horizon_ms`. With no scheduled kind, a `Heal` (a fault that does nothing).
pub fn fault(
    kinds: &FaultKinds,
    replicas: usize,
    horizon_ms: u64,
) -> BoxedStrategy<ScheduledFault> {
    (
        0..horizon_ms.max(1),
        timed_fault(kinds, replicas, horizon_ms),
    )
        .prop_map(|(at_ms, mut fault)| {
            fault.at_ms = at_ms;
            fault
        })
        .boxed()
}

/// A fault at time 0 with its duration; the caller sets the time.
fn timed_fault(
    kinds: &FaultKinds,
    replicas: usize,
    horizon_ms: u64,
) -> BoxedStrategy<ScheduledFault> {
    let scheduled = kinds.scheduled();
    if scheduled.is_empty() {
        return Just(ScheduledFault::at(0, Fault::Heal)).boxed();
    }
    let faults = Union::new(scheduled.into_iter().map(|k| fault_of(k, replicas)));
    (faults, 1..=horizon_ms.max(1))
        .prop_map(|(fault, for_ms)| {
            let permanent = matches!(fault, Fault::Lose { .. });
            let scheduled = ScheduledFault::at(0, fault);
            if permanent {
                scheduled
            } else {
                scheduled.lasting(for_ms)
            }
        })
        .boxed()
}

/// Up to `max_faults` faults of `kinds` within `horizon_ms`. Shrinks
/// toward fewer faults (down to none).
///
/// With [`FaultKinds::simultaneous`]`(n)` faults come in bursts: up to `n`
/// distinct replicas struck at the same moment (a burst of node faults
/// names replicas by id; link faults keep their own sets). A burst shrinks
/// toward fewer replicas.
pub fn schedule(
    kinds: &FaultKinds,
    replicas: usize,
    horizon_ms: u64,
    max_faults: usize,
) -> BoxedStrategy<Vec<ScheduledFault>> {
    if kinds.scheduled().is_empty() || max_faults == 0 || replicas == 0 {
        return Just(Vec::new()).boxed();
    }
    let n = kinds.simultaneous.min(replicas);
    let burst = (
        0..horizon_ms.max(1),
        vec(timed_fault(kinds, replicas, horizon_ms), n),
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

/// Points a node fault at replica `id`; link faults are left alone.
fn retarget(fault: &mut Fault, id: usize) {
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
/// [`ScenarioSpace::new`] and narrow with the builder methods.
#[derive(Debug, Clone)]
pub struct ScenarioSpace {
    pub protocol: String,
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
    /// The built-in engine's knobs (a planted bug, for instance).
    pub engine: EngineConfig,
}

impl ScenarioSpace {
    /// Scenarios of `protocol` with faults of `kinds`: 2 to 5 replicas, 1 to
    /// 3 clients of 1 to 30 operations on 1 to 4 keys, up to 4 faults within
    /// the first 300 ms.
    pub fn new(protocol: &str, kinds: FaultKinds) -> Self {
        ScenarioSpace {
            protocol: protocol.to_string(),
            kinds,
            replicas: 2..=5,
            clients: 1..=3,
            ops_per_client: 1..=30,
            keys: 1..=4,
            max_faults: 4,
            horizon_ms: 300,
            engine: EngineConfig::default(),
        }
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

    /// The engine knobs of every scenario.
    pub fn engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> BoxedStrategy<Scenario> {
        let space = self.clone();
        self.replicas
            .clone()
            .prop_flat_map(move |replicas| {
                let space = space.clone();
                (
                    any::<u64>().no_shrink(),
                    space.clients.clone(),
                    space.ops_per_client.clone(),
                    space.keys.clone(),
                    mix(),
                    schedule(&space.kinds, replicas, space.horizon_ms, space.max_faults),
                    disk(&space.kinds),
                )
                    .prop_map(
                        move |(seed, clients, ops, keys, mix, faults, disk)| {
                            let mut scenario = Scenario::for_system(&space.protocol, seed);
                            scenario.replicas = replicas;
                            scenario.clients = clients;
                            scenario.workload.ops_per_client = ops;
                            scenario.workload.keys = keys;
                            scenario.workload.mix = mix;
                            scenario.faults = keep_a_survivor(faults, replicas);
                            scenario.disk = disk;
                            scenario.engine = space.engine;
                            scenario
                        },
                    )
            })
            .boxed()
    }
}

/// Scenarios of `protocol` with faults of `kinds`, over the default
/// [`ScenarioSpace`].
pub fn scenario(protocol: &str, kinds: FaultKinds) -> BoxedStrategy<Scenario> {
    ScenarioSpace::new(protocol, kinds).strategy()
}

/// Operation weights, shrinking toward reads and writes only.
fn mix() -> impl Strategy<Value = Mix> {
    (1u32..=2, 1u32..=2, 0u32..=1, 0u32..=1).prop_map(|(read, write, append, cas)| Mix {
        read,
        write,
        append,
        cas,
    })
}

/// Drops the machine losses beyond `replicas - 1`: a cluster with no
/// machine left has nothing to check.
fn keep_a_survivor(faults: Vec<ScheduledFault>, replicas: usize) -> Vec<ScheduledFault> {
    let mut losses = 0;
    faults
        .into_iter()
        .filter(|f| {
            let lose = matches!(f.fault, Fault::Lose { .. });
            losses += usize::from(lose);
            !lose || losses < replicas
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
        fn partitions_only_draws_partitions(faults in schedule(&FaultKinds::partitions(), 3, 100, 5)) {
            for f in faults {
                prop_assert!(matches!(
                    f.fault,
                    Fault::Partition { .. } | Fault::Isolate { .. } | Fault::Bridge { .. } | Fault::OneWay { .. }
                ), "{f}");
            }
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
        let minimal = minimal(schedule(&FaultKinds::everything(), 5, 500, 6), |f| {
            crashes(f) > 0
        });
        let crash = Fault::Crash {
            node: Target::Role(Role::Primary),
        };
        assert_eq!(minimal, vec![ScheduledFault::at(0, crash).lasting(1)]);
    }

    /// Two simultaneous crashes shrink to exactly two, at time 0, for 1 ms.
    #[test]
    fn bursts_shrink_to_the_replicas_needed() {
        let kinds = FaultKinds::everything().simultaneous(3);
        let minimal = minimal(schedule(&kinds, 5, 500, 6), |faults| {
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
