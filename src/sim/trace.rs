//! Tracing for simulations: every event is stamped with the simulated time
//! and the name of the host that emitted it, folded into the run's digest,
//! and printed when `RUST_LOG` asks for it (or kept in memory when a failing
//! run's trace is being recorded).
//!
//! The digest covers every event except turmoil's own per-tick ones,
//! whatever the log level: message deliveries and client events are `trace`
//! and `debug` events that the digest layer always enables. Hashing is
//! streaming (xxh3, no allocation per event), so the digest stays cheap.
//! The state lives in a thread local: one simulation runs on one thread,
//! and simulations on other threads keep their own.
//!
//! Three more jobs ride on the same pass over events: adding up fault
//! effects ([`crate::effect`], plus turmoil's own "message dropped" and
//! "message held" events, whose callsites alone are enabled with its
//! "message sent"), watching for the events that event-triggered faults
//! wait for, and, while the nemesis watches links, keeping which link each
//! of turmoil's message events was on (`take_link_messages`), so effects
//! are credited to the faults in force there.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    rc::Rc,
    time::Duration,
};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{
    Layer, Registry,
    filter::{EnvFilter, filter_fn},
    layer::{Context, SubscriberExt},
};
use xxhash_rust::xxh3::Xxh3;

use super::links::{LinkEvent, LinkMessage};

/// The trace state of the simulation running on this thread.
struct TraceState {
    hasher: Xxh3,
    events: u64,
    /// Looked up by the current runtime's id, never iterated.
    hosts: HashMap<tokio::runtime::Id, Rc<str>>,
    harness_time: Duration,
    recorded: Option<Vec<String>>,
    effects: BTreeMap<String, u64>,
    /// When each message was delivered (simulated ns).
    message_times: Vec<u64>,
    /// Armed triggers: (id, host that must emit it or any, text the event's
    /// message must contain).
    triggers: Vec<(usize, Option<String>, String)>,
    fired: Vec<usize>,
    /// turmoil's message events, while the nemesis watches links.
    link_messages: Option<Vec<LinkMessage>>,
}

thread_local! {
    static STATE: RefCell<Option<TraceState>> = const { RefCell::new(None) };
}

/// What the trace of a finished run adds up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub digest: u64,
    pub events: u64,
    pub effects: BTreeMap<String, u64>,
    pub message_times: Vec<u64>,
    /// Every formatted line, when recording.
    pub lines: Vec<String>,
}

/// Starts collecting for a run on this thread; `record` keeps every line.
pub(crate) fn begin(record: bool) {
    STATE.with(|state| {
        *state.borrow_mut() = Some(TraceState {
            hasher: Xxh3::new(),
            events: 0,
            hosts: HashMap::new(),
            harness_time: Duration::ZERO,
            recorded: record.then(Vec::new),
            effects: BTreeMap::new(),
            message_times: Vec::new(),
            triggers: Vec::new(),
            fired: Vec::new(),
            link_messages: None,
        })
    });
}

/// Ends the run on this thread.
pub(crate) fn finish() -> Summary {
    STATE.with(|state| {
        let state = state.borrow_mut().take().expect("trace::begin was called");
        Summary {
            digest: state.hasher.digest(),
            events: state.events,
            effects: state.effects,
            message_times: state.message_times,
            lines: state.recorded.unwrap_or_default(),
        }
    })
}

/// Arms trigger `id`: it fires at the next event whose message contains
/// `text`, emitted by `host` (any host when `None`).
pub(crate) fn arm(id: usize, host: Option<String>, text: String) {
    with_state(|state| state.triggers.push((id, host, text)));
}

/// The triggers that fired since the last call (each fires once).
pub(crate) fn take_fired() -> Vec<usize> {
    STATE.with(|state| {
        state
            .borrow_mut()
            .as_mut()
            .map(|state| std::mem::take(&mut state.fired))
            .unwrap_or_default()
    })
}

/// Counts an effect the harness itself observed.
pub(crate) fn add_effect(kind: &str, amount: u64) {
    with_state(|state| *state.effects.entry(kind.to_string()).or_default() += amount);
}

/// Starts (or stops) keeping turmoil's message events with their links.
pub(crate) fn watch_links(on: bool) {
    with_state(|state| match (on, &state.link_messages) {
        (true, None) => state.link_messages = Some(Vec::new()),
        (false, _) => state.link_messages = None,
        (true, Some(_)) => {}
    });
}

/// The message events kept since the last call.
pub(crate) fn take_link_messages() -> Vec<LinkMessage> {
    let mut taken = Vec::new();
    with_state(|state| {
        if let Some(messages) = state.link_messages.as_mut() {
            taken = std::mem::take(messages);
        }
    });
    taken
}

fn with_state(f: impl FnOnce(&mut TraceState)) {
    STATE.with(|state| {
        if let Some(state) = state.borrow_mut().as_mut() {
            f(state)
        }
    });
}

/// Names the host whose tokio runtime is current (call from the host's
/// software as it starts; a restart makes a new runtime).
pub(crate) fn register_host(name: &str) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        with_state(|state| {
            state.hosts.insert(handle.id(), Rc::from(name));
        });
    }
}

