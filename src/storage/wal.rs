//! [`Wal`]: a write-ahead log of checksummed records on a [`Disk`].
//!
//! On disk a log is a sequence of frames, each
//! `[u32 LE payload length][u32 LE crc32 of payload][payload]`, the payload
//! being the encoding of one record ([`crate::codec`]). A payload is 1 to
//! [`MAX_RECORD_LEN`] bytes (never empty, so a zero-filled header is never
//! taken for a record).
//!
//! Recovery ([`Wal::open`]) keeps the longest prefix of whole frames whose
//! checksums match; the rest (a torn write, an unsynced tail partly kept by a
//! crash, garbage) is cut off durably, with a warning. A damaged frame ends
//! the log even if intact frames follow it: they cannot be told apart from
//! stale bytes. A frame whose checksum matches but whose payload does not
//! decode as `T` is an error, not a tail to cut.
//!
//! Durability: [`Wal::append`] only hands bytes to the disk; they become
//! durable with [`Wal::sync`]. Any I/O error poisons the handle (the state of
//! the file is then unknown): every later call fails with
//! [`StorageError::Poisoned`] until the log is reopened.

use super::{Disk, StorageError};
use crate::{codec, effect};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;

/// The largest encoded record (payload bytes) a log or meta file accepts.
pub const MAX_RECORD_LEN: usize = 16 << 20;

pub(super) const HEADER_LEN: usize = 8;

/// The frame holding the encoding of `value`: encoded in place after room
/// for the header, which is filled in last.
pub(super) fn encode_frame<T: Serialize>(path: &str, value: &T) -> Result<Vec<u8>, StorageError> {
    let mut frame = Vec::with_capacity(HEADER_LEN + TYPICAL_RECORD_LEN);
    encode_frame_into(&mut frame, path, value)?;
    Ok(frame)
}

/// [`encode_frame`] into `frame`, replacing what it held.
fn encode_frame_into<T: Serialize>(
    frame: &mut Vec<u8>,
    path: &str,
    value: &T,
) -> Result<(), StorageError> {
    frame.clear();
    frame.resize(HEADER_LEN, 0);
    codec::encode_into(frame, value).map_err(|source| StorageError::Encode {
        path: path.to_owned(),
        source,
    })?;
    let len = frame.len() - HEADER_LEN;
    if len > MAX_RECORD_LEN {
        return Err(StorageError::TooLarge {
            path: path.to_owned(),
            len,
            max: MAX_RECORD_LEN,
        });
    }
    let crc = crc32fast::hash(&frame[HEADER_LEN..]);
    frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
    frame[4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Room reserved for a record: the built-in protocols' usual records fit,
/// so encoding one allocates once.
const TYPICAL_RECORD_LEN: usize = 256;

/// The payload of the frame at the start of `bytes`, or why there is no
/// intact frame there.
pub(super) fn decode_frame(bytes: &[u8]) -> Result<&[u8], &'static str> {
    let header = bytes.get(..HEADER_LEN).ok_or("truncated header")?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD_LEN {
        return Err("impossible record length");
    }
    let payload = bytes
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or("truncated record")?;
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch");
    }
    Ok(payload)
}

/// How often recovery reads a log whose checksum fails before it believes
/// the damage is on disk.
pub(super) const READ_ATTEMPTS: usize = 3;

/// One read of a log: its intact prefix and what ended it.
struct Parsed<T> {
    records: Vec<T>,
    ends: Vec<u64>,
    valid_len: usize,
    total_len: usize,
    damage: Option<&'static str>,
}

fn parse<T: DeserializeOwned>(bytes: &[u8], path: &str) -> Result<Parsed<T>, StorageError> {
    let mut records = Vec::new();
    let mut ends = Vec::new();
    let mut offset = 0;
    let mut damage = None;
    while offset < bytes.len() {
        let payload = match decode_frame(&bytes[offset..]) {
            Ok(payload) => payload,
            Err(reason) => {
                damage = Some(reason);
                break;
            }
        };
        let record = codec::decode(payload).map_err(|source| StorageError::Decode {
            path: path.to_owned(),
            offset: offset as u64,
            source,
        })?;
        records.push(record);
        offset += HEADER_LEN + payload.len();
        ends.push(offset as u64);
    }
    Ok(Parsed {
        records,
        ends,
        valid_len: offset,
        total_len: bytes.len(),
        damage,
    })
}

