//! Log lines: which events are printed (as `RUST_LOG` says; errors only by
//! default, because faults make warnings routine; everything from replisim
//! when a failing run's trace is recorded), how a line looks, and where it
//! goes (stderr, or the recorded trace).

use std::{fmt::Write as _, time::Duration};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{Layer, filter::EnvFilter, layer::Context};

use super::{stamp, with_state};

/// The events printed or recorded.
pub(super) fn filter(record: bool) -> EnvFilter {
    if record {
        EnvFilter::new("trace,turmoil=off")
    } else {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"))
    }
}

pub(super) struct LogLayer;

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
