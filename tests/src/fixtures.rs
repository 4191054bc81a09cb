//! Real image files for berth's integration tests and the README demo.
//!
//! Every image is built from the host's static busybox ([`BUSYBOX`]) and
//! written in a format real tools accept: OCI image layouts (directory or
//! tar, as `skopeo copy … oci:` / `oci-archive:` and `ctr import` read them),
//! `docker save` archives (`docker load`) and plain rootfs tarballs
//! (`berth import`, `docker import`).
//!
//! The standard image has three layers that exercise every layer format and
//! both kinds of whiteout:
//!
//! | # | blob                        | content                                               |
//! |---|-----------------------------|-------------------------------------------------------|
//! | 1 | `tar+gzip`                  | the busybox rootfs ([`busybox_rootfs_tar`])           |
//! | 2 | `tar+zstd`                  | `/etc/motd`, `/data/{keep,old1,old2}`, `/gone`        |
//! | 3 | `tar` (uncompressed)        | `.wh.gone`, `data/.wh..wh..opq`, `/data/new`, `/etc/layer3` |
//!
//! so a container of it sees `/etc/motd`, `/etc/layer3` and `/data/new` only
//! (no `/data/keep`, `/data/old1`, `/data/old2`, no `/gone`). With
//! [`ImageSpec::pad_mb`] a fourth, gzip layer of incompressible data is added.
//!
//! Output is deterministic: fixed times ([`MTIME`], [`CREATED`]), sorted
//! entries, numeric owners and a seeded generator for padding, so the same
//! busybox binary and the same [`ImageSpec`] always give the same digests.
//!
//! The hostile helpers ([`hostile_dotdot`] and friends) write their tar
//! headers byte by byte, because the `tar` crate's own path setters refuse
//! exactly the names these tests need.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tar::{Archive, Builder, EntryType, Header};

/// The busybox binary copied into every image (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// The name [`ImageSpec::default`] uses.
pub const DEFAULT_NAME: &str = "berth-test/busybox:latest";

/// Modification time of every tar entry: 2024-01-01T00:00:00Z.
pub const MTIME: u64 = 1_704_067_200;

/// The `created` time of every config and history entry (same instant as [`MTIME`]).
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// The `PATH` entry of `config.Env`.
pub const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Media types the fixtures write (and [`verify_oci_layout`] reads).
pub mod media_types {
    /// `oci-layout`'s `index.json`.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// An image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// An uncompressed layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// A gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// A zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker's gzip layer (accepted by [`super::verify_oci_layout`], never written).
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker's manifest (accepted by [`super::verify_oci_layout`], never written).
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker's config (accepted by [`super::verify_oci_layout`], never written).
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
}

use media_types as mt;

/// What to build: the name and the config of an image. The layers are always
/// the standard three (plus padding if [`ImageSpec::pad_mb`] is not 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Reference, e.g. `"berth-test/busybox:latest"`; normalised as Docker
    /// does (`busybox` → `docker.io/library/busybox:latest`). No `@digest`.
    pub name: String,
    /// `config.Cmd`; `["sh"]` by default.
    pub cmd: Vec<String>,
    /// `config.Env`; [`DEFAULT_PATH_ENV`] by default.
    pub env: Vec<String>,
    /// `config.Labels`; none by default (then the key is left out).
    pub labels: BTreeMap<String, String>,
    /// `config.Healthcheck` (Docker's `HEALTHCHECK`) as its JSON; none by
    /// default.
    pub healthcheck: Option<serde_json::Value>,
    /// If not 0: one more, top layer (gzip) holding `/pad/random.bin`, this
    /// many MiB of incompressible pseudo-random bytes (for load benchmarks).
    pub pad_mb: u64,
}

impl ImageSpec {
    /// The standard image under `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ImageSpec {
            name: name.into(),
            cmd: vec!["sh".to_string()],
            env: vec![DEFAULT_PATH_ENV.to_string()],
            labels: BTreeMap::new(),
            healthcheck: None,
            pad_mb: 0,
        }
    }
}

impl Default for ImageSpec {
    /// The standard image under [`DEFAULT_NAME`].
    fn default() -> Self {
        ImageSpec::new(DEFAULT_NAME)
    }
}

/// What was written: the digests a test compares berth's output with.
/// All digests are `sha256:<64 hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The name as given in the [`ImageSpec`] (or to [`single_layer_oci_tar`]).
    pub name: String,
    /// The normalised full reference, e.g. `docker.io/berth-test/busybox:latest`.
    pub reference: String,
    /// Digest of the image manifest. Empty for [`docker_archive`]: a
    /// `docker save` archive has no manifest (as after `docker load`, there
    /// is no repo digest).
    pub manifest_digest: String,
    /// Digest of the config blob, i.e. the image ID. The same for every
    /// format of the same [`ImageSpec`].
    pub config_digest: String,
    /// `config.rootfs.diff_ids`: sha256 of each uncompressed layer tar, bottom first.
    pub diff_ids: Vec<String>,
    /// Digests of the layer blobs as stored (compressed or not), bottom
    /// first. Equal to `diff_ids` for [`docker_archive`].
    pub layer_digests: Vec<String>,
}

impl ImageInfo {
    /// The image ID the way `berth images` shows it: 12 hex digits.
    pub fn short_id(&self) -> &str {
        let hex = self.config_digest.strip_prefix("sha256:").unwrap_or(&self.config_digest);
        &hex[..hex.len().min(12)]
    }
}

// ---------------------------------------------------------------------------
// Public builders
// ---------------------------------------------------------------------------

/// Writes a plain (uncompressed) rootfs tarball to `path`: directories
/// `bin dev etc home proc root sys tmp var var/tmp` (`tmp` and `var/tmp`
/// 1777, `root` 0700), `bin/busybox` (a copy of [`BUSYBOX`], 0755), a
/// symlink `bin/<applet> -> busybox` for every applet `busybox --list`
/// prints, `etc/passwd` (root, nobody, berth 1000:1000), `etc/group` (root,
/// nobody, berth, and `extra:x:2000:berth`), `etc/hostname` and
/// `home/berth` owned by 1000:1000. Everything else is owned by root; every
/// mtime is [`MTIME`].
pub fn busybox_rootfs_tar(path: &Path) -> io::Result<()> {
    let out = BufWriter::new(File::create(path)?);
    let (mut out, _) = write_layer(out, Codec::Plain, |t| Content::Rootfs.fill(t))?;
    out.flush()
}

/// Writes an OCI image layout directory at `dir` (created if missing):
/// `oci-layout`, `index.json` with one manifest annotated with
/// `org.opencontainers.image.ref.name` (the tag) and
/// `io.containerd.image.name` (the full reference), and `blobs/sha256/…`
/// holding the manifest, the config and the three standard layers (gzip,
/// zstd, plain tar; see the module documentation).
pub fn oci_layout_dir(dir: &Path, spec: &ImageSpec) -> io::Result<ImageInfo> {
    let reference = Reference::parse(&spec.name)?;
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs)?;
    let mut layers = Vec::new();
    for content in standard_layers(spec) {
        let codec = content.oci_codec();
        let (desc, diff_id) = layer_blob(&blobs, codec, |t| content.fill(t))?;
        layers.push(BuiltLayer { desc, diff_id, created_by: content.created_by() });
    }
    write_oci_metadata(dir, spec, &reference, &layers)
}

