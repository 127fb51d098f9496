//! Reading histories recorded elsewhere, and the conventions that come with
//! each format.
//!
//! Formats ([`Format`]):
//! - `porcupine-etcd`: Jepsen's etcd logs as Porcupine's tests read them
//!   (module `porcupine`);
//! - `porcupine-kv`: Porcupine's key-value logs, one EDN map per line
//!   (module `jepsen`);
//! - `jepsen-edn`: Jepsen's EDN history of register operations
//!   (module `jepsen`);
//! - `json`: replisim's own [`History`] as serde JSON (see the module docs
//!   of [`crate::history`]).
//!
//! Formats disagree on what some completions mean; [`Conventions`] records
//! the reading rules of the tool that defined each format, so the checker
//! judges every file by its author's rules.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Completion, EventType, History, Op};

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    PorcupineEtcd,
    PorcupineKv,
    JepsenEdn,
    Json,
}

impl Format {
    /// Every format, in the order [`Format::detect`] considers them.
    pub const ALL: [Format; 4] = [
        Format::Json,
        Format::PorcupineEtcd,
        Format::PorcupineKv,
        Format::JepsenEdn,
    ];

    /// The format's command-line name, e.g. `porcupine-etcd`.
    pub fn name(self) -> &'static str {
        match self {
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
            Format::JepsenEdn => "jepsen-edn",
            Format::Json => "json",
        }
    }

    /// Guesses the format from the content: a JSON object with a string
    /// key; `jepsen.util` log lines; EDN maps with `:key` or `:f :get`/`:f
    /// :put` (key-value); other EDN (register history).
    pub fn detect(text: &str) -> Option<Format> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') && trimmed[1..].trim_start().starts_with('"') {
            return Some(Format::Json);
        }
        let first_line = trimmed.lines().next()?;
        if first_line.contains("jepsen.util") {
            return Some(Format::PorcupineEtcd);
        }
        if !matches!(first_line.chars().next(), Some('{' | '[' | '#')) {
            return None;
        }
        let kv = [":key ", ":f :get", ":f :put"];
        if kv.iter().any(|marker| first_line.contains(marker)) {
            Some(Format::PorcupineKv)
        } else {
            Some(Format::JepsenEdn)
        }
    }

    /// The reading rules of the tool that defined the format.
    pub fn conventions(self) -> Conventions {
        match self {
            Format::PorcupineEtcd => Conventions {
                failed_cas: FailedCas::CompareFailed,
                ..Conventions::default()
            },
            Format::PorcupineKv => Conventions {
                initial: Some(String::new()),
                ..Conventions::default()
            },
            Format::JepsenEdn => Conventions {
                nil_read: NilRead::Unconstrained,
                ..Conventions::default()
            },
            Format::Json => Conventions::default(),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown format `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// What an `ok` read that returned nothing means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NilRead {
    /// The key was unset (Porcupine's etcd model, replisim's own store).
    #[default]
    Unset,
    /// The read constrains nothing (Knossos's `cas-register`, the reference
    /// for Jepsen's EDN register histories).
    Unconstrained,
}

/// What a `fail` completion of a compare-and-set means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailedCas {
    /// Jepsen semantics: it did not happen and constrains nothing.
    #[default]
    DidNotHappen,
    /// The comparison ran and failed: at some point within the operation
    /// the value differed from `from` (Porcupine's etcd model).
    CompareFailed,
}

/// The reading rules the checkers apply to a history.
///
/// The default is replisim's own: a nil read means unset, a failed
/// operation did not happen, every key starts unset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Conventions {
    pub nil_read: NilRead,
    pub failed_cas: FailedCas,
    /// The initial value of every key (`None`: unset).
    pub initial: Option<String>,
}

/// A history read from a file, with the rules to judge it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub format: Format,
    pub history: History,
    pub conventions: Conventions,
}

/// Why a history file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("cannot tell the history format from the content (give it explicitly)")]
    UnknownFormat,
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("the file holds no operations")]
    Empty,
}

impl ImportError {
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        ImportError::Syntax {
            line,
            message: message.into(),
        }
    }
}

/// Reads `text` in `format` (detected from the content when `None`).
pub fn parse(text: &str, format: Option<Format>) -> Result<Imported, ImportError> {
    let format = match format {
        Some(format) => format,
        None => Format::detect(text).ok_or(ImportError::UnknownFormat)?,
    };
    let history = match format {
        Format::PorcupineEtcd => super::porcupine::parse_etcd(text)?,
        Format::PorcupineKv | Format::JepsenEdn => super::jepsen::parse_edn(text)?,
        Format::Json => serde_json::from_str(text)
            .map_err(|e| ImportError::at(e.line(), format!("invalid history JSON: {e}")))?,
    };
    if history.events.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(Imported {
        format,
        conventions: format.conventions(),
        history,
    })
}

/// Builds a [`History`] line by line, enforcing that every process runs one
/// operation at a time and completes only what it invoked.
#[derive(Default)]
pub(crate) struct Recorder {
    history: History,
    open: BTreeMap<u64, Op>,
}

impl Recorder {
    pub(crate) fn invoke(
        &mut self,
        line: usize,
        process: u64,
        time: u64,
        op: Op,
    ) -> Result<(), ImportError> {
        if self.open.contains_key(&process) {
            return Err(ImportError::at(
                line,
                format!("process {process} invokes while its previous operation is still open"),
            ));
        }
        self.open.insert(process, op.clone());
        self.history.invoke(process, time, op);
        Ok(())
    }

    /// Completes `process`'s open operation; `read` is the value an `ok`
    /// read returned.
    pub(crate) fn complete(
        &mut self,
        line: usize,
        process: u64,
        time: u64,
        kind: EventType,
        read: Option<String>,
    ) -> Result<(), ImportError> {
        let op = self.open.remove(&process).ok_or_else(|| {
            ImportError::at(
                line,
                format!("process {process} completes an operation it never invoked"),
            )
        })?;
        let completion = match kind {
            EventType::Ok => Completion::Ok(read),
            EventType::Fail => Completion::Fail(String::new()),
            EventType::Info | EventType::Invoke => Completion::Info(String::new()),
        };
        self.history.complete(process, time, op, &completion);
        Ok(())
    }

    pub(crate) fn finish(self) -> History {
        self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_every_format() {
        let cases = [
            ("{\"events\": []}", Some(Format::Json)),
            (
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
                Some(Format::PorcupineEtcd),
            ),
            (
                "{:process 1, :type :invoke, :f :get, :key \"9\", :value nil}",
                Some(Format::PorcupineKv),
            ),
            (
                "{:type :invoke, :f :read, :process 0, :value nil}",
                Some(Format::JepsenEdn),
            ),
            ("hello", None),
        ];
        for (text, expected) in cases {
            assert_eq!(Format::detect(text), expected, "{text}");
        }
    }

    #[test]
    fn malformed_files_name_the_line() {
        let etcd = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
        assert_eq!(
            parse(etcd, None).unwrap_err(),
            ImportError::at(
                2,
                "process 0 invokes while its previous operation is still open"
            )
        );
        let json = "{\"events\": [\n{\"process\": 0}]}";
        assert!(matches!(
            parse(json, None),
            Err(ImportError::Syntax { line: 2, .. })
        ));
        assert_eq!(parse("", Some(Format::JepsenEdn)), Err(ImportError::Empty));
        assert_eq!(parse("nonsense", None), Err(ImportError::UnknownFormat));
    }
}
