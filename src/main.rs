//! The `replisim` command-line tool.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    rc::Rc,
};

use clap::{Parser, Subcommand};
use replisim::{
    check::{
        file::{CheckError, CheckOptions, check_file},
        linearizable::SearchLimits,
    },
    history::{Completion, Format, Op},
    replication::four_stage::{EngineConfig, FourStage, Mode},
    serve::{self, ReplicaConfig},
    sim::{self, Fault, Outcome, Role, Scenario, ScheduledFault, Target, repro},
};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "replisim",
    version,
    about = "Deterministic simulation testing of replication code"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one simulated scenario of a built-in protocol and check it.
    Run {
        /// sync, semi-sync:K or async
        #[arg(long)]
        protocol: Mode,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        #[arg(long, default_value_t = 2)]
        clients: usize,
        /// Operations per client.
        #[arg(long, default_value_t = 50)]
        ops: usize,
        /// At this simulated time (ms) the primary's machine is lost for
        /// good and the operator fails over to a backup.
        #[arg(long, value_name = "MS")]
        crash_primary_at: Option<u64>,
        /// Save the scenario as JSON to this file (for `replisim replay`).
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
        /// Write the recorded history as JSON to this file (`replisim check` reads it).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
    },
    /// Run a saved scenario file again and check it: exit 0 all checks
    /// hold, 1 a check failed, 3 the file is malformed or cannot run.
    Replay {
        file: PathBuf,
        /// Write the recorded history as JSON to this file.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// Write this run's digest into the file as its `recorded_digest`
        /// (after an intended change of the code's behaviour).
        #[arg(long)]
        record: bool,
    },
    /// Run one replica of a built-in protocol as a real server (real TCP,
    /// fsync'd files), until killed.
    Serve {
        #[arg(long)]
        protocol: Mode,
        /// This replica's index in --replicas.
        #[arg(long)]
        id: usize,
        /// Every replica's host:port, comma-separated, in id order.
        #[arg(long, value_delimiter = ',', required = true)]
        replicas: Vec<String>,
        /// Data directory for the write-ahead log.
        #[arg(long)]
        data: PathBuf,
    },
    /// Perform one operation against real replicas started with `serve`.
    Kv {
        #[arg(long)]
        protocol: Mode,
        #[arg(long, value_delimiter = ',', required = true)]
        replicas: Vec<String>,
        /// The replica to send it to (the primary).
        #[arg(long, default_value_t = 0)]
        primary: usize,
        #[command(subcommand)]
        op: KvOp,
    },
    /// Check a recorded history for linearizability: exit 0 linearizable,
    /// 1 not linearizable, 2 unknown, 3 malformed file.
    Check {
        file: PathBuf,
        /// porcupine-etcd, porcupine-kv, jepsen-edn or json (default: detect).
        #[arg(long)]
        format: Option<Format>,
        /// Every key's initial value (e.g. 0, as Knossos's test data assumes; default nil).
        #[arg(long)]
        initial: Option<String>,
        /// Give up with `unknown` after this many seconds.
        #[arg(long, default_value_t = 60.0)]
        time_limit: f64,
    },
}

#[derive(Subcommand)]
enum KvOp {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: String,
    },
    Append {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        from: String,
        to: String,
    },
}

