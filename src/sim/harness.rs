//! The run loop: builds the turmoil simulation for a scenario, applies its
//! faults at their times, and collects the outcome.
//!
//! Hosts: `replica-<i>` (the system's replica software), `client-<p>` (one
//! per client process), and `operator`, which performs failover when the
//! primary is lost and the final reads at the end. The operator learns what
//! to do from the run loop through a channel, the way an operator reacts to
//! a pager; clients learn the primary from the shared [`Directory`].

use std::{
    cell::{Cell, RefCell},
    collections::BTreeSet,
    rc::Rc,
    time::Duration,
};

use tokio::sync::mpsc;

use super::{
    fault::{Fault, Role, Target},
    outcome::{Outcome, RunStats},
    scenario::{Scenario, ScenarioError},
    trace,
};
use crate::{
    check::stats::FaultWindow,
    history::{History, Op},
    net::SimNetwork,
    node::{ClientContext, Directory, NodeContext, REPLICA_PORT, StateProbe, System},
    replication::four_stage::FourStage,
    storage::SimDisk,
};

/// Why a run could not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("host software failed: {0}")]
    Host(String),
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
    let mode = scenario
        .mode()
        .ok_or_else(|| ScenarioError::UnknownProtocol(scenario.protocol.clone()))?;
    run_system(scenario, Rc::new(FourStage::new(mode, scenario.engine)))
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
    let (digest, lines) = trace::finish();
    let mut outcome = result?;
    outcome.digest = digest.hash;
    outcome.stats.trace_events = digest.events;
    Ok((outcome, lines))
}

/// What the run loop asks the operator host to do.
enum Command {
    FailOver { lost: Vec<usize> },
    FinalReads { keys: Vec<String> },
}

struct Harness<'a> {
    scenario: &'a Scenario,
    system: Rc<dyn System>,
    replicas: Rc<[String]>,
    probes: Vec<StateProbe>,
    directory: Directory,
    history: Rc<RefCell<History>>,
    clients_done: Rc<Cell<usize>>,
    stop_clients: Rc<Cell<bool>>,
    final_reads_done: Rc<Cell<bool>>,
    crashed: BTreeSet<usize>,
    lost: BTreeSet<usize>,
    partitioned: Vec<(usize, usize)>,
    /// Fault windows: label, start, end (open while `None`).
    windows: Vec<(String, Duration, Option<Duration>)>,
    faults_applied: usize,
    operator: Option<mpsc::UnboundedSender<Command>>,
}

impl<'a> Harness<'a> {
    fn new(scenario: &'a Scenario, system: Rc<dyn System>) -> Self {
        let replicas: Rc<[String]> = (0..scenario.replicas)
            .map(|i| format!("replica-{i}:{REPLICA_PORT}"))
            .collect();
        Harness {
            scenario,
            system,
            replicas,
            probes: (0..scenario.replicas)
                .map(|_| StateProbe::default())
                .collect(),
            directory: Directory::default(),
            history: Rc::default(),
            clients_done: Rc::default(),
            stop_clients: Rc::default(),
            final_reads_done: Rc::default(),
            crashed: BTreeSet::new(),
            lost: BTreeSet::new(),
            partitioned: Vec::new(),
            windows: Vec::new(),
            faults_applied: 0,
            operator: None,
        }
    }

