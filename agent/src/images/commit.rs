//! `commit`: a new image from a base image plus a container's writable
//! layer. The layer is written from the upper directory (`diff`), stored
//! like any other blob, unpacked once into the snapshot of the new layer
//! chain (so the new image runs at once, and the unpack checks the diff ID
//! of what was written), and recorded through the same `staging` pipeline
//! `load` and `import` use: an error anywhere leaves nothing behind.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use chrono::SecondsFormat;
use oci_spec::image::{Descriptor, HistoryBuilder, ImageConfiguration, ImageManifest, MediaType};
use redb::ReadableDatabase;

use super::changes::{self, Change};
use super::load::descriptor;
use super::meta::ReadTables;
use super::reference;
use super::staging::{self, Staging};
use super::store::{self, Staged};
use super::unpack::Compression;
use super::{diff, ImageError, ImageRecord, ImageService};

/// What to commit.
#[derive(Clone, Debug)]
pub struct CommitInput {
    /// ID of the image the container was made from.
    pub base_id: String,
    /// The container's upper directory.
    pub upper: PathBuf,
    /// Full normalised name for the new image; `None` leaves it dangling.
    pub name: Option<String>,
    pub message: String,
    pub author: String,
    /// The history's `created_by`: the container's command.
    pub created_by: String,
    pub changes: Vec<Change>,
}

/// The full name a commit (or import) gives its image: a tagged reference
/// (`app` → `docker.io/library/app:latest`), never a digest one.
pub fn target_name(reference: &str) -> Result<Option<String>, ImageError> {
    if reference.is_empty() {
        return Ok(None);
    }
    let parsed = reference::parse(reference)?;
    let tagged = parsed
        .tagged()
        .ok_or_else(|| ImageError::InvalidReference("refusing to create a tag with a digest reference".into()))?;
    Ok(Some(tagged.to_string()))
}

impl ImageService {
    /// Commits `input.upper` on top of the base image; returns the new image.
    pub fn commit(&self, input: &CommitInput) -> Result<ImageRecord, ImageError> {
        let _guard = self.lock();
        let base = {
            let rtxn = self.db.begin_read()?;
            ReadTables::open(&rtxn)?
                .image(&input.base_id)?
                .ok_or_else(|| ImageError::NotFound(input.base_id.clone()))?
        };
        // Refused before any layer is written.
        if !input.changes.is_empty() {
            let mut trial = base.config.clone();
            changes::apply(&mut trial, &input.changes);
            check_limits(&trial)?;
        }
        let manifest_hex = store::sha256_hex(&base.manifest_digest)?.to_owned();
        let manifest_path = self.store.path(&manifest_hex);
        let manifest: ImageManifest = File::open(&manifest_path)
            .map_err(|e| ImageError::io(format!("open manifest {}", base.manifest_digest), e))
            .and_then(|f| {
                serde_json::from_reader(std::io::BufReader::new(f))
                    .map_err(|e| ImageError::Corrupt(format!("manifest {}: {e}", base.manifest_digest)))
            })?;
        let mut layers = Vec::new();
        let mut layer_descs: Vec<Descriptor> = Vec::new();
        for d in manifest.layers() {
            let hex = store::sha256_hex(d.digest().as_ref())?.to_owned();
            let path = self.store.path(&hex);
            if !path.is_file() {
                return Err(ImageError::Corrupt(format!("layer blob {} of the base image is missing", d.digest())));
            }
            layers.push(Staged { path, hex, size: d.size() });
            let mut d = d.clone();
            d.set_media_type(oci_media_type(d.media_type()));
            layer_descs.push(d);
        }

        let mut staging = Staging::new(self, "commit")?;
        let blob_path = store::unique_path(&staging.dir, "layer");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&blob_path)
            .map_err(|e| ImageError::io(format!("create {}", blob_path.display()), e))?;
        let diff = diff::write_layer(&input.upper, file)?;
        let layer = Staged { path: blob_path, hex: diff.blob_hex.clone(), size: diff.blob_size };

        let mut diff_ids = base.config.rootfs().diff_ids().clone();
        diff_ids.push(diff.diff_id.clone());
        let chains = staging::chain_ids(&diff_ids);
        let (tmp, unpacked) = staging.unpack_temp(&layer)?;
        if unpacked.diff_id != diff.diff_id {
            return Err(ImageError::Corrupt(format!(
                "the committed layer reads back as {}, not {}",
                unpacked.diff_id, diff.diff_id
            )));
        }
        let parent = chains.len().checked_sub(2).map(|i| chains[i].as_str());
        staging.keep_snapshot(&chains[chains.len() - 1], parent, tmp, unpacked)?;

        let config_err = |e: oci_spec::OciSpecError| ImageError::Invalid(format!("build config: {e}"));
        let created = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut config = base.config.clone();
        config.set_created(Some(created.clone()));
        config.set_author((!input.author.is_empty()).then(|| input.author.clone()));
        config.rootfs_mut().set_diff_ids(diff_ids);
        let mut entry = HistoryBuilder::default().created(created).created_by(input.created_by.clone());
        if !input.message.is_empty() {
            entry = entry.comment(input.message.clone());
        }
        if !input.author.is_empty() {
            entry = entry.author(input.author.clone());
        }
        config.history_mut().get_or_insert_with(Vec::new).push(entry.build().map_err(config_err)?);
        changes::apply(&mut config, &input.changes);

        layer_descs.push(descriptor(MediaType::from(Compression::Gzip.layer_media_type()), &layer)?);
        layers.push(layer);
        let id = staging.add_new_image(config, layer_descs, layers, input.name.clone().into_iter().collect())?;
        staging.commit()?;
        tracing::info!(id, base = %input.base_id, diff_id = %diff.diff_id, "committed");
        self.just_recorded(id, "committed")
    }
}

/// The bounds of `limits.rs` on what `--change` made of the config: its
/// labels, and its entrypoint, command and environment as one process.
fn check_limits(config: &ImageConfiguration) -> Result<(), ImageError> {
    let invalid = |e: crate::limits::LimitError| ImageError::Invalid(e.to_string());
    let Some(c) = config.config() else { return Ok(()) };
    if let Some(labels) = c.labels() {
        crate::limits::check_labels(labels).map_err(invalid)?;
    }
    let args: Vec<String> = c.entrypoint().iter().chain(c.cmd().iter()).flatten().cloned().collect();
    crate::limits::check_process(&args, c.env().as_deref().unwrap_or_default()).map_err(invalid)
}

/// Docker's layer media types as their OCI twins (same bytes), so the new
/// OCI manifest does not mix the two.
fn oci_media_type(m: &MediaType) -> MediaType {
    match m.to_string().as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        _ => m.clone(),
    }
}
