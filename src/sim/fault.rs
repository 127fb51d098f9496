//! Faults as values: what the nemesis does to the cluster, and when.
//!
//! A [`ScheduledFault`] fires at a simulated time, or at the first trace
//! event after that time that matches its [`Trigger`] ("crash the primary
//! right after it sends the replicate message"), or the trigger's
//! `delay_ms` after that event ("crash the leader 4 ms after a follower
//! cut its log"). With `for_ms` it undoes
//! itself after that long (a crash is followed by a restart, a partition by
//! its repair, and so on); without, it lasts until a later fault undoes it
//! or the end of the workload, when every fault is healed.
//!
//! Replicas are named by id or, through [`Target::Role`], by a role the
//! system publishes ([`crate::node::Roles`]), resolved when the fault fires:
//! among the replicas holding it, the one with the highest epoch, then the
//! lowest id. When none holds it the fault is skipped (and counted under
//! the `faults_skipped` effect). Partitions and link faults act between
//! replicas; clients keep reaching every replica unless a fault says
//! otherwise ([`Fault::Pause`] cuts a replica from clients too).
//!
//! Every fault that fires is counted, by kind, as fired and, when it did
//! something, as effective ([`crate::sim::FaultCount`]). What "did
//! something" means is said beside each variant ("Effective when ...").
//! Effects that come after the fault fires (a message dropped across a cut)
//! are credited to the faults in force on that link or replica at that
//! simulated moment. A kind that fired and was never effective is inert.
//!
//! Each fault belongs to a [`Family`], which says which part of the nemesis
//! applies it.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use crate::node::Moment;

/// A replica, by id or by a role it holds when the fault fires (in JSON, a
/// number or a role name such as `"primary"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    Replica(usize),
    Role(String),
}

impl Target {
    /// The replica holding `role` when the fault fires.
    pub fn role(role: &str) -> Self {
        Target::Role(role.to_string())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Replica(id) => write!(f, "replica-{id}"),
            Target::Role(role) => write!(f, "the {role}"),
        }
    }
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// The process dies: volatile state and unsynced disk writes are gone,
    /// synced data survives. Undone by a restart.
    ///
    /// Effective when the replica was running.
    Crash { node: Target },
    /// A crashed replica starts again on the same disk.
    ///
    /// Effective when the replica was crashed (so something restarted).
    Restart { node: Target },
    /// The machine is lost for good, disk included. Losing the primary
    /// makes the operator fail over to the most up-to-date survivor.
    ///
    /// Effective when the machine was still there: running, or crashed with
    /// its disk waiting for a restart (not when it was already lost).
    Lose { node: Target },
    /// Every replica's machine loses power at the same moment (a data
    /// centre's outage): each running replica crashes as in
    /// [`Fault::Crash`], so whatever none of them synced is gone everywhere
    /// at once. Undone by restarting them all together.
    ///
    /// Effective when at least one replica was running.
    PowerLoss,
    /// The process is alive but cut off from every replica and client (a
    /// long GC pause, a VM migration): it comes back with stale beliefs.
    ///
    /// Effective when the replica was running while paused.
    Pause { node: Target },
    /// Replicas in different groups cannot reach each other. Replicas in no
    /// group form one more group. Covers majority/minority splits.
    ///
    /// Effective when at least one message (a connection attempt included)
    /// was dropped across the cut while it was in force, or was in flight
    /// across it when the cut came.
    Partition { groups: Vec<Vec<usize>> },
    /// One replica cannot reach any other replica.
    ///
    /// Effective as [`Fault::Partition`]: a message dropped across the cut.
    Isolate { node: Target },
    /// Two halves that can only talk through `bridge`, which reaches both.
    ///
    /// Effective as [`Fault::Partition`]: a message dropped across the cut.
    Bridge {
        left: Vec<usize>,
        right: Vec<usize>,
        bridge: usize,
    },
    /// Messages from `from` to `to` are dropped; the reverse direction works.
    ///
    /// Effective when at least one message from `from` to `to` was dropped
    /// (or was in flight that way when the cut came).
    OneWay { from: Vec<usize>, to: Vec<usize> },
    /// Repairs every partition, isolation, bridge and one-way cut.
    ///
    /// Effective when it repaired at least one cut link.
    Heal,
    /// Messages between the two sets take up to `latency_ms` (instead of the
    /// scenario's maximum latency).
    ///
    /// Effective when at least one message was sent across a slowed link
    /// while it was slowed (its latency drawn from the slower range).
    Slow {
        between: Vec<usize>,
        and: Vec<usize>,
        latency_ms: u64,
    },
    /// Messages between the two sets are queued, not delivered, until the
    /// fault is undone; then they flood in.
    ///
    /// Effective when at least one message was held: sent across a held
    /// link, or in flight across it when the hold came.
    Hold {
        between: Vec<usize>,
        and: Vec<usize>,
    },
    /// Each message between the two sets is lost with this probability (in
    /// percent). On turmoil's TCP a lost segment silences the connection,
    /// so the transport must time out and reconnect.
    ///
    /// Effective when at least one message across a lossy link was dropped
    /// while it was lossy.
    Lossy {
        between: Vec<usize>,
        and: Vec<usize>,
        percent: u8,
    },
    /// Requests from and to the replica (clients' included) are re-sent
    /// after every reconnect, as at-least-once retries do: duplicates, late.
    /// Systems with their own framing get their messages written twice
    /// instead, through [`crate::net::Network::message`].
    ///
    /// Effective when at least one duplicate was sent on an open
    /// connection. Not applicable (reported so, rather than as a silent
    /// zero) to a system none of whose messages went through replisim's
    /// framing or [`crate::net::Network::message`] in the run.
    Duplicate { node: Target },
    /// The replica's clock (as its code reads it through
    /// [`crate::node::Clock`]) is off by `offset_ms` and drifts by
    /// `drift_ppm` millionths; timers still run on simulated time.
    ///
    /// Effective when the replica read its skewed clock (a skew of 0 ms
    /// and 0 ppm never is).
    ClockSkew {
        node: Target,
        offset_ms: i64,
        drift_ppm: i64,
    },
}

