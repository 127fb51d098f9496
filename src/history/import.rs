//! Reading and writing histories recorded elsewhere, and the conventions
//! that come with each format.
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
//!
//! [`parse`] refuses a malformed file with one [`ImportError`] that names
//! the line, the problem and quotes the line; every reader checks its
//! invocations and completions through one `Recorder`, so the pairing
//! rules (one open operation per process, a completion names its
//! invocation's function and key) are the same in every format.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Completion, Event, EventType, History, Op};

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
    /// key; log lines (`INFO  jepsen.util - ...`); EDN (a map, vector,
    /// list, record or comment first) whose first client operation is a
    /// `:get`, `:put` or `:append` (key-value) or anything else (register).
    pub fn detect(text: &str) -> Option<Format> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') && trimmed[1..].trim_start().starts_with('"') {
            return Some(Format::Json);
        }
        let first_line = trimmed.lines().next()?;
        if super::porcupine::log_record(first_line).is_some() {
            return Some(Format::PorcupineEtcd);
        }
        if !matches!(first_line.chars().next(), Some('{' | '[' | '(' | '#' | ';')) {
            return None;
        }
        Some(super::jepsen::dialect(text))
    }

    /// Writes `history` in this format, so that [`parse`] reads back the
    /// same events (in the formats without times, `porcupine-etcd`,
    /// `porcupine-kv` and `jepsen-edn`, an event's time is its position).
    ///
    /// ```
    /// use replisim::history::{Format, History, Op, parse};
    /// use replisim::history::Completion;
    ///
    /// let mut history = History::default();
    /// let op = Op::Write { key: "register".into(), value: "3".into() };
    /// history.invoke(0, 1, op.clone());
    /// history.complete(0, 2, op, &Completion::Ok(None));
    /// let edn = Format::JepsenEdn.write(&history)?;
    /// assert_eq!(edn, "{:process 0, :type :invoke, :f :write, :value 3}\n\
    ///                  {:process 0, :type :ok, :f :write, :value 3}\n");
    /// assert_eq!(parse(&edn, Some(Format::JepsenEdn))?.history, history);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(self, history: &History) -> Result<String, WriteError> {
        match self {
            Format::PorcupineEtcd => super::porcupine::write_etcd(history),
            Format::PorcupineKv | Format::JepsenEdn => super::jepsen::write_edn(history, self),
            Format::Json => Ok(serde_json::to_string(history).expect("a history serialises")),
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
    /// Entries read and left out because they are not client operations
    /// (the nemesis's, in Jepsen's formats).
    pub others: usize,
}

/// At most this many characters of the offending line are quoted in an
/// [`ImportError`].
const EXCERPT_CHARS: usize = 100;

/// Why a history file could not be read. Each is one line of text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("cannot tell the history format from the content (give it explicitly){}", quoted(.excerpt))]
    UnknownFormat {
        /// The first line, shortened.
        excerpt: String,
    },
    #[error("line {line}: {message}{}", quoted(.excerpt))]
    Syntax {
        line: usize,
        message: String,
        /// The offending line, shortened to about 100 characters.
        excerpt: String,
    },
    #[error("line {line}: the file is not UTF-8 text")]
    NotText { line: usize },
    #[error("the file is empty")]
    Empty,
    #[error("the file holds no history entries")]
    NoEntries,
}

impl ImportError {
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        ImportError::Syntax {
            line,
            message: message.into(),
            excerpt: String::new(),
        }
    }

    /// Quotes the offending line, and says when the file looks truncated or
    /// in another format than the one it was read as. (A log line always
    /// ends with a newline; EDN and JSON say truncation themselves: a
    /// collection or string never closed.)
    fn explained(self, text: &str, format: Format) -> Self {
        let ImportError::Syntax {
            line, mut message, ..
        } = self
        else {
            return self;
        };
        let last_line = text.bytes().filter(|&b| b == b'\n').count() + 1;
        if format == Format::PorcupineEtcd && line == last_line && !text.ends_with('\n') {
            message.push_str(" (the last line ends without a newline: is the file truncated?)");
        }
        if let Some(other) = Format::detect(text).filter(|&other| other != format) {
            message.push_str(&format!(" (the content looks like {other}, not {format})"));
        }
        ImportError::Syntax {
            line,
            message,
            excerpt: excerpt_of(text, line),
        }
    }
}

