//! [`RealDisk`]: the [`Disk`] trait on the machine's filesystem (`std::fs`).
//!
//! Same semantics as the simulated disk: `sync` is `fsync` (`File::sync_all`),
//! and every creation or rename of a directory entry is followed by an
//! `fsync` of the directory that holds it, so a new file survives a power
//! loss once its data was synced. Calls block the calling thread for the
//! duration of the I/O (an `fsync` included); that is fine for a node's
//! single writer task, and keeps the implementation free of helper
//! threads.
//!
//! Open files are cached per path in a `BTreeMap`, opened in append mode so
//! the kernel positions every append at the end of the file.

use super::{Disk, DiskIo, missing_dirs, parent, resolve, temp_path};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A node's data directory on the real filesystem.
pub struct RealDisk {
    root: PathBuf,
    open: RefCell<BTreeMap<PathBuf, Rc<File>>>,
}

impl RealDisk {
    /// A disk rooted at the directory `root`. Nothing is touched until the
    /// first write, which creates `root` durably if it is missing.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RealDisk {
            root: root.into(),
            open: RefCell::new(BTreeMap::new()),
        }
    }

    /// The open file at `path`, opened (and, with `create`, created durably)
    /// on first use.
    fn handle(&self, path: &Path, create: bool) -> io::Result<Rc<File>> {
        if let Some(file) = self.open.borrow().get(path) {
            return Ok(Rc::clone(file));
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        let file = match options.open(path) {
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                let dir = parent(path);
                create_dirs(dir)?;
                let file = options.create(true).open(path)?;
                sync_dir(dir)?;
                file
            }
            other => other?,
        };
        let file = Rc::new(file);
        self.open
            .borrow_mut()
            .insert(path.to_owned(), Rc::clone(&file));
        Ok(file)
    }
}

/// `fsync` of a directory, making the entries created or renamed in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing ancestors, syncing each one's parent.
fn create_dirs(dir: &Path) -> io::Result<()> {
    for missing in missing_dirs(dir, Path::exists) {
        match fs::create_dir(missing) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => sync_dir(parent(missing))?,
        }
    }
    Ok(())
}

#[async_trait::async_trait(?Send)]
impl Disk for RealDisk {
    async fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(resolve(&self.root, path)?) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn append<'a>(&'a self, path: &'a str, data: &'a [u8]) -> DiskIo<'a> {
        let append = || (&*self.handle(&resolve(&self.root, path)?, true)?).write_all(data);
        DiskIo::done(append())
    }

    fn sync<'a>(&'a self, path: &'a str) -> DiskIo<'a> {
        let sync = || self.handle(&resolve(&self.root, path)?, false)?.sync_all();
        DiskIo::done(sync())
    }

    async fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let file = self.handle(&resolve(&self.root, path)?, false)?;
        file.set_len(len)?;
        file.sync_all()
    }

    async fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let path = resolve(&self.root, path)?;
        let temp = temp_path(&path);
        let dir = parent(&path);
        create_dirs(dir)?;
        self.open.borrow_mut().remove(&path);
        let mut file = File::create(&temp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &path)?;
        sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{Disk, RealDisk, Wal};
    use std::io::{BufRead, BufReader, Write};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::rc::Rc;

    /// Set in the re-executed test binary: the data directory to write to.
    const WRITER_DIR: &str = "REPLISIM_TEST_WAL_WRITER_DIR";
    const THIS_TEST: &str = "storage::real::tests::killed_writer_loses_no_acknowledged_record";
    const KILL_AFTER: usize = 200;
    /// Bounds the child if the parent never kills it.
    const WRITER_LIMIT: u64 = 5_000;
    /// Records of a few KiB make it likely that the kill lands mid-write.
    const PAD: usize = 3_000;

    type Entry = (u64, String);

    fn disk(dir: &Path) -> Rc<dyn Disk> {
        Rc::new(RealDisk::new(dir))
    }

    /// The child: appends and syncs records, printing each acknowledged index.
    async fn write_until_killed(dir: &Path) {
        let (mut wal, _) = Wal::<Entry>::open(disk(dir), "wal").await.unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0..WRITER_LIMIT {
            wal.append_sync(&(i, "x".repeat(PAD))).await.unwrap();
            writeln!(out, "acked {i}").unwrap();
            out.flush().unwrap();
        }
    }

    #[tokio::test]
    async fn killed_writer_loses_no_acknowledged_record() {
        if let Some(dir) = std::env::var_os(WRITER_DIR) {
            return write_until_killed(Path::new(&dir)).await;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([THIS_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(WRITER_DIR, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(index) = line.unwrap().strip_prefix("acked ") {
                acked.push(index.parse::<u64>().unwrap());
                if acked.len() == KILL_AFTER {
                    child.kill().unwrap();
                }
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "the writer was not killed: {status}");
        assert!(acked.len() >= KILL_AFTER, "only {} acks", acked.len());

        let (_, found) = Wal::<Entry>::open(disk(dir.path()), "wal").await.unwrap();
        assert!(found.len() as u64 > *acked.last().unwrap());
        for (i, (index, pad)) in found.iter().enumerate() {
            assert_eq!((*index, pad.len()), (i as u64, PAD));
        }
    }
}
