//! Trees a container or an image can make that used to hurt berthd: a
//! directory 10,000 levels deep (every recursive walk overflowed its
//! thread's stack and berthd aborted), and a tiny archive of a huge sparse
//! file (its holes were written out). Real berthd, real shims, real kernel.
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Instant;

use berth_tests::fixtures;
use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};
use rustix::fs::{self as rfs, Mode, OFlags};

const DEPTH: usize = 10_000;

/// berthd's pid: the process whose command line names this agent's socket.
fn berthd_pid(a: &Agent) -> i32 {
    let pids = Agent::processes_with(a.socket.to_str().unwrap());
    assert_eq!(pids.len(), 1, "one berthd for {}: {pids:?}", a.socket.display());
    pids[0]
}

/// berthd still answers, and is the same process.
fn still_alive(a: &Agent, pid: i32, after: &str) {
    let r = a.ctl(&["version"]);
    assert_eq!(r.code, 0, "berthd does not answer after {after}: {r:?}\n{}", a.agent_log());
    assert_eq!(berthd_pid(a), pid, "berthd was restarted after {after}:\n{}", a.agent_log());
}

/// Opens `d/d/.../d` (`depth` levels) below `top` one level at a time:
/// the path is longer than PATH_MAX.
fn open_deep(top: &Path, depth: usize) -> OwnedFd {
    let mut cur = rfs::open(top, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for i in 0..depth {
        cur = rfs::openat(&cur, "d", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW, Mode::empty())
            .unwrap_or_else(|e| panic!("level {i}: {e}"));
    }
    cur
}

fn read_at(dir: &OwnedFd, name: &str) -> String {
    let fd = rfs::openat(dir.as_fd(), name, OFlags::RDONLY, Mode::empty()).unwrap();
    let mut s = String::new();
    File::from(fd).read_to_string(&mut s).unwrap();
    s
}

/// A shell script that goes `DEPTH` levels of `d` down (making them),
/// then runs `then`: 1,000 levels at a time, since every `cd` costs the
/// shell a `getcwd` as long as the depth.
fn descend(make: bool, then: &str) -> String {
    let chunk = 1000;
    let step = if make { "mkdir -p $p && cd -P $p" } else { "cd -P $p" };
    format!(
        "p=$(printf 'd/%.0s' $(seq {chunk})); i=0; while [ $i -lt {} ]; do {step} || exit 9; i=$((i+1)); done; {then}",
        DEPTH / chunk
    )
}

/// A container makes a 10,000-level tree: commit, export, cp and rm all
/// work (or refuse clearly), and berthd lives through each.
#[test]
fn a_ten_thousand_level_tree_in_a_container() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let pid = berthd_pid(&a);

    let t = Instant::now();
    a.ok(&["run", "--name", "deep", IMG, "sh", "-c", &descend(true, "echo bottom > f")]);
    eprintln!("made {DEPTH} levels in {:?}", t.elapsed());
    still_alive(&a, pid, "run");

    let t = Instant::now();
    let r = a.ctl(&["commit", "deep", "deep/tree:1"]);
    eprintln!("commit of {DEPTH} levels took {:?}", t.elapsed());
    assert_eq!(r.code, 0, "commit: {r:?}\n{}", a.agent_log());
    still_alive(&a, pid, "commit");
    let out = a.ok(&["run", "--rm", "deep/tree:1", "sh", "-c", &descend(false, "cat f")]);
    assert_eq!(out, "bottom\n", "the committed image has the deep file");
    still_alive(&a, pid, "run of the committed image");

    let export = a.dir.path().join("deep.tar");
    let t = Instant::now();
    a.ok(&["export", "-o", export.to_str().unwrap(), "deep"]);
    eprintln!("export of {DEPTH} levels took {:?}", t.elapsed());
    still_alive(&a, pid, "export");
    let want = format!("{}f", "d/".repeat(DEPTH));
    let mut found = None;
    let mut ar = tar::Archive::new(File::open(&export).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path_bytes().into_owned();
        if path == want.as_bytes() {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            found = Some(s);
        }
    }
    assert_eq!(found.as_deref(), Some("bottom\n"), "export holds the deep file");

    let dest = a.dir.path().join("cp-out");
    std::fs::create_dir(&dest).unwrap();
    let r = a.ctl(&["cp", "deep:/d", dest.to_str().unwrap()]);
    still_alive(&a, pid, "cp");
    if r.code == 0 {
        let bottom = open_deep(&dest, DEPTH);
        assert_eq!(read_at(&bottom, "f"), "bottom\n", "cp copied the deep file");
        berth_tests_remove(&dest);
    } else {
        assert!(!r.stderr.trim().is_empty(), "cp failed without saying why: {r:?}");
        eprintln!("cp refused: {}", r.stderr.trim());
    }

    let id = a.id_of("deep");
    let dir = a.root.join("containers").join(&id);
    assert!(dir.exists(), "{}", dir.display());
    let t = Instant::now();
    a.ok(&["rm", "deep"]);
    eprintln!("rm of {DEPTH} levels took {:?}", t.elapsed());
    still_alive(&a, pid, "rm");
    assert!(!dir.exists(), "the container's directory is gone");
    assert!(!a.ok(&["ps", "-a"]).contains("deep"));

    // The committed image's snapshot goes with the image.
    a.ok(&["rmi", "deep/tree:1"]);
    still_alive(&a, pid, "rmi");
}

/// Removes a deep tree the test made on the host (`rm -rf` walks it).
fn berth_tests_remove(dir: &Path) {
    let st = std::process::Command::new("rm").arg("-rf").arg(dir).status().unwrap();
    assert!(st.success());
}

