//! `replisim explore`: the seed sweep over registered systems, its JSON
//! summary, shards, and the merge of shards' summaries.

use std::{path::PathBuf, process::ExitCode};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    registry::Registry,
    strategy::{FaultKinds, Search},
    sweep::{Shard, SweepConfig, SweepError, SweepOptions, SweepSummary, sweep},
};

use super::{EX_USAGE, bad_input};

#[derive(clap::Args)]
pub struct ExploreArgs {
    /// Systems to compare, comma-separated (names never contain commas);
    /// by default the registry's own list (every built-in protocol).
    #[arg(long, visible_alias = "systems", value_delimiter = ',')]
    protocols: Vec<String>,
    /// Build this planted bug into every system swept.
    #[arg(long)]
    bug: Option<String>,
    /// Random scenarios per system.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Fault preset: everything, crashes, crashes-with-disk-loss,
    /// partitions, network or none.
    #[arg(long, default_value = "everything")]
    faults: String,
    /// Up to this many faults strike at the same moment.
    #[arg(long, default_value_t = 2)]
    simultaneous: usize,
    /// How scenarios are drawn: random (every case from every allowed
    /// fault kind), swarm (each case from a random subset of the kinds
    /// and knobs) or guided (mutations of the cases that reached something
    /// new; adaptive, so it refuses --shard).
    #[arg(long, default_value_t = Search::Random, value_name = "random|swarm|guided")]
    search: Search,
    /// Turn the systems' `buggify!` points on (FoundationDB's rates: each
    /// point enabled in a quarter of the runs, firing a quarter of the
    /// times it is reached); the summary counts them per point.
    #[arg(long)]
    buggify: bool,
    /// The sweep's seed (default: a fresh one, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run only the I-th of N disjoint slices of the sweep (e.g. 2/4).
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Sweep nothing: add up these JSON summaries (the shards of one sweep)
    /// and print the table.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["shard", "seed"])]
    merge: Vec<PathBuf>,
}

impl ExploreArgs {
    pub fn run(self, registry: &Registry) -> ExitCode {
        if self.search.is_adaptive() && self.shard.is_some() {
            let error = SweepError::AdaptiveShard(self.search);
            eprintln!(
                "error: --search {} cannot run with --shard: {error}",
                self.search
            );
            return ExitCode::from(EX_USAGE);
        }
        let summary = match self.merge.is_empty() {
            true => self.sweep(registry),
            false => merge(&self.merge),
        };
        let summary = match summary {
            Ok(summary) => summary,
            Err(message) => return bad_input(message),
        };
        print!("{summary}");
        if let Some(path) = &self.json {
            let json = serde_json::to_string_pretty(&summary).expect("summaries serialise");
            if let Err(error) = std::fs::write(path, json + "\n") {
                return bad_input(format!("cannot write {}: {error}", path.display()));
            }
            println!("summary written: {}", path.display());
        }
        ExitCode::SUCCESS
    }

    fn sweep(&self, registry: &Registry) -> Result<SweepSummary, String> {
        let kinds = FaultKinds::preset(&self.faults).ok_or_else(|| {
            format!(
                "unknown fault preset {:?}: expected one of {}",
                self.faults,
                FaultKinds::PRESETS.join(", ")
            )
        })?;
        let config = SweepConfig {
            registry: registry.clone(),
            systems: match self.protocols.is_empty() {
                true => registry.sweeps(),
                false => self.protocols.clone(),
            },
            bug: self.bug.clone(),
            options: SweepOptions {
                runs: self.runs,
                faults: self.faults.clone(),
                simultaneous: self.simultaneous,
                search: self.search,
                shard: self.shard.unwrap_or(Shard::ALL),
                buggify: self.buggify,
            },
            seed: self.seed.unwrap_or_else(rand::random), // determinism-ok: picks the sweep's seed, printed
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        };
        println!(
            "sweeping {} scenarios per system ({} search); reproduce this sweep with --seed {}",
            config.options.runs, config.options.search, config.seed
        );
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed}")
                .expect("a valid progress template"),
        );
        let kinds = kinds.simultaneous(self.simultaneous);
        let result = sweep(&config, &kinds, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        });
        bar.finish_and_clear();
        result.map_err(|e| e.to_string())
    }
}

/// Reads and adds up JSON summaries.
fn merge(files: &[PathBuf]) -> Result<SweepSummary, String> {
    let parts = files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a sweep summary: {e}", file.display()))
        })
        .collect::<Result<Vec<SweepSummary>, String>>()?;
    SweepSummary::merge(&parts).map_err(|e| e.to_string())
}
