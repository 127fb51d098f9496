//! The run loop: builds the turmoil simulation for a scenario, has the
//! [`Nemesis`] apply its faults (at their times, or when their trigger event
//! is logged or its delay after that), and collects the outcome.
//!
//! Hosts: `replica-<i>` (the system's replica software), `client-<p>` (one
//! per client process), and `operator`, which performs the final reads at
//! the end and, for systems that opt into it, failover when a replica is
//! lost for good. The operator learns what to do from the run loop through
//! a channel, the way an operator reacts to a pager, and is started on
//! first use; clients of such systems learn the primary from the shared
//! [`Directory`]. A replica whose software returns is restarted at once, as
//! a supervisor would, and the exit is recorded with its cause: expected
//! when the error's chain holds an I/O error the simulated disk injected
//! ([`InjectedIoError`]), unexpected otherwise (see [`crate::check::exits`]).
//!
//! After the faults, the run loop heals everything, lets the cluster
//! quiesce (watching when the replicas' published states last came to
//! agree: [`RunStats::converged_after_ms`]), snapshots the replicas' states,
//! and only then has the operator perform the final reads.
//!
//! Before anything runs, the scenario is checked against the system's
//! [`Declaration`]: the cluster size, the workload's mix and the roles
//! faults name.

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
    time::{Duration, UNIX_EPOCH},
};

use tokio::sync::mpsc;

use super::{
    fault::{Family, Fault, ScheduledFault, Target, Trigger},
    nemesis::{FailOver, Ledger, Nemesis, Strike, host, replica_of},
    outcome::{MomentReached, Outcome, RoleChange, RunStats},
    scenario::{Scenario, ScenarioError},
    trace::{self, HostTime},
};
use crate::{
    check::convergence::{self, Placement, ReplicaState},
    check::exits::{Exit, ExitCounts},
    check::log_agreement::CommittedSoFar,
    history::{History, Op},
    net::SimNetwork,
    node::{
        Board, ClientContext, Declaration, Directory, KvClient, NodeContext, NodeResult,
        REPLICA_PORT, Roles, StateProbe, StateVersion, System,
    },
    points,
    storage::{InjectedIoError, SimDisk},
    workload::Workload,
};

/// Why a run could not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("the simulation failed: {0}")]
    Simulation(String),
}

/// Runs a scenario against any [`System`], a user's own included.
///
/// ```
/// use std::rc::Rc;
/// use futures_util::future::LocalBoxFuture;
/// use replisim::history::{Completion, Op};
/// use replisim::node::{ClientContext, KvClient, NodeContext, NodeResult, System};
/// use replisim::sim::{run_system, Scenario};
///
/// /// Replicas that never answer: every operation fails, nothing is lost.
/// struct Silent;
/// struct Refused;
///
/// #[async_trait::async_trait(?Send)]
/// impl KvClient for Refused {
///     async fn call(&mut self, _op: &Op) -> Completion { Completion::Fail("refused".into()) }
/// }
///
/// impl System for Silent {
///     fn replica(&self, _node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
///         Box::pin(std::future::pending())
///     }
///     fn client(&self, _ctx: ClientContext) -> Box<dyn KvClient> { Box::new(Refused) }
/// }
///
/// let mut scenario = Scenario::new("silent", 1);
/// scenario.workload.ops_per_client = 5;
/// let outcome = run_system(&scenario, Rc::new(Silent)).unwrap();
/// // Nothing was acknowledged, so nothing can have been lost.
/// assert!(!outcome.verdicts().violated(), "{}", outcome.verdicts());
/// ```
pub fn run_system(scenario: &Scenario, system: Rc<dyn System>) -> Result<Outcome, RunError> {
    run_with(scenario, system, RunOptions::default())
}

/// What a run computes beyond what every outcome holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Count the trace's edges ([`Outcome::trace_edges`]) and the declared
    /// moments each replica reached ([`Outcome::moments_reached`]), which
    /// only coverage-guided search reads
    /// ([`crate::guided::Cases::run_options`] says when); without it they
    /// stay empty.
    pub coverage: bool,
}

