//! Container records and their indexes.
//!
//! On disk (`meta.redb`):
//!
//! | table | key → value | for |
//! | --- | --- | --- |
//! | `containers` | ID → record (JSON) | everything |
//! | `container_names` | name → ID | lookups by name, a create's name check |
//!
//! In memory, built from the records when the store opens and moved with
//! each commit: status → IDs (`ps` without `-a`, status filters, `Info`'s
//! counts, prune), (label key, value) → IDs (label filters), image ID →
//! IDs (`rmi`'s "in use by", `system df`).
//!
//! Why those three are not tables: every start and every exit changes a
//! status, and each table a commit touches costs it copy-on-write pages,
//! which must come from somewhere when the disk is full: a status table
//! made the exit commit of a container that had filled the disk fail
//! where one table less had room (`hardening.rs`, "a full disk loses no
//! exit status"). Kept in memory they cost no page and no fsync, and
//! rebuilding them takes one read of the records at start (milliseconds
//! for 10,000). The name index stays on disk: it is written only when a
//! name comes or goes.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::reserve::DiskReserve;
use crate::containers::{ContainerRecord, Status};
use crate::error::Result;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("container_names");

/// What the indexes know of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Indexed {
    name: String,
    image_id: String,
    labels: Vec<(String, String)>,
    status: Status,
}

impl From<&ContainerRecord> for Indexed {
    fn from(r: &ContainerRecord) -> Self {
        let mut labels: Vec<(String, String)> = r.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        labels.sort();
        Indexed { name: r.name.clone(), image_id: r.image_id.clone(), labels, status: r.state.status }
    }
}

/// The in-memory indexes.
#[derive(Default)]
struct Indexes {
    by_id: HashMap<String, Indexed>,
    status: HashMap<Status, BTreeSet<String>>,
    labels: BTreeMap<(String, String), BTreeSet<String>>,
    images: BTreeMap<String, BTreeSet<String>>,
}

impl Indexes {
    fn add(&mut self, id: &str, ix: Indexed) {
        self.status.entry(ix.status).or_default().insert(id.to_owned());
        for l in &ix.labels {
            self.labels.entry(l.clone()).or_default().insert(id.to_owned());
        }
        if !ix.image_id.is_empty() {
            self.images.entry(ix.image_id.clone()).or_default().insert(id.to_owned());
        }
        self.by_id.insert(id.to_owned(), ix);
    }

