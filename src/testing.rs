//! The property-test runner users call from `#[test]` functions.
//!
//! [`Explorer::explore`] checks a property of [`Outcome`]s over scenarios
//! drawn from a strategy (see [`crate::strategy`]), in three steps:
//!
//! 1. the regression corpus: every scenario file committed under
//!    `fixtures/regressions/<name>/` is replayed, and the property must hold;
//! 2. exploration: proptest's [`proptest::test_runner::TestRunner`] draws cases, and on a failure
//!    shrinks it;
//! 3. on a (shrunk) failure: the scenario is saved, with its digest, under
//!    `fixtures/regressions/<name>/` (commit it once the bug is fixed, and it
//!    is replayed by every `cargo test` from then on), its trace under
//!    [`repro::output_dir`], and the test panics with a message whose last
//!    lines give the runner's seed, the saved file and the command that
//!    reruns exactly that case.
//!
//! Over every run (the corpus's and the cases explored) the explorer adds
//! up the faults fired and effective by kind and the replicas' exits
//! (expected and unexpected), and returns them as an [`Exploration`]. A kind that fired and was never effective is inert: the
//! test tested less than its scenarios say (a fault aimed at a role nobody
//! holds, duplication of a system whose messages replisim cannot see, a
//! clock skew on a system that never reads its clock). The summary printed
//! at the end names inert kinds in a warning;
//! [`Explorer::fail_on_inert`] makes them fail the test instead.
//!
//! The code's own `buggify!` points and `sometimes!` assertions
//! ([`crate::points`]) are accounted for in the same way, for the modules
//! the explorer answers for ([`Explorer::points_in`], by default those of
//! every crate of the test binary but replisim: the user's code): each point's firings are summed, points no run reached
//! are reported like inert kinds, and an assertion that never held fails
//! the exploration like an [`Explorer::sometimes`] property.
//!
//! [`Explorer::find_violation`] is the opposite, for tests of planted bugs:
//! it explores until the property fails and returns the shrunk outcome.
//!
//! [`Explorer::explore_space`] and [`Explorer::find_violation_space`] take
//! a [`ScenarioSpace`] instead of a strategy, and draw its cases as its
//! [`Search`] mode says: coverage-guided search ([`crate::guided`]) is
//! adaptive, so it is a loop of the explorer's own rather than a proptest
//! strategy, and its failures are shrunk by [`crate::shrink`] (which also
//! finishes what proptest's shrinking of the other modes leaves).
//!
//! Environment knobs, in the proptest tradition:
//!
//! | variable | effect |
//! |---|---|
//! | `REPLISIM_CASES=N` | explore N cases instead of the test's own number |
//! | `REPLISIM_SEED=S` | seed the runner with S (default: a fresh seed every run, printed on failure) |
//! | `REPLISIM_SOAK=1` | soak mode: 20 times as many cases (`REPLISIM_SOAK=N`, N ≥ 2: N times) |
//! | `REPLISIM_REPLAY=FILE` | run exactly that saved scenario, no corpus, no exploration |
//! | `REPLISIM_RECORD=1` | write each corpus file's digest as its `recorded_digest` while replaying it (after an intended change of behaviour) |
//! | `REPLISIM_DETERMINISM=N` | run the first case and 1 in N cases twice and compare digests (default 16; 0 turns it off) |
//! | `REPLISIM_OUT=DIR` | where traces are written (default `replisim-out`) |
//!
//! With `REPLISIM_SEED` the corpus is not replayed: the command reruns the
//! search that failed, not the case it saved.
//!
//! Every exploration checks determinism without being asked: it runs the
//! first case, and one case in sixteen, a second time, and fails with the
//! first diverging trace event if the digests differ (a `HashMap`
//! iterated in its random order, a read of the real clock).
//!
//! A passing exploration prints one line (shown by `cargo test` with
//! `--nocapture`, or when the test fails): cases run, faults fired and
//! effective per kind, unknown verdicts, wall time, cases per second. A
//! failing one says at which case it failed and how long shrinking took.
//!
//! Paths are relative to the crate under test (`CARGO_MANIFEST_DIR`, as
//! cargo sets it for tests). The runner's panics are deliberate: they are
//! how a `#[test]` fails.
//!
//! An explorer runs the systems of a [`Registry`] (each scenario names
//! its system) or one system of the test's own ([`Explorer::system`]):
//!
//! ```no_run
//! # use futures_util::future::LocalBoxFuture;
//! # use replisim::history::{Completion, Op};
//! # use replisim::node::{ClientContext, KvClient, NodeContext, NodeResult, System};
//! # struct MyStore;
//! # struct Refused;
//! # #[async_trait::async_trait(?Send)]
//! # impl KvClient for Refused {
//! #     async fn call(&mut self, _op: &Op) -> Completion { Completion::Fail("refused".into()) }
//! # }
//! # impl System for MyStore {
//! #     fn replica(&self, _node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
//! #         Box::pin(std::future::pending())
//! #     }
//! #     fn client(&self, _ctx: ClientContext) -> Box<dyn KvClient> { Box::new(Refused) }
//! # }
//! use std::rc::Rc;
//! use replisim::{strategy::{FaultKinds, ScenarioSpace}, testing::{self, Explorer}};
//!
//! #[test]
//! fn my_store_survives_crashes() {
//!     let space = ScenarioSpace::new("my-store", FaultKinds::crashes()).declared_by(&MyStore);
//!     Explorer::new("my_store_survives_crashes", 16)
//!         .system(|_| Rc::new(MyStore))
//!         .explore(space.strategy(), testing::holds);
//! }
//! ```

