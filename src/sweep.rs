//! The seed sweep: many random scenarios per system, run side by side,
//! summarised as a measured map of what each system keeps and loses.
//!
//! Scenarios come from [`crate::strategy::ScenarioSpace`], fitted to each
//! system's declaration and drawn by the sweep's [`Search`] mode, with one
//! runner seed: a sweep is reproducible from its seed, and every system
//! sees the same seeds. Random and swarm cases are drawn up front;
//! guided cases ([`crate::guided`]) eight at a time, each batch from what
//! the earlier ones reached (so the cases do not depend on the number of
//! threads either). A guided sweep cannot be sharded
//! ([`SweepError::AdaptiveShard`]). Runs are spread over the
//! machine's cores (each simulation stays on one thread); the summary does
//! not depend on how many. The first violation of each system is saved
//! with its trace, ready for `replisim replay`.
//!
//! A sweep can be cut into disjoint shards ([`Shard`]): shard `I/N` runs
//! the scenarios whose index is `I-1` modulo `N`, so the shards of one sweep
//! run on different machines and [`SweepSummary::merge`] adds their
//! summaries up to exactly the unsharded sweep's counts. That holds because
//! no verdict depends on wall-clock time: the linearizability search runs
//! within a deterministic budget ([`SearchLimits::DETERMINISTIC`]).
//!
//! The summary is data ([`SweepSummary`], serialised by `replisim explore
//! --json`): `{"seed":…, "options":{…}, "systems":[{"system":"sync",
//! "bug":null, "runs":200, "claims":[…], "checks":{"linearizable":{"ok":…,
//! "violated":…, "unknown":…}, …}, "faults":{"crash":{"fired":…,
//! "effective":…}, …}, "exits":{"expected":…, "unexpected":…},
//! "convergence":{"converged":…, "total_ms":…, "max_ms":…},
//! "staleness":{"reads":…, "stale":…, "versions_missed":…,
//! "max_versions":…, "behind_ms":…, "max_behind_ms":…} (or null),
//! "first_violation":"PATH or null", …}]}` (a fault count also has
//! `"not_applicable"` when some firings could not apply; `exits` counts the
//! replicas' exits over all runs, see [`crate::check::exits`];
//! `convergence` how long after the last heal the replicas agreed, in the
//! runs where they did; `staleness` how many clients' reads missed an
//! acknowledged write and by how much, see [`crate::check::staleness`];
//! `"buggify":{"LABEL":{"reached":…, "hits":…}, …}`
//! counts each `buggify!` point of the binary, hits being
//! firings, see [`crate::points`]; `"sometimes"` each `sometimes!`
//! assertion, hits being the times it held).
//! The printed summary ends with a warning per system whose sweep had
//! inert fault kinds: fired, and never effective in any run; with
//! `--buggify` ([`SweepOptions::buggify`]) a line per system gives its
//! points' firings, and a warning names the points no run reached (in
//! the crates whose points the system's code reached at all); a
//! warning names the `sometimes!` assertions that never held.

use std::{
    collections::BTreeMap,
    fmt,
    path::PathBuf,
    str::FromStr,
    sync::atomic::{AtomicUsize, Ordering},
    thread,
};

use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::Config,
};
use serde::{Deserialize, Serialize};

use crate::{
    check::{
        Guarantee, availability::Counts, exits::ExitCounts, linearizable::SearchLimits,
        staleness::Staleness, stats,
    },
    guided::{Cases, DrawError, Reached},
    points::{self, Kind, PointCount},
    registry::{Registry, SystemError},
    sim::{self, Buggify, FaultCount, RunError, RunOptions, Scenario, Status, inert_faults, repro},
    strategy::{FaultKinds, ScenarioSpace, Search, seeded_runner},
};

/// One of `count` disjoint slices of a sweep (1-based `index`), written
/// `I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Whether scenario number `i` belongs to this shard.
    pub fn contains(self, i: usize) -> bool {
        i % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a shard I/N with 1 <= I <= N");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let shard = Shard {
            index: index.trim().parse().map_err(|_| bad())?,
            count: count.trim().parse().map_err(|_| bad())?,
        };
        match (1..=shard.count).contains(&shard.index) {
            true => Ok(shard),
            false => Err(bad()),
        }
    }
}