/// [`run_system`] with `options`.
pub fn run_with(
    scenario: &Scenario,
    system: Rc<dyn System>,
    options: RunOptions,
) -> Result<Outcome, RunError> {
    run_traced(scenario, system, options, false).map(|(outcome, _)| outcome)
}

/// Runs a scenario and keeps its trace: every event but turmoil's, one
/// line each (`<time>ms <host> <LEVEL> <target>: <fields> <message>`), for
/// a test that asserts on what a replica did and when.
pub fn run_recorded(
    scenario: &Scenario,
    system: Rc<dyn System>,
) -> Result<(Outcome, Vec<String>), RunError> {
    run_traced(scenario, system, RunOptions::default(), true)
}

/// Runs a scenario, keeping every trace line when `record` is set.
pub(crate) fn run_traced(
    scenario: &Scenario,
    system: Rc<dyn System>,
    options: RunOptions,
    record: bool,
) -> Result<(Outcome, Vec<String>), RunError> {
    scenario.validate()?;
    let declaration = system.declaration();
    check_declared(scenario, &declaration, &*system.workload())?;
    let ledger = Ledger::new(scenario.faults.len());
    let points = points::begin(scenario.seed, scenario.buggify);
    let moments = options
        .coverage
        .then(|| declaration.events.iter().map(Trigger::from).collect());
    let result = tracing::subscriber::with_default(trace::begin(record, moments), || {
        Harness::new(scenario, system, ledger.clone()).run()
    });
    let summary = trace::finish();
    let points = points::finish(points);
    let mut outcome = result?;
    outcome.stats.buggify = points.buggify;
    outcome.stats.sometimes = points.sometimes;
    outcome.stats.faults = ledger.counts(&scenario.faults, &summary.effects);
    outcome
        .stats
        .faults
        .extend(scenario.disk.fault_counts(&summary.effects));
    outcome.digest = summary.digest;
    outcome.stats.trace_events = summary.events;
    outcome.stats.effects = summary.effects;
    outcome.message_times = summary.message_times;
    outcome.trace_edges = summary.edges;
    outcome.moments_reached = summary
        .moments
        .into_iter()
        .filter_map(|(moment, host, count)| {
            let replica = replica_of(&host)?;
            Some(MomentReached {
                moment,
                replica,
                count,
            })
        })
        .collect();
    Ok((outcome, summary.lines))
}

/// Checks a scenario against what its system declares.
fn check_declared(
    scenario: &Scenario,
    declaration: &Declaration,
    workload: &dyn Workload,
) -> Result<(), ScenarioError> {
    let invalid = |field: String, problem: String| ScenarioError::Invalid { field, problem };
    if !declaration.replicas.contains(&scenario.replicas) {
        return Err(invalid(
            "replicas".into(),
            format!(
                "{} accepts {} to {} replicas, not {}",
                scenario.system,
                declaration.replicas.start(),
                declaration.replicas.end(),
                scenario.replicas
            ),
        ));
    }
    workload.validate(&scenario.workload)?;
    let targets = scenario.faults.iter().enumerate().flat_map(|(i, f)| {
        let node = f.fault.clone().node_mut().cloned();
        let host = f.trigger.as_ref().and_then(|t| t.host.clone());
        [
            (format!("faults[{i}].node"), node),
            (format!("faults[{i}].trigger.host"), host),
        ]
    });
    for (field, target) in targets {
        if let Some(Target::Role(role)) = target
            && !declaration.roles.contains(&role)
        {
            let declared = match declaration.roles.is_empty() {
                true => "none".to_string(),
                false => declaration.roles.join(", "),
            };
            return Err(invalid(
                field,
                format!(
                    "{} publishes no role {role:?} (its roles: {declared})",
                    scenario.system
                ),
            ));
        }
    }
    Ok(())
}

/// The fixed wall-clock epoch of every simulation (turmoil's default is the
/// real time, which would leak into clocks and digests).
const EPOCH_SECS: u64 = 1_700_000_000;

/// What the run loop asks the operator host to do.
enum Command {
    /// A replica is lost for good: let the system fail over or reconfigure.
    FailOver,
    FinalReads {
        reads: Vec<Op>,
    },
}