/// Writes the same image as [`oci_layout_dir`] as a tar archive of the
/// layout (what `skopeo copy … oci-archive:` and `ctr import` read).
pub fn oci_layout_tar(path: &Path, spec: &ImageSpec) -> io::Result<ImageInfo> {
    let scratch = scratch_dir(path)?;
    let info = oci_layout_dir(scratch.path(), spec)?;
    tar_dir(scratch.path(), path)?;
    Ok(info)
}

/// Writes the same image as a `docker save` archive (the pre-Docker-25
/// format `docker load` reads): one directory per layer named after the
/// layer's diff ID hex with `VERSION`, `json` and the uncompressed
/// `layer.tar`; the config as `<config hex>.json` (the same bytes as in the
/// OCI forms, so the image ID is the same); `manifest.json` with `Config`,
/// `RepoTags` (the short Docker form, e.g. `berth-test/busybox:latest` or
/// `busybox:latest`) and `Layers`; and `repositories`.
pub fn docker_archive(path: &Path, spec: &ImageSpec) -> io::Result<ImageInfo> {
    let reference = Reference::parse(&spec.name)?;
    let scratch = scratch_dir(path)?;
    let root = scratch.path();
    let mut layers = Vec::new();
    let mut parent: Option<String> = None;
    for content in standard_layers(spec) {
        let tmp = tempfile::NamedTempFile::new_in(root)?;
        let out = BufWriter::new(tmp.as_file().try_clone()?);
        let (mut out, written) = write_layer(out, Codec::Plain, |t| content.fill(t))?;
        out.flush()?;
        drop(out);
        let id = hex_of(&written.diff_id).to_string();
        let layer_dir = root.join(&id);
        fs::create_dir_all(&layer_dir)?;
        tmp.persist(layer_dir.join("layer.tar")).map_err(|e| e.error)?;
        fs::write(layer_dir.join("VERSION"), "1.0")?;
        let mut v1 = json!({
            "id": id,
            "created": CREATED,
            "os": "linux",
            "architecture": oci_arch(),
        });
        if let Some(p) = &parent {
            v1["parent"] = json!(p);
        }
        fs::write(layer_dir.join("json"), to_json(&v1))?;
        parent = Some(id);
        layers.push(BuiltLayer {
            desc: Descriptor {
                media_type: mt::OCI_LAYER_TAR.to_string(),
                digest: written.diff_id.clone(),
                size: written.size,
            },
            diff_id: written.diff_id,
            created_by: content.created_by(),
        });
    }
    let config = config_bytes(spec, &layers);
    let config_digest = sha256_digest(&config);
    let config_name = format!("{}.json", hex_of(&config_digest));
    fs::write(root.join(&config_name), &config)?;
    let layer_paths: Vec<String> = layers.iter().map(|l| format!("{}/layer.tar", hex_of(&l.diff_id))).collect();
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [reference.familiar()],
        "Layers": layer_paths,
    }]);
    fs::write(root.join("manifest.json"), to_json(&manifest))?;
    let mut tags = serde_json::Map::new();
    tags.insert(reference.tag.clone(), json!(parent.unwrap_or_default()));
    let mut repos = serde_json::Map::new();
    repos.insert(reference.familiar_repo(), Value::Object(tags));
    fs::write(root.join("repositories"), to_json(&Value::Object(repos)))?;
    tar_dir(root, path)?;
    Ok(ImageInfo {
        name: spec.name.clone(),
        reference: reference.full(),
        manifest_digest: String::new(),
        config_digest,
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        layer_digests: layers.iter().map(|l| l.desc.digest.clone()).collect(),
    })
}

/// Writes an OCI layout tar of a one-layer image named `name` whose only
/// layer blob is `layer_tar_bytes`, exactly as given. The media type follows
/// the bytes' magic number (gzip → `tar+gzip`, zstd → `tar+zstd`, else
/// `tar`), and the config's diff ID is the sha256 of what those bytes
/// decompress to (up to the point where decompression fails, for a
/// truncated stream), so a loader that rejects the image does so because
/// of the layer's content, not because of a wrong digest.
pub fn single_layer_oci_tar(path: &Path, name: &str, layer_tar_bytes: &[u8]) -> io::Result<ImageInfo> {
    let spec = ImageSpec::new(name);
    let reference = Reference::parse(name)?;
    let scratch = scratch_dir(path)?;
    let blobs = scratch.path().join("blobs").join("sha256");
    fs::create_dir_all(&blobs)?;
    let (media_type, diff_id) = sniff_layer(layer_tar_bytes);
    let desc = put_blob(&blobs, media_type, layer_tar_bytes)?;
    let layers =
        [BuiltLayer { desc, diff_id, created_by: "berth-test: single layer (hostile-layer test)".to_string() }];
    let info = write_oci_metadata(scratch.path(), &spec, &reference, &layers)?;
    tar_dir(scratch.path(), path)?;
    Ok(info)
}

/// Writes an OCI layout tar of the standard image in which the blob of
/// layer 3 (the uncompressed one, `layer_digests[2]` of the returned info)
/// was changed after its digest was computed: the `n` of `/data/new`'s
/// content became `N`. The tar inside still parses; only the digest (and
/// diff ID) check can catch it. Everything else is valid.
pub fn corrupt_blob_oci_tar(path: &Path, spec: &ImageSpec) -> io::Result<ImageInfo> {
    let scratch = scratch_dir(path)?;
    let info = oci_layout_dir(scratch.path(), spec)?;
    let blob = scratch.path().join("blobs").join("sha256").join(hex_of(&info.layer_digests[2]));
    let offset = {
        let mut archive = Archive::new(BufReader::new(File::open(&blob)?));
        let mut found = None;
        for entry in archive.entries()?.raw(true) {
            let entry = entry?;
            if &*entry.path_bytes() == b"data/new" {
                found = Some(entry.raw_file_position());
                break;
            }
        }
        found.ok_or_else(|| invalid("layer 3 has no data/new"))?
    };
    let mut f = OpenOptions::new().read(true).write(true).open(&blob)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(b"N")?;
    drop(f);
    tar_dir(scratch.path(), path)?;
    Ok(info)
}

// ---------------------------------------------------------------------------
// Hostile layers
// ---------------------------------------------------------------------------

/// An uncompressed layer with one regular file named `../escaped`
/// (content `escaped\n`): unpacking it naively writes outside the rootfs.
pub fn hostile_dotdot() -> Vec<u8> {
    in_memory(|t| t.file("../escaped", 0o644, b"escaped\n"))
}

/// An uncompressed layer with a symlink `etc -> /etc` followed by a regular
/// file `etc/berth-evil` (content `evil\n`): following the symlink while
/// unpacking writes into the host's `/etc`.
pub fn hostile_abs_symlink() -> Vec<u8> {
    in_memory(|t| {
        t.symlink("etc", "/etc")?;
        t.file("etc/berth-evil", 0o644, b"evil\n")
    })
}

/// An uncompressed layer with a symlink `up -> ../../../../..` followed by
/// a regular file `up/tmp/berth-evil` (content `evil\n`): following the
/// symlink while unpacking writes into the host's `/tmp`.
pub fn hostile_rel_symlink() -> Vec<u8> {
    in_memory(|t| {
        t.symlink("up", "../../../../..")?;
        t.file("up/tmp/berth-evil", 0o644, b"evil\n")
    })
}