/// Which part of the nemesis applies a fault, and how it shows an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A replica's process or machine (crash, restart, lose, pause):
    /// effective on a replica in the right state.
    Node,
    /// The network between replicas (partitions of every shape, heal,
    /// slow, held and lossy links): effective through the messages that
    /// cross the links while the fault is in force.
    Link,
    /// What a replica's own software goes through (its transport
    /// duplicating, its clock skewed): effective when that software meets
    /// the fault.
    Process,
}

impl Fault {
    /// The kind's name, as in JSON (`crash`, `one-way`, `clock-skew`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::Lose { .. } => "lose",
            Fault::PowerLoss => "power-loss",
            Fault::Pause { .. } => "pause",
            Fault::Partition { .. } => "partition",
            Fault::Isolate { .. } => "isolate",
            Fault::Bridge { .. } => "bridge",
            Fault::OneWay { .. } => "one-way",
            Fault::Heal => "heal",
            Fault::Slow { .. } => "slow",
            Fault::Hold { .. } => "hold",
            Fault::Lossy { .. } => "lossy",
            Fault::Duplicate { .. } => "duplicate",
            Fault::ClockSkew { .. } => "clock-skew",
        }
    }

    /// The part of the nemesis that applies it.
    pub fn family(&self) -> Family {
        match self {
            Fault::Crash { .. }
            | Fault::Restart { .. }
            | Fault::Lose { .. }
            | Fault::PowerLoss
            | Fault::Pause { .. } => Family::Node,
            Fault::Partition { .. }
            | Fault::Isolate { .. }
            | Fault::Bridge { .. }
            | Fault::OneWay { .. }
            | Fault::Heal
            | Fault::Slow { .. }
            | Fault::Hold { .. }
            | Fault::Lossy { .. } => Family::Link,
            Fault::Duplicate { .. } | Fault::ClockSkew { .. } => Family::Process,
        }
    }

    /// The replica a node fault strikes (`None` for link and network faults).
    pub fn node_mut(&mut self) -> Option<&mut Target> {
        match self {
            Fault::Crash { node }
            | Fault::Restart { node }
            | Fault::Lose { node }
            | Fault::Pause { node }
            | Fault::Isolate { node }
            | Fault::Duplicate { node }
            | Fault::ClockSkew { node, .. } => Some(node),
            _ => None,
        }
    }

    /// Checks replica ids and values against the cluster size.
    pub fn validate(&self, replicas: usize) -> Result<(), String> {
        let replica = |id: usize| {
            if id < replicas {
                Ok(())
            } else {
                Err(format!(
                    "replica {id} does not exist (there are {replicas})"
                ))
            }
        };
        let target = |t: &Target| match t {
            Target::Replica(id) => replica(*id),
            Target::Role(_) => Ok(()),
        };
        let all = |ids: &[usize]| ids.iter().try_for_each(|&id| replica(id));
        if let Some(node) = self.clone().node_mut() {
            return target(node);
        }
        match self {
            Fault::Partition { groups } => groups.iter().try_for_each(|g| all(g)),
            Fault::Bridge {
                left,
                right,
                bridge,
            } => all(left).and(all(right)).and(replica(*bridge)),
            Fault::OneWay { from, to } => all(from).and(all(to)),
            Fault::Slow { between, and, .. } | Fault::Hold { between, and } => {
                all(between).and(all(and))
            }
            Fault::Lossy {
                between,
                and,
                percent,
            } => {
                if *percent > 100 {
                    return Err(format!("percent is {percent}, more than 100"));
                }
                all(between).and(all(and))
            }
            // Heal, and the node faults checked above.
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash { node } => write!(f, "crash {node}"),
            Fault::Restart { node } => write!(f, "restart {node}"),
            Fault::Lose { node } => write!(f, "lose {node} for good"),
            Fault::PowerLoss => write!(f, "power loss: every replica crashes"),
            Fault::Pause { node } => write!(f, "pause {node}"),
            Fault::Partition { groups } => write!(f, "partition {groups:?}"),
            Fault::Isolate { node } => write!(f, "isolate {node}"),
            Fault::Bridge {
                left,
                right,
                bridge,
            } => write!(f, "bridge {left:?} and {right:?} through replica-{bridge}"),
            Fault::OneWay { from, to } => write!(f, "drop messages from {from:?} to {to:?}"),
            Fault::Heal => write!(f, "heal partitions"),
            Fault::Slow {
                between,
                and,
                latency_ms,
            } => write!(f, "slow {between:?}-{and:?} links to {latency_ms} ms"),
            Fault::Hold { between, and } => {
                write!(f, "hold messages between {between:?} and {and:?}")
            }
            Fault::Lossy {
                between,
                and,
                percent,
            } => write!(
                f,
                "lose {percent}% of messages between {between:?} and {and:?}"
            ),
            Fault::Duplicate { node } => write!(f, "duplicate requests from {node}"),
            Fault::ClockSkew {
                node,
                offset_ms,
                drift_ppm,
            } => write!(
                f,
                "skew {node}'s clock by {offset_ms} ms, drifting {drift_ppm} ppm"
            ),
        }
    }
}