/// Line `line` of `text`, trimmed, at most [`EXCERPT_CHARS`] characters,
/// control characters but tabs escaped.
fn excerpt_of(text: &str, line: usize) -> String {
    let Some(content) = text.split('\n').nth(line.saturating_sub(1)) else {
        return String::new();
    };
    let content = content.trim();
    let mut excerpt: String = content
        .chars()
        .take(EXCERPT_CHARS)
        .flat_map(|c| {
            let escape = c.is_control() && c != '\t';
            let escaped = escape.then(|| c.escape_default());
            escaped.into_iter().flatten().chain((!escape).then_some(c))
        })
        .collect();
    if content.chars().nth(EXCERPT_CHARS).is_some() {
        excerpt.push('…');
    }
    excerpt
}

fn quoted(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": `{excerpt}`")
    }
}

/// Why a history cannot be written in a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} cannot hold {what}")]
pub struct WriteError {
    pub format: Format,
    /// What the format has no way to say, e.g. `the operation add`.
    pub what: String,
}

/// Reads `content` in `format` (detected from the content when `None`).
///
/// Every line must belong to the format: a line that does not, a
/// completion that names another function or key than its invocation, an
/// `ok` completion that repeats another value, or a truncated file is an
/// [`ImportError`] naming the line. A file with entries but no client
/// operation is read (with [`Imported::others`] counting the entries); one
/// with nothing in it is [`ImportError::Empty`].
pub fn parse(content: impl AsRef<[u8]>, format: Option<Format>) -> Result<Imported, ImportError> {
    let bytes = content.as_ref();
    let text = std::str::from_utf8(bytes).map_err(|e| ImportError::NotText {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })?;
    if text.trim().is_empty() {
        return Err(ImportError::Empty);
    }
    let format = match format {
        Some(format) => format,
        None => Format::detect(text).ok_or_else(|| ImportError::UnknownFormat {
            excerpt: excerpt_of(text.trim_start(), 1),
        })?,
    };
    let read = match format {
        Format::PorcupineEtcd => super::porcupine::parse_etcd(text),
        Format::PorcupineKv | Format::JepsenEdn => super::jepsen::parse_edn(text, format),
        Format::Json => parse_json(text),
    }
    .map_err(|e| e.explained(text, format))?;
    if read.history.events.is_empty() && read.others == 0 {
        return Err(ImportError::NoEntries);
    }
    Ok(Imported {
        format,
        conventions: format.conventions(),
        history: read.history,
        others: read.others,
    })
}

