//! `load`: images from an OCI image layout (a directory, or a tar of one,
//! as `skopeo`, `ctr export` and Docker 25+ write) or from a `docker save`
//! archive (`manifest.json` with `Config`, `RepoTags`, `Layers`).
//!
//! A tar (plain, gzip or zstd) is first extracted into the operation's
//! ingest dir, entry by entry: only plain relative paths, only regular
//! files and directories, each file hashed as it is written. Nothing that
//! the archive says is trusted: every blob is checked against its digest
//! (and size, where a descriptor gives one) before it is used, and layers
//! against the config's diff IDs as they are unpacked.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::{
    Arch, Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest, ImageManifestBuilder, MediaType, Os,
    Platform,
};
use serde::Deserialize;

use super::reference;
use super::staging::{ImageInput, NewParts, Staging};
use super::store::{self, Expected, HashingWriter, Staged};
use super::unpack::Compression;
use super::{ImageError, ImageService, LoadedImage};

/// JSON documents (index, manifests, configs) larger than this are refused.
const JSON_MAX: u64 = 16 << 20;
/// How deep an index may nest other indexes.
const INDEX_DEPTH_MAX: usize = 4;

pub(crate) const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

impl ImageService {
    /// Loads every image of an archive: a tar file (OCI image layout or
    /// `docker save`, possibly gzip- or zstd-compressed) or a directory
    /// holding an OCI layout. An image that exists already only gains the
    /// names; a name another image had moves to this one.
    pub fn load(&self, archive: &Path) -> Result<Vec<LoadedImage>, ImageError> {
        let meta = fs::metadata(archive).map_err(|e| ImageError::io(format!("open {}", archive.display()), e))?;
        let _guard = self.lock();
        let mut staging = Staging::new(self, "load")?;
        let source = if meta.is_dir() {
            Source::directory(archive)
        } else {
            Source::extract(archive, &staging.dir.join("archive"))?
        };
        let inputs = if source.has("index.json") && source.has("oci-layout") {
            read_oci(&source, &mut staging)?
        } else if source.has("manifest.json") {
            read_docker(&source, &mut staging)?
        } else if source.has("index.json") {
            return Err(ImageError::Invalid("not an OCI image layout: oci-layout is missing".into()));
        } else {
            return Err(ImageError::Invalid(
                "not an image archive: it has neither index.json (OCI image layout) nor manifest.json (docker save)"
                    .into(),
            ));
        };
        if inputs.is_empty() {
            return Err(ImageError::Invalid("the archive holds no image".into()));
        }
        for input in inputs {
            staging.add_image(input)?;
        }
        Ok(staging.commit()?.into_iter().map(|(id, names)| LoadedImage { id, names }).collect())
    }
}

/// Where the archive's files are: extracted into the ingest dir (with the
/// digest of each file, computed while it was written), or a directory
/// read in place.
struct Source {
    root: PathBuf,
    /// For an extracted archive: relative path → (hex digest, size).
    files: Option<HashMap<PathBuf, (String, u64)>>,
}

impl Source {
    fn directory(root: &Path) -> Self {
        Self { root: root.to_owned(), files: None }
    }

