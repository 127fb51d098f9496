//! What one exploration did: [`Exploration`] (runs and their faults, which
//! the explorer returns and judges for inert kinds; "sometimes" properties;
//! `buggify!` points reached and fired), and the line it
//! prints: cases run, unknown verdicts, faults fired and effective per kind,
//! the replicas' exits (expected and unexpected), "sometimes" properties,
//! buggify points, wall time and cases per
//! second; and, when it failed, at which case and
//! how long shrinking took.

use std::{cell::RefCell, collections::BTreeMap, fmt, time::Instant};

use crate::{
    check::exits::ExitCounts,
    points::{self, Kind, PointCount},
    sim::{FaultCount, Outcome},
};

/// What an exploration ran: how many runs, and the faults of all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exploration {
    /// Runs: the corpus's scenarios and the cases explored.
    pub runs: u64,
    /// Faults fired, effective and not applicable, by kind, over every run.
    pub faults: BTreeMap<String, FaultCount>,
    /// The replicas' exits over every run, expected and unexpected.
    pub exits: ExitCounts,
    /// Per "sometimes" property ([`super::Explorer::sometimes`]), the runs
    /// in which it held.
    pub sometimes: BTreeMap<String, u64>,
    /// Per `buggify!` point of the code explored (every one declared there,
    /// and any other reached), times reached and fired over every run.
    pub buggify: BTreeMap<String, PointCount>,
}

impl Exploration {
    /// The kinds that fired and were never effective in any run.
    pub fn inert(&self) -> Vec<&str> {
        self.faults
            .iter()
            .filter(|(_, count)| count.is_inert())
            .map(|(kind, _)| kind.as_str())
            .collect()
    }

    /// Starts the accounting: the explorer's own "sometimes" properties
    /// and the `sometimes!` and `buggify!` points of the `modules` explored,
    /// each held or reached in no run yet.
    pub(super) fn declare<'a>(
        &mut self,
        sometimes: impl Iterator<Item = &'a String>,
        modules: &[String],
    ) {
        let in_code = points::registered(Kind::Sometimes, modules);
        for name in sometimes
            .cloned()
            .chain(in_code.iter().map(|point| point.label()))
        {
            self.sometimes.insert(name, 0);
        }
        self.buggify = points::declared(Kind::Buggify, modules);
    }

    /// The "sometimes" properties that held in no run, a `sometimes!`
    /// of the `modules` explored with its place in the code.
    pub(super) fn never_held(&self, modules: &[String]) -> Vec<String> {
        let in_code = points::registered(Kind::Sometimes, modules);
        self.sometimes
            .iter()
            .filter(|(_, held)| **held == 0)
            .map(
                |(name, _)| match in_code.iter().find(|point| point.label() == *name) {
                    Some(point) => format!("{name} (sometimes! at {}:{})", point.file, point.line),
                    None => name.clone(),
                },
            )
            .collect()
    }

    /// The `buggify!` points declared in the code explored that no run
    /// reached.
    pub fn unreached_points(&self) -> Vec<String> {
        points::never_reached(&self.buggify)
    }

    pub(super) fn add(&mut self, outcome: &Outcome) {
        self.runs += 1;
        points::add_counts(&mut self.buggify, &outcome.stats.buggify);
        for (kind, count) in &outcome.stats.faults {
            self.faults.entry(kind.clone()).or_default().add(*count);
        }
        self.exits.add(outcome.stats.exits);
    }
}

/// `N runs; faults fired/effective: crash=3/2 duplicate=not applicable (1
/// fired); exits: 2 expected, 0 unexpected; sometimes (runs held):
/// "a failover"=4; buggify fired/reached: slow reply at src/store.rs:40=3/57`.
impl fmt::Display for Exploration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} runs; faults fired/effective:", self.runs)?;
        if self.faults.is_empty() {
            write!(f, " none fired")?;
        }
        for (kind, count) in &self.faults {
            write!(f, " {kind}={count}")?;
        }
        write!(f, "; exits: {}", self.exits)?;
        if !self.sometimes.is_empty() {
            write!(f, "; sometimes (runs held):")?;
        }
        for (name, held) in &self.sometimes {
            write!(f, " {name:?}={held}")?;
        }
        if !self.buggify.is_empty() {
            write!(f, "; buggify fired/reached:")?;
        }
        for (label, count) in &self.buggify {
            write!(f, " {label}={count}")?;
        }
        Ok(())
    }
}

/// Counts of an exploration so far (updated from the runner's closure).
#[derive(Debug)]
pub(super) struct Tally {
    started: Instant, // determinism-ok: the test runner's wall time, never simulated
    /// Runs of the property before the first failure.
    cases: u32,
    /// The planned number of cases.
    planned: u32,
    /// Every run's faults, corpus replays included.
    pub exploration: Exploration,
    unknown: u32,
    /// Cases whose run was repeated to check determinism.
    determinism_checked: u32,
    /// The case that failed first, and when.
    failed: Option<(u32, Instant)>,
    shrink_steps: u32,
}

impl Tally {
    pub fn new(planned: u32) -> RefCell<Tally> {
        RefCell::new(Tally {
            started: Instant::now(), // determinism-ok: wall time of the test runner
            cases: 0,
            planned,
            exploration: Exploration::default(),
            unknown: 0,
            determinism_checked: 0,
            failed: None,
            shrink_steps: 0,
        })
    }

    /// Whether the search is shrinking a failure (no more cases are drawn).
    pub fn shrinking(&self) -> bool {
        self.failed.is_some()
    }

    /// The number of the case about to run (1-based).
    pub fn next_case(&self) -> u32 {
        self.cases + 1
    }

    /// One run of the property on `outcome` ended with `passed`.
    pub fn ran(&mut self, outcome: Option<&Outcome>, passed: bool) {
        if self.shrinking() {
            self.shrink_steps += 1;
            return;
        }
        self.cases += 1;
        if let Some(outcome) = outcome {
            self.exploration.add(outcome);
            let checked = outcome.checked.borrow();
            if checked
                .as_ref()
                .is_some_and(|(_, verdicts)| verdicts.unknown())
            {
                self.unknown += 1;
            }
        }
        if !passed {
            self.failed = Some((self.cases, Instant::now())); // determinism-ok: runner wall time
        }
    }

    /// A corpus file was replayed.
    pub fn replayed(&mut self, outcome: &Outcome) {
        self.exploration.add(outcome);
    }

    pub fn checked_determinism(&mut self) {
        self.determinism_checked += 1;
    }

    /// "failed at case k of N after t s; shrunk in s steps (t s)", once
    /// failed.
    pub fn failure_line(&self) -> Option<String> {
        let (case, at) = self.failed?;
        Some(format!(
            "failed at case {case} of {} after {:.1} s; shrunk in {} steps ({:.1} s)",
            self.planned,
            at.duration_since(self.started).as_secs_f64(),
            self.shrink_steps,
            at.elapsed().as_secs_f64()
        ))
    }
}

impl fmt::Display for Tally {
    /// The one-line summary of a passing exploration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.started.elapsed().as_secs_f64();
        write!(
            f,
            "{} cases, {} unknown, {}",
            self.cases, self.unknown, self.exploration
        )?;
        write!(
            f,
            ", determinism checked on {} cases, {seconds:.1} s ({:.1} cases/s)",
            self.determinism_checked,
            f64::from(self.cases) / seconds.max(1e-9)
        )
    }
}
