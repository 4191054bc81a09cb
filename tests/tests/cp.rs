//! `cp`, end to end: files and directories both ways for exited and
//! running containers, tars on stdin and stdout, Docker's errors, and
//! hostile symlinks in the container that must never make `cp` read or
//! write a host file.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use berth_tests::harness::{Agent, Run};
use berth_tests::{need_root, IMG};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Entry name → (uid, contents) of a tar.
fn tar_entries(bytes: &[u8]) -> BTreeMap<String, (u64, String)> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_owned();
        let uid = e.header().uid().unwrap();
        let mut data = String::new();
        e.read_to_string(&mut data).unwrap();
        out.insert(name, (uid, data));
    }
    out
}

/// The host tree copied in: `file.txt`, `dir/{a,sub/b,link -> a}`, and
/// `owned.txt` belonging to 1234:5678.
fn host_tree(base: &Path) -> std::path::PathBuf {
    let src = base.join("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::write(src.join("file.txt"), "hello\n").unwrap();
    std::fs::write(src.join("dir/a"), "A\n").unwrap();
    std::fs::write(src.join("dir/sub/b"), "B\n").unwrap();
    std::os::unix::fs::symlink("a", src.join("dir/link")).unwrap();
    std::fs::write(src.join("owned.txt"), "mine\n").unwrap();
    std::os::unix::fs::chown(src.join("owned.txt"), Some(1234), Some(5678)).unwrap();
    src
}

/// What the container reports about the files copied in.
const REPORT: &str = "cat /in/file.txt /in/newdir/sub/b /in/dir/a; readlink /in/newdir/link";
const REPORTED: &str = "hello\nB\nA\na\n";

/// Copies the host tree into `c` (which has an empty `/in`).
fn copy_in(a: &Agent, src: &Path, c: &str) {
    a.ok(&["cp", s(&src.join("file.txt")), &format!("{c}:/in/")]);
    a.ok(&["cp", s(&src.join("dir")), &format!("{c}:/in/newdir")]);
    a.ok(&["cp", s(&src.join("dir")), &format!("{c}:/in")]);
    a.ok(&["cp", s(&src.join("owned.txt")), &format!("{c}:/in/owned.txt")]);
    a.ok(&["cp", "-a", s(&src.join("owned.txt")), &format!("{c}:/in/owned-a.txt")]);
}

/// Copies the container's `/data` (`top`, `d/f`) out and checks it.
fn copy_out(a: &Agent, c: &str, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    a.ok(&["cp", &format!("{c}:/data/top"), s(&out.join("top.txt"))]);
    assert_eq!(read(&out.join("top.txt")), "top\n");
    a.ok(&["cp", &format!("{c}:/data/d"), s(&out.join("d2"))]);
    assert_eq!(read(&out.join("d2/f")), "made\n");
    a.ok(&["cp", &format!("{c}:/data/d"), s(out)]);
    assert_eq!(read(&out.join("d/f")), "made\n");
    a.ok(&["cp", &format!("{c}:/data/."), s(&out.join("contents"))]);
    assert_eq!(read(&out.join("contents/top")), "top\n");
    assert_eq!(read(&out.join("contents/d/f")), "made\n");
    // A file over an existing file; a file into an existing directory.
    a.ok(&["cp", &format!("{c}:/data/d/f"), s(&out.join("top.txt"))]);
    assert_eq!(read(&out.join("top.txt")), "made\n");
    a.ok(&["cp", &format!("{c}:/data/top"), s(&out.join("d2"))]);
    assert_eq!(read(&out.join("d2/top")), "top\n");

    // Owners: root's without -a, the source's with it, as Docker.
    let tar = a.ctl_cmd(&["cp", &format!("{c}:/in/owned.txt"), "-"]).output().unwrap();
    assert!(tar.status.success(), "{tar:?}");
    assert_eq!(tar_entries(&tar.stdout)["owned.txt"], (0, "mine\n".into()));
    let tar = a.ctl_cmd(&["cp", &format!("{c}:/in/owned-a.txt"), "-"]).output().unwrap();
    assert_eq!(tar_entries(&tar.stdout)["owned-a.txt"], (1234, "mine\n".into()));
}

const MAKE_DATA: &str = "mkdir -p /in /data/d && echo made > /data/d/f && echo top > /data/top";

#[test]
fn files_and_directories_both_ways_for_exited_and_running_containers() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let src = host_tree(a.dir.path());

    // Exited: written into its writable layer, seen when it runs again.
    let script = format!("{MAKE_DATA}; test -e /in/file.txt && {REPORT} || echo empty");
    assert_eq!(a.ok(&["run", "--name", "ex", IMG, "sh", "-c", &script]), "empty\n");
    copy_in(&a, &src, "ex");
    a.ok(&["start", "ex"]);
    a.ok(&["wait", "ex"]);
    assert_eq!(a.ok(&["logs", "ex"]), format!("empty\n{REPORTED}"));
    copy_out(&a, "ex", &a.dir.path().join("out-ex"));

    // Created, never started: the same, before its first run.
    a.ok(&["create", "--name", "fresh", IMG, "cat", "/hello.txt"]);
    a.ok(&["cp", s(&src.join("file.txt")), "fresh:/hello.txt"]);
    a.ok(&["start", "fresh"]);
    a.ok(&["wait", "fresh"]);
    assert_eq!(a.ok(&["logs", "fresh"]), "hello\n");

    // Running: written where the container sees it, at once.
    let script = format!("{MAKE_DATA}; while ! test -e /in/go; do sleep 0.05; done; {REPORT}; exec sleep 100");
    a.ok(&["run", "-d", "--name", "live", IMG, "sh", "-c", &script]);
    Agent::eventually("the container made /in", Duration::from_secs(10), || {
        a.ctl(&["cp", "live:/data/d/f", s(&a.dir.path().join("probe"))]).code == 0
    });
    copy_in(&a, &src, "live");
    a.ok(&["cp", s(&src.join("file.txt")), "live:/in/go"]);
    Agent::eventually("the container saw the files", Duration::from_secs(10), || a.ok(&["logs", "live"]) == REPORTED);
    copy_out(&a, "live", &a.dir.path().join("out-live"));
    assert_eq!(a.ok(&["ps", "-q", "--filter", "name=live"]).lines().count(), 1, "still running");
    assert_eq!(Agent::mounts_under(&a.root), Vec::<String>::new(), "nothing left mounted on the host");
}