use std::{
    cell::RefCell,
    env,
    path::{Path, PathBuf},
    rc::Rc,
};

use proptest::{
    strategy::{BoxedStrategy, Strategy},
    test_runner::{Config, TestCaseError, TestError},
};

mod tally;

use crate::{
    check::linearizable::SearchLimits,
    guided::{Cases, Reached},
    node::System,
    registry::{Registry, SystemError},
    report, shrink,
    sim::{self, Outcome, RunError, RunOptions, Scenario, inert_faults, repro},
    strategy::{ScenarioSpace, Search, seeded_runner},
};
pub use tally::Exploration;
use tally::Tally;

/// The property every test starts from: no guarantee the system claims
/// (linearizable, durable, convergent) is violated. The
/// linearizability search gets [`HOLDS_LIMITS`]; a search that runs out of
/// its step budget (or memory) answers `unknown`, which is not a
/// violation: histories full of `info` operations can take the search far
/// longer than a test case should. The budget counts search steps, not
/// seconds, so whether a case is `unknown` depends on its history alone,
/// never on how loaded the machine is.
pub fn holds(outcome: &Outcome) -> Result<(), String> {
    let verdicts = outcome.verdicts_within(&HOLDS_LIMITS);
    if verdicts.violated() {
        Err(verdicts.to_string())
    } else {
        Ok(())
    }
}

/// The linearizability search limits of [`holds`] (and of the seed sweep):
/// [`SearchLimits::DETERMINISTIC`].
pub const HOLDS_LIMITS: SearchLimits = SearchLimits::DETERMINISTIC;

/// A "sometimes" property: its name and when a run reached it.
type Sometimes = Rc<[(String, Rc<dyn Fn(&Outcome) -> bool>)]>;

/// Builds the system a scenario names.
type SystemFor = Rc<dyn Fn(&Scenario) -> Result<Rc<dyn System>, SystemError>>;

/// Default shrinking budget: each iteration is one simulation.
const SHRINK_ITERS: u32 = 256;

/// A named property test: where its corpus lives, how many cases it
/// explores, and which systems it runs.
#[derive(Clone)]
pub struct Explorer {
    name: String,
    cases: u32,
    system: SystemFor,
    shrink_iters: u32,
    corpus: Option<PathBuf>,
    fail_on_inert: bool,
    sometimes: Sometimes,
    /// The modules whose `buggify!` and `sometimes!` points this
    /// exploration answers for (`None`: the test binary's crate).
    points_in: Option<Vec<String>>,
}

