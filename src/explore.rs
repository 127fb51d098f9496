//! The seed sweep: many random scenarios per built-in protocol, run side by
//! side, summarised as a measured map of what each pattern keeps and loses.
//!
//! Scenarios come from [`crate::strategy::ScenarioSpace`] with one runner
//! seed, so a sweep is reproducible from its seed. Runs are spread over the
//! machine's cores (each simulation stays on one thread); the report does
//! not depend on how many. The first violation of each protocol is saved
//! with its trace, ready for `replisim replay`.

use std::{fmt, path::PathBuf, thread};

use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};

use crate::{
    check::availability::Counts,
    sim::{self, RunError, Scenario, ScenarioError, repro},
    strategy::{FaultKinds, ScenarioSpace},
    testing::HOLDS_LIMITS,
};

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Built-in protocol names (`sync`, `semi-sync:K`, `async`).
    pub protocols: Vec<String>,
    pub runs: usize,
    pub kinds: FaultKinds,
    /// A name for `kinds`, for the report.
    pub faults: String,
    pub seed: u64,
    /// Worker threads (1 runs everything on the caller's thread).
    pub threads: usize,
}

/// One protocol's row of the map.
#[derive(Debug, Clone, Default)]
pub struct ProtocolSummary {
    pub protocol: String,
    pub runs: usize,
    /// Runs in which each check found a violation.
    pub linearizability_violations: usize,
    pub durability_violations: usize,
    pub convergence_violations: usize,
    /// Runs in which a check could not decide (search limits).
    pub unknown: usize,
    pub overall: Counts,
    pub during_faults: Counts,
    /// The first violating run, saved for `replisim replay`.
    pub first_violation: Option<PathBuf>,
}

/// A whole sweep.
#[derive(Debug, Clone)]
pub struct SweepReport {
    pub seed: u64,
    pub faults: String,
    pub protocols: Vec<ProtocolSummary>,
}

/// The result of one run, small enough to send between threads.
struct RunResult {
    linearizability: bool,
    durability: bool,
    convergence: bool,
    unknown: bool,
    overall: Counts,
    during_faults: Counts,
    saved: Option<PathBuf>,
}

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot draw scenarios: {0}")]
    Draw(String),
}

/// Draws `runs` scenarios for `protocol`; the same seed draws the same ones.
pub fn draw(
    protocol: &str,
    kinds: &FaultKinds,
    runs: usize,
    seed: u64,
) -> Result<Vec<Scenario>, SweepError> {
    let strategy = ScenarioSpace::new(protocol, kinds.clone()).strategy();
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    (0..runs)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .map(|tree| tree.current())
                .map_err(|reason| SweepError::Draw(reason.to_string()))
        })
        .collect()
}

/// Runs the sweep. `progress` is called after every run with (done, total).
pub fn sweep(
    config: &SweepConfig,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<SweepReport, SweepError> {
    let mut protocols = Vec::new();
    let total = config.runs * config.protocols.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    for protocol in &config.protocols {
        let scenarios = draw(protocol, &config.kinds, config.runs, config.seed)?;
        let threads = config.threads.max(1);
        let results: Vec<Result<RunResult, SweepError>> = thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|w| {
                    let scenarios = &scenarios;
                    let done = &done;
                    let progress = &progress;
                    scope.spawn(move || {
                        scenarios
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| i % threads == w)
                            .map(|(i, scenario)| {
                                let result = run_one(scenario);
                                progress(
                                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                                    total,
                                );
                                (i, result)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut all: Vec<_> = workers
                .into_iter()
                .flat_map(|w| w.join().expect("a sweep worker panicked"))
                .collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, r)| r).collect()
        });
        let mut summary = ProtocolSummary {
            protocol: protocol.clone(),
            ..ProtocolSummary::default()
        };
        for result in results {
            let r = result?;
            summary.runs += 1;
            summary.linearizability_violations += usize::from(r.linearizability);
            summary.durability_violations += usize::from(r.durability);
            summary.convergence_violations += usize::from(r.convergence);
            summary.unknown += usize::from(r.unknown);
            add(&mut summary.overall, r.overall);
            add(&mut summary.during_faults, r.during_faults);
            if summary.first_violation.is_none() {
                summary.first_violation = r.saved;
            }
        }
        protocols.push(summary);
    }
    Ok(SweepReport {
        seed: config.seed,
        faults: config.faults.clone(),
        protocols,
    })
}

fn add(total: &mut Counts, more: Counts) {
    total.ok += more.ok;
    total.fail += more.fail;
    total.info += more.info;
}

fn run_one(scenario: &Scenario) -> Result<RunResult, SweepError> {
    let system = sim::builtin_system(scenario)?;
    let outcome = sim::run_system(scenario, system.clone())?;
    let verdicts = outcome.verdicts_within(&HOLDS_LIMITS);
    let saved = if verdicts.violated() {
        let dir = repro::output_dir().join("explore");
        repro::save_failure(&outcome, system, &dir)
            .ok()
            .map(|saved| saved.scenario_file)
    } else {
        None
    };
    Ok(RunResult {
        linearizability: verdicts.linearizability.is_violation(),
        durability: verdicts.durability.is_violation(),
        convergence: verdicts.convergence.is_violation(),
        unknown: [
            matches!(verdicts.linearizability, crate::check::Verdict::Unknown(_)),
            matches!(verdicts.durability, crate::check::Verdict::Unknown(_)),
            matches!(verdicts.convergence, crate::check::Verdict::Unknown(_)),
        ]
        .contains(&true),
        overall: verdicts.availability.overall,
        during_faults: verdicts.availability.during_faults,
        saved,
    })
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} | faults {}", self.seed, self.faults)?;
        writeln!(
            f,
            "{:<12} {:>5} {:>13} {:>10} {:>11} {:>8} {:>8} {:>15}",
            "protocol",
            "runs",
            "linearizable",
            "durable",
            "convergent",
            "unknown",
            "ok",
            "ok under fault"
        )?;
        for p in &self.protocols {
            let held = |violations: usize| format!("{}/{}", p.runs - violations, p.runs);
            writeln!(
                f,
                "{:<12} {:>5} {:>13} {:>10} {:>11} {:>8} {:>7.1}% {:>14.1}%",
                p.protocol,
                p.runs,
                held(p.linearizability_violations),
                held(p.durability_violations),
                held(p.convergence_violations),
                p.unknown,
                p.overall.ok_ratio() * 100.0,
                p.during_faults.ok_ratio() * 100.0
            )?;
        }
        for p in &self.protocols {
            if let Some(file) = &p.first_violation {
                writeln!(
                    f,
                    "{}: first violation saved; rerun with: replisim replay {}",
                    p.protocol,
                    file.display()
                )?;
            }
        }
        Ok(())
    }
}
