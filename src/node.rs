//! The plug between the harness and replica code: what a node is given when
//! it starts on a host, and what a [`System`] under test provides and
//! declares ([`Declaration`]: cluster sizes, roles, quorum, claims).
//!
//! Roles belong to the system: a replica publishes the roles it holds
//! (primary, leader, coordinator, ...) with the epoch or term it holds them
//! in, through [`NodeContext::roles`]; faults can then strike "the node
//! that holds role R". Manual failover ([`System::fail_over`] and the
//! clients' [`Directory`]) is a facility a primary/backup system opts into
//! with [`Declaration::operator_failover`], not an assumption of the
//! harness.
//!
//! The built-in protocols implement [`System`] exactly as a user's own code
//! does; nothing here depends on turmoil, so the same node code runs inside
//! a simulation (with [`crate::net::SimNetwork`] and
//! [`crate::storage::SimDisk`]) and as a real server (with
//! [`crate::net::TcpNetwork`] and [`crate::storage::RealDisk`]).
//!
//! ```
//! use std::rc::Rc;
//! use futures_util::future::LocalBoxFuture;
//! use replisim::history::{Completion, Op};
//! use replisim::node::{ClientContext, KvClient, NodeContext, NodeResult, System};
//!
//! /// A system whose "replicas" do nothing and whose client fails every call.
//! struct Nothing;
//! struct NoClient;
//!
//! #[async_trait::async_trait(?Send)]
//! impl KvClient for NoClient {
//!     async fn call(&mut self, _op: &Op) -> Completion {
//!         Completion::Fail("nothing to talk to".into())
//!     }
//! }
//!
//! impl System for Nothing {
//!     fn replica(&self, _node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
//!         Box::pin(std::future::pending())
//!     }
//!     fn client(&self, _ctx: ClientContext) -> Box<dyn KvClient> { Box::new(NoClient) }
//! }
//! ```

use std::{cell::RefCell, collections::BTreeMap, ops::RangeInclusive, rc::Rc, time::Duration};

use futures_util::future::LocalBoxFuture;

use crate::{
    check::Guarantee,
    history::{Completion, Op},
    net::{NetError, Network},
    storage::Disk,
    workload::{KeyValue, Workload},
};

use crate::check::convergence::ReplicaState;

/// What a replica's software returns with. The harness restarts it and
/// judges the exit ([`Guarantee::NoUnexpectedExit`]): an error whose chain
/// holds an injected disk I/O error ([`crate::storage::InjectedIoError`];
/// keep the disk's error as your error's source) is an expected fail-stop;
/// any other error, or a return without one, is unexpected.
pub type NodeResult = Result<(), Box<dyn std::error::Error>>;

/// The port replicas listen on inside a simulation.
pub const REPLICA_PORT: u16 = 7000;

/// Everything a replica gets when its host starts (and again on restart).
pub struct NodeContext {
    /// This replica's index into `replicas`.
    pub id: usize,
    /// Every replica's address (`host:port`), indexed by id.
    pub replicas: Rc<[String]>,
    /// This node's network.
    pub net: Rc<dyn Network>,
    /// This node's durable storage.
    pub disk: Rc<dyn Disk>,
    /// This node's wall clock (skewed by clock faults in a simulation).
    pub clock: Clock,
    /// Where the node publishes how to read its state at the end of a run.
    pub state: StateProbe,
    /// Where the node publishes the roles it holds.
    pub roles: Roles,
    /// The seed of this start's random choices (election timeouts,
    /// jitter): inside a simulation a function of the scenario's seed, the
    /// replica's id and how often it has started, so runs repeat; for a
    /// real server, drawn from the OS. Draw through [`NodeContext::rng`].
    pub seed: u64,
}

impl NodeContext {
    /// The port to listen on: the one in this replica's own address.
    pub fn port(&self) -> u16 {
        self.replicas[self.id]
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or(REPLICA_PORT)
    }

    /// A random number generator seeded with [`NodeContext::seed`]: the
    /// only randomness replica code may use inside a simulation.
    ///
    /// ```
    /// use rand::Rng;
    /// # fn timeout(node: &replisim::node::NodeContext) -> u64 {
    /// let mut rng = node.rng();
    /// rng.random_range(150..300) // an election timeout in ms
    /// # }
    /// ```
    pub fn rng(&self) -> rand_chacha::ChaCha8Rng {
        rand::SeedableRng::seed_from_u64(self.seed)
    }
}

/// Wall-clock time as a node's code reads it: for leases, timestamps and
/// last-writer-wins. Timers (`tokio::time`) are separate and always run on
/// the (simulated) time.
#[derive(Clone)]
pub struct Clock(Rc<dyn Fn() -> Duration>);

