//! Interoperability with the real tools of the field, both ways: what
//! `berthctl save` writes is read by `skopeo`, `umoci` and (when installed)
//! containerd's `ctr import` and Docker's `docker load`; what `skopeo`,
//! `umoci` and `docker save` write is loaded and run by berth. Also the save → rmi → load round trip and `images
//! --digests` / `--filter`.
//!
//! `skopeo` and `umoci` come from Debian (`scripts/setup.sh`); a test that
//! needs one that is missing says so and passes.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{fixtures, need_root, IMG};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Whether `tool` is on PATH.
fn have(tool: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
}

macro_rules! need_tools {
    ($($t:expr),*) => {
        $(if !have($t) {
            eprintln!("skipped: {} is not installed (bash scripts/setup.sh)", $t);
            return;
        })*
    };
}

/// Runs a tool, asserts success, returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_file(p: &Path) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(std::fs::read(p).unwrap())))
}

fn untar(archive: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    tar::Archive::new(std::fs::File::open(archive).unwrap()).unpack(dest).unwrap();
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The `Loaded image ID: sha256:...` or the first row of `images -q
/// --no-trunc` an archive load gives, as a full ID.
fn loaded_id(a: &Agent, archive: &Path) -> String {
    let out = a.ok(&["load", "-i", p(archive)]);
    match out.strip_prefix("Loaded image ID: ") {
        Some(id) => id.trim().to_owned(),
        None => {
            let name = out.trim().strip_prefix("Loaded image: ").unwrap_or_else(|| panic!("load said {out:?}"));
            image_id(a, name)
        }
    }
}

fn image_id(a: &Agent, name: &str) -> String {
    let v: Value = serde_json::from_str(&a.ok(&["image", "inspect", name])).unwrap();
    v[0]["Id"].as_str().unwrap().to_owned()
}

/// The DIGEST column of `images --digests` for one repository.
fn digest_column(a: &Agent, repo: &str) -> String {
    let out = a.ok(&["images", "--digests"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("DIGEST"), "{out}");
    let row = lines.find(|l| l.starts_with(&format!("{repo} "))).unwrap_or_else(|| panic!("{repo} in {out}"));
    row.split_whitespace().nth(2).unwrap().to_owned()
}

/// Loads the fixture image from a `docker save` archive, whose layers are
/// plain tars: Debian's umoci 0.4.7 and skopeo's `docker-archive:` cannot
/// handle the zstd layer of the OCI fixture. Returns the image ID and the
/// manifest digest berth gave it.
fn load_plain_fixture(a: &Agent, name: &str) -> (String, String) {
    let path = a.dir.path().join("plain.tar");
    let info = fixtures::docker_archive(&path, &fixtures::ImageSpec::new(name)).unwrap();
    a.ok(&["load", "-i", p(&path)]);
    let repo = name.rsplit_once(':').map_or(name, |(r, _)| r);
    (info.config_digest, digest_column(a, repo))
}

#[test]
fn save_writes_an_oci_layout_and_a_docker_manifest() {
    need_root!();
    let a = Agent::start();
    let info = a.load_fixture(IMG);
    let d = a.dir.path();
    let x = d.join("x.tar");
    assert_eq!(a.ok(&["save", "-o", p(&x), IMG]), "");

    // The OCI side: every blob is the store's, byte for byte, named by its digest.
    let dir = d.join("x");
    untar(&x, &dir);
    let found = fixtures::verify_oci_layout(&dir).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "latest");
    assert_eq!(found[0].reference, "docker.io/berth-test/busybox:latest");
    assert_eq!(found[0].manifest_digest, info.manifest_digest);
    assert_eq!(found[0].config_digest, info.config_digest);
    assert_eq!(found[0].layer_digests, info.layer_digests);
    let mut want: BTreeSet<String> = info.layer_digests.iter().cloned().collect();
    want.insert(info.manifest_digest.clone());
    want.insert(info.config_digest.clone());
    let mut have = BTreeSet::new();
    for e in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let digest = sha256_file(&e.path());
        assert_eq!(digest, format!("sha256:{}", e.file_name().to_string_lossy()));
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(a.root.join("content/blobs/sha256").join(&digest[7..])).unwrap()
        );
        have.insert(digest);
    }
    assert_eq!(have, want);

    // The Docker side: manifest.json pointing at the same blobs.
    let m: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let hexpath = |digest: &str| format!("blobs/sha256/{}", &digest[7..]);
    assert_eq!(
        m,
        serde_json::json!([{
            "Config": hexpath(&info.config_digest),
            "RepoTags": ["berth-test/busybox:latest"],
            "Layers": info.layer_digests.iter().map(|l| hexpath(l)).collect::<Vec<_>>(),
        }])
    );

    // To stdout (a pipe here), by ID: the same bytes but no name.
    let by_name = a.ctl_cmd(&["save", IMG]).output().unwrap();
    assert!(by_name.status.success());
    assert_eq!(by_name.stdout, std::fs::read(&x).unwrap(), "saving is deterministic");
    let by_id = d.join("id.tar");
    a.ok(&["save", "-o", p(&by_id), info.short_id()]);
    let id_dir = d.join("id");
    untar(&by_id, &id_dir);
    let found = fixtures::verify_oci_layout(&id_dir).unwrap();
    assert_eq!((found[0].name.as_str(), found[0].manifest_digest.as_str()), ("", info.manifest_digest.as_str()));

    // An unknown name fails before anything is written.
    let missing = d.join("missing.tar");
    let r = a.ctl(&["save", "-o", p(&missing), IMG, "nosuch:1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr.trim(), "Error response from daemon: No such image: nosuch:1");
    assert!(!missing.exists());
}

#[test]
fn skopeo_and_umoci_read_what_berth_saves() {
    need_root!();
    need_tools!("skopeo", "umoci");
    let a = Agent::start();
    let info = a.load_fixture(IMG);
    let d = a.dir.path();
    let x = d.join("x.tar");
    a.ok(&["save", "-o", p(&x), IMG]);

    // skopeo inspect: same manifest digest and layers.
    let v: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", p(&x))])))
            .unwrap();
    assert_eq!(v["Digest"], info.manifest_digest.as_str(), "{v}");
    assert_eq!(v["Layers"], serde_json::json!(info.layer_digests), "{v}");

    // skopeo copy to a dir: the blobs it wrote hash to their names.
    let out = d.join("skopeo-dir");
    run(Command::new("skopeo").args(["copy", &format!("oci-archive:{}", p(&x)), &format!("dir:{}", p(&out))]));
    assert_eq!(sha256_file(&out.join("manifest.json")), info.manifest_digest);
    for digest in info.layer_digests.iter().chain([&info.config_digest]) {
        assert_eq!(&sha256_file(&out.join(&digest[7..])), digest);
    }

    // umoci unpack: the layers applied in order, whiteouts honoured.
    let plain = Agent::start();
    let (plain_id, _) = load_plain_fixture(&plain, IMG);
    let plain_tar = d.join("plain-save.tar");
    plain.ok(&["save", "-o", p(&plain_tar), IMG]);
    let layout = d.join("layout");
    untar(&plain_tar, &layout);
    let bundle = d.join("bundle");
    run(Command::new("umoci").args(["unpack", "--image", &format!("{}:latest", p(&layout)), p(&bundle)]));
    let rootfs = bundle.join("rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(), "layer two\n");
    assert!(!rootfs.join("gone").exists(), "whiteout of /gone ignored");
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(rootfs.join("data/new").exists() && !rootfs.join("data/keep").exists(), "opaque /data ignored");

    // And back: umoci repacks the bundle with a new file, and a fresh
    // berthd loads and runs the result. (Not `umoci insert`: 0.4.7 writes a
    // layer tar cut short after the file's data, which GNU tar rejects too.)
    std::fs::write(rootfs.join("etc/umoci"), "repacked\n").unwrap();
    run(Command::new("umoci").args(["repack", "--image", &format!("{}:latest", p(&layout)), p(&bundle)]));
    let b = Agent::start();
    let id = loaded_id(&b, &layout);
    assert_ne!(id, plain_id);
    let out = b.ok(&["run", "--rm", &id, "cat", "/etc/umoci", "/etc/motd"]);
    assert_eq!(out, "repacked\nlayer two\n");
    assert_eq!(b.ctl(&["run", "--rm", &id, "test", "-e", "/gone"]).code, 1);
}

#[test]
fn berth_loads_and_runs_what_skopeo_writes() {
    need_root!();
    need_tools!("skopeo");
    let a = Agent::start();
    let info = a.load_fixture(IMG);
    let d = a.dir.path();
    let x = d.join("x.tar");
    a.ok(&["save", "-o", p(&x), IMG]);
    let src = format!("oci-archive:{}", p(&x));
    let y = d.join("y.tar");
    run(Command::new("skopeo").args(["copy", &src, &format!("oci-archive:{}:berth-test/skopeo:oci", p(&y))]));
    // docker-archive: takes no zstd layers: copy the plain-layer image.
    let plain = Agent::start();
    let (plain_id, _) = load_plain_fixture(&plain, "berth-test/plain:1");
    assert_eq!(plain_id, info.config_digest, "the fixtures share their config");
    let pl = d.join("plain-save.tar");
    plain.ok(&["save", "-o", p(&pl), "berth-test/plain:1"]);
    let z = d.join("z.tar");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", p(&pl)),
        &format!("docker-archive:{}:berth-test/skopeo:docker", p(&z)),
    ]));

    let b = Agent::start();
    assert_eq!(b.ok(&["load", "-i", p(&y)]), "Loaded image: berth-test/skopeo:oci\n");
    assert_eq!(b.ok(&["load", "-i", p(&z)]), "Loaded image: berth-test/skopeo:docker\n");
    for name in ["berth-test/skopeo:oci", "berth-test/skopeo:docker"] {
        assert_eq!(image_id(&b, name), info.config_digest, "{name}");
        assert_eq!(b.ok(&["run", "--rm", name, "cat", "/etc/motd"]), "layer two\n");
    }
    // berth keeps the manifest skopeo wrote, byte for byte: same digest.
    let v: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", p(&y))])))
            .unwrap();
    let row = b.ok(&["images", "--digests", "--filter", "reference=berth-test/skopeo:oci"]);
    let digest = row.lines().nth(1).and_then(|l| l.split_whitespace().nth(2)).unwrap_or_default().to_owned();
    assert_eq!(v["Digest"], digest.as_str(), "{row}");
}

