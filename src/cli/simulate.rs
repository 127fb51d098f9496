//! `replisim run` and `replisim replay`: one simulated scenario, its
//! verdicts, statistics (the `buggify!` points' firings when the scenario
//! turns them on, the `sometimes!` assertions), the replicas' exits and digest; on failure the saved scenario, its
//! trace, its HTML report and the command that reproduces it.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use crate::{
    check::exits,
    check::stats,
    registry::Registry,
    report,
    sim::{self, Fault, Outcome, Scenario, ScheduledFault, Target, repro},
};

use super::bad_input;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The system, as registered (the built-in ones: sync, semi-sync:K, async).
    #[arg(long, visible_alias = "system")]
    protocol: String,
    /// Build in this planted bug of the system.
    #[arg(long)]
    bug: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Operations per client.
    #[arg(long, default_value_t = 50)]
    ops: usize,
    /// At this simulated time (ms) the machine of the node holding the
    /// system's first declared role (the primary) is lost for good.
    #[arg(long, value_name = "MS")]
    crash_primary_at: Option<u64>,
    /// Save the scenario as JSON to this file (for `replisim replay`).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Write the recorded history as JSON to this file (`replisim check` reads it).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

impl RunArgs {
    pub fn run(self, registry: &Registry) -> ExitCode {
        let system = match registry.build(
            &self.protocol,
            &serde_json::Value::Null,
            self.bug.as_deref(),
        ) {
            Ok(system) => system,
            Err(error) => return bad_input(error),
        };
        let mut scenario = Scenario::new(&self.protocol, self.seed);
        scenario.bug = self.bug.clone();
        scenario.replicas = self.replicas;
        scenario.clients = self.clients;
        scenario.workload = crate::workload::WorkloadSpec {
            ops_per_client: self.ops,
            ..crate::workload::WorkloadSpec::for_kinds(system.workload().kinds())
        };
        if let Some(at_ms) = self.crash_primary_at {
            let Some(role) = system.declaration().roles.into_iter().next() else {
                return bad_input(format!(
                    "--crash-primary-at: {} declares no role to aim at",
                    self.protocol
                ));
            };
            let lose = Fault::Lose {
                node: Target::Role(role),
            };
            scenario.faults.push(ScheduledFault::at(at_ms, lose));
        }
        if let Some(path) = &self.save
            && let Err(error) = std::fs::write(path, scenario.to_json())
        {
            return bad_input(format!(
                "cannot save the scenario to {}: {error}",
                path.display()
            ));
        }
        let mut line = format!("replisim run --protocol {}", self.protocol);
        if let Some(bug) = &self.bug {
            line += &format!(" --bug {bug}");
        }
        line += &format!(
            " --seed {} --replicas {} --clients {} --ops {}",
            self.seed, self.replicas, self.clients, self.ops
        );
        if let Some(at) = self.crash_primary_at {
            line += &format!(" --crash-primary-at {at}");
        }
        let files = OutputFiles {
            history: self.history.as_deref(),
            record: None,
        };
        run_and_report(registry, &scenario, &line, files)
    }
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    file: PathBuf,
    /// Write the recorded history as JSON to this file.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Write this run's digest into the file as its `recorded_digest`
    /// (after an intended change of the code's behaviour).
    #[arg(long)]
    record: bool,
}

impl ReplayArgs {
    pub fn run(self, registry: &Registry) -> ExitCode {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(error) => {
                return bad_input(format!("cannot read {}: {error}", self.file.display()));
            }
        };
        match Scenario::from_json(&text) {
            Ok(scenario) => {
                let files = OutputFiles {
                    history: self.history.as_deref(),
                    record: self.record.then_some(self.file.as_path()),
                };
                let line = format!("replisim replay {}", self.file.display());
                run_and_report(registry, &scenario, &line, files)
            }
            Err(error) => bad_input(format!("{}: {error}", self.file.display())),
        }
    }
}

/// Files a run writes besides its report.
struct OutputFiles<'a> {
    /// The history, as JSON.
    history: Option<&'a Path>,
    /// The scenario file to write this run's digest into.
    record: Option<&'a Path>,
}