impl Explorer {
    /// A test called `name` (its corpus is `fixtures/regressions/<name>/`;
    /// name it like the `#[test]` function) exploring `cases` cases. Say
    /// which systems it runs with [`Explorer::registry`] or
    /// [`Explorer::system`].
    pub fn new(name: &str, cases: u32) -> Self {
        Explorer {
            name: name.to_string(),
            cases,
            system: Rc::new(|scenario| {
                Err(SystemError::Unknown {
                    name: scenario.system.clone(),
                    known: "a system: give the Explorer a registry or a system".into(),
                })
            }),
            shrink_iters: SHRINK_ITERS,
            corpus: None,
            fail_on_inert: false,
            sometimes: Rc::new([]),
            points_in: None,
        }
    }

    /// A test named like the running `#[test]` function (the last part of
    /// libtest's name for it), so the name is not typed twice.
    ///
    /// # Panics
    /// Outside a test thread named by libtest.
    pub fn this_test(cases: u32) -> Self {
        let thread = std::thread::current();
        let name = match thread.name() {
            Some(name) if name != "main" => name.rsplit("::").next().unwrap_or(name),
            _ => panic!(
                "Explorer::this_test needs the name libtest gives a test's thread; \
                 use Explorer::new(name, cases) here"
            ),
        };
        Explorer::new(name, cases)
    }

