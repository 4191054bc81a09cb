//! The one pipeline `load` and `import` share, so that an error anywhere
//! leaves no trace:
//!
//! 1. blobs are staged in a temp dir under `content/ingest/`, each hashed,
//!    checked and fsynced ([`Staging::stage_reader`], `Source::stage`);
//! 2. layers whose chain has no snapshot yet are unpacked into temp dirs
//!    `snapshots/tmp-*`, and their diff IDs checked;
//! 3. [`Staging::commit`] renames the temp snapshots to `snapshots/<n>`
//!    (`n` from the counter in the same transaction), publishes the blobs,
//!    then writes snapshots, images and names in one durable transaction.
//!    If that fails, the renames are undone.
//!
//! Dropping a `Staging` removes its ingest dir and every temp snapshot that
//! was not committed; `ImageService::open` removes what a crash left.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use redb::ReadableDatabase;

use super::meta::{ImageMeta, ReadTables, SnapshotMeta, Tables};
use super::store::{self, Expected, Staged};
use super::unpack::{self, Unpacked};
use super::{ImageError, ImageService};
use crate::store_layout::StoreLayout;

/// An image found in an archive (or made by import), ready to be added.
pub struct ImageInput {
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// Full normalised names.
    pub names: Vec<String>,
    /// The staged content; `None` when the image is known already and only
    /// gains names.
    pub new: Option<NewParts>,
}

/// The staged content of an image the database does not have yet.
pub struct NewParts {
    pub manifest: Staged,
    pub config: Staged,
    pub parsed_config: ImageConfiguration,
    /// The layer blobs, lowest first.
    pub layers: Vec<Staged>,
}

struct NewSnapshot {
    chain_id: String,
    parent: Option<String>,
    diff_id: String,
    size: u64,
    tmp: PathBuf,
}

struct NewImage {
    id: String,
    /// `None`: the image exists; only names change.
    meta: Option<ImageMeta>,
    names: Vec<String>,
}

/// Work in progress of one load or import.
pub struct Staging<'s> {
    svc: &'s ImageService,
    /// `content/ingest/<kind>-<random>`: this operation's scratch space.
    pub dir: PathBuf,
    /// Blobs to publish, by hex digest.
    blobs: Vec<Staged>,
    snapshots: Vec<NewSnapshot>,
    /// Every temp snapshot dir made, removed on drop if still there.
    tmp_dirs: Vec<PathBuf>,
    images: Vec<NewImage>,
}

impl<'s> Staging<'s> {
    pub fn new(svc: &'s ImageService, kind: &str) -> Result<Self, ImageError> {
        let dir = store::unique_path(svc.store.ingest_dir(), kind);
        fs::create_dir(&dir).map_err(|e| ImageError::io(format!("create {}", dir.display()), e))?;
        Ok(Self { svc, dir, blobs: Vec::new(), snapshots: Vec::new(), tmp_dirs: Vec::new(), images: Vec::new() })
    }

    /// Copies a blob into this operation's ingest dir, checking it against
    /// `expected`. A blob already in the store is not copied again.
    pub fn stage_reader(&mut self, reader: impl Read, expected: Option<&Expected>) -> Result<Staged, ImageError> {
        if let Some(staged) = self.already_stored(expected)? {
            return Ok(staged);
        }
        self.svc.store.ingest_into(&self.dir, reader, expected)
    }

    /// Stages generated content (a manifest or config berth wrote).
    pub fn stage_bytes(&mut self, bytes: &[u8]) -> Result<Staged, ImageError> {
        let expected =
            Expected { hex: store::sha256_hex(&store::digest_of(bytes))?.to_owned(), size: Some(bytes.len() as u64) };
        self.stage_reader(bytes, Some(&expected))
    }

    /// The published copy of an expected blob, if the store has it.
    pub fn already_stored(&self, expected: Option<&Expected>) -> Result<Option<Staged>, ImageError> {
        let Some(exp) = expected else {
            return Ok(None);
        };
        let path = self.svc.store.path(&exp.hex);
        match fs::metadata(&path) {
            Ok(m) => {
                store::verify(exp, &exp.hex, m.len())?;
                Ok(Some(Staged { path, hex: exp.hex.clone(), size: m.len() }))
            }
            Err(_) => Ok(None),
        }
    }

    /// Whether an image with this ID is in the database or already part of
    /// this operation.
    pub fn image_known(&self, id: &str) -> Result<bool, ImageError> {
        if self.images.iter().any(|i| i.id == id) {
            return Ok(true);
        }
        let rtxn = self.svc.db.begin_read()?;
        Ok(ReadTables::open(&rtxn)?.image(id)?.is_some())
    }