/// Runs `scenario`, prints the verdicts and, on failure, saves it and the
/// command that reproduces it.
fn run_and_report(
    registry: &Registry,
    scenario: &Scenario,
    command_line: &str,
    files: OutputFiles,
) -> ExitCode {
    let system = match registry.system_for(scenario) {
        Ok(system) => system,
        Err(error) => return bad_input(error),
    };
    let outcome = match sim::run_system(scenario, system.clone()) {
        Ok(outcome) => outcome,
        Err(error) => return bad_input(error),
    };
    if let Some(path) = files.history {
        let json = serde_json::to_string_pretty(&outcome.history).expect("histories serialise");
        if let Err(error) = std::fs::write(path, json) {
            return bad_input(format!(
                "cannot write the history to {}: {error}",
                path.display()
            ));
        }
    }
    let verdicts = outcome.verdicts();
    print_report(&outcome, &verdicts);
    if let Some(file) = files.record {
        let mut recorded = scenario.clone();
        recorded.recorded_digest = Some(outcome.digest_hex());
        if let Err(error) = std::fs::write(file, recorded.to_json() + "\n") {
            return bad_input(format!("cannot write {}: {error}", file.display()));
        }
        println!("digest recorded in {}", file.display());
    } else if let Some(recorded) = &scenario.recorded_digest {
        if *recorded == outcome.digest_hex() {
            println!("digest matches the one recorded in the scenario");
        } else {
            println!("digest DIFFERS from the recorded {recorded}: the code's behaviour changed");
        }
    }
    if verdicts.passed() {
        return ExitCode::SUCCESS;
    }
    match repro::save_failure(
        &outcome,
        system,
        &repro::output_dir(),
        report::render_outcome,
    ) {
        Ok(saved) => {
            println!("scenario saved: {}", saved.scenario_file.display());
            println!("trace written:  {}", saved.trace_file.display());
            println!("report: {}", saved.report_file.display());
            println!("reproduce with: {command_line}");
            let replay = format!("replisim replay {}", saved.scenario_file.display());
            if replay != command_line {
                println!("            or: {replay}");
            }
        }
        Err(error) => {
            eprintln!("warning: could not save the failure: {error}");
            println!("reproduce with: {command_line}");
        }
    }
    ExitCode::FAILURE
}

fn print_report(outcome: &Outcome, verdicts: &sim::Verdicts) {
    let s = &outcome.scenario;
    let faults: Vec<String> = s.faults.iter().map(ToString::to_string).collect();
    println!(
        "system {}{} | seed {} | {} replicas, {} clients x {} ops | faults: {} | simulated {} ms, {} trace events",
        s.system,
        s.bug
            .as_ref()
            .map(|bug| format!(" [bug {bug}]"))
            .unwrap_or_default(),
        s.seed,
        s.replicas,
        s.clients,
        s.workload.ops_per_client,
        if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join(", ")
        },
        outcome.stats.simulated_ms,
        outcome.stats.trace_events
    );
    println!("{verdicts}");
    for phase in outcome.phases() {
        println!("  {phase}");
    }
    let recovery = outcome.recovery_times();
    if let Some(l) = stats::percentiles(recovery.clone()) {
        println!(
            "after the role holder's loss ({} times): next acknowledged write in p50 {:.1} p99 {:.1} ms",
            recovery.len(),
            l.p50 as f64 / 1e6,
            l.p99 as f64 / 1e6
        );
    }
    print_counts("effects", &outcome.stats.effects);
    print_counts("faults fired/effective", &outcome.stats.faults);
    if outcome.scenario.buggify.is_some() {
        print_counts("buggify fired/reached", &outcome.stats.buggify);
    }
    print_counts("sometimes held/reached", &outcome.stats.sometimes);
    if let Some(inert) = sim::inert_faults(&outcome.stats.faults) {
        println!("warning: fault kinds that fired and were never effective: {inert}");
    }
    print_exits(outcome);
    println!("replicas agreed: {}", outcome.stats.convergence());
    println!("digest: {}", outcome.digest_hex());
}

/// `exits: 1 expected, 3 unexpected`, then a line per replica and kind,
/// unless no replica exited.
fn print_exits(outcome: &Outcome) {
    if outcome.exits.is_empty() {
        return;
    }
    println!("exits: {}", outcome.stats.exits);
    for (kind, expected) in [("expected", true), ("unexpected", false)] {
        let some: Vec<exits::Exit> = outcome
            .exits
            .iter()
            .filter(|exit| exit.expected == expected)
            .cloned()
            .collect();
        for line in exits::per_replica(&some) {
            println!("  {kind}: {line}");
        }
    }
}

/// `title: key=value key=value ...`, unless there is nothing to show.
fn print_counts(title: &str, counts: &std::collections::BTreeMap<String, impl std::fmt::Display>) {
    if !counts.is_empty() {
        let items: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{title}: {}", items.join(" "));
    }
}
