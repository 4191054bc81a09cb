//! Tests of `ImageService` as berthd uses it: a real redb database and a
//! real content store and snapshot tree on a temp dir.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase};
use serde_json::json;
use tar::EntryType;

use super::meta::ReadTables;
use super::store::digest_of;
use super::testutil::{config_json, entries, gzip, tar_dir, Layer, LayerBlob, Oci};
use super::*;

struct Fixture {
    tmp: tempfile::TempDir,
    svc: ImageService,
    layout: Layout,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(tmp.path().join("root"), tmp.path().join("state"));
        fs::create_dir_all(layout.root()).unwrap();
        let db = Arc::new(Database::create(layout.meta_db()).unwrap());
        let svc = ImageService::open(layout.clone(), db).unwrap();
        Self { tmp, svc, layout }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn blobs(&self) -> Vec<String> {
        entries(&self.layout.blobs_dir())
    }

    fn snapshot_dirs(&self) -> Vec<String> {
        entries(&self.layout.snapshots_dir())
    }

    fn snapshot_records(&self) -> usize {
        let rtxn = self.svc.db.begin_read().unwrap();
        ReadTables::open(&rtxn).unwrap().snapshots().unwrap().len()
    }

    /// Nothing stored, nothing staged.
    fn assert_empty(&self, what: &str) {
        assert!(self.blobs().is_empty(), "{what}: blobs {:?}", self.blobs());
        assert!(self.snapshot_dirs().is_empty(), "{what}: snapshots {:?}", self.snapshot_dirs());
        assert!(entries(&self.layout.ingest_dir()).is_empty(), "{what}: ingest");
        assert_eq!(self.snapshot_records(), 0, "{what}");
        assert_eq!(self.svc.count().unwrap(), 0, "{what}");
    }
}

fn no_users(_: &str) -> Option<String> {
    None
}

fn base_tar() -> Vec<u8> {
    Layer::new()
        .dir("bin/", 0o755)
        .file("bin/sh", b"#!shell")
        .dir("etc/", 0o755)
        .file("etc/os-release", b"ID=berth\n")
        .finish()
}

fn app_tar(name: &str) -> Vec<u8> {
    Layer::new()
        .dir("app/", 0o755)
        .file(&format!("app/{name}"), name.as_bytes())
        .file("etc/.wh.os-release", b"")
        .finish()
}

#[test]
fn load_oci_layout_with_gzip_and_zstd_layers() {
    let f = Fixture::new();
    let mut oci = Oci::new(&f.path("oci"));
    let base = LayerBlob::gzip(&base_tar());
    let app = LayerBlob::zstd(&app_tar("web"));
    let w = oci.image(&[base.clone(), app.clone()], Some("docker.io/library/web:1"), "/app/web");
    oci.finish();

    let loaded = f.svc.load(&f.path("oci")).unwrap();
    assert_eq!(
        loaded,
        vec![LoadedImage { id: w.config_digest.clone(), names: vec!["docker.io/library/web:1".into()] }]
    );
    let list = f.svc.list().unwrap();
    assert_eq!(list.len(), 1);
    let img = &list[0];
    assert_eq!(img.id, w.config_digest);
    assert_eq!(img.names, vec!["docker.io/library/web:1"]);
    assert_eq!(img.manifest_digest, w.manifest_digest);
    assert_eq!(img.created, 1_714_979_289);
    assert_eq!(img.size, (7 + 9 + 3) as u64);
    assert_eq!(
        img.chain_ids,
        vec![base.diff_id.clone(), digest_of(format!("{} {}", base.diff_id, app.diff_id).as_bytes())]
    );
    // uppermost first
    let layers = f.svc.rootfs_layers(img).unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(fs::read(layers[0].join("app/web")).unwrap(), b"web");
    assert!(layers[0].join("etc/os-release").exists(), "whiteout");
    assert_eq!(fs::read(layers[1].join("bin/sh")).unwrap(), b"#!shell");
    assert!(layers.iter().all(|l| l.starts_with(f.layout.snapshots_dir())));
    // manifest, config and both layer blobs as they were
    assert_eq!(f.blobs().len(), 4);
    let hex = store::sha256_hex(&base.diff_id).unwrap();
    assert!(!f.blobs().contains(&hex.to_owned()), "layer stored compressed");
    assert!(f.blobs().contains(&digest_of(&base.blob)[7..].to_owned()));
    assert!(entries(&f.layout.ingest_dir()).is_empty());
    assert_eq!(f.svc.count().unwrap(), 1);
    assert_eq!(f.svc.resolve("web:1").unwrap().id, w.config_digest);
    assert!(f.svc.resolve("web").unwrap_err().is_not_found());
}