impl From<KvOp> for Op {
    fn from(op: KvOp) -> Op {
        match op {
            KvOp::Read { key } => Op::Read { key, value: None },
            KvOp::Write { key, value } => Op::Write { key, value },
            KvOp::Append { key, value } => Op::Append { key, value },
            KvOp::Cas { key, from, to } => Op::Cas { key, from, to },
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            protocol,
            seed,
            replicas,
            clients,
            ops,
            crash_primary_at,
            save,
            history,
        } => {
            let mut scenario = Scenario::new(protocol, seed);
            scenario.replicas = replicas;
            scenario.clients = clients;
            scenario.workload.ops_per_client = ops;
            if let Some(at_ms) = crash_primary_at {
                scenario.faults.push(ScheduledFault::at(
                    at_ms,
                    Fault::Lose {
                        node: Target::Role(Role::Primary),
                    },
                ));
            }
            if let Some(path) = save
                && let Err(error) = std::fs::write(&path, scenario.to_json())
            {
                eprintln!(
                    "error: cannot save the scenario to {}: {error}",
                    path.display()
                );
                return ExitCode::from(3);
            }
            let mut line = format!(
                "replisim run --protocol {protocol} --seed {seed} --replicas {replicas} --clients {clients} --ops {ops}"
            );
            if let Some(at) = crash_primary_at {
                line += &format!(" --crash-primary-at {at}");
            }
            let files = OutputFiles {
                history: history.as_deref(),
                record: None,
            };
            run_and_report(&scenario, &line, files)
        }
        Command::Serve {
            protocol,
            id,
            replicas,
            data,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .init();
            let system = Rc::new(FourStage::new(protocol, EngineConfig::default()));
            let config = ReplicaConfig {
                id,
                replicas,
                data_dir: data,
            };
            match serve::run_replica(system, config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Kv {
            protocol,
            replicas,
            primary,
            op,
        } => {
            if primary >= replicas.len() {
                eprintln!(
                    "error: --primary {primary} is not one of the {} replicas",
                    replicas.len()
                );
                return ExitCode::from(3);
            }
            let system = Rc::new(FourStage::new(protocol, EngineConfig::default()));
            match serve::call(system, replicas, primary, &op.into()) {
                Ok(Completion::Ok(value)) => {
                    println!("ok {}", value.as_deref().unwrap_or(""));
                    ExitCode::SUCCESS
                }
                Ok(Completion::Fail(reason)) => {
                    println!("fail {reason}");
                    ExitCode::FAILURE
                }
                Ok(Completion::Info(reason)) => {
                    println!("info {reason}");
                    ExitCode::from(2)
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(3)
                }
            }
        }
        Command::Check {
            file,
            format,
            initial,
            time_limit,
        } => {
            let options = CheckOptions {
                format,
                initial,
                limits: SearchLimits {
                    time_limit: Some(std::time::Duration::from_secs_f64(time_limit.max(0.0))),
                    ..SearchLimits::default()
                },
            };
            match check_file(&file, &options) {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::from(report.exit_code() as u8)
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(CheckError::EXIT_CODE as u8)
                }
            }
        }
        Command::Replay {
            file,
            history,
            record,
        } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("error: cannot read {}: {error}", file.display());
                    return ExitCode::from(3);
                }
            };
            match Scenario::from_json(&text) {
                Ok(scenario) => {
                    let files = OutputFiles {
                        history: history.as_deref(),
                        record: record.then_some(file.as_path()),
                    };
                    run_and_report(
                        &scenario,
                        &format!("replisim replay {}", file.display()),
                        files,
                    )
                }
                Err(error) => {
                    eprintln!("error: {}: {error}", file.display());
                    ExitCode::from(3)
                }
            }
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
fn run_and_report(scenario: &Scenario, command_line: &str, files: OutputFiles) -> ExitCode {
    let outcome = match sim::run(scenario) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(3);
        }
    };
    if let Some(path) = files.history {
        let json = serde_json::to_string_pretty(&outcome.history).expect("histories serialise");
        if let Err(error) = std::fs::write(path, json) {
            eprintln!(
                "error: cannot write the history to {}: {error}",
                path.display()
            );
            return ExitCode::from(3);
        }
    }
    let verdicts = outcome.verdicts();
    println!("{}", summary(&outcome));
    println!("{verdicts}");
    for phase in outcome.phases() {
        println!("  {phase}");
    }
    if !outcome.stats.effects.is_empty() {
        let effects: Vec<String> = outcome
            .stats
            .effects
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("effects: {}", effects.join(" "));
    }
    println!("digest: {}", outcome.digest_hex());
    if let Some(file) = files.record {
        let mut recorded = scenario.clone();
        recorded.recorded_digest = Some(outcome.digest_hex());
        if let Err(error) = std::fs::write(file, recorded.to_json() + "\n") {
            eprintln!("error: cannot write {}: {error}", file.display());
            return ExitCode::from(3);
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
    let mode = scenario.mode().expect("run() accepted a built-in protocol");
    let system = Rc::new(FourStage::new(mode, scenario.engine));
    match repro::save_failure(&outcome, system, &repro::output_dir()) {
        Ok(saved) => {
            println!("scenario saved: {}", saved.scenario_file.display());
            println!("trace written:  {}", saved.trace_file.display());
            println!("reproduce with: {command_line}");
            println!(
                "            or: replisim replay {}",
                saved.scenario_file.display()
            );
        }
        Err(error) => {
            eprintln!("warning: could not save the failure: {error}");
            println!("reproduce with: {command_line}");
        }
    }
    ExitCode::FAILURE
}

fn summary(outcome: &Outcome) -> String {
    let s = &outcome.scenario;
    let faults: Vec<String> = s.faults.iter().map(ToString::to_string).collect();
    format!(
        "protocol {} | seed {} | {} replicas, {} clients x {} ops | faults: {} | simulated {} ms, {} trace events",
        s.protocol,
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
    )
}
