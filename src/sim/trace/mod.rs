//! Tracing for simulations: one pass over every event, stamped with the
//! simulated time and the name of the host that emitted it, serves four
//! jobs, each in its own file:
//!
//! - `digest`: folds every event that matters into the run's digest;
//! - `log`: prints lines as `RUST_LOG` asks (or keeps them in memory when
//!   a failing run's trace is being recorded);
//! - `effects`: adds up fault effects ([`crate::effect`] events, and
//!   turmoil's own "message dropped" and "message held" events);
//! - `triggers`: watches for the events that event-triggered faults wait
//!   for.
//!
//! This file owns the wiring (the subscriber) and the state: it lives in a
//! thread local, because one simulation runs on one thread and simulations
//! on other threads keep their own.

mod digest;
mod effects;
mod log;
mod triggers;

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    rc::Rc,
    time::Duration,
};

use tracing::{Event, Subscriber};
use tracing_subscriber::{
    Layer, Registry,
    filter::filter_fn,
    layer::{Context, SubscriberExt},
};

pub(crate) use effects::{add_effect, effects_total};
pub(crate) use triggers::{arm, take_fired};

/// The trace state of the simulation running on this thread.
struct TraceState {
    digest: digest::Digest,
    effects: effects::Effects,
    triggers: triggers::Triggers,
    /// Every formatted line, when recording.
    recorded: Option<Vec<String>>,
    /// Looked up by the current runtime's id, never iterated.
    hosts: HashMap<tokio::runtime::Id, Rc<str>>,
    harness_time: Duration,
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
            digest: digest::Digest::default(),
            effects: effects::Effects::default(),
            triggers: triggers::Triggers::default(),
            recorded: record.then(Vec::new),
            hosts: HashMap::new(),
            harness_time: Duration::ZERO,
        })
    });
}

/// Ends the run on this thread.
pub(crate) fn finish() -> Summary {
    STATE.with(|state| {
        let state = state.borrow_mut().take().expect("trace::begin was called");
        Summary {
            digest: state.digest.value(),
            events: state.digest.events(),
            effects: state.effects.counters,
            message_times: state.effects.message_times,
            lines: state.recorded.unwrap_or_default(),
        }
    })
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
    Registry::default()
        .with(DigestLayer.with_filter(filter_fn(|meta| {
            meta.is_event()
                && (!meta.target().starts_with("turmoil")
                    || effects::turmoil_effect(meta).is_some())
        })))
        .with(log::LogLayer.with_filter(log::filter(record)))
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

/// The digest, the effect counters and the triggers, in one pass.
struct DigestLayer;

impl<S: Subscriber> Layer<S> for DigestLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        with_state(|state| {
            if let Some(kind) = effects::turmoil_effect(event.metadata()) {
                state.effects.add(kind, 1);
                return;
            }
            let (time, host) = stamp(state);
            state.digest.add(time, &host, event);
            state.effects.count(time, event);
            state.triggers.watch(&host, event);
        });
    }
}
