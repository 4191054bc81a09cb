//! The disk side of `pull`: where downloaded blobs go and how a pulled
//! image joins the store. The network side is `crate::registry`.
//!
//! A pull downloads without the image writer lock (a slow registry must not
//! block `rmi` or `load`), into a scratch dir `content/ingest/pull-*` and
//! temp snapshot dirs `snapshots/tmp-*`. Each layer is written to its blob
//! file and unpacked from the same bytes as they arrive ([`PullStage::
//! fetch_layer`]): one pass, no second read of the blob. Only when every
//! blob is checked does [`PullStage::commit`] take the lock and hand the
//! parts to `Staging`, the pipeline `load` uses, which publishes blobs,
//! renames snapshots and commits the database in one step. Until then
//! nothing is visible; dropping the [`PullStage`] removes it all, and what
//! a crash leaves is removed when berthd opens the store.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use oci_spec::image::ImageConfiguration;
use redb::ReadableDatabase;

use super::meta::ReadTables;
use super::staging::{ImageInput, NewParts, Staging};
use super::store::{self, Expected, HashingWriter, Staged};
use super::unpack::{self, Unpacked};
use super::{ImageError, ImageRecord, ImageService};
use crate::store_layout::StoreLayout;

/// What a pull must do for one layer.
#[derive(Clone, Debug)]
pub enum LayerPlan {
    /// The blob is in the store: nothing to download. (Should its
    /// snapshot be missing, the commit unpacks the stored blob.)
    Present(Staged),
    /// Download the blob; `unpack` is false when a snapshot for the layer
    /// chain exists already and only the blob (for `save`) is missing.
    Fetch { unpack: bool },
}

/// A downloaded, checked layer blob and, if it was unpacked on the way,
/// its temp snapshot.
#[derive(Debug)]
pub struct FetchedLayer {
    pub blob: Staged,
    pub unpacked: Option<(PathBuf, Unpacked)>,
}

/// The parts of a pulled image, ready for [`PullStage::commit`].
pub struct PulledImage {
    /// Full normalised names to give it (none for a pull by digest).
    pub names: Vec<String>,
    pub manifest: Staged,
    pub config: Staged,
    pub parsed_config: ImageConfiguration,
    /// Blobs of the layers, lowest first.
    pub layers: Vec<Staged>,
    /// Temp snapshots unpacked while downloading, with their layer index.
    pub unpacked: Vec<(usize, PathBuf, Unpacked)>,
}

/// Scratch space of one pull; removed on drop unless committed.
pub struct PullStage {
    svc: Arc<ImageService>,
    dir: PathBuf,
    tmp_snapshots: Mutex<Vec<PathBuf>>,
}

impl ImageService {
    /// Starts a pull: makes its scratch dir under `content/ingest/`.
    pub fn begin_pull(self: &Arc<Self>) -> Result<PullStage, ImageError> {
        sweep_partials(&self.layout);
        let dir = store::unique_path(self.store.ingest_dir(), "pull");
        fs::create_dir(&dir).map_err(|e| ImageError::io(format!("create {}", dir.display()), e))?;
        Ok(PullStage { svc: self.clone(), dir, tmp_snapshots: Mutex::new(Vec::new()) })
    }
}

impl PullStage {
    /// Whether the image with this ID (config digest) is stored already.
    pub fn image_known(&self, id: &str) -> Result<bool, ImageError> {
        let rtxn = self.svc.db.begin_read()?;
        Ok(ReadTables::open(&rtxn)?.image(id)?.is_some())
    }

    /// Decides what to do for the layer blob `expected` of layer chain
    /// `chain_id`.
    pub fn plan_layer(&self, expected: &Expected, chain_id: &str) -> Result<LayerPlan, ImageError> {
        let path = self.svc.store.path(&expected.hex);
        if let Ok(m) = fs::metadata(&path) {
            if expected.size.is_none_or(|s| s == m.len()) {
                return Ok(LayerPlan::Present(Staged { path, hex: expected.hex.clone(), size: m.len() }));
            }
        }
        let rtxn = self.svc.db.begin_read()?;
        let has_snapshot = ReadTables::open(&rtxn)?.snapshot(chain_id)?.is_some();
        Ok(LayerPlan::Fetch { unpack: !has_snapshot })
    }

    /// The stored blob for `expected`, if the content store has it.
    pub fn stored(&self, expected: &Expected) -> Option<Staged> {
        let path = self.svc.store.path(&expected.hex);
        let m = fs::metadata(&path).ok()?;
        expected.size.is_none_or(|s| s == m.len()).then(|| Staged { path, hex: expected.hex.clone(), size: m.len() })
    }

    /// Moves a checked layer blob into the content store before the image
    /// is committed, so that another pull needing it does not fetch it
    /// again. Should this pull fail later, the blob is garbage (no image
    /// names it) and `prune` removes it.
    pub fn publish_layer(&self, mut layer: FetchedLayer) -> Result<FetchedLayer, ImageError> {
        let dest = self.svc.store.path(&layer.blob.hex);
        if self.svc.store.publish(&layer.blob)? {
            self.svc.store.sync()?;
        } else if layer.blob.path != dest {
            let _ = fs::remove_file(&layer.blob.path);
        }
        layer.blob.path = dest;
        Ok(layer)
    }

