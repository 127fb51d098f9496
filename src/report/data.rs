//! What a report page is given: [`Report`], serialised as the page's JSON,
//! built from an outcome and its verdicts or from a recorded history.
//! Times are simulated (or recorded) nanoseconds.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    check::{
        Guarantee, Verdict,
        explain::NonLinearizable,
        stats::{FaultWindow, PhaseStats},
    },
    history::{EventType, History, Op, Operation},
    sim::{Outcome, RoleChange, Status, Verdicts},
};

/// Everything the page draws.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    title: String,
    /// The scenario, as (name, value) rows of the header.
    facts: Vec<(String, String)>,
    verdicts: Vec<VerdictLine>,
    digest: Option<String>,
    /// Where the timeline ends.
    end: u64,
    /// Whether times are nanoseconds (shown as ms); else in the recording
    /// tool's own unit, shown as they are.
    nanoseconds: bool,
    /// Lane names; [`Bar::lane`] indexes them.
    lanes: Vec<String>,
    ops: Vec<Bar>,
    faults: Vec<FaultWindow>,
    /// How many replicas have a roles lane.
    replicas: usize,
    roles: Vec<RoleSpan>,
    phases: Vec<PhaseStats>,
}

/// One check's verdict, as the header shows it.
#[derive(Debug, Serialize)]
struct VerdictLine {
    name: String,
    /// `ok`, `violated`, `unknown`, or `measured` (availability).
    status: String,
    claimed: bool,
    /// The verdict with its evidence.
    text: String,
}

/// One operation's bar.
#[derive(Debug, Serialize)]
struct Bar {
    /// Its index in `History::operations`, which the evidence names.
    index: usize,
    lane: usize,
    start: u64,
    /// `None`: it never completed (drawn to the end).
    end: Option<u64>,
    /// `ok`, `fail` or `info` (an unfinished one is `info`).
    kind: &'static str,
    label: String,
    /// Named by the evidence: it cannot follow the linearizable prefix, or
    /// it is an acknowledged write the final state lost.
    violation: bool,
    /// In the longest linearizable prefix of the evidence.
    prefix: bool,
}

/// A role held by a replica in one epoch, from `start` to `end`.
#[derive(Debug, Serialize)]
struct RoleSpan {
    replica: usize,
    role: String,
    epoch: u64,
    start: u64,
    end: u64,
}

impl Report {
    pub(super) fn of_outcome(outcome: &Outcome, verdicts: &Verdicts) -> Report {
        let s = &outcome.scenario;
        let faults: Vec<String> = s.faults.iter().map(ToString::to_string).collect();
        let facts = vec![
            ("system".into(), s.system.clone()),
            ("bug".into(), s.bug.clone().unwrap_or_else(|| "none".into())),
            ("seed".into(), s.seed.to_string()),
            (
                "cluster".into(),
                format!(
                    "{} replicas, {} clients x {} ops",
                    s.replicas, s.clients, s.workload.ops_per_client
                ),
            ),
            (
                "faults".into(),
                match faults.is_empty() {
                    true => "none".into(),
                    false => faults.join(", "),
                },
            ),
            (
                "simulated".into(),
                format!("{} ms", outcome.stats.simulated_ms),
            ),
            ("exits".into(), outcome.stats.exits.to_string()),
            ("replicas agreed".into(), outcome.stats.convergence()),
        ];
        let mut lines: Vec<VerdictLine> = Guarantee::ALL
            .into_iter()
            .map(|g| VerdictLine {
                name: g.to_string(),
                status: status_name(verdicts.status(g)).into(),
                claimed: verdicts.claims.contains(&g),
                text: verdicts.describe(g),
            })
            .collect();
        lines.push(VerdictLine {
            name: "availability".into(),
            status: "measured".into(),
            claimed: false,
            text: verdicts.availability.to_string(),
        });
        let operations = outcome.history.operations();
        let mut lost = Vec::new();
        if let Verdict::Violation(writes) = &verdicts.durability {
            lost.extend(writes.lost.iter().map(|w| (w.process, w.invoke_ns)));
        }
        let clients = s.clients as u64;
        let lane_of = |process: u64| match process {
            p if p < clients => (p as usize, format!("client {p}")),
            p if p == clients => (clients as usize, "final reads".into()),
            p => (p as usize, format!("process {p}")),
        };
        let end = (outcome.stats.simulated_ms * 1_000_000).max(last_time(&operations));
        let mut report = Report {
            title: format!("{} seed {}", s.system, s.seed),
            facts,
            verdicts: lines,
            digest: Some(outcome.digest_hex()),
            end,
            nanoseconds: true,
            lanes: Vec::new(),
            ops: Vec::new(),
            faults: outcome.fault_windows.clone(),
            replicas: s.replicas,
            roles: role_spans(&outcome.role_changes, end),
            phases: outcome.phases(),
        };
        report.add_bars(&operations, lane_of, &verdicts.linearizability, |op| {
            lost.contains(&(op.process, op.invoke_time))
        });
        report
    }

