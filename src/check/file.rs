//! Checking a history file: what `replisim check FILE` runs.
//!
//! [`check_file`] reads the file, detects or takes its [`Format`], applies
//! the format's [`crate::history::Conventions`] (with `--initial`
//! overriding the initial value) and checks linearizability. The report's
//! first line is `linearizable`, `not linearizable` or `unknown`, followed
//! by the explanation or the reason; [`CheckReport::exit_code`] is 0, 1 or
//! 2 respectively, and a file that cannot be read or is malformed (see
//! [`crate::history::parse`]: empty, not in its format, truncated, a
//! completion that does not match its invocation) exits with
//! [`CheckError::EXIT_CODE`] (3). A history whose entries hold no client
//! operation (only the nemesis's) is trivially linearizable, with a note
//! saying so.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Verdict;
use super::explain::NonLinearizable;
use super::linearizable::{SearchLimits, check_operations};
use crate::history::{Format, ImportError, Imported, parse};

/// Options of `replisim check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// The file's format (`None`: detect it from the content).
    pub format: Option<Format>,
    /// Every key's initial value, overriding the format's (`--initial`).
    pub initial: Option<String>,
    pub limits: SearchLimits,
}

/// Why a file could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed history {}: {source}", path.display())]
    Malformed { path: PathBuf, source: ImportError },
}

impl CheckError {
    /// The exit status for a file that cannot be checked.
    pub const EXIT_CODE: i32 = 3;
}

/// The outcome of checking one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub path: PathBuf,
    pub format: Format,
    /// Operations in the history (invocations).
    pub operations: usize,
    pub verdict: Verdict<NonLinearizable>,
    /// Time spent checking, parsing and pairing events excluded.
    pub elapsed: Duration,
    /// A remark printed under the verdict (a history without client
    /// operations is linearizable trivially).
    pub note: Option<String>,
}

impl CheckReport {
    /// 0 linearizable, 1 not linearizable, 2 unknown.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Ok => 0,
            Verdict::Violation(_) => 1,
            Verdict::Unknown(_) => 2,
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Ok => write!(f, "linearizable"),
            Verdict::Violation(evidence) => write!(f, "not linearizable\n{evidence}"),
            Verdict::Unknown(reason) => write!(f, "unknown\n{reason}"),
        }?;
        match &self.note {
            Some(note) => write!(f, "\n{note}"),
            None => Ok(()),
        }
    }
}