/// How often faults of one kind fired, and how often firing did what the
/// kind is there to do (each kind's definition is on its [`Fault`]
/// variant; disk classes: a torn tail cut off, an I/O that failed, a
/// checksum that failed). A kind that fired and was never effective is
/// inert: the run tested less than its scenario says. A firing that could
/// not apply to the system at all (duplication of a system none of whose
/// messages replisim sees) is also counted as not applicable, so the report
/// says so rather than showing a silent zero.
///
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCount {
    pub fired: u64,
    pub effective: u64,
    /// Firings the system gave no way to act on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_applicable: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FaultCount {
    /// Adds another count.
    pub fn add(&mut self, other: FaultCount) {
        self.fired += other.fired;
        self.effective += other.effective;
        self.not_applicable += other.not_applicable;
    }

    /// Fired, and never effective.
    pub fn is_inert(&self) -> bool {
        self.fired > 0 && self.effective == 0
    }

    /// Fired, and not once applicable to the system.
    pub fn is_not_applicable(&self) -> bool {
        self.fired > 0 && self.not_applicable == self.fired
    }
}

/// `fired/effective`, or `not applicable (N fired)`.
impl fmt::Display for FaultCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_not_applicable() {
            write!(f, "not applicable ({} fired)", self.fired)
        } else {
            write!(f, "{}/{}", self.fired, self.effective)
        }
    }
}

/// What an event-triggered fault waits for: the first trace event that
/// matches every part given (at least one of `target`, `message` and
/// `fields`), emitted by `host` if given (or the `nth` such event since the
/// fault was armed: "the third leader elected"); the fault fires
/// `delay_ms` after that event (at once by default).
///
/// In JSON: `"trigger": {"host": 1, "target": "replisim::engine", "message":
/// "applied replicated entries", "fields": {"count": "1"}, "nth": 2,
/// "delay_ms": 5}`.
///
/// - `target`: the event's target, or a target under it (`replisim`
///   matches `replisim::engine`, not `replisim_x`);
/// - `message`: the event's whole message;
/// - `fields`: each named field's value as the event's text shows it (its
///   `Display` for `%` fields and strings, its `Debug` otherwise: `"1"` for
///   `count = 1`, `"Some(3)"` for `?Some(3)`). JSON numbers and booleans
///   stand for their text.
///
/// ```
/// use replisim::sim::{Target, Trigger};
///
/// let trigger = Trigger::message("applied replicated entries")
///     .on(Target::Replica(1))
///     .with_field("count", 1);
/// assert_eq!(trigger.fields["count"], "1");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "field_texts"
    )]
    pub fields: BTreeMap<String, String>,
    /// The fault fires this long (simulated ms) after the event: a window
    /// that opens with the event and stays open a while ("crash the leader
    /// a few ms after a follower cut its log") is hit inside, not only at
    /// its edge.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
    /// The fault fires at the `nth` matching event since it was armed (0
    /// and 1 both mean the first).
    #[serde(default, skip_serializing_if = "is_first")]
    pub nth: u64,
}

fn is_first(nth: &u64) -> bool {
    *nth <= 1
}

impl Trigger {
    /// The first event whose message is `message`.
    pub fn message(message: &str) -> Self {
        Trigger::default().with_message(message)
    }

