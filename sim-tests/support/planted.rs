//! The second half of every planted-bug test: the failing scenario, run
//! again without its bug, keeps every claim (so what was found is the
//! bug's, not a weakness the correct system shares).

use replisim::{registry::Registry, sim::Scenario};

/// Runs `scenario` without its bug and asserts that every claim holds.
pub fn assert_passes_without_the_bug(registry: &Registry, scenario: &Scenario) {
    let mut fixed = scenario.clone();
    fixed.bug = None;
    let verdicts = registry.run(&fixed).unwrap().verdicts();
    assert!(verdicts.passed(), "without the bug: {verdicts}");
}