    fn extract(archive: &Path, dest: &Path) -> Result<Self, ImageError> {
        let bad = |e: io::Error| ImageError::Invalid(format!("invalid archive: {e}"));
        let file = File::open(archive).map_err(|e| ImageError::io(format!("open {}", archive.display()), e))?;
        let mut input = BufReader::new(file);
        let head = input.fill_buf().map_err(|e| ImageError::io(format!("read {}", archive.display()), e))?;
        let reader: Box<dyn Read> = match Compression::detect(head)
            .map_err(|m| ImageError::Invalid(format!("invalid archive: {m}")))?
        {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| ImageError::io("start zstd decoder", e))?,
            ),
        };
        fs::create_dir(dest).map_err(|e| ImageError::io(format!("create {}", dest.display()), e))?;
        let mut files = HashMap::new();
        // Symlinks (`docker save` before 25 and skopeo's `docker-archive:`
        // link `<id>/layer.tar` to a file elsewhere in the archive) are
        // never made on disk: once every file is out, each becomes a hard
        // link to the archive file it names, or the load fails.
        let mut links: Vec<(String, PathBuf, PathBuf)> = Vec::new();
        let mut archive = tar::Archive::new(reader);
        let mut buf = vec![0u8; 256 * 1024];
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname()
                || kind.is_gnu_longlink()
            {
                continue;
            }
            let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let rel = plain_relative(&shown).ok_or_else(|| {
                ImageError::Invalid(format!("invalid archive: entry {shown:?} is not a plain relative path"))
            })?;
            let path = dest.join(&rel);
            if kind.is_dir() {
                fs::create_dir_all(&path).map_err(|e| ImageError::io(format!("create {}", path.display()), e))?;
                continue;
            }
            if kind == tar::EntryType::Symlink {
                let target = entry.link_name().map_err(bad)?.unwrap_or_default().into_owned();
                links.push((shown, rel, target));
                continue;
            }
            if !kind.is_file() && kind != tar::EntryType::Continuous {
                return Err(ImageError::Invalid(format!(
                    "invalid archive: entry {shown:?} is a {}; only regular files and directories may be in an image archive",
                    kind_name(kind)
                )));
            }
            if rel.as_os_str().is_empty() {
                return Err(ImageError::Invalid(format!("invalid archive: file entry {shown:?} has no name")));
            }
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| ImageError::io(format!("create {}", parent.display()), e))?;
            }
            // Only directories and regular files are ever made here, so no
            // symlink can redirect this write.
            let out = File::create(&path).map_err(|e| ImageError::io(format!("create {}", path.display()), e))?;
            let mut w = HashingWriter::new(out);
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(bad(e)),
                };
                w.write_all(&buf[..n]).map_err(|e| ImageError::io(format!("write {}", path.display()), e))?;
            }
            let (_, hex, size) = w.finish();
            if size != entry.size() {
                return Err(ImageError::Invalid(format!("invalid archive: truncated at entry {shown:?}")));
            }
            files.insert(rel, (hex, size));
        }
        // A link may name another link: resolve in rounds, as many as there are links.
        for _ in 0..links.len() {
            links.retain(|(_, rel, target)| {
                let Some(to) = link_target(rel, target).filter(|t| files.contains_key(t)) else { return true };
                let (from, to_path) = (dest.join(rel), dest.join(&to));
                let made = from.parent().is_none_or(|p| fs::create_dir_all(p).is_ok())
                    && !files.contains_key(rel)
                    && fs::hard_link(&to_path, &from).is_ok();
                if made {
                    let known = files[&to].clone();
                    files.insert(rel.clone(), known);
                }
                !made
            });
        }
        if let Some((shown, _, _)) = links.first() {
            return Err(ImageError::Invalid(format!(
                "invalid archive: entry {shown:?} is a symlink; only regular files and directories (or symlinks to \
                 files in the archive) may be in an image archive"
            )));
        }
        Ok(Self { root: dest.to_owned(), files: Some(files) })
    }

    fn has(&self, rel: &str) -> bool {
        match &self.files {
            Some(files) => files.contains_key(Path::new(rel)),
            None => self.root.join(rel).is_file(),
        }
    }

    /// A small file of the archive (`index.json`, `manifest.json`).
    fn read_small(&self, rel: &str) -> Result<Vec<u8>, ImageError> {
        read_limited(&self.root.join(rel), rel)
    }

    /// Stages the archive's file `rel` as a blob, checked against
    /// `expected`; `what` names it in errors.
    fn stage(
        &self,
        staging: &mut Staging<'_>,
        rel: &Path,
        expected: Option<&Expected>,
        what: &str,
    ) -> Result<Staged, ImageError> {
        let context = |e: ImageError| match e {
            ImageError::Invalid(m) => ImageError::Invalid(format!("{what}: {m}")),
            e => e,
        };
        let missing =
            || ImageError::Invalid(format!("{what}: the archive has no file {:?}", rel.display().to_string()));
        match &self.files {
            Some(files) => {
                let (hex, size) = files.get(rel).ok_or_else(missing)?;
                if let Some(exp) = expected {
                    store::verify(exp, hex, *size).map_err(context)?;
                }
                let path = self.root.join(rel);
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| ImageError::io(format!("fsync {}", path.display()), e))?;
                Ok(Staged { path, hex: hex.clone(), size: *size })
            }
            None => {
                if let Some(staged) = staging.already_stored(expected).map_err(context)? {
                    return Ok(staged);
                }
                let path = self.root.join(rel);
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    Err(e) => return Err(ImageError::io(format!("open {}", path.display()), e)),
                };
                staging.stage_reader(file, expected).map_err(context)
            }
        }
    }
}