#[test]
fn load_oci_tar_with_names_and_platforms() {
    let f = Fixture::new();
    let mut oci = Oci::new(&f.path("oci"));
    let base = LayerBlob::plain(base_tar());
    // ref.name as a full reference
    let a = oci.image_with_config(
        std::slice::from_ref(&base),
        &config_json(std::slice::from_ref(&base.diff_id), "a"),
        json!({"org.opencontainers.image.ref.name": "localhost:5000/a:v1"}),
    );
    // ref.name as a bare tag: no name
    let b = oci.image_with_config(
        std::slice::from_ref(&base),
        &config_json(std::slice::from_ref(&base.diff_id), "b"),
        json!({"org.opencontainers.image.ref.name": "latest"}),
    );
    // a nested index with a foreign platform and ours
    let c_config = config_json(std::slice::from_ref(&base.diff_id), "c");
    let c_cfg = oci.blob(&c_config);
    let base_desc = oci.blob(&base.blob);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c_cfg["digest"], "size": c_cfg["size"]},
        "layers": [{"mediaType": base.media_type, "digest": base_desc["digest"], "size": base_desc["size"]}],
    }))
    .unwrap();
    let m = oci.blob(&manifest);
    let foreign = oci.blob(b"{\"not\": \"a manifest\"}");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": foreign["digest"], "size": foreign["size"],
             "platform": {"architecture": "s390x", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m["digest"], "size": m["size"],
             "platform": {"architecture": oci_spec::image::Arch::default().to_string(), "os": "linux"}},
        ],
    }))
    .unwrap();
    let i = oci.blob(&index);
    oci.entry(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": i["digest"], "size": i["size"],
        "annotations": {"io.containerd.image.name": "example.com/c:2", "org.opencontainers.image.ref.name": "2"},
    }));
    oci.finish();
    tar_dir(&oci.dir, &f.path("oci.tar"));

    let loaded = f.svc.load(&f.path("oci.tar")).unwrap();
    assert_eq!(loaded.len(), 3);
    assert_eq!(loaded[0].id, a.config_digest);
    assert_eq!(loaded[0].names, vec!["localhost:5000/a:v1"]);
    assert_eq!(loaded[1].id, b.config_digest);
    assert!(loaded[1].names.is_empty());
    assert_eq!(loaded[2].id, digest_of(&c_config));
    assert_eq!(loaded[2].names, vec!["example.com/c:2"]);
    assert_eq!(f.svc.resolve("example.com/c:2").unwrap().manifest_digest, digest_of(&manifest));
    // three images, one shared layer: one snapshot
    assert_eq!(f.snapshot_dirs().len(), 1);
    assert_eq!(f.snapshot_records(), 1);
    // the foreign-platform manifest was never stored; the nested index
    // neither (only what images need is kept)
    assert!(!f.blobs().contains(&digest_of(&index)[7..].to_owned()));
    assert!(!f.blobs().contains(&digest_of(b"{\"not\": \"a manifest\"}")[7..].to_owned()));

    // gzip-compressed archive of the same: nothing new
    let gz = gzip(&fs::read(f.path("oci.tar")).unwrap());
    fs::write(f.path("oci.tar.gz"), gz).unwrap();
    let again = f.svc.load(&f.path("oci.tar.gz")).unwrap();
    assert_eq!(again, loaded);
    assert_eq!(f.snapshot_dirs().len(), 1);
    assert_eq!(f.svc.count().unwrap(), 3);
}

