//! Reader for Jepsen's etcd logs in the form Porcupine's tests read them
//! (`porcupine-etcd`).
//!
//! Each operation line looks like
//! `INFO  jepsen.util - 3 :ok :cas [3 0]` (tab-separated): a process number, the
//! completion type (`:invoke`, `:ok`, `:fail`, `:info`), the function
//! (`:read`, `:write`, `:cas`) and a value (`nil`, an integer, `[from to]`
//! or `:timed-out`); fields are separated by tabs or spaces. Other log lines
//! (no `jepsen.util -`, or a process that is not a number, like the
//! nemesis) are skipped, as Porcupine skips them. The register is one key,
//! [`ETCD_KEY`]; an operation's time is its line number.
//!
//! Porcupine's rules (see [`super::Format::conventions`]): `:ok :read nil`
//! means the key was unset; `:fail :cas` means the comparison failed;
//! `:fail :read :timed-out` completes a read that constrains nothing; an
//! `:info` write or cas may take effect at any time after its invocation,
//! or never.

use super::import::{ImportError, Recorder};
use super::{EventType, History, Op};

/// The key of the single register in an etcd log.
pub const ETCD_KEY: &str = "etcd";

/// Parses a whole etcd log.
pub(crate) fn parse_etcd(text: &str) -> Result<History, ImportError> {
    let mut recorder = Recorder::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((_, rest)) = line.split_once("jepsen.util - ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let Some(Ok(process)) = fields.next().map(str::parse::<u64>) else {
            continue;
        };
        let kind = match fields.next() {
            Some(":invoke") => EventType::Invoke,
            Some(":ok") => EventType::Ok,
            Some(":fail") => EventType::Fail,
            Some(":info") => EventType::Info,
            other => return Err(unexpected(n, "completion type", other)),
        };
        let f = fields.next();
        let value: Vec<&str> = fields.collect();
        let value = value.join(" ");
        let time = n as u64;
        if kind == EventType::Invoke {
            let op = match f {
                Some(":read") => read(n, &value).map(|_| Op::Read {
                    key: ETCD_KEY.into(),
                    value: None,
                })?,
                Some(":write") => Op::Write {
                    key: ETCD_KEY.into(),
                    value: integer(n, &value)?,
                },
                Some(":cas") => {
                    let (from, to) = pair(n, &value)?;
                    Op::Cas {
                        key: ETCD_KEY.into(),
                        from,
                        to,
                    }
                }
                other => return Err(unexpected(n, "function", other)),
            };
            recorder.invoke(n, process, time, op)?;
        } else {
            let result = match (kind, f) {
                (EventType::Ok, Some(":read")) => read(n, &value)?,
                (_, Some(":read" | ":write" | ":cas")) => None,
                (_, other) => return Err(unexpected(n, "function", other)),
            };
            recorder.complete(n, process, time, kind, result)?;
        }
    }
    Ok(recorder.finish())
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
