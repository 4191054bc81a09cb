//! Images: references, the content store, layer snapshots and the image
//! records that tie them together.
//!
//! Shape:
//! * [`reference`](mod@reference) parses and normalises names the way Docker does.
//! * [`store`] owns `content/`: a blob becomes visible under
//!   `content/blobs/sha256/<hex>` only after it was hashed, fsynced and
//!   checked, and it is renamed there only when the image that needs it is
//!   committed to the database.
//! * `unpack` turns one layer into `snapshots/<n>/fs`, resolving every path
//!   with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` so that a hostile
//!   layer cannot write outside its snapshot.
//! * `staging` is the one pipeline `load` and `import` share: stage blobs
//!   under `content/ingest/`, unpack into temp snapshot dirs, then publish
//!   blobs, rename snapshots and commit the database in one step. Its drop
//!   guard removes everything that was not committed. [`pull`] downloads
//!   into its own scratch space without the writer lock, then hands the
//!   parts to the same staging.
//! * `meta` holds the redb tables; the database is the one source of truth
//!   for names, images and which snapshot serves which layer chain.
//!
//! Every mutating operation holds one mutex for its whole duration, so the
//! read-then-write sequences (resolve, reuse a snapshot, GC) see a stable
//! database; readers (`list`, `resolve`, `inspect`) never take it and
//! use redb's snapshot isolation instead. All functions block: berthd calls
//! them from `spawn_blocking`.

pub mod changes;
pub mod commit;
pub mod diff;
pub mod filter;
pub mod history;
pub mod prune;
pub mod pull;
pub mod push;
pub mod reference;
pub mod save;
pub mod store;

mod import;
pub mod inspect;
pub(crate) mod load;
mod meta;
mod remove;
mod staging;
pub(crate) mod unpack;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_contract::Layout;
use redb::{Database, ReadTransaction, ReadableDatabase};

use crate::store_layout::StoreLayout;
use meta::{ImageMeta, Tables};
pub use reference::Reference;
pub(crate) use staging::chain_ids;
use store::ContentStore;

/// Why an image operation failed. The first four variants are the ones a
/// caller can act on; the rest are internal.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image by that name, digest or ID.
    #[error("No such image: {0}")]
    NotFound(String),
    /// The reference is not a valid image reference.
    #[error("{0}")]
    InvalidReference(String),
    /// The image is in use or referenced in a way that forbids the operation.
    #[error("{0}")]
    InUse(String),
    /// Bad input: a malformed archive, a hostile tar, a digest mismatch.
    #[error("{0}")]
    Invalid(String),
    /// A filesystem operation failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("image metadata database")]
    Db(#[from] redb::Error),
    /// The metadata database holds something it should not.
    #[error("image metadata is inconsistent: {0}")]
    Corrupt(String),
}

/// How the RPC layer should classify an [`ImageError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageErrorKind {
    NotFound,
    InvalidArgument,
    FailedPrecondition,
    Internal,
}

impl ImageError {
    /// True for [`ImageError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// The class of this error, for the status code.
    pub fn kind(&self) -> ImageErrorKind {
        match self {
            Self::NotFound(_) => ImageErrorKind::NotFound,
            Self::InvalidReference(_) | Self::Invalid(_) => ImageErrorKind::InvalidArgument,
            Self::InUse(_) => ImageErrorKind::FailedPrecondition,
            Self::Io { .. } | Self::Db(_) | Self::Corrupt(_) => ImageErrorKind::Internal,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
}

macro_rules! db_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ImageError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
db_error_from!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// One image as the rest of berthd sees it.
#[derive(Clone, Debug)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    /// Full normalised references (`docker.io/library/busybox:latest`),
    /// sorted; empty for a dangling image.
    pub names: Vec<String>,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
    pub config: oci_spec::image::ImageConfiguration,
    /// Unix seconds from the config, 0 when it has none.
    pub created: i64,
    /// Bytes of the unpacked layers.
    pub size: u64,
    /// Chain IDs of the layers, lowest first.
    pub chain_ids: Vec<String>,
}

impl ImageRecord {
    /// The 12-digit ID people see.
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }
}

/// One image an archive brought in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// Full normalised references given to it by the archive.
    pub names: Vec<String>,
}

/// What `remove` did, item by item as `docker rmi` prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// Names removed, in Docker's short form (`Untagged: busybox:latest`).
    pub untagged: Vec<String>,
    /// The image ID deleted, then the chain IDs of the snapshots collected
    /// (`Deleted: sha256:...`).
    pub deleted: Vec<String>,
}

