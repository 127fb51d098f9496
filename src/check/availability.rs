//! Availability: the fraction of operations that completed `ok`, overall
//! and among those invoked while a fault was active. Measured, not judged.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::stats::FaultWindow;
use crate::history::{EventType, Operation};

/// Operation counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub ok: usize,
    pub fail: usize,
    /// Indeterminate, or never completed.
    pub info: usize,
}

impl Counts {
    fn add(&mut self, op: &Operation) {
        match op.kind {
            EventType::Ok => self.ok += 1,
            EventType::Fail => self.fail += 1,
            EventType::Info | EventType::Invoke => self.info += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.ok + self.fail + self.info
    }

    /// Fraction completed `ok` (1.0 when there were none).
    pub fn ok_ratio(&self) -> f64 {
        match self.total() {
            0 => 1.0,
            n => self.ok as f64 / n as f64,
        }
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1}% ok ({} ok, {} fail, {} info)",
            self.ok_ratio() * 100.0,
            self.ok,
            self.fail,
            self.info
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    pub overall: Counts,
    /// Operations invoked while any fault window was open.
    pub during_faults: Counts,
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; during faults {}", self.overall, self.during_faults)
    }
}

pub fn measure(operations: &[Operation], windows: &[FaultWindow]) -> Availability {
    let mut availability = Availability {
        overall: Counts::default(),
        during_faults: Counts::default(),
    };
    for op in operations {
        availability.overall.add(op);
        let t = op.invoke_time;
        if windows.iter().any(|w| w.start <= t && t < w.end) {
            availability.during_faults.add(op);
        }
    }
    availability
}
