//! Reproducing failures: a failing run's scenario is saved as JSON (which
//! `replisim replay` accepts), with the digest it produced recorded in it,
//! and its full trace is written next to it.
//!
//! With them goes the run's HTML report, drawn by the renderer the caller
//! passes (`replisim::report::render_outcome`: `report` sits above `sim`,
//! so `sim` takes it as a function instead of importing it).
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

use super::{
    harness::{RunOptions, run_traced},
    outcome::Outcome,
};
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
    /// The HTML report: a timeline of the run with the evidence marked.
    pub report_file: PathBuf,
}

/// Draws an outcome as a self-contained HTML page
/// (`replisim::report::render_outcome`).
pub type Renderer = fn(&Outcome) -> String;

/// Saves `outcome`'s scenario, a full trace of it and its report drawn by
/// `render` under `dir`, in files named after the system, seed and digest.
pub fn save_failure(
    outcome: &Outcome,
    system: Rc<dyn System>,
    dir: &Path,
    render: Renderer,
) -> io::Result<SavedFailure> {
    let scenario_file = save_scenario(outcome, dir)?;
    let trace_file = scenario_file.with_extension("trace");
    write_trace(outcome, system, &trace_file)?;
    let report_file = scenario_file.with_extension("html");
    write_report(outcome, render, &report_file)?;
    Ok(SavedFailure {
        scenario_file,
        trace_file,
        report_file,
    })
}

/// Writes `outcome`'s report, drawn by `render`, to `file`.
pub fn write_report(outcome: &Outcome, render: Renderer, file: &Path) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(file, render(outcome))
}

/// Saves `outcome`'s scenario, with its digest as `recorded_digest`, as
/// `<system>[-<bug>]-seed<seed>-<digest>.json` under `dir`; returns the file.
pub fn save_scenario(outcome: &Outcome, dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let mut scenario = outcome.scenario.clone();
    scenario.recorded_digest = Some(outcome.digest_hex());
    let file = dir.join(format!(
        "{}-seed{}-{}.json",
        file_stem(&scenario),
        scenario.seed,
        outcome.digest_hex()
    ));
    fs::write(&file, scenario.to_json() + "\n")?;
    Ok(file)
}

/// A file name for a scenario's system and bug (`:` and `/` of parameters
/// made safe).
pub(crate) fn file_stem(scenario: &super::Scenario) -> String {
    let name = match &scenario.bug {
        Some(bug) => format!("{}-{bug}", scenario.system),
        None => scenario.system.clone(),
    };
    name.replace([':', '/'], "-")
}

/// Runs `outcome`'s scenario again with every event recorded and writes
/// the trace to `file`, headed by whether the rerun reproduced the digest.
pub fn write_trace(outcome: &Outcome, system: Rc<dyn System>, file: &Path) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)?;
    }
    let trace = match run_traced(&outcome.scenario, system, RunOptions::default(), true) {
        Ok((rerun, lines)) => {
            let header = if rerun.digest == outcome.digest {
                format!("# this replay reproduced digest {}", outcome.digest_hex())
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
    fs::write(file, trace + "\n")
}