fn read_limited(path: &Path, what: &str) -> Result<Vec<u8>, ImageError> {
    let file = File::open(path).map_err(|e| ImageError::io(format!("open {what}"), e))?;
    let mut bytes = Vec::new();
    file.take(JSON_MAX + 1).read_to_end(&mut bytes).map_err(|e| ImageError::io(format!("read {what}"), e))?;
    if bytes.len() as u64 > JSON_MAX {
        return Err(ImageError::Invalid(format!("{what} is larger than {JSON_MAX} bytes")));
    }
    Ok(bytes)
}

/// `a/b`, `./a/b` → `a/b`; anything absolute or with `..` → `None`.
pub(crate) fn plain_relative(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The archive path a symlink at `rel` points to, when it stays inside
/// the archive: `a/layer.tar` → `../b.tar` gives `b.tar`.
fn link_target(rel: &Path, target: &Path) -> Option<PathBuf> {
    let mut out: Vec<&std::ffi::OsStr> =
        rel.parent().map(|p| p.components().map(Component::as_os_str).collect()).unwrap_or_default();
    for c in target.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out.iter().collect())
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symlink",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special file",
    }
}

/// `blobs/sha256/<hex>`, the OCI layout path of a blob.
fn blob_rel(hex: &str) -> PathBuf {
    Path::new("blobs/sha256").join(hex)
}

fn expected_of(desc: &Descriptor) -> Result<Expected, ImageError> {
    Expected::parse(desc.digest().as_ref(), Some(desc.size()))
}

fn json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Invalid(format!("{what}: {e}")))
}

fn read_staged(staged: &Staged, what: &str) -> Result<Vec<u8>, ImageError> {
    if staged.size > JSON_MAX {
        return Err(ImageError::Invalid(format!("{what} is larger than {JSON_MAX} bytes")));
    }
    read_limited(&staged.path, what)
}

/// A name from an archive, normalised and without digest; `None` when it
/// names no tag.
fn archive_name(name: &str) -> Result<Option<String>, ImageError> {
    let r =
        reference::parse(name).map_err(|e| ImageError::Invalid(format!("the archive names an image {name:?}: {e}")))?;
    Ok(r.tagged().map(|t| t.to_string()))
}

/// The node's platform as OCI writes it.
fn node_platform() -> (Os, Arch) {
    (Os::Linux, Arch::default())
}

fn matches_node(p: &Platform) -> bool {
    let (os, arch) = node_platform();
    *p.os() == os && *p.architecture() == arch
}

fn platform_text() -> String {
    let (os, arch) = node_platform();
    format!("{os}/{arch}")
}

// ------------------------------------------------------------------ OCI

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayout {
    image_layout_version: String,
}

enum DocKind {
    Index,
    Manifest,
    Other,
}

