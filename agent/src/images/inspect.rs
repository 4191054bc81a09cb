//! `inspect_json`: the image as `docker image inspect` shows it, with the
//! fields berth has (field order and names as Docker's).

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use serde::Serialize;

use super::reference;
use super::{repositories, ImageError, ImageRecord, ImageService};

/// Docker's zero time, for images whose config has no creation time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect<'a> {
    id: &'a str,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    created: String,
    size: u64,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    os: String,
    config: Config<'a>,
    #[serde(rename = "RootFS")]
    root_fs: RootFs<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Config<'a> {
    env: Option<&'a Vec<String>>,
    cmd: Option<&'a Vec<String>>,
    entrypoint: Option<&'a Vec<String>>,
    working_dir: &'a str,
    user: &'a str,
    labels: Option<BTreeMap<&'a str, &'a str>>,
    exposed_ports: Option<BTreeMap<&'a str, Empty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<&'a str>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RootFs<'a> {
    #[serde(rename = "Type")]
    typ: &'a str,
    layers: &'a [String],
}

impl ImageService {
    /// The image as Docker-like JSON: `Id`, `RepoTags`, `RepoDigests`,
    /// `Created` (RFC 3339), `Size`, `Architecture`, `Os`, `Config`,
    /// `RootFS`.
    pub fn inspect_json(&self, reference: &str) -> Result<String, ImageError> {
        let rec = self.resolve(reference)?;
        render(&rec)
    }
}

fn render(rec: &ImageRecord) -> Result<String, ImageError> {
    let cfg = rec.config.config().as_ref();
    let created = rec
        .config
        .created()
        .as_ref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ZERO_TIME.to_owned());
    let doc = Inspect {
        id: &rec.id,
        repo_tags: rec.names.iter().map(|n| reference::familiar(n)).collect(),
        repo_digests: repositories(&rec.names).into_iter().map(|r| format!("{r}@{}", rec.manifest_digest)).collect(),
        created,
        size: rec.size,
        architecture: rec.config.architecture().to_string(),
        variant: rec.config.variant().as_deref(),
        os: rec.config.os().to_string(),
        config: Config {
            env: cfg.and_then(|c| c.env().as_ref()),
            cmd: cfg.and_then(|c| c.cmd().as_ref()),
            entrypoint: cfg.and_then(|c| c.entrypoint().as_ref()),
            working_dir: cfg.and_then(|c| c.working_dir().as_deref()).unwrap_or(""),
            user: cfg.and_then(|c| c.user().as_deref()).unwrap_or(""),
            labels: cfg
                .and_then(|c| c.labels().as_ref())
                .map(|l| l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()),
            exposed_ports: cfg
                .and_then(|c| c.exposed_ports().as_ref())
                .map(|p| p.iter().map(|k| (k.as_str(), Empty {})).collect()),
            stop_signal: cfg.and_then(|c| c.stop_signal().as_deref()),
        },
        root_fs: RootFs { typ: "layers", layers: rec.config.rootfs().diff_ids() },
    };
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    doc.serialize(&mut ser).map_err(|e| ImageError::Corrupt(format!("encode inspect output: {e}")))?;
    String::from_utf8(out).map_err(|e| ImageError::Corrupt(format!("inspect output: {e}")))
}
