//! [`SimDisk`]: the [`Disk`] trait on turmoil's simulated filesystem.
//!
//! Each turmoil host has its own filesystem; `Sim::crash` discards every
//! write, truncation, creation and rename that was not yet synced (a new file
//! survives only if its directory was synced, which [`SimDisk`] does when it
//! creates one). Only usable from inside a turmoil host: every call panics
//! elsewhere. Operations go through turmoil's tokio shim, so they take
//! simulated time when the simulation configures I/O latency
//! (`Builder::fs().io_latency()`); a disk made with
//! [`SimDisk::without_latency`] (replisim's harness, which configures
//! neither latency nor a page cache) writes, syncs and truncates its open
//! files through turmoil's synchronous shim instead: the same effects,
//! without the latency bookkeeping (a path lookup, an allocation) the tokio
//! shim does around every call even when there is no latency to apply.
//!
//! Open files are cached under the names callers use (a handful per node,
//! scanned in the order they were opened), with the append offset kept in
//! memory, so appends and syncs neither resolve the name again nor query
//! the length; the entry is dropped on any error or replacement and
//! reopened on demand.

use super::{Disk, DiskIo, InjectedIoError, missing_dirs, parent, resolve, temp_path};
use crate::effect;
use futures_util::FutureExt;
use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use turmoil::fs::shim::std::fs as sync_fs;
use turmoil::fs::shim::tokio::fs::{self, File, OpenOptions};

/// An open file and the offset its next append goes to.
struct OpenFile {
    file: Io,
    end: Cell<u64>,
}

/// How calls reach an open file: through turmoil's tokio shim (with I/O
/// latency, if configured) or its synchronous one (none).
enum Io {
    Timed(File),
    Direct(sync_fs::File),
}

impl Io {
    async fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        match self {
            Io::Timed(file) => file.write_at(data, offset).await.map(drop),
            Io::Direct(file) => FileExt::write_at(file, data, offset).map(drop),
        }
    }

    async fn sync_all(&self) -> io::Result<()> {
        match self {
            Io::Timed(file) => file.sync_all().await,
            Io::Direct(file) => file.sync_all(),
        }
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        match self {
            Io::Timed(file) => file.set_len(len).await,
            Io::Direct(file) => file.set_len(len),
        }
    }
}

/// A file open under the name a caller used, and the path it resolves to
/// (two names may resolve to one path: they share the file).
struct Cached {
    name: String,
    path: PathBuf,
    file: Rc<OpenFile>,
}

/// A node's data directory on turmoil's simulated filesystem.
pub struct SimDisk {
    root: PathBuf,
    open: RefCell<Vec<Cached>>,
    /// Whether open files are reached through the tokio shim ([`Io::Timed`]).
    timed: bool,
}

/// The file a call goes to: open under its name already, or not yet.
enum Handle {
    Open(Rc<OpenFile>),
    Closed(PathBuf),
}

impl SimDisk {
    /// A disk rooted at `root`, an absolute path on the current host's
    /// filesystem (e.g. `/data`). Nothing is touched until the first write,
    /// which creates `root` durably if it is missing.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SimDisk {
            root: root.into(),
            open: RefCell::new(Vec::new()),
            timed: true,
        }
    }

    /// [`SimDisk::new`] for a simulation that configures no I/O latency and
    /// no page cache (`Builder::fs().io_latency()`, `.page_cache()`): the
    /// same effects through turmoil's synchronous shim, cheaper, and
    /// appends and syncs that finish when called. Not for a filesystem with
    /// latency: an append or sync that would wait fails instead, and the
    /// other calls skip some of the waits.
    pub fn without_latency(root: impl Into<PathBuf>) -> Self {
        SimDisk {
            timed: false,
            ..SimDisk::new(root)
        }
    }

    /// The file `name` names: its open handle, or its path (an error when
    /// the name is not a plain relative path).
    fn lookup(&self, name: &str) -> io::Result<Handle> {
        let open = self.open.borrow();
        match open.iter().find(|cached| cached.name == name) {
            Some(cached) => Ok(Handle::Open(Rc::clone(&cached.file))),
            None => resolve(&self.root, name).map(Handle::Closed),
        }
    }

    /// The open file at `path`, opened (and, with `create`, created durably)
    /// on first use, and cached under `name`.
    async fn open(&self, name: &str, path: PathBuf, create: bool) -> io::Result<Rc<OpenFile>> {
        let same = self
            .open
            .borrow()
            .iter()
            .find(|c| c.path == path)
            .map(|c| Rc::clone(&c.file));
        let file = match same {
            Some(file) => file,
            None => Rc::new(open_file(&path, create, self.timed).await?),
        };
        self.open.borrow_mut().push(Cached {
            name: name.to_string(),
            path,
            file: Rc::clone(&file),
        });
        Ok(file)
    }

    /// Runs `op` on the file `handle` names (`name`, resolved), forgetting
    /// the handle if it fails (its cached length may no longer match the
    /// file).
    async fn with_handle<R>(
        &self,
        name: &str,
        handle: Handle,
        create: bool,
        op: impl AsyncFnOnce(&OpenFile) -> io::Result<R>,
    ) -> io::Result<R> {
        let file = match handle {
            Handle::Open(file) => file,
            Handle::Closed(path) => self.open(name, path, create).await?,
        };
        let result = op(&file).await;
        if result.is_err() {
            self.open
                .borrow_mut()
                .retain(|cached| !Rc::ptr_eq(&cached.file, &file));
        }
        result
    }
}