    fn remove(&mut self, id: &str) -> Option<Indexed> {
        let ix = self.by_id.remove(id)?;
        fn take<K: Ord>(map: &mut BTreeMap<K, BTreeSet<String>>, key: &K, id: &str) {
            if let Some(set) = map.get_mut(key) {
                set.remove(id);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
        if let Some(set) = self.status.get_mut(&ix.status) {
            set.remove(id);
        }
        for l in &ix.labels {
            take(&mut self.labels, l, id);
        }
        take(&mut self.images, &ix.image_id, id);
        Some(ix)
    }
}

/// The container records of `meta.redb`. Cheap to clone. Reads take a
/// read transaction (no fsync, no lock against writers) or the indexes'
/// read lock; `put` and `delete` commit durably and block: call them off
/// the async threads.
#[derive(Clone)]
pub struct ContainerStore {
    db: Arc<redb::Database>,
    indexes: Arc<RwLock<Indexes>>,
    /// Held from a write's commit to its index update, so the indexes
    /// move in the order the commits happened (readers never wait on it).
    writer: Arc<Mutex<()>>,
    /// Blocks for the next commits on a full disk (`reserve.rs`).
    reserve: Option<Arc<DiskReserve>>,
}

impl ContainerStore {
    /// Opens the tables, builds the name index a database made by an older
    /// berth lacks, and the in-memory indexes. `path` is the database's
    /// file, for its reserve of blocks.
    pub fn open(db: Arc<redb::Database>, path: &Path) -> Result<Self> {
        let reserve = match DiskReserve::open(path) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "no block reserve for the metadata database");
                None
            }
        };
        let tx = db.begin_write()?;
        {
            let records = tx.open_table(CONTAINERS)?;
            let mut names = tx.open_table(NAMES)?;
            if names.is_empty()? && !records.is_empty()? {
                for row in records.iter()? {
                    let (id, v) = row?;
                    let rec: ContainerRecord = serde_json::from_slice(v.value())?;
                    names.insert(rec.name.as_str(), id.value())?;
                }
            }
        }
        tx.commit()?;
        let store = Self { db, indexes: Arc::default(), writer: Arc::default(), reserve };
        let mut ix = Indexes::default();
        for rec in store.all()? {
            ix.add(&rec.id, Indexed::from(&rec));
        }
        *store.indexes.write().unwrap_or_else(|e| e.into_inner()) = ix;
        Ok(store)
    }

    fn make_room(&self) {
        if let Some(r) = &self.reserve {
            r.ensure_or_log();
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Indexes> {
        self.indexes.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Result<Option<ContainerRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        match table.get(id)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Every record, in ID order.
    pub fn all(&self) -> Result<Vec<ContainerRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// The records of these IDs that still exist, in the order given.
    pub fn get_many<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Result<Vec<ContainerRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(v) = table.get(id)? {
                out.push(serde_json::from_slice(v.value())?);
            }
        }
        Ok(out)
    }

    /// The ID of the container named `name`.
    pub fn id_by_name(&self, name: &str) -> Result<Option<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(NAMES)?;
        Ok(table.get(name)?.map(|v| v.value().to_owned()))
    }

    /// IDs that start with `prefix` (keys only: no record decoded).
    pub fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for row in table.range(prefix..)? {
            let (id, _) = row?;
            if !id.value().starts_with(prefix) {
                break;
            }
            out.push(id.value().to_owned());
        }
        Ok(out)
    }

    /// IDs of the containers in any of `statuses`.
    pub fn ids_with_status(&self, statuses: &[Status]) -> BTreeSet<String> {
        let ix = self.read();
        statuses.iter().filter_map(|s| ix.status.get(s)).flatten().cloned().collect()
    }

    /// How many containers are in each status.
    pub fn count_by_status(&self) -> HashMap<Status, u64> {
        let ix = self.read();
        [Status::Created, Status::Running, Status::Paused, Status::Exited]
            .into_iter()
            .map(|s| (s, ix.status.get(&s).map_or(0, |set| set.len() as u64)))
            .collect()
    }

    /// IDs of the containers with label `key` (any value, or `value`).
    pub fn ids_with_label(&self, key: &str, value: Option<&str>) -> BTreeSet<String> {
        let ix = self.read();
        match value {
            Some(v) => ix.labels.get(&(key.to_owned(), v.to_owned())).cloned().unwrap_or_default(),
            None => ix
                .labels
                .range((key.to_owned(), String::new())..)
                .take_while(|((k, _), _)| k == key)
                .flat_map(|(_, ids)| ids.iter().cloned())
                .collect(),
        }
    }

    /// IDs of the containers created from the image `image_id`.
    pub fn ids_of_image(&self, image_id: &str) -> BTreeSet<String> {
        self.read().images.get(image_id).cloned().unwrap_or_default()
    }

    /// IDs of every image some container was created from.
    pub fn image_ids(&self) -> BTreeSet<String> {
        self.read().images.keys().cloned().collect()
    }

    /// Writes a record (and its name, if it is new or changed); durable
    /// when this returns, the indexes moved. Blocks (an fsync).
    pub fn put(&self, rec: &ContainerRecord) -> Result<()> {
        let bytes = serde_json::to_vec(rec)?;
        let new = Indexed::from(rec);
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let old_name = self.read().by_id.get(&rec.id).map(|ix| ix.name.clone());
        self.make_room();
        let tx = self.db.begin_write()?;
        {
            tx.open_table(CONTAINERS)?.insert(rec.id.as_str(), bytes.as_slice())?;
            if old_name.as_deref() != Some(rec.name.as_str()) {
                let mut names = tx.open_table(NAMES)?;
                if let Some(old) = &old_name {
                    if names.get(old.as_str())?.is_some_and(|v| v.value() == rec.id) {
                        names.remove(old.as_str())?;
                    }
                }
                names.insert(rec.name.as_str(), rec.id.as_str())?;
            }
        }
        tx.commit()?;
        let mut ix = self.indexes.write().unwrap_or_else(|e| e.into_inner());
        ix.remove(&rec.id);
        ix.add(&rec.id, new);
        Ok(())
    }

    /// Deletes a record and its name (if still its own); durable when this
    /// returns, the indexes moved. Blocks (an fsync).
    pub fn delete(&self, id: &str) -> Result<()> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let name = self.read().by_id.get(id).map(|ix| ix.name.clone());
        self.make_room();
        let tx = self.db.begin_write()?;
        {
            tx.open_table(CONTAINERS)?.remove(id)?;
            if let Some(name) = name {
                let mut names = tx.open_table(NAMES)?;
                if names.get(name.as_str())?.is_some_and(|v| v.value() == id) {
                    names.remove(name.as_str())?;
                }
            }
        }
        tx.commit()?;
        self.indexes.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