fn kind_of(media_type: &MediaType, bytes: Option<&[u8]>) -> DocKind {
    match media_type {
        MediaType::ImageIndex => DocKind::Index,
        MediaType::ImageManifest => DocKind::Manifest,
        MediaType::Other(m) if m == DOCKER_MANIFEST_LIST => DocKind::Index,
        MediaType::Other(m) if m == DOCKER_MANIFEST => DocKind::Manifest,
        _ => {
            // Unknown media type: look at the document itself.
            let Some(v) = bytes.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()) else {
                return DocKind::Other;
            };
            if v.get("manifests").is_some() {
                DocKind::Index
            } else if v.get("config").is_some() && v.get("layers").is_some() {
                DocKind::Manifest
            } else {
                DocKind::Other
            }
        }
    }
}

fn read_oci(src: &Source, staging: &mut Staging<'_>) -> Result<Vec<ImageInput>, ImageError> {
    let layout: OciLayout = json(&src.read_small("oci-layout")?, "oci-layout")?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(ImageError::Invalid(format!(
            "unsupported OCI image layout version {:?}",
            layout.image_layout_version
        )));
    }
    let index: ImageIndex = json(&src.read_small("index.json")?, "index.json")?;
    let mut out: Vec<ImageInput> = Vec::new();
    let mut skipped_platform = false;
    for desc in index.manifests() {
        let names = names_of(desc)?;
        if let Some(p) = desc.platform() {
            if !matches_node(p) {
                skipped_platform = true;
                continue;
            }
        }
        let Some(input) = resolve(src, staging, desc, names, 0)? else {
            continue;
        };
        match out.iter_mut().find(|i| i.id == input.id) {
            Some(existing) => {
                for n in input.names {
                    if !existing.names.contains(&n) {
                        existing.names.push(n);
                    }
                }
            }
            None => out.push(input),
        }
    }
    if out.is_empty() && skipped_platform {
        return Err(ImageError::Invalid(format!("no matching manifest for {} in the archive", platform_text())));
    }
    Ok(out)
}

/// The names an index entry gives: `io.containerd.image.name` (a full
/// reference), else `org.opencontainers.image.ref.name` when it is a
/// reference rather than a bare tag.
pub(crate) fn names_of(desc: &Descriptor) -> Result<Vec<String>, ImageError> {
    let Some(ann) = desc.annotations() else {
        return Ok(Vec::new());
    };
    let name = match (ann.get(ANNOTATION_CONTAINERD_NAME), ann.get(ANNOTATION_REF_NAME)) {
        (Some(full), _) => Some(full),
        (None, Some(r)) if r.contains([':', '/', '@']) => Some(r),
        _ => None,
    };
    Ok(match name {
        Some(n) => archive_name(n)?.into_iter().collect(),
        None => Vec::new(),
    })
}

/// Follows an index entry down to one image manifest (picking the node's
/// platform in nested indexes); `None` for things that are not images.
fn resolve(
    src: &Source,
    staging: &mut Staging<'_>,
    desc: &Descriptor,
    names: Vec<String>,
    depth: usize,
) -> Result<Option<ImageInput>, ImageError> {
    let expected = expected_of(desc)?;
    let digest = desc.digest().to_string();
    let mut kind = kind_of(desc.media_type(), None);
    let mut doc = None;
    if matches!(kind, DocKind::Other) {
        let staged = src.stage(staging, &blob_rel(&expected.hex), Some(&expected), &digest)?;
        let bytes = read_staged(&staged, &digest)?;
        kind = kind_of(desc.media_type(), Some(&bytes));
        doc = Some((staged, bytes));
    }
    match kind {
        DocKind::Other => {
            tracing::debug!(digest, media_type = %desc.media_type(), "skipping index entry that is not an image");
            Ok(None)
        }
        DocKind::Index => {
            if depth >= INDEX_DEPTH_MAX {
                return Err(ImageError::Invalid(format!("index {digest}: indexes nested too deep")));
            }
            let bytes = match doc {
                Some((_, bytes)) => bytes,
                None => {
                    let staged = src.stage(staging, &blob_rel(&expected.hex), Some(&expected), &digest)?;
                    read_staged(&staged, &digest)?
                }
            };
            let index: ImageIndex = json(&bytes, &format!("index {digest}"))?;
            let chosen = select_platform(&index)
                .ok_or_else(|| {
                    ImageError::Invalid(format!(
                        "no matching manifest for {} in the manifest list entries",
                        platform_text()
                    ))
                })?
                .clone();
            resolve(src, staging, &chosen, names, depth + 1)
        }
        DocKind::Manifest => {
            let (staged, bytes) = match doc {
                Some(d) => d,
                None => {
                    let staged =
                        src.stage(staging, &blob_rel(&expected.hex), Some(&expected), &format!("manifest {digest}"))?;
                    let bytes = read_staged(&staged, &format!("manifest {digest}"))?;
                    (staged, bytes)
                }
            };
            let manifest: ImageManifest = json(&bytes, &format!("manifest {digest}"))?;
            image_from_manifest(src, staging, staged, &manifest, names).map(Some)
        }
    }
}

