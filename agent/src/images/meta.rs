//! The image subsystem's tables in berthd's redb database (other modules
//! own other tables of the same file):
//!
//! | table            | key                    | value                          |
//! | ---------------- | ---------------------- | ------------------------------ |
//! | `images`         | image ID `sha256:<hex>`| JSON [`ImageMeta`]             |
//! | `image_names`    | full normalised ref    | image ID                       |
//! | `snapshots`      | chain ID `sha256:<hex>`| JSON [`SnapshotMeta`]          |
//! | `image_counters` | `snapshot`             | last snapshot number handed out|
//!
//! Names live only in `image_names`, so moving a name is one insert. A
//! snapshot is shared by every image whose layer chain reaches it; it is
//! garbage when no image record lists its chain ID.

use std::collections::{BTreeMap, HashSet};

use oci_spec::image::ImageConfiguration;
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::ImageError;

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("image_names");
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("image_counters");
const SNAPSHOT_COUNTER: &str = "snapshot";

/// What the database keeps about one image (its names are in
/// `image_names`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageMeta {
    /// `sha256:<hex>` of the manifest blob.
    pub manifest_digest: String,
    pub config: ImageConfiguration,
    /// Unix seconds from the config, 0 when unknown.
    pub created: i64,
    /// Bytes of the unpacked layers.
    pub size: u64,
    /// Chain IDs, lowest layer first.
    pub chain_ids: Vec<String>,
    /// Hex digests of every blob the image needs: manifest, config, layers.
    pub blobs: Vec<String>,
}

/// One unpacked layer chain: `snapshots/<n>/fs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub n: u64,
    /// Bytes of regular files in this layer.
    pub size: u64,
    /// The chain ID below it.
    pub parent: Option<String>,
    pub diff_id: String,
}

/// Creates the tables if they do not exist yet.
pub fn create_tables(db: &Database) -> Result<(), ImageError> {
    let wtxn = db.begin_write()?;
    {
        wtxn.open_table(IMAGES)?;
        wtxn.open_table(NAMES)?;
        wtxn.open_table(SNAPSHOTS)?;
        wtxn.open_table(COUNTERS)?;
    }
    wtxn.commit()?;
    Ok(())
}

/// Makes the next snapshot number larger than `at_least`.
pub fn raise_snapshot_counter(db: &Database, at_least: u64) -> Result<(), ImageError> {
    let wtxn = db.begin_write()?;
    {
        let mut counters = wtxn.open_table(COUNTERS)?;
        let last = counters.get(SNAPSHOT_COUNTER)?.map(|v| v.value()).unwrap_or(0);
        if last < at_least {
            counters.insert(SNAPSHOT_COUNTER, at_least)?;
        }
    }
    wtxn.commit()?;
    Ok(())
}

/// The tables, in a read or a write transaction.
pub struct TableSet<I, N, S, C> {
    images: I,
    names: N,
    snapshots: S,
    counters: C,
}

pub type ReadTables = TableSet<
    ReadOnlyTable<&'static str, &'static [u8]>,
    ReadOnlyTable<&'static str, &'static str>,
    ReadOnlyTable<&'static str, &'static [u8]>,
    (),
>;

pub type Tables<'t> = TableSet<
    Table<'t, &'static str, &'static [u8]>,
    Table<'t, &'static str, &'static str>,
    Table<'t, &'static str, &'static [u8]>,
    Table<'t, &'static str, u64>,
>;

