//! `rename`: a new name for a container, in any state. The name index
//! changes with the record, in one transaction.
use std::sync::Arc;

use super::{names, ContainerError, ContainerRecord, InvalidError, Manager};
use crate::error::Result;

impl Manager {
    #[tracing::instrument(skip_all, fields(id = %key, to = %new_name))]
    pub async fn rename(self: &Arc<Self>, key: &str, new_name: &str) -> Result<ContainerRecord> {
        let new_name = new_name.trim_start_matches('/');
        if key.is_empty() || new_name.is_empty() {
            return Err(ContainerError::from(InvalidError::RenameEmpty).into());
        }
        if !names::valid(new_name) {
            return Err(ContainerError::from(InvalidError::Name { name: new_name.to_owned() }).into());
        }
        let rec = self.lookup(key)?;
        // The name check and the write are one step for creates and renames.
        let _names = self.names_lock.lock().await;
        let lock = self.lock_for(&rec.id);
        let _held = lock.lock().await;
        let mut rec = self.lookup(&rec.id)?;
        if rec.name == new_name {
            return Err(ContainerError::from(InvalidError::RenameSame).into());
        }
        if let Some(holder) = self.id_by_name(new_name)? {
            return Err(ContainerError::NameInUse { name: new_name.to_owned(), holder }.into());
        }
        rec.name = new_name.to_owned();
        self.put_record(&rec).await?;
        Ok(rec)
    }
}
