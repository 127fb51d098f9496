//! The store's `buggify!` and `sometimes!` points, in the user's library,
//! are known to an exploration in the user's test binary: counted,
//! fired when the scenarios turn buggify on, and held.

use std::rc::Rc;

use my_store::MyStore;
use replisim::{
    sim::Buggify,
    strategy::{FaultKinds, ScenarioSpace},
    testing::Explorer,
};

#[test]
fn the_library_points_are_known_and_fire() {
    let space = ScenarioSpace::new("my-store", FaultKinds::none())
        .declared_by(&MyStore)
        .buggify(Buggify::default());
    let exploration = Explorer::this_test(16)
        .system(|_| Rc::new(MyStore))
        .explore(space.strategy(), |_| Ok(()));
    let slow = exploration
        .buggify
        .iter()
        .find(|(label, _)| label.starts_with("slow reply at src/lib.rs:"))
        .map(|(_, count)| *count);
    assert!(slow.is_some_and(|count| count.hits > 0), "{exploration}");
    assert!(exploration.sometimes["a read found a value"] > 0, "{exploration}");
}
