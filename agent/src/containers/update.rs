//! `update`: new limits for a container, kept in its record and, while it
//! runs, written into its cgroup at once; a new restart policy, for the
//! next exit.
use std::sync::Arc;

use super::{ContainerError, ContainerRecord, InvalidError, Manager, Resources, RestartPolicy};
use crate::error::Result;

impl Manager {
    /// Applies the limits `change` sets over the kept ones. Refused values
    /// change nothing; a cgroup file the kernel refuses (a memory limit
    /// below what the container uses now) fails the call with the record
    /// unchanged, the files written before it staying until the next start.
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn update(
        self: &Arc<Self>,
        key: &str,
        change: &Resources,
        restart: Option<RestartPolicy>,
    ) -> Result<ContainerRecord> {
        let rec = self.refresh(key).await?;
        let lock = self.lock_for(&rec.id);
        let _held = lock.lock().await;
        let mut rec = self.lookup(&rec.id)?;
        let mut next = rec.resources.clone();
        next.update(change);
        next.check(&self.host).map_err(InvalidError::from)?;
        if let Some(policy) = restart {
            if rec.auto_remove && !policy.is_none() {
                return Err(ContainerError::from(InvalidError::RestartWithAutoRemove).into());
            }
            rec.restart = policy;
        }
        if rec.state.status.is_live() {
            let (cgroups, id, limits) = (self.cgroups.clone(), rec.id.clone(), next.limits.clone());
            crate::blocking::run(move || cgroups.set_limits(&id, &limits)).await?;
        }
        rec.resources = next;
        self.put_record(&rec).await?;
        Ok(rec)
    }
}