/// Reads the file (see [`Format`]) and checks it.
pub fn check_file(path: &Path, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let text = std::fs::read(path).map_err(|source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let imported = parse(&text, opts.format).map_err(|source| CheckError::Malformed {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(check_imported(path, &imported, opts))
}

/// Checks an already parsed history.
pub fn check_imported(path: &Path, imported: &Imported, opts: &CheckOptions) -> CheckReport {
    let mut conventions = imported.conventions.clone();
    if let Some(initial) = &opts.initial {
        conventions.initial = Some(initial.clone());
    }
    let ops = imported.history.operations();
    let start = Instant::now(); // determinism-ok: not simulated
    let verdict = check_operations(&ops, &conventions, &opts.limits);
    let note = ops.is_empty().then(|| {
        let entries = if imported.others == 1 {
            "entry"
        } else {
            "entries"
        };
        format!(
            "the history holds no client operation ({} other {entries}, such as the nemesis's): \
             trivially linearizable",
            imported.others
        )
    });
    CheckReport {
        path: path.to_path_buf(),
        format: imported.format,
        operations: ops.len(),
        verdict,
        elapsed: start.elapsed(),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every golden history gets the verdict `EXPECTED.md` lists for it.
    #[test]
    fn golden_histories_get_their_expected_verdicts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories");
        let expected = std::fs::read_to_string(dir.join("EXPECTED.md")).unwrap();
        let mut checked = 0;
        for row in expected
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains('/'))
        {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (file, verdict) = (cells[1], cells[2]);
            let report = check_file(&dir.join(file), &CheckOptions::default()).unwrap();
            let first_line = report.to_string().lines().next().unwrap_or("").to_string();
            assert_eq!(first_line, verdict, "{file}: {report}");
            checked += 1;
        }
        assert_eq!(checked, 86);
    }

    fn report(text: &str, format: Option<Format>, initial: Option<&str>) -> CheckReport {
        let imported = parse(text, format).unwrap();
        let opts = CheckOptions {
            initial: initial.map(String::from),
            ..CheckOptions::default()
        };
        check_imported(Path::new("h"), &imported, &opts)
    }

    #[test]
    fn conventions_initial_values_and_exit_codes() {
        let edn = "{:process 0, :type :invoke, :f :write, :value 1}\n\
                   {:process 0, :type :ok, :f :write, :value 1}\n\
                   {:process 1, :type :invoke, :f :read, :value nil}\n\
                   {:process 1, :type :ok, :f :read, :value nil}\n";
        let jepsen = report(edn, None, None);
        assert_eq!((jepsen.format, jepsen.exit_code()), (Format::JepsenEdn, 0));
        assert_eq!(jepsen.to_string(), "linearizable");
        let strict = Imported {
            conventions: Format::PorcupineKv.conventions(),
            ..parse(edn, None).unwrap()
        };
        let strict = check_imported(Path::new("h"), &strict, &CheckOptions::default());
        assert_eq!(strict.exit_code(), 1);
        assert!(
            strict
                .to_string()
                .starts_with("not linearizable\nkey \"register\"")
        );
        let zero = "{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :ok, :f :read, :value 0}";
        assert_eq!(report(zero, None, None).exit_code(), 1);
        assert_eq!(report(zero, None, Some("0")).exit_code(), 0);
    }

    #[test]
    fn own_histories_round_trip_through_json() {
        let history = crate::check::generate::Spec::new(200, 2, 3, 5).generate();
        let json = serde_json::to_string(&history).unwrap();
        let imported = parse(&json, None).unwrap();
        assert_eq!(
            (imported.format, &imported.history),
            (Format::Json, &history)
        );
        assert_eq!(report(&json, None, None).exit_code(), 0);
    }

    #[test]
    fn unreadable_and_malformed_files_are_errors() {
        let missing = check_file(Path::new("/nonexistent/h.log"), &CheckOptions::default());
        assert!(matches!(missing, Err(CheckError::Io { .. })));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories");
        let wrong = CheckOptions {
            format: Some(Format::PorcupineEtcd),
            ..CheckOptions::default()
        };
        let err = check_file(&dir.join("kv/c01-ok.txt"), &wrong).unwrap_err();
        assert!(
            err.to_string().contains(
                "kv/c01-ok.txt: line 1: expected a log line `LEVEL logger - message` \
                 (the content looks like porcupine-kv, not porcupine-etcd): `{:process 0, "
            ),
            "{err}"
        );
        let err = check_file(&dir.join("EXPECTED.md"), &CheckOptions::default()).unwrap_err();
        assert!(matches!(err, CheckError::Malformed { .. }), "{err}");
    }

    #[test]
    fn histories_without_client_operations_are_trivially_linearizable() {
        let nemesis = "[{:process :nemesis, :type :info, :f :start, :value nil}\n\
                       {:process :nemesis, :type :info, :f :stop, :value nil}]";
        let checked = report(nemesis, None, None);
        assert_eq!((checked.exit_code(), checked.operations), (0, 0));
        assert_eq!(
            checked.to_string(),
            "linearizable\nthe history holds no client operation (2 other entries, \
             such as the nemesis's): trivially linearizable"
        );
        let empty = tempfile::NamedTempFile::new().unwrap();
        let err = check_file(empty.path(), &CheckOptions::default()).unwrap_err();
        assert!(err.to_string().ends_with(": the file is empty"), "{err}");
    }
}
