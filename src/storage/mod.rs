//! Durable storage: a [`Disk`] trait with a simulated implementation
//! (turmoil's per-host filesystem, where `Sim::crash` loses unsynced data)
//! and a real one (`std::fs` with fsync), plus the write-ahead log and the
//! atomically replaced metadata file built on top of it.
//!
//! Contract of [`Disk`]: paths are relative to the node's data directory;
//! nothing is durable until [`Disk::sync`] (for file contents) returned, and
//! a newly created file survives a crash only once its directory was synced
//! too, which the implementations do on creation (POSIX semantics, as in
//! turmoil's simulated filesystem).

use std::io;

/// A node's durable storage, as protocol code sees it.
#[async_trait::async_trait(?Send)]
pub trait Disk {
    /// The whole contents of `path`, or `None` when it does not exist.
    async fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Appends `data` to `path`, creating it (and syncing its directory) if needed.
    /// Not durable until [`Disk::sync`].
    async fn append(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended to `path` so far durable (`fsync`).
    async fn sync(&self, path: &str) -> io::Result<()>;
    /// Cuts `path` to `len` bytes and makes that durable.
    async fn truncate(&self, path: &str, len: u64) -> io::Result<()>;
    /// Replaces `path` with `data` atomically and durably (write a temporary
    /// file, sync it, rename it over `path`, sync the directory).
    async fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()>;
}
