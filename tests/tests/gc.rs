//! `export`, `prune`, `system df` and garbage collection, end to end: what
//! nothing uses goes, what something uses stays, an interrupted load leaves
//! nothing behind, and removing everything leaves an empty store.
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use berth_tests::fixtures::{self, ImageSpec};
use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

/// Entry names of a tar file, without a leading `./`.
fn tar_names(path: &Path) -> BTreeSet<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            e.path().unwrap().to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_owned()
        })
        .collect()
}

/// Names in a directory (empty when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn assert_store_empty(a: &Agent) {
    for dir in ["content/blobs/sha256", "content/ingest", "snapshots", "containers"] {
        assert_eq!(entries(&a.root.join(dir)), Vec::<String>::new(), "{dir} is not empty");
    }
    assert_eq!(a.ok(&["images", "-q"]), "");
    assert_eq!(a.ok(&["ps", "-aq"]), "");
}

#[test]
fn export_then_import_round_trips_the_merged_filesystem() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let script = "echo important > /foo && rm /etc/motd && rm -rf /data && mkdir /data && echo x > /data/only";
    a.ok(&["run", "--name", "c1", IMG, "sh", "-c", script]);

    let file = a.dir.path().join("c1.tar");
    a.ok(&["export", "-o", file.to_str().unwrap(), "c1"]);
    let names = tar_names(&file);
    for present in ["foo", "data/only", "etc/layer3", "bin/busybox", "bin/sh"] {
        assert!(names.contains(present), "{present} missing from the export");
    }
    assert!(!names.contains("etc/motd"), "a deleted file is in the export");
    assert!(!names.iter().any(|n| n.contains(".wh.")), "whiteouts in the export: {names:?}");
    assert!(!names.iter().any(|n| n.starts_with("proc/") || n.starts_with("dev/")), "mounts in the export");

    // The same bytes on stdout (the container's form: `export c1 > file`).
    let out = a.ctl_cmd(&["export", "c1"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, std::fs::read(&file).unwrap());

    a.ok(&["import", file.to_str().unwrap(), "c1-flat"]);
    let check =
        "cat /foo /data/only; test -e /etc/motd && echo motd || echo no-motd; cat /etc/layer3 >/dev/null && echo base";
    assert_eq!(a.ok(&["run", "--rm", "c1-flat", "sh", "-c", check]), "important\nx\nno-motd\nbase\n");
    let ins: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", "c1-flat"])).unwrap();
    assert_eq!(ins[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);

    // A running container exports what it wrote so far; nothing is left
    // mounted on the host afterwards.
    a.ok(&["run", "-d", "--name", "live", IMG, "sh", "-c", "echo alive > /state && exec sleep 100"]);
    Agent::eventually("the running container wrote /state", Duration::from_secs(10), || {
        let f = a.dir.path().join("live.tar");
        a.ctl(&["export", "-o", f.to_str().unwrap(), "live"]).code == 0 && tar_names(&f).contains("state")
    });
    assert_eq!(Agent::mounts_under(&a.root), Vec::<String>::new());
    assert_eq!(a.ok(&["ps", "--filter", "name=live", "--format", "json"]).lines().count(), 1);

    let missing = a.dir.path().join("missing.tar");
    let r = a.ctl(&["export", "-o", missing.to_str().unwrap(), "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("No such container: nope"), "{r:?}");
    assert!(!missing.exists(), "a failed export left a file");
}

#[test]
fn prune_removes_only_what_nothing_uses() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    // Another image (another config) over the same layers.
    let mut spec = ImageSpec::new("other/img:1");
    spec.labels.insert("other".into(), "yes".into());
    let other = a.dir.path().join("other.tar");
    fixtures::oci_layout_tar(&other, &spec).unwrap();
    a.ok(&["load", "-i", other.to_str().unwrap()]);
    a.ok(&["run", "--name", "done1", IMG, "sh", "-c", "echo 12345 > /f"]);
    a.ok(&["create", "--name", "created1", IMG, "true"]);
    a.ok(&["run", "-d", "--name", "up", IMG, "sleep", "100"]);
    let dangling = a.ok(&["commit", "done1"]).trim().to_owned();

    let df = a.ok(&["system", "df", "--format", "json"]);
    let rows: Vec<serde_json::Value> = df.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let row =
        |kind: &str| rows.iter().find(|r| r["Type"] == kind).unwrap_or_else(|| panic!("{kind} row: {df}")).clone();
    assert_eq!((row("Images")["TotalCount"].as_u64(), row("Images")["Active"].as_u64()), (Some(3), Some(1)));
    assert_eq!((row("Containers")["TotalCount"].as_u64(), row("Containers")["Active"].as_u64()), (Some(3), Some(1)));
    assert_eq!(row("Containers")["ReclaimableBytes"].as_u64(), Some(6), "done1's /f: {df}");
    let layers = row("Layers");
    assert!(layers["ReclaimableBytes"].as_u64().unwrap() > 0 && layers["Active"].as_u64().unwrap() >= 3, "{df}");
    let table = a.ok(&["system", "df"]);
    assert!(table.starts_with("TYPE ") && table.contains("RECLAIMABLE"), "{table}");

    // Without -f and without a "y", nothing happens.
    let r = a.ctl(&["container", "prune"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Are you sure you want to continue? [y/N]"), "{r:?}");
    assert_eq!(a.ok(&["ps", "-aq"]).lines().count(), 3);

    let out = a.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 2, "{out}");
    assert!(out.trim_end().ends_with("Total reclaimed space: 6B"), "{out}");
    assert_eq!(a.ok(&["ps", "-a", "--format", "json"]).lines().count(), 1, "the running one stays");

    // Dangling only: the committed image goes, named ones stay.
    let out = a.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert_eq!(a.ok(&["images", "-q"]).lines().count(), 2);

    // -a: every image no container uses; the running container's stays.
    let out = a.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: other/img:1"), "{out}");
    assert!(!out.contains("berth-test/busybox"), "{out}");
    assert_eq!(a.ok(&["images", "--format", "json"]).lines().count(), 1);
    assert_eq!(a.ok(&["run", "--rm", IMG, "echo", "ok"]), "ok\n");

    // system prune -a after the last container stopped: nothing is left.
    a.ok(&["stop", "-t", "0", "up"]);
    let out = a.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted Containers:") && out.contains("Deleted Images:"), "{out}");
    assert_store_empty(&a);
}

#[test]
fn removing_every_container_and_image_leaves_an_empty_store() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    // Same layers under another name and ID (other labels), and a docker
    // archive of the same layers.
    let mut spec = ImageSpec::new("second:1");
    spec.labels.insert("x".into(), "y".into());
    let second = a.dir.path().join("second.tar");
    fixtures::oci_layout_tar(&second, &spec).unwrap();
    a.ok(&["load", "-i", second.to_str().unwrap()]);
    a.ok(&["run", "--name", "w1", IMG, "sh", "-c", "echo hi > /new"]);
    a.ok(&["commit", "w1", "third:1"]);
    a.ok(&["run", "--name", "t1", "third:1", "cat", "/new"]);
    a.ok(&["tag", "third:1", "third:2"]);

    for c in ["w1", "t1"] {
        a.ok(&["rm", c]);
    }
    for i in [IMG, "second:1", "third:1", "third:2"] {
        a.ok(&["rmi", i]);
    }
    assert_store_empty(&a);
}

#[test]
fn a_load_killed_midway_leaves_nothing_after_restart() {
    need_root!();
    let mut a = Agent::start();
    let mut spec = ImageSpec::new("big:1");
    spec.pad_mb = 32;
    let big = a.dir.path().join("big.tar");
    fixtures::oci_layout_tar(&big, &spec).unwrap();

    let mut load = a.ctl_cmd(&["load", "-i", big.to_str().unwrap()]).stdout(Stdio::null()).spawn().unwrap();
    let ingest = a.root.join("content/ingest");
    Agent::eventually("the load has begun", Duration::from_secs(30), || !entries(&ingest).is_empty());
    a.kill9();
    let _ = load.wait();
    assert!(!entries(&ingest).is_empty(), "the kill came too late to test anything");

    a.restart();
    assert_store_empty(&a);
    // And the same archive loads afterwards.
    a.ok(&["load", "-i", big.to_str().unwrap()]);
    assert_eq!(a.ok(&["run", "--rm", "big:1", "sh", "-c", "test -s /pad/random.bin && echo ok"]), "ok\n");
}

#[test]
fn create_racing_rmi_never_leaves_a_container_without_its_image() {
    need_root!();
    let a = Agent::start();
    let archive = a.dir.path().join("race.tar");
    fixtures::oci_layout_tar(&archive, &ImageSpec::new("race:1")).unwrap();
    for i in 0..8 {
        a.ok(&["load", "-i", archive.to_str().unwrap()]);
        let name = format!("r{i}");
        let (created, removed) = std::thread::scope(|s| {
            let create = s.spawn(|| a.ctl(&["create", "--name", &name, "race:1", "true"]));
            let rmi = s.spawn(|| a.ctl(&["rmi", "race:1"]));
            (create.join().unwrap(), rmi.join().unwrap())
        });
        if created.code == 0 {
            // The container exists: its image must still be there to run.
            assert_ne!(removed.code, 0, "both create and rmi succeeded: {created:?} {removed:?}");
            a.ok(&["start", "-a", &name]);
            a.ok(&["rm", &name]);
            a.ok(&["rmi", "race:1"]);
        } else {
            assert!(created.stderr.contains("No such image"), "{created:?}");
            assert_eq!(removed.code, 0, "{removed:?}");
        }
    }
    assert_store_empty(&a);
}