    /// Writes a small document (manifest, config) fetched into memory,
    /// checked against `expected`.
    pub fn stage_bytes(&self, bytes: &[u8], expected: &Expected) -> Result<Staged, ImageError> {
        self.svc.store.ingest_into(&self.dir, bytes, Some(expected))
    }

    /// Where the partial download of a layer blob is kept between
    /// attempts: `content/ingest/partial/<hex>`. berthd's start and every
    /// pull remove those older than [`PARTIAL_TTL`].
    pub fn partial_path(&self, hex: &str) -> PathBuf {
        partial_dir(&self.svc.layout).join(hex)
    }

    /// Bytes of `expected` already downloaded by an earlier attempt (0 if
    /// none, or if the file is not a plausible prefix).
    pub fn partial_len(&self, expected: &Expected) -> u64 {
        let len = fs::metadata(self.partial_path(&expected.hex)).map(|m| m.len()).unwrap_or(0);
        match expected.size {
            Some(size) if len >= size => 0,
            _ => len,
        }
    }

    /// Reads one layer blob (blocking) into its partial file and checks
    /// digest and size; with `unpack`, unpacks the same bytes as they pass
    /// into a temp snapshot and checks its diff ID against `diff_id`.
    /// With `resume_from` > 0, the first that many bytes are the partial
    /// file's (kept from an interrupted attempt) and `network` gives the
    /// rest (an HTTP range answer); the whole is hashed and unpacked.
    /// Whatever arrived stays in the partial file when the stream breaks
    /// off, for the next attempt; wrong bytes are removed. `label` names
    /// the layer in errors.
    pub fn fetch_layer(
        &self,
        network: impl Read,
        expected: &Expected,
        unpack: bool,
        diff_id: &str,
        label: &str,
        resume_from: u64,
    ) -> Result<FetchedLayer, ImageError> {
        let dir = partial_dir(&self.svc.layout);
        fs::create_dir_all(&dir).map_err(|e| ImageError::io(format!("create {}", dir.display()), e))?;
        let path = self.partial_path(&expected.hex);
        let (prefix, file) = open_partial(&path, resume_from)?;
        let reader = prefix.take(resume_from).chain(network);
        let out =
            HashingWriter::new(SkipWriter { skip: resume_from, inner: BufWriter::with_capacity(256 * 1024, file) });
        let mut tee = Tee { inner: reader, out, write_error: None, ended: false };
        let result = self.fetch_into(&mut tee, unpack, label);
        if let Err(ImageError::Invalid(_)) = &result {
            // Read on, so that wrong bytes are reported as such below; a
            // read error here leaves the first error standing.
            let _ = io::copy(&mut tee, &mut io::sink());
        }
        let (writer, hex, size) = tee.out.finish();
        let ended = tee.ended;
        // Bytes of a stream that broke off are kept for a retry.
        let keep = |w: SkipWriter<BufWriter<File>>| {
            if let Ok(f) = w.inner.into_inner() {
                let _ = f.sync_all();
            }
        };
        if let Some(e) = tee.write_error {
            let _ = fs::remove_file(&path);
            return Err(ImageError::io(format!("write {}", path.display()), e));
        }
        let unpacked = match result {
            Ok(u) => u,
            Err(e) => {
                if !ended {
                    keep(writer);
                    return Err(e);
                }
                let _ = fs::remove_file(&path);
                // Wrong bytes explain a broken tar better than the tar error.
                if let Err(mismatch) = store::verify(expected, &hex, size) {
                    return Err(ImageError::Invalid(format!("{label}: {mismatch}")));
                }
                return Err(e);
            }
        };
        let checked = store::verify(expected, &hex, size)
            .map_err(|e| ImageError::Invalid(format!("{label}: {e}")))
            .and_then(|()| {
                let file = writer
                    .inner
                    .into_inner()
                    .map_err(|e| ImageError::io(format!("write {}", path.display()), e.into_error()))?;
                file.sync_all().map_err(|e| ImageError::io(format!("fsync {}", path.display()), e))
            });
        if let Err(e) = checked {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        if let Some((_, u)) = &unpacked {
            if u.diff_id != diff_id {
                let _ = fs::remove_file(&path);
                return Err(ImageError::Invalid(format!(
                    "{label}: diff ID mismatch: the image config says {diff_id}, the content is {}",
                    u.diff_id
                )));
            }
        }
        Ok(FetchedLayer { blob: Staged { path, hex, size }, unpacked })
    }

    fn fetch_into<R: Read>(
        &self,
        tee: &mut Tee<R>,
        unpack: bool,
        label: &str,
    ) -> Result<Option<(PathBuf, Unpacked)>, ImageError> {
        let unpacked = if unpack {
            let tmp = self.temp_snapshot()?;
            let fs_dir = tmp.join("fs");
            fs::create_dir(&fs_dir).map_err(|e| ImageError::io(format!("create {}", fs_dir.display()), e))?;
            Some((tmp, unpack::unpack_limited(&mut *tee, &fs_dir, label, self.svc.limits)?))
        } else {
            None
        };
        // The rest of the blob (compression trailers, or all of it when
        // not unpacking) still counts for the digest.
        io::copy(tee, &mut io::sink()).map_err(|e| ImageError::io(format!("read {label}"), e))?;
        Ok(unpacked)
    }

    fn temp_snapshot(&self) -> Result<PathBuf, ImageError> {
        let tmp = store::unique_path(&self.svc.layout.snapshots_dir(), "tmp");
        fs::create_dir(&tmp).map_err(|e| ImageError::io(format!("create {}", tmp.display()), e))?;
        self.tmp_snapshots.lock().unwrap_or_else(|e| e.into_inner()).push(tmp.clone());
        Ok(tmp)
    }

    /// Adds the image (or, if its ID is known, only its names) through
    /// the same staging `load` uses, under the writer lock.
    pub fn commit(&self, image: PulledImage) -> Result<ImageRecord, ImageError> {
        let svc = self.svc.clone();
        let _guard = svc.lock();
        let mut staging = Staging::new(&svc, "pull")?;
        let id = image.config.digest();
        let known = staging.image_known(&id)?;
        let new = if known {
            None
        } else {
            // A layer that was in the store when planned must still be.
            for l in &image.layers {
                if !l.path.is_file() {
                    return Err(ImageError::Invalid(format!(
                        "layer sha256:{} was removed while pulling; pull again",
                        l.hex
                    )));
                }
            }
            let diff_ids = image.parsed_config.rootfs().diff_ids();
            let chains = super::staging::chain_ids(diff_ids);
            for (i, tmp, unpacked) in image.unpacked {
                let parent = i.checked_sub(1).and_then(|p| chains.get(p)).map(String::as_str);
                let chain = chains.get(i).ok_or_else(|| {
                    ImageError::Invalid(format!("image {id}: layer {i} has no diff ID in the config"))
                })?;
                staging.keep_snapshot(chain, parent, tmp, unpacked)?;
            }
            Some(NewParts {
                manifest: image.manifest,
                config: image.config,
                parsed_config: image.parsed_config,
                layers: image.layers,
            })
        };
        staging.add_image(ImageInput { id: id.clone(), names: image.names, new })?;
        staging.commit()?;
        let rtxn = svc.db.begin_read()?;
        let r = svc.resolve_in(&rtxn, &id)?;
        Ok(super::record(r.id, r.meta, r.names))
    }
}

impl Drop for PullStage {
    fn drop(&mut self) {
        let _ = super::remove_any(&self.dir);
        for tmp in self.tmp_snapshots.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = super::remove_any(tmp);
        }
    }
}

