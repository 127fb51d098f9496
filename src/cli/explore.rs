//! `replisim explore`: the seed sweep over the built-in protocols.

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use replisim::{
    explore::{SweepConfig, sweep},
    strategy::FaultKinds,
};

use super::bad_input;

#[derive(clap::Args)]
pub struct ExploreArgs {
    /// Protocols to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sync,semi-sync:1,async")]
    protocols: Vec<String>,
    /// Random scenarios per protocol.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Fault preset: everything, crashes, crashes-with-disk-loss,
    /// partitions, network or none.
    #[arg(long, default_value = "everything")]
    faults: String,
    /// Up to this many faults strike at the same moment.
    #[arg(long, default_value_t = 2)]
    simultaneous: usize,
    /// The sweep's seed (default: a fresh one, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl ExploreArgs {
    pub fn run(self) -> ExitCode {
        let Some(kinds) = FaultKinds::preset(&self.faults) else {
            return bad_input(format!(
                "unknown fault preset {:?}: expected one of {}",
                self.faults,
                FaultKinds::PRESETS.join(", ")
            ));
        };
        if let Some(bad) = self.protocols.iter().find(|p| {
            p.parse::<replisim::replication::four_stage::Mode>()
                .is_err()
        }) {
            return bad_input(format!(
                "unknown protocol {bad:?}: expected sync, semi-sync:K or async"
            ));
        }
        let config = SweepConfig {
            protocols: self.protocols,
            runs: self.runs,
            kinds: kinds.simultaneous(self.simultaneous),
            faults: format!("{} (up to {} at once)", self.faults, self.simultaneous),
            seed: self.seed.unwrap_or_else(rand::random), // determinism-ok: picks the sweep's seed, printed
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        };
        println!(
            "sweeping {} random scenarios per protocol; reproduce this sweep with --seed {}",
            config.runs, config.seed
        );
        let bar = ProgressBar::new((config.runs * config.protocols.len()) as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed}")
                .expect("a valid progress template"),
        );
        let result = sweep(&config, |done, _| bar.set_position(done as u64));
        bar.finish_and_clear();
        match result {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(error) => bad_input(error),
        }
    }
}