    fn run(mut self) -> Result<Outcome, RunError> {
        let scenario = self.scenario;
        let limits = scenario.limits;
        let mut sim = turmoil::Builder::new()
            .rng_seed(scenario.seed)
            .tick_duration(scenario.network.tick)
            .min_message_latency(scenario.network.min_latency)
            .max_message_latency(scenario.network.max_latency)
            .simulation_duration(
                limits.workload + limits.quiesce + limits.final_reads + Duration::from_secs(1),
            )
            .build();
        for id in 0..scenario.replicas {
            self.add_replica(&mut sim, id);
        }
        for process in 0..scenario.clients as u64 {
            self.add_client(&mut sim, process);
        }

        let mut faults = scenario.faults.clone();
        faults.sort_by_key(|f| f.at_ms);
        let mut pending = faults.into_iter().peekable();
        let workload_end = loop {
            let now = sim.elapsed();
            trace::set_harness_time(now);
            while let Some(fault) = pending.next_if(|f| Duration::from_millis(f.at_ms) <= now) {
                self.apply(&mut sim, &fault.fault, now);
            }
            if self.clients_done.get() == scenario.clients || now >= limits.workload {
                break now;
            }
            self.step(&mut sim)?;
        };
        self.stop_clients.set(true);
        self.heal_everything(&mut sim, workload_end);
        let quiet_until = workload_end + limits.quiesce;
        while sim.elapsed() < quiet_until {
            self.step(&mut sim)?;
        }
        let keys = (0..scenario.workload.keys)
            .map(|k| format!("k{k}"))
            .collect();
        self.command(&mut sim, Command::FinalReads { keys });
        let reads_deadline = quiet_until + limits.final_reads;
        while !self.final_reads_done.get() && sim.elapsed() < reads_deadline {
            self.step(&mut sim)?;
        }
        trace::set_harness_time(sim.elapsed());
        Ok(self.outcome(sim.elapsed()))
    }

    fn step(&self, sim: &mut turmoil::Sim) -> Result<(), RunError> {
        sim.step()
            .map(|_| ())
            .map_err(|e| RunError::Host(e.to_string()))
    }

    fn add_replica(&self, sim: &mut turmoil::Sim<'a>, id: usize) {
        let system = self.system.clone();
        let replicas = self.replicas.clone();
        let probe = self.probes[id].clone();
        let name = format!("replica-{id}");
        sim.host(name.clone(), move || {
            let node = NodeContext {
                id,
                replicas: replicas.clone(),
                net: Rc::new(SimNetwork),
                disk: Rc::new(SimDisk::new("/data")),
                state: probe.clone(),
            };
            let software = system.replica(node);
            let name = name.clone();
            async move {
                trace::register_host(&name);
                software.await
            }
        });
    }