/// The image subsystem of berthd.
pub struct ImageService {
    layout: Layout,
    db: Arc<Database>,
    store: ContentStore,
    /// Serialises every operation that writes the database or the disk.
    writer: Mutex<()>,
    /// Images held by callers that are about to record a use of them (a
    /// container being created): image ID → holders. `remove` and `prune`
    /// hold this lock from their check to their commit, so an image is
    /// either leased before it is checked or gone before it is leased.
    leases: Arc<Mutex<HashMap<String, usize>>>,
    /// How far a layer may expand when it is unpacked.
    pub(crate) limits: unpack::Limits,
}

/// A hold on one image, from [`ImageService::lease`]: while it lives the
/// image counts as in use. Dropping it releases the hold.
pub struct Lease {
    leases: Arc<Mutex<HashMap<String, usize>>>,
    id: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = leases.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                leases.remove(&self.id);
            }
        }
    }
}

/// How a user's string found an image.
pub(crate) enum Found {
    /// By one of its names (the full normalised reference).
    Name(String),
    /// By ID, ID prefix or `name@digest`.
    Id,
}

pub(crate) struct Resolved {
    pub id: String,
    pub meta: ImageMeta,
    pub names: Vec<String>,
    pub found: Found,
}

impl ImageService {
    /// Opens the image subsystem on `layout.root()`: creates the directories
    /// and tables, and removes what interrupted work left behind (anything
    /// in `content/ingest/`, snapshot dirs the database does not record,
    /// blobs no image references).
    pub fn open(layout: Layout, db: Arc<Database>) -> Result<Self, ImageError> {
        Self::open_with(layout, db, true)
    }

    /// As [`ImageService::open`]; with `sweep` false (a database that does
    /// not know the whole root, `server/metadata.rs`) nothing it does not
    /// record is removed, and new snapshots are numbered past the
    /// directories already there.
    pub fn open_with(layout: Layout, db: Arc<Database>, sweep: bool) -> Result<Self, ImageError> {
        let store = ContentStore::new(&layout);
        for dir in [layout.root().join("content"), layout.blobs_dir(), layout.ingest_dir(), layout.snapshots_dir()] {
            fs::create_dir_all(&dir).map_err(|e| ImageError::io(format!("create {}", dir.display()), e))?;
        }
        // Snapshots hold setuid binaries and device nodes from images: no
        // other user may reach them (containerd does the same).
        for dir in [layout.root().join("content"), layout.snapshots_dir()] {
            set_mode(&dir, 0o700)?;
        }
        meta::create_tables(&db)?;
        let svc = Self {
            layout,
            db,
            store,
            writer: Mutex::new(()),
            leases: Arc::default(),
            limits: unpack::Limits::default(),
        };
        {
            let _guard = svc.lock();
            svc.clean_leftovers(sweep)?;
        }
        Ok(svc)
    }

    /// The same service with other unpack limits (`[images]` in the
    /// config file).
    pub fn with_limits(mut self, limits: unpack::Limits) -> Self {
        self.limits = limits;
        self
    }

