//! Reader and writer of histories written as EDN operation maps: Jepsen's
//! EDN histories of register operations (`jepsen-edn`) and Porcupine's
//! key-value logs (`porcupine-kv`).
//!
//! The file holds operation maps one after another, or in one vector or
//! list (`[…]`, `(…)`), with `;` comments, as plain maps or as records
//! (`#jepsen.history.Op{…}`), such as
//! `{:index 4, :time 1234, :process 0, :type :ok, :f :cas, :value [1 2]}`.
//! Fields:
//! - `:process`: an integer for a client; a map whose process is anything
//!   else (`:nemesis`) is an entry but no client operation, and is skipped;
//! - `:type`: `:invoke`, `:ok`, `:fail` or `:info`;
//! - `:f`: in `jepsen-edn`, `:read`, `:write` or `:cas` (Knossos's
//!   `cas-register`); in `porcupine-kv`, `:get`, `:put` or `:append`. A
//!   completion names its invocation's function and key;
//! - `:key`: the key, required in `porcupine-kv`; a `jepsen-edn` map without
//!   it acts on one register, [`REGISTER_KEY`] (`jepsen.independent`
//!   `[key value]` tuples are not read: such a file is refused);
//! - `:value`: the written value, `[from to]` for a cas, the value read in
//!   an `:ok` read (`nil`: see [`super::NilRead`]); an `:ok` mutation that
//!   carries a value repeats its invocation's;
//! - anything else (`:index`, `:time`, `:error`...) is allowed and ignored.
//!
//! An operation's time is its position in the file: Jepsen writes histories
//! in the order it observed them, which is all linearizability needs.
//! Integers, strings, keywords and other atoms are all values, compared as
//! text: `3` and `"3"` are equal, `:a` is `":a"`.

use std::fmt::Write as _;

use super::edn::{Edn, Reader, write_string};
use super::import::{Ending, ImportError, Read, Recorder, WriteError};
use super::{EventType, Format, History, Op};

/// The key of the single register in a history without `:key` fields.
pub const REGISTER_KEY: &str = "register";

/// The functions of a format: `(EDN keyword, Op::name)`.
fn functions(format: Format) -> [(&'static str, &'static str); 3] {
    match format {
        Format::PorcupineKv => [("get", "read"), ("put", "write"), ("append", "append")],
        _ => [("read", "read"), ("write", "write"), ("cas", "cas")],
    }
}

/// Which EDN format `text` is, from its first client operation's `:f`:
/// `:get`, `:put` or `:append` is `porcupine-kv`, anything else
/// `jepsen-edn`.
pub(crate) fn dialect(text: &str) -> Format {
    let mut reader = Reader::new(text);
    while let Ok(Some((_, form))) = reader.next_form() {
        if let Some(Edn::Int(_)) = form.get("process") {
            let kv = functions(Format::PorcupineKv);
            return match form.get("f") {
                Some(Edn::Keyword(f)) if kv.iter().any(|(k, _)| k == f) => Format::PorcupineKv,
                _ => Format::JepsenEdn,
            };
        }
    }
    Format::JepsenEdn
}

/// Parses a whole EDN history in `format` (`porcupine-kv` or `jepsen-edn`).
pub(crate) fn parse_edn(text: &str, format: Format) -> Result<Read, ImportError> {
    let mut reader = Reader::new(text);
    let mut recorder = Recorder::default();
    let mut time = 0u64;
    loop {
        let form = reader
            .next_form()
            .map_err(|e| ImportError::at(e.line, e.message))?;
        let Some((line, map)) = form else { break };
        time += 1;
        Entry { line, map: &map }.record(&mut recorder, time, format)?;
    }
    Ok(recorder.finish())
}

/// One top-level form and the line it starts on.
struct Entry<'a> {
    line: usize,
    map: &'a Edn,
}

