//! Log lines: which events are printed, how a line looks, and where it
//! goes (stderr, or the recorded trace).
//!
//! `RUST_LOG` takes targets and levels (`RUST_LOG=replisim=debug`,
//! `replisim::net=trace,replisim=info`); errors only when it is unset, empty
//! or does not parse, because faults make warnings routine. A recorded trace
//! (a failing run's) has every event but turmoil's.

use std::{fmt::Write as _, time::Duration};

use tracing::{Event, Level, Metadata, field::Field, level_filters::LevelFilter};
use tracing_subscriber::filter::Targets;

/// The events printed or recorded.
pub(super) struct Filter {
    targets: Targets,
    /// The most verbose level any target logs: a quick "no" for the rest.
    max: LevelFilter,
}

impl Filter {
    pub fn new(record: bool) -> Self {
        let errors = || Targets::new().with_default(LevelFilter::ERROR);
        let targets = match record {
            true => Targets::new()
                .with_default(LevelFilter::TRACE)
                .with_target("turmoil", LevelFilter::OFF),
            false => std::env::var("RUST_LOG")
                .ok()
                .filter(|spec| !spec.trim().is_empty())
                .and_then(|spec| spec.parse().ok())
                .unwrap_or_else(errors),
        };
        let max = targets
            .iter()
            .map(|(_, level)| level)
            .chain(targets.default_level())
            .max()
            .unwrap_or(LevelFilter::OFF);
        Filter { targets, max }
    }

    pub fn enables(&self, meta: &Metadata<'_>) -> bool {
        self.enables_target(meta.target(), *meta.level())
    }

    pub fn enables_target(&self, target: &str, level: Level) -> bool {
        level <= self.max && self.targets.would_enable(target, &level)
    }
}

pub(super) fn format_line(time: Duration, host: &str, event: &Event<'_>) -> String {
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

/// The line of an effect ([`crate::effect::record`]), as its `tracing`
/// event would show.
pub(super) fn effect_line(time: Duration, host: &str, kind: &str, amount: u64) -> String {
    format!(
        "{:>12.3}ms {host:<10} {:<5} {}: kind={kind:?} amount={amount}",
        time.as_secs_f64() * 1000.0,
        level_name(Level::TRACE),
        crate::effect::TARGET
    )
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

/// Writes an event's message and fields as a log line shows them.
pub(super) struct LineVisitor<'a>(pub &'a mut String);

impl tracing::field::Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}