struct Harness<'a> {
    scenario: &'a Scenario,
    system: Rc<dyn System>,
    declaration: Declaration,
    workload: Rc<dyn Workload>,
    replicas: Rc<[String]>,
    probes: Vec<StateProbe>,
    roles: Vec<Roles>,
    /// Each replica's roles as last seen, and every change seen.
    roles_seen: Vec<Board>,
    role_changes: Vec<RoleChange>,
    /// The entries replicas' published logs showed committed, step by step.
    committed: CommittedSoFar,
    /// Every exit of a replica's software, as its host recorded it.
    exits: Rc<RefCell<Vec<Exit>>>,
    nemesis: Nemesis,
    directory: Directory,
    history: Rc<RefCell<History>>,
    clients_done: Rc<Cell<usize>>,
    stop_clients: Rc<Cell<bool>>,
    /// Operator commands handed over and not yet finished.
    pending: Rc<Cell<usize>>,
    /// The replicas lost for good so far, as the operator knows them.
    lost: Rc<RefCell<Vec<usize>>>,
    operator: Option<mpsc::UnboundedSender<Command>>,
}

impl<'a> Harness<'a> {
    fn new(scenario: &'a Scenario, system: Rc<dyn System>, ledger: Ledger) -> Self {
        let replicas: Rc<[String]> = (0..scenario.replicas)
            .map(|i| format!("{}:{REPLICA_PORT}", host(i)))
            .collect();
        let probes: Vec<StateProbe> = (0..scenario.replicas)
            .map(|_| StateProbe::default())
            .collect();
        let roles: Vec<Roles> = (0..scenario.replicas).map(|_| Roles::default()).collect();
        Harness {
            scenario,
            declaration: system.declaration(),
            workload: system.workload(),
            system,
            replicas,
            nemesis: Nemesis::new(
                scenario.replicas,
                scenario.network.max_latency,
                probes.clone(),
                roles.clone(),
                ledger,
            ),
            probes,
            roles_seen: vec![Board::default(); roles.len()],
            roles,
            role_changes: Vec::new(),
            committed: CommittedSoFar::default(),
            exits: Rc::default(),
            directory: Directory::default(),
            history: Rc::default(),
            clients_done: Rc::default(),
            stop_clients: Rc::default(),
            pending: Rc::default(),
            lost: Rc::default(),
            operator: None,
        }
    }