    /// Builds each scenario's system from `registry`.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.system = Rc::new(move |scenario| registry.system_for(scenario));
        self
    }

    /// Runs `system` (a user's own), whatever the scenario names.
    pub fn system(mut self, system: impl Fn(&Scenario) -> Rc<dyn System> + 'static) -> Self {
        self.system = Rc::new(move |scenario| Ok(system(scenario)));
        self
    }

    /// At most this many simulations while shrinking a failure.
    pub fn shrink_iters(mut self, iters: u32) -> Self {
        self.shrink_iters = iters;
        self
    }

    /// With `true`, a fault kind that fired and was never effective in any
    /// run fails the test (by default it is a warning in the summary).
    pub fn fail_on_inert(mut self, fail: bool) -> Self {
        self.fail_on_inert = fail;
        self
    }

    /// Something the exploration must reach in at least one run ("a
    /// failover happened", "a write completed while a backup was cut
    /// off"), judged by `reached` on every run's outcome. The summary says
    /// in how many runs each held; an exploration that passed but never
    /// reached one fails, because its tests did not get where they claim to.
    ///
    /// ```no_run
    /// # use replisim::testing::Explorer;
    /// let explorer = Explorer::new("my_test", 64).sometimes("a crash struck a running node", |outcome| {
    ///     outcome.stats.faults.get("crash").is_some_and(|count| count.effective > 0)
    /// });
    /// ```
    pub fn sometimes(mut self, name: &str, reached: impl Fn(&Outcome) -> bool + 'static) -> Self {
        let mut properties = self.sometimes.to_vec();
        properties.push((name.to_string(), Rc::new(reached)));
        self.sometimes = properties.into();
        self
    }

    /// Answers for the `buggify!` points and `sometimes!` assertions of the
    /// modules under `module` (a `module_path!()` prefix, such as
    /// `my_store` or `my_store::replica`; call again for
    /// more). Without it, the exploration answers for those of every
    /// crate of the test binary but replisim: the user's code (their
    /// library, their `tests/` or `sim-tests/` binary), not the built-in
    /// protocols. Its points never reached are reported like inert faults
    /// (a warning, or a failure with [`Explorer::fail_on_inert`]), and
    /// its assertions that never held fail the exploration, as
    /// [`Explorer::sometimes`] properties do.
    pub fn points_in(mut self, module: &str) -> Self {
        self.points_in
            .get_or_insert_with(Vec::new)
            .push(module.to_string());
        self
    }

    /// The modules this exploration answers for (see [`Explorer::points_in`]).
    fn point_modules(&self) -> Vec<String> {
        self.points_in
            .clone()
            .unwrap_or_else(|| crate::points::crates(false))
    }

    /// Keeps the regression corpus in `dir` instead of
    /// `fixtures/regressions/<name>/`.
    pub fn corpus(mut self, dir: impl Into<PathBuf>) -> Self {
        self.corpus = Some(dir.into());
        self
    }

    /// The regression corpus of this test.
    pub fn corpus_dir(&self) -> PathBuf {
        self.corpus
            .clone()
            .unwrap_or_else(|| crate_root().join("fixtures/regressions").join(&self.name))
    }

    /// Replays the corpus, then explores; panics (failing the test) with
    /// the reproduction lines when `property` fails. Prints a summary of
    /// the faults over every run, with a warning naming inert kinds (a
    /// failure with [`Explorer::fail_on_inert`]), and returns it. See the
    /// module docs.
    pub fn explore<S: Strategy<Value = Scenario>>(
        &self,
        strategy: S,
        property: impl Fn(&Outcome) -> Result<(), String>,
    ) -> Exploration {
        self.explore_from(Source::Strategy(&strategy), &property)
    }

    /// [`Explorer::explore`] over the cases of `space`, drawn as its
    /// [`ScenarioSpace::search`] says: by its strategy for `random` and
    /// `swarm`, by coverage-guided search ([`crate::guided`]) for `guided`,
    /// whose failures are shrunk by [`crate::shrink`].
    pub fn explore_space(
        &self,
        space: &ScenarioSpace,
        property: impl Fn(&Outcome) -> Result<(), String>,
    ) -> Exploration {
        match space.search {
            Search::Guided => {
                self.explore_from(Source::<BoxedStrategy<Scenario>>::Guided(space), &property)
            }
            Search::Random | Search::Swarm => self.explore(space.strategy(), property),
        }
    }

    /// [`Explorer::find_violation`] over the cases of `space`, drawn as its
    /// [`ScenarioSpace::search`] says (see [`Explorer::explore_space`]).
    pub fn find_violation_space(
        &self,
        space: &ScenarioSpace,
        property: impl Fn(&Outcome) -> Result<(), String>,
    ) -> Outcome {
        match space.search {
            Search::Guided => self
                .find_violation_from(Source::<BoxedStrategy<Scenario>>::Guided(space), &property),
            Search::Random | Search::Swarm => self.find_violation(space.strategy(), property),
        }
    }

    fn explore_from<S: Strategy<Value = Scenario>>(
        &self,
        source: Source<'_, S>,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
    ) -> Exploration {
        let tally = Tally::new(self.cases());
        tally.borrow_mut().exploration.declare(
            self.sometimes.iter().map(|(name, _)| name),
            &self.point_modules(),
        );
        if let Some(file) = env::var_os("REPLISIM_REPLAY") {
            self.replay_file(&crate_root().join(file), property, &tally);
            return tally.into_inner().exploration;
        }
        if env::var_os("REPLISIM_SEED").is_none() {
            for file in scenario_files(&self.corpus_dir()) {
                self.replay_file(&file, property, &tally);
            }
        }
        let seed = runner_seed();
        let Some(failure) = self.search(source, property, seed, &tally) else {
            let tally = tally.into_inner();
            self.report(&tally);
            return tally.exploration;
        };
        let saved = match &failure.outcome {
            Some(outcome) => repro::save_scenario(outcome, &self.corpus_dir()),
            None => save_unrunnable(&failure.scenario, &self.corpus_dir()),
        };
        let saved = relative(
            &saved.unwrap_or_else(|e| panic!("{}\ncannot save the scenario: {e}", failure.reason)),
        );
        let trace = self.write_trace_and_report(&failure, &saved);
        // Inside replisim's own repository its CLI replays the file too.
        let cli = match env::var("CARGO_PKG_NAME").as_deref() {
            Ok("replisim") => format!("\n            or: cargo run -- replay {}", saved.display()),
            _ => String::new(),
        };
        panic!(
            "{}\n{}\n{}\n{trace}runner seed: {seed}\nsaved: {}\nreproduce with: {}{cli}\n  rerun the search: REPLISIM_SEED={seed} REPLISIM_CASES={} {}",
            failure.reason,
            failure.progress,
            failure.scenario_summary(),
            saved.display(),
            self.replay_command(&saved),
            self.cases(),
            test_command(&self.name),
        );
    }

    /// Explores until `property` fails; returns the shrunk failing outcome
    /// after writing its scenario and trace under
    /// [`repro::output_dir`]`/<name>/` (not the corpus: the failure is
    /// expected). Panics if no case fails within the budget.
    pub fn find_violation<S: Strategy<Value = Scenario>>(
        &self,
        strategy: S,
        property: impl Fn(&Outcome) -> Result<(), String>,
    ) -> Outcome {
        self.find_violation_from(Source::Strategy(&strategy), &property)
    }

    fn find_violation_from<S: Strategy<Value = Scenario>>(
        &self,
        source: Source<'_, S>,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
    ) -> Outcome {
        let seed = runner_seed();
        let cases = self.cases();
        let tally = Tally::new(cases);
        let Some(failure) = self.search(source, property, seed, &tally) else {
            panic!(
                "no violation found in {cases} cases (runner seed {seed}): the property held \
                 where it was expected to fail"
            );
        };
        let Some(outcome) = failure.outcome else {
            panic!("{}\nrunner seed: {seed}", failure.reason);
        };
        println!(
            "replisim: {}: violation {} (runner seed {seed})",
            self.name, failure.progress
        );
        let dir = repro::output_dir().join(&self.name);
        match (self.system)(&outcome.scenario) {
            Ok(system) => {
                if let Err(error) =
                    repro::save_failure(&outcome, system, &dir, report::render_outcome)
                {
                    eprintln!(
                        "warning: cannot save the violation under {}: {error}",
                        dir.display()
                    );
                }
            }
            Err(error) => eprintln!("warning: {error}"),
        }
        outcome
    }

    /// Adds `outcome` to the runs of each "sometimes" property it reached:
    /// the explorer's own, and the code's `sometimes!` that held in it.
    fn count_sometimes(&self, outcome: &Outcome, tally: &RefCell<Tally>) {
        let own = self
            .sometimes
            .iter()
            .filter(|(_, reached)| reached(outcome));
        let in_code = outcome
            .stats
            .sometimes
            .iter()
            .filter(|(_, count)| count.hits > 0);
        let held: Vec<&String> = own
            .map(|(name, _)| name)
            .chain(in_code.map(|(name, _)| name))
            .collect();
        let mut tally = tally.borrow_mut();
        for name in held {
            *tally.exploration.sometimes.entry(name.clone()).or_default() += 1;
        }
    }

    /// Prints the summary of an exploration that passed; fails on a
    /// "sometimes" property it never reached; names inert kinds in a
    /// warning, or fails on them.
    fn report(&self, tally: &Tally) {
        println!("replisim: {}: {tally}", self.name);
        let exploration = &tally.exploration;
        let never = exploration.never_held(&self.point_modules());
        if !never.is_empty() {
            panic!(
                "{}: never reached in {} runs: {never:?}\nthe exploration did not get where \
                 the test claims to test: widen its scenarios (faults, cluster, workload) or \
                 its case count",
                self.name, exploration.runs
            );
        }
        let inert = inert_faults(&exploration.faults).map(|inert| {
            (
                format!(
                    "fault kinds that fired and were never effective in {} runs: {inert}",
                    exploration.runs
                ),
                "aim these faults where they can act, or leave their kinds out",
            )
        });
        let unreached = exploration.unreached_points();
        let unreached = (!unreached.is_empty()).then(|| {
            (
                format!(
                    "buggify points never reached in {} runs: {}",
                    exploration.runs,
                    unreached.join(", ")
                ),
                "drive the code to these points (workload, faults), or take them out",
            )
        });
        for (message, hint) in [inert, unreached].into_iter().flatten() {
            let message = format!("{}: {message}", self.name);
            if self.fail_on_inert {
                panic!("{message}\nthe test tested less than its scenarios say: {hint}");
            }
            eprintln!("warning: {message}");
        }
    }

    /// Runs one saved scenario and panics if the property fails on it.
    fn replay_file(
        &self,
        file: &Path,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
        tally: &RefCell<Tally>,
    ) {
        let scenario = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| Scenario::from_json(&text).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = self
            .run(&scenario)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        tally.borrow_mut().replayed(&outcome);
        self.count_sometimes(&outcome, tally);
        if env::var_os("REPLISIM_RECORD").is_some() {
            record_digest(file, &scenario, &outcome);
        }
        if let Err(reason) = property(&outcome) {
            panic!(
                "{reason}\nthe saved scenario {} fails (digest {}{})\nreproduce with: {}",
                relative(file).display(),
                outcome.digest_hex(),
                match &scenario.recorded_digest {
                    Some(d) if *d == outcome.digest_hex() => ", as recorded".to_string(),
                    Some(d) => format!(", recorded {d}"),
                    None => String::new(),
                },
                self.replay_command(&relative(file)),
            );
        }
    }

    fn run(&self, scenario: &Scenario) -> Result<Outcome, RunError> {
        self.run_with(scenario, RunOptions::default())
    }

    fn run_with(&self, scenario: &Scenario, options: RunOptions) -> Result<Outcome, RunError> {
        sim::run_with(scenario, (self.system)(scenario)?, options)
    }

    fn cases(&self) -> u32 {
        let cases = env_number("REPLISIM_CASES").map_or(self.cases, |n| n as u32);
        cases.saturating_mul(soak_factor())
    }

    /// Draws cases until one fails; the shrunk failure, if any. Every run
    /// is added to `tally`.
    fn search<S: Strategy<Value = Scenario>>(
        &self,
        source: Source<'_, S>,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
        seed: u64,
        tally: &RefCell<Tally>,
    ) -> Option<Failure> {
        let failing = match source {
            Source::Strategy(strategy) => self.search_strategy(strategy, property, seed, tally),
            Source::Guided(space) => self.search_guided(space, property, seed, tally),
        }?;
        Some(self.failure(failing, property, tally))
    }

    /// Proptest draws and shrinks; the structural shrinker then takes
    /// what proptest's budget left (a fault the failure does not need, a
    /// replica too many). The failing scenario, if any.
    fn search_strategy<S: Strategy<Value = Scenario>>(
        &self,
        strategy: &S,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
        seed: u64,
        tally: &RefCell<Tally>,
    ) -> Option<Scenario> {
        let config = Config {
            cases: self.cases(),
            max_shrink_iters: self.shrink_iters,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = seeded_runner(config, seed);
        let divergence: RefCell<Option<String>> = RefCell::default();
        let result = runner.run(strategy, |scenario| {
            if divergence.borrow().is_some() {
                // A determinism failure is reported as it is, unshrunk.
                return Ok(());
            }
            match self.case(&scenario, RunOptions::default(), property, tally) {
                Case::Ran(_, verdict) => verdict.map_err(TestCaseError::fail),
                Case::Unrunnable(reason) => Err(TestCaseError::fail(reason)),
                Case::Diverged(diverged) => {
                    *divergence.borrow_mut() = Some(diverged);
                    Err(TestCaseError::fail("nondeterministic"))
                }
            }
        });
        if let Some(diverged) = divergence.into_inner() {
            self.nondeterministic(&diverged, seed);
        }
        match result {
            Ok(()) => None,
            Err(TestError::Abort(reason)) => panic!("the search gave up: {reason}"),
            Err(TestError::Fail(_, scenario)) => Some(self.shrink(scenario, property, tally)),
        }
    }

    /// Coverage-guided search: cases from [`Cases`], each run's coverage
    /// fed back; a failure shrunk by [`shrink`]. The failing scenario, if any.
    fn search_guided(
        &self,
        space: &ScenarioSpace,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
        seed: u64,
        tally: &RefCell<Tally>,
    ) -> Option<Scenario> {
        let mut cases = Cases::new(space, seed);
        for _ in 0..self.cases() {
            let scenario = cases
                .next_case()
                .unwrap_or_else(|e| panic!("the search gave up: {e}"));
            match self.case(&scenario, cases.run_options(), property, tally) {
                Case::Ran(outcome, Ok(())) => {
                    cases.ran(&scenario, &Reached::of(&outcome));
                }
                Case::Ran(_, Err(_)) | Case::Unrunnable(_) => {
                    return Some(self.shrink(scenario, property, tally));
                }
                Case::Diverged(diverged) => self.nondeterministic(&diverged, seed),
            }
        }
        None
    }

    /// Runs one case of the search: checks determinism on the first case
    /// and one in `REPLISIM_DETERMINISM` (not while shrinking), counts the
    /// "sometimes" properties, judges the property.
    fn case(
        &self,
        scenario: &Scenario,
        options: RunOptions,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
        tally: &RefCell<Tally>,
    ) -> Case {
        let case = tally.borrow().next_case();
        let outcome = match self.run_with(scenario, options) {
            Ok(outcome) => outcome,
            Err(error) => {
                tally.borrow_mut().ran(None, false);
                return Case::Unrunnable(error.to_string());
            }
        };
        let every = env_number("REPLISIM_DETERMINISM").unwrap_or(16);
        let sampled = every > 0 && (case == 1 || u64::from(case) % every == 0);
        if sampled && !tally.borrow().shrinking() {
            tally.borrow_mut().checked_determinism();
            if let Some(diverged) = self.diverges(scenario, &outcome) {
                return Case::Diverged(diverged);
            }
        }
        if !tally.borrow().shrinking() {
            self.count_sometimes(&outcome, tally);
        }
        let verdict = property(&outcome);
        tally.borrow_mut().ran(Some(&outcome), verdict.is_ok());
        Case::Ran(Box::new(outcome), verdict)
    }

    /// Fails the test on a nondeterministic run.
    fn nondeterministic(&self, diverged: &str, seed: u64) -> ! {
        panic!(
            "{diverged}\nthe system is not deterministic: see the determinism rules in the \
             replisim README\nrunner seed: {seed}\n  rerun the search: REPLISIM_SEED={seed} \
             REPLISIM_CASES={} {}",
            self.cases(),
            test_command(&self.name)
        );
    }

    /// The minimal failing case, run once more: the outcome to save, and
    /// the reason of exactly this case.
    fn failure(
        &self,
        scenario: Scenario,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
        tally: &RefCell<Tally>,
    ) -> Failure {
        let (outcome, reason) = match self.run(&scenario) {
            Ok(outcome) => {
                let reason = property(&outcome).err().unwrap_or_else(|| {
                    "the property failed, then held on a rerun: nondeterminism?".into()
                });
                (Some(outcome), reason)
            }
            Err(error) => (None, error.to_string()),
        };
        Failure {
            scenario,
            outcome,
            reason,
            progress: tally.borrow().failure_line().unwrap_or_default(),
        }
    }

    /// Shrinks a failing `scenario` structurally ([`shrink`]) within the
    /// shrinking budget, keeping each smaller scenario on which `property`
    /// still fails: a shrunk case names only the faults its failure needs,
    /// whatever proptest's budget reached.
    fn shrink(
        &self,
        scenario: Scenario,
        property: &dyn Fn(&Outcome) -> Result<(), String>,
        tally: &RefCell<Tally>,
    ) -> Scenario {
        shrink::shrink(scenario, self.shrink_iters, |candidate| {
            self.run(candidate).is_ok_and(|outcome| {
                let failed = property(&outcome).is_err();
                tally.borrow_mut().ran(Some(&outcome), !failed);
                failed
            })
        })
        .scenario
    }

    /// Writes the failure's trace and report; lines saying where (or why not).
    fn write_trace_and_report(&self, failure: &Failure, saved: &Path) -> String {
        let (Some(outcome), Some(stem)) = (&failure.outcome, saved.file_stem()) else {
            return String::new();
        };
        let file = repro::output_dir()
            .join(&self.name)
            .join(Path::new(stem).with_extension("trace"));
        let written = (self.system)(&failure.scenario)
            .map_err(|e| e.to_string())
            .and_then(|system| {
                repro::write_trace(outcome, system, &file).map_err(|e| e.to_string())
            });
        let trace = match written {
            Ok(()) => format!("trace: {}\n", file.display()),
            Err(error) => format!("trace not written: {error}\n"),
        };
        let html = file.with_extension("html");
        match repro::write_report(outcome, report::render_outcome, &html) {
            Ok(()) => format!("{trace}report: {}\n", html.display()),
            Err(error) => format!("{trace}report not written: {error}\n"),
        }
    }

    fn replay_command(&self, file: &Path) -> String {
        format!(
            "REPLISIM_REPLAY={} {}",
            file.display(),
            test_command(&self.name)
        )
    }

    /// Runs `scenario` again and, if its digest differs from `outcome`'s,
    /// says where the two runs part.
    fn diverges(&self, scenario: &Scenario, outcome: &Outcome) -> Option<String> {
        let again = self.run(scenario).ok()?;
        if again.digest == outcome.digest {
            return None;
        }
        let system = (self.system)(scenario).ok()?;
        Some(match sim::check_determinism(scenario, system) {
            Err(error) => error.to_string(),
            Ok(_) => format!(
                "the same scenario gave digests {} and {}",
                outcome.digest_hex(),
                again.digest_hex()
            ),
        })
    }
}

