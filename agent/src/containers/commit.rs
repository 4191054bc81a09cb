//! `commit`: a new image from the container's image plus its writable
//! layer. The diff is the upper directory itself, read without a mount. A
//! running container is frozen (cgroup freezer) for the whole commit by
//! default, as Docker pauses it, so the layer is one consistent moment; it
//! is thawed afterwards whatever happened. Created and exited containers
//! have no process to freeze.
use std::sync::Arc;

use super::ContainerError;
use super::{Manager, Status};
use crate::error::{AgentError, Result};
use crate::images::changes;
use crate::images::commit::{target_name, CommitInput};
use crate::images::ImageRecord;

/// What the caller asks for.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    pub container: String,
    /// `REPO[:TAG]`; empty leaves the image dangling.
    pub reference: String,
    pub message: String,
    pub author: String,
    /// Dockerfile instructions (`CMD ["x"]`, `ENV A=b`).
    pub changes: Vec<String>,
    /// Freeze a running container while it is committed.
    pub pause: bool,
}

impl Manager {
    #[tracing::instrument(skip_all, fields(id = %opts.container))]
    pub async fn commit(self: &Arc<Self>, opts: CommitOptions) -> Result<ImageRecord> {
        let rec = self.refresh(&opts.container).await?;
        // Everything the user can get wrong is refused before anything is
        // frozen or written.
        let name = target_name(&opts.reference)?;
        let changes = opts.changes.iter().map(|c| changes::parse(c)).collect::<Result<Vec<_>, _>>()?;

        // No start, stop or removal while the layer is read.
        let lock = self.lock_for(&rec.id);
        let _held = lock.lock().await;
        let rec = self.get_record(&rec.id)?.ok_or_else(|| ContainerError::not_found(&opts.container))?;
        let input = CommitInput {
            base_id: rec.image_id.clone(),
            upper: self.paths(&rec).upper(),
            name,
            message: opts.message,
            author: opts.author,
            created_by: rec.process.args.join(" "),
            changes,
        };
        let freeze = opts.pause && rec.state.status == Status::Running;
        let images = self.images.clone();
        let cgroups = self.cgroups.clone();
        let id = rec.id.clone();
        crate::blocking::run(move || -> Result<ImageRecord> {
            if freeze {
                cgroups.freeze(&id)?;
            }
            let result = images.commit(&input).map_err(AgentError::from);
            if freeze {
                if let Err(e) = cgroups.thaw(&id) {
                    tracing::error!(error = %e, "thaw after commit failed");
                    if result.is_ok() {
                        return Err(e);
                    }
                }
            }
            result
        })
        .await
    }
}