    fn build(&self) -> turmoil::Sim<'a> {
        let scenario = self.scenario;
        let limits = scenario.limits;
        let mut builder = turmoil::Builder::new();
        builder
            .rng_seed(scenario.seed)
            .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
            .tick_duration(scenario.network.tick)
            .min_message_latency(scenario.network.min_latency)
            .max_message_latency(scenario.network.max_latency)
            .simulation_duration(
                limits.workload + limits.quiesce + limits.final_reads + Duration::from_secs(1),
            );
        scenario.disk.configure(builder.fs());
        builder.build()
    }

    fn run(mut self) -> Result<Outcome, RunError> {
        let scenario = self.scenario;
        let limits = scenario.limits;
        let mut sim = self.build();
        for id in 0..scenario.replicas {
            self.add_replica(&mut sim, id);
        }
        let mut planned = 0;
        for process in 0..scenario.clients as u64 {
            planned += self.add_client(&mut sim, process);
        }
        let reads = self.workload.final_reads(&scenario.workload);
        // An invocation and a completion per operation: the history is
        // allocated once, not grown by copying.
        (self.history.borrow_mut().events).reserve(2 * (planned + reads.len()));

        let mut schedule: Vec<(usize, &ScheduledFault)> =
            scenario.faults.iter().enumerate().collect();
        schedule.sort_by_key(|(i, f)| (f.at_ms, *i));
        let mut pending = schedule.into_iter().peekable();
        // Triggered faults whose event came, waiting for their delay: (when, id).
        let mut delayed: Vec<(Duration, usize)> = Vec::new();
        // Every replica down with nothing to restart one before the end:
        // no operation can succeed, and clients would only retry until the
        // workload's time limit, so the workload ends at once.
        let restarts_scheduled = scenario
            .faults
            .iter()
            .any(|f| matches!(f.fault, Fault::Restart { .. }));
        let workload_end = loop {
            let now = sim.elapsed();
            trace::set_harness_time(now);
            while let Some((id, fault)) =
                pending.next_if(|(_, f)| Duration::from_millis(f.at_ms) <= now)
            {
                match &fault.trigger {
                    Some(trigger) => match &trigger.host {
                        None => trace::arm(id, None, trigger.clone()),
                        Some(target) => match self.resolve(target) {
                            Some(r) => trace::arm(id, Some(host(r)), trigger.clone()),
                            None => {
                                self.nemesis.ledger.fired(id);
                                skip(fault);
                            }
                        },
                    },
                    None => self.apply(&mut sim, id, now),
                }
            }
            delayed.sort();
            let due = delayed.partition_point(|&(at, _)| at <= now);
            for (_, id) in delayed.drain(..due) {
                self.apply(&mut sim, id, now);
            }
            self.nemesis.undo_due(&mut sim, now);
            if self.clients_done.get() == scenario.clients
                || now >= limits.workload
                || (!restarts_scheduled
                    && self
                        .nemesis
                        .all_down(|id| scenario.faults[id].fault.family() == Family::Node))
            {
                break now;
            }
            self.step(&mut sim)?;
            for id in trace::take_fired() {
                trace::add_effect("faults_triggered", 1);
                let now = sim.elapsed();
                match scenario.faults[id]
                    .trigger
                    .as_ref()
                    .map_or(0, |t| t.delay_ms)
                {
                    0 => self.apply(&mut sim, id, now),
                    ms => delayed.push((now + Duration::from_millis(ms), id)),
                }
            }
        };
        self.stop_clients.set(true);
        self.nemesis.heal_everything(&mut sim, workload_end);
        // A failover still in progress is not quiet: let it finish first.
        self.finish_commands(&mut sim, workload_end + limits.final_reads)?;
        let quiet_until = sim.elapsed() + limits.quiesce;
        // Since when every surviving replica has reported the same state.
        let mut converged_since = None;
        let mut states = States::default();
        let mut agreed = false;
        while sim.elapsed() < quiet_until {
            self.step(&mut sim)?;
            if self.refresh(&mut states) {
                agreed = convergence::agree(&states.read, &self.placement(&states.read));
            }
            converged_since = match agreed {
                true => converged_since.or(Some(sim.elapsed())),
                false => None,
            };
        }
        // The replicas' states are judged as the quiet period left them:
        // before the final reads, so that a read cannot hide a replica the
        // system failed to bring up to date (reading a probe logs nothing,
        // so the trace and its digest are the same as before).
        self.refresh(&mut states);
        let replica_states = states.read;
        let placement = self.placement(&replica_states);
        let converged_after =
            converged_since.map(|since| since.saturating_sub(workload_end).as_millis() as u64);
        self.command(&mut sim, Command::FinalReads { reads });
        let final_reads_done = self.finish_commands(&mut sim, quiet_until + limits.final_reads)?;
        trace::set_harness_time(sim.elapsed());
        let mut outcome = self.outcome(sim.elapsed(), final_reads_done, replica_states);
        outcome.placement = placement;
        outcome.stats.converged_after_ms = converged_after;
        Ok(outcome)
    }

    /// Brings `states` up to date with each surviving replica's published
    /// state, reading again only those whose version changed (or that
    /// have none); says whether any may have changed.
    fn refresh(&self, states: &mut States) -> bool {
        let mut changed = false;
        for (id, probe) in self.probes.iter().enumerate() {
            if self.nemesis.lost.contains(&id) {
                changed |= states.read.remove(&id).is_some();
                continue;
            }
            let version = probe.version();
            if version.is_some() && states.versions.get(&id) == Some(&version) {
                continue;
            }
            states.versions.insert(id, version);
            states.read.insert(id, probe.read());
            changed = true;
        }
        changed
    }

    /// Where each key of `states` belongs, as the first surviving replica
    /// that publishes a placement says (empty: every key everywhere).
    fn placement(&self, states: &BTreeMap<usize, Option<ReplicaState>>) -> Placement {
        if !states.keys().any(|&id| self.probes[id].has_placement()) {
            return Placement::new();
        }
        let keys: BTreeSet<&String> = states.values().flatten().flat_map(|s| s.keys()).collect();
        keys.into_iter()
            .filter_map(|key| {
                let holders = states
                    .keys()
                    .find_map(|&id| self.probes[id].placement(key))?;
                Some((key.clone(), holders.into_iter().collect()))
            })
            .collect()
    }

    /// Steps until the operator has finished every command or `deadline`
    /// passed; says whether it finished.
    fn finish_commands(
        &mut self,
        sim: &mut turmoil::Sim,
        deadline: Duration,
    ) -> Result<bool, RunError> {
        while self.pending.get() > 0 && sim.elapsed() < deadline {
            self.step(sim)?;
        }
        Ok(self.pending.get() == 0)
    }

    fn step(&mut self, sim: &mut turmoil::Sim) -> Result<(), RunError> {
        sim.step()
            .map_err(|e| RunError::Simulation(e.to_string()))?;
        self.nemesis.observe();
        self.nemesis.supervise(sim);
        self.observe_roles(sim.elapsed());
        self.observe_logs();
        trace::after_step();
        Ok(())
    }

    /// Notes what each replica's published log shows committed now: an
    /// entry committed and replaced before the run ends is caught too.
    fn observe_logs(&mut self) {
        for (replica, probe) in self.probes.iter().enumerate() {
            match probe.read_log() {
                Some(log) => self.committed.observe(replica, &log),
                None => self.committed.stopped(replica),
            }
        }
    }

    /// Records the roles each replica took or gave up since the last step.
    fn observe_roles(&mut self, now: Duration) {
        let time = now.as_nanos() as u64;
        for (replica, (roles, seen)) in self.roles.iter().zip(&mut self.roles_seen).enumerate() {
            roles.sync(seen, |role, epoch| {
                self.role_changes.push(RoleChange {
                    time,
                    replica,
                    role: role.to_string(),
                    epoch,
                })
            });
        }
    }

    /// The replica a target names now: for a role, among the running
    /// replicas holding it, the one with the highest epoch, then the lowest
    /// id; `None` when no replica holds it.
    fn resolve(&self, target: &Target) -> Option<usize> {
        match target {
            Target::Replica(id) => Some(*id),
            Target::Role(role) => (0..self.scenario.replicas)
                .filter_map(|r| self.roles[r].epoch(role).map(|epoch| (epoch, r)))
                .max_by_key(|&(epoch, r)| (epoch, std::cmp::Reverse(r)))
                .map(|(_, r)| r),
        }
    }

    /// Applies fault `id` (the nemesis books it as fired, and as
    /// effective once it is).
    fn apply(&mut self, sim: &mut turmoil::Sim<'a>, id: usize, now: Duration) {
        let fault = &self.scenario.faults[id];
        self.nemesis.ledger.fired(id);
        let node = match fault.fault.clone().node_mut() {
            Some(target) => match self.resolve(target) {
                Some(r) => Some(r),
                None => {
                    skip(fault);
                    return;
                }
            },
            None => None,
        };
        if matches!(fault.fault, Fault::Pause { .. }) {
            self.ensure_operator(sim);
        }
        let mut others: Vec<String> = (0..self.scenario.clients)
            .map(|p| format!("client-{p}"))
            .collect();
        if self.operator.is_some() {
            others.push("operator".into());
        }
        let strike = Strike {
            id,
            fault: &fault.fault,
            node,
            now,
            others: &others,
        };
        let fail_over = self.nemesis.apply(sim, &strike, fault.for_ms);
        *self.lost.borrow_mut() = self.nemesis.lost.iter().copied().collect();
        if let Some(FailOver) = fail_over
            && self.declaration.operator_failover
        {
            self.command(sim, Command::FailOver);
        }
    }

    fn add_replica(&self, sim: &mut turmoil::Sim<'a>, id: usize) {
        let system = self.system.clone();
        let replicas = self.replicas.clone();
        let probe = self.probes[id].clone();
        let roles = self.roles[id].clone();
        let faults = self.nemesis.faults[id].clone();
        let exited = self.nemesis.exited[id].clone();
        let exits = self.exits.clone();
        let duplication = self.nemesis.duplication(Some(id));
        let name = host(id);
        let seed = self.scenario.seed;
        let starts = Cell::new(0u64);
        sim.host(name.clone(), move || {
            starts.set(starts.get() + 1);
            let node = NodeContext {
                id,
                replicas: replicas.clone(),
                net: Rc::new(SimNetwork::with_duplicates(duplication.clone())),
                disk: Rc::new(SimDisk::without_latency("/data")),
                clock: faults.clock(),
                state: probe.clone(),
                roles: roles.clone(),
                seed: node_seed(seed, id, starts.get()),
            };
            let software = system.replica(node);
            let name = name.clone();
            let exited = exited.clone();
            let exits = exits.clone();
            async move {
                trace::register_host(&name);
                let result = software.await;
                if let Err(error) = &result {
                    tracing::warn!(target: "replisim::harness", %error, "replica software failed");
                }
                exits.borrow_mut().push(exit_of(id, &result));
                exited.set(true);
                Ok(())
            }
        });
    }

    fn client_context(&self, process: u64) -> ClientContext {
        ClientContext {
            process,
            replicas: self.replicas.clone(),
            net: Rc::new(SimNetwork::with_duplicates(self.nemesis.duplication(None))),
            directory: self.directory.clone(),
        }
    }

    /// Adds client `process`; returns how many operations it will perform.
    fn add_client(&self, sim: &mut turmoil::Sim<'a>, process: u64) -> usize {
        let spec = &self.scenario.workload;
        let ops = self.workload.operations(spec, self.scenario.seed, process);
        let planned = ops.len();
        let think = spec.think_time;
        let mut client = self.system.client(self.client_context(process));
        let history = self.history.clone();
        let done = self.clients_done.clone();
        let stop = self.stop_clients.clone();
        let name = format!("client-{process}");
        sim.client(name.clone(), async move {
            trace::register_host(&name);
            let clock = HostTime::start();
            for op in ops {
                if stop.get() {
                    break;
                }
                tokio::time::sleep(think).await;
                perform(&mut *client, &history, &clock, process, op).await;
            }
            done.set(done.get() + 1);
            Ok(())
        });
        planned
    }

    /// Hands `command` to the operator, starting its host on first use (an
    /// idle host would cost a tick per step for nothing; a pause needs it
    /// earlier, to cut it off too).
    fn command(&mut self, sim: &mut turmoil::Sim<'a>, command: Command) {
        self.ensure_operator(sim);
        if let Some(operator) = &self.operator
            && operator.send(command).is_ok()
        {
            self.pending.set(self.pending.get() + 1);
        }
    }

    fn ensure_operator(&mut self, sim: &mut turmoil::Sim<'a>) {
        if self.operator.is_none() {
            let operator = Operator {
                system: self.system.clone(),
                ctx: self.client_context(self.scenario.clients as u64),
                history: self.history.clone(),
                pending: self.pending.clone(),
                lost: self.lost.clone(),
            };
            self.operator = Some(operator.start(sim));
        }
    }

    fn outcome(
        self,
        elapsed: Duration,
        final_reads_done: bool,
        replica_states: BTreeMap<usize, Option<ReplicaState>>,
    ) -> Outcome {
        let replica_logs = (0..self.scenario.replicas)
            .filter(|id| !self.nemesis.lost.contains(id))
            .filter_map(|id| Some((id, self.probes[id].read_log()?)))
            .collect();
        let history = self.history.take();
        let exits = self.exits.take();
        Outcome {
            scenario: self.scenario.clone(),
            claims: self.declaration.claims.clone(),
            workload: self.workload.clone(),
            history,
            replica_states,
            placement: Placement::new(),
            replica_logs,
            log_replaced: self.committed.violation().cloned(),
            lost: self.nemesis.lost.iter().copied().collect(),
            fault_windows: self.nemesis.windows(elapsed),
            role_changes: self.role_changes,
            final_reads_done,
            stats: RunStats {
                simulated_ms: elapsed.as_millis() as u64,
                faults_applied: self.nemesis.applied,
                // From the ledger, once the trace's effects are known.
                faults: Default::default(),
                trace_events: 0,
                effects: Default::default(),
                exits: ExitCounts::of(&exits),
                converged_after_ms: None,
                buggify: Default::default(),
                sometimes: Default::default(),
            },
            exits,
            message_times: Vec::new(),
            trace_edges: Default::default(),
            moments_reached: Default::default(),
            digest: 0,
            checked: RefCell::default(),
        }
    }
}

