//! Durable storage: a [`Disk`] trait with a simulated implementation
//! (turmoil's per-host filesystem, where `Sim::crash` loses unsynced data)
//! and a real one (`std::fs` with fsync), plus the write-ahead log and the
//! atomically replaced metadata file built on top of it.
//!
//! Who owns what:
//! - `mod.rs`: the [`Disk`] contract, [`StorageError`], [`InjectedIoError`],
//!   path validation.
//! - `sim.rs`: [`SimDisk`], turmoil's simulated filesystem (inside a host only).
//! - `real.rs`: [`RealDisk`], `std::fs` with `fsync` of files and directories.
//! - `wal.rs`: [`Wal`], the checksummed append-only record log, its framing
//!   and crash recovery.
//! - `meta.rs`: [`MetaFile`], one checksummed value replaced atomically;
//!   [`DurableValue`], a replica's state changed one durable change at a time.
//! - `fail_stop.rs`: [`FailStop`], how a replica stops on its disk's first
//!   failure and exits with it.
//!
//! Contract of [`Disk`]: paths are relative to the node's data directory
//! (plain components only: no `..`, no leading `/`); missing directories,
//! the data directory included, are created on demand and their parents
//! synced. Nothing is durable until [`Disk::sync`] (for file contents)
//! returned, and a newly created file survives a crash only once its
//! directory was synced too, which the implementations do on creation
//! (POSIX semantics, as in turmoil's simulated filesystem). A file is either
//! appended to or replaced with [`Disk::write_atomic`], not both, and has one
//! writer at a time (a [`Wal`] takes `&mut self` for every write).
//!
//! Durability contract of the layers above: a [`Wal`] record is durable once
//! [`Wal::sync`] (or [`Wal::append_sync`]) returned for it; after a crash,
//! [`Wal::open`] returns every durable record, in order, and possibly some
//! records that were appended but not yet synced (a crash may or may not keep
//! them), never a damaged one. [`MetaFile::store`] is atomic and durable: a
//! later [`MetaFile::load`] sees the old value or the new one.

mod fail_stop;
mod meta;
mod real;
mod sim;
mod wal;

pub use fail_stop::FailStop;
pub use meta::{DurableValue, MetaFile};
pub use real::RealDisk;
pub use sim::SimDisk;
pub use wal::{MAX_RECORD_LEN, Wal};

use std::future::Ready;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::{Either, LocalBoxFuture};

/// A node's durable storage, as protocol code sees it.
#[async_trait::async_trait(?Send)]
pub trait Disk {
    /// The whole contents of `path`, or `None` when it does not exist.
    async fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Appends `data` to `path`, creating it (and syncing its directory) if needed.
    /// Not durable until [`Disk::sync`].
    fn append<'a>(&'a self, path: &'a str, data: &'a [u8]) -> DiskIo<'a>;
    /// Makes everything appended to `path` so far durable (`fsync`).
    fn sync<'a>(&'a self, path: &'a str) -> DiskIo<'a>;
    /// Cuts `path` to `len` bytes and makes that durable.
    async fn truncate(&self, path: &str, len: u64) -> io::Result<()>;
    /// Replaces `path` with `data` atomically and durably (write a temporary
    /// file, sync it, rename it over `path`, sync the directory).
    async fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()>;
}

/// The future of a [`Disk::append`] or [`Disk::sync`], the calls a
/// [`Wal`] makes for every record: the call's result when the disk
/// finished it at once ([`RealDisk`], [`SimDisk::without_latency`]),
/// otherwise a boxed future. So those calls allocate only on a disk that
/// makes them wait (the other calls are rare and always boxed).
pub struct DiskIo<'a>(Either<Ready<io::Result<()>>, LocalBoxFuture<'a, io::Result<()>>>);

impl<'a> DiskIo<'a> {
    /// A call that finished with `result`.
    pub fn done(result: io::Result<()>) -> Self {
        DiskIo(Either::Left(std::future::ready(result)))
    }