/// A docker-save archive: `manifest.json`, `<id>.json`, `<x>/layer.tar`.
fn docker_save(dir: &Path, layers: &[Vec<u8>], tags: &[&str], cmd: &str) -> String {
    fs::create_dir_all(dir).unwrap();
    let diff_ids: Vec<String> = layers.iter().map(|l| digest_of(l)).collect();
    let config = config_json(&diff_ids, cmd);
    let config_name = format!("{}.json", &digest_of(&config)[7..]);
    fs::write(dir.join(&config_name), &config).unwrap();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let d = format!("layer{i}");
        fs::create_dir_all(dir.join(&d)).unwrap();
        fs::write(dir.join(&d).join("layer.tar"), l).unwrap();
        fs::write(dir.join(&d).join("VERSION"), "1.0").unwrap();
        paths.push(format!("{d}/layer.tar"));
    }
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": tags, "Layers": paths}])).unwrap(),
    )
    .unwrap();
    digest_of(&config)
}

#[test]
fn load_docker_save_archive() {
    let f = Fixture::new();
    let id = docker_save(
        &f.path("save"),
        &[base_tar(), app_tar("api")],
        &["api:latest", "registry.example.com:5000/team/api:v2"],
        "/app/api",
    );
    tar_dir(&f.path("save"), &f.path("save.tar"));
    let loaded = f.svc.load(&f.path("save.tar")).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, id);
    assert_eq!(loaded[0].names, vec!["docker.io/library/api:latest", "registry.example.com:5000/team/api:v2"]);
    let img = f.svc.resolve("api").unwrap();
    assert_eq!(img.chain_ids.len(), 2);
    let layers = f.svc.rootfs_layers(&img).unwrap();
    assert_eq!(fs::read(layers[0].join("app/api")).unwrap(), b"api");
    // config, two layers and the generated manifest
    assert_eq!(f.blobs().len(), 4);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(f.layout.blob(&img.manifest_digest[7..])).unwrap()).unwrap();
    assert_eq!(manifest["config"]["digest"], id);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");

    // Loading again: same image, same manifest, nothing new.
    let again = f.svc.load(&f.path("save.tar")).unwrap();
    assert_eq!(again, loaded);
    assert_eq!(f.svc.resolve("api").unwrap().manifest_digest, img.manifest_digest);
    assert_eq!(f.blobs().len(), 4);
    assert_eq!(f.snapshot_dirs().len(), 2);
}

#[test]
fn diff_id_mismatch_leaves_nothing() {
    let f = Fixture::new();
    let mut oci = Oci::new(&f.path("oci"));
    let base = LayerBlob::gzip(&base_tar());
    let wrong = digest_of(b"not the layer");
    oci.image_with_config(
        std::slice::from_ref(&base),
        &config_json(std::slice::from_ref(&wrong), "x"),
        json!({"io.containerd.image.name": "docker.io/library/x:1"}),
    );
    oci.finish();
    let err = f.svc.load(&f.path("oci")).unwrap_err();
    assert!(matches!(err, ImageError::Invalid(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "layer {}: diff ID mismatch: the image config says {wrong}, the content is {}",
            digest_of(&base.blob),
            base.diff_id
        )
    );
    f.assert_empty("diff id mismatch");
}

#[test]
fn blob_digest_mismatch_leaves_nothing() {
    let f = Fixture::new();
    let mut oci = Oci::new(&f.path("oci"));
    let base = LayerBlob::plain(base_tar());
    oci.image(std::slice::from_ref(&base), Some("docker.io/library/x:1"), "x");
    oci.finish();
    // corrupt the layer blob on disk
    let hex = &digest_of(&base.blob)[7..];
    let p = f.path("oci/blobs/sha256").join(hex);
    let mut bytes = fs::read(&p).unwrap();
    bytes[600] ^= 1;
    fs::write(&p, bytes).unwrap();
    tar_dir(&f.path("oci"), &f.path("oci.tar"));
    for input in ["oci", "oci.tar"] {
        let err = f.svc.load(&f.path(input)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("layer sha256:{hex}: digest mismatch for sha256:{hex}: got sha256:")),
            "{msg}"
        );
        f.assert_empty(input);
    }
}

