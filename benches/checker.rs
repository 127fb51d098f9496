//! `cargo bench --bench checker [-- DIR]`: the checker's per-file and total
//! time on the golden histories (default `fixtures/histories`) and on
//! generated 100k-operation histories, with a 10 s time limit.

use std::path::PathBuf;
use std::time::Duration;

use replisim::check::bench::bench_checker;
use replisim::check::linearizable::SearchLimits;

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories"),
            PathBuf::from,
        );
    let limits = SearchLimits {
        time_limit: Some(Duration::from_secs(10)),
        ..SearchLimits::default()
    };
    match bench_checker(&dir, &limits) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
