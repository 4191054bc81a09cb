//! `save`: images out as one tar that is at the same time an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) and a
//! `docker save` archive (`manifest.json` pointing at the same blobs), so
//! `skopeo`, `umoci`, `ctr import` and `docker load` all read it. Docker 25+
//! writes the same dual layout.
//!
//! Saving is split in two so that nothing is streamed for a request that
//! cannot succeed: [`ImageService::save_plan`] resolves every name, reads
//! every manifest and opens every blob; [`SavePlan::write`] then only
//! copies. The plan holds the blob files open, so an `rmi` that collects
//! them meanwhile cannot truncate the archive (an unlinked file stays
//! readable through an open descriptor, unlink(2)). Blobs are copied byte
//! for byte: their digests in the archive are the ones in the store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};

use oci_spec::image::{ImageManifest, MediaType};
use redb::ReadableDatabase;
use serde_json::json;

use super::load::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use super::store::{self, SHA256_PREFIX};
use super::{reference, Found, ImageError, ImageService};

/// Everything one `save` writes, resolved and opened.
pub struct SavePlan {
    /// One entry per image, in request order, each with the names asked for.
    images: Vec<SavedImage>,
    /// Every blob, by hex digest, opened.
    blobs: BTreeMap<String, (File, u64)>,
}

struct SavedImage {
    manifest_hex: String,
    manifest_size: u64,
    manifest_media_type: String,
    config_hex: String,
    layer_hexes: Vec<String>,
    /// Full normalised names asked for (none when asked for by ID).
    names: Vec<String>,
}

impl ImageService {
    /// Resolves `references` (names or IDs) and opens every blob they need.
    /// Fails on the first unknown one, before anything is written.
    pub fn save_plan(&self, references: &[String]) -> Result<SavePlan, ImageError> {
        if references.is_empty() {
            return Err(ImageError::Invalid("save needs at least one image".into()));
        }
        let rtxn = self.db.begin_read()?;
        let mut plan = SavePlan { images: Vec::new(), blobs: BTreeMap::new() };
        for input in references {
            let r = self.resolve_in(&rtxn, input)?;
            let manifest_hex = store::sha256_hex(&r.meta.manifest_digest)?.to_owned();
            let name = match r.found {
                Found::Name(n) => Some(n),
                Found::Id => None,
            };
            if let Some(i) = plan.images.iter().position(|s| s.manifest_hex == manifest_hex) {
                let names = &mut plan.images[i].names;
                if let Some(n) = name.filter(|n| !names.contains(n)) {
                    names.push(n);
                }
                continue;
            }
            let (manifest_file, manifest_size) = self.open_blob(&manifest_hex)?;
            let manifest: ImageManifest = serde_json::from_reader(io::BufReader::new(&manifest_file))
                .map_err(|e| ImageError::Corrupt(format!("manifest {}: {e}", r.meta.manifest_digest)))?;
            let manifest_media_type = manifest.media_type().clone().unwrap_or(MediaType::ImageManifest).to_string();
            let config_hex = store::sha256_hex(manifest.config().digest().as_ref())?.to_owned();
            let mut layer_hexes = Vec::with_capacity(manifest.layers().len());
            for l in manifest.layers() {
                layer_hexes.push(store::sha256_hex(l.digest().as_ref())?.to_owned());
            }
            // The manifest file was read to its end: open it afresh for copying.
            drop(manifest_file);
            plan.blobs.insert(manifest_hex.clone(), self.open_blob(&manifest_hex)?);
            for hex in std::iter::once(&config_hex).chain(&layer_hexes) {
                if !plan.blobs.contains_key(hex) {
                    plan.blobs.insert(hex.clone(), self.open_blob(hex)?);
                }
            }
            plan.images.push(SavedImage {
                manifest_hex,
                manifest_size,
                manifest_media_type,
                config_hex,
                layer_hexes,
                names: name.into_iter().collect(),
            });
        }
        Ok(plan)
    }

    fn open_blob(&self, hex: &str) -> Result<(File, u64), ImageError> {
        let path = self.store.path(hex);
        let file = File::open(&path).map_err(|e| ImageError::io(format!("open blob {SHA256_PREFIX}{hex}"), e))?;
        let size = file.metadata().map_err(|e| ImageError::io(format!("stat blob {SHA256_PREFIX}{hex}"), e))?.len();
        Ok((file, size))
    }
}

impl SavePlan {
    /// Writes the archive to `out`: `oci-layout`, the blobs, `index.json`,
    /// `manifest.json`. Every entry is owned by root, mode 0644 (0755 for
    /// directories), mtime 0, so saving twice gives the same bytes.
    pub fn write(self, out: impl Write) -> Result<(), ImageError> {
        let err = |e: io::Error| ImageError::io("write the archive", e);
        let mut tar = tar::Builder::new(out);
        append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(err)?;
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut h, dir, io::empty()).map_err(err)?;
        }
        for (hex, (file, size)) in self.blobs.iter() {
            let mut h = header(tar::EntryType::Regular, 0o644, *size);
            // `take` guards against a file that grew; a short one fails in `tar`.
            let reader = io::Read::take(file, *size);
            tar.append_data(&mut h, format!("blobs/sha256/{hex}"), reader).map_err(err)?;
        }
        append_bytes(&mut tar, "index.json", &self.index_json()?).map_err(err)?;
        append_bytes(&mut tar, "manifest.json", &self.docker_manifest_json()?).map_err(err)?;
        tar.into_inner().and_then(|mut w| w.flush()).map_err(err)
    }

    /// One manifest descriptor per name (one without annotations for an
    /// image asked for by ID only), as Docker 25+ and containerd write it.
    fn index_json(&self) -> Result<Vec<u8>, ImageError> {
        let mut manifests = Vec::new();
        for img in &self.images {
            let desc = |annotations: Option<serde_json::Value>| {
                let mut d = json!({
                    "mediaType": img.manifest_media_type,
                    "digest": format!("{SHA256_PREFIX}{}", img.manifest_hex),
                    "size": img.manifest_size,
                });
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if img.names.is_empty() {
                manifests.push(desc(None));
            }
            for name in &img.names {
                let tag = reference::parse(name)?.tag().unwrap_or("latest").to_owned();
                manifests.push(desc(Some(json!({
                    ANNOTATION_CONTAINERD_NAME: name,
                    ANNOTATION_REF_NAME: tag,
                }))));
            }
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageIndex.to_string(),
            "manifests": manifests,
        });
        serde_json::to_vec(&index).map_err(|e| ImageError::Corrupt(format!("encode index.json: {e}")))
    }

    /// `docker save`'s `manifest.json`: one entry per image, `RepoTags` in
    /// Docker's short form, paths into `blobs/sha256/`.
    fn docker_manifest_json(&self) -> Result<Vec<u8>, ImageError> {
        let mut entries = Vec::new();
        for img in &self.images {
            let mut tags = Vec::new();
            for n in &img.names {
                tags.push(reference::parse(n)?.familiar());
            }
            entries.push(json!({
                "Config": format!("blobs/sha256/{}", img.config_hex),
                "RepoTags": tags,
                "Layers": img.layer_hexes.iter().map(|h| format!("blobs/sha256/{h}")).collect::<Vec<_>>(),
            }));
        }
        serde_json::to_vec(&entries).map_err(|e| ImageError::Corrupt(format!("encode manifest.json: {e}")))
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
    tar.append_data(&mut h, path, bytes)
}
