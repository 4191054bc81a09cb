//! `commit` and `history` end to end: a container's writable layer becomes
//! a new image that runs, keeps deletions, opaque directories, owners,
//! modes and links, outlives its base image, and a running container is
//! committed without being left frozen.
use std::path::PathBuf;
use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

const LINE: &str = "This is a really important file!!!!";

#[test]
fn commit_makes_a_runnable_image_that_outlives_its_base() {
    need_root!();
    let a = Agent::start();
    let base = a.load_fixture(IMG);
    a.ok(&["run", "--name", "c1", IMG, "sh", "-c", &format!("echo \"{LINE}\" > /foo")]);
    let r = a.ctl(&["run", "--rm", IMG, "cat", "/foo"]);
    assert_ne!(r.code, 0, "{r:?}");

    let out = a.ok(&["commit", "c1", "img-foo"]);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71 && out.lines().count() == 1, "{out:?}");
    assert_eq!(a.ok(&["run", "--rm", "img-foo", "cat", "/foo"]), format!("{LINE}\n"));

    let images = a.ok(&["images"]);
    assert!(images.lines().any(|l| l.starts_with("img-foo ") && l.contains(&id[7..19])), "{images}");
    assert!(images.lines().any(|l| l.starts_with("berth-test/busybox ") && l.contains(base.short_id())), "{images}");
    let ins: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", "img-foo"])).unwrap();
    assert_eq!(ins[0]["Id"], id);
    assert_eq!(ins[0]["RootFS"]["Layers"].as_array().unwrap().len(), 4);

    // The base image is untouched: same ID, no /foo.
    let ins: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", IMG])).unwrap();
    assert_eq!(ins[0]["Id"], base.config_digest.as_str());
    assert_ne!(a.ctl(&["run", "--rm", IMG, "cat", "/foo"]).code, 0);

    // Without its base image, the new one still runs, base content included.
    a.ok(&["rm", "c1"]);
    a.ok(&["rmi", IMG]);
    assert!(!a.ok(&["images"]).contains("berth-test/busybox"));
    assert_eq!(a.ok(&["run", "--rm", "img-foo", "cat", "/foo", "/etc/layer3"]).lines().next(), Some(LINE));
}

#[test]
fn commit_keeps_deletions_opaque_dirs_owners_modes_and_links() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let script = "rm /etc/motd && rm -rf /data && mkdir /data && echo x > /data/only \
                  && echo s > /suid && chown 1000:1000 /suid && chmod 4755 /suid \
                  && ln -s /etc/layer3 /link && echo h > /hard1 && ln /hard1 /hard2";
    a.ok(&["run", "--name", "c2", IMG, "sh", "-c", script]);
    a.ok(&["commit", "c2", "img2:v1"]);

    let run = |cmd: &str| a.ok(&["run", "--rm", "img2:v1", "sh", "-c", cmd]);
    assert_eq!(run("test -e /etc/motd && echo there || echo gone"), "gone\n");
    assert_eq!(run("ls -A /data"), "only\n");
    assert_eq!(run("cat /data/only"), "x\n");
    assert_eq!(run("stat -c '%u:%g %a' /suid"), "1000:1000 4755\n");
    assert_eq!(run("readlink /link"), "/etc/layer3\n");
    let links = run("stat -c '%i %h' /hard1 /hard2");
    let rows: Vec<&str> = links.lines().collect();
    assert_eq!(rows.len(), 2, "{links}");
    assert_eq!(rows[0], rows[1], "one inode, two names: {links}");
    assert!(rows[0].ends_with(" 2"), "{links}");
    // The rest of the base is still there.
    assert_eq!(run("cat /etc/layer3 >/dev/null && echo ok"), "ok\n");
}

fn freezer_state(id: &str) -> Option<String> {
    let v1 = PathBuf::from("/sys/fs/cgroup/freezer/berth").join(id).join("freezer.state");
    std::fs::read_to_string(v1).ok().map(|s| s.trim().to_owned())
}