#[test]
fn tars_on_stdin_and_stdout() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "--name", "c1", IMG, "sh", "-c", MAKE_DATA]);

    let out = a.ctl_cmd(&["cp", "c1:/data/d", "-"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let names: Vec<String> = tar_entries(&out.stdout).into_keys().collect();
    assert_eq!(names, vec!["d", "d/f"]);

    // A tar on stdin is extracted into the existing directory.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [("t1.txt", &b"one\n"[..]), ("tdir/t2", b"two\n")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let pipe = |args: &[&str]| -> Run {
        let mut child =
            a.ctl_cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(&tar).unwrap();
        let o = child.wait_with_output().unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    let r = pipe(&["cp", "-", "c1:/in"]);
    assert_eq!(r.code, 0, "{r:?}");
    let back = a.ctl_cmd(&["cp", "c1:/in/.", "-"]).output().unwrap();
    let got = tar_entries(&back.stdout);
    assert_eq!(got["t1.txt"].1, "one\n");
    assert_eq!(got["tdir/t2"].1, "two\n");

    // A tar naming `..` is refused, and nothing lands outside.
    let escape = format!("../../../../../../etc/{}", unique("dotdot"));
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..escape.len()].copy_from_slice(escape.as_bytes());
    h.set_size(2);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    let mut evil = h.as_bytes().to_vec();
    evil.extend_from_slice(b"x\n");
    evil.resize(evil.len() + 510 + 1024, 0);
    let mut child = a
        .ctl_cmd(&["cp", "-", "c1:/in"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&evil).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("contains \"..\""), "{o:?}");
    assert!(!Path::new("/etc").join(unique("dotdot")).exists());

    let r = pipe(&["cp", "-", "c1:/in/t1.txt"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "Error response from daemon: extraction point is not a directory\n"));
    let r = pipe(&["cp", "-", "c1:/nowhere"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error response from daemon: Could not find the file /nowhere in container c1\n")
    );
}

#[test]
fn errors_read_as_dockers() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "--name", "c1", IMG, "true"]);
    let t = a.dir.path();
    std::fs::write(t.join("f"), "f\n").unwrap();
    let out_path = t.join("out");
    let out = s(&out_path);
    let missing = format!("lstat {}: no such file or directory", s(&t.join("missing")));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["nope:/etc/hostname".into(), out.into()], "Error response from daemon: No such container: nope"),
        (vec![s(&t.join("f")).into(), "nope:/tmp".into()], "Error response from daemon: No such container: nope"),
        (
            vec!["c1:/nope".into(), out.into()],
            "Error response from daemon: Could not find the file /nope in container c1",
        ),
        (
            vec![s(&t.join("f")).into(), "c1:/nodir/x".into()],
            "Error response from daemon: Could not find the file /nodir in container c1",
        ),
        (vec![s(&t.join("missing")).into(), "c1:/tmp".into()], &missing),
        (vec![s(&t.join("f")).into(), out.into()], "must specify at least one container source"),
        (vec!["c1:/a".into(), "c1:/b".into()], "copying between containers is not supported"),
        (vec!["c1:/etc".into(), s(&t.join("f")).into()], "cannot copy directory"),
    ];
    for (args, want) in cases {
        let mut full = vec!["cp"];
        full.extend(args.iter().map(String::as_str));
        let r = a.ctl(&full);
        assert_eq!((r.code, r.stderr.trim_end()), (1, want), "{args:?}");
    }
    assert!(!t.join("out").exists(), "a failed copy left a file");
    assert_eq!(read(&t.join("f")), "f\n");
    assert_eq!(Agent::mounts_under(&a.root), Vec::<String>::new());
}