impl Entry<'_> {
    fn record(
        &self,
        recorder: &mut Recorder,
        time: u64,
        format: Format,
    ) -> Result<(), ImportError> {
        if !matches!(self.map, Edn::Map(_)) {
            return Err(self.error(format!(
                "expected an operation map, found {}",
                self.map.kind()
            )));
        }
        let process = match self.map.get("process") {
            Some(Edn::Int(p)) => {
                u64::try_from(*p).map_err(|_| self.error(format!("a negative :process {p}")))?
            }
            Some(_) => {
                recorder.other();
                return Ok(());
            }
            None => return Err(self.error("an operation without :process")),
        };
        let kind = match self.keyword("type") {
            Some("invoke") => EventType::Invoke,
            Some("ok") => EventType::Ok,
            Some("fail") => EventType::Fail,
            Some("info") => EventType::Info,
            _ => return Err(self.unexpected("type", ":invoke, :ok, :fail or :info")),
        };
        let name = self.function(format)?;
        let key = match (self.map.get("key"), format) {
            (Some(k), _) => scalar(k).ok_or_else(|| self.unexpected("key", "a single value"))?,
            (None, Format::PorcupineKv) => return Err(self.error("an operation without :key")),
            (None, _) => REGISTER_KEY.to_string(),
        };
        let value = self.map.get("value").unwrap_or(&Edn::Nil);
        if kind == EventType::Invoke {
            let op = self.op(name, key, value)?;
            return recorder.invoke(self.line, process, time, op);
        }
        let ok = kind == EventType::Ok;
        let ending = Ending {
            kind,
            name: name.to_string(),
            repeats: match (ok, name, value) {
                (true, "write" | "append" | "cas", value) if *value != Edn::Nil => {
                    Some(self.op(name, key.clone(), value)?)
                }
                _ => None,
            },
            result: match (ok, name, value) {
                (true, "read", value) if *value != Edn::Nil => {
                    Some(scalar(value).ok_or_else(|| self.unexpected("value", "a single value"))?)
                }
                _ => None,
            },
            key,
        };
        recorder.complete(self.line, process, time, ending)
    }

    /// The operation's [`Op::name`], from `:f`.
    fn function(&self, format: Format) -> Result<&'static str, ImportError> {
        let functions = functions(format);
        let f = self.keyword("f");
        functions
            .iter()
            .find(|(keyword, _)| Some(*keyword) == f)
            .map(|(_, name)| *name)
            .ok_or_else(|| {
                let names: Vec<_> = functions.iter().map(|(k, _)| format!(":{k}")).collect();
                self.unexpected("f", &format!("{} in {format}", names.join(", ")))
            })
    }

    fn op(&self, name: &str, key: String, value: &Edn) -> Result<Op, ImportError> {
        let single = |v: &Edn| scalar(v).ok_or_else(|| self.unexpected("value", "a single value"));
        Ok(match name {
            "read" => Op::Read { key, value: None },
            "write" => Op::Write {
                key,
                value: single(value)?,
            },
            "append" => Op::Append {
                key,
                value: single(value)?,
            },
            _ => match value {
                Edn::Seq(pair) if pair.len() == 2 => Op::Cas {
                    key,
                    from: single(&pair[0])?,
                    to: single(&pair[1])?,
                },
                _ => return Err(self.unexpected("value", "[from to]")),
            },
        })
    }

    fn keyword(&self, name: &str) -> Option<&str> {
        match self.map.get(name) {
            Some(Edn::Keyword(k)) => Some(k),
            _ => None,
        }
    }

    fn error(&self, message: impl Into<String>) -> ImportError {
        ImportError::at(self.line, message)
    }

    fn unexpected(&self, field: &str, expected: &str) -> ImportError {
        let found = self
            .map
            .get(field)
            .map_or_else(|| "nothing".to_string(), |v| format!("`{v}`"));
        self.error(format!(":{field} must be {expected}, found {found}"))
    }
}

/// A value as text: integers, strings, keywords and other atoms; `None` for
/// nil and collections.
fn scalar(value: &Edn) -> Option<String> {
    match value {
        Edn::Int(i) => Some(i.to_string()),
        Edn::Str(s) => Some(s.clone()),
        Edn::Keyword(_) | Edn::Symbol(_) => Some(value.to_string()),
        Edn::Nil | Edn::Seq(_) | Edn::Map(_) => None,
    }
}

/// Writes `history` in `format` (`porcupine-kv` or `jepsen-edn`), one map
/// per line.
pub(crate) fn write_edn(history: &History, format: Format) -> Result<String, WriteError> {
    let unfit = |what: String| WriteError { format, what };
    let mut out = String::new();
    for event in &history.events {
        let op = &event.op;
        let f = functions(format)
            .iter()
            .find(|(_, name)| *name == op.name())
            .map(|(keyword, _)| *keyword)
            .ok_or_else(|| unfit(format!("the operation {}", op.name())))?;
        let process = i64::try_from(event.process)
            .map_err(|_| unfit(format!("the process {}", event.process)))?;
        let mut map = format!(
            "{{:process {process}, :type :{}, :f :{f}",
            event.kind.name()
        );
        if format == Format::PorcupineKv || op.key() != REGISTER_KEY {
            map.push_str(", :key ");
            write_string(&mut map, op.key()).expect("writing to a String");
        }
        map.push_str(", :value ");
        match op {
            Op::Write { value, .. } | Op::Append { value, .. } => write_value(&mut map, value),
            Op::Cas { from, to, .. } => {
                map.push('[');
                write_value(&mut map, from);
                map.push(' ');
                write_value(&mut map, to);
                map.push(']');
            }
            _ => match op.result() {
                Some(value) if event.kind == EventType::Ok => write_value(&mut map, value),
                _ => map.push_str("nil"),
            },
        }
        writeln!(out, "{map}}}").expect("writing to a String");
    }
    Ok(out)
}

