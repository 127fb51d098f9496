//! `cargo bench --bench checker [-- DIR] [-- --write-kv OUT]`: the
//! checker's time and peak memory on the golden histories (default
//! `fixtures/histories`) and on generated ones, with a 10 s time limit,
//! ending with a line per set, `SET: X ms`. `--write-kv OUT` also writes
//! the generated key-value histories to `OUT` as Porcupine logs, for
//! timing Porcupine on the same files.

use std::path::PathBuf;
use std::time::Duration;

use replisim::check::bench::bench_checker;
use replisim::check::linearizable::SearchLimits;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write_kv = args
        .iter()
        .position(|a| a == "--write-kv")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let dir = args
        .iter()
        .enumerate()
        .find(|&(i, a)| !a.starts_with('-') && (i == 0 || args[i - 1] != "--write-kv"))
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories"),
            |(_, a)| PathBuf::from(a),
        );
    let limits = SearchLimits {
        time_limit: Some(Duration::from_secs(10)),
        ..SearchLimits::default()
    };
    match bench_checker(&dir, &limits, write_kv.as_deref()) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