    pub(super) fn of_history(
        title: &str,
        history: &History,
        nanoseconds: bool,
        verdict: &Verdict<NonLinearizable>,
    ) -> Report {
        let operations = history.operations();
        let mut report = Report {
            title: title.into(),
            facts: vec![
                ("history".into(), title.into()),
                ("operations".into(), operations.len().to_string()),
            ],
            verdicts: vec![VerdictLine {
                name: "linearizable".into(),
                status: status_name(verdict.into()).into(),
                claimed: true,
                text: verdict.to_string(),
            }],
            digest: None,
            end: last_time(&operations),
            nanoseconds,
            lanes: Vec::new(),
            ops: Vec::new(),
            faults: Vec::new(),
            replicas: 0,
            roles: Vec::new(),
            phases: Vec::new(),
        };
        let lane_of = |p: u64| (p as usize, format!("process {p}"));
        report.add_bars(&operations, lane_of, verdict, |_| false);
        report
    }

    /// Adds a bar per operation, in lanes named by `lane_of(process)` (a
    /// sort key and a name), marked by the linearizability evidence and by
    /// `lost`.
    fn add_bars(
        &mut self,
        operations: &[Operation],
        lane_of: impl Fn(u64) -> (usize, String),
        linearizability: &Verdict<NonLinearizable>,
        lost: impl Fn(&Operation) -> bool,
    ) {
        let lanes: BTreeMap<usize, String> =
            operations.iter().map(|op| lane_of(op.process)).collect();
        let position: BTreeMap<usize, usize> =
            lanes.keys().enumerate().map(|(i, &key)| (key, i)).collect();
        self.lanes = lanes.into_values().collect();
        let (blocked, prefix) = match linearizability {
            Verdict::Violation(evidence) => (
                evidence.blamed(),
                evidence.prefix.iter().map(|s| s.op.index).collect(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        self.ops = operations
            .iter()
            .enumerate()
            .map(|(index, op)| Bar {
                index,
                lane: position[&lane_of(op.process).0],
                start: op.invoke_time,
                end: op.complete_time,
                kind: match op.kind {
                    EventType::Ok => "ok",
                    EventType::Fail => "fail",
                    EventType::Info | EventType::Invoke => "info",
                },
                label: label(op),
                violation: blocked.contains(&index) || lost(op),
                prefix: prefix.contains(&index),
            })
            .collect();
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Violated => "violated",
        Status::Unknown => "unknown",
    }
}

/// The latest time an operation names.
fn last_time(operations: &[Operation]) -> u64 {
    operations
        .iter()
        .map(|op| op.complete_time.unwrap_or(op.invoke_time))
        .max()
        .unwrap_or_default()
}

/// The operation and, once `ok`, what it returned: `write k1 c0-3`,
/// `read k1 → c0-2`, `read k1 → nil`, `read k1 → ""`.
fn label(op: &Operation) -> String {
    let key = op.op.key();
    let shown = match &op.op {
        Op::Read { .. } => format!("read {key}"),
        Op::Write { value, .. } | Op::Append { value, .. } => {
            format!("{} {key} {value}", op.op.name())
        }
        Op::Cas { from, to, .. } => format!("cas {key} {from}\u{2192}{to}"),
        Op::Add { amount, .. } => format!("add {key} {amount:+}"),
        Op::Insert { element, .. } | Op::Remove { element, .. } => {
            format!("{} {key} {element}", op.op.name())
        }
        Op::Call { name, arg, .. } => match arg {
            Some(arg) => format!("{name} {key} {arg}"),
            None => format!("{name} {key}"),
        },
    };
    let returns = matches!(op.op, Op::Read { .. } | Op::Call { .. });
    match (op.kind, returns) {
        (EventType::Ok, true) => {
            format!("{shown} \u{2192} {}", op.result.as_deref().unwrap_or("nil"))
        }
        _ => shown,
    }
}

/// Each role's tenure in each epoch, from the changes the run loop saw
/// (held ones end at `end`).
fn role_spans(changes: &[RoleChange], end: u64) -> Vec<RoleSpan> {
    let mut open: BTreeMap<(usize, &str), (u64, u64)> = BTreeMap::new();
    let mut spans = Vec::new();
    let mut close = |replica: usize, role: &str, (start, epoch): (u64, u64), end: u64| {
        spans.push(RoleSpan {
            replica,
            role: role.into(),
            epoch,
            start,
            end,
        })
    };
    for change in changes {
        let key = (change.replica, change.role.as_str());
        if let Some(held) = open.remove(&key) {
            close(change.replica, &change.role, held, change.time);
        }
        if let Some(epoch) = change.epoch {
            open.insert(key, (change.time, epoch));
        }
    }
    for ((replica, role), held) in open {
        close(replica, role, held, end);
    }
    spans
}