/// A value as an integer when it reads back as the same text, else as a
/// string.
fn write_value(out: &mut String, value: &str) {
    match value.parse::<i64>() {
        Ok(n) if n.to_string() == value => out.push_str(value),
        _ => write_string(out, value).expect("writing to a String"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape_of_register_history() {
        let text = "; a Jepsen history\n\
                    [#jepsen.history.Op{:index 0, :time 10, :process 0, :type :invoke, :f :cas, :value [1 2]}\n\
                    {:index 1, :time 11, :process :nemesis, :type :info, :f :start, :value nil}\n\
                    #jepsen.history.Op{:index 2, :time 12, :process 0, :type :fail, :f :cas, :value [1 2], :error :mismatch}]\n\
                    ({:process 1, :type :invoke, :f :read, :value nil}\n\
                    {:process 1, :type :ok, :f :read, :value 3})\n";
        let read = parse_edn(text, Format::JepsenEdn).unwrap();
        assert_eq!(read.others, 1);
        let ops = read.history.operations();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].kind, EventType::Fail);
        assert_eq!(ops[1].op.key(), REGISTER_KEY);
        assert_eq!(ops[1].result.as_deref(), Some("3"));
    }

    #[test]
    fn reads_kv_maps_and_tells_the_dialects_apart() {
        let kv = "{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                  {:process 1, :type :ok, :f :get, :key \"k\", :value \"x\"}\n";
        assert_eq!(dialect(kv), Format::PorcupineKv);
        let ops = parse_edn(kv, Format::PorcupineKv)
            .unwrap()
            .history
            .operations();
        assert_eq!(
            (ops[0].op.key(), ops[0].result.as_deref()),
            ("k", Some("x"))
        );
        let register =
            "{:process :nemesis, :type :info, :f :get}\n{:process 0, :type :invoke, :f :read}";
        assert_eq!(dialect(register), Format::JepsenEdn);
    }

    #[test]
    fn refuses_bad_fields_and_other_dialects_with_their_line() {
        let read_then = |third: &str| {
            format!(
                "{{:process 0, :type :invoke, :f :read}}\n{{:process 0, :type :ok, :f :read}}\n{third}"
            )
        };
        let cases = [
            (
                read_then("{:process 0, :type :invoke, :f :cas, :value 3}"),
                Format::JepsenEdn,
                ":value must be [from to]",
            ),
            (
                read_then("{:process 0, :type :invoke, :f :get, :key \"k\"}"),
                Format::JepsenEdn,
                ":f must be :read, :write, :cas in jepsen-edn",
            ),
            (
                read_then("{:process -1, :type :invoke, :f :read}"),
                Format::JepsenEdn,
                "negative :process",
            ),
            (read_then("3"), Format::JepsenEdn, "found an integer"),
            (
                read_then("{:process 0, :type :invoke, :f :get, :value nil}"),
                Format::PorcupineKv,
                ":f must be :get",
            ),
        ];
        for (text, format, message) in cases {
            let err = parse_edn(&text, format).err().unwrap();
            assert!(
                matches!(&err, ImportError::Syntax { line, message: m, .. } if *line == 3 || m.contains(message)),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let text = "{:process 0, :type :invoke, :f :cas, :key \"k\", :value [\"a b\" 2]}\n\
                    {:process 0, :type :info, :f :cas, :key \"k\", :value [\"a b\" 2]}\n\
                    {:process 1, :type :invoke, :f :read, :value nil}\n\
                    {:process 1, :type :ok, :f :read, :value :x}\n";
        let history = parse_edn(text, Format::JepsenEdn).unwrap().history;
        let written = write_edn(&history, Format::JepsenEdn).unwrap();
        assert_eq!(
            parse_edn(&written, Format::JepsenEdn).unwrap().history,
            history
        );
        assert!(write_edn(&history, Format::PorcupineKv).is_err());
    }
}
