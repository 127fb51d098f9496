//! `replisim report`: the HTML timeline of a saved scenario (rerun) or of
//! a recorded history (checked for linearizability). Exit 0 once the page
//! is written, whatever the verdicts; 3 on bad input.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::{
    check::{CheckOptions, check_imported, linearizable::SearchLimits},
    history::{Format, parse},
    registry::Registry,
    report,
    sim::{self, Scenario},
};

use super::bad_input;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A saved scenario (JSON, as `run`, `explore` and failing tests save them).
    #[arg(required_unless_present = "history", conflicts_with = "history")]
    scenario: Option<PathBuf>,
    /// Draw this recorded history instead (any format `replisim check` reads).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// The history's format: porcupine-etcd, porcupine-kv, jepsen-edn or json (default: detect).
    #[arg(long, requires = "history")]
    format: Option<Format>,
    /// Every key's initial value, for the history's check (default nil).
    #[arg(long, requires = "history")]
    initial: Option<String>,
    /// Give the history's check up as `unknown` after this many seconds.
    #[arg(long, default_value_t = 60.0, requires = "history")]
    time_limit: f64,
    /// Where to write the page.
    #[arg(short, long, value_name = "FILE.html")]
    output: PathBuf,
}

impl ReportArgs {
    pub fn run(self, registry: &Registry) -> ExitCode {
        let page = match (&self.history, &self.scenario) {
            (Some(file), _) => self.history_page(file),
            (None, Some(file)) => scenario_page(registry, file),
            (None, None) => Err("give a scenario file or --history FILE".into()),
        };
        let page = match page {
            Ok(page) => page,
            Err(error) => return bad_input(error),
        };
        match std::fs::write(&self.output, page) {
            Ok(()) => {
                println!("report: {}", self.output.display());
                ExitCode::SUCCESS
            }
            Err(error) => bad_input(format!("cannot write {}: {error}", self.output.display())),
        }
    }

    fn history_page(&self, file: &PathBuf) -> Result<String, String> {
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
        let imported = parse(&text, self.format)
            .map_err(|error| format!("malformed history {}: {error}", file.display()))?;
        let options = CheckOptions {
            format: self.format,
            initial: self.initial.clone(),
            limits: SearchLimits {
                time_limit: Some(Duration::from_secs_f64(self.time_limit.max(0.0))),
                ..SearchLimits::default()
            },
        };
        let checked = check_imported(file, &imported, &options);
        println!("{checked}");
        let title = file.display().to_string();
        Ok(report::render_history(
            &title,
            &imported.history,
            imported.format == Format::Json,
            &checked.verdict,
        ))
    }
}

/// Reruns a saved scenario and draws it.
fn scenario_page(registry: &Registry, file: &PathBuf) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    let scenario =
        Scenario::from_json(&text).map_err(|error| format!("{}: {error}", file.display()))?;
    let system = registry
        .system_for(&scenario)
        .map_err(|error| error.to_string())?;
    let outcome = sim::run_system(&scenario, system).map_err(|error| error.to_string())?;
    let verdicts = outcome.verdicts();
    println!("{verdicts}");
    println!("digest: {}", outcome.digest_hex());
    Ok(report::render(&outcome, &verdicts))
}