    fn client_context(&self, process: u64) -> ClientContext {
        ClientContext {
            process,
            replicas: self.replicas.clone(),
            net: Rc::new(SimNetwork),
            directory: self.directory.clone(),
        }
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
    /// idle host would cost a tick per step for nothing).
    fn command(&mut self, sim: &mut turmoil::Sim<'a>, command: Command) {
        if self.operator.is_none() {
            self.operator = Some(self.add_operator(sim));
        }
        if let Some(operator) = &self.operator {
            let _ = operator.send(command);
        }
    }

    fn add_operator(&self, sim: &mut turmoil::Sim<'a>) -> mpsc::UnboundedSender<Command> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let system = self.system.clone();
        let process = self.scenario.clients as u64;
        let ctx = self.client_context(process);
        let history = self.history.clone();
        let done = self.final_reads_done.clone();
        sim.client("operator", async move {
            trace::register_host("operator");
            while let Some(command) = rx.recv().await {
                match command {
                    Command::FailOver { lost } => {
                        match system.fail_over(ctx.clone(), lost).await {
                            Some(primary) => {
                                tracing::info!(target: "replisim::harness", primary, "failover done; clients redirected");
                                ctx.directory.set_primary(primary);
                            }
                            None => tracing::warn!(target: "replisim::harness", "failover found no replica to promote"),
                        }
                    }
                    Command::FinalReads { keys } => {
                        let mut client = system.client(ctx.clone());
                        for key in keys {
                            let op = Op::Read { key, value: None };
                            perform(&mut *client, &history, process, op).await;
                        }
                        done.set(true);
                    }
                }
            }
            Ok(())
        });
        tx
    }

    fn resolve(&self, target: Target) -> usize {
        match target {
            Target::Replica(id) => id,
            Target::Role(Role::Primary) => self.directory.primary(),
        }
    }

    fn apply(&mut self, sim: &mut turmoil::Sim<'a>, fault: &Fault, now: Duration) {
        tracing::info!(target: "replisim::nemesis", %fault, "fault");
        self.faults_applied += 1;
        match *fault {
            Fault::Crash { node } => {
                let id = self.resolve(node);
                if self.lost.contains(&id) || !self.crashed.insert(id) {
                    return;
                }
                sim.crash(host(id));
                self.probes[id].clear();
                self.open_window(format!("replica-{id} down"), now);
            }
            Fault::Restart { node } => {
                let id = self.resolve(node);
                if self.crashed.remove(&id) {
                    sim.bounce(host(id));
                    self.close_window(&format!("replica-{id} down"), now);
                }
            }
            Fault::Lose { node } => {
                let id = self.resolve(node);
                if !self.lost.insert(id) {
                    return;
                }
                if !self.crashed.remove(&id) {
                    sim.crash(host(id));
                }
                self.probes[id].clear();
                self.open_window(format!("replica-{id} lost"), now);
                if id == self.directory.primary() {
                    let lost = self.lost.iter().copied().collect();
                    self.command(sim, Command::FailOver { lost });
                }
            }
            Fault::Partition { ref groups } => {
                let mut side = vec![groups.len(); self.scenario.replicas];
                for (g, group) in groups.iter().enumerate() {
                    for &id in group {
                        side[id] = g;
                    }
                }
                for a in 0..side.len() {
                    for b in a + 1..side.len() {
                        if side[a] != side[b] {
                            sim.partition(host(a), host(b));
                            self.partitioned.push((a, b));
                        }
                    }
                }
                self.open_window("partition".into(), now);
            }
            Fault::Heal => self.heal_partitions(sim, now),
        }
    }

    fn heal_partitions(&mut self, sim: &mut turmoil::Sim, now: Duration) {
        for (a, b) in self.partitioned.drain(..) {
            sim.repair(host(a), host(b));
        }
        self.close_window("partition", now);
    }

    /// End of the workload: repair the network and restart crashed replicas.
    fn heal_everything(&mut self, sim: &mut turmoil::Sim, now: Duration) {
        self.heal_partitions(sim, now);
        for id in std::mem::take(&mut self.crashed) {
            sim.bounce(host(id));
            self.close_window(&format!("replica-{id} down"), now);
        }
        for (_, _, end) in self.windows.iter_mut() {
            end.get_or_insert(now);
        }
    }

    fn open_window(&mut self, label: String, now: Duration) {
        if !self
            .windows
            .iter()
            .any(|(l, _, end)| *l == label && end.is_none())
        {
            self.windows.push((label, now, None));
        }
    }

    fn close_window(&mut self, label: &str, now: Duration) {
        for (_, _, end) in self.windows.iter_mut().filter(|(l, ..)| l == label) {
            end.get_or_insert(now);
        }
    }

    fn outcome(self, elapsed: Duration) -> Outcome {
        let replica_states = (0..self.scenario.replicas)
            .filter(|id| !self.lost.contains(id))
            .map(|id| (id, self.probes[id].read()))
            .collect();
        let history = self.history.borrow().clone();
        Outcome {
            scenario: self.scenario.clone(),
            history,
            replica_states,
            lost: self.lost.into_iter().collect(),
            fault_windows: self
                .windows
                .into_iter()
                .map(|(label, start, end)| FaultWindow {
                    start: start.as_nanos() as u64,
                    end: end.unwrap_or(elapsed).as_nanos() as u64,
                    label,
                })
                .collect(),
            final_reads_done: self.final_reads_done.get(),
            stats: RunStats {
                simulated_ms: elapsed.as_millis() as u64,
                faults_applied: self.faults_applied,
                trace_events: 0,
            },
            digest: 0,
        }
    }
}

fn host(id: usize) -> String {
    format!("replica-{id}")
}

/// Performs one operation and records it in the history.
async fn perform(
    client: &mut dyn crate::node::KvClient,
    history: &RefCell<History>,
    process: u64,
    op: Op,
) {
    let now = || turmoil::sim_elapsed().unwrap_or_default().as_nanos() as u64;
    tracing::debug!(target: "replisim::client", process, ?op, "invoke");
    history.borrow_mut().invoke(process, now(), op.clone());
    let completion = client.call(&op).await;
    tracing::debug!(target: "replisim::client", process, ?completion, "complete");
    history
        .borrow_mut()
        .complete(process, now(), op, &completion);
}