    /// A call that finishes with `call`.
    pub fn later(call: impl Future<Output = io::Result<()>> + 'a) -> Self {
        DiskIo(Either::Right(Box::pin(call)))
    }
}

impl Future for DiskIo<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

/// What can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The disk failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// Stored bytes failed their checksum or framing where no torn write can
    /// explain it (a [`MetaFile`] is replaced atomically).
    #[error("corrupt data in {path} at byte {offset}: {reason}")]
    Corrupt {
        path: String,
        offset: u64,
        reason: &'static str,
    },
    /// A record's encoding is longer than [`MAX_RECORD_LEN`].
    #[error("record of {len} bytes in {path} exceeds the maximum of {max}")]
    TooLarge {
        path: String,
        len: usize,
        max: usize,
    },
    /// A value could not be serialised.
    #[error("cannot encode a record for {path}: {source}")]
    Encode {
        path: String,
        #[source]
        source: crate::codec::EncodeError,
    },
    /// A record passed its checksum but is not a valid encoding of the
    /// expected type (a schema change or a bug, never a torn write).
    #[error("cannot decode the record in {path} at byte {offset}: {source}")]
    Decode {
        path: String,
        offset: u64,
        #[source]
        source: crate::codec::DecodeError,
    },
    /// An earlier write or sync of this log failed, so its state on disk is
    /// unknown: reopen it to recover.
    #[error("{path} is unusable after an earlier I/O error; reopen it")]
    Poisoned { path: String },
}

/// The mark of an I/O error the simulation injected (the `io-errors` disk
/// fault class), not one the system caused: [`SimDisk`] returns turmoil's
/// injected errors as an [`io::Error`] wrapping this. A replica that stops
/// on such an error, keeping it as its error's source, fail-stops as
/// expected; the harness tells it from an unexpected exit with
/// [`InjectedIoError::in_chain`].
///
/// ```
/// use replisim::storage::{InjectedIoError, StorageError};
///
/// let injected = std::io::Error::other(InjectedIoError);
/// let failed = StorageError::Io { path: "wal".into(), source: injected };
/// assert!(InjectedIoError::in_chain(&failed));
/// let refused = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
/// assert!(!InjectedIoError::in_chain(&refused));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("injected I/O error")]
pub struct InjectedIoError;

impl InjectedIoError {
    /// Whether `error` or one of its sources is an injected I/O error
    /// (directly, or inside an [`io::Error`]).
    pub fn in_chain(error: &(dyn std::error::Error + 'static)) -> bool {
        std::iter::successors(Some(error), |e| e.source()).any(|e| {
            e.is::<InjectedIoError>()
                || e.downcast_ref::<io::Error>()
                    .and_then(io::Error::get_ref)
                    .is_some_and(|inner| inner.is::<InjectedIoError>())
        })
    }
}

impl StorageError {
    pub(crate) fn io(path: &str) -> impl FnOnce(io::Error) -> StorageError + '_ {
        move |source| StorageError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// `root` joined with `rel`, which must be relative and made of plain names.
fn resolve(root: &Path, rel: &str) -> io::Result<PathBuf> {
    let rel = Path::new(rel);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if rel.as_os_str().is_empty() || !plain {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("storage path {rel:?} must be relative, without `.` or `..`"),
        ));
    }
    Ok(root.join(rel))
}

/// The temporary file [`Disk::write_atomic`] writes before renaming it over `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The directory holding `path`; `.` for a bare relative name.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The directories from `dir` up that do not exist yet, outermost first.
fn missing_dirs(dir: &Path, exists: impl Fn(&Path) -> bool) -> Vec<&Path> {
    let mut missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !exists(d))
        .collect();
    missing.reverse();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_plain_and_relative() {
        let root = Path::new("/data");
        assert_eq!(resolve(root, "wal").unwrap(), Path::new("/data/wal"));
        assert_eq!(resolve(root, "a/b").unwrap(), Path::new("/data/a/b"));
        for bad in ["", "/etc/passwd", "../x", "a/../b", "./a"] {
            assert!(resolve(root, bad).is_err(), "{bad:?} accepted");
        }
    }
}