impl Clock {
    /// A clock reading time since the Unix epoch from `source`.
    pub fn new(source: impl Fn() -> Duration + 'static) -> Self {
        Clock(Rc::new(source))
    }

    /// The machine's real clock, for real servers.
    pub fn system() -> Self {
        Clock::new(|| {
            std::time::SystemTime::now() // determinism-ok: real servers only
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
        })
    }

    /// Time since the Unix epoch.
    pub fn now(&self) -> Duration {
        (self.0)()
    }
}

/// A replica registers here a function that reads its current state, and,
/// if it keeps a replicated log, one that reads its log (for the
/// log-agreement check, [`crate::check::Guarantee::LogAgreement`]); the
/// harness calls them after the cluster quiesced. A crashed replica's
/// registrations die with it.
///
/// ```
/// use replisim::node::{LogEntry, PublishedLog, StateProbe};
///
/// let probe = StateProbe::default();
/// probe.publish_log(|| PublishedLog {
///     entries: vec![LogEntry::new(1, 1, b"write x 1")],
///     commit: 1,
/// });
/// assert_eq!(probe.read_log().unwrap().commit, 1);
/// ```
#[derive(Clone, Default)]
pub struct StateProbe(Rc<RefCell<Readers>>);

/// Where a replica says each key belongs ([`StateProbe::publish_placement`]).
type PlacementReader = Box<dyn Fn(&str) -> Vec<usize>>;

#[derive(Default)]
struct Readers {
    state: Option<Box<dyn Fn() -> ReplicaState>>,
    /// The state's version, if its replica keeps one (`None` from the
    /// function: the replica is gone).
    version: Option<Box<dyn Fn() -> Option<u64>>>,
    /// How often readers were registered or cleared.
    published: u64,
    log: Option<Box<dyn Fn() -> PublishedLog>>,
    placement: Option<PlacementReader>,
}

/// Where a probe's published state stood ([`StateProbe::version`]): equal
/// versions read equal states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateVersion {
    published: u64,
    version: Option<u64>,
}

impl StateProbe {
    /// Registers (or replaces) the function that reads this replica's state.
    pub fn publish(&self, read: impl Fn() -> ReplicaState + 'static) {
        self.set_state(Box::new(read), None);
    }

    /// Publishes `read` of `replica` without keeping it alive: once the
    /// replica is dropped, its state reads as empty.
    pub fn publish_weak<T: 'static>(
        &self,
        replica: &Rc<T>,
        read: impl Fn(&T) -> ReplicaState + 'static,
    ) {
        let replica = Rc::downgrade(replica);
        self.publish(move || replica.upgrade().map(|r| read(&r)).unwrap_or_default());
    }

    /// [`StateProbe::publish_weak`] with the state's `version`: a number
    /// that changes whenever `read` would return another state (a count of
    /// the replica's changes to it, say). An observer that already read a
    /// version reads the state again only once it changed (the harness
    /// watches the states after every step of the quiet period), so
    /// publishing one makes a run cheaper; a version that stays put while
    /// the state changes hides the change.
    pub fn publish_weak_versioned<T: 'static>(
        &self,
        replica: &Rc<T>,
        read: impl Fn(&T) -> ReplicaState + 'static,
        version: impl Fn(&T) -> u64 + 'static,
    ) {
        let weak = Rc::downgrade(replica);
        let read = move || weak.upgrade().map(|r| read(&r)).unwrap_or_default();
        let weak = Rc::downgrade(replica);
        let version = move || weak.upgrade().map(|r| version(&r));
        self.set_state(Box::new(read), Some(Box::new(version)));
    }

    fn set_state(
        &self,
        read: Box<dyn Fn() -> ReplicaState>,
        version: Option<Box<dyn Fn() -> Option<u64>>>,
    ) {
        let mut readers = self.0.borrow_mut();
        readers.state = Some(read);
        readers.version = version;
        readers.published += 1;
    }

    /// The published state's version: `None` when a reader without one
    /// ([`StateProbe::publish`]) is registered, so that only reading tells
    /// whether the state changed.
    pub fn version(&self) -> Option<StateVersion> {
        let readers = self.0.borrow();
        let version = match (&readers.state, &readers.version) {
            (None, _) => None,
            (Some(_), Some(version)) => version(),
            (Some(_), None) => return None,
        };
        Some(StateVersion {
            published: readers.published,
            version,
        })
    }

    /// Reads the state, if a live replica published a reader.
    pub fn read(&self) -> Option<ReplicaState> {
        self.0.borrow().state.as_ref().map(|read| read())
    }

    /// Registers (or replaces) the function that reads this replica's log.
    pub fn publish_log(&self, read: impl Fn() -> PublishedLog + 'static) {
        self.0.borrow_mut().log = Some(Box::new(read));
    }

    /// Reads the log, if a live replica published a reader.
    pub fn read_log(&self) -> Option<PublishedLog> {
        self.0.borrow().log.as_ref().map(|read| read())
    }

    /// Says which replicas a key belongs to, for a system that keeps each
    /// key on some of its replicas only (consistent hashing): convergence
    /// then compares each key among those replicas
    /// ([`crate::check::convergence`]). Without it, every key belongs to
    /// every replica.
    pub fn publish_placement(&self, replicas_of: impl Fn(&str) -> Vec<usize> + 'static) {
        let mut readers = self.0.borrow_mut();
        readers.placement = Some(Box::new(replicas_of));
        readers.published += 1;
    }

    /// Whether a placement was published.
    pub fn has_placement(&self) -> bool {
        self.0.borrow().placement.is_some()
    }

    /// The replicas `key` belongs to, if a live replica published a placement.
    pub fn placement(&self, key: &str) -> Option<Vec<usize>> {
        self.0.borrow().placement.as_ref().map(|of| of(key))
    }

    /// Forgets the readers (the replica crashed).
    pub fn clear(&self) {
        let mut readers = self.0.borrow_mut();
        *readers = Readers {
            published: readers.published + 1,
            ..Readers::default()
        };
    }
}

