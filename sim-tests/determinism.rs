//! The same scenario run twice gives the same trace digest, for every
//! built-in protocol, over many seeds and with faults, and over random
//! scenarios with every fault kind (disk classes included).

#[path = "support/idle.rs"]
mod idle;

use proptest::prelude::*;
use replisim::{
    replication,
    sim::{Fault, Scenario, ScheduledFault, Target, check_determinism},
    strategy::{FaultKinds, ScenarioSpace},
};

fn scenario(system: &str, seed: u64) -> Scenario {
    let mut scenario = Scenario::new(system, seed);
    scenario.workload.ops_per_client = 20;
    scenario.faults = vec![
        ScheduledFault::at(
            20 + seed % 100,
            Fault::Crash {
                node: Target::Replica(1 + seed as usize % 2),
            },
        ),
        ScheduledFault::at(
            60 + seed % 50,
            Fault::Partition {
                groups: vec![vec![seed as usize % 3]],
            },
        ),
        ScheduledFault::at(150, Fault::Heal),
        ScheduledFault::at(
            120 + seed % 80,
            Fault::Lose {
                node: Target::role("primary"),
            },
        ),
    ];
    scenario
}

#[test]
fn every_protocol_gives_the_same_digest_twice_over_50_seeds() {
    let registry = replication::registry();
    for system in ["sync", "semi-sync:1", "async"] {
        for seed in 0..50 {
            let scenario = scenario(system, seed);
            let first = registry.run(&scenario).unwrap();
            let second = registry.run(&scenario).unwrap();
            assert_eq!(
                first.digest_hex(),
                second.digest_hex(),
                "{system} seed {seed} is not deterministic"
            );
            assert_eq!(first.history, second.history);
        }
    }
}

#[test]
fn different_seeds_give_different_digests() {
    let registry = replication::registry();
    let a = registry.run(&scenario("sync", 1)).unwrap();
    let b = registry.run(&scenario("sync", 2)).unwrap();
    assert_ne!(a.digest, b.digest);
}

/// Random scenarios of every built-in protocol with every fault kind.
fn any_scenario() -> impl Strategy<Value = Scenario> {
    let kinds = FaultKinds::everything().simultaneous(2);
    let registry = replication::registry();
    let space = |name: &str| {
        ScenarioSpace::registered(&registry, name, kinds.clone())
            .unwrap()
            .strategy()
    };
    prop_oneof![space("sync"), space("semi-sync:1"), space("async")]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// `check_determinism` (two recorded runs, traces compared) holds on
    /// random scenarios with all fault kinds.
    #[test]
    fn random_scenarios_with_every_fault_kind_are_deterministic(scenario in any_scenario()) {
        let system = replication::registry().system_for(&scenario).unwrap();
        if let Err(error) = check_determinism(&scenario, system) {
            prop_assert!(false, "{error}\nscenario: {}", scenario.to_json());
        }
    }
}

/// Iterates a `HashMap`, whose order changes with every new map: not a
/// function of the scenario.
fn log_hash_map_order(node: &replisim::node::NodeContext) {
    let id = node.id;
    let peers: std::collections::HashMap<usize, ()> = (0..16).map(|k| (k, ())).collect();
    for peer in peers.keys() {
        tracing::info!(id, peer, "greeting peer");
    }
}

/// Reads the real clock.
fn log_system_time(node: &replisim::node::NodeContext) {
    let id = node.id;
    let now = std::time::SystemTime::now() // determinism-ok: the bug this test plants
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    tracing::info!(id, now, "started");
}

/// The panic message of an exploration of `system` without faults.
fn explore_careless(name: &str, log: fn(&replisim::node::NodeContext)) -> String {
    let space = ScenarioSpace::new(name, FaultKinds::none()).ops_per_client(1..=3);
    let panic = std::panic::catch_unwind(|| {
        replisim::testing::Explorer::new(name, 4)
            .corpus(tempfile::tempdir().unwrap().path())
            .system(move |_| {
                std::rc::Rc::new(idle::Idle {
                    declaration: Default::default(),
                    start: log,
                })
            })
            .explore(space.strategy(), |_| Ok(()))
    })
    .expect_err("the nondeterminism is caught");
    panic.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn the_explorer_catches_a_system_that_iterates_a_hash_map() {
    let message = explore_careless("hash_map", log_hash_map_order);
    assert!(message.contains("not deterministic"), "{message}");
    assert!(message.contains("the traces part at event"), "{message}");
    assert!(message.contains("greeting peer"), "{message}");
}

#[test]
fn the_explorer_catches_a_system_that_reads_the_real_clock() {
    let message = explore_careless("system_time", log_system_time);
    assert!(message.contains("not deterministic"), "{message}");
    assert!(message.contains("started"), "{message}");
}
