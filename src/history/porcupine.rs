//! Reader and writer of Jepsen's etcd logs in the form Porcupine's tests
//! read them (`porcupine-etcd`).
//!
//! Every non-blank line is a log record, `LEVEL logger - message` (levels
//! `TRACE` to `FATAL`); records of loggers other than `jepsen.util` are
//! skipped, and anything else is refused. A `jepsen.util` record is an
//! operation, `INFO  jepsen.util - 3 :ok :cas [3 0]` (fields separated by
//! tabs or spaces): a process number, the type (`:invoke`, `:ok`, `:fail`,
//! `:info`), the function (`:read`, `:write`, `:cas`) and a value (`nil`, an
//! integer, `[from to]`, or an error keyword such as `:timed-out` in a
//! `:fail` or `:info` line). A record whose process is a keyword (the
//! `:nemesis`) is an entry but no client operation. A completion names its
//! invocation's function; an `:ok` write or cas, and a `:fail` or `:info`
//! one that carries a value rather than an error keyword, repeats its
//! value. The register is one key, [`ETCD_KEY`]; an operation's time is its
//! line number.
//!
//! Porcupine's rules (see [`super::Format::conventions`]): `:ok :read nil`
//! means the key was unset; `:fail :cas` means the comparison failed;
//! `:fail :read :timed-out` completes a read that constrains nothing; an
//! `:info` write or cas may take effect at any time after its invocation,
//! or never.

use std::fmt::Write as _;

use super::import::{Ending, ImportError, Read, Recorder, WriteError};
use super::{EventType, Format, History, Op};

/// The key of the single register in an etcd log.
pub const ETCD_KEY: &str = "etcd";

const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The logger and message of a log record `LEVEL logger - message`.
pub(crate) fn log_record(line: &str) -> Option<(&str, &str)> {
    let (level, rest) = line.split_once(char::is_whitespace)?;
    let (logger, message) = rest.trim_start().split_once(" - ")?;
    (LEVELS.contains(&level) && !logger.contains(char::is_whitespace)).then_some((logger, message))
}

/// Parses a whole etcd log.
pub(crate) fn parse_etcd(text: &str) -> Result<Read, ImportError> {
    let mut recorder = Recorder::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((logger, message)) = log_record(line) else {
            return Err(ImportError::at(
                n,
                "expected a log line `LEVEL logger - message`",
            ));
        };
        if logger != "jepsen.util" {
            continue;
        }
        let mut fields = message.split_whitespace();
        let process = match fields.next() {
            Some(keyword) if is_keyword(keyword) => {
                recorder.other();
                continue;
            }
            field => match field.map(str::parse::<u64>) {
                Some(Ok(process)) => process,
                _ => return Err(unexpected(n, "process number or :nemesis", field)),
            },
        };
        let kind = match fields.next() {
            Some(":invoke") => EventType::Invoke,
            Some(":ok") => EventType::Ok,
            Some(":fail") => EventType::Fail,
            Some(":info") => EventType::Info,
            other => return Err(unexpected(n, "type", other)),
        };
        let f = fields.next();
        let value = fields.collect::<Vec<_>>().join(" ");
        if value.is_empty() {
            return Err(ImportError::at(n, "a line without a value"));
        }
        let time = n as u64;
        let op = match f {
            Some(":read" | ":write" | ":cas")
                if matches!(kind, EventType::Fail | EventType::Info) && is_keyword(&value) =>
            {
                None
            }
            Some(":read") => read(n, &value).map(|_| {
                Some(Op::Read {
                    key: ETCD_KEY.into(),
                    value: None,
                })
            })?,
            Some(":write") => Some(Op::Write {
                key: ETCD_KEY.into(),
                value: integer(n, &value)?,
            }),
            Some(":cas") => {
                let (from, to) = pair(n, &value)?;
                Some(Op::Cas {
                    key: ETCD_KEY.into(),
                    from,
                    to,
                })
            }
            other => return Err(unexpected(n, "function", other)),
        };
        match op {
            Some(op) if kind == EventType::Invoke => recorder.invoke(n, process, time, op)?,
            op => {
                let name = f.unwrap_or_default().trim_start_matches(':').to_string();
                let result = match (kind, name.as_str()) {
                    (EventType::Ok, "read") => read(n, &value)?,
                    _ => None,
                };
                let ending = Ending {
                    kind,
                    name,
                    key: ETCD_KEY.into(),
                    repeats: op,
                    result,
                };
                recorder.complete(n, process, time, ending)?;
            }
        }
    }
    Ok(recorder.finish())
}

/// Writes `history` as an etcd log: one register, integer values.
pub(crate) fn write_etcd(history: &History) -> Result<String, WriteError> {
    let unfit = |what: String| WriteError {
        format: Format::PorcupineEtcd,
        what,
    };
    let mut out = String::new();
    for event in &history.events {
        let op = &event.op;
        if op.key() != ETCD_KEY {
            return Err(unfit(format!(
                "key {:?} (its one key is {ETCD_KEY:?})",
                op.key()
            )));
        }
        let number = |v: &String| {
            v.parse::<i64>()
                .ok()
                .filter(|n| n.to_string() == *v)
                .map(|_| v.clone())
                .ok_or_else(|| unfit(format!("the value {v:?} (its values are integers)")))
        };
        let value = match (op, event.kind) {
            (Op::Read { value: None, .. }, EventType::Invoke | EventType::Ok) => "nil".into(),
            (Op::Read { value: Some(v), .. }, EventType::Ok) => number(v)?,
            (Op::Read { .. }, _) => ":timed-out".into(),
            (Op::Write { value, .. }, _) => number(value)?,
            (Op::Cas { from, to, .. }, _) => format!("[{} {}]", number(from)?, number(to)?),
            (op, _) => return Err(unfit(format!("the operation {}", op.name()))),
        };
        writeln!(
            out,
            "INFO  jepsen.util - {}\t:{}\t:{}\t{value}",
            event.process,
            event.kind.name(),
            op.name()
        )
        .expect("writing to a String");
    }
    Ok(out)
}

/// An EDN keyword such as `:nemesis` or `:timed-out`.
fn is_keyword(field: &str) -> bool {
    field.len() > 1 && field.starts_with(':') && !field.contains(char::is_whitespace)
}

fn unexpected(line: usize, what: &str, found: Option<&str>) -> ImportError {
    ImportError::at(
        line,
        format!("expected a {what}, found `{}`", found.unwrap_or("")),
    )
}

fn integer(line: usize, value: &str) -> Result<String, ImportError> {
    value
        .parse::<i64>()
        .map(|v| v.to_string())
        .map_err(|_| ImportError::at(line, format!("expected an integer, found `{value}`")))
}

fn read(line: usize, value: &str) -> Result<Option<String>, ImportError> {
    match value {
        "nil" => Ok(None),
        _ => integer(line, value).map(Some),
    }
}

fn pair(line: usize, value: &str) -> Result<(String, String), ImportError> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(|| ImportError::at(line, format!("expected `[from to]`, found `{value}`")))?;
    match inner.split_whitespace().collect::<Vec<_>>()[..] {
        [from, to] => Ok((integer(line, from)?, integer(line, to)?)),
        _ => Err(ImportError::at(
            line,
            format!("expected `[from to]`, found `{value}`"),
        )),
    }
}
