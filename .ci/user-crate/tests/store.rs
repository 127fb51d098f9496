//! The user's property test: the store must keep acknowledged writes
//! across crashes. It does not, and replisim must say so.

use std::rc::Rc;

use my_store::MyStore;
use replisim::{
    strategy::{FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
};

#[test]
fn my_store_survives_crashes() {
    let space = ScenarioSpace::new("my-store", FaultKinds::crashes()).declared_by(&MyStore);
    Explorer::this_test(64)
        .system(|_| Rc::new(MyStore))
        .explore(space.strategy(), testing::holds);
}
