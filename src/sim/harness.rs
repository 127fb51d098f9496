//! The run loop: builds the turmoil simulation for a scenario, has the
//! [`Nemesis`] apply its faults (at their times or when their trigger event
//! is logged), and collects the outcome.
//!
//! Hosts: `replica-<i>` (the system's replica software), `client-<p>` (one
//! per client process), and `operator`, which performs failover when the
//! primary is lost and the final reads at the end. The operator learns what
//! to do from the run loop through a channel, the way an operator reacts to
//! a pager, and is started on first use; clients learn the primary from the
//! shared [`Directory`]. A replica whose software returns is restarted at
//! once, as a supervisor would.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::{Duration, UNIX_EPOCH},
};

use tokio::sync::mpsc;

use super::{
    fault::{Fault, Role, ScheduledFault, Target},
    nemesis::{FailOver, Nemesis, ReplicaFaults, host},
    outcome::{Outcome, RunStats},
    scenario::{Scenario, ScenarioError},
    trace,
};
use crate::{
    history::{History, Op},
    net::{DuplicationFault, SimNetwork},
    node::{
        ClientContext, Clock, Directory, KvClient, NodeContext, REPLICA_PORT, StateProbe, System,
    },
    replication::four_stage::FourStage,
    storage::SimDisk,
};

/// Why a run could not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("the simulation failed: {0}")]
    Simulation(String),
}

/// Runs a scenario of a built-in protocol.
///
/// ```
/// use replisim::replication::four_stage::Mode;
/// use replisim::sim::{run, Scenario};
/// let mut scenario = Scenario::new(Mode::Sync, 1);
/// scenario.workload.ops_per_client = 5;
/// let outcome = run(&scenario).unwrap();
/// assert!(outcome.verdicts().passed());
/// ```
pub fn run(scenario: &Scenario) -> Result<Outcome, RunError> {
    run_system(scenario, builtin_system(scenario)?)
}

/// The built-in system a scenario names.
pub fn builtin_system(scenario: &Scenario) -> Result<Rc<dyn System>, ScenarioError> {
    let mode = scenario
        .mode()
        .ok_or_else(|| ScenarioError::UnknownProtocol(scenario.protocol.clone()))?;
    Ok(Rc::new(FourStage::new(mode, scenario.engine)))
}

/// Runs a scenario against any [`System`], a user's own included.
pub fn run_system(scenario: &Scenario, system: Rc<dyn System>) -> Result<Outcome, RunError> {
    run_traced(scenario, system, false).map(|(outcome, _)| outcome)
}

/// Runs a scenario, keeping every trace line when `record` is set.
pub(crate) fn run_traced(
    scenario: &Scenario,
    system: Rc<dyn System>,
    record: bool,
) -> Result<(Outcome, Vec<String>), RunError> {
    scenario.validate()?;
    trace::begin(record);
    let result = tracing::subscriber::with_default(trace::subscriber(record), || {
        Harness::new(scenario, system).run()
    });
    let summary = trace::finish();
    let mut outcome = result?;
    outcome.digest = summary.digest;
    outcome.stats.trace_events = summary.events;
    outcome.stats.effects = summary.effects;
    outcome.message_times = summary.message_times;
    Ok((outcome, summary.lines))
}

/// The fixed wall-clock epoch of every simulation (turmoil's default is the
/// real time, which would leak into clocks and digests).
const EPOCH_SECS: u64 = 1_700_000_000;

/// What the run loop asks the operator host to do.
enum Command {
    /// A replica is lost for good: let the system fail over or reconfigure.
    FailOver,
    FinalReads {
        keys: Vec<String>,
    },
}