#[test]
fn save_rmi_load_round_trip_keeps_id_and_digest() {
    need_root!();
    let a = Agent::start();
    let info = a.load_fixture(IMG);
    assert_eq!(digest_column(&a, "berth-test/busybox"), info.manifest_digest);
    let x = a.dir.path().join("x.tar");
    a.ok(&["save", "-o", p(&x), IMG]);
    a.ok(&["rmi", IMG]);
    assert_eq!(a.ok(&["images", "-q"]), "");
    assert_eq!(a.ok(&["load", "-i", p(&x)]), format!("Loaded image: {IMG}\n"));
    assert_eq!(image_id(&a, IMG), info.config_digest);
    assert_eq!(digest_column(&a, "berth-test/busybox"), info.manifest_digest);
    assert_eq!(a.ok(&["run", "--rm", IMG, "cat", "/etc/motd"]), "layer two\n");
}

#[test]
fn images_filters_dangling_and_reference() {
    need_root!();
    let a = Agent::start();
    let info = a.load_fixture(IMG);
    a.ok(&["tag", IMG, "other/img:1"]);
    a.ok(&["create", "--name", "c1", IMG, "true"]);
    let committed = a.ok(&["commit", "c1"]).trim().to_owned();
    assert!(committed.starts_with("sha256:"), "{committed}");

    let dangling = a.ok(&["images", "--filter", "dangling=true", "-q", "--no-trunc"]);
    assert_eq!(dangling, format!("{committed}\n"));
    let named = a.ok(&["images", "--filter", "dangling=false", "-q", "--no-trunc"]);
    assert_eq!(named, format!("{}\n", info.config_digest));

    let json = a.ok(&["images", "--filter", "reference=berth-test/*", "--format", "json"]);
    let rows: Vec<Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{json}");
    assert_eq!(rows[0]["Repository"], "berth-test/busybox");
    assert_eq!(rows[0]["Digest"], info.manifest_digest.as_str());
    let table = a.ok(&["images", "-f", "reference=other/img:1"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("other/img "), "{table}");
    assert_eq!(a.ok(&["images", "-f", "reference=nomatch*", "-q"]), "");

    let r = a.ctl(&["images", "--filter", "label=x"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid filter \"label=x\""), "{r:?}");
}

/// A containerd on a private root, state and socket under `dir`, killed
/// (with what it started) on drop.
struct Containerd {
    child: Child,
    dir: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        for sub in ["root", "state"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{0}/ctrd.sock\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_cgroup = true\n",
                dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { child, dir: dir.to_owned() };
        Agent::eventually("containerd answers", Duration::from_secs(20), || {
            c.ctr(&["version"]).output().is_ok_and(|o| o.status.success())
        });
        c
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a").arg(self.dir.join("ctrd.sock")).args(["-n", "berth-interop"]).args(args);
        cmd
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for m in Agent::mounts_under(&self.dir).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn ctr_imports_what_berth_saves() {
    need_root!();
    need_tools!("ctr", "containerd");
    let a = Agent::start();
    let info = a.load_fixture(IMG);
    let x = a.dir.path().join("x.tar");
    a.ok(&["save", "-o", p(&x), IMG]);
    let c = Containerd::start(&a.dir.path().join("containerd"));
    run(&mut c.ctr(&["image", "import", "--no-unpack", p(&x)]));
    let list = run(&mut c.ctr(&["image", "ls"]));
    let row = list
        .lines()
        .find(|l| l.starts_with("docker.io/berth-test/busybox:latest "))
        .unwrap_or_else(|| panic!("imported image in {list}"));
    assert!(row.contains(&info.manifest_digest), "{row}");
    // containerd checked every blob against its digest while importing;
    // `check` confirms the image is complete.
    let check = run(&mut c.ctr(&["image", "check"]));
    assert!(
        check.lines().any(|l| l.starts_with("docker.io/berth-test/busybox:latest") && l.contains("complete")),
        "{check}"
    );
}

/// A Docker engine (Debian's `docker.io`, when installed) on a private
/// data root, exec root and socket under `dir`: the vfs driver, no
/// iptables, no bridge, its own containerd namespace. Stopped on drop.
struct Dockerd {
    child: Child,
    dir: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let arg = |name: &str| format!("{}/{name}", dir.display());
        let child = Command::new("dockerd")
            .args(["--data-root", &arg("data"), "--exec-root", &arg("exec"), "--pidfile", &arg("d.pid")])
            .args(["-H", &format!("unix://{}", arg("d.sock"))])
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs"])
            .args(["--containerd-namespace", "berth-interop", "--containerd-plugins-namespace", "berth-interop-p"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd { child, dir: dir.to_owned() };
        Agent::eventually("dockerd answers", Duration::from_secs(30), || {
            d.docker(&["version"]).output().is_ok_and(|o| o.status.success())
        });
        d
    }

    fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("-H").arg(format!("unix://{}/d.sock", self.dir.display())).args(args);
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its containerd and shims before it exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        for m in Agent::mounts_under(&self.dir).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn docker_loads_and_runs_what_berth_commits_and_saves_and_back() {
    need_root!();
    need_tools!("dockerd", "docker");
    let a = Agent::start();
    // Docker 20.10 reads no zstd layers: the plain-layer form of the fixture.
    let (base_id, _) = load_plain_fixture(&a, "berth-test/plain:1");
    a.ok(&["run", "--name", "c1", "berth-test/plain:1", "sh", "-c", "echo from-berth > /foo && rm /etc/motd"]);
    let committed = a.ok(&["commit", "c1", "berth-test/committed:1"]).trim().to_owned();
    let x = a.dir.path().join("x.tar");
    a.ok(&["save", "-o", p(&x), "berth-test/plain:1", "berth-test/committed:1"]);

    let d = Dockerd::start(&a.dir.path().join("docker"));
    let out = run(&mut d.docker(&["load", "-i", p(&x)]));
    assert!(out.contains("Loaded image: berth-test/committed:1"), "{out}");
    assert!(out.contains("Loaded image: berth-test/plain:1"), "{out}");
    // The same image IDs (config digests) on both sides.
    let id = |name: &str| run(&mut d.docker(&["image", "inspect", "--format", "{{.Id}}", name])).trim().to_owned();
    assert_eq!(id("berth-test/committed:1"), committed);
    assert_eq!(id("berth-test/plain:1"), base_id);
    // Docker runs the committed layer as berth does: the new file, the
    // deletion (an OCI whiteout) honoured.
    let ran = run(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "berth-test/committed:1",
        "sh",
        "-c",
        "cat /foo; test -e /etc/motd || echo motd-gone",
    ]));
    assert_eq!(ran, "from-berth\nmotd-gone\n");

    // And back: what `docker save` writes, a fresh berthd loads and runs.
    let y = a.dir.path().join("y.tar");
    run(&mut d.docker(&["save", "-o", p(&y), "berth-test/committed:1"]));
    let b = Agent::start();
    assert_eq!(b.ok(&["load", "-i", p(&y)]), "Loaded image: berth-test/committed:1\n");
    assert_eq!(image_id(&b, "berth-test/committed:1"), committed);
    let ran =
        b.ok(&["run", "--rm", "berth-test/committed:1", "sh", "-c", "cat /foo; test -e /etc/motd || echo motd-gone"]);
    assert_eq!(ran, "from-berth\nmotd-gone\n");
}
