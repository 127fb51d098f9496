//! Reader for histories written as EDN operation maps: Jepsen's EDN
//! histories of register operations (`jepsen-edn`) and Porcupine's
//! key-value logs (`porcupine-kv`).
//!
//! The file is a sequence of maps, or vectors of maps, such as
//! `{:process 0, :type :ok, :f :cas, :value [1 2], :time 1234}`. Fields:
//! - `:process`: an integer; maps whose process is not an integer (the
//!   nemesis) are skipped;
//! - `:type`: `:invoke`, `:ok`, `:fail` or `:info`;
//! - `:f`: `:read`/`:get`, `:write`/`:put`, `:append` or `:cas`;
//! - `:key`: the key (Porcupine's key-value logs); without it every
//!   operation acts on one register, [`REGISTER_KEY`] (`jepsen.independent`
//!   `[key value]` tuples are not read: such a file is rejected);
//! - `:value`: the written value, `[from to]` for a cas, the value read in
//!   an `:ok` read (`nil`: see [`super::NilRead`]).
//!
//! An operation's time is its position in the file: Jepsen writes histories
//! in the order it observed them, which is all linearizability needs.
//! Integers, strings and keywords are all values; `3` and `"3"` are equal.

use super::edn::{Edn, Reader};
use super::import::{ImportError, Recorder};
use super::{EventType, History, Op};

/// The key of the single register in a history without `:key` fields.
pub const REGISTER_KEY: &str = "register";

/// Parses a whole EDN history.
pub(crate) fn parse_edn(text: &str) -> Result<History, ImportError> {
    let mut reader = Reader::new(text);
    let mut recorder = Recorder::default();
    let mut time = 0u64;
    loop {
        let form = reader
            .next_form()
            .map_err(|e| ImportError::at(e.line, e.message))?;
        let Some((line, map)) = form else { break };
        time += 1;
        record(&mut recorder, line, time, &map)?;
    }
    Ok(recorder.finish())
}

fn record(recorder: &mut Recorder, line: usize, time: u64, map: &Edn) -> Result<(), ImportError> {
    if !matches!(map, Edn::Map(_)) {
        return Err(ImportError::at(
            line,
            format!("expected an operation map, found `{map}`"),
        ));
    }
    let process = match map.get("process") {
        Some(Edn::Int(p)) if *p >= 0 => *p as u64,
        Some(Edn::Int(p)) => {
            return Err(ImportError::at(line, format!("negative process {p}")));
        }
        Some(_) => return Ok(()),
        None => return Err(ImportError::at(line, "operation without :process")),
    };
    let kind = match keyword(map, "type") {
        Some("invoke") => EventType::Invoke,
        Some("ok") => EventType::Ok,
        Some("fail") => EventType::Fail,
        Some("info") => EventType::Info,
        _ => return Err(field_error(line, map, "type")),
    };
    let key = match map.get("key") {
        None => REGISTER_KEY.to_string(),
        Some(k) => scalar(k).ok_or_else(|| field_error(line, map, "key"))?,
    };
    let value = map.get("value").unwrap_or(&Edn::Nil);
    let f = keyword(map, "f");
    if kind != EventType::Invoke {
        let read = match (kind, f) {
            (EventType::Ok, Some("read" | "get")) if *value != Edn::Nil => {
                Some(scalar(value).ok_or_else(|| field_error(line, map, "value"))?)
            }
            _ => None,
        };
        return recorder.complete(line, process, time, kind, read);
    }
    let written = || scalar(value).ok_or_else(|| field_error(line, map, "value"));
    let op = match f {
        Some("read" | "get") => Op::Read { key, value: None },
        Some("write" | "put") => Op::Write {
            key,
            value: written()?,
        },
        Some("append") => Op::Append {
            key,
            value: written()?,
        },
        Some("cas") => match value {
            Edn::Seq(pair) => match &pair[..] {
                [from, to] => Op::Cas {
                    key,
                    from: scalar(from).ok_or_else(|| field_error(line, map, "value"))?,
                    to: scalar(to).ok_or_else(|| field_error(line, map, "value"))?,
                },
                _ => return Err(field_error(line, map, "value")),
            },
            _ => return Err(field_error(line, map, "value")),
        },
        _ => return Err(field_error(line, map, "f")),
    };
    recorder.invoke(line, process, time, op)
}

fn keyword<'a>(map: &'a Edn, name: &str) -> Option<&'a str> {
    match map.get(name) {
        Some(Edn::Keyword(k)) => Some(k),
        _ => None,
    }
}

/// A value as a string: integers, strings and keywords; `None` for nil and
/// collections.
fn scalar(value: &Edn) -> Option<String> {
    match value {
        Edn::Int(i) => Some(i.to_string()),
        Edn::Str(s) => Some(s.clone()),
        Edn::Keyword(_) | Edn::Symbol(_) | Edn::Bool(_) | Edn::Float(_) => Some(value.to_string()),
        Edn::Nil | Edn::Seq(_) | Edn::Map(_) => None,
    }
}

fn field_error(line: usize, map: &Edn, field: &str) -> ImportError {
    let found = map
        .get(field)
        .map_or_else(|| "nothing".to_string(), |v| format!("`{v}`"));
    ImportError::at(
        line,
        format!("unexpected :{field}: found {found} in `{map}`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_register_and_kv_maps() {
        let text = "[{:process 0, :type :invoke, :f :cas, :value [1 2]}\n\
                    {:process :nemesis, :type :info, :f :start}\n\
                    {:process 0, :type :fail, :f :cas, :value [1 2]}]\n\
                    {:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                    {:process 1, :type :ok, :f :get, :key \"k\", :value \"x\"}\n";
        let ops = parse_edn(text).unwrap().operations();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].kind, EventType::Fail);
        assert_eq!(ops[1].op.key(), "k");
        assert_eq!(ops[1].result.as_deref(), Some("x"));
    }

    #[test]
    fn rejects_bad_fields_with_their_line() {
        let text = "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :read}\n{:process 0, :type :invoke, :f :cas, :value 3}";
        let err = parse_edn(text).unwrap_err();
        assert!(
            matches!(&err, ImportError::Syntax { line: 3, message } if message.contains(":value")),
            "{err}"
        );
    }
}