/// Writes `outcome`'s digest into the corpus file as its `recorded_digest`.
fn record_digest(file: &Path, scenario: &Scenario, outcome: &Outcome) {
    let mut recorded = scenario.clone();
    recorded.recorded_digest = Some(outcome.digest_hex());
    if let Err(error) = std::fs::write(file, recorded.to_json() + "\n") {
        panic!("{}: cannot record the digest: {error}", file.display());
    }
    println!(
        "replisim: recorded digest {} in {}",
        outcome.digest_hex(),
        file.display()
    );
}

/// Where an exploration's cases come from.
enum Source<'a, S> {
    /// A proptest strategy (random, swarm, or a test's own).
    Strategy(&'a S),
    /// Coverage-guided search over a space.
    Guided(&'a ScenarioSpace),
}

/// One case run.
enum Case {
    /// The run's outcome and the property's verdict on it.
    Ran(Box<Outcome>, Result<(), String>),
    /// The scenario could not run (why).
    Unrunnable(String),
    /// A second run of the case diverged (where).
    Diverged(String),
}

/// A minimal failing case.
struct Failure {
    scenario: Scenario,
    /// `None` when the scenario could not run at all.
    outcome: Option<Outcome>,
    reason: String,
    /// "failed at case k of N; shrunk in s steps (t s)".
    progress: String,
}

impl Failure {
    fn scenario_summary(&self) -> String {
        let s = &self.scenario;
        let mut text = format!(
            "minimal failing scenario: {} | seed {} | {} replicas, {} clients x {} ops",
            s.system, s.seed, s.replicas, s.clients, s.workload.ops_per_client
        );
        for fault in &s.faults {
            text += &format!("\n  {fault}");
        }
        if let Some(outcome) = &self.outcome {
            text += &format!("\ndigest: {}", outcome.digest_hex());
        }
        text
    }
}

/// A scenario that could not run is saved without a digest.
fn save_unrunnable(scenario: &Scenario, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!(
        "{}-seed{}-unrunnable.json",
        repro::file_stem(scenario),
        scenario.seed
    ));
    std::fs::write(&file, scenario.to_json() + "\n")?;
    Ok(file)
}