pub(crate) fn select_platform(index: &ImageIndex) -> Option<&Descriptor> {
    let entries = index.manifests();
    entries.iter().find(|d| d.platform().as_ref().is_some_and(matches_node)).or_else(|| match entries.as_slice() {
        [only] if only.platform().is_none() => Some(only),
        _ => None,
    })
}

fn image_from_manifest(
    src: &Source,
    staging: &mut Staging<'_>,
    manifest_blob: Staged,
    manifest: &ImageManifest,
    names: Vec<String>,
) -> Result<ImageInput, ImageError> {
    let cdesc = manifest.config();
    let cexp = expected_of(cdesc)?;
    let cdigest = cdesc.digest().to_string();
    let config = src.stage(staging, &blob_rel(&cexp.hex), Some(&cexp), &format!("config {cdigest}"))?;
    let parsed: ImageConfiguration =
        json(&read_staged(&config, &format!("config {cdigest}"))?, &format!("config {cdigest}"))?;
    let id = config.digest();
    if staging.image_known(&id)? {
        return Ok(ImageInput { id, names, new: None });
    }
    let mut layers = Vec::with_capacity(manifest.layers().len());
    for l in manifest.layers() {
        let exp = expected_of(l)?;
        let what = format!("layer {}", l.digest());
        layers.push(src.stage(staging, &blob_rel(&exp.hex), Some(&exp), &what)?);
    }
    Ok(ImageInput { id, names, new: Some(NewParts { manifest: manifest_blob, config, parsed_config: parsed, layers }) })
}

// ---------------------------------------------------------- docker save

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerEntry {
    pub(crate) config: String,
    #[serde(default)]
    pub(crate) repo_tags: Option<Vec<String>>,
    pub(crate) layers: Vec<String>,
}

/// The digest a docker-save path implies: `blobs/sha256/<hex>` (Docker 25+)
/// or `<hex>.json` (older configs).
fn expected_from_path(rel: &Path) -> Option<Expected> {
    let name = rel.file_name()?.to_str()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    let in_blobs = rel.parent() == Some(Path::new("blobs/sha256"));
    let old_config = name.ends_with(".json") && rel.parent() == Some(Path::new(""));
    (hex.len() == 64 && super::is_hex(hex) && (in_blobs || old_config))
        .then(|| Expected { hex: hex.to_owned(), size: None })
}