/// An uncompressed layer with one hard link `passwd-copy` whose target is
/// the absolute `/etc/passwd`: linking it naively exposes (and lets later
/// layers modify) a host file.
pub fn hostile_hardlink() -> Vec<u8> {
    in_memory(|t| t.hardlink("passwd-copy", "/etc/passwd"))
}

/// An uncompressed layer with one regular file whose name is the absolute
/// `/tmp/berth-evil` (content `evil\n`); a well-behaved unpacker either
/// rejects it or puts it at `<rootfs>/tmp/berth-evil`, never on the host.
pub fn hostile_abs_path() -> Vec<u8> {
    in_memory(|t| t.file("/tmp/berth-evil", 0o644, b"evil\n"))
}

/// A gzip layer cut in half: a valid tar holding `big.bin` (256 KiB of
/// incompressible bytes) compressed with gzip, then truncated in the middle
/// of the deflate stream, so reading it ends in an unexpected EOF.
pub fn truncated_gzip_layer() -> Vec<u8> {
    let (mut bytes, _) = write_layer(Vec::new(), Codec::Gzip, |t| {
        t.file_from("big.bin", 0o644, 256 * 1024, Noise::new(0xBE27_0001, 256 * 1024))
    })
    .expect("writing to memory cannot fail");
    bytes.truncate(bytes.len() / 2);
    bytes
}

// ---------------------------------------------------------------------------
// Verification (used by the tests here and by integration tests that check
// what berth itself writes)
// ---------------------------------------------------------------------------

/// Checks an OCI image layout directory the way a strict reader would:
/// `oci-layout` says 1.0.0; for every manifest `index.json` names (following
/// nested indexes), every blob exists, has the declared size and digest, the
/// config's `rootfs.diff_ids` has one entry per layer, and each layer
/// decompresses (per its media type) to a tar whose sha256 is its diff ID.
/// Returns one [`ImageInfo`] per manifest (`name`: the
/// `org.opencontainers.image.ref.name` annotation, `reference`: the
/// `io.containerd.image.name` one, each empty if absent).
pub fn verify_oci_layout(dir: &Path) -> io::Result<Vec<ImageInfo>> {
    let layout: Value = serde_json::from_slice(&fs::read(dir.join("oci-layout"))?)?;
    if layout["imageLayoutVersion"] != "1.0.0" {
        return Err(invalid("oci-layout: imageLayoutVersion is not 1.0.0"));
    }
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json"))?)?;
    let mut out = Vec::new();
    verify_index(dir, &index, &mut out, 0)?;
    Ok(out)
}

/// Checks an unpacked `docker save` archive: `manifest.json` names a config
/// whose file name is its sha256, and layer files whose sha256 values are,
/// in order, the config's `rootfs.diff_ids`. Returns one [`ImageInfo`] per
/// manifest entry (`name`: its first RepoTag; `manifest_digest` empty).
pub fn verify_docker_archive(dir: &Path) -> io::Result<Vec<ImageInfo>> {
    let manifest: Value = serde_json::from_slice(&fs::read(dir.join("manifest.json"))?)?;
    let entries = manifest.as_array().ok_or_else(|| invalid("manifest.json is not an array"))?;
    let mut out = Vec::new();
    for entry in entries {
        let config_name = entry["Config"].as_str().ok_or_else(|| invalid("manifest.json: no Config"))?;
        let config_bytes = fs::read(dir.join(config_name))?;
        let config_digest = sha256_digest(&config_bytes);
        let expected_name = config_name.rsplit('/').next().unwrap_or(config_name);
        if expected_name != format!("{}.json", hex_of(&config_digest)) {
            return Err(invalid(format!("config {config_name} has digest {config_digest}")));
        }
        let config: Value = serde_json::from_slice(&config_bytes)?;
        let diff_ids = diff_ids_of(&config)?;
        let layers = entry["Layers"].as_array().ok_or_else(|| invalid("manifest.json: no Layers"))?;
        if layers.len() != diff_ids.len() {
            return Err(invalid("manifest.json: Layers and diff_ids differ in length"));
        }
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            let name = layer.as_str().ok_or_else(|| invalid("manifest.json: bad layer"))?;
            let (digest, _) = hash_reader(File::open(dir.join(name))?)?;
            if &digest != diff_id {
                return Err(invalid(format!("layer {name} has digest {digest}, diff ID is {diff_id}")));
            }
        }
        let tag = entry["RepoTags"][0].as_str().unwrap_or_default().to_string();
        out.push(ImageInfo {
            name: tag,
            reference: String::new(),
            manifest_digest: String::new(),
            config_digest,
            layer_digests: diff_ids.clone(),
            diff_ids,
        });
    }
    Ok(out)
}

fn verify_index(dir: &Path, index: &Value, out: &mut Vec<ImageInfo>, depth: usize) -> io::Result<()> {
    if depth > 4 {
        return Err(invalid("indexes nested too deeply"));
    }
    if index["schemaVersion"] != 2 {
        return Err(invalid("index: schemaVersion is not 2"));
    }
    let manifests = index["manifests"].as_array().ok_or_else(|| invalid("index: no manifests"))?;
    for desc in manifests {
        let bytes = read_blob(dir, desc)?;
        let media_type = desc["mediaType"].as_str().unwrap_or_default();
        if media_type == mt::OCI_INDEX {
            let nested: Value = serde_json::from_slice(&bytes)?;
            verify_index(dir, &nested, out, depth + 1)?;
            continue;
        }
        if media_type != mt::OCI_MANIFEST && media_type != mt::DOCKER_MANIFEST {
            return Err(invalid(format!("index: unexpected media type {media_type}")));
        }
        let manifest: Value = serde_json::from_slice(&bytes)?;
        if manifest["schemaVersion"] != 2 || manifest["mediaType"] != media_type {
            return Err(invalid("manifest: bad schemaVersion or mediaType"));
        }
        let config_type = manifest["config"]["mediaType"].as_str().unwrap_or_default();
        if config_type != mt::OCI_CONFIG && config_type != mt::DOCKER_CONFIG {
            return Err(invalid(format!("config: unexpected media type {config_type}")));
        }
        let config: Value = serde_json::from_slice(&read_blob(dir, &manifest["config"])?)?;
        let diff_ids = diff_ids_of(&config)?;
        let layers = manifest["layers"].as_array().ok_or_else(|| invalid("manifest: no layers"))?;
        if layers.len() != diff_ids.len() {
            return Err(invalid("manifest: layers and diff_ids differ in length"));
        }
        let mut layer_digests = Vec::new();
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            let blob = read_blob(dir, layer)?;
            let media_type = layer["mediaType"].as_str().unwrap_or_default();
            let (got, _) = match media_type {
                mt::OCI_LAYER_TAR => hash_reader(&blob[..])?,
                mt::OCI_LAYER_GZIP | mt::DOCKER_LAYER_GZIP => hash_reader(flate2::read::GzDecoder::new(&blob[..]))?,
                mt::OCI_LAYER_ZSTD => hash_reader(zstd::Decoder::new(&blob[..])?)?,
                other => return Err(invalid(format!("layer: unexpected media type {other}"))),
            };
            if &got != diff_id {
                return Err(invalid(format!("layer {} uncompresses to {got}, diff ID is {diff_id}", layer["digest"])));
            }
            layer_digests.push(layer["digest"].as_str().unwrap_or_default().to_string());
        }
        let annotation = |key: &str| desc["annotations"][key].as_str().unwrap_or_default().to_string();
        out.push(ImageInfo {
            name: annotation("org.opencontainers.image.ref.name"),
            reference: annotation("io.containerd.image.name"),
            manifest_digest: desc["digest"].as_str().unwrap_or_default().to_string(),
            config_digest: manifest["config"]["digest"].as_str().unwrap_or_default().to_string(),
            diff_ids,
            layer_digests,
        });
    }
    Ok(())
}