impl TryFrom<String> for Shard {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Shard> for String {
    fn from(shard: Shard) -> Self {
        shard.to_string()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a sweep draws: the same options draw the same scenarios.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepOptions {
    /// Scenarios drawn per system (before sharding).
    pub runs: usize,
    /// The fault preset's name.
    pub faults: String,
    /// Up to this many faults strike at the same moment.
    pub simultaneous: usize,
    /// How the scenarios are drawn (summaries written before the modes
    /// existed were random).
    #[serde(default)]
    pub search: Search,
    /// The slice of the sweep a summary covers.
    pub shard: Shard,
    /// `buggify!` points fire at [`Buggify::default`]'s rates in every
    /// scenario (summaries written before buggify existed had none).
    #[serde(default)]
    pub buggify: bool,
}

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Where the systems come from.
    pub registry: Registry,
    /// System names, as the registry knows them.
    pub systems: Vec<String>,
    /// A planted bug built into every system swept.
    pub bug: Option<String>,
    pub options: SweepOptions,
    pub seed: u64,
    /// Worker threads (1 runs everything on the caller's thread).
    pub threads: usize,
}

/// Runs of one check, by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCounts {
    pub ok: usize,
    pub violated: usize,
    pub unknown: usize,
}

impl CheckCounts {
    fn count(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Violated => self.violated += 1,
            Status::Unknown => self.unknown += 1,
        }
    }

    fn add(&mut self, other: CheckCounts) {
        self.ok += other.ok;
        self.violated += other.violated;
        self.unknown += other.unknown;
    }
}

/// Operation outcomes over a system's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityCounts {
    pub overall: Counts,
    /// Operations invoked while a fault was active.
    pub during_faults: Counts,
}

impl AvailabilityCounts {
    fn add(&mut self, other: AvailabilityCounts) {
        for (total, more) in [
            (&mut self.overall, other.overall),
            (&mut self.during_faults, other.during_faults),
        ] {
            total.ok += more.ok;
            total.fail += more.fail;
            total.info += more.info;
        }
    }
}

/// The time from the last heal to the replicas' agreement
/// ([`crate::sim::RunStats::converged_after_ms`]) over a sweep's runs, in
/// a form that adds up across shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvergenceTimes {
    /// Runs whose replicas agreed by the end of the quiet period.
    pub converged: usize,
    /// The sum and the largest of their times, ms.
    pub total_ms: u64,
    pub max_ms: u64,
}

impl ConvergenceTimes {
    fn count(&mut self, converged_after_ms: Option<u64>) {
        if let Some(ms) = converged_after_ms {
            self.add(ConvergenceTimes {
                converged: 1,
                total_ms: ms,
                max_ms: ms,
            });
        }
    }

    fn add(&mut self, other: ConvergenceTimes) {
        self.converged += other.converged;
        self.total_ms += other.total_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
    }
}

/// One system's row of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemSummary {
    /// The name as given on the command line.
    pub system: String,
    /// The planted bug, if any (never part of `system`).
    pub bug: Option<String>,
    pub runs: usize,
    /// The guarantees the system claims; only these count as its failures.
    pub claims: Vec<Guarantee>,
    /// Every check, claimed or not, by name.
    pub checks: BTreeMap<String, CheckCounts>,
    /// Faults fired, effective and not applicable over all runs, by kind.
    pub faults: BTreeMap<String, FaultCount>,
    pub availability: AvailabilityCounts,
    /// The replicas' exits over all runs, expected and not.
    #[serde(default)]
    pub exits: ExitCounts,
    /// How long after the last heal the replicas came to agree.
    #[serde(default)]
    pub convergence: ConvergenceTimes,
    /// The first run (in scenario order) that violated a claimed guarantee,
    /// saved for `replisim replay` (its HTML report beside it, `.html`).
    pub first_violation: Option<PathBuf>,
    /// That run's index in the sweep.
    pub first_violation_run: Option<usize>,
    /// After every loss of the role holder (leader, primary) in every run,
    /// the simulated ms to the next acknowledged write, sorted.
    #[serde(default)]
    pub recovery_ms: Vec<u64>,
    /// Each `buggify!` point of the binary: times reached, and
    /// `hits`, times fired, over all runs (never-reached points at 0).
    #[serde(default)]
    pub buggify: BTreeMap<String, PointCount>,
    /// Each `sometimes!` assertion of the binary: times reached, and
    /// `hits`, times it held, over all runs (never-reached ones at 0).
    #[serde(default)]
    pub sometimes: BTreeMap<String, PointCount>,
    /// How stale the clients' reads were over all runs whose history a
    /// staleness check can judge (a register's), `None` when none could.
    #[serde(default)]
    pub staleness: Option<Staleness>,
}

