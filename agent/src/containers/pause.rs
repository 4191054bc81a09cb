//! `pause` and `unpause`: the container's processes frozen by the cgroup
//! freezer and thawed again. The state is the record's (`paused`), so a
//! berthd restart finds it paused, as the kernel still has it.
use std::sync::Arc;

use super::{ContainerError, ContainerRecord, Manager, Status, Wanted};
use crate::error::Result;

impl Manager {
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn pause(self: &Arc<Self>, key: &str) -> Result<ContainerRecord> {
        self.set_paused(key, true).await
    }

    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn unpause(self: &Arc<Self>, key: &str) -> Result<ContainerRecord> {
        self.set_paused(key, false).await
    }

    async fn set_paused(self: &Arc<Self>, key: &str, pause: bool) -> Result<ContainerRecord> {
        let rec = self.refresh(key).await?;
        let lock = self.lock_for(&rec.id);
        let _held = lock.lock().await;
        let mut rec = self.lookup(&rec.id)?;
        let (from, to, wanted) = if pause {
            (Status::Running, Status::Paused, Wanted::Pausable)
        } else {
            (Status::Paused, Status::Running, Wanted::Paused)
        };
        if rec.state.status != from {
            return Err(ContainerError::wrong_state(&rec.name, rec.state.status, wanted).into());
        }
        let (cgroups, id) = (self.cgroups.clone(), rec.id.clone());
        crate::blocking::run(move || if pause { cgroups.freeze(&id) } else { cgroups.thaw(&id) }).await?;
        rec.state.status = to;
        if let Err(e) = self.put_record(&rec).await {
            // The record is what berthd believes: keep the kernel with it.
            let (cgroups, id) = (self.cgroups.clone(), rec.id.clone());
            let _ = crate::blocking::run(move || if pause { cgroups.thaw(&id) } else { cgroups.freeze(&id) }).await;
            return Err(e);
        }
        Ok(rec)
    }

    /// After a signal to a paused container that should end it (stop's
    /// signals, kill's SIGKILL): thawed, so it is delivered, and recorded
    /// as running again, as Docker does.
    pub(crate) async fn thaw_for_signal(self: &Arc<Self>, id: &str) -> Result<()> {
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        let Ok(mut rec) = self.lookup(id) else { return Ok(()) };
        if rec.state.status != Status::Paused {
            return Ok(());
        }
        let (cgroups, cid) = (self.cgroups.clone(), rec.id.clone());
        crate::blocking::run(move || cgroups.thaw(&cid)).await?;
        rec.state.status = Status::Running;
        self.put_record(&rec).await
    }
}