/// Partial downloads older than this are garbage.
pub const PARTIAL_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `content/ingest/partial`.
pub fn partial_dir(layout: &berth_contract::Layout) -> PathBuf {
    layout.ingest_dir().join("partial")
}

/// Removes partial downloads older than [`PARTIAL_TTL`].
pub fn sweep_partials(layout: &berth_contract::Layout) {
    let Ok(entries) = fs::read_dir(partial_dir(layout)) else { return };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > PARTIAL_TTL);
        if old {
            let _ = fs::remove_file(e.path());
            tracing::info!(path = %e.path().display(), "removed an old partial download");
        }
    }
}

/// Opens the partial file: for reading its first `resume_from` bytes,
/// and for appending after them (truncated there: a longer file held
/// bytes the range answer repeats).
fn open_partial(path: &std::path::Path, resume_from: u64) -> Result<(File, File), ImageError> {
    let ctx = |e| ImageError::io(format!("open {}", path.display()), e);
    let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(ctx)?;
    file.set_len(resume_from).map_err(ctx)?;
    let prefix = File::open(path).map_err(ctx)?;
    let mut append = file;
    io::Seek::seek(&mut append, io::SeekFrom::End(0)).map_err(ctx)?;
    Ok((prefix, append))
}

/// Drops the first `skip` bytes written (they are in the file already)
/// and passes the rest on.
struct SkipWriter<W> {
    skip: u64,
    inner: W,
}

impl<W: Write> Write for SkipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.skip > 0 {
            let n = (self.skip.min(buf.len() as u64)) as usize;
            self.skip -= n as u64;
            return Ok(n);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies what is read into a hashed file; a write failure is kept aside
/// so it is not mistaken for bad input.
struct Tee<R> {
    inner: R,
    out: HashingWriter<SkipWriter<BufWriter<File>>>,
    write_error: Option<io::Error>,
    /// The source said end of stream.
    ended: bool,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended = true;
        }
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let shown = io::Error::new(e.kind(), e.to_string());
            self.write_error = Some(e);
            return Err(shown);
        }
        Ok(n)
    }
}