impl SystemSummary {
    fn new(system: &str, bug: Option<&str>, claims: Vec<Guarantee>) -> Self {
        SystemSummary {
            system: system.to_string(),
            bug: bug.map(str::to_string),
            runs: 0,
            claims,
            checks: BTreeMap::new(),
            faults: BTreeMap::new(),
            availability: AvailabilityCounts::default(),
            exits: ExitCounts::default(),
            convergence: ConvergenceTimes::default(),
            first_violation: None,
            first_violation_run: None,
            recovery_ms: Vec::new(),
            buggify: points::declared(Kind::Buggify, &points::crates(true)),
            sometimes: points::declared(Kind::Sometimes, &points::crates(true)),
            staleness: None,
        }
    }

    fn add_staleness(&mut self, other: Option<Staleness>) {
        if let Some(other) = other {
            self.staleness.get_or_insert_default().add(other);
        }
    }

    /// Runs in which `guarantee` was violated.
    pub fn violations(&self, guarantee: Guarantee) -> usize {
        self.checks.get(guarantee.name()).map_or(0, |c| c.violated)
    }

    /// Adds another summary of the same system.
    fn add(&mut self, other: &SystemSummary) {
        self.runs += other.runs;
        for (name, counts) in &other.checks {
            self.checks.entry(name.clone()).or_default().add(*counts);
        }
        for (kind, count) in &other.faults {
            self.faults.entry(kind.clone()).or_default().add(*count);
        }
        self.availability.add(other.availability);
        self.exits.add(other.exits);
        self.convergence.add(other.convergence);
        self.recovery_ms.extend(&other.recovery_ms);
        self.recovery_ms.sort_unstable();
        points::add_counts(&mut self.buggify, &other.buggify);
        points::add_counts(&mut self.sometimes, &other.sometimes);
        self.add_staleness(other.staleness);
        let earlier = match (other.first_violation_run, self.first_violation_run) {
            (Some(theirs), Some(ours)) => theirs < ours,
            (theirs, ours) => theirs.is_some() && ours.is_none(),
        };
        if earlier {
            self.first_violation = other.first_violation.clone();
            self.first_violation_run = other.first_violation_run;
        }
    }
}

/// A whole sweep (or one shard of it, or merged shards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub seed: u64,
    pub options: SweepOptions,
    pub systems: Vec<SystemSummary>,
}

/// The result of one run, small enough to send between threads.
struct RunResult {
    statuses: Vec<(Guarantee, Status)>,
    faults: BTreeMap<String, FaultCount>,
    availability: AvailabilityCounts,
    exits: ExitCounts,
    converged_after_ms: Option<u64>,
    recovery_ms: Vec<u64>,
    buggify: BTreeMap<String, PointCount>,
    sometimes: BTreeMap<String, PointCount>,
    staleness: Option<Staleness>,
    violated: bool,
    /// What the run reached, for guided search.
    reached: Reached,
}

/// Why a sweep could not run or summaries could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    System(#[from] SystemError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot draw scenarios: {0}")]
    Draw(String),
    /// An adaptive search mode asked for one shard: its cases depend on
    /// the results of earlier ones, which another shard runs.
    #[error(
        "{0} search is adaptive (each case depends on earlier results), so its shards would not add \
         up to one sweep: run it unsharded, or shard a random or swarm sweep"
    )]
    AdaptiveShard(Search),
    #[error("cannot merge: {0}")]
    Merge(String),
}

/// Draws `runs` scenarios from `space`; the same seed draws the same ones.
pub fn draw(space: &ScenarioSpace, runs: usize, seed: u64) -> Result<Vec<Scenario>, SweepError> {
    let strategy = space.strategy();
    let mut runner = seeded_runner(Config::default(), seed);
    (0..runs)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .map(|tree| tree.current())
                .map_err(|reason| SweepError::Draw(reason.to_string()))
        })
        .collect()
}

