//! `pull`: reference → manifest (through an index if need be) → config →
//! layers → the image store.
//!
//! * Endpoints are tried in order (mirrors, then the registry); any
//!   failure to resolve the manifest on a mirror falls back to the next.
//!   Config and layers come from the endpoint that gave the manifest.
//! * Layers already in the content store are not fetched ("Already
//!   exists"). The others are fetched at most `max_concurrent_downloads`
//!   at a time; each body is streamed, chunk by chunk, to a blocking task
//!   that writes the blob, hashes it and unpacks it in the same pass
//!   (`images::pull::PullStage::fetch_layer`). Digest, size and diff ID
//!   are checked before anything is kept; more bytes than the descriptor
//!   says end the download at once.
//! * There is no time-out on a whole layer, only on silence: no byte for
//!   `stall_timeout` fails the pull.
//! * Nothing is visible until the commit, which goes through the staging
//!   `load` uses; a failed or cancelled pull leaves nothing behind.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use tokio::sync::{mpsc, Semaphore};

use super::auth::Credentials;
use super::client::{Access, Session};
use super::config::RegistriesConfig;
use super::endpoint::{self, Clients, Repository};
use super::platform::{self, Platform};
use super::RegistryError;
use crate::images::pull::{FetchedLayer, LayerPlan, PullStage, PulledImage};
use crate::images::store::{self, Expected, Staged};
use crate::images::{reference, ImageError, ImageRecord, ImageService};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1";
/// Chunks in flight between the network and the disk, per layer.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Least time between two progress events of one layer.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// What a caller asks for.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    pub reference: String,
    /// `os/arch[/variant]`; empty for the node's.
    pub platform: String,
    pub credentials: Credentials,
}

/// What a pull reports while it works, in Docker's words.
#[derive(Clone, Debug)]
pub enum PullEvent {
    /// A line about the whole pull (`latest: Pulling from library/busybox`).
    Status(String),
    /// A layer changed state: `id` is the 12-digit short digest; `status`
    /// one of `Pulling fs layer`, `Waiting`, `Downloading`, `Verifying Checksum`,
    /// `Download complete`, `Pull complete`, `Already exists`.
    Layer { id: String, status: String, current: u64, total: u64 },
    /// The end: the digest the reference resolved to (the index's, for a
    /// multi-platform image) and the image now stored.
    Done { digest: String, image: Box<ImageRecord>, name: String, up_to_date: bool },
}

/// The registry side of berthd.
pub struct Puller {
    pub(super) config: RegistriesConfig,
    pub(super) clients: Clients,
    pub(super) images: Arc<ImageService>,
    /// One lock per layer digest being downloaded, so that two pulls
    /// sharing a layer fetch it once: the second waits, then finds the
    /// blob in the store.
    inflight: Arc<InflightMap>,
}

type InflightMap = std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// A manifest resolved for one platform.
struct Resolved {
    session: Session,
    /// The digest the reference resolved to.
    top_digest: String,
    manifest_bytes: Vec<u8>,
    manifest_digest: String,
    manifest: ImageManifest,
}

type Events = mpsc::Sender<PullEvent>;

async fn emit(events: &Events, ev: PullEvent) -> Result<(), RegistryError> {
    events.send(ev).await.map_err(|_| RegistryError::Cancelled)
}

fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex[..hex.len().min(12)].to_owned()
}

impl Puller {
    pub fn new(config: RegistriesConfig, images: Arc<ImageService>) -> Self {
        Self { config, clients: Clients::default(), images, inflight: Default::default() }
    }

    fn layer_entry(&self, digest: &str) -> Inflight {
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        let lock = map.entry(digest.to_owned()).or_default().clone();
        Inflight { map: self.inflight.clone(), digest: digest.to_owned(), lock, held: None }
    }