#[test]
fn hostile_layers_leave_nothing() {
    let f = Fixture::new();
    let evil = format!("berth-load-test-evil-{}", std::process::id());
    let cases = [
        Layer::new().file("../escape", b"x").finish(),
        Layer::new().file("/abs/../../x", b"x").finish(),
        Layer::new().symlink("etc", "/etc").file(&format!("etc/{evil}"), b"x").finish(),
        Layer::new().symlink("up", "../..").file("up/evil", b"x").finish(),
        Layer::new().hardlink("passwd", "/etc/passwd").finish(),
        {
            let gz = gzip(&base_tar());
            gz[..gz.len() - 10].to_vec()
        },
    ];
    for (i, tar) in cases.into_iter().enumerate() {
        let dir = f.path(&format!("oci{i}"));
        let mut oci = Oci::new(&dir);
        let mut layer = LayerBlob::plain(tar);
        if i == 5 {
            layer.diff_id = digest_of(&base_tar());
            layer.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
        }
        oci.image(&[LayerBlob::gzip(&base_tar()), layer], Some("docker.io/library/evil:1"), "x");
        oci.finish();
        let err = f.svc.load(&dir).unwrap_err();
        assert!(matches!(err, ImageError::Invalid(_)), "case {i}: {err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("layer sha256:"), "case {i}: {msg}");
        f.assert_empty(&format!("case {i}"));
        assert!(!Path::new("/etc").join(&evil).exists());
        assert_eq!(
            entries(&f.layout.root().join("..")),
            {
                let mut v: Vec<String> = (0..=i).map(|k| format!("oci{k}")).collect();
                v.push("root".into());
                v.sort();
                v
            },
            "case {i}: nothing written beside the root"
        );
    }
    assert_eq!(entries(f.layout.root()), vec!["content", "meta.redb", "snapshots"]);
}

#[test]
fn outer_archive_must_hold_only_files_and_dirs() {
    let f = Fixture::new();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Symlink);
    h.set_path("index.json").unwrap();
    h.set_link_name("/etc/passwd").unwrap();
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    fs::write(f.path("bad.tar"), b.into_inner().unwrap()).unwrap();
    let err = f.svc.load(&f.path("bad.tar")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid archive: entry \"index.json\" is a symlink; only regular files and directories (or symlinks to files \
         in the archive) may be in an image archive"
    );
    f.assert_empty("symlink in archive");

    let mut raw = Layer::new();
    raw.file("../index.json", b"{}");
    fs::write(f.path("bad2.tar"), raw.finish()).unwrap();
    let err = f.svc.load(&f.path("bad2.tar")).unwrap_err();
    assert_eq!(err.to_string(), "invalid archive: entry \"../index.json\" is not a plain relative path");
    fs::write(f.path("empty.tar"), Layer::new().finish()).unwrap();
    let err = f.svc.load(&f.path("empty.tar")).unwrap_err();
    assert!(err.to_string().starts_with("not an image archive"), "{err}");
    f.assert_empty("bad archives");
}

