//! Images end to end through berthctl: load (OCI layout tar and directory,
//! docker save), import, images, tag, rmi, inspect, and hostile or broken
//! input that must be refused with nothing imported and nothing written
//! outside berth's root.
use std::path::Path;

use berth_tests::fixtures::{self, ImageSpec};
use berth_tests::harness::Agent;
use berth_tests::need_root;

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(true)
}

#[test]
fn load_every_format_and_list() {
    need_root!();
    let a = Agent::start();
    let d = a.dir.path();

    let oci = fixtures::oci_layout_tar(&d.join("oci.tar"), &ImageSpec::new("berth-test/oci:1")).unwrap();
    let out = a.ok(&["load", "-i", d.join("oci.tar").to_str().unwrap()]);
    assert_eq!(out, "Loaded image: berth-test/oci:1\n");

    fixtures::oci_layout_dir(&d.join("ocidir"), &ImageSpec::new("berth-test/ocidir:2")).unwrap();
    let out = a.ok(&["load", "-i", d.join("ocidir").to_str().unwrap()]);
    assert_eq!(out, "Loaded image: berth-test/ocidir:2\n");

    let dk = fixtures::docker_archive(&d.join("docker.tar"), &ImageSpec::new("berth-test/docker:3")).unwrap();
    let out = a.ok(&["load", "-i", d.join("docker.tar").to_str().unwrap()]);
    assert_eq!(out, "Loaded image: berth-test/docker:3\n");

    // Same config bytes: one image ID, three names, one set of snapshots.
    assert_eq!(oci.config_digest, dk.config_digest);
    let list = a.ok(&["images"]);
    let mut lines = list.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("REPOSITORY") && header.contains("IMAGE ID") && header.ends_with("SIZE"), "{header}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{list}");
    for (repo, tag) in [("berth-test/oci", "1"), ("berth-test/ocidir", "2"), ("berth-test/docker", "3")] {
        let row =
            rows.iter().find(|r| r.starts_with(&format!("{repo} "))).unwrap_or_else(|| panic!("{repo} in {list}"));
        let cols: Vec<&str> = row.split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cols[1], tag, "{row}");
        assert_eq!(cols[2], oci.short_id(), "{row}");
    }
    let snapshots = std::fs::read_dir(a.root.join("snapshots")).unwrap().count();
    assert_eq!(snapshots, 3, "one snapshot per layer, shared by all three names");

    // JSON listing and inspect.
    let json = a.ok(&["images", "--format", "json"]);
    assert_eq!(json.lines().count(), 3);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["ID"], oci.short_id());
    let ins: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", "berth-test/oci:1"])).unwrap();
    assert_eq!(ins[0]["Id"], oci.config_digest);
    assert_eq!(ins[0]["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    let by_id = a.ok(&["image", "inspect", oci.short_id()]);
    assert!(by_id.contains(&oci.config_digest));

    // Tag: two names, shown twice; rmi removes one name at a time.
    a.ok(&["tag", "berth-test/oci:1", "myrepo/app:v1"]);
    assert!(a.ok(&["images"]).contains("myrepo/app"));
    assert_eq!(a.ok(&["rmi", "myrepo/app:v1"]), "Untagged: myrepo/app:v1\n");
    let r = a.ctl(&["rmi", oci.short_id()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("must be forced") && r.stderr.contains("referenced in multiple repositories"), "{r:?}");
}

#[test]
fn rmi_is_refused_while_a_container_uses_the_image() {
    need_root!();
    let a = Agent::start();
    let info = a.load_fixture("berth-test/used:1");
    a.ok(&["create", "--name", "user", "berth-test/used:1", "true"]);
    let r = a.ctl(&["rmi", "berth-test/used:1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("conflict: unable to remove repository reference \"berth-test/used:1\" (must force) - container")
            && r.stderr.contains(info.short_id()),
        "{r:?}"
    );
    // -f removes the name; the container still runs from the image.
    a.ok(&["rmi", "-f", "berth-test/used:1"]);
    assert!(!a.ok(&["images"]).contains("berth-test/used"));
    let r = a.ctl(&["start", "-a", "user"]);
    assert_eq!(r.code, 0, "{r:?}");
    // When the container goes, the image's content goes too.
    a.ok(&["rm", "user"]);
    a.ok(&["rmi", info.short_id()]);
    assert!(dir_is_empty(&a.root.join("snapshots")), "snapshots left");
    assert!(dir_is_empty(&a.root.join("content/blobs/sha256")), "blobs left");
}

#[test]
fn import_a_rootfs_tarball_and_run_it() {
    need_root!();
    let a = Agent::start();
    let tar = a.dir.path().join("rootfs.tar");
    fixtures::busybox_rootfs_tar(&tar).unwrap();
    let id = a.ok(&["import", tar.to_str().unwrap(), "imported/busybox:v1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert!(a.ok(&["images"]).contains("imported/busybox"));
    let r = a.ctl(&["run", "--rm", "imported/busybox:v1", "sh", "-c", "echo imported"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "imported\n"), "{r:?}");
}

#[test]
fn references_are_normalised_and_checked() {
    need_root!();
    let a = Agent::start();
    a.load_fixture("busybox");
    // busybox = busybox:latest = docker.io/library/busybox:latest
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
        "library/busybox",
    ] {
        let r = a.ctl(&["image", "inspect", name]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
    }
    let cases = [
        ("Busybox", "invalid reference format: repository name must be lowercase"),
        ("busy box", "invalid reference format"),
        ("busybox:", "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
    ];
    for (bad, want) in cases {
        let r = a.ctl(&["tag", "busybox", bad]);
        assert_eq!(r.code, 1, "{bad}");
        assert!(r.stderr.contains(want), "{bad}: {r:?}");
    }
    let r = a.ctl(&["image", "inspect", "busybox:latst"]);
    assert!(r.stderr.contains("No such image: busybox:latst"), "{r:?}");
}

/// Every hostile or broken archive: a clear error, no image, no snapshot,
/// no blob, nothing outside the root.
#[test]
fn hostile_and_broken_archives_are_refused() {
    need_root!();
    let a = Agent::start();
    let d = a.dir.path();
    let _ = std::fs::remove_file("/tmp/berth-evil");
    let _ = std::fs::remove_file("/etc/berth-evil");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", fixtures::hostile_dotdot(), ".."),
        ("abs-symlink", fixtures::hostile_abs_symlink(), "symlink"),
        ("rel-symlink", fixtures::hostile_rel_symlink(), "symlink"),
        ("hardlink", fixtures::hostile_hardlink(), "link"),
        ("truncated", fixtures::truncated_gzip_layer(), ""),
    ];
    for (name, layer, want) in cases {
        let path = d.join(format!("{name}.tar"));
        fixtures::single_layer_oci_tar(&path, &format!("hostile/{name}:1"), &layer).unwrap();
        let r = a.ctl(&["load", "-i", path.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{name} was accepted: {r:?}");
        assert!(r.stderr.contains(want), "{name}: {r:?}");
        assert!(!r.stderr.trim().is_empty());
    }
    let path = d.join("corrupt.tar");
    fixtures::corrupt_blob_oci_tar(&path, &ImageSpec::new("hostile/corrupt:1")).unwrap();
    let r = a.ctl(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("digest"), "{r:?}");

    // A truncated archive (cut in the middle of a blob).
    let good = d.join("good.tar");
    fixtures::oci_layout_tar(&good, &ImageSpec::new("hostile/cut:1")).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(d.join("cut.tar"), &bytes[..bytes.len() / 2]).unwrap();
    let r = a.ctl(&["load", "-i", d.join("cut.tar").to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");

    // Not an archive at all.
    std::fs::write(d.join("junk.tar"), b"this is not a tar file at all").unwrap();
    let r = a.ctl(&["load", "-i", d.join("junk.tar").to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");

    assert_eq!(a.ok(&["images", "-q"]), "");
    assert!(dir_is_empty(&a.root.join("snapshots")), "snapshot left");
    assert!(dir_is_empty(&a.root.join("content/blobs/sha256")), "blob left");
    assert!(!Path::new("/tmp/berth-evil").exists() && !Path::new("/etc/berth-evil").exists(), "wrote outside the root");
    assert!(!d.join("escaped").exists() && !a.root.join("escaped").exists());
}