#[test]
fn commit_of_a_running_container_with_changes_and_history() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "live", IMG, "sh", "-c", "while true; do echo tick >> /ticks; sleep 0.05; done"]);
    let cid = a.id_of("live");
    let ticks = a.root.join("containers").join(&cid).join("upper").join("ticks");
    let size = || std::fs::metadata(&ticks).map(|m| m.len()).unwrap_or(0);
    Agent::eventually("the container writes", Duration::from_secs(10), || size() > 0);

    let out = a.ok(&[
        "commit",
        "-m",
        "snapshot of live",
        "-a",
        "Jane <jane@example.com>",
        "-c",
        r#"CMD ["echo","hi"]"#,
        "-c",
        "ENV A=b",
        "live",
        "newimg",
    ]);
    let id = out.trim().to_owned();
    assert!(id.starts_with("sha256:"), "{out}");

    // Still running, not frozen, still writing.
    let ins: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "live"])).unwrap();
    assert_eq!(ins[0]["State"]["Status"], "running", "{ins}");
    if let Some(state) = freezer_state(&cid) {
        assert_eq!(state, "THAWED");
    }
    let before = size();
    Agent::eventually("the container keeps writing", Duration::from_secs(10), || size() > before);

    assert_eq!(a.ok(&["run", "--rm", "newimg"]), "hi\n");
    assert_eq!(a.ok(&["run", "--rm", "newimg", "sh", "-c", "echo $A"]), "b\n");
    assert_eq!(a.ok(&["run", "--rm", "newimg", "sh", "-c", "grep -c tick /ticks >/dev/null && echo ok"]), "ok\n");

    // history: the commit on top, with its message; older rows <missing>.
    let hist = a.ok(&["history", "newimg"]);
    let lines: Vec<&str> = hist.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY") && lines[0].ends_with("COMMENT"),
        "{hist}"
    );
    assert!(lines[1].starts_with(&id[7..19]), "{hist}");
    assert!(lines[1].ends_with("snapshot of live"), "{hist}");
    assert!(lines[1].contains("second ago") || lines[1].contains("seconds ago"), "{hist}");
    assert!(lines[1].contains("sh -c while true; do echo tick >> /ticks; sl…"), "{hist}");
    assert!(lines[2..].iter().all(|l| l.starts_with("<missing>")), "{hist}");
    let base_rows = a.ok(&["history", IMG]).lines().count();
    assert_eq!(lines.len(), base_rows + 1, "the base's rows plus the commit: {hist}");
    assert!(lines.iter().any(|l| l.contains("#(nop)  CMD [\"sh\"]") && l.ends_with(" 0B")), "{hist}");
    let q = a.ok(&["image", "history", "-q", "newimg"]);
    assert_eq!(q.lines().next(), Some(&id[7..19]));
    let json = a.ok(&["history", "--format", "json", "--no-trunc", "newimg"]);
    let top: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(top["ID"], id.as_str());
    assert_eq!(top["Comment"], "snapshot of live");
    assert_eq!(top["CreatedBy"], "sh -c while true; do echo tick >> /ticks; sleep 0.05; done");

    // --pause=false works too, and the container is still running.
    a.ok(&["commit", "--pause=false", "live"]);
    let ins: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "live"])).unwrap();
    assert_eq!(ins[0]["State"]["Status"], "running");
    let images = a.ok(&["images"]);
    assert!(images.lines().any(|l| l.starts_with("<none>")), "a dangling image: {images}");
}

#[test]
fn commit_errors_are_dockers() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["create", "--name", "c3", IMG, "true"]);

    let r = a.ctl(&["commit", "nosuch", "x"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr, "Error response from daemon: No such container: nosuch\n");

    let r = a.ctl(&["commit", "c3", "Bad/Name"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("Error response from daemon: invalid reference format"), "{r:?}");

    let r = a.ctl(&["commit", "-c", "RUN true", "c3", "ok"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("RUN is not a valid change command"), "{r:?}");

    // Nothing was made by the failures; a created container commits fine.
    assert!(!a.ok(&["images"]).contains("<none>"));
    a.ok(&["commit", "c3", "fromcreated"]);
    assert!(!a.ok(&["run", "--rm", "fromcreated", "cat", "/etc/layer3"]).is_empty());
}