/// An image whose layer carries a 10,000-level tree loads, its snapshot
/// holds the deep file, and removing the image removes the snapshot.
#[test]
fn an_image_with_a_ten_thousand_level_layer() {
    need_root!();
    let a = Agent::start();
    let pid = berthd_pid(&a);
    let mut b = tar::Builder::new(Vec::new());
    let mut path = String::new();
    for _ in 0..DEPTH {
        path.push_str("d/");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(fixtures::MTIME);
        h.set_size(0);
        b.append_data(&mut h, &path, std::io::empty()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(fixtures::MTIME);
    h.set_size(7);
    b.append_data(&mut h, format!("{path}f"), &b"bottom\n"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer).unwrap();
    let layer = gz.finish().unwrap();
    let archive = a.dir.path().join("deep-image.tar");
    fixtures::single_layer_oci_tar(&archive, "deep/layer:1", &layer).unwrap();

    let t = Instant::now();
    let r = a.ctl(&["load", "-i", archive.to_str().unwrap()]);
    eprintln!("load of {DEPTH} levels took {:?}", t.elapsed());
    still_alive(&a, pid, "load");
    assert_eq!(r.code, 0, "load: {r:?}\n{}", a.agent_log());
    let snaps: Vec<_> = std::fs::read_dir(a.root.join("snapshots")).unwrap().flatten().collect();
    assert_eq!(snaps.len(), 1, "one snapshot: {snaps:?}");
    let bottom = open_deep(&snaps[0].path().join("fs"), DEPTH);
    assert_eq!(read_at(&bottom, "f"), "bottom\n");
    let st = rfs::fstat(&bottom).unwrap();
    assert_eq!(st.st_mtime as u64, fixtures::MTIME, "the deepest directory has its time");

    a.ok(&["rmi", "deep/layer:1"]);
    still_alive(&a, pid, "rmi");
    assert_eq!(std::fs::read_dir(a.root.join("snapshots")).unwrap().count(), 0, "the snapshot is removed");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A 1 GiB sparse file in a tiny archive imports with its holes: the
/// snapshot uses a few blocks, and the file reads back whole.
#[test]
fn a_sparse_file_keeps_its_holes() {
    need_root!();
    let a = Agent::start();
    const GIB: u64 = 1 << 30;
    let tar = fixtures::gnu_sparse_tar(
        "big.img",
        GIB,
        &[(0, &[5u8; 512]), (GIB / 2, &[7u8; 4096]), (GIB - 4096, &[9u8; 4096])],
    );
    let archive = a.dir.path().join("sparse.tar.gz");
    std::fs::write(&archive, gzip(&tar)).unwrap();
    let archive_size = std::fs::metadata(&archive).unwrap().len();
    assert!(archive_size < 20_000, "{archive_size}");

    let t = Instant::now();
    a.ok(&["import", archive.to_str().unwrap(), "sparse/file:1"]);
    eprintln!("import of a 1 GiB sparse file ({archive_size} B archive) took {:?}", t.elapsed());
    let snaps: Vec<_> = std::fs::read_dir(a.root.join("snapshots")).unwrap().flatten().collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let file = snaps[0].path().join("fs/big.img");
    let md = std::fs::metadata(&file).unwrap();
    let on_disk = md.blocks() * 512;
    eprintln!("1 GiB sparse file: {on_disk} bytes on disk");
    assert_eq!(md.len(), GIB, "apparent size");
    assert!(on_disk < 1 << 20, "holes kept: {on_disk} bytes on disk");
    let f = File::open(&file).unwrap();
    let mut head = [0u8; 512];
    f.read_exact_at(&mut head, 0).unwrap();
    assert!(head.iter().all(|&b| b == 5));
    let mut page = vec![0u8; 4096];
    f.read_exact_at(&mut page, GIB / 2).unwrap();
    assert!(page.iter().all(|&b| b == 7));
    f.read_exact_at(&mut page, GIB - 4096).unwrap();
    assert!(page.iter().all(|&b| b == 9));
    f.read_exact_at(&mut page, GIB / 4).unwrap();
    assert!(page.iter().all(|&b| b == 0), "a hole reads as zeros");
}

/// An archive that expands past the configured cap is refused with an
/// error that names the setting, and leaves no snapshot, blob or image.
#[test]
fn an_import_past_the_cap_is_refused_and_leaves_nothing() {
    need_root!();
    let a = Agent::start_with_config("[images]\nmax_layer_bytes = 1048576\n");
    let blobs = a.root.join("content/blobs/sha256");
    let blobs_before = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);

    // 4 MiB of ones: a few KiB of gzip, no holes to skip.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(4 << 20);
    b.append_data(&mut h, "big", &vec![1u8; 4 << 20][..]).unwrap();
    let archive = a.dir.path().join("bomb.tar.gz");
    std::fs::write(&archive, gzip(&b.into_inner().unwrap())).unwrap();
    let r = a.ctl(&["import", archive.to_str().unwrap(), "too/big:1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("expands past the limit of 1048576 bytes (max_layer_bytes in berthd's config)"), "{r:?}");
    assert!(r.stderr.contains("layer sha256:"), "names the layer: {r:?}");

    assert_eq!(std::fs::read_dir(a.root.join("snapshots")).unwrap().count(), 0, "no snapshot left");
    assert_eq!(std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0), blobs_before, "no blob left");
    assert!(!a.ok(&["images"]).contains("too/big"));

    // Within the cap, the same berthd imports.
    let small = gnu_free_small_tar();
    let ok = a.dir.path().join("small.tar");
    std::fs::write(&ok, small).unwrap();
    a.ok(&["import", ok.to_str().unwrap(), "small/one:1"]);
}

fn gnu_free_small_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(5);
    b.append_data(&mut h, "small", &b"small"[..]).unwrap();
    b.into_inner().unwrap()
}