impl SimDisk {
    /// The future of a call: boxed when the call may take simulated time,
    /// its result when it cannot ([`SimDisk::without_latency`]: nothing in
    /// turmoil's filesystem waits when no latency is configured, so the
    /// call finishes at its first poll, here).
    fn io<'a>(&self, call: impl Future<Output = io::Result<()>> + 'a) -> DiskIo<'a> {
        if self.timed {
            return DiskIo::later(call);
        }
        let finished = std::pin::pin!(call).now_or_never().unwrap_or_else(|| {
            Err(io::Error::other(
                "SimDisk::without_latency on a filesystem that simulates I/O latency",
            ))
        });
        DiskIo::done(finished)
    }
}

/// Opens the file at `path` (with `create`, creating it and its directory
/// durably when missing), reached through the tokio shim if `timed`.
async fn open_file(path: &Path, create: bool, timed: bool) -> io::Result<OpenFile> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    let file = match options.open(path).await {
        Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
            let dir = parent(path);
            create_dirs(dir).await?;
            let file = options.create(true).open(path).await?;
            fs::sync_dir(dir).await?;
            file
        }
        other => other?,
    };
    let end = Cell::new(file.metadata().await?.len());
    let file = match timed {
        true => Io::Timed(file),
        false => Io::Direct(file.into_std()),
    };
    Ok(OpenFile { file, end })
}

/// Creates `dir` and its missing ancestors, syncing each one's parent.
async fn create_dirs(dir: &Path) -> io::Result<()> {
    for missing in missing_dirs(dir, |d| sync_fs::exists(d)) {
        match fs::create_dir(missing).await {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => fs::sync_dir(parent(missing)).await?,
        }
    }
    Ok(())
}

/// Counts an I/O error handed to the node's code (the disk fault classes'
/// effect; see [`crate::effect`]), marking turmoil's injected ones as
/// [`InjectedIoError`].
fn counted<T>(result: io::Result<T>) -> io::Result<T> {
    result.map_err(|error| {
        effect::record("disk_io_errors", 1);
        match is_injected(&error) {
            true => io::Error::other(InjectedIoError),
            false => error,
        }
    })
}

/// Whether turmoil injected `error` (its `io_error_probability`): turmoil
/// 0.7 fails the read or write with `io::Error::other("I/O error")`, and
/// nothing else in its filesystem does (a test below pins it).
fn is_injected(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::Other
        && error
            .get_ref()
            .is_some_and(|inner| inner.to_string() == "I/O error")
}