    fn clean_leftovers(&self, sweep: bool) -> Result<(), ImageError> {
        let ingest = self.layout.ingest_dir();
        let partial = pull::partial_dir(&self.layout);
        for entry in read_dir(&ingest)? {
            // Partial layer downloads are kept for a retry of the pull
            // (HTTP range), until they are old.
            if entry == partial {
                continue;
            }
            remove_any(&entry)?;
            tracing::info!(path = %entry.display(), "removed interrupted ingest");
        }
        pull::sweep_partials(&self.layout);
        if !sweep {
            let dirs = read_dir(&self.layout.snapshots_dir())?;
            let highest = dirs.iter().filter_map(|d| d.file_name()?.to_str()?.parse::<u64>().ok()).max().unwrap_or(0);
            meta::raise_snapshot_counter(&self.db, highest)?;
            tracing::warn!(
                snapshots = dirs.len(),
                blobs = self.store.list()?.len(),
                "kept: the metadata database does not know the whole root"
            );
            return Ok(());
        }
        let rtxn = self.db.begin_read()?;
        let tables = meta::ReadTables::open(&rtxn)?;
        let recorded: std::collections::HashSet<String> =
            tables.snapshots()?.into_iter().map(|(_, s)| s.n.to_string()).collect();
        for entry in read_dir(&self.layout.snapshots_dir())? {
            let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !recorded.contains(&name) {
                remove_any(&entry)?;
                tracing::info!(path = %entry.display(), "removed unrecorded snapshot dir");
            }
        }
        for (chain_id, snap) in tables.snapshots()? {
            if !self.layout.snapshot_fs(snap.n).is_dir() {
                tracing::warn!(chain_id, n = snap.n, "recorded snapshot has no directory");
            }
        }
        let referenced = tables.referenced_blobs()?;
        for hex in self.store.list()? {
            if !referenced.contains(&hex) {
                self.store.remove(&hex)?;
                tracing::info!(digest = %format!("sha256:{hex}"), "removed unreferenced blob");
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_leases(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves `reference` and holds the image until the [`Lease`] is
    /// dropped: `remove` and `prune` will not delete it meanwhile. A
    /// container create holds one from resolving its image until its record
    /// (which then keeps the image in use) is committed.
    pub fn lease(&self, reference: &str) -> Result<(ImageRecord, Lease), ImageError> {
        let mut leases = self.lock_leases();
        let image = self.resolve(reference)?;
        *leases.entry(image.id.clone()).or_default() += 1;
        let lease = Lease { leases: self.leases.clone(), id: image.id.clone() };
        Ok((image, lease))
    }

    /// Every image, newest first, each once with all its names.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let rtxn = self.db.begin_read()?;
        let tables = meta::ReadTables::open(&rtxn)?;
        let mut names = tables.names_by_image()?;
        let mut out: Vec<ImageRecord> = tables
            .images()?
            .into_iter()
            .map(|(id, meta)| {
                let n = names.remove(&id).unwrap_or_default();
                record(id, meta, n)
            })
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// [`Self::list`] through `--filter`s.
    pub fn list_filtered(&self, filters: &filter::ImageFilters) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.list()?.into_iter().filter_map(|i| filters.apply(i)).collect())
    }

    /// Finds one image by name (normalised: `busybox` finds
    /// `docker.io/library/busybox:latest`), by `name@sha256:<manifest
    /// digest>`, by `sha256:<hex>` ID, or by a unique ID prefix of at least
    /// four hex digits, with or without `sha256:`.
    pub fn resolve(&self, reference: &str) -> Result<ImageRecord, ImageError> {
        let rtxn = self.db.begin_read()?;
        let r = self.resolve_in(&rtxn, reference)?;
        Ok(record(r.id, r.meta, r.names))
    }

    pub(crate) fn resolve_in(&self, rtxn: &ReadTransaction, input: &str) -> Result<Resolved, ImageError> {
        let tables = meta::ReadTables::open(rtxn)?;
        let found = |id: String, found: Found| -> Result<Resolved, ImageError> {
            let meta =
                tables.image(&id)?.ok_or_else(|| ImageError::Corrupt(format!("name points to missing image {id}")))?;
            let names = tables.names_of(&id)?;
            Ok(Resolved { id, meta, names, found })
        };
        let not_found = || ImageError::NotFound(input.to_owned());

        if let Some(hex) = input.strip_prefix("sha256:") {
            if !is_hex(hex) {
                return Err(ImageError::InvalidReference("invalid reference format".into()));
            }
            let id = self.id_by_prefix(&tables, hex)?.ok_or_else(not_found)?;
            return found(id, Found::Id);
        }
        if input.len() == 64 && is_hex(input) {
            let id = format!("sha256:{input}");
            return match tables.image(&id)? {
                Some(_) => found(id, Found::Id),
                None => Err(not_found()),
            };
        }
        let parsed = reference::parse(input)?;
        if let Some(digest) = parsed.digest() {
            let repo = parsed.name();
            // A pull by digest records `repo@digest` as a name (the digest
            // may be an index's, which no stored manifest has).
            let by_digest = format!("{repo}@{digest}");
            if let Some(id) = tables.name(&by_digest)? {
                return found(id, Found::Name(by_digest));
            }
            for (id, meta) in tables.images()? {
                if meta.manifest_digest == digest
                    && tables.names_of(&id)?.iter().any(|n| reference::parse(n).is_ok_and(|r| r.name() == repo))
                {
                    return found(id, Found::Id);
                }
            }
            return Err(not_found());
        }
        let full = parsed.to_string();
        if let Some(id) = tables.name(&full)? {
            return found(id, Found::Name(full));
        }
        if is_hex(input) {
            if let Some(id) = self.id_by_prefix(&tables, input)? {
                return found(id, Found::Id);
            }
        }
        Err(not_found())
    }

    fn id_by_prefix(&self, tables: &meta::ReadTables, hex: &str) -> Result<Option<String>, ImageError> {
        if hex.len() < 4 {
            return Ok(None);
        }
        let prefix = format!("sha256:{hex}");
        let matches = tables.image_ids_with_prefix(&prefix)?;
        match matches.len() {
            1 => Ok(matches.into_iter().next()),
            0 => Ok(None),
            _ => Err(ImageError::NotFound(format!("{hex} (the prefix matches {} images)", matches.len()))),
        }
    }

    /// Gives the image `source` resolves to the name `target`; the name
    /// moves there if another image had it (that image stays, maybe as
    /// `<none>`).
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord, ImageError> {
        let target_ref = reference::parse(target)?;
        if target_ref.digest().is_some() {
            return Err(ImageError::InvalidReference("refusing to create a tag with a digest reference".into()));
        }
        let _guard = self.lock();
        let rtxn = self.db.begin_read()?;
        let resolved = self.resolve_in(&rtxn, source)?;
        drop(rtxn);
        let name = target_ref.to_string();
        let wtxn = self.db.begin_write()?;
        {
            let mut tables = Tables::open(&wtxn)?;
            tables.set_name(&name, &resolved.id)?;
        }
        wtxn.commit()?;
        tracing::info!(id = %resolved.id, name, "tagged image");
        let mut names = resolved.names;
        if !names.contains(&name) {
            names.push(name);
            names.sort();
        }
        Ok(record(resolved.id, resolved.meta, names))
    }

    /// The snapshot directories of the image's layers, uppermost first
    /// (the order of overlayfs' `lowerdir`).
    pub fn rootfs_layers(&self, image: &ImageRecord) -> Result<Vec<PathBuf>, ImageError> {
        let rtxn = self.db.begin_read()?;
        let tables = meta::ReadTables::open(&rtxn)?;
        image
            .chain_ids
            .iter()
            .rev()
            .map(|chain| {
                let snap = tables.snapshot(chain)?.ok_or_else(|| {
                    ImageError::Corrupt(format!(
                        "image {} needs snapshot {chain}, which is not recorded",
                        image.short_id()
                    ))
                })?;
                Ok(self.layout.snapshot_fs(snap.n))
            })
            .collect()
    }

    /// How many images there are (dangling ones included).
    pub fn count(&self) -> Result<usize, ImageError> {
        let rtxn = self.db.begin_read()?;
        let tables = meta::ReadTables::open(&rtxn)?;
        tables.image_count()
    }
}

impl ImageService {
    /// The record of an image this service has just committed; `what`
    /// names the operation for the error if it is somehow missing.
    fn just_recorded(&self, id: String, what: &str) -> Result<ImageRecord, ImageError> {
        let rtxn = self.db.begin_read()?;
        let tables = meta::ReadTables::open(&rtxn)?;
        let meta =
            tables.image(&id)?.ok_or_else(|| ImageError::Corrupt(format!("{what} image {id} is not recorded")))?;
        let names = tables.names_of(&id)?;
        Ok(record(id, meta, names))
    }
}

fn record(id: String, meta: ImageMeta, mut names: Vec<String>) -> ImageRecord {
    names.sort();
    ImageRecord {
        id,
        names,
        manifest_digest: meta.manifest_digest,
        config: meta.config,
        created: meta.created,
        size: meta.size,
        chain_ids: meta.chain_ids,
    }
}

/// `sha256:0123456789abcdef...` → `0123456789ab`.
pub(crate) fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The image's unique repositories (short form), in name order.
pub(crate) fn repositories(names: &[String]) -> Vec<String> {
    let mut repos: Vec<String> = Vec::new();
    for n in names {
        if let Ok(r) = reference::parse(n) {
            let repo = r.repository();
            if !repos.contains(&repo) {
                repos.push(repo);
            }
        }
    }
    repos
}

/// Unix seconds of an RFC 3339 time, 0 when absent or unparsable.
pub(crate) fn created_secs(created: Option<&String>) -> i64 {
    created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()).map(|t| t.timestamp()).unwrap_or(0)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let rd = fs::read_dir(dir).map_err(|e| ImageError::io(format!("read {}", dir.display()), e))?;
    rd.map(|e| e.map(|e| e.path()).map_err(|e| ImageError::io(format!("read {}", dir.display()), e))).collect()
}

/// Removes a file or a whole tree, not following symlinks.
pub(crate) fn remove_any(path: &Path) -> Result<(), ImageError> {
    let result = match fs::symlink_metadata(path) {
        // Not std's remove_dir_all, which recurses per level.
        Ok(m) if m.is_dir() => crate::tree::remove_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| ImageError::io(format!("remove {}", path.display()), e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| ImageError::io(format!("chmod {}", path.display()), e))
}

/// fsyncs a directory, so that renames into it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| ImageError::io(format!("fsync {}", dir.display()), e))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