impl ReadTables {
    pub fn open(rtxn: &ReadTransaction) -> Result<Self, ImageError> {
        Ok(TableSet {
            images: rtxn.open_table(IMAGES)?,
            names: rtxn.open_table(NAMES)?,
            snapshots: rtxn.open_table(SNAPSHOTS)?,
            counters: (),
        })
    }
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, key: &str, bytes: &[u8]) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Corrupt(format!("{what} {key}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(value).map_err(|e| ImageError::Corrupt(format!("encode record: {e}")))
}

impl<I, N, S, C> TableSet<I, N, S, C>
where
    I: ReadableTable<&'static str, &'static [u8]>,
    N: ReadableTable<&'static str, &'static str>,
    S: ReadableTable<&'static str, &'static [u8]>,
{
    pub fn image(&self, id: &str) -> Result<Option<ImageMeta>, ImageError> {
        match self.images.get(id)? {
            Some(v) => decode("image", id, v.value()).map(Some),
            None => Ok(None),
        }
    }

    pub fn images(&self) -> Result<Vec<(String, ImageMeta)>, ImageError> {
        let mut out = Vec::new();
        for item in self.images.range::<&str>(..)? {
            let (k, v) = item?;
            let id = k.value().to_owned();
            let meta = decode("image", &id, v.value())?;
            out.push((id, meta));
        }
        Ok(out)
    }

    pub fn image_count(&self) -> Result<usize, ImageError> {
        Ok(self.images.len()? as usize)
    }

    /// IDs that start with `prefix` (`sha256:abcd`).
    pub fn image_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        for item in self.images.range::<&str>(prefix..)? {
            let (k, _) = item?;
            let id = k.value();
            if !id.starts_with(prefix) {
                break;
            }
            out.push(id.to_owned());
        }
        Ok(out)
    }

    /// The image a full name points to.
    pub fn name(&self, name: &str) -> Result<Option<String>, ImageError> {
        Ok(self.names.get(name)?.map(|v| v.value().to_owned()))
    }

    /// Every name of one image, sorted.
    pub fn names_of(&self, id: &str) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        for item in self.names.range::<&str>(..)? {
            let (k, v) = item?;
            if v.value() == id {
                out.push(k.value().to_owned());
            }
        }
        Ok(out)
    }

    pub fn names_by_image(&self) -> Result<BTreeMap<String, Vec<String>>, ImageError> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in self.names.range::<&str>(..)? {
            let (k, v) = item?;
            out.entry(v.value().to_owned()).or_default().push(k.value().to_owned());
        }
        Ok(out)
    }

    pub fn snapshot(&self, chain_id: &str) -> Result<Option<SnapshotMeta>, ImageError> {
        match self.snapshots.get(chain_id)? {
            Some(v) => decode("snapshot", chain_id, v.value()).map(Some),
            None => Ok(None),
        }
    }

    pub fn snapshots(&self) -> Result<Vec<(String, SnapshotMeta)>, ImageError> {
        let mut out = Vec::new();
        for item in self.snapshots.range::<&str>(..)? {
            let (k, v) = item?;
            let chain = k.value().to_owned();
            let meta = decode("snapshot", &chain, v.value())?;
            out.push((chain, meta));
        }
        Ok(out)
    }

    /// Hex digests of every blob some image needs.
    pub fn referenced_blobs(&self) -> Result<HashSet<String>, ImageError> {
        Ok(self.images()?.into_iter().flat_map(|(_, m)| m.blobs).collect())
    }

    /// Chain IDs of every snapshot some image needs.
    pub fn referenced_chains(&self) -> Result<HashSet<String>, ImageError> {
        Ok(self.images()?.into_iter().flat_map(|(_, m)| m.chain_ids).collect())
    }
}

impl<'t> Tables<'t> {
    pub fn open(wtxn: &'t WriteTransaction) -> Result<Self, ImageError> {
        Ok(TableSet {
            images: wtxn.open_table(IMAGES)?,
            names: wtxn.open_table(NAMES)?,
            snapshots: wtxn.open_table(SNAPSHOTS)?,
            counters: wtxn.open_table(COUNTERS)?,
        })
    }

    pub fn put_image(&mut self, id: &str, meta: &ImageMeta) -> Result<(), ImageError> {
        self.images.insert(id, encode(meta)?.as_slice())?;
        Ok(())
    }

    pub fn remove_image(&mut self, id: &str) -> Result<(), ImageError> {
        self.images.remove(id)?;
        Ok(())
    }

    /// Points `name` at `id`; returns the image it pointed to before.
    pub fn set_name(&mut self, name: &str, id: &str) -> Result<Option<String>, ImageError> {
        Ok(self.names.insert(name, id)?.map(|v| v.value().to_owned()))
    }

    pub fn remove_name(&mut self, name: &str) -> Result<(), ImageError> {
        self.names.remove(name)?;
        Ok(())
    }

    pub fn put_snapshot(&mut self, chain_id: &str, meta: &SnapshotMeta) -> Result<(), ImageError> {
        self.snapshots.insert(chain_id, encode(meta)?.as_slice())?;
        Ok(())
    }

    pub fn remove_snapshot(&mut self, chain_id: &str) -> Result<(), ImageError> {
        self.snapshots.remove(chain_id)?;
        Ok(())
    }

    /// Hands out the next snapshot number (part of this transaction).
    pub fn next_snapshot_number(&mut self) -> Result<u64, ImageError> {
        let last = self.counters.get(SNAPSHOT_COUNTER)?.map(|v| v.value()).unwrap_or(0);
        let n = last + 1;
        self.counters.insert(SNAPSHOT_COUNTER, n)?;
        Ok(n)
    }
}