/// The `.json` files under `dir`, sorted; none if it does not exist.
pub fn scenario_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// The crate under test: `CARGO_MANIFEST_DIR` as cargo sets it when
/// running tests, else the current directory.
fn crate_root() -> PathBuf {
    env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `path` relative to the crate under test, as a command line shows it.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(crate_root())
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// `REPLISIM_SEED`, else a fresh seed from the operating system (this runs
/// outside any simulation).
fn runner_seed() -> u64 {
    env_number("REPLISIM_SEED").unwrap_or_else(rand::random)
}

fn soak_factor() -> u32 {
    match env::var("REPLISIM_SOAK").ok().as_deref().map(str::trim) {
        None | Some("" | "0" | "false" | "off") => 1,
        Some(value) => match value.parse::<u32>() {
            Ok(n) if n >= 2 => n,
            _ => 20,
        },
    }
}

/// A numeric environment knob; panics (failing the test) if malformed.
fn env_number(name: &str) -> Option<u64> {
    let value = env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={value:?} is not a non-negative integer"),
    }
}

/// The command that runs this test again: `cargo test --test TARGET --
/// --exact NAME`, with `--include-ignored` when this run included ignored
/// tests (the test may be `#[ignore]`).
fn test_command(name: &str) -> String {
    let ignored = env::args().any(|arg| arg == "--ignored" || arg == "--include-ignored");
    format!(
        "cargo test --test {} -- --exact {}{}",
        test_target(),
        test_name(name),
        if ignored { " --include-ignored" } else { "" }
    )
}

/// The `cargo test --test` target of the running test binary.
fn test_target() -> String {
    crate::points::binary_name()
}

/// The running test's name as libtest knows it (the name of its thread),
/// else `name`.
fn test_name(name: &str) -> String {
    match std::thread::current().name() {
        Some(thread) if thread != "main" => thread.to_string(),
        _ => name.to_string(),
    }
}