#[test]
fn shared_layers_share_snapshots_and_gc_removes_everything() {
    let f = Fixture::new();
    let base = LayerBlob::gzip(&base_tar());
    let mut oci = Oci::new(&f.path("one"));
    let a = oci.image(&[base.clone(), LayerBlob::plain(app_tar("a"))], Some("docker.io/library/a:latest"), "a");
    oci.finish();
    f.svc.load(&f.path("one")).unwrap();
    let mut oci = Oci::new(&f.path("two"));
    let b = oci.image(&[base.clone(), LayerBlob::zstd(&app_tar("b"))], Some("docker.io/library/b:latest"), "b");
    oci.finish();
    f.svc.load(&f.path("two")).unwrap();

    assert_eq!(f.snapshot_dirs().len(), 3);
    assert_eq!(f.snapshot_records(), 3);
    let ia = f.svc.resolve("a").unwrap();
    let ib = f.svc.resolve("b").unwrap();
    let la = f.svc.rootfs_layers(&ia).unwrap();
    let lb = f.svc.rootfs_layers(&ib).unwrap();
    assert_eq!(la[1], lb[1], "the base snapshot is shared");
    assert_ne!(la[0], lb[0]);
    // manifest + config + top layer each, base layer once
    assert_eq!(f.blobs().len(), 7);

    let report = f.svc.remove("a", false, &no_users).unwrap();
    assert_eq!(report.untagged, vec!["a:latest".to_owned(), format!("a@{}", a.manifest_digest)]);
    assert_eq!(report.deleted, vec![a.config_digest.clone(), ia.chain_ids[1].clone()]);
    assert_eq!(f.snapshot_dirs().len(), 2);
    assert!(lb.iter().all(|l| l.is_dir()));
    assert_eq!(f.blobs().len(), 4);

    let report = f.svc.remove(&b.config_digest, false, &no_users).unwrap();
    assert_eq!(report.deleted, vec![b.config_digest.clone(), ib.chain_ids[1].clone(), ib.chain_ids[0].clone()]);
    f.assert_empty("after removing both");
    assert!(f.svc.list().unwrap().is_empty());
}

#[test]
fn tag_and_resolve() {
    let f = Fixture::new();
    let mut oci = Oci::new(&f.path("oci"));
    let w = oci.image(&[LayerBlob::plain(base_tar())], Some("docker.io/library/busybox:latest"), "sh");
    oci.finish();
    f.svc.load(&f.path("oci")).unwrap();
    let hex = &w.config_digest[7..];

    let rec = f.svc.tag("busybox", "localhost:5000/bb:v1").unwrap();
    assert_eq!(rec.names, vec!["docker.io/library/busybox:latest", "localhost:5000/bb:v1"]);
    for r in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "localhost:5000/bb:v1",
        &w.config_digest,
        hex,
        &hex[..4],
        &hex[..12],
        &format!("sha256:{}", &hex[..6]),
        &format!("busybox@{}", w.manifest_digest),
        &format!("localhost:5000/bb@{}", w.manifest_digest),
    ] {
        let got = f.svc.resolve(r).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert_eq!(got.id, w.config_digest, "{r}");
        assert_eq!(got.names.len(), 2, "{r}");
    }
    let err = f.svc.resolve("busybox:latst").unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "No such image: busybox:latst");
    assert_eq!(err.kind(), ImageErrorKind::NotFound);
    for r in [&hex[..3], &format!("other@{}", w.manifest_digest)] {
        assert!(f.svc.resolve(r).unwrap_err().is_not_found(), "{r}");
    }
    let err = f.svc.resolve("BusyBox").unwrap_err();
    assert_eq!(err.to_string(), "invalid reference format: repository name must be lowercase");
    assert_eq!(err.kind(), ImageErrorKind::InvalidArgument);
    let err = f.svc.tag("busybox", &format!("x@{}", w.manifest_digest)).unwrap_err();
    assert!(matches!(err, ImageError::InvalidReference(_)));
    assert!(f.svc.tag("nope", "x").unwrap_err().is_not_found());

    let inspect = f.svc.inspect(&hex[..8]).unwrap();
    assert_eq!(inspect.id, w.config_digest);
    assert_eq!(inspect.repo_tags, ["busybox:latest", "localhost:5000/bb:v1"]);
    assert_eq!(
        inspect.repo_digests,
        [format!("busybox@{}", w.manifest_digest), format!("localhost:5000/bb@{}", w.manifest_digest)]
    );
    assert_eq!(inspect.created, "2024-05-06T07:08:09.123456789Z");
    assert_eq!(inspect.os, "linux");
    assert_eq!(inspect.size, 16);
    assert_eq!(inspect.cmd, Some(vec!["sh".to_owned()]));
    assert_eq!(inspect.entrypoint, None);
    assert_eq!(inspect.working_dir, "/srv");
    assert_eq!(inspect.user, "");
    assert_eq!(inspect.exposed_ports, Some(vec!["80/tcp".to_owned()]));
    assert_eq!(inspect.labels, Some([("org.example".to_owned(), "yes".to_owned())].into()));
    assert_eq!(inspect.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(inspect.layers.len(), 1);
}

