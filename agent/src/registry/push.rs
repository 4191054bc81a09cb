//! `push`: an image in the store → its repository in a registry (OCI
//! distribution spec, "Pushing blobs" and "Pushing manifests").
//!
//! * Only the registry itself is written (never a mirror).
//! * Each blob (layers, then the config) is first asked for with `HEAD`;
//!   one the repository has is not sent (`Layer already exists`).
//! * A missing blob that another repository of the same registry is known
//!   to hold (berth has an image with that blob under a name in that
//!   repository) is mounted: `POST .../blobs/uploads/?mount=D&from=R`;
//!   `201` means done without a byte sent (`Mounted from R`). A registry
//!   that declines answers `202` and an upload, which is then used.
//! * Otherwise a monolithic upload: `POST .../blobs/uploads/`, then `PUT`
//!   the whole blob to the `Location` with `?digest=`; the registry checks
//!   the digest.
//! * Last, the stored manifest is put, byte for byte, so the digest the
//!   registry names is the one berth has (`latest: digest: sha256:…
//!   size: N`).
//!
//! Blobs go at most `max_concurrent_downloads` at a time (the same knob
//! as for pulls).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageManifest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, Semaphore};

use super::auth::Credentials;
use super::client::{self, Access, Session};
use super::endpoint::{self, Repository};
use super::{Puller, RegistryError};
use crate::images::{reference, ImageError};

/// What a caller asks for.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    pub reference: String,
    pub credentials: Credentials,
}

/// What a push reports while it works, in Docker's words.
#[derive(Clone, Debug)]
pub enum PushEvent {
    /// A line about the whole push.
    Status(String),
    /// A layer changed state (`Preparing`, `Waiting`, `Pushing`,
    /// `Pushed`, `Layer already exists`, `Mounted from R`).
    Layer { id: String, status: String, current: u64, total: u64 },
    /// The end: the tag (or digest) put and the manifest's digest and size.
    Done { tag: String, digest: String, size: u64 },
}

type Events = mpsc::Sender<PushEvent>;

async fn emit(events: &Events, ev: PushEvent) -> Result<(), RegistryError> {
    events.send(ev).await.map_err(|_| RegistryError::Cancelled)
}

const PROGRESS_EVERY: Duration = Duration::from_millis(200);
const CHUNK: usize = 256 * 1024;

fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex[..hex.len().min(12)].to_owned()
}

impl Puller {
    /// Pushes the image `opts.reference` names to its registry.
    pub async fn push(&self, opts: PushOptions, events: Events) -> Result<String, RegistryError> {
        let parsed = reference::parse(&opts.reference)?;
        let images = self.images.clone();
        let wanted = parsed.to_string();
        let familiar = parsed.familiar();
        let source = crate::blocking::run(move || {
            images.push_source(&wanted).map_err(|e| match e {
                ImageError::NotFound(_) => {
                    RegistryError::NoSuchLocalImage(format!("An image does not exist locally with the tag: {familiar}"))
                }
                other => other.into(),
            })
        })
        .await?;
        let manifest: ImageManifest = ImageManifest::from_reader(&source.manifest[..])
            .map_err(|e| RegistryError::Protocol(format!("stored manifest {}: {e}", source.record.manifest_digest)))?;
        let repo = Repository { registry: parsed.domain().to_owned(), path: parsed.path().to_owned() };
        emit(&events, PushEvent::Status(format!("The push refers to repository [{}]", parsed.name()))).await?;

        // Layers top first, as Docker lists them, then the config (not shown).
        let mut blobs: Vec<(Descriptor, bool)> = manifest.layers().iter().rev().map(|l| (l.clone(), true)).collect();
        blobs.push((manifest.config().clone(), false));
        let mut mounts: Vec<Option<String>> = Vec::with_capacity(blobs.len());
        for (d, _) in &blobs {
            let images = self.images.clone();
            let digest = d.digest().to_string();
            let names =
                crate::blocking::run(move || images.names_holding_blob(&digest).map_err(RegistryError::from)).await?;
            let from = names
                .iter()
                .filter_map(|n| reference::parse(n).ok())
                .find_map(|r| (r.domain() == repo.registry && r.path() != repo.path).then(|| r.path().to_owned()));
            mounts.push(from);
        }
        let mut mount_from: Vec<String> = mounts.iter().flatten().cloned().collect();
        mount_from.sort();
        mount_from.dedup();

        let upstream = endpoint::endpoints(&self.config, &self.clients, &repo)?
            .into_iter()
            .find(|e| !e.mirror)
            .ok_or_else(|| RegistryError::Protocol(format!("{}: no endpoint", repo.registry)))?;
        let stall = self.config.stall_timeout(&repo.registry);
        let creds = opts.credentials.clone().non_empty();
        let session = Arc::new(
            Session::open(upstream, &repo.path, &parsed.name(), creds.as_ref(), stall, Access::Push { mount_from })
                .await?,
        );
        for (d, shown) in &blobs {
            if *shown {
                emit(&events, layer_event(d, "Preparing", 0)).await?;
            }
        }
        let limit = self.config.max_concurrent_downloads(&repo.registry);
        let semaphore = Arc::new(Semaphore::new(limit));
        let mut jobs = Vec::new();
        for (n, ((d, shown), from)) in blobs.into_iter().zip(mounts).enumerate() {
            if shown && n >= limit {
                emit(&events, layer_event(&d, "Waiting", 0)).await?;
            }
            let path = self.images.blob_path(d.digest().as_ref())?;
            let (session, sem, events) = (session.clone(), semaphore.clone(), events.clone());
            jobs.push(async move {
                let _permit = sem.acquire_owned().await.map_err(|_| RegistryError::Cancelled)?;
                let status = push_blob(&session, &d, &path, from.as_deref(), shown.then_some(&events)).await?;
                if shown {
                    emit(&events, layer_event(&d, &status, d.size())).await?;
                }
                Ok::<(), RegistryError>(())
            });
        }
        futures::future::try_join_all(jobs).await?;

        let target = parsed.digest().or(parsed.tag()).unwrap_or("latest").to_owned();
        let media_type = serde_json::from_slice::<serde_json::Value>(&source.manifest)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned());
        let url = format!("{}{}/manifests/{target}", session.base(), session.path());
        let req = session
            .authed(Method::PUT, &url)
            .header(CONTENT_TYPE, media_type)
            .header(CONTENT_LENGTH, source.manifest.len())
            .body(source.manifest.clone());
        let resp = expect(session.stall(), &url, req.send(), &[StatusCode::CREATED, StatusCode::OK]).await?;
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| source.record.manifest_digest.clone());
        tracing::info!(reference = %parsed, digest, "pushed");
        emit(&events, PushEvent::Done { tag: target, digest: digest.clone(), size: source.manifest.len() as u64 })
            .await
            .ok();
        Ok(digest)
    }
}

