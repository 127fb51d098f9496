//! Reproducing failures: a failing run's scenario is saved as JSON (which
//! `replisim replay` accepts) and its full trace is written next to it.
//!
//! The trace comes from running the scenario again with every event
//! recorded: runs are deterministic, so the recorded run is the failing run.
//! The trace file's first line says whether the digests matched, so a
//! determinism bug cannot hide behind a misleading trace.

use std::{
    fs, io,
    path::{Path, PathBuf},
    rc::Rc,
};

use super::{harness::run_traced, outcome::Outcome};
use crate::node::System;

/// Where failing runs are written: `$REPLISIM_OUT`, else `replisim-out`.
pub fn output_dir() -> PathBuf {
    std::env::var_os("REPLISIM_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("replisim-out"))
}

/// The files describing one failing run.
#[derive(Debug, Clone)]
pub struct SavedFailure {
    pub scenario_file: PathBuf,
    pub trace_file: PathBuf,
}

/// Saves `outcome`'s scenario and a full trace of it under `dir`, in files
/// named after the protocol, seed and digest.
pub fn save_failure(
    outcome: &Outcome,
    system: Rc<dyn System>,
    dir: &Path,
) -> io::Result<SavedFailure> {
    fs::create_dir_all(dir)?;
    let scenario = &outcome.scenario;
    let stem = format!(
        "{}-seed{}-{}",
        scenario.protocol.replace(':', "-"),
        scenario.seed,
        outcome.digest_hex()
    );
    let scenario_file = dir.join(format!("{stem}.json"));
    fs::write(&scenario_file, scenario.to_json())?;
    let trace_file = dir.join(format!("{stem}.trace"));
    let trace = match run_traced(scenario, system, true) {
        Ok((rerun, lines)) => {
            let header = if rerun.digest == outcome.digest {
                format!(
                    "# replay of {} reproduced digest {}",
                    scenario_file.display(),
                    outcome.digest_hex()
                )
            } else {
                format!(
                    "# NONDETERMINISM: the failing run had digest {}, this replay {}",
                    outcome.digest_hex(),
                    rerun.digest_hex()
                )
            };
            std::iter::once(header)
                .chain(lines)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(error) => format!("# the replay failed: {error}"),
    };
    fs::write(&trace_file, trace + "\n")?;
    Ok(SavedFailure {
        scenario_file,
        trace_file,
    })
}