/// Runs the sweep (this shard of it). `progress` is called after every run
/// with (done, total).
pub fn sweep(
    config: &SweepConfig,
    kinds: &FaultKinds,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<SweepSummary, SweepError> {
    let options = &config.options;
    if options.search.is_adaptive() && options.shard != Shard::ALL {
        return Err(SweepError::AdaptiveShard(options.search));
    }
    let in_shard = (0..options.runs)
        .filter(|&i| options.shard.contains(i))
        .count();
    let total = in_shard * config.systems.len();
    let done = AtomicUsize::new(0);
    let mut systems = Vec::new();
    for name in &config.systems {
        let bug = config.bug.as_deref();
        let system = config.registry.build(name, &serde_json::Value::Null, bug)?;
        let mut space = ScenarioSpace::new(name, kinds.clone())
            .declared_by(&*system)
            .search(options.search);
        if options.buggify {
            space = space.buggify(Buggify::default());
        }
        space.bug = config.bug.clone();
        let ran = || progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        let (scenarios, results) = match options.search.is_adaptive() {
            true => run_guided(config, &space, &ran)?,
            false => {
                let scenarios: Vec<(usize, Scenario)> = draw(&space, options.runs, config.seed)?
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| options.shard.contains(*i))
                    .collect();
                let results = run_all(config, &scenarios, RunOptions::default(), &ran);
                (scenarios, results)
            }
        };
        let mut summary = SystemSummary::new(name, bug, system.declaration().claims);
        for (i, result) in results {
            let r = result?;
            summary.runs += 1;
            for (guarantee, status) in r.statuses {
                summary
                    .checks
                    .entry(guarantee.name().to_string())
                    .or_default()
                    .count(status);
            }
            for (kind, count) in r.faults {
                summary.faults.entry(kind).or_default().add(count);
            }
            summary.availability.add(r.availability);
            summary.exits.add(r.exits);
            summary.convergence.count(r.converged_after_ms);
            summary.recovery_ms.extend(r.recovery_ms);
            points::add_counts(&mut summary.buggify, &r.buggify);
            points::add_counts(&mut summary.sometimes, &r.sometimes);
            summary.add_staleness(r.staleness);
            if r.violated && summary.first_violation_run.is_none() {
                summary.first_violation_run = Some(i);
            }
        }
        summary.recovery_ms.sort_unstable();
        // Only the first violation is saved: its trace and report mean a
        // recorded rerun, which the other violations need not pay for.
        if let Some(i) = summary.first_violation_run {
            let scenario = scenarios.iter().find(|(j, _)| *j == i).map(|(_, s)| s);
            summary.first_violation = scenario.and_then(|s| save_violation(&config.registry, s));
        }
        systems.push(summary);
    }
    Ok(SweepSummary {
        seed: config.seed,
        options: options.clone(),
        systems,
    })
}

/// Cases guided search draws at a time, run side by side before their
/// coverage is fed back in order: fixed, so that a guided sweep draws the
/// same cases on any number of threads.
const GUIDED_BATCH: usize = 8;

/// Guided search's `runs` cases: drawn [`GUIDED_BATCH`] at a time from
/// what the earlier batches reached; the cases and their results, in order.
#[allow(clippy::type_complexity)]
fn run_guided(
    config: &SweepConfig,
    space: &ScenarioSpace,
    ran: &(dyn Fn() + Sync),
) -> Result<
    (
        Vec<(usize, Scenario)>,
        Vec<(usize, Result<RunResult, SweepError>)>,
    ),
    SweepError,
> {
    let mut cases = Cases::new(space, config.seed);
    let (mut scenarios, mut results) = (Vec::new(), Vec::new());
    while scenarios.len() < config.options.runs {
        let first = scenarios.len();
        let batch = (first..config.options.runs.min(first + GUIDED_BATCH))
            .map(|i| Ok((i, cases.next_case()?)))
            .collect::<Result<Vec<_>, DrawError>>()
            .map_err(|e| SweepError::Draw(e.to_string()))?;
        let done = run_all(config, &batch, cases.run_options(), ran);
        for ((_, scenario), (_, result)) in batch.iter().zip(&done) {
            if let Ok(result) = result {
                cases.ran(scenario, &result.reached);
            }
        }
        scenarios.extend(batch);
        results.extend(done);
    }
    Ok((scenarios, results))
}

