//! [`MetaFile`]: one value, such as a node's term, vote or role, stored as a
//! single checksummed frame (the [`Wal`](super::Wal) framing) and replaced
//! with [`Disk::write_atomic`], so a crash leaves the old value or the new
//! one, never a mix. [`DurableValue`]: a replica's whole state kept in
//! memory and in a [`MetaFile`], changed one durable change at a time.

use super::wal::{HEADER_LEN, READ_ATTEMPTS, decode_frame, encode_frame};
use super::{Disk, StorageError};
use crate::effect;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::{Cell, Ref, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;

/// A durable cell holding one value of type `T`.
pub struct MetaFile<T> {
    disk: Rc<dyn Disk>,
    path: String,
    value: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> MetaFile<T> {
    /// The cell stored at `path` on `disk`; nothing is read yet.
    pub fn new(disk: Rc<dyn Disk>, path: &str) -> Self {
        MetaFile {
            disk,
            path: path.to_owned(),
            value: PhantomData,
        }
    }

    /// The stored value, or `None` if none was ever stored. Damaged contents
    /// are an error ([`StorageError::Corrupt`]) once a few reads agree: an
    /// atomic replacement cannot tear, so they mean the disk lost data.
    pub async fn load(&self) -> Result<Option<T>, StorageError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.load_once().await {
                Err(StorageError::Corrupt { .. }) if attempts < READ_ATTEMPTS => {
                    // Perhaps a corrupted read: read again before believing it.
                    effect::record("disk_damage_detected", 1);
                }
                result => return result,
            }
        }
    }

    async fn load_once(&self) -> Result<Option<T>, StorageError> {
        let path = self.path.as_str();
        let Some(bytes) = self.disk.read(path).await.map_err(StorageError::io(path))? else {
            return Ok(None);
        };
        let corrupt = |reason| StorageError::Corrupt {
            path: path.to_owned(),
            offset: 0,
            reason,
        };
        let payload = decode_frame(&bytes).map_err(corrupt)?;
        if HEADER_LEN + payload.len() != bytes.len() {
            return Err(corrupt("trailing bytes after the value"));
        }
        let value = crate::codec::decode(payload).map_err(|source| StorageError::Decode {
            path: path.to_owned(),
            offset: 0,
            source,
        })?;
        Ok(Some(value))
    }

    /// Replaces the stored value with `value`, atomically and durably.
    pub async fn store(&self, value: &T) -> Result<(), StorageError> {
        let frame = encode_frame(&self.path, value)?;
        self.disk
            .write_atomic(&self.path, &frame)
            .await
            .map_err(StorageError::io(&self.path))
    }
}

/// A value held in memory and in a [`MetaFile`]: every change is applied
/// to a copy, stored durably (when it changed anything) and only then made
/// the value, one change at a time, so what a reader sees is on disk. A
/// change whose store failed leaves the value as it was.
pub struct DurableValue<T> {
    file: MetaFile<T>,
    value: RefCell<T>,
    /// How often the value changed.
    changes: Cell<u64>,
    storing: tokio::sync::Mutex<()>,
}

impl<T: Serialize + DeserializeOwned + Clone + PartialEq> DurableValue<T> {
    /// The value stored at `path`, or `fresh()` (stored at once) when none was.
    pub async fn open(
        disk: Rc<dyn Disk>,
        path: &str,
        fresh: impl FnOnce() -> T,
    ) -> Result<Self, StorageError> {
        let file = MetaFile::new(disk, path);
        let value = match file.load().await? {
            Some(value) => value,
            None => {
                let value = fresh();
                file.store(&value).await?;
                value
            }
        };
        Ok(DurableValue {
            file,
            value: RefCell::new(value),
            changes: Cell::new(0),
            storing: tokio::sync::Mutex::new(()),
        })
    }

    /// The current value (do not hold it across an `await`).
    pub fn get(&self) -> Ref<'_, T> {
        self.value.borrow()
    }

    /// How often the value changed since it was opened: a version of it
    /// (for [`crate::node::StateProbe::publish_weak_versioned`]).
    pub fn changes(&self) -> u64 {
        self.changes.get()
    }

    /// Applies `change` to a copy, stores the copy when it differs, and
    /// makes it the value.
    pub async fn change<R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, StorageError> {
        let _storing = self.storing.lock().await;
        let mut next = self.value.borrow().clone();
        let result = change(&mut next);
        if next != *self.value.borrow() {
            self.file.store(&next).await?;
            *self.value.borrow_mut() = next;
            self.changes.set(self.changes.get() + 1);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealDisk;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Epoch {
        term: u64,
        voted_for: Option<String>,
    }

    #[tokio::test]
    async fn store_load_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("node/data");
        let meta = MetaFile::<Epoch>::new(Rc::new(RealDisk::new(&root)), "epoch");
        assert_eq!(meta.load().await.unwrap(), None);
        for term in 1..=2 {
            let epoch = Epoch {
                term,
                voted_for: Some("n1".into()),
            };
            meta.store(&epoch).await.unwrap();
            assert_eq!(meta.load().await.unwrap(), Some(epoch));
        }
        assert!(!root.join("epoch.tmp").exists());

        let mut bytes = std::fs::read(root.join("epoch")).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(root.join("epoch"), bytes).unwrap();
        let err = meta.load().await.unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    }
}
