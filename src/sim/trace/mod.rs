//! Tracing for simulations: one pass over every event, stamped with the
//! simulated time and the name of the host that emitted it, serves four
//! jobs, each in its own file:
//!
//! - `digest`: folds every event that matters into the run's digest;
//! - `log`: prints lines as `RUST_LOG` asks (or keeps them in memory when
//!   a failing run's trace is being recorded);
//! - `effects`: adds up fault effects (what [`crate::effect::record`]
//!   hands over on this thread, and turmoil's own "message dropped" and
//!   "message held" events);
//! - `triggers`: watches for the events that event-triggered faults wait
//!   for;
//! - `coverage`: counts each host's pairs of consecutive events and the
//!   declared moments it emitted, what a run reached for coverage-guided
//!   search (only when a run asks).
//!
//! This file owns the wiring and the state. The subscriber is a plain
//! [`Subscriber`], not a stack of filtered layers: each callsite is enabled
//! or not once (but turmoil's sends, asked per event: see `effects`), spans
//! are never enabled, and an event costs one lookup of its host and one
//! pass over its fields. The state lives in a thread
//! local, because one simulation runs on one thread and simulations on
//! other threads keep their own.

mod coverage;
mod digest;
mod effects;
mod log;
mod triggers;

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    time::Duration,
};

use tracing::{
    Event, Level, Metadata, Subscriber, level_filters::LevelFilter, span, subscriber::Interest,
};

pub(crate) use effects::{add_effect, take_link_messages, watch_links};
pub(crate) use triggers::{arm, take_fired};

use crate::sim::fault::Trigger;

/// The trace state of the simulation running on this thread.
struct TraceState {
    digest: digest::Digest,
    effects: effects::Effects,
    triggers: triggers::Triggers,
    /// The edges, when the run counts them.
    coverage: Option<coverage::Coverage>,
    /// Every formatted line, when recording.
    recorded: Option<Vec<String>>,
    /// Whether effects are logged (as `trace` events on their target).
    log_effects: bool,
    stamps: Stamps,
}

/// What an event is stamped with: its host and the simulated time.
#[derive(Default)]
struct Stamps {
    /// The hosts by their current tokio runtime (a handful: scanned).
    hosts: Vec<HostClock>,
    harness_time: Duration,
    /// How many steps the simulation has taken.
    step: u64,
}

/// The simulated time as the current host's software sees it: the
/// simulated time when it started, and its runtime's (paused, simulated)
/// clock then. turmoil moves a running host's clock exactly one tick per
/// step, so the simulated time is `since` plus how far the clock moved:
/// the same as `turmoil::sim_elapsed()`, without looking the host up in
/// turmoil's world at every read.
pub(crate) struct HostTime {
    since: Duration,
    at: tokio::time::Instant,
}

impl HostTime {
    /// The clock of the host whose software calls it.
    pub(crate) fn start() -> Self {
        HostTime {
            since: turmoil::sim_elapsed().unwrap_or_default(),
            at: tokio::time::Instant::now(), // determinism-ok: a host's tokio clock is driven by turmoil's simulated time
        }
    }

    /// The simulated time now.
    pub(crate) fn now(&self) -> Duration {
        let now = self.since + self.at.elapsed();
        debug_assert_eq!(Some(now), turmoil::sim_elapsed());
        now
    }
}

/// A host's name and its clock ([`HostTime`]), by its tokio runtime.
struct HostClock {
    runtime: tokio::runtime::Id,
    name: Box<str>,
    time: HostTime,
    /// The step of its last stamp and the time then: a host's clock stands
    /// still within a step, so the events of one step read it once.
    last: Cell<Option<(u64, Duration)>>,
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
    /// Pairs of consecutive events of one host, with how often (see
    /// `coverage`); empty unless the run counted them.
    pub edges: BTreeMap<u64, u32>,
    /// Each declared moment a host reached, with how often; empty unless
    /// the run counted them.
    pub moments: coverage::MomentCounts,
    /// Every formatted line, when recording.
    pub lines: Vec<String>,
}

/// Starts collecting for a run on this thread (`record` keeps every line,
/// `coverage` counts the edges and these moments' occurrences) and returns
/// the run's subscriber: digest, effects and triggers always, log lines as
/// `RUST_LOG` says (see `log`).
pub(crate) fn begin(record: bool, coverage: Option<Vec<Trigger>>) -> impl Subscriber + Send + Sync {
    let log = log::Filter::new(record);
    STATE.with(|state| {
        *state.borrow_mut() = Some(TraceState {
            digest: digest::Digest::default(),
            effects: effects::Effects::default(),
            triggers: triggers::Triggers::default(),
            coverage: coverage.map(coverage::Coverage::new),
            recorded: record.then(Vec::new),
            log_effects: log.enables_target(crate::effect::TARGET, Level::TRACE),
            stamps: Stamps::default(),
        })
    });
    crate::effect::divert(Some(record_effect));
    TraceSubscriber { log }
}