/// The surviving replicas' published states as last read (`None`: a
/// replica had not published one, being down or still recovering), and
/// the version each was read at.
#[derive(Default)]
struct States {
    read: BTreeMap<usize, Option<ReplicaState>>,
    versions: BTreeMap<usize, Option<StateVersion>>,
}

/// The operator host: fails over and performs the final reads.
struct Operator {
    system: Rc<dyn System>,
    ctx: ClientContext,
    history: Rc<RefCell<History>>,
    pending: Rc<Cell<usize>>,
    lost: Rc<RefCell<Vec<usize>>>,
}

impl Operator {
    fn start(self, sim: &mut turmoil::Sim<'_>) -> mpsc::UnboundedSender<Command> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        sim.client("operator", async move {
            trace::register_host("operator");
            while let Some(command) = rx.recv().await {
                match command {
                    Command::FailOver => self.fail_over().await,
                    Command::FinalReads { reads } => self.final_reads(reads).await,
                }
                self.pending.set(self.pending.get() - 1);
            }
            Ok(())
        });
        tx
    }

    /// Lets the system fail over; tries again while more replicas were lost
    /// meanwhile (the promoted one among them, perhaps), as an operator
    /// would.
    async fn fail_over(&self) {
        loop {
            let lost = self.lost.borrow().clone();
            let promoted = self.system.fail_over(self.ctx.clone(), lost.clone()).await;
            let lost_meanwhile = *self.lost.borrow() != lost;
            match promoted {
                Some(primary) if !self.lost.borrow().contains(&primary) => {
                    tracing::info!(target: "replisim::harness", primary, "failover done; clients redirected");
                    self.ctx.directory.set_primary(primary);
                    return;
                }
                _ if lost_meanwhile => {
                    tracing::info!(target: "replisim::harness", "more replicas were lost during the failover; trying again");
                }
                _ => {
                    tracing::info!(target: "replisim::harness", "the failover found no replica to promote");
                    return;
                }
            }
        }
    }

    async fn final_reads(&self, reads: Vec<Op>) {
        let mut client = self.system.client(self.ctx.clone());
        let clock = HostTime::start();
        for op in reads {
            perform(&mut *client, &self.history, &clock, self.ctx.process, op).await;
        }
    }
}

