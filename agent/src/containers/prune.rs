//! `container prune` and the container half of `system df`.
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::ContainerError;
use super::{Manager, Status};
use crate::error::{AgentError, Result};

/// The containers' share of the disk, for `system df`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    pub containers: u64,
    /// Running (or paused) containers.
    pub active: u64,
    /// Bytes of regular files in the writable layers.
    pub size: u64,
    /// The writable layers of containers that do not run.
    pub reclaimable: u64,
}

impl Manager {
    /// Removes every container that does not run (created or exited), as
    /// `docker container prune` does; returns their IDs and the bytes of
    /// their writable layers. A container started meanwhile is skipped.
    pub async fn prune(self: &Arc<Self>) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        let stopped = self.store.ids_with_status(&[Status::Created, Status::Exited]);
        for rec in self.store.get_many(stopped.iter().map(String::as_str))? {
            if !rec.state.status.can_remove() {
                continue;
            }
            let size = self.upper_size(&rec).await;
            match self.remove(&rec.id, false).await {
                Ok(id) => {
                    removed.push(id);
                    reclaimed += size;
                }
                // Started or removed by someone else meanwhile.
                Err(AgentError::Container(ContainerError::WrongState { .. } | ContainerError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        tracing::info!(removed = removed.len(), reclaimed, "containers pruned");
        Ok((removed, reclaimed))
    }

    /// How much disk the writable layers take.
    pub async fn disk_usage(self: &Arc<Self>) -> Result<ContainerUsage> {
        let mut usage = ContainerUsage::default();
        for rec in self.all_records()? {
            let size = self.upper_size(&rec).await;
            usage.containers += 1;
            usage.size += size;
            if matches!(rec.state.status, Status::Running | Status::Paused) {
                usage.active += 1;
            } else {
                usage.reclaimable += size;
            }
        }
        Ok(usage)
    }

    /// IDs of the images some container was created from.
    pub fn images_in_use(&self) -> Result<HashSet<String>> {
        Ok(self.store.image_ids().into_iter().collect())
    }

    async fn upper_size(&self, rec: &super::ContainerRecord) -> u64 {
        let upper = self.paths(rec).upper();
        crate::blocking::run(move || Ok::<_, crate::blocking::TaskLost>(files_size(&upper))).await.unwrap_or(0)
    }
}

/// Bytes of the regular files under `dir`, not following symlinks; what
/// cannot be read counts as nothing.
pub(crate) fn files_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(md) = entry.metadata() else { continue };
        if md.is_dir() {
            total += files_size(&entry.path());
        } else if md.is_file() {
            total += md.len();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::files_size;

    #[test]
    fn files_size_counts_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/b"), [0u8; 23]).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("d/link")).unwrap();
        assert_eq!(files_size(dir.path()), 123);
    }
}
