//! No unexpected exit: a replica's software that returns is restarted by
//! the harness, as a supervisor would, and every such exit is recorded
//! ([`Exit`]: the replica, when, the error's text) and judged. An exit is
//! *expected* when it is a fail-stop on a fault the simulation injected (an
//! injected disk I/O error in the error's chain, as the harness tells with
//! [`crate::storage::InjectedIoError::in_chain`]); anything else is
//! unexpected: an error the system ran into by itself (a record it cannot
//! decode, a checksum it skipped) or software that returned without an
//! error. The evidence groups the unexpected exits per replica, with the
//! first one's cause: "replica-1 exited 3 times: cannot decode the record
//! at byte 420 (first at 312 ms)".

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Verdict;

/// One return of a replica's software.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub replica: usize,
    /// When it returned (simulated ns).
    pub time: u64,
    /// The error's text, or why there is none.
    pub cause: String,
    /// A fail-stop on an injected fault.
    pub expected: bool,
}

/// Exits of a run (or of many), by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitCounts {
    pub expected: u64,
    pub unexpected: u64,
}

impl ExitCounts {
    /// The counts of `exits`.
    pub fn of(exits: &[Exit]) -> Self {
        let expected = exits.iter().filter(|e| e.expected).count() as u64;
        ExitCounts {
            expected,
            unexpected: exits.len() as u64 - expected,
        }
    }

    pub fn add(&mut self, other: ExitCounts) {
        self.expected += other.expected;
        self.unexpected += other.unexpected;
    }
}

/// `2 expected, 0 unexpected`.
impl fmt::Display for ExitCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} expected, {} unexpected",
            self.expected, self.unexpected
        )
    }
}

/// The unexpected exits of a run, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnexpectedExits {
    pub exits: Vec<Exit>,
}

impl fmt::Display for UnexpectedExits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&per_replica(&self.exits).join("; "))
    }
}

/// Judges a run's exits: a violation when any was unexpected.
pub fn check(exits: &[Exit]) -> Verdict<UnexpectedExits> {
    let unexpected: Vec<Exit> = exits.iter().filter(|e| !e.expected).cloned().collect();
    match unexpected.is_empty() {
        true => Verdict::Ok,
        false => Verdict::Violation(UnexpectedExits { exits: unexpected }),
    }
}

/// One line per replica, in replica order: `replica-1 exited 3 times:
/// CAUSE (first at 312 ms)`, with the first exit's cause, and how many
/// other causes its later exits had (`; 2 other causes`).
pub fn per_replica(exits: &[Exit]) -> Vec<String> {
    let mut replicas: Vec<usize> = exits.iter().map(|e| e.replica).collect();
    replicas.sort_unstable();
    replicas.dedup();
    replicas
        .into_iter()
        .map(|r| {
            let mine: Vec<&Exit> = exits.iter().filter(|e| e.replica == r).collect();
            let first = mine[0];
            let mut causes: Vec<&str> = mine.iter().map(|e| e.cause.as_str()).collect();
            causes.sort_unstable();
            causes.dedup();
            let times = match mine.len() {
                1 => "once".to_string(),
                n => format!("{n} times"),
            };
            let others = match causes.len() - 1 {
                0 => String::new(),
                1 => "; 1 other cause".to_string(),
                n => format!("; {n} other causes"),
            };
            format!(
                "replica-{r} exited {times}: {} (first at {:.0} ms{others})",
                first.cause,
                first.time as f64 / 1e6
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(replica: usize, at_ms: u64, cause: &str, expected: bool) -> Exit {
        Exit {
            replica,
            time: at_ms * 1_000_000,
            cause: cause.into(),
            expected,
        }
    }

    #[test]
    fn expected_exits_pass_and_are_counted() {
        let exits = [exit(0, 5, "I/O error on wal: injected I/O error", true)];
        assert_eq!(check(&exits), Verdict::Ok);
        assert_eq!(check(&[]), Verdict::Ok);
        let counts = ExitCounts::of(&exits);
        assert_eq!(counts.to_string(), "1 expected, 0 unexpected");
    }

    #[test]
    fn unexpected_exits_are_grouped_per_replica() {
        let decode = "cannot decode the record at byte 420";
        let exits = [
            exit(1, 312, decode, false),
            exit(0, 320, "I/O error on wal: injected I/O error", true),
            exit(1, 313, decode, false),
            exit(2, 400, "returned without an error", false),
            exit(1, 314, "checksum mismatch", false),
        ];
        let Verdict::Violation(evidence) = check(&exits) else {
            panic!("unexpected exits pass");
        };
        assert_eq!(
            evidence.to_string(),
            "replica-1 exited 3 times: cannot decode the record at byte 420 (first at 312 ms; \
             1 other cause); replica-2 exited once: returned without an error (first at 400 ms)"
        );
        assert_eq!(
            ExitCounts::of(&exits),
            ExitCounts {
                expected: 1,
                unexpected: 4
            }
        );
    }
}