/// The seed of replica `id`'s `start`-th start in a run seeded `seed`.
fn node_seed(seed: u64, id: usize, start: u64) -> u64 {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(id as u64).to_le_bytes());
    bytes[16..].copy_from_slice(&start.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// A fault whose role no replica holds is skipped: logged and counted.
fn skip(fault: &ScheduledFault) {
    tracing::info!(target: "replisim::nemesis", fault = %fault.fault, "no replica holds the role; fault skipped");
    trace::add_effect("faults_skipped", 1);
}

/// The record of replica `replica`'s software returning `result`, now:
/// expected when its error's chain holds an injected I/O error.
fn exit_of(replica: usize, result: &NodeResult) -> Exit {
    let (cause, expected) = match result {
        Ok(()) => ("returned without an error".to_string(), false),
        Err(error) => (error.to_string(), InjectedIoError::in_chain(&**error)),
    };
    Exit {
        replica,
        time: turmoil::sim_elapsed().unwrap_or_default().as_nanos() as u64,
        cause,
        expected,
    }
}

/// Performs one operation and records it in the history.
async fn perform(
    client: &mut dyn KvClient,
    history: &RefCell<History>,
    clock: &HostTime,
    process: u64,
    op: Op,
) {
    tracing::debug!(target: "replisim::client", process, ?op, "invoke");
    history
        .borrow_mut()
        .invoke(process, clock.now().as_nanos() as u64, op.clone());
    let completion = client.call(&op).await;
    tracing::debug!(target: "replisim::client", process, ?completion, "complete");
    history
        .borrow_mut()
        .complete(process, clock.now().as_nanos() as u64, op, &completion);
}