/// Reads the blob a descriptor names and checks its size and digest.
fn read_blob(dir: &Path, desc: &Value) -> io::Result<Vec<u8>> {
    let digest = desc["digest"].as_str().ok_or_else(|| invalid("descriptor without digest"))?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| invalid(format!("bad digest {digest}")))?;
    let bytes = fs::read(dir.join("blobs").join("sha256").join(hex))?;
    if desc["size"].as_u64() != Some(bytes.len() as u64) {
        return Err(invalid(format!("blob {digest}: size {} but descriptor says {}", bytes.len(), desc["size"])));
    }
    let got = sha256_digest(&bytes);
    if got != digest {
        return Err(invalid(format!("blob {digest} hashes to {got}")));
    }
    Ok(bytes)
}

fn diff_ids_of(config: &Value) -> io::Result<Vec<String>> {
    if config["rootfs"]["type"] != "layers" {
        return Err(invalid("config: rootfs.type is not \"layers\""));
    }
    config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| invalid("config: no rootfs.diff_ids"))?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid("config: bad diff ID")))
        .collect()
}

// ---------------------------------------------------------------------------
// Layer contents
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Content {
    Rootfs,
    Two,
    Three,
    Pad(u64),
}

fn standard_layers(spec: &ImageSpec) -> Vec<Content> {
    let mut layers = vec![Content::Rootfs, Content::Two, Content::Three];
    if spec.pad_mb > 0 {
        layers.push(Content::Pad(spec.pad_mb));
    }
    layers
}

impl Content {
    fn oci_codec(self) -> Codec {
        match self {
            Content::Rootfs => Codec::Gzip,
            Content::Two => Codec::Zstd,
            Content::Three => Codec::Plain,
            Content::Pad(_) => Codec::GzipFast,
        }
    }

    fn created_by(self) -> String {
        match self {
            Content::Rootfs => "/bin/sh -c #(nop) ADD file:busybox-rootfs.tar in / ".to_string(),
            Content::Two => "berth-test: layer 2 (zstd): /etc/motd, /data/{keep,old1,old2}, /gone".to_string(),
            Content::Three => {
                "berth-test: layer 3 (tar): whiteout /gone, opaque /data, /data/new, /etc/layer3".to_string()
            }
            Content::Pad(mb) => format!("berth-test: {mb} MiB of random padding in /pad"),
        }
    }

    fn fill<W: Write>(self, t: &mut TarWriter<W>) -> io::Result<()> {
        match self {
            Content::Rootfs => fill_rootfs(t),
            Content::Two => {
                t.dir("data", 0o755)?;
                t.file("data/keep", 0o644, b"keep\n")?;
                t.file("data/old1", 0o644, b"old1\n")?;
                t.file("data/old2", 0o644, b"old2\n")?;
                t.dir("etc", 0o755)?;
                t.file("etc/motd", 0o644, b"layer two\n")?;
                t.file("gone", 0o644, b"gone\n")
            }
            Content::Three => {
                t.file(".wh.gone", 0o644, b"")?;
                t.dir("data", 0o755)?;
                t.file("data/.wh..wh..opq", 0o644, b"")?;
                t.file("data/new", 0o644, b"new\n")?;
                t.dir("etc", 0o755)?;
                t.file("etc/layer3", 0o644, b"3\n")
            }
            Content::Pad(mb) => {
                let size = mb * 1024 * 1024;
                t.dir("pad", 0o755)?;
                t.file_from("pad/random.bin", 0o644, size, Noise::new(mb, size))
            }
        }
    }
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
berth:x:1000:1000::/home/berth:/bin/sh\n";

const GROUP: &str = "root:x:0:\n\
nobody:x:65534:\n\
berth:x:1000:\n\
extra:x:2000:berth\n";

fn fill_rootfs<W: Write>(t: &mut TarWriter<W>) -> io::Result<()> {
    let applets = busybox_applets()?;
    t.dir("bin", 0o755)?;
    let busybox = File::open(BUSYBOX)?;
    let size = busybox.metadata()?.len();
    t.file_from("bin/busybox", 0o755, size, BufReader::new(busybox))?;
    for applet in &applets {
        t.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    t.dir("dev", 0o755)?;
    t.dir("etc", 0o755)?;
    t.file("etc/group", 0o644, GROUP.as_bytes())?;
    t.file("etc/hostname", 0o644, b"berth\n")?;
    t.file("etc/passwd", 0o644, PASSWD.as_bytes())?;
    t.dir("home", 0o755)?;
    t.entry(
        RawEntry {
            path: b"home/berth/",
            kind: EntryType::Directory,
            mode: 0o755,
            uid: 1000,
            gid: 1000,
            size: 0,
            link: b"",
        },
        io::empty(),
    )?;
    t.dir("proc", 0o755)?;
    t.dir("root", 0o700)?;
    t.dir("sys", 0o755)?;
    t.dir("tmp", 0o1777)?;
    t.dir("var", 0o755)?;
    t.dir("var/tmp", 0o1777)
}

/// The applet names `busybox --list` prints, sorted, without `busybox`.
fn busybox_applets() -> io::Result<Vec<String>> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running {BUSYBOX} --list: {e}")))?;
    if !out.status.success() {
        return Err(invalid(format!("{BUSYBOX} --list failed: {}", out.status)));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| invalid("busybox --list: not UTF-8"))?;
    let mut applets: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect();
    applets.sort();
    applets.dedup();
    if applets.is_empty() {
        return Err(invalid("busybox --list printed no applets"));
    }
    Ok(applets)
}

// ---------------------------------------------------------------------------
// OCI layout writing
// ---------------------------------------------------------------------------

struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

impl Descriptor {
    fn json(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }
}

struct BuiltLayer {
    desc: Descriptor,
    diff_id: String,
    created_by: String,
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The image config, serialised once: the same bytes in every format.
fn config_bytes(spec: &ImageSpec, layers: &[BuiltLayer]) -> Vec<u8> {
    let mut config = json!({
        "Env": spec.env,
        "Cmd": spec.cmd,
        "WorkingDir": "/",
    });
    if let Some(h) = &spec.healthcheck {
        config["Healthcheck"] = h.clone();
    }
    if !spec.labels.is_empty() {
        config["Labels"] = json!(spec.labels);
    }
    let mut history: Vec<Value> =
        layers.iter().map(|l| json!({ "created": CREATED, "created_by": l.created_by })).collect();
    history.push(json!({
        "created": CREATED,
        "created_by": format!("/bin/sh -c #(nop)  CMD {}", json!(spec.cmd)),
        "empty_layer": true,
    }));
    to_json(&json!({
        "created": CREATED,
        "architecture": oci_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
        },
        "history": history,
    }))
}

/// Writes config, manifest, `index.json` and `oci-layout` for layers whose
/// blobs are already in `dir/blobs/sha256`.
fn write_oci_metadata(
    dir: &Path,
    spec: &ImageSpec,
    reference: &Reference,
    layers: &[BuiltLayer],
) -> io::Result<ImageInfo> {
    let blobs = dir.join("blobs").join("sha256");
    let config = put_blob(&blobs, mt::OCI_CONFIG, &config_bytes(spec, layers))?;
    let manifest = to_json(&json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config.json(),
        "layers": layers.iter().map(|l| l.desc.json()).collect::<Vec<_>>(),
    }));
    let manifest = put_blob(&blobs, mt::OCI_MANIFEST, &manifest)?;
    let mut entry = manifest.json();
    entry["annotations"] = json!({
        "org.opencontainers.image.ref.name": reference.tag,
        "io.containerd.image.name": reference.full(),
    });
    entry["platform"] = json!({ "architecture": oci_arch(), "os": "linux" });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": [entry],
    });
    fs::write(dir.join("index.json"), to_json(&index))?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(ImageInfo {
        name: spec.name.clone(),
        reference: reference.full(),
        manifest_digest: manifest.digest,
        config_digest: config.digest,
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        layer_digests: layers.iter().map(|l| l.desc.digest.clone()).collect(),
    })
}