/// Host names that must never appear: under the host's /etc, and a marker
/// directory of the test's own.
fn unique(what: &str) -> String {
    format!("berth-cp-{what}-{}", std::process::id())
}

/// Hostile symlinks made by the container itself; `cp` through each must
/// stay inside the container.
fn hostile(a: &Agent, c: &str, running: bool) {
    let t = a.dir.path().join(format!("hostile-{c}"));
    let marker = t.join("marker");
    std::fs::create_dir_all(&marker).unwrap();
    let host_file = t.join("payload");
    std::fs::write(&host_file, "payload\n").unwrap();
    let links = format!(
        "ln -s /etc /evil && ln -s ../../../../../../etc /evil2 && ln -s /etc/passwd /last && \
         mkdir -p {m} && echo inside > {m}/seen && ln -s {m} /m && ln -s {m}/seen /mlast",
        m = s(&marker)
    );
    let script = if running { format!("{links} && touch /ready && exec sleep 100") } else { links };
    a.ok(&["run", "-d", "--name", c, IMG, "sh", "-c", &script]);
    if running {
        Agent::eventually("the links exist", Duration::from_secs(10), || {
            a.ctl(&["cp", &format!("{c}:/ready"), s(&t.join("ready"))]).code == 0
        });
    } else {
        a.ok(&["wait", c]);
    }
    let host_passwd = read(Path::new("/etc/passwd"));
    let container_passwd = a.ok(&["run", "--rm", IMG, "cat", "/etc/passwd"]);
    assert!(container_passwd.contains("berth:x:1000:1000"));
    assert_ne!(container_passwd, read(Path::new("/etc/passwd")), "the test needs the two to differ");

    // Reading through the links gives the container's files.
    for (i, src) in ["/evil/passwd", "/evil2/passwd", "evil2/../../../etc/passwd"].iter().enumerate() {
        let out = t.join(format!("out{i}"));
        let r = a.ctl(&["cp", &format!("{c}:{src}"), s(&out)]);
        assert_eq!(r.code, 0, "{src}: {r:?}");
        assert_eq!(read(&out), container_passwd, "{src}");
    }
    // A link as the last component is copied as the link, as Docker does;
    // with -L it is followed, inside the container.
    a.ok(&["cp", &format!("{c}:/last"), s(&t.join("last"))]);
    assert_eq!(std::fs::read_link(t.join("last")).unwrap(), Path::new("/etc/passwd"));
    a.ok(&["cp", "-L", &format!("{c}:/last"), s(&t.join("last-followed"))]);
    assert_eq!(read(&t.join("last-followed")), container_passwd);
    a.ok(&["cp", &format!("{c}:/evil/"), s(&t.join("etc-copy"))]);
    assert_eq!(read(&t.join("etc-copy/passwd")), container_passwd);
    a.ok(&["cp", "-L", &format!("{c}:/mlast"), s(&t.join("mlast"))]);
    assert_eq!(read(&t.join("mlast")), "inside\n");

    // Writing through the links writes in the container.
    let names: Vec<String> =
        ["file", "file2", "dir", "last", "m"].iter().map(|w| unique(&format!("{c}-{w}"))).collect();
    a.ok(&["cp", s(&host_file), &format!("{c}:/evil/{}", names[0])]);
    a.ok(&["cp", s(&host_file), &format!("{c}:/evil2/{}", names[1])]);
    let dir = t.join(&names[2]);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("inner"), "inner\n").unwrap();
    a.ok(&["cp", s(&dir), &format!("{c}:/evil")]);
    a.ok(&["cp", s(&host_file), &format!("{c}:/m/{}", names[4])]);
    a.ok(&["cp", s(&host_file), &format!("{c}:/mlast")]);
    for n in &names {
        assert!(!Path::new("/etc").join(n).exists(), "/etc/{n} written on the host");
    }
    assert_eq!(std::fs::read_dir(&marker).unwrap().count(), 0, "the host's marker directory was written");
    let back = a.ctl_cmd(&["cp", &format!("{c}:/etc/."), "-"]).output().unwrap();
    let etc = tar_entries(&back.stdout);
    assert_eq!(etc[&names[0]].1, "payload\n");
    assert_eq!(etc[&names[1]].1, "payload\n");
    assert_eq!(etc[&format!("{}/inner", names[2])].1, "inner\n");
    let back = a.ctl_cmd(&["cp", &format!("{c}:{}/.", s(&marker)), "-"]).output().unwrap();
    let m = tar_entries(&back.stdout);
    assert_eq!(m[&names[4]].1, "payload\n");
    assert_eq!(m["seen"].1, "payload\n", "the last-component link was followed inside the container");
    assert_eq!(read(Path::new("/etc/passwd")), host_passwd);
    let md = std::fs::metadata(&marker).unwrap();
    assert_eq!(md.nlink(), 2, "nothing was made in the host's marker directory");
}

#[test]
fn hostile_symlinks_never_reach_the_host() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    hostile(&a, "exited", false);
    hostile(&a, "running", true);
    assert_eq!(Agent::mounts_under(&a.root), Vec::<String>::new(), "nothing left mounted on the host");
}