/// An open write-ahead log of records of type `T`.
pub struct Wal<T> {
    disk: Rc<dyn Disk>,
    path: String,
    /// Byte offset just past each record, in order.
    ends: Vec<u64>,
    unsynced: bool,
    poisoned: bool,
    /// The frame being appended, its allocation kept from record to record.
    frame: Vec<u8>,
    records: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> Wal<T> {
    /// Opens the log at `path` (empty if missing) and returns it with its
    /// records, after cutting off any damaged or torn tail durably.
    pub async fn open(disk: Rc<dyn Disk>, path: &str) -> Result<(Self, Vec<T>), StorageError> {
        // A checksum failure may be a corrupted read rather than damaged
        // data: read again, and keep the longest intact prefix seen.
        let mut best: Option<Parsed<T>> = None;
        for _ in 0..READ_ATTEMPTS {
            let bytes = disk
                .read(path)
                .await
                .map_err(StorageError::io(path))?
                .unwrap_or_default();
            let parsed = parse::<T>(&bytes, path)?;
            if parsed.damage.is_none() {
                best = Some(parsed);
                break;
            }
            effect::record("disk_damage_detected", 1);
            if best.as_ref().is_none_or(|b| parsed.valid_len > b.valid_len) {
                best = Some(parsed);
            }
        }
        let Parsed {
            records,
            ends,
            valid_len,
            total_len,
            damage,
        } = best.expect("at least one read");
        if let Some(reason) = damage {
            tracing::warn!(
                path,
                kept_records = records.len(),
                kept_bytes = valid_len,
                dropped_bytes = total_len - valid_len,
                reason,
                "dropping the damaged tail of a write-ahead log"
            );
            effect::record("disk_bytes_dropped", (total_len - valid_len) as u64);
            disk.truncate(path, valid_len as u64)
                .await
                .map_err(StorageError::io(path))?;
        }
        let wal = Wal {
            disk,
            path: path.to_owned(),
            ends,
            unsynced: false,
            poisoned: false,
            frame: Vec::new(),
            records: PhantomData,
        };
        Ok((wal, records))
    }

    /// Appends `record` to the log, not yet durably. Fails with
    /// [`StorageError::TooLarge`] (leaving the log as it was) if its encoding
    /// exceeds [`MAX_RECORD_LEN`].
    pub async fn append(&mut self, record: &T) -> Result<(), StorageError> {
        self.usable()?;
        encode_frame_into(&mut self.frame, &self.path, record)?;
        let result = self.disk.append(&self.path, &self.frame).await;
        self.check(result)?;
        self.ends.push(self.end() + self.frame.len() as u64);
        self.unsynced = true;
        Ok(())
    }

    /// Makes every record appended so far durable.
    pub async fn sync(&mut self) -> Result<(), StorageError> {
        self.usable()?;
        if self.unsynced {
            let result = self.disk.sync(&self.path).await;
            self.check(result)?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Appends `record` and makes it (and everything before it) durable.
    pub async fn append_sync(&mut self, record: &T) -> Result<(), StorageError> {
        self.append(record).await?;
        self.sync().await
    }

    /// Drops the records from index `keep` on, durably; the records before
    /// it become durable too. Does nothing if the log has at most `keep`
    /// records.
    pub async fn truncate_to(&mut self, keep: usize) -> Result<(), StorageError> {
        self.usable()?;
        if keep >= self.ends.len() {
            return Ok(());
        }
        self.ends.truncate(keep);
        let result = self.disk.truncate(&self.path, self.end()).await;
        self.check(result)?;
        self.unsynced = false;
        Ok(())
    }

    /// The number of records in the log, synced or not.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the log holds no records.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn end(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    fn usable(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    fn check(&mut self, result: io::Result<()>) -> Result<(), StorageError> {
        result.map_err(|source| {
            self.poisoned = true;
            StorageError::io(&self.path)(source)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealDisk;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::Path;

    const LOG: &str = "wal";

    fn disk(dir: &Path) -> Rc<dyn Disk> {
        Rc::new(RealDisk::new(dir))
    }

    /// A log holding `n` synced records `0..n`, closed again; its size in bytes.
    async fn write_log(dir: &Path, n: u64) -> u64 {
        let (mut wal, found) = Wal::<u64>::open(disk(dir), LOG).await.unwrap();
        assert!(found.is_empty());
        for i in 0..n {
            wal.append_sync(&i).await.unwrap();
        }
        wal.end()
    }

    /// The size of a log of the records `0..n`, for `n` up to 10 (one digit each).
    fn log_size(n: u64) -> u64 {
        n * (HEADER_LEN as u64 + 1)
    }

    fn damage(dir: &Path, f: impl FnOnce(&mut std::fs::File)) -> u64 {
        let mut file = OpenOptions::new().append(true).open(dir.join(LOG)).unwrap();
        f(&mut file);
        file.metadata().unwrap().len()
    }

    /// Reopens the damaged log: it must hold records `0..kept`, be cut back
    /// to `kept_bytes`, and take new records after them.
    async fn expect_recovery(dir: &Path, kept: u64, kept_bytes: u64) {
        let (mut wal, found) = Wal::<u64>::open(disk(dir), LOG).await.unwrap();
        assert_eq!(found, (0..kept).collect::<Vec<_>>());
        assert_eq!(std::fs::metadata(dir.join(LOG)).unwrap().len(), kept_bytes);
        wal.append_sync(&kept).await.unwrap();
        drop(wal);
        let (_, found) = Wal::<u64>::open(disk(dir), LOG).await.unwrap();
        assert_eq!(found, (0..=kept).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let full = write_log(dir.path(), 3).await;
        damage(dir.path(), |f| f.set_len(full - 3).unwrap());
        expect_recovery(dir.path(), 2, log_size(2)).await;
    }

    #[tokio::test]
    async fn corrupt_last_record_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let full = write_log(dir.path(), 3).await;
        let mut bytes = std::fs::read(dir.path().join(LOG)).unwrap();
        bytes[full as usize - 1] ^= 0x55;
        std::fs::write(dir.path().join(LOG), bytes).unwrap();
        expect_recovery(dir.path(), 2, log_size(2)).await;
    }

    #[tokio::test]
    async fn appended_garbage_is_dropped() {
        for garbage in [&[0xff; 5][..], &[0; 64], b"\x09\0\0\0\0\0\0\x00123456789"] {
            let dir = tempfile::tempdir().unwrap();
            let full = write_log(dir.path(), 3).await;
            let grown = damage(dir.path(), |f| f.write_all(garbage).unwrap());
            assert!(grown > full);
            expect_recovery(dir.path(), 3, full).await;
        }
    }

    #[tokio::test]
    async fn absurd_length_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let full = write_log(dir.path(), 1).await;
        damage(dir.path(), |f| f.write_all(&[0xff; 4096]).unwrap());
        expect_recovery(dir.path(), 1, full).await;
    }

    #[tokio::test]
    async fn truncate_to_drops_records_durably() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::<String>::open(disk(dir.path()), LOG).await.unwrap();
        for s in ["a", "b", "c", "d"] {
            wal.append(&s.to_owned()).await.unwrap();
        }
        wal.truncate_to(2).await.unwrap();
        assert_eq!(wal.len(), 2);
        wal.truncate_to(5).await.unwrap();
        wal.append_sync(&"e".to_owned()).await.unwrap();
        drop(wal);
        let (wal, found) = Wal::<String>::open(disk(dir.path()), LOG).await.unwrap();
        assert_eq!(found, ["a", "b", "e"]);
        assert_eq!(wal.len(), 3);
    }

    #[tokio::test]
    async fn oversized_record_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::<String>::open(disk(dir.path()), LOG).await.unwrap();
        let huge = "x".repeat(MAX_RECORD_LEN);
        let err = wal.append(&huge).await.unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
        wal.append_sync(&"ok".to_owned()).await.unwrap();
        assert_eq!(wal.len(), 1);
    }

    #[tokio::test]
    async fn undecodable_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), 2).await;
        let err = Wal::<String>::open(disk(dir.path()), LOG).await.err();
        assert!(matches!(err, Some(StorageError::Decode { offset: 0, .. })));
    }
}