/// Stores `bytes` as `blobs/<hex>` and returns its descriptor.
fn put_blob(blobs: &Path, media_type: &str, bytes: &[u8]) -> io::Result<Descriptor> {
    let digest = sha256_digest(bytes);
    fs::write(blobs.join(hex_of(&digest)), bytes)?;
    Ok(Descriptor { media_type: media_type.to_string(), digest, size: bytes.len() as u64 })
}

/// Streams a layer into `blobs/<hex>` and returns its descriptor and diff ID.
fn layer_blob<F>(blobs: &Path, codec: Codec, fill: F) -> io::Result<(Descriptor, String)>
where
    F: FnOnce(&mut TarWriter<&mut dyn Write>) -> io::Result<()>,
{
    let tmp = tempfile::NamedTempFile::new_in(blobs)?;
    let out = BufWriter::new(tmp.as_file().try_clone()?);
    let (mut out, written) = write_layer(out, codec, fill)?;
    out.flush()?;
    drop(out);
    tmp.persist(blobs.join(hex_of(&written.digest))).map_err(|e| e.error)?;
    Ok((
        Descriptor { media_type: codec.media_type().to_string(), digest: written.digest, size: written.size },
        written.diff_id,
    ))
}

/// Media type and diff ID of a layer given as bytes.
fn sniff_layer(bytes: &[u8]) -> (&'static str, String) {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        (mt::OCI_LAYER_GZIP, hash_until_error(flate2::read::GzDecoder::new(bytes)))
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let diff_id = match zstd::Decoder::new(bytes) {
            Ok(d) => hash_until_error(d),
            Err(_) => sha256_digest(b""),
        };
        (mt::OCI_LAYER_ZSTD, diff_id)
    } else {
        (mt::OCI_LAYER_TAR, sha256_digest(bytes))
    }
}

// ---------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------

/// A name split and normalised the way Docker does it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    domain: String,
    path: String,
    tag: String,
}

impl Reference {
    fn parse(name: &str) -> io::Result<Self> {
        if name.contains('@') {
            return Err(invalid(format!("{name}: digest references are not supported by the fixtures")));
        }
        let (repo, tag) = match name.rfind(':') {
            Some(i) if !name[i + 1..].contains('/') => (&name[..i], &name[i + 1..]),
            _ => (name, "latest"),
        };
        if repo.is_empty() || tag.is_empty() || repo.ends_with('/') || repo.starts_with('/') {
            return Err(invalid(format!("invalid reference format: {name:?}")));
        }
        let (domain, path) = match repo.split_once('/') {
            Some((d, rest)) if d.contains('.') || d.contains(':') || d == "localhost" => {
                (d.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), repo.to_string()),
        };
        let domain = if domain == "index.docker.io" { "docker.io".to_string() } else { domain };
        let path = if domain == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
        Ok(Reference { domain, path, tag: tag.to_string() })
    }

    /// `docker.io/library/busybox:latest`.
    fn full(&self) -> String {
        format!("{}/{}:{}", self.domain, self.path, self.tag)
    }

    /// `busybox`, `berth-test/busybox`, `quay.io/x/y`.
    fn familiar_repo(&self) -> String {
        if self.domain == "docker.io" {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// `busybox:latest`.
    fn familiar(&self) -> String {
        format!("{}:{}", self.familiar_repo(), self.tag)
    }
}

// ---------------------------------------------------------------------------
// Tar writing with raw headers
// ---------------------------------------------------------------------------

/// One tar header's worth of fields, written byte for byte.
struct RawEntry<'a> {
    path: &'a [u8],
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    link: &'a [u8],
}

/// A tar writer that puts names into ustar headers as raw bytes (no
/// normalisation, no `..` or absolute-path refusal) with fixed times.
struct TarWriter<W: Write> {
    builder: Builder<W>,
}

impl<W: Write> TarWriter<W> {
    fn new(w: W) -> Self {
        TarWriter { builder: Builder::new(w) }
    }

    fn entry<R: Read>(&mut self, e: RawEntry<'_>, data: R) -> io::Result<()> {
        let mut h = Header::new_ustar();
        put_name(&mut h, e.path)?;
        if e.link.len() > 100 {
            return Err(invalid("tar link name longer than 100 bytes"));
        }
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link);
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_size(e.size);
        h.set_mtime(MTIME);
        h.set_username(user_name(e.uid))?;
        h.set_groupname(user_name(e.gid))?;
        h.set_cksum();
        self.builder.append(&h, data)
    }

    fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        let path = format!("{}/", path.trim_end_matches('/'));
        self.entry(
            RawEntry { path: path.as_bytes(), kind: EntryType::Directory, mode, uid: 0, gid: 0, size: 0, link: b"" },
            io::empty(),
        )
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.file_from(path, mode, data.len() as u64, data)
    }

    fn file_from<R: Read>(&mut self, path: &str, mode: u32, size: u64, data: R) -> io::Result<()> {
        self.entry(
            RawEntry { path: path.as_bytes(), kind: EntryType::Regular, mode, uid: 0, gid: 0, size, link: b"" },
            data.take(size),
        )
    }

    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.link(path, target, EntryType::Symlink, 0o777)
    }

    fn hardlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.link(path, target, EntryType::Link, 0o644)
    }

    fn link(&mut self, path: &str, target: &str, kind: EntryType, mode: u32) -> io::Result<()> {
        self.entry(
            RawEntry { path: path.as_bytes(), kind, mode, uid: 0, gid: 0, size: 0, link: target.as_bytes() },
            io::empty(),
        )
    }

    /// Writes the end-of-archive blocks and returns the writer.
    fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

fn user_name(id: u64) -> &'static str {
    match id {
        0 => "root",
        1000 => "berth",
        65534 => "nobody",
        _ => "",
    }
}

