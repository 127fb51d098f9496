//! The same scenario run twice gives the same trace digest, for every
//! built-in protocol, over many seeds and with faults, and over random
//! scenarios with every fault kind (disk classes included).

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
