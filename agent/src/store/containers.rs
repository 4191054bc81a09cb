//! Container records and their indexes.
//!
//! | table | key → value | for |
//! | --- | --- | --- |
//! | `containers` | ID → record (JSON) | everything |
//! | `container_names` | name → ID | lookups by name, a create's name check |
//! | `container_status` | status → IDs | `ps` without `-a`, `Info`'s counts, recovery |
//! | `container_labels` | (key, value) → IDs | `--filter label=` |
//! | `container_images` | image ID → IDs | `rmi`'s "in use by", prune and `df` |
//! | `container_indexes` | `version` → n | which indexes this database has |
//!
//! The record table and its JSON stay as every berth before the indexes
//! wrote them; a database without the indexes (or with older ones) gets
//! them built from the records once, when the store opens.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use redb::{
    MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::Deserialize;

use crate::containers::{ContainerRecord, Status};
use crate::error::Result;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("container_names");
const STATUS: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("container_status");
const LABELS: MultimapTableDefinition<(&str, &str), &str> = MultimapTableDefinition::new("container_labels");
const IMAGES: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("container_images");
const INDEXES: TableDefinition<&str, u64> = TableDefinition::new("container_indexes");

/// Version 1: the name index (built alone by the berth that introduced
/// it). Version 2: status, labels, images.
const INDEX_VERSION: u64 = 2;

/// What the indexes read from a record (the rest is skipped when an old
/// record is decoded to take it out of them).
#[derive(Deserialize)]
struct Indexed {
    name: String,
    #[serde(default)]
    image_id: String,
    #[serde(default)]
    labels: HashMap<String, String>,
    state: IndexedState,
}

#[derive(Deserialize)]
struct IndexedState {
    status: Status,
}

impl From<&ContainerRecord> for Indexed {
    fn from(r: &ContainerRecord) -> Self {
        Indexed {
            name: r.name.clone(),
            image_id: r.image_id.clone(),
            labels: r.labels.clone(),
            state: IndexedState { status: r.state.status },
        }
    }
}

/// The container records of `meta.redb`. Cheap to clone. Reads take a
/// read transaction (no fsync, no lock against writers); `put` and
/// `delete` commit durably and block: call them off the async threads.
#[derive(Clone)]
pub struct ContainerStore {
    db: Arc<redb::Database>,
}

impl ContainerStore {
    /// Opens the tables, and builds the indexes a database made by an
    /// older berth lacks.
    pub fn open(db: Arc<redb::Database>) -> Result<Self> {
        let tx = db.begin_write()?;
        {
            let version = tx.open_table(INDEXES)?.get("version")?.map_or(0, |v| v.value());
            // Created even when nothing else is written, so reads find them.
            let records = tx.open_table(CONTAINERS)?;
            tx.open_table(NAMES)?;
            tx.open_multimap_table(STATUS)?;
            tx.open_multimap_table(LABELS)?;
            tx.open_multimap_table(IMAGES)?;
            if version < INDEX_VERSION {
                let all: Vec<(String, Indexed)> = records
                    .iter()?
                    .map(|row| {
                        let (id, v) = row?;
                        Ok((id.value().to_owned(), serde_json::from_slice(v.value())?))
                    })
                    .collect::<Result<_>>()?;
                drop(records);
                if !all.is_empty() {
                    tracing::info!(containers = all.len(), "building the container indexes");
                }
                tx.delete_table(NAMES)?;
                tx.delete_multimap_table(STATUS)?;
                tx.delete_multimap_table(LABELS)?;
                tx.delete_multimap_table(IMAGES)?;
                for (id, rec) in &all {
                    index(&tx, id, rec)?;
                }
                tx.open_table(NAMES)?;
                tx.open_multimap_table(STATUS)?;
                tx.open_multimap_table(LABELS)?;
                tx.open_multimap_table(IMAGES)?;
                tx.open_table(INDEXES)?.insert("version", INDEX_VERSION)?;
            }
        }
        tx.commit()?;
        Ok(Self { db })
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
    pub fn ids_with_status(&self, statuses: &[Status]) -> Result<BTreeSet<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_multimap_table(STATUS)?;
        let mut out = BTreeSet::new();
        for s in statuses {
            for id in table.get(s.as_str())? {
                out.insert(id?.value().to_owned());
            }
        }
        Ok(out)
    }

