//! `inspect`: what `docker image inspect` shows, with the fields berth
//! has, from the image's config. The front end types it
//! (`berth.v1.ImageInspect`); Docker's document is rendered from that
//! (`berth_contract::inspect`).
use std::collections::BTreeMap;

use chrono::SecondsFormat;

use super::reference;
use super::{repositories, ImageError, ImageRecord, ImageService};

use berth_contract::inspect::ZERO_TIME;

/// One image as `inspect` shows it. `None` is what Docker shows as `null`
/// (or leaves out: `variant`, `stop_signal`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageDetails {
    pub id: String,
    /// Docker's short names (`busybox:latest`).
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// RFC 3339 as precise as the config has it, or the zero time.
    pub created: String,
    pub size: u64,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub exposed_ports: Option<Vec<String>>,
    pub stop_signal: Option<String>,
    /// Diff IDs, bottom first.
    pub layers: Vec<String>,
}

impl ImageService {
    /// The image named or identified by `reference`, as `inspect` shows it.
    pub fn inspect(&self, reference: &str) -> Result<ImageDetails, ImageError> {
        let rec = self.resolve(reference)?;
        Ok(details(&rec))
    }
}

fn details(rec: &ImageRecord) -> ImageDetails {
    let cfg = rec.config.config().as_ref();
    let created = rec
        .config
        .created()
        .as_ref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ZERO_TIME.to_owned());
    let mut exposed: Option<Vec<String>> = cfg.and_then(|c| c.exposed_ports().clone());
    if let Some(p) = exposed.as_mut() {
        p.sort();
        p.dedup();
    }
    ImageDetails {
        id: rec.id.clone(),
        repo_tags: rec.names.iter().map(|n| reference::familiar(n)).collect(),
        repo_digests: repositories(&rec.names).into_iter().map(|r| format!("{r}@{}", rec.manifest_digest)).collect(),
        created,
        size: rec.size,
        architecture: rec.config.architecture().to_string(),
        variant: rec.config.variant().clone(),
        os: rec.config.os().to_string(),
        env: cfg.and_then(|c| c.env().clone()),
        cmd: cfg.and_then(|c| c.cmd().clone()),
        entrypoint: cfg.and_then(|c| c.entrypoint().clone()),
        working_dir: cfg.and_then(|c| c.working_dir().clone()).unwrap_or_default(),
        user: cfg.and_then(|c| c.user().clone()).unwrap_or_default(),
        labels: cfg.and_then(|c| c.labels().as_ref()).map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        exposed_ports: exposed,
        stop_signal: cfg.and_then(|c| c.stop_signal().clone()),
        layers: rec.config.rootfs().diff_ids().clone(),
    }
}