#[test]
fn remove_follows_docker_rules() {
    let f = Fixture::new();
    let mut oci = Oci::new(&f.path("oci"));
    let w = oci.image(&[LayerBlob::plain(base_tar())], Some("docker.io/library/busybox:latest"), "sh");
    oci.finish();
    f.svc.load(&f.path("oci")).unwrap();
    let short = &w.config_digest[7..19];
    let used = |id: &str| (id == w.config_digest).then(|| "c0ffee123456".to_owned());
    f.svc.tag("busybox", "other/name:1").unwrap();

    // two repositories: by ID needs force
    let err = f.svc.remove(short, false, &no_users).unwrap_err();
    assert_eq!(err.kind(), ImageErrorKind::FailedPrecondition);
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    // by name with another name left: just untag, even if used
    let r = f.svc.remove("other/name:1", false, &used).unwrap();
    assert_eq!(r.untagged, vec!["other/name:1"]);
    assert!(r.deleted.is_empty());
    // last name, used by a container
    let err = f.svc.remove("busybox", false, &used).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to remove repository reference \"busybox\" (must force) - container c0ffee123456 is using its referenced image {short}")
    );
    assert!(matches!(err, ImageError::InUse(_)));
    // forced: untagged, kept dangling while used
    let r = f.svc.remove("busybox", true, &used).unwrap();
    assert_eq!(r.untagged, vec!["busybox:latest"]);
    assert!(r.deleted.is_empty());
    let list = f.svc.list().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].names.is_empty());
    assert!(!f.snapshot_dirs().is_empty());
    let err = f.svc.remove(short, true, &used).unwrap_err();
    assert!(err.to_string().contains("(cannot be forced)"), "{err}");
    let err = f.svc.remove(short, false, &used).unwrap_err();
    assert!(err.to_string().contains("image is being used by container c0ffee123456"));
    // container gone: the dangling image goes
    let r = f.svc.remove(short, false, &no_users).unwrap();
    assert!(r.untagged.is_empty());
    assert_eq!(r.deleted[0], w.config_digest);
    f.assert_empty("after rmi");
    assert!(f.svc.remove(short, false, &no_users).unwrap_err().is_not_found());
}

#[test]
fn names_move_to_the_newest_image() {
    let f = Fixture::new();
    let first = docker_save(&f.path("one"), &[base_tar()], &["app:1"], "one");
    let second = docker_save(&f.path("two"), &[base_tar()], &["app:1"], "two");
    f.svc.load(&f.path("one")).unwrap();
    f.svc.load(&f.path("two")).unwrap();
    let list = f.svc.list().unwrap();
    assert_eq!(list.len(), 2);
    let by_id = |id: &str| list.iter().find(|i| i.id == id).unwrap().names.clone();
    assert!(by_id(&first).is_empty(), "old image left dangling");
    assert_eq!(by_id(&second), vec!["docker.io/library/app:1"]);
    assert_eq!(f.snapshot_dirs().len(), 1);
}

