//! Builders for the tests: layers made entry by entry with the `tar` crate
//! (raw names allowed, so hostile layers can be written), compression, and
//! OCI layouts / docker-save archives on disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::store::digest_of;

/// A layer tar built entry by entry.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Self { b: tar::Builder::new(Vec::new()) }
    }

    /// Appends an entry whose name and link name are written raw (no
    /// checks), with the given metadata.
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        kind: EntryType,
        name: &str,
        link: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        assert!(name.len() < 100 && link.len() < 100);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(EntryType::Directory, name, "", b"", mode, 0, 0, 1_000_000)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(EntryType::Regular, name, "", data, 0o644, 0, 0, 1_000_000)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(EntryType::Symlink, name, target, b"", 0o777, 0, 0, 1_000_000)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(EntryType::Link, name, target, b"", 0o644, 0, 0, 1_000_000)
    }

    /// PAX records for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b.append_pax_extensions(records.iter().map(|(k, v)| (*k, *v))).unwrap();
        self
    }

    pub fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_path(name).unwrap();
        h.set_mode(0o666);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, &b""[..]).unwrap();
        self
    }

    /// The tar with its end-of-archive blocks.
    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

/// A layer ready for an image: its blob (maybe compressed) and its diff ID.
#[derive(Clone)]
pub struct LayerBlob {
    pub blob: Vec<u8>,
    pub diff_id: String,
    pub media_type: &'static str,
}

impl LayerBlob {
    pub fn plain(tar: Vec<u8>) -> Self {
        Self { diff_id: digest_of(&tar), blob: tar, media_type: "application/vnd.oci.image.layer.v1.tar" }
    }
    pub fn gzip(tar: &[u8]) -> Self {
        Self { diff_id: digest_of(tar), blob: gzip(tar), media_type: "application/vnd.oci.image.layer.v1.tar+gzip" }
    }
    pub fn zstd(tar: &[u8]) -> Self {
        Self { diff_id: digest_of(tar), blob: zstd(tar), media_type: "application/vnd.oci.image.layer.v1.tar+zstd" }
    }
}

/// An image config with the given diff IDs.
pub fn config_json(diff_ids: &[String], cmd: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "created": "2024-05-06T07:08:09.123456789Z",
        "architecture": oci_spec::image::Arch::default().to_string(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": [cmd],
            "WorkingDir": "/srv",
            "Labels": {"org.example": "yes"},
            "ExposedPorts": {"80/tcp": {}},
            "StopSignal": "SIGQUIT"
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}]
    }))
    .unwrap()
}

/// An OCI image layout being written into a directory.
pub struct Oci {
    pub dir: PathBuf,
    manifests: Vec<serde_json::Value>,
}

/// What [`Oci::image`] wrote.
pub struct Written {
    pub config_digest: String,
    pub manifest_digest: String,
}

impl Oci {
    pub fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self { dir: dir.to_owned(), manifests: Vec::new() }
    }

    pub fn blob(&self, data: &[u8]) -> serde_json::Value {
        let digest = digest_of(data);
        let hex = digest.strip_prefix("sha256:").unwrap();
        fs::write(self.dir.join("blobs/sha256").join(hex), data).unwrap();
        serde_json::json!({"digest": digest, "size": data.len()})
    }

    fn described(&self, media_type: &str, data: &[u8]) -> serde_json::Value {
        let mut d = self.blob(data);
        d["mediaType"] = media_type.into();
        d
    }

    /// Writes config + layers + manifest; `annotations` go on the index
    /// entry. Returns the digests.
    pub fn image_with_config(
        &mut self,
        layers: &[LayerBlob],
        config: &[u8],
        annotations: serde_json::Value,
    ) -> Written {
        let config_desc = self.described("application/vnd.oci.image.config.v1+json", config);
        let layer_descs: Vec<_> = layers.iter().map(|l| self.described(l.media_type, &l.blob)).collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": layer_descs,
        }))
        .unwrap();
        let mut desc = self.described("application/vnd.oci.image.manifest.v1+json", &manifest);
        if !annotations.is_null() {
            desc["annotations"] = annotations;
        }
        self.manifests.push(desc);
        Written { config_digest: digest_of(config), manifest_digest: digest_of(&manifest) }
    }

    pub fn image(&mut self, layers: &[LayerBlob], name: Option<&str>, cmd: &str) -> Written {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let ann = match name {
            Some(n) => serde_json::json!({"io.containerd.image.name": n}),
            None => serde_json::Value::Null,
        };
        self.image_with_config(layers, &config_json(&diff_ids, cmd), ann)
    }

    /// Adds a raw index entry.
    pub fn entry(&mut self, desc: serde_json::Value) {
        self.manifests.push(desc);
    }

    /// Writes `index.json`.
    pub fn finish(&self) {
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "manifests": self.manifests,
            }))
            .unwrap(),
        )
        .unwrap();
    }
}

/// Tars a directory (regular files and directories, relative paths).
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap().sync_all().unwrap();
}

/// Names of the entries of a directory, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
