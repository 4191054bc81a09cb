//! `ps`: listing with Docker's filters.
use std::collections::BTreeSet;
use std::sync::Arc;

use super::InvalidError;
use super::{ContainerRecord, Manager, Status};
use crate::error::{AgentError, Result};

/// Parsed `--filter` values; every kind given must match (values of one
/// kind are alternatives, as in Docker).
#[derive(Debug, Default)]
pub struct Filters {
    status: Vec<String>,
    name: Vec<String>,
    ancestor: Vec<String>,
    id: Vec<String>,
    label: Vec<String>,
}

impl Filters {
    pub fn parse(items: &[String]) -> Result<Self> {
        let mut f = Filters::default();
        for item in items {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| AgentError::from(InvalidError::FilterFormat { item: item.clone() }))?;
            match k {
                "status" => {
                    if !["created", "running", "paused", "exited", "restarting", "removing", "dead"].contains(&v) {
                        return Err(AgentError::from(InvalidError::FilterStatus { value: v.to_owned() }));
                    }
                    f.status.push(v.to_owned())
                }
                "name" => f.name.push(v.trim_start_matches('/').to_owned()),
                "ancestor" => f.ancestor.push(v.to_owned()),
                "id" => f.id.push(v.to_owned()),
                "label" => f.label.push(v.to_owned()),
                _ => return Err(AgentError::from(InvalidError::FilterKey { key: k.to_owned() })),
            }
        }
        Ok(f)
    }

    fn any_status(&self) -> bool {
        !self.status.is_empty()
    }
}

impl Manager {
    pub async fn list(self: &Arc<Self>, all: bool, filters: &Filters) -> Result<Vec<ContainerRecord>> {
        // Finalise exits the shims have persisted but the monitors have not
        // recorded yet, so the listing is never stale.
        for rec in self.live_records()? {
            if self.paths(&rec).has_exit() {
                self.finalize_exit(&rec.id).await?;
            }
        }
        let ancestors: Vec<String> = {
            let mut ids = Vec::new();
            for a in &filters.ancestor {
                let images = self.images.clone();
                let a = a.clone();
                if let Ok(img) = crate::blocking::run(move || images.resolve(&a).map_err(AgentError::from)).await {
                    ids.push(img.id);
                }
            }
            ids
        };
        let mut out: Vec<ContainerRecord> = self
            .candidates(all, filters)?
            .into_iter()
            .filter(|r| {
                all || filters.any_status() || r.state.status == Status::Running || r.state.status == Status::Paused
            })
            .filter(|r| filters.status.is_empty() || filters.status.iter().any(|s| s == r.state.status.as_str()))
            .filter(|r| filters.name.is_empty() || filters.name.iter().any(|n| r.name.contains(n.as_str())))
            .filter(|r| filters.id.is_empty() || filters.id.iter().any(|i| r.id.starts_with(i.as_str())))
            .filter(|r| {
                filters.ancestor.is_empty()
                    || ancestors.contains(&r.image_id)
                    || filters.ancestor.iter().any(|a| a == &r.image)
            })
            .filter(|r| {
                filters.label.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
                    None => r.labels.contains_key(l),
                })
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created));
        Ok(out)
    }

    /// The records a listing has to look at, read through the indexes
    /// where one narrows them (live ones for `ps` without `-a`, the status
    /// and label filters): a node with 10,000 exited containers lists its
    /// running ones without decoding the rest. Every filter is still
    /// applied to what comes back.
    fn candidates(&self, all: bool, filters: &Filters) -> Result<Vec<ContainerRecord>> {
        let mut ids: Option<BTreeSet<String>> = None;
        let mut narrow = |set: BTreeSet<String>| {
            ids = Some(match ids.take() {
                Some(have) => have.intersection(&set).cloned().collect(),
                None => set,
            })
        };
        if !filters.status.is_empty() {
            let statuses: Vec<Status> = filters.status.iter().filter_map(|s| Status::parse(s)).collect();
            narrow(self.store.ids_with_status(&statuses));
        } else if !all {
            narrow(self.store.ids_with_status(&[Status::Running, Status::Paused]));
        }
        for l in &filters.label {
            let (k, v) = match l.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (l.as_str(), None),
            };
            narrow(self.store.ids_with_label(k, v));
        }
        match ids {
            Some(ids) => self.store.get_many(ids.iter().map(String::as_str)),
            None => self.all_records(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_errors() {
        let bad = |s: &str| Filters::parse(&[s.to_owned()]).unwrap_err().to_string();
        assert_eq!(bad("status"), "bad format of filter (expected name=value): status");
        assert_eq!(bad("status=sleepy"), "invalid filter 'status=sleepy'");
        assert_eq!(bad("colour=red"), "invalid filter 'colour'");
        assert!(Filters::parse(&["status=exited".into(), "name=web".into()]).is_ok());
    }
}