/// Runs `scenarios` on the configured threads; results in scenario order.
fn run_all(
    config: &SweepConfig,
    scenarios: &[(usize, Scenario)],
    options: RunOptions,
    ran: &(dyn Fn() + Sync),
) -> Vec<(usize, Result<RunResult, SweepError>)> {
    let threads = config.threads.max(1);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                scope.spawn(move || {
                    scenarios
                        .iter()
                        .enumerate()
                        .filter(|(n, _)| n % threads == w)
                        .map(|(_, (i, scenario))| {
                            let result = run_one(&config.registry, scenario, options);
                            ran();
                            (*i, result)
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
        all
    })
}

fn run_one(
    registry: &Registry,
    scenario: &Scenario,
    options: RunOptions,
) -> Result<RunResult, SweepError> {
    let outcome = sim::run_with(scenario, registry.system_for(scenario)?, options)?;
    let verdicts = outcome.verdicts_within(&SearchLimits::DETERMINISTIC);
    let reached = Reached::of(&outcome);
    let recovery_ms = outcome
        .recovery_times()
        .into_iter()
        .map(|ns| ns / 1_000_000)
        .collect();
    Ok(RunResult {
        statuses: Guarantee::ALL
            .into_iter()
            .map(|g| (g, verdicts.status(g)))
            .collect(),
        faults: outcome.stats.faults,
        exits: outcome.stats.exits,
        converged_after_ms: outcome.stats.converged_after_ms,
        availability: AvailabilityCounts {
            overall: verdicts.availability.overall,
            during_faults: verdicts.availability.during_faults,
        },
        recovery_ms,
        buggify: outcome.stats.buggify,
        sometimes: outcome.stats.sometimes,
        staleness: verdicts.staleness,
        violated: verdicts.violated(),
        reached,
    })
}

/// Runs a violating scenario again and saves it with its trace and report;
/// the scenario file, if saving worked.
fn save_violation(registry: &Registry, scenario: &Scenario) -> Option<PathBuf> {
    let system = registry.system_for(scenario).ok()?;
    let outcome = sim::run_system(scenario, system.clone()).ok()?;
    let dir = repro::output_dir().join("explore");
    repro::save_failure(&outcome, system, &dir, crate::report::render_outcome)
        .ok()
        .map(|saved| saved.scenario_file)
}

impl SweepSummary {
    /// Adds up summaries of one sweep (its shards): they must share the
    /// seed and the options other than the shard, and cover disjoint shards.
    pub fn merge(parts: &[SweepSummary]) -> Result<SweepSummary, SweepError> {
        let Some(first) = parts.first() else {
            return Err(SweepError::Merge("no summaries given".into()));
        };
        let mut merged = SweepSummary {
            seed: first.seed,
            options: first.options.clone(),
            systems: Vec::new(),
        };
        let mut shards = Vec::new();
        for part in parts {
            let same = SweepOptions {
                shard: first.options.shard,
                ..part.options.clone()
            };
            if part.seed != first.seed || same != first.options {
                return Err(SweepError::Merge(format!(
                    "the summaries come from different sweeps (seed {} with {:?}, seed {} with {:?})",
                    first.seed, first.options, part.seed, part.options
                )));
            }
            if shards.contains(&part.options.shard) {
                return Err(SweepError::Merge(format!(
                    "shard {} is given twice",
                    part.options.shard
                )));
            }
            shards.push(part.options.shard);
            for system in &part.systems {
                let row = merged
                    .systems
                    .iter_mut()
                    .find(|s| s.system == system.system && s.bug == system.bug);
                match row {
                    Some(row) => row.add(system),
                    None => merged.systems.push(system.clone()),
                }
            }
        }
        let count = first.options.shard.count;
        merged.options.shard = if shards.len() == count && shards.iter().all(|s| s.count == count) {
            Shard::ALL
        } else {
            first.options.shard
        };
        Ok(merged)
    }
}

impl fmt::Display for SweepSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        write!(
            f,
            "seed {} | {} search | faults {} (up to {} at once)",
            self.seed, o.search, o.faults, o.simultaneous
        )?;
        if o.shard != Shard::ALL {
            write!(f, " | shard {}", o.shard)?;
        }
        writeln!(f)?;
        let names: Vec<String> = self
            .systems
            .iter()
            .map(|s| match &s.bug {
                Some(bug) => format!("{} [{bug}]", s.system),
                None => s.system.clone(),
            })
            .collect();
        let width = names.iter().map(String::len).max().unwrap_or(0).max(6);
        writeln!(
            f,
            "{:<width$} {:>5} {:>13} {:>10} {:>11} {:>10} {:>19} {:>14} {:>14} {:>17} {:>16} {:>8} {:>8} {:>15}",
            "system",
            "runs",
            "linearizable",
            "durable",
            "convergent",
            "live",
            "no-unexpected-exit",
            "log-agreement",
            "no-stale-read",
            "read-your-writes",
            "exclusive-roles",
            "unknown",
            "ok",
            "ok under fault"
        )?;
        for (s, name) in self.systems.iter().zip(&names) {
            // Held out of runs; in parentheses when not claimed; `-` when
            // never decided (a check with nothing to judge: no published log).
            let held = |g: Guarantee| {
                if s.checks
                    .get(g.name())
                    .is_none_or(|c| c.ok + c.violated == 0)
                {
                    return "-".to_string();
                }
                let text = format!("{}/{}", s.runs - s.violations(g), s.runs);
                match s.claims.contains(&g) {
                    true => text,
                    false => format!("({text})"),
                }
            };
            let unknown: usize = s
                .claims
                .iter()
                .filter_map(|g| s.checks.get(g.name()))
                .map(|c| c.unknown)
                .sum();
            writeln!(
                f,
                "{:<width$} {:>5} {:>13} {:>10} {:>11} {:>10} {:>19} {:>14} {:>14} {:>17} {:>16} {:>8} {:>7.1}% {:>14.1}%",
                name,
                s.runs,
                held(Guarantee::Linearizable),
                held(Guarantee::Durable),
                held(Guarantee::Convergent),
                held(Guarantee::Live),
                held(Guarantee::NoUnexpectedExit),
                held(Guarantee::LogAgreement),
                held(Guarantee::NoStaleRead),
                held(Guarantee::ReadYourWrites),
                held(Guarantee::ExclusiveRoles),
                unknown,
                s.availability.overall.ok_ratio() * 100.0,
                s.availability.during_faults.ok_ratio() * 100.0
            )?;
        }
        for s in &self.systems {
            if let Some(l) = stats::percentiles(s.recovery_ms.clone()) {
                writeln!(
                    f,
                    "{}: after the loss of its leader/primary ({} times), the next acknowledged write came in p50 {} ms, p99 {} ms",
                    s.system,
                    s.recovery_ms.len(),
                    l.p50,
                    l.p99
                )?;
            }
        }
        for s in &self.systems {
            if let Some(staleness) = s.staleness.filter(|st| st.stale > 0) {
                writeln!(f, "{}: staleness: {staleness}", s.system)?;
            }
        }
        for s in &self.systems {
            if let Some(file) = &s.first_violation {
                writeln!(
                    f,
                    "{}: first violation saved; rerun with: replisim replay {}\n{}: report: {}",
                    s.system,
                    file.display(),
                    s.system,
                    file.with_extension("html").display()
                )?;
            }
        }
        for s in &self.systems {
            let c = s.convergence;
            if c.converged > 0 {
                writeln!(
                    f,
                    "{}: replicas agreed after the last heal in {}/{} runs, within {:.1} ms on average, {} ms at most",
                    s.system,
                    c.converged,
                    s.runs,
                    c.total_ms as f64 / c.converged as f64,
                    c.max_ms
                )?;
            }
        }
        for s in &self.systems {
            if s.exits != ExitCounts::default() {
                writeln!(f, "{}: replica exits: {}", s.system, s.exits)?;
            }
        }
        for s in self.systems.iter().filter(|_| self.options.buggify) {
            let fired: Vec<String> = s
                .buggify
                .iter()
                .filter(|(_, count)| count.reached > 0)
                .map(|(label, count)| format!("{label}={count}"))
                .collect();
            if !fired.is_empty() {
                writeln!(
                    f,
                    "{}: buggify fired/reached: {}",
                    s.system,
                    fired.join(" ")
                )?;
            }
            let never = points::never_reached_where_run(&s.buggify);
            if !never.is_empty() {
                writeln!(
                    f,
                    "warning: {}: buggify points never reached in {} runs: {}",
                    s.system,
                    s.runs,
                    never.join(", ")
                )?;
            }
        }
        for s in &self.systems {
            let never: Vec<&String> = s
                .sometimes
                .iter()
                .filter(|(_, count)| count.hits == 0)
                .map(|(name, _)| name)
                .collect();
            if !never.is_empty() {
                writeln!(
                    f,
                    "warning: {}: sometimes! assertions that never held in {} runs: {never:?}",
                    s.system, s.runs
                )?;
            }
        }
        for s in &self.systems {
            if let Some(inert) = inert_faults(&s.faults) {
                writeln!(
                    f,
                    "warning: {}: fault kinds that fired and were never effective in {} runs: {inert}",
                    s.system, s.runs
                )?;
            }
        }
        Ok(())
    }
}
