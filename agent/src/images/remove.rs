//! `remove` (`docker rmi`) and the garbage collection that follows it.
//!
//! Docker's rules: removing a name removes only that name, unless it is
//! the image's last one, when the image goes too; a container still using
//! the image makes that an error unless forced, and forced it only untags
//! (the record stays, dangling, until the container is gone). Removing by
//! ID untags every name, and wants force when the names span several
//! repositories.
//!
//! Collection is database first, durably, then directories: a crash in
//! between leaves unrecorded snapshot dirs and unreferenced blobs, which
//! `ImageService::open` removes.

use std::collections::HashSet;

use redb::ReadableDatabase;

use super::meta::Tables;
use super::reference;
use super::{repositories, short_id, Found, ImageError, ImageService, RemoveReport, Resolved};
use crate::store_layout::StoreLayout;

/// Who uses a leased image, in the conflict messages.
const LEASED: &str = "(being created)";

impl ImageService {
    /// Removes a name or an image, as `docker rmi [-f]` does, then
    /// collects snapshots and blobs no image needs any more. `users(id)`
    /// gives the short ID of a container using image `id`, if any.
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        users: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RemoveReport, ImageError> {
        let _guard = self.lock();
        let leases = self.lock_leases();
        let users = |id: &str| users(id).or_else(|| leases.contains_key(id).then(|| LEASED.to_owned()));
        let rtxn = self.db.begin_read()?;
        let r = self.resolve_in(&rtxn, reference)?;
        drop(rtxn);
        let short = short_id(&r.id).to_owned();
        let mut report = RemoveReport::default();
        match &r.found {
            Found::Name(name) => {
                if r.names.len() > 1 {
                    self.untag(std::slice::from_ref(name))?;
                    report.untagged.push(reference::familiar(name));
                    return Ok(report);
                }
                if let Some(c) = users(&r.id) {
                    if !force {
                        return Err(ImageError::InUse(format!(
                            "conflict: unable to remove repository reference \"{reference}\" (must force) - container {c} is using its referenced image {short}"
                        )));
                    }
                    self.untag(std::slice::from_ref(name))?;
                    report.untagged.push(reference::familiar(name));
                    return Ok(report);
                }
            }
            Found::Id => {
                if !force && repositories(&r.names).len() > 1 {
                    return Err(ImageError::InUse(format!(
                        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
                if let Some(c) = users(&r.id) {
                    if !force {
                        return Err(ImageError::InUse(format!(
                            "conflict: unable to delete {short} (must be forced) - image is being used by container {c}"
                        )));
                    }
                    if r.names.is_empty() {
                        return Err(ImageError::InUse(format!(
                            "conflict: unable to delete {short} (cannot be forced) - image is being used by container {c}"
                        )));
                    }
                    self.untag(&r.names)?;
                    report.untagged.extend(r.names.iter().map(|n| reference::familiar(n)));
                    return Ok(report);
                }
            }
        }
        self.delete(&r, &mut report)?;
        Ok(report)
    }

    fn untag(&self, names: &[String]) -> Result<(), ImageError> {
        let wtxn = self.db.begin_write()?;
        {
            let mut tables = Tables::open(&wtxn)?;
            for n in names {
                tables.remove_name(n)?;
            }
        }
        wtxn.commit()?;
        tracing::info!(?names, "untagged");
        Ok(())
    }

    /// Deletes the image record and its names, and collects; returns the
    /// bytes freed on disk (snapshot files and blobs).
    pub(crate) fn delete(&self, r: &Resolved, report: &mut RemoveReport) -> Result<u64, ImageError> {
        let wtxn = self.db.begin_write()?;
        let (snapshots, blobs) = {
            let mut tables = Tables::open(&wtxn)?;
            for n in &r.names {
                tables.remove_name(n)?;
            }
            tables.remove_image(&r.id)?;
            let chains = tables.referenced_chains()?;
            let mut snapshots = Vec::new();
            for (chain, snap) in tables.snapshots()? {
                if !chains.contains(&chain) {
                    tables.remove_snapshot(&chain)?;
                    snapshots.push((chain, snap.n, snap.size));
                }
            }
            let referenced = tables.referenced_blobs()?;
            let blobs: HashSet<String> = r.meta.blobs.iter().filter(|b| !referenced.contains(*b)).cloned().collect();
            (snapshots, blobs)
        };
        wtxn.commit()?;

        let mut freed: u64 = snapshots.iter().map(|(_, _, size)| size).sum();
        for hex in &blobs {
            freed += std::fs::symlink_metadata(self.store.path(hex)).map(|m| m.len()).unwrap_or(0);
        }
        for (_, n, _) in &snapshots {
            let dir = self.layout.snapshots_dir().join(n.to_string());
            if let Err(e) = super::remove_any(&dir) {
                tracing::warn!(error = %e, "snapshot dir left for the next start to remove");
            }
        }
        for hex in &blobs {
            if let Err(e) = self.store.remove(hex) {
                tracing::warn!(error = %e, "blob left for the next start to remove");
            }
        }

        report.untagged.extend(r.names.iter().map(|n| reference::familiar(n)));
        report
            .untagged
            .extend(repositories(&r.names).into_iter().map(|repo| format!("{repo}@{}", r.meta.manifest_digest)));
        report.deleted.push(r.id.clone());
        // Docker lists the layers top down.
        let mut gone: Vec<&String> = snapshots.iter().map(|(c, _, _)| c).collect();
        for chain in r.meta.chain_ids.iter().rev() {
            if let Some(i) = gone.iter().position(|c| *c == chain) {
                report.deleted.push(gone.remove(i).clone());
            }
        }
        report.deleted.extend(gone.into_iter().cloned());
        tracing::info!(id = %r.id, snapshots = snapshots.len(), blobs = blobs.len(), freed, "image deleted");
        Ok(freed)
    }
}
