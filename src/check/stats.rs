//! Availability and latency per fault phase.
//!
//! The run's timeline is cut at every fault window's start and end. Each
//! piece is a phase labelled `before faults`, `during A` (or `during A +
//! B` where windows overlap) or `after A` (A: the fault that ended last);
//! a run without faults is one phase, `whole run`. An operation belongs to
//! the phase in which it was invoked. Per phase: operations `ok`, `fail`
//! and `info` (indeterminate, including never completed), latency
//! percentiles of the `ok` operations in simulated nanoseconds
//! (nearest-rank), and messages sent per operation invoked.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{EventType, Operation};

/// A fault active from `start` until `end` (simulated nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    pub start: u64,
    pub end: u64,
    pub label: String,
}

/// Latency percentiles, in simulated nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// Statistics of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    pub label: String,
    pub start: u64,
    /// `None`: until the end of the run.
    pub end: Option<u64>,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Of the `ok` operations; `None` when there were none.
    pub latency: Option<Latency>,
    pub messages: usize,
    /// `None` when no operation was invoked in the phase.
    pub messages_per_op: Option<f64>,
}

/// Per-phase statistics; `message_times` are the send times of every
/// message of the run (empty when not recorded).
pub fn phase_stats(
    ops: &[Operation],
    faults: &[FaultWindow],
    message_times: &[u64],
) -> Vec<PhaseStats> {
    let mut cuts: Vec<u64> = faults.iter().flat_map(|w| [w.start, w.end]).collect();
    cuts.push(0);
    cuts.sort_unstable();
    cuts.dedup();
    let bounds: Vec<(u64, Option<u64>)> = cuts
        .iter()
        .enumerate()
        .map(|(i, &start)| (start, cuts.get(i + 1).copied()))
        .collect();
    bounds
        .into_iter()
        .map(|(start, end)| {
            let inside = |t: u64| t >= start && end.is_none_or(|e| t < e);
            let mut phase = PhaseStats {
                label: label(faults, start),
                start,
                end,
                ok: 0,
                fail: 0,
                info: 0,
                latency: None,
                messages: message_times.iter().filter(|&&t| inside(t)).count(),
                messages_per_op: None,
            };
            let mut latencies = Vec::new();
            for op in ops.iter().filter(|op| inside(op.invoke_time)) {
                match (op.kind, op.complete_time) {
                    (EventType::Ok, Some(done)) => {
                        phase.ok += 1;
                        latencies.push(done.saturating_sub(op.invoke_time));
                    }
                    (EventType::Fail, _) => phase.fail += 1,
                    _ => phase.info += 1,
                }
            }
            let invoked = phase.ok + phase.fail + phase.info;
            phase.messages_per_op = (invoked > 0).then(|| phase.messages as f64 / invoked as f64);
            phase.latency = percentiles(latencies);
            phase
        })
        .collect()
}

fn label(faults: &[FaultWindow], at: u64) -> String {
    let active: Vec<&str> = faults
        .iter()
        .filter(|w| w.start <= at && at < w.end)
        .map(|w| w.label.as_str())
        .collect();
    if !active.is_empty() {
        return format!("during {}", active.join(" + "));
    }
    match faults.iter().filter(|w| w.end <= at).max_by_key(|w| w.end) {
        Some(last) => format!("after {}", last.label),
        None if faults.is_empty() => "whole run".to_string(),
        None => "before faults".to_string(),
    }
}

/// The percentiles of `v` (`None` when it is empty).
pub fn percentiles(mut v: Vec<u64>) -> Option<Latency> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = |p: usize| v[(p * v.len()).div_ceil(100).max(1) - 1];
    Some(Latency {
        p50: rank(50),
        p90: rank(90),
        p99: rank(99),
        max: v[v.len() - 1],
    })
}

/// For each moment in `losses` (simulated ns: a leader or primary was lost
/// and nobody held its role), how long until the next write completed
/// `ok`; losses followed by no acknowledged write count for nothing.
pub fn times_to_next_write(ops: &[Operation], losses: &[u64]) -> Vec<u64> {
    let mut writes: Vec<u64> = ops
        .iter()
        .filter(|op| op.is_ok() && op.op.is_mutation())
        .filter_map(|op| op.complete_time)
        .collect();
    writes.sort_unstable();
    losses
        .iter()
        .filter_map(|&lost| {
            let next = writes.partition_point(|&t| t <= lost);
            writes.get(next).map(|&t| t - lost)
        })
        .collect()
}

impl fmt::Display for PhaseStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        let end = self
            .end
            .map_or_else(|| "end".to_string(), |e| format!("{:.0} ms", ms(e)));
        write!(
            f,
            "{} [{:.0} ms, {}): ok {} fail {} info {}",
            self.label,
            ms(self.start),
            end,
            self.ok,
            self.fail,
            self.info
        )?;
        if let Some(l) = self.latency {
            write!(
                f,
                ", latency p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} ms",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max)
            )?;
        }
        if let Some(m) = self.messages_per_op {
            write!(f, ", {m:.1} messages/op")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn op(invoke: u64, complete: Option<u64>, kind: EventType) -> Operation {
        Operation {
            process: 0,
            op: Op::Read {
                key: "k".into(),
                value: None,
            },
            invoke_time: invoke,
            complete_time: complete,
            kind,
            result: None,
            siblings: Vec::new(),
        }
    }

    #[test]
    fn splits_the_run_at_fault_windows() {
        let ops = [
            op(10, Some(20), EventType::Ok),
            op(30, Some(70), EventType::Ok),
            op(110, Some(150), EventType::Fail),
            op(120, None, EventType::Invoke),
            op(210, Some(211), EventType::Info),
            op(300, Some(301), EventType::Ok),
        ];
        let faults = [
            FaultWindow {
                start: 100,
                end: 200,
                label: "partition".into(),
            },
            FaultWindow {
                start: 150,
                end: 250,
                label: "crash n1".into(),
            },
        ];
        let phases = phase_stats(&ops, &faults, &[5, 15, 25, 105]);
        let summary: Vec<_> = phases
            .iter()
            .map(|p| (p.label.as_str(), p.start, p.end, p.ok, p.fail, p.info))
            .collect();
        assert_eq!(
            summary,
            [
                ("before faults", 0, Some(100), 2, 0, 0),
                ("during partition", 100, Some(150), 0, 1, 1),
                ("during partition + crash n1", 150, Some(200), 0, 0, 0),
                ("during crash n1", 200, Some(250), 0, 0, 1),
                ("after crash n1", 250, None, 1, 0, 0),
            ]
        );
        assert_eq!(
            phases[0].latency,
            Some(Latency {
                p50: 10,
                p90: 40,
                p99: 40,
                max: 40
            })
        );
        assert_eq!(phases[0].messages_per_op, Some(1.5));
        assert_eq!(phases[2].messages_per_op, None);
        assert_eq!(phase_stats(&ops, &[], &[])[0].label, "whole run");
    }

    #[test]
    fn time_to_the_next_acknowledged_write() {
        let write = |invoke, complete, kind| Operation {
            op: Op::Write {
                key: "k".into(),
                value: "v".into(),
            },
            ..op(invoke, Some(complete), kind)
        };
        let ops = [
            write(10, 20, EventType::Ok),
            op(30, Some(40), EventType::Ok),
            write(50, 90, EventType::Info),
            write(60, 120, EventType::Ok),
        ];
        assert_eq!(times_to_next_write(&ops, &[25, 100, 200]), [95, 20]);
    }
}