#[test]
fn import_makes_a_one_layer_image() {
    let f = Fixture::new();
    let tar = base_tar();
    fs::write(f.path("rootfs.tar.gz"), gzip(&tar)).unwrap();
    let rec = f.svc.import(&f.path("rootfs.tar.gz"), Some("imported:v1"), "from a test").unwrap();
    assert_eq!(rec.names, vec!["docker.io/library/imported:v1"]);
    assert_eq!(rec.chain_ids, vec![digest_of(&tar)]);
    assert_eq!(rec.config.rootfs().diff_ids(), &vec![digest_of(&tar)]);
    assert!(rec.created > 1_700_000_000);
    assert_eq!(rec.config.history().as_ref().unwrap()[0].comment().as_deref(), Some("from a test"));
    let layers = f.svc.rootfs_layers(&rec).unwrap();
    assert_eq!(fs::read(layers[0].join("etc/os-release")).unwrap(), b"ID=berth\n");
    // the layer blob is stored as given (gzip), plus config and manifest
    assert_eq!(f.blobs().len(), 3);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(f.layout.blob(&rec.manifest_digest[7..])).unwrap()).unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");

    // the same rootfs again, plain, no name: a new image, the same snapshot
    fs::write(f.path("rootfs.tar"), &tar).unwrap();
    let again = f.svc.import(&f.path("rootfs.tar"), None, "").unwrap();
    assert_ne!(again.id, rec.id);
    assert!(again.names.is_empty());
    assert_eq!(f.snapshot_dirs().len(), 1);
    assert_eq!(f.svc.count().unwrap(), 2);

    // a bad reference is refused before anything is done
    let err = f.svc.import(&f.path("rootfs.tar"), Some("Bad"), "").unwrap_err();
    assert!(matches!(err, ImageError::InvalidReference(_)));
    // a truncated rootfs leaves nothing
    fs::write(f.path("cut.tar"), &tar[..1024]).unwrap();
    let err = f.svc.import(&f.path("cut.tar"), Some("cut"), "").unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(f.svc.count().unwrap(), 2);
    assert_eq!(f.blobs().len(), 6);
    assert!(entries(&f.layout.ingest_dir()).is_empty());
    assert_eq!(f.snapshot_dirs().len(), 1);
}

#[test]
fn open_removes_leftovers() {
    let f = Fixture::new();
    let mut oci = Oci::new(&f.path("oci"));
    oci.image(&[LayerBlob::plain(base_tar())], Some("docker.io/library/x:1"), "x");
    oci.finish();
    f.svc.load(&f.path("oci")).unwrap();
    let kept_snapshots = f.snapshot_dirs();
    let kept_blobs = f.blobs();

    fs::create_dir_all(f.layout.ingest_dir().join("load-1234/archive")).unwrap();
    fs::write(f.layout.ingest_dir().join("upload-1"), b"partial").unwrap();
    fs::create_dir_all(f.layout.snapshots_dir().join("tmp-abc/fs/etc")).unwrap();
    fs::create_dir_all(f.layout.snapshots_dir().join("99/fs")).unwrap();
    fs::write(f.layout.blob(&"e".repeat(64)), b"stray").unwrap();

    let Fixture { tmp, svc, layout } = f;
    let db = svc.db.clone();
    drop(svc);
    let svc = ImageService::open(layout.clone(), db).unwrap();
    let f = Fixture { tmp, svc, layout };
    assert!(entries(&f.layout.ingest_dir()).is_empty());
    assert_eq!(f.snapshot_dirs(), kept_snapshots);
    assert_eq!(f.blobs(), kept_blobs);
    assert_eq!(f.svc.resolve("x:1").unwrap().chain_ids.len(), 1);
}