/// Ends the run on this thread.
pub(crate) fn finish() -> Summary {
    STATE.with(|state| {
        let state = state.borrow_mut().take().expect("trace::begin was called");
        crate::effect::divert(None);
        let (edges, moments) = state
            .coverage
            .map(coverage::Coverage::finish)
            .unwrap_or_default();
        Summary {
            digest: state.digest.value(),
            events: state.digest.events(),
            effects: state.effects.counters,
            message_times: state.effects.message_times,
            edges,
            moments,
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
        let clock = HostClock {
            runtime: handle.id(),
            name: name.into(),
            time: HostTime::start(),
            last: Cell::new(None),
        };
        with_state(|state| {
            let hosts = &mut state.stamps.hosts;
            hosts.retain(|host| *host.name != *name);
            hosts.push(clock);
        });
    }
}

/// Call after every step of the simulation (and only there: the hosts'
/// clocks move at the next one): turmoil callsites judged
/// during the step get their interest (quiet ones are switched off, sends
/// are asked about per event). Not while an event is dispatched (the
/// rebuild would see no subscriber) nor after the run (this thread's
/// subscriber must still be the current one, lest the rebuild switch off
/// the callsites another thread's run needs).
pub(crate) fn after_step() {
    let mut judged = false;
    with_state(|state| {
        judged = state.effects.take_judged();
        state.stamps.step += 1;
    });
    if judged {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Sets the time stamped on events the harness itself emits.
pub(crate) fn set_harness_time(now: Duration) {
    with_state(|state| state.stamps.harness_time = now);
}

struct TraceSubscriber {
    log: log::Filter,
}

fn is_turmoil(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("turmoil")
}

impl TraceState {
    fn log(&mut self, line: String) {
        match self.recorded.as_mut() {
            Some(lines) => lines.push(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Takes an effect recorded on this thread ([`crate::effect::record`]):
/// folded, counted and logged as its `tracing` event would be.
fn record_effect(kind: &'static str, amount: u64) {
    with_state(|state| {
        let (time, host) = state.stamps.stamp();
        state.digest.add_effect(time, host, kind, amount);
        state.effects.record(time, kind, amount);
        if state.log_effects {
            let line = log::effect_line(time, host, kind, amount);
            state.log(line);
        }
    });
}

impl Stamps {
    /// The time and host of an event emitted now (the harness's own events
    /// are stamped with the time of the current step).
    fn stamp(&self) -> (Duration, &str) {
        let runtime = tokio::runtime::Handle::try_current().map(|handle| handle.id());
        let host = runtime
            .ok()
            .and_then(|id| self.hosts.iter().find(|host| host.runtime == id));
        match host {
            Some(host) => {
                let time = match host.last.get() {
                    Some((step, time)) if step == self.step => time,
                    _ => {
                        let time = host.time.now();
                        host.last.set(Some((self.step, time)));
                        time
                    }
                };
                (time, &host.name)
            }
            None => (self.harness_time, "harness"),
        }
    }
}

impl Subscriber for TraceSubscriber {
    /// The digest, the effects and the triggers need every event but
    /// turmoil's own, and the effects some of turmoil's (see `effects`).
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if !meta.is_event() {
            return Interest::never();
        }
        match !is_turmoil(meta) || self.log.enables(meta) {
            true => Interest::always(),
            false => effects::interest(meta),
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        // Asked for the callsites `register_callsite` leaves undecided:
        // turmoil's sends, and any that another thread's subscriber disagrees on.
        meta.is_event() && (!is_turmoil(meta) || self.log.enables(meta) || effects::enabled(meta))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let log = self.log.enables(meta);
        with_state(|state| {
            if is_turmoil(meta) {
                state.effects.count_turmoil(event);
            } else {
                let (time, host) = state.stamps.stamp();
                state.digest.add(time, host, event);
                state.triggers.watch(host, event);
                if let Some(coverage) = state.coverage.as_mut() {
                    coverage.add(host, event);
                }
            }
            if log {
                let (time, host) = state.stamps.stamp();
                state.log(log::format_line(time, host, event));
            }
        });
    }

    // Spans are never enabled: these are never called for this
    // subscriber's own sake.
    fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}