    /// Unpacks a layer into a new temp snapshot dir; the caller decides with
    /// [`Self::keep_snapshot`] what becomes of it.
    pub fn unpack_temp(&mut self, layer: &Staged) -> Result<(PathBuf, Unpacked), ImageError> {
        let tmp = store::unique_path(&self.svc.layout.snapshots_dir(), "tmp");
        fs::create_dir(&tmp).map_err(|e| ImageError::io(format!("create {}", tmp.display()), e))?;
        self.tmp_dirs.push(tmp.clone());
        let fs_dir = tmp.join("fs");
        fs::create_dir(&fs_dir).map_err(|e| ImageError::io(format!("create {}", fs_dir.display()), e))?;
        let label = format!("layer {}", layer.digest());
        let unpacked = unpack::unpack_file(&layer.path, &fs_dir, &label, self.svc.limits)?;
        Ok((tmp, unpacked))
    }

    /// Keeps an unpacked temp snapshot for `chain_id`, unless a snapshot
    /// for that chain exists (then the temp one is dropped). Returns the
    /// size of the snapshot that serves the chain.
    pub fn keep_snapshot(
        &mut self,
        chain_id: &str,
        parent: Option<&str>,
        tmp: PathBuf,
        unpacked: Unpacked,
    ) -> Result<u64, ImageError> {
        if let Some(size) = self.snapshot_size(chain_id)? {
            super::remove_any(&tmp)?;
            return Ok(size);
        }
        self.snapshots.push(NewSnapshot {
            chain_id: chain_id.to_owned(),
            parent: parent.map(str::to_owned),
            diff_id: unpacked.diff_id,
            size: unpacked.size,
            tmp,
        });
        Ok(unpacked.size)
    }

    /// The size of the snapshot recorded or staged for a chain.
    fn snapshot_size(&self, chain_id: &str) -> Result<Option<u64>, ImageError> {
        if let Some(s) = self.snapshots.iter().find(|s| s.chain_id == chain_id) {
            return Ok(Some(s.size));
        }
        let rtxn = self.svc.db.begin_read()?;
        Ok(ReadTables::open(&rtxn)?.snapshot(chain_id)?.map(|s| s.size))
    }