pub use crate::check::log_agreement::{LogEntry, PublishedLog};

/// The roles one replica holds, each with the epoch (or term) it holds it
/// in. A crashed replica holds none: its board is cleared with it.
#[derive(Clone, Debug, Default)]
pub struct Roles(Rc<RefCell<Board>>);

/// A role board as its replica writes it or an observer last saw it
/// ([`Roles::sync`]): the roles held, and how many writes made them so.
#[derive(Clone, Debug, Default)]
pub(crate) struct Board {
    held: BTreeMap<String, u64>,
    writes: u64,
}

impl Roles {
    /// This replica now holds `role` in `epoch`.
    pub fn hold(&self, role: &str, epoch: u64) {
        self.write(|held| {
            held.insert(role.to_string(), epoch);
        });
    }

    /// This replica no longer holds `role`.
    pub fn release(&self, role: &str) {
        self.write(|held| {
            held.remove(role);
        });
    }

    /// The epoch this replica holds `role` in, if it does.
    pub fn epoch(&self, role: &str) -> Option<u64> {
        self.0.borrow().held.get(role).copied()
    }

    /// Forgets every role (the replica crashed).
    pub fn clear(&self) {
        self.write(BTreeMap::clear);
    }

    fn write(&self, change: impl FnOnce(&mut BTreeMap<String, u64>)) {
        let mut board = self.0.borrow_mut();
        change(&mut board.held);
        board.writes += 1;
    }

    /// Makes `seen` equal to this board, calling `changed(role, epoch)` for
    /// every role taken, retaken in another epoch (`Some`) or released
    /// (`None`). Costs a comparison of counters when the board was not
    /// written since (the harness asks after every step).
    pub(crate) fn sync(&self, seen: &mut Board, mut changed: impl FnMut(&str, Option<u64>)) {
        let now = self.0.borrow();
        if now.writes == seen.writes {
            return;
        }
        seen.writes = now.writes;
        if now.held == seen.held {
            return;
        }
        for (role, &epoch) in now.held.iter() {
            if seen.held.get(role) != Some(&epoch) {
                changed(role, Some(epoch));
            }
        }
        for role in seen
            .held
            .keys()
            .filter(|role| !now.held.contains_key(*role))
        {
            changed(role, None);
        }
        seen.held.clone_from(&now.held);
    }
}

/// What a system declares for the harness and the strategies to respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The cluster sizes it accepts.
    pub replicas: RangeInclusive<usize>,
    /// The roles its replicas publish; the first is the one faults aim at
    /// by default (`replisim run --crash-primary-at` loses its holder).
    pub roles: Vec<String>,
    /// It needs a majority of replicas to make progress: random schedules
    /// then never lose a majority for good.
    pub needs_quorum: bool,
    /// The guarantees it claims; only these can fail its runs.
    pub claims: Vec<Guarantee>,
    /// It opts into operator-driven failover: when a replica is lost for
    /// good the harness calls [`System::fail_over`] and points clients'
    /// [`Directory`] at the primary it returns.
    pub operator_failover: bool,
    /// Trace events worth striking at (a leader elected, an entry
    /// committed, a vote granted): random strategies draw faults triggered
    /// on them ([`crate::strategy`]), at the emitter or elsewhere.
    pub events: Vec<Moment>,
}