/// Puts `path` into the ustar `name` field, or splits it at a `/` into
/// `prefix` and `name` if it is longer than 100 bytes.
fn put_name(h: &mut Header, path: &[u8]) -> io::Result<()> {
    if path.is_empty() {
        return Err(invalid("empty tar path"));
    }
    if path.len() <= 100 {
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        return Ok(());
    }
    let split = (0..path.len())
        .rev()
        .find(|&i| path[i] == b'/' && i <= 155 && path.len() - i - 1 <= 100 && i + 1 < path.len())
        .ok_or_else(|| invalid("tar path too long for a ustar header"))?;
    let ustar = h.as_ustar_mut().ok_or_else(|| invalid("not a ustar header"))?;
    ustar.prefix[..split].copy_from_slice(&path[..split]);
    ustar.name[..path.len() - split - 1].copy_from_slice(&path[split + 1..]);
    Ok(())
}

fn in_memory<F>(fill: F) -> Vec<u8>
where
    F: FnOnce(&mut TarWriter<&mut dyn Write>) -> io::Result<()>,
{
    write_layer(Vec::new(), Codec::Plain, fill).expect("writing to memory cannot fail").0
}

/// Writes every file and directory under `src` (sorted, relative paths,
/// 0644 files, 0755 directories, root-owned, [`MTIME`]) as a tar at `dest`.
fn tar_dir(src: &Path, dest: &Path) -> io::Result<()> {
    let mut t = TarWriter::new(BufWriter::new(File::create(dest)?));
    add_tree(&mut t, src, "")?;
    t.finish()?.flush()
}

fn add_tree<W: Write>(t: &mut TarWriter<W>, root: &Path, rel: &str) -> io::Result<()> {
    let mut names = fs::read_dir(root.join(rel))?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<Vec<_>>>()?;
    names.sort();
    for name in names {
        let name = name.to_str().ok_or_else(|| invalid("non-UTF-8 file name"))?;
        let rel_path = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let full = root.join(&rel_path);
        let md = fs::symlink_metadata(&full)?;
        if md.is_dir() {
            t.dir(&rel_path, 0o755)?;
            add_tree(t, root, &rel_path)?;
        } else if md.is_file() {
            let f = BufReader::new(File::open(&full)?);
            t.file_from(&rel_path, 0o644, md.len(), f)?;
        } else {
            return Err(invalid(format!("{}: not a file or directory", full.display())));
        }
    }
    Ok(())
}

/// A scratch directory next to `path` (same file system, so big layers
/// are not copied through a small /tmp); removed when dropped.
fn scratch_dir(path: &Path) -> io::Result<tempfile::TempDir> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new().prefix(".berth-fixture-").tempdir_in(parent)
}

// ---------------------------------------------------------------------------
// Compression and hashing
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Plain,
    Gzip,
    /// gzip at level 1: for incompressible padding, where a higher level
    /// only costs time.
    GzipFast,
    Zstd,
}

impl Codec {
    fn media_type(self) -> &'static str {
        match self {
            Codec::Plain => mt::OCI_LAYER_TAR,
            Codec::Gzip | Codec::GzipFast => mt::OCI_LAYER_GZIP,
            Codec::Zstd => mt::OCI_LAYER_ZSTD,
        }
    }
}

enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(w: W, codec: Codec) -> io::Result<Self> {
        Ok(match codec {
            Codec::Plain => Encoder::Plain(w),
            Codec::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(w, flate2::Compression::default())),
            Codec::GzipFast => Encoder::Gzip(flate2::write::GzEncoder::new(w, flate2::Compression::fast())),
            Codec::Zstd => Encoder::Zstd(zstd::Encoder::new(w, 3)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// A writer that hashes and counts what passes through it.
struct HashWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.len)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Written {
    /// Digest of the bytes written to `out` (the blob).
    digest: String,
    /// Their number.
    size: u64,
    /// Digest of the uncompressed tar.
    diff_id: String,
}

/// Streams the tar `fill` writes through `codec` into `out`, hashing both
/// sides, and returns `out` (not flushed) with the digests.
fn write_layer<W, F>(out: W, codec: Codec, fill: F) -> io::Result<(W, Written)>
where
    W: Write,
    F: FnOnce(&mut TarWriter<&mut dyn Write>) -> io::Result<()>,
{
    let mut tar_side = HashWriter::new(Encoder::new(HashWriter::new(out), codec)?);
    {
        let mut t = TarWriter::new(&mut tar_side as &mut dyn Write);
        fill(&mut t)?;
        t.finish()?;
    }
    let (encoder, diff_id, _) = tar_side.finish();
    let (out, digest, size) = encoder.finish()?.finish();
    Ok((out, Written { digest, size, diff_id }))
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `sha256:<hex>` and length of everything `r` yields.
fn hash_reader<R: Read>(mut r: R) -> io::Result<(String, u64)> {
    let mut w = HashWriter::new(io::sink());
    io::copy(&mut r, &mut w)?;
    let (_, digest, len) = w.finish();
    Ok((digest, len))
}

/// `sha256:<hex>` of what `r` yields before its first error.
fn hash_until_error<R: Read>(mut r: R) -> String {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn to_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a serde_json::Value always serialises")
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Incompressible, reproducible bytes (splitmix64), `left` of them.
struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    fn new(seed: u64, len: u64) -> Self {
        Noise {
            state: seed ^ 0x6265_7274_685f_7061, // "berth_pa"
            left: len,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = usize::try_from(self.left.min(buf.len() as u64)).unwrap_or(buf.len());
        for chunk in buf[..n].chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// A layer tar holding one GNU sparse file `name` of `real_size` bytes
/// whose only data are `chunks` (offset, bytes; in order, 512-aligned
/// offsets), everything else a hole. At most four chunks (the old GNU
/// header's sparse map, no extension headers).
pub fn gnu_sparse_tar(name: &str, real_size: u64, chunks: &[(u64, &[u8])]) -> Vec<u8> {
    assert!(chunks.len() <= 4 && name.len() < 100);
    let octal = |field: &mut [u8], n: u64| {
        let s = format!("{:0w$o}\0", n, w = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    };
    let mut data = Vec::new();
    for (_, bytes) in chunks {
        data.extend_from_slice(bytes);
    }
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::GNUSparse);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(data.len() as u64);
    {
        let gnu = h.as_gnu_mut().expect("gnu header");
        for (i, (off, bytes)) in chunks.iter().enumerate() {
            octal(&mut gnu.sparse[i].offset, *off);
            octal(&mut gnu.sparse[i].numbytes, bytes.len() as u64);
        }
        gnu.isextended[0] = 0;
        octal(&mut gnu.realsize, real_size);
    }
    h.set_cksum();
    let mut out = Vec::new();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.resize(out.len() + 1024, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (path bytes, link bytes, entry type, mode, uid, gid, content) of every
    /// entry, read with the raw entry API (no long-name or PAX processing).
    type RawList = Vec<(Vec<u8>, Vec<u8>, EntryType, u32, u64, u64, Vec<u8>)>;

    fn raw_entries<R: Read>(r: R) -> RawList {
        let mut archive = Archive::new(r);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap().raw(true) {
            let mut entry = entry.unwrap();
            let path = entry.path_bytes().into_owned();
            let link = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
            let h = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push((path, link, h.entry_type(), h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), data));
        }
        out
    }

    fn find<'a>(list: &'a RawList, path: &str) -> &'a (Vec<u8>, Vec<u8>, EntryType, u32, u64, u64, Vec<u8>) {
        list.iter().find(|e| e.0 == path.as_bytes()).unwrap_or_else(|| panic!("no entry {path}"))
    }

    fn unpack(tar: &Path, dir: &Path) {
        let mut a = Archive::new(File::open(tar).unwrap());
        a.unpack(dir).unwrap();
    }

    fn layer_bytes(dir: &Path, digest: &str) -> Vec<u8> {
        fs::read(dir.join("blobs/sha256").join(hex_of(digest))).unwrap()
    }

    #[test]
    fn rootfs_tar_has_busybox_users_and_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("rootfs.tar");
        busybox_rootfs_tar(&path).unwrap();
        let list = raw_entries(File::open(&path).unwrap());

        let sh = find(&list, "bin/sh");
        assert_eq!(sh.2, EntryType::Symlink);
        assert_eq!(sh.1, b"busybox");
        let bb = find(&list, "bin/busybox");
        assert_eq!(bb.2, EntryType::Regular);
        assert_eq!(bb.3, 0o755);
        assert_eq!(bb.6, fs::read(BUSYBOX).unwrap());
        for applet in busybox_applets().unwrap() {
            let e = find(&list, &format!("bin/{applet}"));
            assert_eq!((e.2, e.1.as_slice()), (EntryType::Symlink, &b"busybox"[..]));
        }
        assert!(!list.iter().any(|e| e.0 == b"bin/busybox" && e.2 == EntryType::Symlink));

        assert_eq!(find(&list, "tmp/").3, 0o1777);
        assert_eq!(find(&list, "var/tmp/").3, 0o1777);
        assert_eq!(find(&list, "root/").3, 0o700);
        for d in ["etc/", "proc/", "sys/", "dev/", "home/", "var/"] {
            assert_eq!(find(&list, d).2, EntryType::Directory, "{d}");
        }
        let home = find(&list, "home/berth/");
        assert_eq!((home.2, home.4, home.5), (EntryType::Directory, 1000, 1000));
        let passwd = String::from_utf8(find(&list, "etc/passwd").6.clone()).unwrap();
        assert!(passwd.contains("root:x:0:0:root:/root:/bin/sh\n"));
        assert!(passwd.contains("nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"));
        assert!(passwd.contains("berth:x:1000:1000::/home/berth:/bin/sh\n"));
        let group = String::from_utf8(find(&list, "etc/group").6.clone()).unwrap();
        assert!(group.contains("extra:x:2000:berth\n"));
        assert!(group.contains("berth:x:1000:\n"));
        assert!(!find(&list, "etc/hostname").6.is_empty());
        for e in &list {
            assert!(!e.0.starts_with(b"/") && !e.0.windows(2).any(|w| w == b".."));
            if e.0 != b"home/berth/" {
                assert_eq!((e.4, e.5), (0, 0), "{}", String::from_utf8_lossy(&e.0));
            }
        }
        // The normal `tar` reader accepts it too.
        let out = tmp.path().join("out");
        unpack(&path, &out);
        assert_eq!(fs::read_link(out.join("bin/sh")).unwrap(), Path::new("busybox"));
    }

    #[test]
    fn oci_layout_dir_digests_and_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        let info = oci_layout_dir(&dir, &ImageSpec::default()).unwrap();
        assert_eq!(info.reference, "docker.io/berth-test/busybox:latest");
        assert_eq!(info.diff_ids.len(), 3);
        assert_eq!(info.short_id().len(), 12);

        let checked = verify_oci_layout(&dir).unwrap();
        assert_eq!(checked.len(), 1);
        let c = &checked[0];
        assert_eq!(c.name, "latest");
        assert_eq!(c.reference, "docker.io/berth-test/busybox:latest");
        assert_eq!(c.manifest_digest, info.manifest_digest);
        assert_eq!(c.config_digest, info.config_digest);
        assert_eq!(c.diff_ids, info.diff_ids);
        assert_eq!(c.layer_digests, info.layer_digests);

        // Every file in blobs/ is named after its own hash.
        for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let bytes = fs::read(e.path()).unwrap();
            assert_eq!(sha256_digest(&bytes), format!("sha256:{}", e.file_name().to_str().unwrap()));
        }

        // Media types, config fields.
        let manifest: Value = serde_json::from_slice(&layer_bytes(&dir, &info.manifest_digest)).unwrap();
        let types: Vec<&str> =
            manifest["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
        assert_eq!(types, [mt::OCI_LAYER_GZIP, mt::OCI_LAYER_ZSTD, mt::OCI_LAYER_TAR]);
        let config: Value = serde_json::from_slice(&layer_bytes(&dir, &info.config_digest)).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], oci_arch());
        assert_eq!(config["created"], CREATED);
        assert_eq!(config["config"]["Cmd"], json!(["sh"]));
        assert!(config["config"]["Env"][0].as_str().unwrap().starts_with("PATH=/"));
        let history = config["history"].as_array().unwrap();
        let non_empty = history.iter().filter(|h| h["empty_layer"] != true).count();
        assert_eq!(non_empty, 3);
        let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["mediaType"], mt::OCI_INDEX);
        assert_eq!(index["manifests"][0]["size"].as_u64().unwrap(), {
            layer_bytes(&dir, &info.manifest_digest).len() as u64
        });

        // Layer contents.
        let l2 = zstd::decode_all(&layer_bytes(&dir, &info.layer_digests[1])[..]).unwrap();
        let l2 = raw_entries(&l2[..]);
        assert_eq!(find(&l2, "etc/motd").6, b"layer two\n");
        for p in ["data/keep", "data/old1", "data/old2", "gone"] {
            find(&l2, p);
        }
        let l3 = raw_entries(&layer_bytes(&dir, &info.layer_digests[2])[..]);
        assert_eq!(find(&l3, ".wh.gone").2, EntryType::Regular);
        find(&l3, "data/.wh..wh..opq");
        assert_eq!(find(&l3, "data/new").6, b"new\n");
        assert_eq!(find(&l3, "etc/layer3").6, b"3\n");
        let l1 = layer_bytes(&dir, &info.layer_digests[0]);
        let l1 = flate2::read::GzDecoder::new(&l1[..]);
        assert_eq!(find(&raw_entries(l1), "bin/sh").1, b"busybox");
        // Layer 1's diff ID is the rootfs tarball's hash.
        let rootfs = tmp.path().join("rootfs.tar");
        busybox_rootfs_tar(&rootfs).unwrap();
        assert_eq!(sha256_digest(&fs::read(&rootfs).unwrap()), info.diff_ids[0]);
    }

    #[test]
    fn output_is_deterministic_and_the_same_across_formats() {
        let tmp = tempfile::tempdir().unwrap();
        let a = oci_layout_dir(&tmp.path().join("a"), &ImageSpec::default()).unwrap();
        let b = oci_layout_tar(&tmp.path().join("b.tar"), &ImageSpec::default()).unwrap();
        let d = docker_archive(&tmp.path().join("d.tar"), &ImageSpec::default()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.config_digest, d.config_digest);
        assert_eq!(a.diff_ids, d.diff_ids);
        // No scratch directories left behind.
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".berth-fixture-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn oci_layout_tar_is_a_valid_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("image.tar");
        let mut spec = ImageSpec::new("busybox");
        spec.labels.insert("org.example".into(), "yes".into());
        let info = oci_layout_tar(&path, &spec).unwrap();
        assert_eq!(info.reference, "docker.io/library/busybox:latest");
        let list = raw_entries(File::open(&path).unwrap());
        for p in ["oci-layout", "index.json", "blobs/", "blobs/sha256/"] {
            find(&list, p);
        }
        let out = tmp.path().join("out");
        unpack(&path, &out);
        let checked = verify_oci_layout(&out).unwrap();
        assert_eq!(checked[0].manifest_digest, info.manifest_digest);
        assert_eq!(checked[0].reference, "docker.io/library/busybox:latest");
        let config: Value = serde_json::from_slice(&layer_bytes(&out, &info.config_digest)).unwrap();
        assert_eq!(config["config"]["Labels"]["org.example"], "yes");
    }

    #[test]
    fn docker_archive_is_valid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("docker.tar");
        let info = docker_archive(&path, &ImageSpec::new("docker.io/berth-test/busybox:v1")).unwrap();
        assert!(info.manifest_digest.is_empty());
        let out = tmp.path().join("out");
        unpack(&path, &out);
        let checked = verify_docker_archive(&out).unwrap();
        assert_eq!(checked.len(), 1);
        assert_eq!(checked[0].name, "berth-test/busybox:v1");
        assert_eq!(checked[0].config_digest, info.config_digest);
        assert_eq!(checked[0].diff_ids, info.diff_ids);
        let manifest: Value = serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest[0]["Config"], format!("{}.json", hex_of(&info.config_digest)));
        for (i, d) in info.diff_ids.iter().enumerate() {
            assert_eq!(manifest[0]["Layers"][i], format!("{}/layer.tar", hex_of(d)));
            assert_eq!(fs::read_to_string(out.join(hex_of(d)).join("VERSION")).unwrap(), "1.0");
        }
        let repos: Value = serde_json::from_slice(&fs::read(out.join("repositories")).unwrap()).unwrap();
        assert_eq!(repos["berth-test/busybox"]["v1"], hex_of(&info.diff_ids[2]));
    }

    #[test]
    fn padding_adds_an_incompressible_gzip_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        let spec = ImageSpec { pad_mb: 1, ..ImageSpec::default() };
        let info = oci_layout_dir(&dir, &spec).unwrap();
        assert_eq!(info.diff_ids.len(), 4);
        verify_oci_layout(&dir).unwrap();
        let blob = layer_bytes(&dir, &info.layer_digests[3]);
        assert!(blob.len() > 1024 * 1024, "{}", blob.len());
        let list = raw_entries(flate2::read::GzDecoder::new(&blob[..]));
        assert_eq!(find(&list, "pad/random.bin").6.len(), 1024 * 1024);
    }

    #[test]
    fn hostile_layers_contain_the_hostile_entries() {
        let list = raw_entries(&hostile_dotdot()[..]);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].0, b"../escaped");
        assert_eq!(list[0].2, EntryType::Regular);

        let list = raw_entries(&hostile_abs_symlink()[..]);
        assert_eq!(
            (list[0].0.as_slice(), list[0].1.as_slice(), list[0].2),
            (&b"etc"[..], &b"/etc"[..], EntryType::Symlink)
        );
        assert_eq!((list[1].0.as_slice(), list[1].2), (&b"etc/berth-evil"[..], EntryType::Regular));

        let list = raw_entries(&hostile_rel_symlink()[..]);
        assert_eq!(
            (list[0].0.as_slice(), list[0].1.as_slice(), list[0].2),
            (&b"up"[..], &b"../../../../.."[..], EntryType::Symlink)
        );
        assert_eq!(list[1].0, b"up/tmp/berth-evil");

        let list = raw_entries(&hostile_hardlink()[..]);
        assert_eq!(
            (list[0].0.as_slice(), list[0].1.as_slice(), list[0].2),
            (&b"passwd-copy"[..], &b"/etc/passwd"[..], EntryType::Link)
        );

        let list = raw_entries(&hostile_abs_path()[..]);
        assert_eq!(list[0].0, b"/tmp/berth-evil");
    }

    #[test]
    fn truncated_gzip_fails_to_decompress() {
        let bytes = truncated_gzip_layer();
        assert!(bytes.starts_with(&[0x1f, 0x8b]));
        let mut out = Vec::new();
        let err = flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn single_layer_image_matches_its_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        for (i, bytes) in [hostile_dotdot(), hostile_hardlink()].iter().enumerate() {
            let path = tmp.path().join(format!("{i}.tar"));
            let info = single_layer_oci_tar(&path, "berth-test/evil:1", bytes).unwrap();
            assert_eq!(info.diff_ids, [sha256_digest(bytes)]);
            assert_eq!(info.layer_digests, info.diff_ids);
            let out = tmp.path().join(format!("out{i}"));
            unpack(&path, &out);
            let checked = verify_oci_layout(&out).unwrap();
            assert_eq!(checked[0].name, "1");
            assert_eq!(layer_bytes(&out, &info.layer_digests[0]), *bytes);
        }
        // A truncated gzip layer: right media type and blob digest, and
        // verification fails only on decompression.
        let bytes = truncated_gzip_layer();
        let path = tmp.path().join("trunc.tar");
        let info = single_layer_oci_tar(&path, "berth-test/trunc", &bytes).unwrap();
        assert_eq!(info.layer_digests, [sha256_digest(&bytes)]);
        let out = tmp.path().join("trunc");
        unpack(&path, &out);
        let manifest: Value = serde_json::from_slice(&layer_bytes(&out, &info.manifest_digest)).unwrap();
        assert_eq!(manifest["layers"][0]["mediaType"], mt::OCI_LAYER_GZIP);
        let err = verify_oci_layout(&out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    #[test]
    fn corrupt_blob_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("corrupt.tar");
        let info = corrupt_blob_oci_tar(&path, &ImageSpec::default()).unwrap();
        let out = tmp.path().join("out");
        unpack(&path, &out);
        let err = verify_oci_layout(&out).unwrap_err().to_string();
        assert!(err.contains(&info.layer_digests[2]), "{err}");
        let bytes = layer_bytes(&out, &info.layer_digests[2]);
        assert_ne!(sha256_digest(&bytes), info.layer_digests[2]);
        // Still a readable tar, with the changed content.
        assert_eq!(find(&raw_entries(&bytes[..]), "data/new").6, b"New\n");
        // The other blobs are intact.
        for d in [&info.layer_digests[0], &info.layer_digests[1], &info.config_digest] {
            assert_eq!(&sha256_digest(&layer_bytes(&out, d)), d);
        }
    }

    #[test]
    fn references_are_normalised_like_docker() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse("berth-test/busybox:latest").unwrap();
        assert_eq!(r.full(), "docker.io/berth-test/busybox:latest");
        assert_eq!(r.familiar(), "berth-test/busybox:latest");
        assert_eq!(r.tag, "latest");
        let r = Reference::parse("localhost:5000/x/y").unwrap();
        assert_eq!(r.full(), "localhost:5000/x/y:latest");
        assert_eq!(r.familiar_repo(), "localhost:5000/x/y");
        let r = Reference::parse("docker.io/library/alpine:3").unwrap();
        assert_eq!(r.familiar(), "alpine:3");
        assert!(Reference::parse("busybox@sha256:00").is_err());
        assert!(Reference::parse(":tag").is_err());
    }

    #[test]
    fn long_names_use_the_ustar_prefix() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let bytes = in_memory(|t| t.file(&long, 0o644, b"x"));
        let mut a = Archive::new(&bytes[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), long.as_bytes());
    }
}
