//! Liveness: after every fault healed and the cluster had its quiet
//! period, the system serves requests again within a bound (as
//! TigerBeetle's simulator requires). The final reads are the probes: each
//! must complete `ok` within the scenario's final-reads limit.
//!
//! A system that never recovers from a fault (a lost primary nobody
//! replaces, a partition it never reconnects after) fails every operation
//! afterwards: every safety check passes on such a run, because nothing
//! was acknowledged, so without this check the run tests nothing. The
//! evidence names the last fault before which something last succeeded:
//! "replica-0 lost at 77 ms; no operation succeeded afterwards".

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Verdict, stats::FaultWindow};
use crate::history::Operation;

/// Why the system was not live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// Final reads that did not complete `ok`, of all final reads.
    pub failed_probes: usize,
    pub probes: usize,
    /// When an operation last completed `ok` (simulated ns), if ever.
    pub last_ok_ns: Option<u64>,
    /// The last fault that began before the final probes and after the
    /// last success, if any: (its label, its start in ns).
    pub since_fault: Option<(String, u64)>,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        match &self.since_fault {
            Some((label, start)) => write!(
                f,
                "{label} at {:.0} ms; no operation succeeded afterwards",
                ms(*start)
            )?,
            None => write!(
                f,
                "the system did not serve requests after the faults healed"
            )?,
        }
        write!(
            f,
            " ({} of {} final reads failed",
            self.failed_probes, self.probes
        )?;
        match self.last_ok_ns {
            Some(ns) => write!(f, "; last success at {:.0} ms)", ms(ns)),
            None => write!(f, "; nothing ever succeeded)"),
        }
    }
}

/// Judges liveness from the workload's operations, the final reads (the
/// probes) and the fault windows.
pub fn check(
    workload: &[Operation],
    probes: &[Operation],
    faults: &[FaultWindow],
) -> Verdict<Stall> {
    let failed = probes.iter().filter(|op| !op.is_ok()).count();
    if failed == 0 && !probes.is_empty() {
        return Verdict::Ok;
    }
    let last_ok_ns = workload
        .iter()
        .chain(probes)
        .filter(|op| op.is_ok())
        .filter_map(|op| op.complete_time)
        .max();
    let since_fault = faults
        .iter()
        .filter(|w| last_ok_ns.is_none_or(|ok| w.start >= ok))
        .max_by_key(|w| w.start)
        .or_else(|| faults.iter().max_by_key(|w| w.start))
        .map(|w| (w.label.clone(), w.start));
    Verdict::Violation(Stall {
        failed_probes: failed,
        probes: probes.len(),
        last_ok_ns,
        since_fault,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Op};

    fn op(process: u64, at_ms: u64, kind: EventType) -> Operation {
        Operation {
            process,
            op: Op::Read {
                key: "k0".into(),
                value: None,
            },
            invoke_time: at_ms * 1_000_000,
            complete_time: Some(at_ms * 1_000_000 + 1),
            kind,
            result: None,
            siblings: Vec::new(),
        }
    }

    fn window(label: &str, start_ms: u64) -> FaultWindow {
        FaultWindow {
            start: start_ms * 1_000_000,
            end: start_ms * 1_000_000 + 5,
            label: label.into(),
        }
    }

    #[test]
    fn served_final_reads_are_live() {
        let workload = [op(0, 10, EventType::Fail)];
        let probes = [op(1, 900, EventType::Ok)];
        assert_eq!(check(&workload, &probes, &[]), Verdict::Ok);
    }

    #[test]
    fn a_fault_after_which_nothing_succeeded_is_named() {
        let workload = [op(0, 50, EventType::Ok), op(0, 90, EventType::Fail)];
        let probes = [op(1, 900, EventType::Fail), op(1, 901, EventType::Info)];
        let faults = [window("replica-1 down", 20), window("replica-0 lost", 77)];
        let Verdict::Violation(evidence) = check(&workload, &probes, &faults) else {
            panic!("not live expected");
        };
        assert_eq!(
            evidence.to_string(),
            "replica-0 lost at 77 ms; no operation succeeded afterwards \
             (2 of 2 final reads failed; last success at 50 ms)"
        );
    }

    #[test]
    fn one_failed_probe_is_enough_and_no_final_read_is_not_live() {
        let probes = [op(1, 900, EventType::Ok), op(1, 901, EventType::Fail)];
        assert!(check(&[], &probes, &[]).is_violation());
        assert!(check(&[], &[], &[]).is_violation());
    }
}