    /// Stages an image berth makes itself (import, commit): its config and
    /// an OCI manifest over `layers`, described by `layer_descs`, to be
    /// recorded under `names` by [`Staging::commit`]. Returns the image ID.
    pub fn add_new_image(
        &mut self,
        config: ImageConfiguration,
        layer_descs: Vec<oci_spec::image::Descriptor>,
        layers: Vec<Staged>,
        names: Vec<String>,
    ) -> Result<String, ImageError> {
        use oci_spec::image::{ImageManifestBuilder, MediaType};
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| ImageError::Invalid(format!("encode config: {e}")))?;
        let config_blob = self.stage_bytes(&config_bytes)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(super::load::descriptor(MediaType::ImageConfig, &config_blob)?)
            .layers(layer_descs)
            .build()
            .map_err(|e| ImageError::Invalid(format!("build manifest: {e}")))?;
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| ImageError::Invalid(format!("encode manifest: {e}")))?;
        let manifest_blob = self.stage_bytes(&manifest_bytes)?;
        let id = config_blob.digest();
        self.add_image(ImageInput {
            id: id.clone(),
            names,
            new: Some(NewParts { manifest: manifest_blob, config: config_blob, parsed_config: config, layers }),
        })?;
        Ok(id)
    }

    /// Adds an image: reuses the snapshot of every layer chain that has one
    /// and unpacks the others, checking each diff ID against the config.
    pub fn add_image(&mut self, input: ImageInput) -> Result<(), ImageError> {
        if let Some(existing) = self.images.iter_mut().find(|i| i.id == input.id) {
            for n in input.names {
                if !existing.names.contains(&n) {
                    existing.names.push(n);
                }
            }
            return Ok(());
        }
        let Some(parts) = input.new else {
            self.images.push(NewImage { id: input.id, meta: None, names: input.names });
            return Ok(());
        };
        let id = input.id;
        let diff_ids = parts.parsed_config.rootfs().diff_ids().clone();
        if diff_ids.len() != parts.layers.len() {
            return Err(ImageError::Invalid(format!(
                "image {id}: the config lists {} diff IDs but the manifest has {} layers",
                diff_ids.len(),
                parts.layers.len()
            )));
        }
        for d in &diff_ids {
            store::sha256_hex(d).map_err(|e| ImageError::Invalid(format!("image {id}: {e}")))?;
        }
        let chain_ids = chain_ids(&diff_ids);
        let mut size = 0;
        for (i, layer) in parts.layers.iter().enumerate() {
            let chain = &chain_ids[i];
            let parent = i.checked_sub(1).map(|p| chain_ids[p].as_str());
            if let Some(s) = self.snapshot_size(chain)? {
                size += s;
                continue;
            }
            let (tmp, unpacked) = self.unpack_temp(layer)?;
            if unpacked.diff_id != diff_ids[i] {
                return Err(ImageError::Invalid(format!(
                    "layer {}: diff ID mismatch: the image config says {}, the content is {}",
                    layer.digest(),
                    diff_ids[i],
                    unpacked.diff_id
                )));
            }
            size += self.keep_snapshot(chain, parent, tmp, unpacked)?;
        }
        let mut blobs = vec![parts.manifest.hex.clone(), parts.config.hex.clone()];
        blobs.extend(parts.layers.iter().map(|l| l.hex.clone()));
        let meta = ImageMeta {
            manifest_digest: parts.manifest.digest(),
            created: super::created_secs(parts.parsed_config.created().as_ref()),
            config: parts.parsed_config,
            size,
            chain_ids,
            blobs,
        };
        let mut seen: HashSet<String> = self.blobs.iter().map(|b| b.hex.clone()).collect();
        for b in [parts.manifest, parts.config].into_iter().chain(parts.layers) {
            if seen.insert(b.hex.clone()) {
                self.blobs.push(b);
            }
        }
        tracing::debug!(id, "image staged");
        self.images.push(NewImage { id, meta: Some(meta), names: input.names });
        Ok(())
    }

    /// Renames snapshots into place, publishes blobs and commits the
    /// database; returns each image's ID and the names it was given, in
    /// the order added.
    pub fn commit(mut self) -> Result<Vec<(String, Vec<String>)>, ImageError> {
        let svc = self.svc;
        let snapshots_dir = svc.layout.snapshots_dir();
        let mut moved: Vec<PathBuf> = Vec::new();
        let mut published: Vec<String> = Vec::new();
        let wtxn = svc.db.begin_write()?;
        let result = (|| -> Result<(), ImageError> {
            let mut tables = Tables::open(&wtxn)?;
            for s in &self.snapshots {
                let n = tables.next_snapshot_number()?;
                let dest = snapshots_dir.join(n.to_string());
                fs::rename(&s.tmp, &dest)
                    .map_err(|e| ImageError::io(format!("rename {} to {}", s.tmp.display(), dest.display()), e))?;
                moved.push(dest);
                tables.put_snapshot(
                    &s.chain_id,
                    &SnapshotMeta { n, size: s.size, parent: s.parent.clone(), diff_id: s.diff_id.clone() },
                )?;
            }
            if !self.snapshots.is_empty() {
                super::sync_dir(&snapshots_dir)?;
            }
            for b in &self.blobs {
                if svc.store.publish(b)? {
                    published.push(b.hex.clone());
                }
            }
            svc.store.sync()?;
            for img in &self.images {
                if let Some(meta) = &img.meta {
                    tables.put_image(&img.id, meta)?;
                }
                for name in &img.names {
                    if let Some(old) = tables.set_name(name, &img.id)? {
                        if old != img.id {
                            tracing::info!(name, from = %old, to = %img.id, "name moved to another image");
                        }
                    }
                }
            }
            Ok(())
        })();
        let result = result.and_then(|()| wtxn.commit().map_err(ImageError::from));
        if let Err(e) = result {
            for dir in &moved {
                let _ = super::remove_any(dir);
            }
            for hex in &published {
                let _ = svc.store.remove(hex);
            }
            tracing::error!(error = %e, "image commit failed; staged content removed");
            return Err(e);
        }
        for img in &self.images {
            tracing::info!(id = %img.id, names = ?img.names, new = img.meta.is_some(), "image stored");
        }
        Ok(std::mem::take(&mut self.images).into_iter().map(|i| (i.id, i.names)).collect())
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        let _ = super::remove_any(&self.dir);
        for tmp in &self.tmp_dirs {
            let _ = super::remove_any(tmp);
        }
    }
}

/// chainID(0) = diffID(0); chainID(n) = sha256(chainID(n-1) + " " +
/// diffID(n)) (OCI image spec, config.md "Layer ChainID").
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => store::digest_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_rule() {
        let a = store::digest_of(b"a");
        let b = store::digest_of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], store::digest_of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }
}
