//! The engine's wire protocol: one request enum for clients, peers and the
//! operator, one response enum.

use serde::{Deserialize, Serialize};

use crate::history::{Completion, Op};
pub use crate::replication::kv::RequestId;

/// One entry of the replicated log. Indexes start at 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    /// The epoch of the primary that created it.
    pub epoch: u64,
    pub op: Op,
    pub request: RequestId,
}

/// Primary `from` ships `entries`, which follow `(prev_index, prev_epoch)`
/// in its log, and its commit point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replicate {
    pub from: usize,
    pub epoch: u64,
    pub prev_index: u64,
    pub prev_epoch: u64,
    pub entries: Vec<Entry>,
    pub commit: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Request stage: a client operation. Mutations must reach the primary;
    /// a read with `at_backup` is served by any replica from what it has.
    Client {
        op: Op,
        at_backup: bool,
        id: RequestId,
    },
    /// Sync/Async stage: the primary ships log entries.
    Replicate(Replicate),
    /// Operator: where is your log?
    Status,
    /// Operator, or the winner's candidate in a view change: become primary
    /// of `epoch` with these members.
    Promote { epoch: u64, members: Vec<usize> },
    /// Automatic failover, fenced: a candidate asks to move to `epoch`.
    ViewChange { epoch: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Client(Completion),
    /// `ok`: the entries are durable and the log matches up to `last_index`.
    /// Otherwise the primary should resend from `last_index + 1` (or step
    /// aside if `epoch` is newer than its own).
    Replicated {
        ok: bool,
        epoch: u64,
        last_index: u64,
    },
    Status {
        epoch: u64,
        primary: usize,
        last_index: u64,
        last_epoch: u64,
    },
    Done,
    /// The request could not be handled (disk failure, wrong role...).
    Refused(String),
    /// Automatic failover: not served here; the primary is `primary` as far
    /// as this replica knows (`None`: ask another replica).
    Redirect {
        primary: Option<usize>,
    },
    /// The view change is acknowledged: this replica persisted the new
    /// epoch, refuses older ones from now on, and its log ends here.
    Granted {
        last_epoch: u64,
        last_index: u64,
    },
    /// The view change is refused: this replica is already in `epoch`.
    Denied {
        epoch: u64,
    },
}
