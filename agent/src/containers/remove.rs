//! `rm`: the record goes first (durably), then the directories, so a crash
//! in between leaves only an orphan directory that recovery removes.
use std::sync::Arc;
use std::time::Duration;

use super::Manager;
use super::{ContainerError, Wanted};
use crate::error::{AgentError, Result};

impl Manager {
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn remove(self: &Arc<Self>, key: &str, force: bool) -> Result<String> {
        let mut rec = self.refresh(key).await?;
        // `rm -f` wins whatever it finds: a start that completes between
        // the kill and the lock makes it kill again (a start holds the
        // container's lock, so this converges once the start is done).
        let mut tries = 0;
        let (rec, _held) = loop {
            if !rec.state.status.can_remove() {
                if !force {
                    return Err(ContainerError::wrong_state(&rec.name, rec.state.status, Wanted::Removable).into());
                }
                let _ = self.kill(&rec.id, "KILL").await;
                if !self.wait_exit(&rec.id, Duration::from_secs(10)).await {
                    return Err(AgentError::Internal(format!("container {} did not die after SIGKILL", rec.name)));
                }
            }
            let lock = self.lock_for(&rec.id);
            let held = lock.lock_owned().await;
            let Some(now) = self.get_record(&rec.id)? else {
                // Removed meanwhile (auto-remove): nothing left to do.
                return Ok(rec.id);
            };
            if now.state.status.can_remove() {
                break (now, held);
            }
            tries += 1;
            if !force || tries >= 5 {
                return Err(ContainerError::wrong_state(&now.name, now.state.status, Wanted::Dead).into());
            }
            drop(held);
            rec = self.refresh(&now.id).await?;
        };
        let paths = self.paths(&rec);
        self.delete_record(&rec.id).await?;
        let _ = self.cgroups.remove_off_runtime(&rec.id).await;
        let _ = crate::tree::remove_all(paths.state_dir());
        let dir = paths.dir().to_path_buf();
        // The writable layer may be of any depth: not std's remove_dir_all,
        // which recurses per level.
        crate::blocking::run(move || crate::tree::remove_all(&dir))
            .await
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|source| AgentError::Io { context: "remove container directory".into(), source })?;
        self.forget_lock(&rec.id);
        tracing::info!(id = rec.short_id(), "container removed");
        Ok(rec.id)
    }
}