/// A moment worth striking at: the `tracing` event a replica emits there,
/// named by its target and message. Strategies turn it into a fault's
/// `sim::Trigger`. A churning moment ([`Moment::churning`],
/// [`Moment::churning_emitter`]) is one where striking a replica again and
/// again is worth it ("crash the leader each time one is elected", "crash
/// the replica each time it grants a vote"): random strategies then draw
/// such churns too.
///
/// ```
/// use replisim::node::{Churning, Moment};
///
/// let elected = Moment::new("replisim::raft", "became leader").churning("leader");
/// assert_eq!(elected.message, "became leader");
/// assert_eq!(elected.churn, Some(Churning::Role("leader".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// The event's target (`tracing::info!(target: "...", ...)`).
    pub target: String,
    /// The event's whole message.
    pub message: String,
    /// Whom strategies may strike at each of the first few occurrences of
    /// this moment.
    pub churn: Option<Churning>,
}

/// Whom a churn strikes at each occurrence of its moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Churning {
    /// The holder of this role.
    Role(String),
    /// The replica that emitted the event (one replica's occurrences).
    Emitter,
}

impl Moment {
    pub fn new(target: &str, message: &str) -> Self {
        Moment {
            target: target.to_string(),
            message: message.to_string(),
            churn: None,
        }
    }

    /// The same moment, worth striking `role`'s holder at, time after time.
    pub fn churning(mut self, role: &str) -> Self {
        self.churn = Some(Churning::Role(role.to_string()));
        self
    }

    /// The same moment, worth striking the replica that emits it, time
    /// after time.
    pub fn churning_emitter(mut self) -> Self {
        self.churn = Some(Churning::Emitter);
        self
    }
}

impl Default for Declaration {
    /// Any cluster of 1 to 64 replicas, no roles, no quorum, claiming the
    /// safety guarantees (linearizable, durable, convergent, no unexpected
    /// exit; add [`Guarantee::Live`] to claim liveness too), no operator,
    /// no events to strike at.
    fn default() -> Self {
        Declaration {
            replicas: 1..=64,
            roles: Vec::new(),
            needs_quorum: false,
            claims: Guarantee::SAFETY.to_vec(),
            operator_failover: false,
            events: Vec::new(),
        }
    }
}

/// Which replica the operator currently names as primary. Clients of
/// primary-based protocols read it for every operation; leader-electing
/// protocols may ignore it.
#[derive(Clone, Debug, Default)]
pub struct Directory(Rc<std::cell::Cell<usize>>);

impl Directory {
    pub fn primary(&self) -> usize {
        self.0.get()
    }

    pub fn set_primary(&self, id: usize) {
        self.0.set(id)
    }
}

/// Everything a client (or the failover operator) gets.
#[derive(Clone)]
pub struct ClientContext {
    /// The client's process number in the history.
    pub process: u64,
    pub replicas: Rc<[String]>,
    pub net: Rc<dyn Network>,
    pub directory: Directory,
}

/// How a request that failed on the network ended, for the history: `fail`
/// when it never reached the replica (it cannot have taken effect), `info`
/// otherwise (it may have).
pub fn completion_of_error(error: NetError) -> Completion {
    if error.never_sent() {
        Completion::Fail(error.to_string())
    } else {
        Completion::Info(error.to_string())
    }
}

/// One client's connection to the system: performs one operation at a time.
#[async_trait::async_trait(?Send)]
pub trait KvClient {
    /// Performs `op` and says how it ended. Must return (the harness does not
    /// time it out): give up with [`Completion::Info`] after a deadline.
    async fn call(&mut self, op: &Op) -> Completion;
}

/// A replicated system under test.
pub trait System {
    /// What the harness and the strategies must respect.
    fn declaration(&self) -> Declaration {
        Declaration::default()
    }

    /// The workload its clients run (by default [`KeyValue`]).
    fn workload(&self) -> Rc<dyn Workload> {
        Rc::new(KeyValue)
    }

    /// The replica's software: runs until the host crashes. Called again on
    /// every restart, with the same disk; if it returns, the harness
    /// restarts it at once and judges the exit (see [`NodeResult`]).
    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult>;

    /// A client connection.
    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient>;

    /// With [`Declaration::operator_failover`], called whenever the harness
    /// loses a replica for good (`lost` lists every replica lost so far):
    /// promote a survivor, or reconfigure the
    /// current primary without the lost members, and return the primary's
    /// id (the harness then points the [`Directory`] at it). `None` means
    /// nothing could be done; the harness tries again only if more replicas
    /// were lost meanwhile. The default does nothing.
    fn fail_over(
        &self,
        ctx: ClientContext,
        lost: Vec<usize>,
    ) -> LocalBoxFuture<'static, Option<usize>> {
        let _ = (ctx, lost);
        Box::pin(async { None })
    }
}