    /// How many containers are in each status.
    pub fn count_by_status(&self) -> Result<HashMap<Status, u64>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_multimap_table(STATUS)?;
        let mut out = HashMap::new();
        for s in [Status::Created, Status::Running, Status::Paused, Status::Exited] {
            out.insert(s, table.get(s.as_str())?.len());
        }
        Ok(out)
    }

    /// IDs of the containers with label `key` (any value, or `value`).
    pub fn ids_with_label(&self, key: &str, value: Option<&str>) -> Result<BTreeSet<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_multimap_table(LABELS)?;
        let mut out = BTreeSet::new();
        if let Some(value) = value {
            for id in table.get((key, value))? {
                out.insert(id?.value().to_owned());
            }
            return Ok(out);
        }
        for row in table.range((key, "")..)? {
            let (k, ids) = row?;
            if k.value().0 != key {
                break;
            }
            for id in ids {
                out.insert(id?.value().to_owned());
            }
        }
        Ok(out)
    }

    /// IDs of the containers created from the image `image_id`.
    pub fn ids_of_image(&self, image_id: &str) -> Result<BTreeSet<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_multimap_table(IMAGES)?;
        table.get(image_id)?.map(|id| Ok(id?.value().to_owned())).collect()
    }

    /// IDs of every image some container was created from.
    pub fn image_ids(&self) -> Result<BTreeSet<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_multimap_table(IMAGES)?;
        let mut out = BTreeSet::new();
        for row in table.iter()? {
            let (image, _) = row?;
            out.insert(image.value().to_owned());
        }
        Ok(out)
    }

    /// Writes a record and moves its index entries; durable when this
    /// returns. Blocks (an fsync).
    pub fn put(&self, rec: &ContainerRecord) -> Result<()> {
        let bytes = serde_json::to_vec(rec)?;
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CONTAINERS)?;
            let old = table.insert(rec.id.as_str(), bytes.as_slice())?;
            let old: Option<Indexed> = old.map(|v| serde_json::from_slice(v.value())).transpose()?;
            if let Some(old) = old {
                unindex(&tx, &rec.id, &old)?;
            }
        }
        index(&tx, &rec.id, &Indexed::from(rec))?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a record and its index entries; durable when this returns.
    /// Blocks (an fsync).
    pub fn delete(&self, id: &str) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CONTAINERS)?;
            let old = table.remove(id)?;
            let old: Option<Indexed> = old.map(|v| serde_json::from_slice(v.value())).transpose()?;
            if let Some(old) = old {
                unindex(&tx, id, &old)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn index(tx: &WriteTransaction, id: &str, rec: &Indexed) -> Result<()> {
    tx.open_table(NAMES)?.insert(rec.name.as_str(), id)?;
    tx.open_multimap_table(STATUS)?.insert(rec.state.status.as_str(), id)?;
    let mut labels = tx.open_multimap_table(LABELS)?;
    for (k, v) in &rec.labels {
        labels.insert((k.as_str(), v.as_str()), id)?;
    }
    if !rec.image_id.is_empty() {
        tx.open_multimap_table(IMAGES)?.insert(rec.image_id.as_str(), id)?;
    }
    Ok(())
}

fn unindex(tx: &WriteTransaction, id: &str, rec: &Indexed) -> Result<()> {
    let mut names = tx.open_table(NAMES)?;
    // Only if the name is still this container's.
    let ours = names.get(rec.name.as_str())?.is_some_and(|v| v.value() == id);
    if ours {
        names.remove(rec.name.as_str())?;
    }
    tx.open_multimap_table(STATUS)?.remove(rec.state.status.as_str(), id)?;
    let mut labels = tx.open_multimap_table(LABELS)?;
    for (k, v) in &rec.labels {
        labels.remove((k.as_str(), v.as_str()), id)?;
    }
    tx.open_multimap_table(IMAGES)?.remove(rec.image_id.as_str(), id)?;
    Ok(())
}

#[cfg(test)]
mod tests;
