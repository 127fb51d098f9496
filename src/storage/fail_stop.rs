//! [`FailStop`]: how a replica stops on its disk's first failure and
//! exits with that error, kept whole.

use std::cell::RefCell;

use tokio::sync::Notify;

use super::StorageError;

/// A replica's fail-stop switch. Handlers that meet a disk error
/// [`trip`](FailStop::trip) it; the replica's main task waits on
/// [`stopped`](FailStop::stopped) beside its server and returns the first
/// error as its exit cause, so the harness can tell a stop on an injected
/// I/O error (expected) from any other exit.
///
/// ```
/// use replisim::storage::{FailStop, StorageError};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let fail_stop = FailStop::default();
/// fail_stop.trip(StorageError::Io {
///     path: "wal".into(),
///     source: std::io::Error::other("disk gone"),
/// });
/// let error = fail_stop.stopped().await;
/// assert!(error.to_string().contains("disk gone"));
/// # });
/// ```
#[derive(Debug, Default)]
pub struct FailStop {
    first: RefCell<Option<StorageError>>,
    tripped: Notify,
}

impl FailStop {
    /// Records `error` (the first one is kept) and wakes [`stopped`](Self::stopped).
    pub fn trip(&self, error: StorageError) {
        self.first.borrow_mut().get_or_insert(error);
        self.tripped.notify_one();
    }

    /// Resolves once tripped, with the first error.
    pub async fn stopped(&self) -> StorageError {
        loop {
            self.tripped.notified().await;
            if let Some(error) = self.first.take() {
                return error;
            }
        }
    }
}