struct Harness<'a> {
    scenario: &'a Scenario,
    system: Rc<dyn System>,
    replicas: Rc<[String]>,
    probes: Vec<StateProbe>,
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
    fn new(scenario: &'a Scenario, system: Rc<dyn System>) -> Self {
        let replicas: Rc<[String]> = (0..scenario.replicas)
            .map(|i| format!("{}:{REPLICA_PORT}", host(i)))
            .collect();
        let probes: Vec<StateProbe> = (0..scenario.replicas)
            .map(|_| StateProbe::default())
            .collect();
        Harness {
            scenario,
            system,
            replicas,
            nemesis: Nemesis::new(
                scenario.replicas,
                scenario.network.max_latency,
                probes.clone(),
            ),
            probes,
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
        for process in 0..scenario.clients as u64 {
            self.add_client(&mut sim, process);
        }

        let mut schedule: Vec<(usize, &ScheduledFault)> =
            scenario.faults.iter().enumerate().collect();
        schedule.sort_by_key(|(i, f)| (f.at_ms, *i));
        let mut pending = schedule.into_iter().peekable();
        let workload_end = loop {
            let now = sim.elapsed();
            trace::set_harness_time(now);
            while let Some((id, fault)) =
                pending.next_if(|(_, f)| Duration::from_millis(f.at_ms) <= now)
            {
                match &fault.trigger {
                    Some(trigger) => {
                        let on = trigger.host.map(|t| host(self.resolve(t)));
                        trace::arm(id, on, trigger.event.clone());
                    }
                    None => self.apply(&mut sim, id, now),
                }
            }
            self.nemesis.undo_due(&mut sim, now);
            if self.clients_done.get() == scenario.clients || now >= limits.workload {
                break now;
            }
            self.step(&mut sim)?;
            for id in trace::take_fired() {
                trace::add_effect("faults_triggered", 1);
                let now = sim.elapsed();
                self.apply(&mut sim, id, now);
            }
        };
        self.stop_clients.set(true);
        self.nemesis.heal_everything(&mut sim, workload_end);
        // A failover still in progress is not quiet: let it finish first.
        self.finish_commands(&mut sim, workload_end + limits.final_reads)?;
        let quiet_until = sim.elapsed() + limits.quiesce;
        while sim.elapsed() < quiet_until {
            self.step(&mut sim)?;
        }
        let keys = (0..scenario.workload.keys)
            .map(|k| format!("k{k}"))
            .collect();
        self.command(&mut sim, Command::FinalReads { keys });
        let final_reads_done = self.finish_commands(&mut sim, quiet_until + limits.final_reads)?;
        trace::set_harness_time(sim.elapsed());
        Ok(self.outcome(sim.elapsed(), final_reads_done))
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
        self.nemesis.supervise(sim);
        Ok(())
    }

    fn resolve(&self, target: Target) -> usize {
        match target {
            Target::Replica(id) => id,
            Target::Role(Role::Primary) => self.directory.primary(),
        }
    }

    fn apply(&mut self, sim: &mut turmoil::Sim<'a>, id: usize, now: Duration) {
        if matches!(self.scenario.faults[id].fault, Fault::Pause { .. }) {
            self.ensure_operator(sim);
        }
        let fault = &self.scenario.faults[id];
        let mut others: Vec<String> = (0..self.scenario.clients)
            .map(|p| format!("client-{p}"))
            .collect();
        if self.operator.is_some() {
            others.push("operator".into());
        }
        let primary = self.directory.primary();
        let fail_over = self.nemesis.apply(sim, id, fault, now, primary, &others);
        *self.lost.borrow_mut() = self.nemesis.lost.iter().copied().collect();
        if let Some(FailOver) = fail_over {
            self.command(sim, Command::FailOver);
        }
    }

    fn add_replica(&self, sim: &mut turmoil::Sim<'a>, id: usize) {
        let system = self.system.clone();
        let replicas = self.replicas.clone();
        let probe = self.probes[id].clone();
        let ReplicaFaults { skew, exited, .. } = self.nemesis.faults[id].clone();
        let duplication = self.duplication(Some(id));
        let name = host(id);
        sim.host(name.clone(), move || {
            let skew = skew.clone();
            let clock = Clock::new(move || {
                let base = turmoil::since_epoch().unwrap_or_default();
                let skew = skew.get();
                if skew.is_none() {
                    return base;
                }
                trace::add_effect("skewed_clock_reads", 1);
                skew.apply(base, turmoil::sim_elapsed().unwrap_or_default())
            });
            let node = NodeContext {
                id,
                replicas: replicas.clone(),
                net: Rc::new(SimNetwork::with_duplicates(duplication.clone())),
                disk: Rc::new(SimDisk::new("/data")),
                clock,
                state: probe.clone(),
            };
            let software = system.replica(node);
            let name = name.clone();
            let exited = exited.clone();
            async move {
                trace::register_host(&name);
                if let Err(error) = software.await {
                    tracing::warn!(target: "replisim::harness", %error, "replica software failed");
                }
                exited.set(true);
                Ok(())
            }
        });
    }

    fn client_context(&self, process: u64) -> ClientContext {
        ClientContext {
            process,
            replicas: self.replicas.clone(),
            net: Rc::new(SimNetwork::with_duplicates(self.duplication(None))),
            directory: self.directory.clone(),
        }
    }

    /// The duplication fault as the network of replica `own` (or of a
    /// client) sees it: requests to a duplicating replica, and every request
    /// of a duplicating replica, are duplicated.
    fn duplication(&self, own: Option<usize>) -> DuplicationFault {
        let flags: Vec<(String, Rc<Cell<bool>>)> = self
            .replicas
            .iter()
            .zip(&self.nemesis.faults)
            .map(|(addr, faults)| (addr.clone(), faults.duplicate.clone()))
            .collect();
        let own = own.map(|id| self.nemesis.faults[id].duplicate.clone());
        Rc::new(move |addr: &str| {
            own.as_ref().is_some_and(|flag| flag.get())
                || flags.iter().any(|(a, flag)| a == addr && flag.get())
        })
    }

    fn add_client(&self, sim: &mut turmoil::Sim<'a>, process: u64) {
        let workload = &self.scenario.workload;
        let ops = workload.operations(self.scenario.seed, process);
        let think = workload.think_time;
        let mut client = self.system.client(self.client_context(process));
        let history = self.history.clone();
        let done = self.clients_done.clone();
        let stop = self.stop_clients.clone();
        let name = format!("client-{process}");
        sim.client(name.clone(), async move {
            trace::register_host(&name);
            for op in ops {
                if stop.get() {
                    break;
                }
                tokio::time::sleep(think).await;
                perform(&mut *client, &history, process, op).await;
            }
            done.set(done.get() + 1);
            Ok(())
        });
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

    fn outcome(self, elapsed: Duration, final_reads_done: bool) -> Outcome {
        let replica_states = (0..self.scenario.replicas)
            .filter(|id| !self.nemesis.lost.contains(id))
            .map(|id| (id, self.probes[id].read()))
            .collect();
        let history = self.history.borrow().clone();
        Outcome {
            scenario: self.scenario.clone(),
            history,
            replica_states,
            lost: self.nemesis.lost.iter().copied().collect(),
            fault_windows: self.nemesis.windows(elapsed),
            final_reads_done,
            stats: RunStats {
                simulated_ms: elapsed.as_millis() as u64,
                faults_applied: self.nemesis.applied,
                trace_events: 0,
                effects: Default::default(),
            },
            message_times: Vec::new(),
            digest: 0,
        }
    }
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
                    Command::FinalReads { keys } => self.final_reads(keys).await,
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

    async fn final_reads(&self, keys: Vec<String>) {
        let mut client = self.system.client(self.ctx.clone());
        for key in keys {
            let op = Op::Read { key, value: None };
            perform(&mut *client, &self.history, self.ctx.process, op).await;
        }
    }
}

/// Performs one operation and records it in the history.
async fn perform(client: &mut dyn KvClient, history: &RefCell<History>, process: u64, op: Op) {
    let now = || turmoil::sim_elapsed().unwrap_or_default().as_nanos() as u64;
    tracing::debug!(target: "replisim::client", process, ?op, "invoke");
    history.borrow_mut().invoke(process, now(), op.clone());
    let completion = client.call(&op).await;
    tracing::debug!(target: "replisim::client", process, ?completion, "complete");
    history
        .borrow_mut()
        .complete(process, now(), op, &completion);
}