/// Sets the time stamped on events the harness itself emits.
pub(crate) fn set_harness_time(now: Duration) {
    with_state(|state| state.harness_time = now);
}

/// The subscriber for one run: digest always, log lines as `RUST_LOG` says
/// (errors only by default: faults make warnings routine; everything from
/// replisim when recording).
pub(crate) fn subscriber(record: bool) -> impl Subscriber + Send + Sync {
    let log_filter = if record {
        EnvFilter::new("trace,turmoil=off")
    } else {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"))
    };
    Registry::default()
        .with(DigestLayer.with_filter(filter_fn(|meta| {
            meta.is_event()
                && (!meta.target().starts_with("turmoil") || turmoil_message(meta).is_some())
        })))
        .with(LogLayer.with_filter(log_filter))
}

fn stamp(state: &TraceState) -> (Duration, Rc<str>) {
    let host = tokio::runtime::Handle::try_current()
        .ok()
        .and_then(|handle| state.hosts.get(&handle.id()).cloned());
    match host {
        Some(host) => (turmoil::sim_elapsed().unwrap_or(state.harness_time), host),
        None => (state.harness_time, Rc::from("harness")),
    }
}

/// turmoil 0.7.2 logs a message sent on a link at `src/top.rs:346`, a
/// dropped one at line 394 and a held one at line 390 (`trace!` events with
/// no other way to tell them apart); the tests
/// `partitions_count_dropped_messages` and
/// `every_fault_kind_has_a_counted_effect` notice if an
/// upgrade moves them.
fn turmoil_message(meta: &tracing::Metadata<'_>) -> Option<LinkEvent> {
    if meta.target() != "turmoil" || !meta.file().is_some_and(|f| f.ends_with("top.rs")) {
        return None;
    }
    match meta.line() {
        Some(346) => Some(LinkEvent::Sent),
        Some(390) => Some(LinkEvent::Held),
        Some(394) => Some(LinkEvent::Dropped),
        _ => None,
    }
}

struct DigestLayer;

impl<S: Subscriber> Layer<S> for DigestLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        with_state(|state| {
            if let Some(message) = turmoil_message(meta) {
                if let Some(kind) = message.effect() {
                    *state.effects.entry(kind.to_string()).or_default() += 1;
                }
                if let Some(messages) = state.link_messages.as_mut() {
                    messages.extend(LinkMessage::of(message, event));
                }
                return;
            }
            let (time, host) = stamp(state);
            let hasher = &mut state.hasher;
            hasher.update(&(time.as_nanos() as u64).to_le_bytes());
            hasher.update(host.as_bytes());
            hasher.update(meta.target().as_bytes());
            event.record(&mut HashVisitor(hasher));
            state.events += 1;
            if meta.target() == crate::effect::TARGET {
                let mut effect = EffectVisitor::default();
                event.record(&mut effect);
                if let Some(kind) = effect.kind {
                    if kind == crate::effect::MESSAGES_DELIVERED {
                        state.message_times.push(time.as_nanos() as u64);
                    }
                    *state.effects.entry(kind).or_default() += effect.amount;
                }
            }
            if !state.triggers.is_empty() {
                let mut message = String::new();
                event.record(&mut LineVisitor(&mut message));
                let fired: Vec<usize> = state
                    .triggers
                    .iter()
                    .filter(|(_, on, text)| {
                        on.as_deref().is_none_or(|h| h == &*host) && message.contains(text.as_str())
                    })
                    .map(|(id, ..)| *id)
                    .collect();
                state.triggers.retain(|(id, ..)| !fired.contains(id));
                state.fired.extend(fired);
            }
        });
    }
}

#[derive(Default)]
struct EffectVisitor {
    kind: Option<String>,
    amount: u64,
}

impl tracing::field::Visit for EffectVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "amount" {
            self.amount = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "kind" {
            self.kind = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

struct HashVisitor<'a>(&'a mut Xxh3);

impl std::fmt::Write for HashVisitor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

impl tracing::field::Visit for HashVisitor<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.update(field.name().as_bytes());
        self.0.update(&value.to_le_bytes());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.update(field.name().as_bytes());
        self.0.update(value.as_bytes());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.update(field.name().as_bytes());
        let _ = write!(self, "{value:?}");
    }
}

struct LogLayer;

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        with_state(|state| {
            let (time, host) = stamp(state);
            let line = format_line(time, &host, event);
            match state.recorded.as_mut() {
                Some(lines) => lines.push(line),
                None => eprintln!("{line}"),
            }
        });
    }
}

fn format_line(time: Duration, host: &str, event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut line = format!(
        "{:>12.3}ms {host:<10} {:<5} {}:",
        time.as_secs_f64() * 1000.0,
        level_name(*meta.level()),
        meta.target()
    );
    event.record(&mut LineVisitor(&mut line));
    line
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

struct LineVisitor<'a>(&'a mut String);

impl tracing::field::Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}