#[async_trait::async_trait(?Send)]
impl Disk for SimDisk {
    async fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(resolve(&self.root, path)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => counted(Err(e)),
        }
    }

    fn append<'a>(&'a self, path: &'a str, data: &'a [u8]) -> DiskIo<'a> {
        self.io(async move {
            let handle = self.lookup(path)?;
            counted(
                self.with_handle(path, handle, true, async |open| {
                    let offset = open.end.get();
                    open.end.set(offset + data.len() as u64);
                    open.file.write_at(data, offset).await
                })
                .await,
            )
        })
    }

    fn sync<'a>(&'a self, path: &'a str) -> DiskIo<'a> {
        self.io(async move {
            let handle = self.lookup(path)?;
            counted(
                self.with_handle(path, handle, false, async |open| open.file.sync_all().await)
                    .await,
            )
        })
    }

    async fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let handle = self.lookup(path)?;
        counted(
            self.with_handle(path, handle, false, async |open| {
                open.file.set_len(len).await?;
                open.end.set(len);
                open.file.sync_all().await
            })
            .await,
        )
    }

    async fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let path = resolve(&self.root, path)?;
        self.open.borrow_mut().retain(|cached| cached.path != path);
        counted(replace(&path, data).await)
    }
}

/// Replaces the file at `path` with `data` atomically: a synced temporary
/// file renamed over it, the directory synced.
async fn replace(path: &Path, data: &[u8]) -> io::Result<()> {
    let temp = temp_path(path);
    let dir = parent(path);
    create_dirs(dir).await?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .await?;
    file.write_at(data, 0).await?;
    file.sync_all().await?;
    drop(file);
    fs::rename(&temp, path).await?;
    fs::sync_dir(dir).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MetaFile, Wal};
    use std::io::Write;

    const ROOT: &str = "/data/node";

    /// What the restarted host found on its disk.
    #[derive(Debug, Default)]
    struct Found {
        wal_bytes: usize,
        records: Vec<u64>,
        after_reopen: Vec<u64>,
        meta: Option<u64>,
        synced_file: Option<Vec<u8>>,
        unsynced_file: Option<Vec<u8>>,
        orphan: Option<Vec<u8>>,
    }

    /// Before the crash: `synced` records made durable, then `unsynced` more
    /// appended one by one, plus files in every durability state.
    async fn write_phase(disk: Rc<dyn Disk>, synced: u64, unsynced: u64) -> io::Result<()> {
        let (mut wal, found) = Wal::<u64>::open(Rc::clone(&disk), "wal").await.unwrap();
        assert!(found.is_empty());
        for i in 0..synced {
            wal.append(&i).await.unwrap();
            if i % 3 == 2 {
                wal.sync().await.unwrap();
            }
        }
        wal.sync().await.unwrap();
        for i in synced..synced + unsynced {
            wal.append(&i).await.unwrap();
        }
        MetaFile::new(Rc::clone(&disk), "meta")
            .store(&7u64)
            .await
            .unwrap();
        disk.append("synced", b"kept").await?;
        disk.sync("synced").await?;
        disk.append("unsynced", b"lost").await?;
        // Data synced but directory entry not: the file is lost with the crash.
        let mut orphan = sync_fs::File::create(format!("{ROOT}/orphan"))?;
        orphan.write_all(b"orphaned")?;
        orphan.sync_all()
    }

    /// After the restart: reopen everything, then check that recovery left a
    /// clean log that takes new records.
    async fn read_phase(disk: Rc<dyn Disk>) -> io::Result<Found> {
        let wal_bytes = disk.read("wal").await?.unwrap_or_default().len();
        let (mut wal, records) = Wal::<u64>::open(Rc::clone(&disk), "wal").await.unwrap();
        wal.append_sync(&1000).await.unwrap();
        let (_, after_reopen) = Wal::<u64>::open(Rc::clone(&disk), "wal").await.unwrap();
        Ok(Found {
            wal_bytes,
            records,
            after_reopen,
            meta: MetaFile::new(Rc::clone(&disk), "meta")
                .load()
                .await
                .unwrap(),
            synced_file: disk.read("synced").await?,
            unsynced_file: disk.read("unsynced").await?,
            orphan: disk.read("orphan").await?,
        })
    }

    /// Runs the write phase on a host, crashes and restarts it, and returns
    /// what the read phase found (on [`SimDisk::new`]'s disks if `timed`,
    /// else on [`SimDisk::without_latency`]'s).
    fn crash_and_restart(
        mut builder: turmoil::Builder,
        timed: bool,
        synced: u64,
        unsynced: u64,
    ) -> Found {
        builder.tick_duration(std::time::Duration::from_millis(1));
        let mut sim = builder.build();
        let restarted = Rc::new(Cell::new(false));
        let found = Rc::new(RefCell::new(None));
        let done = Rc::new(Cell::new(false));
        let (r, f, d) = (restarted.clone(), found.clone(), done.clone());
        sim.host("node", move || {
            let (restarted, found, done) = (r.get(), f.clone(), d.clone());
            async move {
                let disk: Rc<dyn Disk> = match timed {
                    true => Rc::new(SimDisk::new(ROOT)),
                    false => Rc::new(SimDisk::without_latency(ROOT)),
                };
                if restarted {
                    *found.borrow_mut() = Some(read_phase(disk).await?);
                } else {
                    write_phase(disk, synced, unsynced).await?;
                }
                done.set(true);
                std::future::pending().await
            }
        });
        let run_until_done = |sim: &mut turmoil::Sim| {
            done.set(false);
            while !done.get() {
                sim.step().unwrap();
            }
        };
        run_until_done(&mut sim);
        sim.crash("node");
        restarted.set(true);
        sim.bounce("node");
        run_until_done(&mut sim);
        found.take().expect("the restarted host reported")
    }

    /// Turmoil's injected I/O errors come back marked as injected; the
    /// errors a node causes itself (syncing a file it never wrote) do not.
    #[test]
    fn injected_io_errors_are_marked_and_others_are_not() {
        let mut builder = turmoil::Builder::new();
        builder.fs().io_error_probability(1.0);
        let mut sim = builder.build();
        sim.client("node", async {
            let disk = SimDisk::new(ROOT);
            let injected = disk.append("wal", b"x").await.unwrap_err();
            assert!(InjectedIoError::in_chain(&injected), "{injected:?}");
            let own = disk.sync("never-written").await.unwrap_err();
            assert!(!InjectedIoError::in_chain(&own), "{own:?}");
            Ok(())
        });
        sim.run().unwrap();
    }

    /// A disk made for no latency refuses to run on one that has it,
    /// rather than skip the waits.
    #[test]
    fn without_latency_refuses_a_filesystem_with_latency() {
        let mut builder = turmoil::Builder::new();
        builder.fs().io_latency();
        let mut sim = builder.build();
        sim.client("node", async {
            let disk = SimDisk::without_latency(ROOT);
            let refused = disk.append("wal", b"x").await.unwrap_err();
            assert!(refused.to_string().contains("latency"), "{refused}");
            Ok(())
        });
        sim.run().unwrap();
    }

    #[test]
    fn crash_keeps_exactly_what_was_synced() {
        let mut builder = turmoil::Builder::new();
        builder.fs().io_latency();
        assert_kept_what_was_synced(crash_and_restart(builder, true, 10, 5));
        assert_kept_what_was_synced(crash_and_restart(turmoil::Builder::new(), false, 10, 5));
    }

    fn assert_kept_what_was_synced(found: Found) {
        assert_eq!(found.records, (0..10).collect::<Vec<_>>());
        assert_eq!(found.after_reopen.last(), Some(&1000));
        assert_eq!(found.after_reopen.len(), 11);
        assert_eq!(found.meta, Some(7));
        assert_eq!(found.synced_file.as_deref(), Some(&b"kept"[..]));
        assert_eq!(found.unsynced_file.as_deref(), Some(&b""[..]));
        assert_eq!(found.orphan, None);
    }

    #[test]
    fn torn_unsynced_tail_is_cut_on_recovery() {
        let (synced, unsynced) = (10, 20);
        let mut torn = 0;
        for seed in 0..20 {
            let mut builder = turmoil::Builder::new();
            builder.rng_seed(seed).fs().block_size(4);
            let found = crash_and_restart(builder, seed % 2 == 0, synced, unsynced);
            let n = found.records.len() as u64;
            assert!(
                (synced..=synced + unsynced).contains(&n),
                "seed {seed}: {n}"
            );
            assert_eq!(found.records, (0..n).collect::<Vec<_>>(), "seed {seed}");
            let mut expected = found.records.clone();
            expected.push(1000);
            assert_eq!(found.after_reopen, expected, "seed {seed}");
            let intact: usize = found.records.iter().map(|i| 8 + i.to_string().len()).sum();
            torn += usize::from(found.wal_bytes > intact);
        }
        assert!(torn > 0, "no seed tore a write; the test exercises nothing");
    }
}