    /// Pulls one image, reporting progress on `events`; when the receiver
    /// goes away the pull stops and leaves nothing.
    pub async fn pull(&self, opts: PullOptions, events: Events) -> Result<ImageRecord, RegistryError> {
        let parsed = reference::parse(&opts.reference)?;
        let explicit_platform = !opts.platform.trim().is_empty();
        let want = Platform::parse(&opts.platform).map_err(RegistryError::InvalidPlatform)?;
        let repo = Repository { registry: parsed.domain().to_owned(), path: parsed.path().to_owned() };
        let shown = parsed.repository();
        let target = parsed.digest().or(parsed.tag()).unwrap_or("latest").to_owned();
        let creds = opts.credentials.clone().non_empty();
        let stall = self.config.stall_timeout(&repo.registry);

        let endpoints = endpoint::endpoints(&self.config, &self.clients, &repo)?;
        let mut resolved = None;
        let mut last_err = None;
        for ep in endpoints {
            let host = ep.host.clone();
            let mirror = ep.mirror;
            let attempt = async {
                let session = Session::open(ep, &repo.path, &shown, creds.as_ref(), stall, Access::Pull).await?;
                resolve(session, &target, parsed.digest(), &want).await
            }
            .await;
            match attempt {
                Ok(r) => {
                    resolved = Some(r);
                    break;
                }
                Err(e) if mirror => {
                    tracing::warn!(mirror = %host, error = %e, "mirror failed; trying the next endpoint");
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        let Some(r) = resolved else {
            return Err(last_err.unwrap_or_else(|| RegistryError::Protocol("no endpoint to pull from".into())));
        };
        tracing::info!(
            reference = %parsed, endpoint = %r.session.endpoint.host, digest = %r.manifest_digest, "manifest resolved"
        );
        let pulling_from = match parsed.tag() {
            Some(t) if parsed.digest().is_none() => format!("{t}: Pulling from {}", repo_shown(&parsed)),
            _ => format!("{}: Pulling from {}", target, repo_shown(&parsed)),
        };
        emit(&events, PullEvent::Status(pulling_from)).await?;

        // Config.
        let cdesc = r.manifest.config().clone();
        let cexp = expected(&cdesc)?;
        // A config the store has (the image, or one sharing it) is not
        // fetched again.
        let local = {
            let (images, cexp) = (self.images.clone(), cexp.clone());
            blocking(move || images.stored_blob(&cexp)).await?
        };
        let config_bytes = match local {
            Some(b) => b,
            None => r.session.small_blob(cdesc.digest().as_ref(), cdesc.size()).await?,
        };
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| RegistryError::Protocol(format!("config {}: {e}", cdesc.digest())))?;
        let actual = format!("{}/{}", config.os(), config.architecture());
        if explicit_platform
            && !want.matches(&config.os().to_string(), &config.architecture().to_string(), config.variant().as_deref())
        {
            return Err(RegistryError::PlatformMismatch {
                reference: parsed.familiar(),
                wanted: want.to_string(),
                actual,
            });
        }

        let images = self.images.clone();
        let stage = Arc::new(blocking(move || images.begin_pull()).await?);
        let (manifest_staged, config_staged) = {
            let stage = stage.clone();
            let mexp = Expected::parse(&r.manifest_digest, Some(r.manifest_bytes.len() as u64))?;
            let (mb, cb) = (r.manifest_bytes.clone(), config_bytes.clone());
            blocking(move || Ok((stage.stage_bytes(&mb, &mexp)?, stage.stage_bytes(&cb, &cexp)?))).await?
        };
        let id = config_staged.digest();
        // A pull by digest names the image by that digest (`repo@sha256:…`,
        // the index's for a multi-platform image), so it can be used by it.
        let names: Vec<String> = match parsed.digest() {
            Some(d) => vec![format!("{}@{d}", parsed.name())],
            None => parsed.tagged().map(|t| t.to_string()).into_iter().collect(),
        };
        let up_to_date = {
            let (stage, images, names, id) = (stage.clone(), self.images.clone(), names.clone(), id.clone());
            blocking(move || {
                Ok(stage.image_known(&id)?
                    && names.first().is_some_and(|n| images.resolve(n).is_ok_and(|i| i.id == id)))
            })
            .await?
        };

        let diff_ids = config.rootfs().diff_ids().clone();
        let layers = r.manifest.layers().clone();
        if diff_ids.len() != layers.len() {
            return Err(RegistryError::Protocol(format!(
                "image {id}: the config lists {} diff IDs but the manifest has {} layers",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chains = crate::images::chain_ids(&diff_ids);

        // Plan every layer, then fetch what is missing.
        let mut plans = Vec::with_capacity(layers.len());
        for (i, l) in layers.iter().enumerate() {
            let exp = expected(l)?;
            let (stage, chain) = (stage.clone(), chains[i].clone());
            let plan = blocking(move || stage.plan_layer(&exp, &chain)).await?;
            let status = match plan {
                LayerPlan::Present(_) => "Already exists",
                LayerPlan::Fetch { .. } => "Pulling fs layer",
            };
            emit(&events, layer_event(l, status, 0)).await?;
            plans.push(plan);
        }
        let limit = self.config.max_concurrent_downloads(&repo.registry);
        let semaphore = Arc::new(Semaphore::new(limit));
        let session = Arc::new(r.session);
        let mut fetches = Vec::new();
        let mut queued = 0;
        for (i, (l, plan)) in layers.iter().zip(&plans).enumerate() {
            let LayerPlan::Fetch { unpack } = plan else { continue };
            queued += 1;
            if queued > limit {
                emit(&events, layer_event(l, "Waiting", 0)).await?;
            }
            let job = LayerJob {
                session: session.clone(),
                stage: stage.clone(),
                desc: l.clone(),
                diff_id: diff_ids[i].clone(),
                unpack: *unpack,
                events: events.clone(),
                stall,
            };
            let sem = semaphore.clone();
            let digest = l.digest().to_string();
            fetches.push(async move {
                let _permit = sem.acquire_owned().await.map_err(|_| RegistryError::Cancelled)?;
                let mut entry = self.layer_entry(&digest);
                entry.held = Some(entry.lock.clone().lock_owned().await);
                job.run(entry).await.map(|f| (i, f))
            });
        }
        let fetched: Vec<(usize, FetchedLayer)> = futures::future::try_join_all(fetches).await?;

        let mut blobs: Vec<Option<Staged>> = plans
            .iter()
            .map(|p| match p {
                LayerPlan::Present(s) => Some(s.clone()),
                LayerPlan::Fetch { .. } => None,
            })
            .collect();
        let mut unpacked = Vec::new();
        for (i, f) in fetched {
            if let Some((tmp, u)) = f.unpacked {
                unpacked.push((i, tmp, u));
            }
            blobs[i] = Some(f.blob);
        }
        let layers_staged: Vec<Staged> = blobs.into_iter().flatten().collect();
        let pulled = PulledImage {
            names: names.clone(),
            manifest: manifest_staged,
            config: config_staged,
            parsed_config: config,
            layers: layers_staged,
            unpacked,
        };
        let record = {
            let stage = stage.clone();
            blocking(move || stage.commit(pulled)).await?
        };
        let name = names.first().cloned().unwrap_or_else(|| format!("{}@{}", parsed.name(), r.top_digest));
        emit(&events, PullEvent::Done { digest: r.top_digest, image: Box::new(record.clone()), name, up_to_date })
            .await
            .ok();
        Ok(record)
    }
}

/// The repository as `docker pull` names it in `TAG: Pulling from
/// REPO`: its path inside the registry, for every registry.
fn repo_shown(r: &reference::Reference) -> String {
    r.path().to_owned()
}

fn layer_event(l: &Descriptor, status: &str, current: u64) -> PullEvent {
    PullEvent::Layer { id: short(l.digest().as_ref()), status: status.to_owned(), current, total: l.size() }
}

fn expected(d: &Descriptor) -> Result<Expected, RegistryError> {
    Ok(Expected::parse(d.digest().as_ref(), Some(d.size()))?)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, RegistryError> {
    crate::blocking::run(move || f().map_err(RegistryError::from)).await
}

#[derive(PartialEq)]
pub(crate) enum DocKind {
    Index,
    Manifest,
}

pub(crate) fn kind_of(media_type: Option<&str>, bytes: &[u8]) -> Result<DocKind, RegistryError> {
    match media_type {
        Some(OCI_INDEX | DOCKER_LIST) => return Ok(DocKind::Index),
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => return Ok(DocKind::Manifest),
        Some(m) if m.starts_with(DOCKER_SCHEMA1) => {
            return Err(RegistryError::Protocol(
                "the registry only offers a schema 1 manifest, which berth does not support".into(),
            ))
        }
        _ => {}
    }
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| RegistryError::Protocol(format!("the manifest is not JSON: {e}")))?;
    match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(OCI_INDEX | DOCKER_LIST) => return Ok(DocKind::Index),
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => return Ok(DocKind::Manifest),
        _ => {}
    }
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        return Err(RegistryError::Protocol(
            "the registry only offers a schema 1 manifest, which berth does not support".into(),
        ));
    }
    if v.get("manifests").is_some() {
        Ok(DocKind::Index)
    } else if v.get("config").is_some() && v.get("layers").is_some() {
        Ok(DocKind::Manifest)
    } else {
        Err(RegistryError::Protocol(format!("unsupported manifest media type {}", media_type.unwrap_or("(none)"))))
    }
}

/// Checks fetched bytes against the digest they were asked by (or, for a
/// tag, just computes it).
fn digest_checked(bytes: &[u8], want: Option<&str>, size: Option<u64>) -> Result<String, RegistryError> {
    let got = store::digest_of(bytes);
    if let Some(w) = want {
        let exp = Expected::parse(w, size)?;
        store::verify(&exp, store::sha256_hex(&got)?, bytes.len() as u64)
            .map_err(|e| RegistryError::Protocol(format!("manifest {w}: {e}")))?;
    }
    Ok(got)
}

/// Follows the reference to one image manifest for `want`.
async fn resolve(
    session: Session,
    target: &str,
    digest: Option<&str>,
    want: &Platform,
) -> Result<Resolved, RegistryError> {
    let (bytes, media_type) = session.manifest(target).await?;
    let top_digest = digest_checked(&bytes, digest, None)?;
    match kind_of(media_type.as_deref(), &bytes)? {
        DocKind::Manifest => {
            let manifest = parse_manifest(&bytes, &top_digest)?;
            Ok(Resolved { session, manifest_digest: top_digest.clone(), top_digest, manifest_bytes: bytes, manifest })
        }
        DocKind::Index => {
            let index = ImageIndex::from_reader(&bytes[..])
                .map_err(|e| RegistryError::Protocol(format!("index {top_digest}: {e}")))?;
            let entries = platform::index_entries(&index);
            let pick = platform::select(want, entries.iter().map(|(o, a, v)| (o.as_str(), a.as_str(), v.as_deref())))
                .ok_or_else(|| RegistryError::NoMatchingManifest(want.to_string()))?;
            let desc = &index.manifests()[pick];
            let d = desc.digest().to_string();
            tracing::debug!(index = %top_digest, manifest = %d, platform = %want, "platform chosen");
            let (child, child_type) = session.manifest(&d).await?;
            let manifest_digest = digest_checked(&child, Some(&d), Some(desc.size()))?;
            if kind_of(child_type.as_deref(), &child)? != DocKind::Manifest {
                return Err(RegistryError::Protocol(format!("index {top_digest}: entry {d} is not an image manifest")));
            }
            let manifest = parse_manifest(&child, &manifest_digest)?;
            Ok(Resolved { session, top_digest, manifest_bytes: child, manifest_digest, manifest })
        }
    }
}

fn parse_manifest(bytes: &[u8], digest: &str) -> Result<ImageManifest, RegistryError> {
    ImageManifest::from_reader(bytes).map_err(|e| RegistryError::Protocol(format!("manifest {digest}: {e}")))
}

/// A pull's place in the download lock of one layer digest, and the
/// lock once held. It lives as long as anything works on the layer's
/// partial file: the disk task gets it and drops it when it ends, also
/// when the pull itself was dropped (the client went away), so a next
/// pull never writes the file while the old task still flushes into it.
/// The map entry goes with the last holder.
struct Inflight {
    map: Arc<InflightMap>,
    digest: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Inflight {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and ours: nobody else waits.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.digest);
        }
    }
}

/// One layer to download.
struct LayerJob {
    session: Arc<Session>,
    stage: Arc<PullStage>,
    desc: Descriptor,
    diff_id: String,
    unpack: bool,
    events: Events,
    stall: Duration,
}

impl LayerJob {
    /// `hold` is the layer's download lock, held.
    async fn run(self, hold: Inflight) -> Result<FetchedLayer, RegistryError> {
        let digest = self.desc.digest().to_string();
        let total = self.desc.size();
        let exp = expected(&self.desc)?;
        // Another pull may have fetched it while this one waited.
        let present = {
            let (stage, exp) = (self.stage.clone(), exp.clone());
            blocking(move || Ok(stage.stored(&exp))).await?
        };
        if let Some(blob) = present {
            emit(&self.events, layer_event(&self.desc, "Already exists", total)).await?;
            return Ok(FetchedLayer { blob, unpacked: None });
        }
        // What an interrupted attempt left is asked for no more: a range
        // from where it stopped. A registry that answers the whole blob
        // (200) gets it whole.
        let partial = {
            let (stage, exp) = (self.stage.clone(), exp.clone());
            blocking(move || Ok(stage.partial_len(&exp))).await?
        };
        let resp = if partial > 0 {
            self.session.blob_from(&digest, partial).await?
        } else {
            self.session.blob(&digest).await?
        };
        let resume_from = if resp.status() == reqwest::StatusCode::PARTIAL_CONTENT {
            let start = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(partial) {
                return Err(RegistryError::Protocol(format!(
                    "layer {digest}: asked for bytes from {partial}, the registry sent a range from {start:?}"
                )));
            }
            tracing::info!(layer = %digest, from = partial, total, "resuming an interrupted download");
            partial
        } else {
            0
        };
        emit(&self.events, layer_event(&self.desc, "Downloading", resume_from)).await?;
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
        // Set when this future goes (the client went away): the disk side
        // stops at once instead of working through the chunks in flight.
        let dropped = DropFlag::default();
        let gone = dropped.0.clone();
        let (stage, diff_id, unpack) = (self.stage.clone(), self.diff_id.clone(), self.unpack);
        let label = format!("layer {digest}");
        let disk = crate::blocking::spawn(move || {
            let stored = stage.fetch_layer(
                ChannelReader { rx, buf: Bytes::new(), pos: 0, ended: false, gone },
                &exp,
                unpack,
                &diff_id,
                &label,
                resume_from,
            );
            (stored, hold)
        });
        let mut body = resp.bytes_stream();
        let mut got: u64 = resume_from;
        let mut last = Instant::now();
        let net: Result<(), RegistryError> = loop {
            match tokio::time::timeout(self.stall, body.next()).await {
                Err(_) => {
                    break Err(RegistryError::Stalled {
                        what: format!("download of layer {digest}"),
                        after: self.stall,
                    })
                }
                Ok(None) => {
                    // The end, said explicitly: a channel that just closes
                    // (this future dropped when the client goes away) is
                    // an interruption, and the partial file is kept.
                    let _ = tx.send(Ok(Bytes::new())).await;
                    break Ok(());
                }
                Ok(Some(Err(e))) => {
                    break Err(RegistryError::Unreachable {
                        url: self.session.blob_url(&digest),
                        cause: super::client::cause_chain(&e),
                    })
                }
                Ok(Some(Ok(chunk))) if chunk.is_empty() => {}
                Ok(Some(Ok(chunk))) => {
                    got += chunk.len() as u64;
                    if got > total {
                        break Err(RegistryError::Image(ImageError::Invalid(format!(
                            "layer {digest}: the registry sent more than the {total} bytes the manifest says"
                        ))));
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        // The disk side stopped; its error says why.
                        break Ok(());
                    }
                    if last.elapsed() >= PROGRESS_EVERY {
                        last = Instant::now();
                        emit(&self.events, layer_event(&self.desc, "Downloading", got)).await?;
                    }
                }
            }
        };
        if let Err(e) = &net {
            let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
        }
        drop(tx);
        if net.is_ok() {
            // The body is all here; the disk side finishes the digest,
            // the unpacking and the diff ID.
            emit(&self.events, layer_event(&self.desc, "Verifying Checksum", got)).await?;
        }
        let (stored, hold) =
            disk.await.map_err(|e| RegistryError::Protocol(format!("internal: layer task failed: {e}")))?;
        net?;
        emit(&self.events, layer_event(&self.desc, "Download complete", got)).await?;
        let fetched = stored?;
        // Into the content store at once, so a concurrent pull of the
        // same layer finds it (`stored` above).
        let fetched = {
            let stage = self.stage.clone();
            // The lock goes when the blob is in the store, also when
            // this future is dropped meanwhile.
            blocking(move || {
                let published = stage.publish_layer(fetched);
                drop(hold);
                published
            })
            .await?
        };
        emit(&self.events, layer_event(&self.desc, "Pull complete", got)).await?;
        Ok(fetched)
    }
}

/// The blocking end of a layer's byte channel. An empty chunk is the
/// end of the body; the channel closing before it is an interruption.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
    pos: usize,
    ended: bool,
    /// The network side was dropped.
    gone: Arc<std::sync::atomic::AtomicBool>,
}

fn interrupted() -> io::Error {
    io::Error::other("the download was interrupted")
}

/// Sets its flag when dropped.
#[derive(Default)]
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.ended {
                return Ok(0);
            }
            if self.gone.load(std::sync::atomic::Ordering::Acquire) {
                return Err(interrupted());
            }
            match self.rx.blocking_recv() {
                None => return Err(interrupted()),
                Some(Err(e)) => return Err(e),
                Some(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Some(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