fn read_docker(src: &Source, staging: &mut Staging<'_>) -> Result<Vec<ImageInput>, ImageError> {
    let entries: Vec<DockerEntry> = json(&src.read_small("manifest.json")?, "manifest.json")?;
    let mut out: Vec<ImageInput> = Vec::new();
    for entry in entries {
        let rel_of = |p: &str| {
            plain_relative(p)
                .filter(|r| !r.as_os_str().is_empty())
                .ok_or_else(|| ImageError::Invalid(format!("manifest.json: {p:?} is not a plain relative path")))
        };
        let mut names = Vec::new();
        for t in entry.repo_tags.iter().flatten() {
            if let Some(n) = archive_name(t)? {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let crel = rel_of(&entry.config)?;
        let config =
            src.stage(staging, &crel, expected_from_path(&crel).as_ref(), &format!("config {}", entry.config))?;
        let what = format!("config {}", config.digest());
        let parsed: ImageConfiguration = json(&read_staged(&config, &what)?, &what)?;
        let id = config.digest();
        let input = if staging.image_known(&id)? {
            ImageInput { id, names, new: None }
        } else {
            let mut layers = Vec::with_capacity(entry.layers.len());
            let mut descs = Vec::with_capacity(entry.layers.len());
            for l in &entry.layers {
                let rel = rel_of(l)?;
                let staged = src.stage(staging, &rel, expected_from_path(&rel).as_ref(), &format!("layer {l}"))?;
                let media_type = Compression::of_file(&staged.path)?.layer_media_type();
                descs.push(descriptor(MediaType::from(media_type), &staged)?);
                layers.push(staged);
            }
            // docker save has no manifest blob: write the OCI manifest it
            // implies. It is deterministic, so loading the same archive
            // twice gives the same manifest digest.
            let manifest = ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(descriptor(MediaType::ImageConfig, &config)?)
                .layers(descs)
                .build()
                .map_err(|e| ImageError::Invalid(format!("build manifest for {id}: {e}")))?;
            let bytes = serde_json::to_vec(&manifest)
                .map_err(|e| ImageError::Invalid(format!("encode manifest for {id}: {e}")))?;
            let manifest = staging.stage_bytes(&bytes)?;
            ImageInput { id, names, new: Some(NewParts { manifest, config, parsed_config: parsed, layers }) }
        };
        match out.iter_mut().find(|i| i.id == input.id) {
            Some(existing) => {
                let seen: HashSet<String> = existing.names.iter().cloned().collect();
                existing.names.extend(input.names.into_iter().filter(|n| !seen.contains(n)));
            }
            None => out.push(input),
        }
    }
    Ok(out)
}

/// A descriptor of a staged blob.
pub(crate) fn descriptor(media_type: MediaType, blob: &Staged) -> Result<Descriptor, ImageError> {
    let digest =
        Digest::from_str(&blob.digest()).map_err(|e| ImageError::Invalid(format!("digest {}: {e}", blob.digest())))?;
    Ok(Descriptor::new(media_type, blob.size, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(plain_relative("a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(plain_relative("./a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(plain_relative("./"), Some(PathBuf::new()));
        assert_eq!(plain_relative("/a"), None);
        assert_eq!(plain_relative("a/../b"), None);
        assert_eq!(plain_relative("../b"), None);
    }

    #[test]
    fn link_targets_stay_inside() {
        let t = |rel: &str, target: &str| link_target(Path::new(rel), Path::new(target));
        assert_eq!(t("a/layer.tar", "../b.tar"), Some(PathBuf::from("b.tar")));
        assert_eq!(t("a/layer.tar", "../b/layer.tar"), Some(PathBuf::from("b/layer.tar")));
        assert_eq!(t("x", "./y"), Some(PathBuf::from("y")));
        assert_eq!(t("x", "../y"), None);
        assert_eq!(t("a/x", "../../y"), None);
        assert_eq!(t("x", "/etc/passwd"), None);
    }

    #[test]
    fn docker_save_paths_imply_digests() {
        let hex = "a".repeat(64);
        assert_eq!(expected_from_path(&Path::new("blobs/sha256").join(&hex)).map(|e| e.hex), Some(hex.clone()));
        assert_eq!(expected_from_path(Path::new(&format!("{hex}.json"))).map(|e| e.hex), Some(hex.clone()));
        assert!(expected_from_path(Path::new(&format!("{hex}/layer.tar"))).is_none());
        assert!(expected_from_path(Path::new("x/blobs/sha256/abc")).is_none());
    }
}