fn layer_event(d: &Descriptor, status: &str, current: u64) -> PushEvent {
    PushEvent::Layer { id: short(d.digest().as_ref()), status: status.to_owned(), current, total: d.size() }
}

/// Sends a request and turns any status not in `ok` into an error a
/// person reads.
async fn expect(
    stall: Duration,
    url: &str,
    send: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
    ok: &[StatusCode],
) -> Result<reqwest::Response, RegistryError> {
    let resp = client::with_stall(stall, url, send).await?;
    let status = resp.status();
    if ok.contains(&status) {
        return Ok(resp);
    }
    let text = client::registry_errors(resp).await.text();
    Err(match status {
        StatusCode::UNAUTHORIZED => {
            RegistryError::Unauthorized(client::nonempty_or(text, "unauthorized: authentication required"))
        }
        StatusCode::FORBIDDEN => {
            RegistryError::Denied(client::nonempty_or(text, "denied: requested access to the resource is denied"))
        }
        other => RegistryError::Protocol(format!("{url}: {other}{}", client::prefixed(&text))),
    })
}

/// Sends one blob unless the repository has it; returns the status line.
async fn push_blob(
    session: &Session,
    d: &Descriptor,
    path: &std::path::Path,
    mount_from: Option<&str>,
    events: Option<&Events>,
) -> Result<String, RegistryError> {
    let digest = d.digest().to_string();
    let base = format!("{}{}/blobs/", session.base(), session.path());
    let head_url = format!("{base}{digest}");
    let head = client::with_stall(session.stall(), &head_url, session.authed(Method::HEAD, &head_url).send()).await?;
    match head.status() {
        s if s.is_success() => return Ok("Layer already exists".to_owned()),
        StatusCode::NOT_FOUND => {}
        _ => {
            expect(session.stall(), &head_url, session.authed(Method::HEAD, &head_url).send(), &[StatusCode::OK])
                .await?;
        }
    }
    let uploads = format!("{base}uploads/");
    let start = match mount_from {
        Some(from) => {
            let mut u = Url::parse(&uploads).map_err(|e| RegistryError::Protocol(format!("{uploads}: {e}")))?;
            u.query_pairs_mut().append_pair("mount", &digest).append_pair("from", from);
            let resp = expect(
                session.stall(),
                u.as_str(),
                session.authed(Method::POST, u.as_str()).header(CONTENT_LENGTH, 0).send(),
                &[StatusCode::CREATED, StatusCode::ACCEPTED],
            )
            .await?;
            if resp.status() == StatusCode::CREATED {
                return Ok(format!("Mounted from {from}"));
            }
            resp
        }
        None => {
            expect(
                session.stall(),
                &uploads,
                session.authed(Method::POST, &uploads).header(CONTENT_LENGTH, 0).send(),
                &[StatusCode::ACCEPTED],
            )
            .await?
        }
    };
    let location = start
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol(format!("{uploads}: the registry gave no upload location")))?;
    let mut put = Url::parse(&uploads)
        .and_then(|u| u.join(location))
        .map_err(|e| RegistryError::Protocol(format!("upload location {location:?}: {e}")))?;
    put.query_pairs_mut().append_pair("digest", &digest);
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| RegistryError::Image(ImageError::io(format!("open blob {digest}"), e)))?;
    let total = d.size();
    let body = reqwest::Body::wrap_stream(upload_stream(file, d.clone(), events.cloned()));
    let req = session
        .authed(Method::PUT, put.as_str())
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, total)
        .body(body);
    expect(session.stall(), put.as_str(), req.send(), &[StatusCode::CREATED]).await?;
    Ok("Pushed".to_owned())
}

/// A blob file as a body, reporting `Pushing` progress as it is read.
fn upload_stream(
    file: tokio::fs::File,
    d: Descriptor,
    events: Option<Events>,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    struct St {
        file: tokio::fs::File,
        d: Descriptor,
        events: Option<Events>,
        sent: u64,
        last: Instant,
    }
    let st = St { file, d, events, sent: 0, last: Instant::now() };
    futures::stream::unfold(st, |mut st| async move {
        let mut buf = vec![0u8; CHUNK];
        match st.file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                st.sent += n as u64;
                if let Some(ev) = &st.events {
                    if st.last.elapsed() >= PROGRESS_EVERY {
                        st.last = Instant::now();
                        let _ = ev.try_send(layer_event(&st.d, "Pushing", st.sent));
                    }
                }
                Some((Ok(Bytes::from(buf)), st))
            }
            Err(e) => Some((Err(e), st)),
        }
    })
}
