//! `image prune` and the image half of `system df`.
//!
//! Prune deletes, in one go under the writer lock, every image nothing
//! uses: dangling ones (no name) by default, every image no container uses
//! with `all`. An image a container uses, or one leased by a create in
//! flight, is never a candidate. Deletion is `remove`'s (database first,
//! then directories), so snapshots and blobs shared with a kept image stay.

use std::collections::HashSet;

use redb::ReadableDatabase;

use super::{meta, Found, ImageError, ImageService, RemoveReport, Resolved};

/// What `prune` removed, as `docker image prune` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// `untagged: NAME` and `deleted: sha256:...` lines, in order.
    pub lines: Vec<String>,
    /// Bytes freed on disk.
    pub reclaimed: u64,
}

/// The images' share of the disk, for `system df`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageUsage {
    pub images: u64,
    /// Images some container uses.
    pub images_active: u64,
    /// Unpacked snapshots plus the compressed blobs of every image.
    pub images_size: u64,
    /// What removing every image no container uses would free.
    pub images_reclaimable: u64,
    /// Snapshots (unpacked layers), each counted once however many images
    /// share it.
    pub layers: u64,
    /// Snapshots under some container.
    pub layers_active: u64,
    pub layers_size: u64,
    /// Snapshots under no container.
    pub layers_reclaimable: u64,
}

impl ImageService {
    /// Deletes unused images: dangling ones, or with `all` every image that
    /// `users(id)` says no container uses.
    pub fn prune(&self, all: bool, users: &dyn Fn(&str) -> Option<String>) -> Result<PruneReport, ImageError> {
        let _guard = self.lock();
        let leases = self.lock_leases();
        let rtxn = self.db.begin_read()?;
        let tables = meta::ReadTables::open(&rtxn)?;
        let mut names = tables.names_by_image()?;
        let mut candidates = Vec::new();
        for (id, meta) in tables.images()? {
            let names = names.remove(&id).unwrap_or_default();
            if (all || names.is_empty()) && users(&id).is_none() && !leases.contains_key(&id) {
                candidates.push(Resolved { id, meta, names, found: Found::Id });
            }
        }
        drop(tables);
        drop(rtxn);

        let mut out = PruneReport::default();
        for r in candidates {
            let mut report = RemoveReport::default();
            out.reclaimed += self.delete(&r, &mut report)?;
            out.lines.extend(report.untagged.into_iter().map(|n| format!("untagged: {n}")));
            out.lines.extend(report.deleted.into_iter().map(|d| format!("deleted: {d}")));
        }
        tracing::info!(all, reclaimed = out.reclaimed, "images pruned");
        Ok(out)
    }

    /// How much disk the images take, given the IDs of the images that
    /// containers use.
    pub fn disk_usage(&self, in_use: &HashSet<String>) -> Result<ImageUsage, ImageError> {
        let rtxn = self.db.begin_read()?;
        let tables = meta::ReadTables::open(&rtxn)?;
        let images = tables.images()?;
        let snapshots = tables.snapshots()?;

        let mut kept_chains = HashSet::new();
        let mut kept_blobs = HashSet::new();
        let mut all_blobs = HashSet::new();
        let mut usage = ImageUsage { images: images.len() as u64, ..Default::default() };
        for (id, meta) in &images {
            all_blobs.extend(meta.blobs.iter().cloned());
            if in_use.contains(id) {
                usage.images_active += 1;
                kept_chains.extend(meta.chain_ids.iter().cloned());
                kept_blobs.extend(meta.blobs.iter().cloned());
            }
        }
        for (chain, snap) in &snapshots {
            usage.layers += 1;
            usage.layers_size += snap.size;
            if kept_chains.contains(chain) {
                usage.layers_active += 1;
            } else {
                usage.layers_reclaimable += snap.size;
            }
        }
        usage.images_size = usage.layers_size;
        usage.images_reclaimable = usage.layers_reclaimable;
        for hex in &all_blobs {
            let size = std::fs::symlink_metadata(self.store.path(hex)).map(|m| m.len()).unwrap_or(0);
            usage.images_size += size;
            if !kept_blobs.contains(hex) {
                usage.images_reclaimable += size;
            }
        }
        Ok(usage)
    }
}