/// Reads replisim's own JSON, event by event so that a problem names the
/// line its event starts on.
fn parse_json(text: &str) -> Result<Read, ImportError> {
    #[derive(Deserialize)]
    struct Events<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let at = |line: usize, e: serde_json::Error| {
        ImportError::at(
            line + e.line().saturating_sub(1),
            format!("invalid history JSON: {e}"),
        )
    };
    let events: Events = serde_json::from_str(text).map_err(|e| at(1, e))?;
    let mut recorder = Recorder::default();
    let (mut line, mut counted) = (1, 0);
    for raw in events.events {
        let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        line += text.as_bytes()[counted..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted = offset;
        let event: Event = serde_json::from_str(raw.get()).map_err(|e| at(line, e))?;
        if event.kind == EventType::Invoke {
            recorder.invoke(line, event.process, event.time, event.op)?;
        } else {
            let ending = Ending {
                kind: event.kind,
                name: event.op.name().to_string(),
                key: event.op.key().to_string(),
                result: event.op.result().cloned(),
                repeats: Some(event.op.with_result(None)),
            };
            recorder.complete(line, event.process, event.time, ending)?;
        }
    }
    Ok(recorder.finish())
}

/// What a reader made of a file: the client history and how many other
/// entries it left out.
pub(crate) struct Read {
    pub(crate) history: History,
    pub(crate) others: usize,
}

/// What a completion line says about the operation it ends.
pub(crate) struct Ending {
    pub(crate) kind: EventType,
    /// The function, as [`Op::name`] names it, and the key: both must be
    /// the invocation's.
    pub(crate) name: String,
    pub(crate) key: String,
    /// The operation as the completion repeats it, when it does (without
    /// a result): it must be the invocation's.
    pub(crate) repeats: Option<Op>,
    /// For an `ok` read or call, the value returned.
    pub(crate) result: Option<String>,
}

/// Builds a [`History`] line by line, enforcing that every process runs one
/// operation at a time and completes only what it invoked.
#[derive(Default)]
pub(crate) struct Recorder {
    history: History,
    open: BTreeMap<u64, Op>,
    others: usize,
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

    /// Completes `process`'s open operation.
    pub(crate) fn complete(
        &mut self,
        line: usize,
        process: u64,
        time: u64,
        ending: Ending,
    ) -> Result<(), ImportError> {
        let op = self.open.remove(&process).ok_or_else(|| {
            ImportError::at(
                line,
                format!("process {process} completes an operation it never invoked"),
            )
        })?;
        let differs = if ending.name != op.name() {
            Some(format!("a {} but invoked a {}", ending.name, op.name()))
        } else if ending.key != op.key() {
            Some(format!(
                "key {:?} but invoked key {:?}",
                ending.key,
                op.key()
            ))
        } else {
            let invoked = op.clone().with_result(None);
            ending
                .repeats
                .filter(|stated| *stated != invoked)
                .map(|stated| {
                    let json = |op: &Op| serde_json::to_string(op).unwrap_or_default();
                    format!("{} but invoked {}", json(&stated), json(&invoked))
                })
        };
        if let Some(differs) = differs {
            return Err(ImportError::at(
                line,
                format!("process {process} completes {differs}"),
            ));
        }
        let completion = match ending.kind {
            EventType::Ok => Completion::Ok(ending.result),
            EventType::Fail => Completion::Fail(String::new()),
            EventType::Info | EventType::Invoke => Completion::Info(String::new()),
        };
        self.history.complete(process, time, op, &completion);
        Ok(())
    }

    /// Counts an entry that is not a client operation.
    pub(crate) fn other(&mut self) {
        self.others += 1;
    }

    pub(crate) fn finish(self) -> Read {
        Read {
            history: self.history,
            others: self.others,
        }
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
                "INFO  jepsen.core - Worker 0 starting",
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
            (
                "; a history\n({:process 0, :type :invoke, :f :put, :key \"k\", :value \"v\"})",
                Some(Format::PorcupineKv),
            ),
            ("hello", None),
        ];
        for (text, expected) in cases {
            assert_eq!(Format::detect(text), expected, "{text}");
        }
    }

    const ETCD_READ: &str = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
    const KNOSSOS: &str = "{:process 0, :type :invoke, :f :write, :value 1}\n\
                           {:process 0, :type :ok, :f :write, :value 1}\n";

    /// Every kind of bad input is refused with its line, the problem and
    /// the line quoted.
    #[test]
    fn bad_input_names_its_line_and_problem() {
        let json_read = "{\"events\": [\n{\"process\": 0, \"time\": 1, \"type\": \"invoke\", \"op\": {\"f\": \"read\", \"key\": \"k\"}},\n";
        let cases: Vec<(String, Option<Format>, usize, &str)> = vec![
            // A completion names another function or key than its invocation.
            (
                "{:process 0, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                 {:process 0, :type :ok, :f :put, :key \"k\", :value \"x\"}\n"
                    .into(),
                None,
                2,
                "process 0 completes a write but invoked a read",
            ),
            (
                "{:process 0, :type :invoke, :f :read, :key \"a\"}\n\
                 {:process 0, :type :ok, :f :read, :key \"b\", :value 1}\n"
                    .into(),
                None,
                2,
                "completes key \"b\" but invoked key \"a\"",
            ),
            (
                format!("{ETCD_READ}INFO  jepsen.util - 0\t:ok\t:write\t3\n"),
                None,
                2,
                "completes a write but invoked a read",
            ),
            (
                format!(
                    "{json_read}{{\"process\": 0, \"time\": 2, \"type\": \"ok\", \"op\": {{\"f\": \"write\", \"key\": \"k\", \"value\": \"x\"}}}}]}}"
                ),
                None,
                3,
                "completes a write but invoked a read",
            ),
            (
                "{:process 0, :type :invoke, :f :write, :value 1}\n\
                 {:process 0, :type :ok, :f :write, :value 2}\n"
                    .into(),
                None,
                2,
                "completes {\"f\":\"write\",\"key\":\"register\",\"value\":\"2\"} but invoked",
            ),
            // A truncated final line, in every format.
            (
                format!("{ETCD_READ}INFO  jepsen.ut"),
                None,
                2,
                "is the file truncated?",
            ),
            (
                format!("{ETCD_READ}INFO  jepsen.util - 0\t:ok\t:rea"),
                None,
                2,
                "a line without a value (the last line ends without a newline",
            ),
            (
                format!("{ETCD_READ}INFO  jepsen.util - 0\t:ok\t:read"),
                None,
                2,
                "a line without a value",
            ),
            (
                format!("{KNOSSOS}{{:process 1, :type :invoke, :f :re"),
                None,
                3,
                "the `{` opened on line 3 is never closed",
            ),
            (
                format!("[{KNOSSOS}"),
                None,
                3,
                "the `[` opened on line 1 is never closed",
            ),
            (json_read.into(), None, 3, "invalid history JSON: EOF"),
            // A file in another format than the one named.
            (
                KNOSSOS.into(),
                Some(Format::PorcupineKv),
                1,
                ":f must be :get, :put, :append in porcupine-kv, found `:write` (the content looks like jepsen-edn, not porcupine-kv)",
            ),
            (
                KNOSSOS.into(),
                Some(Format::PorcupineEtcd),
                1,
                "expected a log line `LEVEL logger - message` (the content looks like jepsen-edn",
            ),
            (
                ETCD_READ.into(),
                Some(Format::JepsenEdn),
                1,
                "expected an operation map, found a symbol (the content looks like porcupine-etcd",
            ),
            (
                ETCD_READ.into(),
                Some(Format::Json),
                1,
                "invalid history JSON",
            ),
            // Garbage anywhere.
            (
                format!("{ETCD_READ}garbage\nINFO  jepsen.util - 0\t:ok\t:read\tnil\n"),
                None,
                2,
                "expected a log line",
            ),
            (
                format!("INFO  jepsen.util - x\t:ok\t:read\tnil\n{ETCD_READ}"),
                None,
                1,
                "expected a process number or :nemesis, found `x`",
            ),
            (format!("{KNOSSOS}garbage\n"), None, 3, "found a symbol"),
            (format!("{KNOSSOS}}}\n"), None, 3, "unexpected `}`"),
            (
                format!("{{:process 0, :type :invoke, :f :write, :value 1}}\n\"junk\"\n{KNOSSOS}"),
                None,
                2,
                "found a string",
            ),
        ];
        for (text, format, line, message) in cases {
            match parse(&text, format) {
                Err(err @ ImportError::Syntax { line: l, .. }) => {
                    assert_eq!(l, line, "{text}: {err}");
                    assert!(err.to_string().contains(message), "{text}: {err}");
                    assert!(err.to_string().starts_with(&format!("line {line}: ")));
                    assert!(!err.to_string().contains('\n'), "{err}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn quotes_at_most_a_hundred_characters() {
        let text = format!("{ETCD_READ}{}\n", "x".repeat(500));
        let err = parse(&text, None).unwrap_err();
        let ImportError::Syntax { excerpt, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(excerpt.chars().count(), EXCERPT_CHARS + 1, "{err}");
        assert!(err.to_string().ends_with("xxx…`"), "{err}");
        let control = parse(format!("{ETCD_READ}\u{1b}[31mred\r\n"), None).unwrap_err();
        assert!(
            control.to_string().contains("`\\u{1b}[31mred`"),
            "{control}"
        );
    }

    #[test]
    fn empty_files_and_files_without_client_operations() {
        assert_eq!(parse("", None), Err(ImportError::Empty));
        assert_eq!(
            parse(" \n\t\n", Some(Format::Json)),
            Err(ImportError::Empty)
        );
        assert_eq!(
            parse("; nothing\n", Some(Format::JepsenEdn)),
            Err(ImportError::NoEntries)
        );
        assert_eq!(parse("{\"events\": []}", None), Err(ImportError::NoEntries));
        assert_eq!(
            parse("INFO  jepsen.core - Worker 0 starting\n", None),
            Err(ImportError::NoEntries)
        );
        let nemesis = "{:process :nemesis, :type :info, :f :start, :value nil}\n\
                       {:process :nemesis, :type :info, :f :start, :value [:isolated]}\n";
        let imported = parse(nemesis, None).unwrap();
        assert_eq!((imported.others, imported.history.events.len()), (2, 0));
        let etcd = "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n";
        assert_eq!(parse(etcd, None).unwrap().others, 1);
        assert_eq!(
            parse([b'{', b'\n', 0xff], None),
            Err(ImportError::NotText { line: 2 })
        );
        assert!(matches!(
            parse("nonsense", None),
            Err(ImportError::UnknownFormat { excerpt }) if excerpt == "nonsense"
        ));
    }

    #[test]
    fn double_invocations_and_orphan_completions_are_refused() {
        let twice = format!("{ETCD_READ}{ETCD_READ}");
        assert_eq!(
            parse(&twice, None).unwrap_err().to_string(),
            "line 2: process 0 invokes while its previous operation is still open: \
             `INFO  jepsen.util - 0\t:invoke\t:read\tnil`"
        );
        let orphan = "{:process 3, :type :ok, :f :read, :value 1}";
        assert!(
            parse(orphan, None)
                .unwrap_err()
                .to_string()
                .contains("process 3 completes an operation it never invoked")
        );
    }
}