    /// The first event on `target` or a target under it.
    pub fn target(target: &str) -> Self {
        Trigger::default().with_target(target)
    }

    /// The same trigger, for events `host` emits.
    pub fn on(mut self, host: Target) -> Self {
        self.host = Some(host);
        self
    }

    /// The same trigger, for events on `target` or a target under it.
    pub fn with_target(mut self, target: &str) -> Self {
        self.target = Some(target.to_string());
        self
    }

    /// The same trigger, for events whose message is `message`.
    pub fn with_message(mut self, message: &str) -> Self {
        self.message = Some(message.to_string());
        self
    }

    /// The same trigger, for events whose field `name` shows `value`.
    pub fn with_field(mut self, name: &str, value: impl fmt::Display) -> Self {
        self.fields.insert(name.to_string(), value.to_string());
        self
    }

    /// The same trigger, firing its fault `ms` after the event.
    pub fn delayed(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// The same trigger, firing at the `nth` matching event (from 1).
    pub fn nth(mut self, nth: u64) -> Self {
        self.nth = nth;
        self
    }

    /// Checks the trigger names something to wait for, and a replica that
    /// exists.
    pub fn validate(&self, replicas: usize) -> Result<(), String> {
        if self.target.is_none() && self.message.is_none() && self.fields.is_empty() {
            return Err("names none of target, message and fields".into());
        }
        match self.host {
            Some(Target::Replica(id)) if id >= replicas => Err(format!(
                "host: replica {id} does not exist (there are {replicas})"
            )),
            _ => Ok(()),
        }
    }

    /// Whether an event on `target` may match (before its fields are read).
    pub(crate) fn matches_target(&self, target: &str) -> bool {
        self.target.as_deref().is_none_or(|want| {
            target
                .strip_prefix(want)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
    }

    /// Whether an event on a matching target, with message and field texts
    /// given by `text` (`None` when it has no such field), matches.
    pub(crate) fn matches_fields<'a>(&self, text: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.message
            .as_deref()
            .is_none_or(|want| text("message") == Some(want))
            && self
                .fields
                .iter()
                .all(|(name, want)| text(name) == Some(want.as_str()))
    }
}

/// The trigger that matches a declared moment's events (from any host).
impl From<&Moment> for Trigger {
    fn from(moment: &Moment) -> Self {
        Trigger::message(&moment.message).with_target(&moment.target)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{host} logs ")?,
            None => write!(f, "a host logs ")?,
        }
        if let Some(target) = &self.target {
            write!(f, "a {target} event")?;
        } else {
            write!(f, "an event")?;
        }
        if let Some(message) = &self.message {
            write!(f, " {message:?}")?;
        }
        for (i, (name, value)) in self.fields.iter().enumerate() {
            let lead = if i == 0 { " with" } else { "," };
            write!(f, "{lead} {name}={value}")?;
        }
        if self.nth > 1 {
            write!(f, " for the {}th time", self.nth)?;
        }
        if self.delay_ms > 0 {
            write!(f, ", then {} ms", self.delay_ms)?;
        }
        Ok(())
    }
}

/// Field values as text: JSON strings as they are, numbers and booleans as
/// they print.
fn field_texts<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        String(String),
        Number(serde_json::Number),
        Bool(bool),
    }
    let texts = BTreeMap::<String, Text>::deserialize(deserializer)?;
    Ok(texts
        .into_iter()
        .map(|(name, text)| {
            let text = match text {
                Text::String(text) => text,
                Text::Number(number) => number.to_string(),
                Text::Bool(value) => value.to_string(),
            };
            (name, text)
        })
        .collect())
}

/// A fault, when it fires, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Simulated ms since the start; with a trigger, when it is armed.
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
    /// Undo the fault this long after it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

impl ScheduledFault {
    /// `fault` at `at_ms`, lasting until healed.
    pub fn at(at_ms: u64, fault: Fault) -> Self {
        ScheduledFault {
            at_ms,
            fault,
            for_ms: None,
            trigger: None,
        }
    }

    /// The same fault, undone after `for_ms`.
    pub fn lasting(mut self, for_ms: u64) -> Self {
        self.for_ms = Some(for_ms);
        self
    }

    /// The same fault, fired by the first event after `at_ms` that
    /// `trigger` matches.
    pub fn when(mut self, trigger: Trigger) -> Self {
        self.trigger = Some(trigger);
        self
    }
}

impl fmt::Display for ScheduledFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fault)?;
        match &self.trigger {
            Some(trigger) => write!(f, " when {trigger} after {} ms", self.at_ms)?,
            None => write!(f, " at {} ms", self.at_ms)?,
        }
        if let Some(d) = self.for_ms {
            write!(f, " for {d} ms")?;
        }
        Ok(())
    }
}
