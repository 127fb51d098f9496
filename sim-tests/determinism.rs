//! The same scenario run twice gives the same trace digest, for every
//! built-in protocol, over many seeds and with faults, and over random
//! scenarios with every fault kind (disk classes included).

use proptest::prelude::*;
use replisim::{
    replication::four_stage::Mode,
    sim::{self, Fault, Role, Scenario, ScheduledFault, Target, builtin_system, check_determinism},
    strategy::{FaultKinds, ScenarioSpace},
};

fn scenario(mode: Mode, seed: u64) -> Scenario {
    let mut scenario = Scenario::new(mode, seed);
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
                node: Target::Role(Role::Primary),
            },
        ),
    ];
    scenario
}

#[test]
fn every_protocol_gives_the_same_digest_twice_over_50_seeds() {
    for mode in [Mode::Sync, Mode::SemiSync(1), Mode::Async] {
        for seed in 0..50 {
            let scenario = scenario(mode, seed);
            let first = sim::run(&scenario).unwrap();
            let second = sim::run(&scenario).unwrap();
            assert_eq!(
                first.digest_hex(),
                second.digest_hex(),
                "{mode} seed {seed} is not deterministic"
            );
            assert_eq!(first.history, second.history);
        }
    }
}

#[test]
fn different_seeds_give_different_digests() {
    let a = sim::run(&scenario(Mode::Sync, 1)).unwrap();
    let b = sim::run(&scenario(Mode::Sync, 2)).unwrap();
    assert_ne!(a.digest, b.digest);
}

/// Random scenarios of every built-in protocol with every fault kind.
fn any_scenario() -> impl Strategy<Value = Scenario> {
    let kinds = FaultKinds::everything().simultaneous(2);
    let space = |mode: Mode| ScenarioSpace::new(&mode.to_string(), kinds.clone()).strategy();
    prop_oneof![
        space(Mode::Sync),
        space(Mode::SemiSync(1)),
        space(Mode::Async)
    ]
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
        let system = builtin_system(&scenario).unwrap();
        if let Err(error) = check_determinism(&scenario, system) {
            prop_assert!(false, "{error}\nscenario: {}", scenario.to_json());
        }
    }
}
