//! `export`: the container's merged filesystem (image layers plus writable
//! layer, whiteouts applied) as a plain tar, what `import` reads back.
//!
//! The merged view is a read-only overlay whose lowest layers are the
//! image's and whose top layer is the container's upper directory. It is
//! mounted on the container's `rootfs` mount point inside a mount namespace
//! of its own, made by a thread of berthd that exists for this export
//! only: nothing is mounted on the host, the same way works for created,
//! running and exited containers, and when the thread ends (or berthd is
//! killed) the namespace and its mount go with it, so nothing can leak.
//! Only the root filesystem is exported, not `/proc`, `/dev` or other
//! mounts of a running container, as Docker does.
//!
//! The container's lock is held until the tar is written, so it cannot be
//! removed or restarted under the reader.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::Manager;
use crate::error::{AgentError, Result};
use crate::images::diff::write_tar;

impl Manager {
    /// The directories of the container's merged view, top first: its
    /// upper directory, then its image's layers.
    pub(super) async fn merged_dirs(&self, rec: &super::ContainerRecord) -> Result<Vec<PathBuf>> {
        let mut dirs = vec![self.paths(rec).upper()];
        dirs.extend(self.image_layers(rec).await?);
        Ok(dirs)
    }

    /// The snapshot directories of the container's image, top first.
    pub(super) async fn image_layers(&self, rec: &super::ContainerRecord) -> Result<Vec<PathBuf>> {
        let images = self.images.clone();
        let image_id = rec.image_id.clone();
        let layers = crate::blocking::run(move || {
            let image = images.resolve(&image_id)?;
            images.rootfs_layers(&image).map_err(AgentError::from)
        })
        .await?;
        Ok(layers)
    }

    /// Writes the container's filesystem as a tar into `out` on a thread of
    /// its own. Returns once the filesystem is mounted and writing has
    /// begun, or with the reason it could not be; a failure while writing
    /// goes to `failed`.
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn export<W>(
        self: &Arc<Self>,
        key: &str,
        out: W,
        failed: impl FnOnce(AgentError) + Send + 'static,
    ) -> Result<()>
    where
        W: Write + Send + 'static,
    {
        let rec = self.refresh(key).await?;
        let held = self.lock_for(&rec.id).lock_owned().await;
        let rec = self.lookup(&rec.id)?;
        let paths = self.paths(&rec);
        let dirs = self.merged_dirs(&rec).await?;
        let target = paths.rootfs();

        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("export".into())
            .spawn(move || {
                let _held = held;
                let root = match private_merged_view(&dirs, &target, None) {
                    Ok(root) => {
                        let _ = ready_tx.send(Ok(()));
                        root
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let result = write_tar(&root, out).map_err(AgentError::from).and_then(|mut w| {
                    w.flush().map_err(|source| AgentError::Io { context: "write export".into(), source })
                });
                if root == target {
                    let _ = umount2(&target, MntFlags::MNT_DETACH);
                }
                if let Err(e) = result {
                    tracing::warn!(error = %e, "export stopped");
                    failed(e);
                }
            })
            .map_err(|source| AgentError::Io { context: "start export thread".into(), source })?;
        ready_rx.await.map_err(|_| AgentError::Internal("export thread ended early".into()))?
    }
}

/// In a new mount namespace of the calling thread, mounts `dirs` (top
/// first) as one overlay on `target` and returns the directory to use:
/// `target`, or the single directory itself when there is only one. The
/// overlay is read-only, unless `work` is given: then the top directory is
/// its upper directory and `work` its work directory (`cp` into a stopped
/// container).
pub(super) fn private_merged_view(dirs: &[PathBuf], target: &Path, work: Option<&Path>) -> Result<PathBuf> {
    let sys = |what: &str, e: nix::Error| AgentError::Io { context: what.to_owned(), source: e.into() };
    if dirs.len() < 2 {
        // No image layer: the writable layer is the whole filesystem.
        return Ok(dirs.first().cloned().unwrap_or_else(|| target.to_path_buf()));
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| sys("unshare mount namespace", e))?;
    // Nothing mounted from here on may propagate back to the host.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .map_err(|e| sys("make / a slave mount", e))?;
    let join = |dirs: &[PathBuf]| dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":");
    let (flags, data) = match work {
        None => (MsFlags::MS_RDONLY, format!("lowerdir={}", join(dirs))),
        Some(work) => (
            MsFlags::empty(),
            format!("lowerdir={},upperdir={},workdir={}", join(&dirs[1..]), dirs[0].display(), work.display()),
        ),
    };
    // nodev: berthd never has a reason to open a device node of a container.
    mount(Some("overlay"), target, Some("overlay"), flags | MsFlags::MS_NODEV, Some(data.as_str()))
        .map_err(|e| sys(&format!("mount the container's filesystem on {}", target.display()), e))?;
    Ok(target.to_path_buf())
}
