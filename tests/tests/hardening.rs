//! Hardening: what a hostile container, a hostile image or bad luck must not
//! be able to do. Real berthd, real shims, real kernel.
use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

/// `(uid_t)-1` means "unchanged" to setresuid: asked for, the process would
/// stay root with every capability. Every way of asking for it is refused.
#[test]
fn uid_and_gid_that_would_stay_root_are_refused() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    for user in ["4294967295", "0:4294967295", "4294967295:0", "-1", "berth:-1", "99999999999999999999"] {
        let flag = format!("--user={user}");
        let r = a.ctl(&["run", "--rm", &flag, IMG, "id"]);
        assert_eq!(r.code, 125, "run -u {user}: {r:?}");
        assert!(r.stderr.contains("out of range (0 to 4294967294)"), "run -u {user}: {r:?}");
        assert!(!r.stdout.contains("uid=0"), "run -u {user}: {r:?}");
    }
    // The largest valid uid runs, as itself.
    let r = a.ctl(&["run", "--rm", "-u", "4294967294:4294967294", IMG, "id", "-u"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "4294967294"), "{r:?}");

    // An image whose USER is -1.
    a.ok(&["create", "--name", "base", IMG, "true"]);
    a.ok(&["commit", "-c", "USER 4294967295", "base", "evil/user:1"]);
    let r = a.ctl(&["run", "--rm", "evil/user:1", "id"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("invalid uid \"4294967295\""), "{r:?}");

    // exec -u into a running container.
    a.ok(&["run", "-d", "--name", "idle", IMG, "sleep", "600"]);
    for user in ["4294967295", "0:4294967295", "-1"] {
        let flag = format!("--user={user}");
        let r = a.ctl(&["exec", &flag, "idle", "id"]);
        assert_ne!(r.code, 0, "exec -u {user}: {r:?}");
        assert!(r.stderr.contains("out of range"), "exec -u {user}: {r:?}");
        assert!(!r.stdout.contains("uid=0"), "exec -u {user}: {r:?}");
    }
    let r = a.ctl(&["exec", "-u", "1000", "idle", "id", "-u"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "1000"), "{r:?}");
    a.ok(&["rm", "-f", "idle"]);
}

/// A container's own /etc/passwd naming uid 4294967295 does not make its
/// user root: the start fails as for any unusable user.
#[test]
fn passwd_entry_with_uid_minus_one_is_refused() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "--name", "base", IMG, "sh", "-c", "echo 'evil:x:4294967295:4294967295::/:/bin/sh' >> /etc/passwd"]);
    a.ok(&["commit", "base", "evil/passwd:1"]);
    let r = a.ctl(&["run", "--rm", "-u", "evil", "evil/passwd:1", "id"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("out of range"), "{r:?}");
    assert!(!r.stdout.contains("uid=0"), "{r:?}");
}

/// Many `run --rm` at once all finish, and none of their removals waits out
/// the log readers' grace (it used to wait for itself: 30 s each).
#[test]
fn concurrent_auto_removes_do_not_wait_for_themselves() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let children: Vec<_> = (0..20)
        .map(|i| {
            a.ctl_cmd(&["run", "--rm", IMG, "echo", &format!("run {i}")])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn berthctl")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait berthctl");
        assert!(out.status.success(), "run {i}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("run {i}\n"));
    }
    Agent::eventually("every container removed", Duration::from_secs(20), || a.ok(&["ps", "-aq"]).trim().is_empty());
    let log = a.agent_log();
    assert!(!log.contains("while its log is still being read"), "{log}");
}

/// `rm -f` wins against a `start` running at the same time, whatever state
/// it finds.
#[test]
fn force_remove_wins_against_a_concurrent_start() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    for i in 0..8 {
        let name = format!("race{i}");
        a.ok(&["create", "--name", &name, IMG, "sleep", "600"]);
        let start = a.ctl_cmd(&["start", &name]).spawn().expect("spawn start");
        let r = a.ctl(&["rm", "-f", &name]);
        assert_eq!(r.code, 0, "rm -f {name}: {r:?}");
        let _ = start.wait_with_output();
        let r = a.ctl(&["inspect", &name]);
        assert_ne!(r.code, 0, "{name} still exists: {r:?}");
    }
    assert!(a.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Root in a container may make device nodes (as in Docker) but not use
/// any beyond the standard ones: not a disk, a loop device, `/dev/kmsg`,
/// `/dev/tty0`.
#[test]
fn host_devices_are_out_of_reach() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let script = "head -c 4 /dev/zero | od -An -tx1 && echo null-ok > /dev/null && echo std-ok; \
         mknod /loop0 b 7 0 && echo mknod-ok; \
         head -c 1 /loop0 || echo loop-denied; \
         mknod /sda b 8 0 && (head -c 1 /sda || echo disk-denied); \
         mknod /kmsg c 1 11 && (echo pwned > /kmsg || echo kmsg-denied); \
         mknod /tty0 c 4 0 && (echo x > /tty0 || echo tty0-denied)";
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", script]);
    let out = format!("{}{}", r.stdout, r.stderr);
    for want in ["00 00 00 00", "std-ok", "mknod-ok", "loop-denied", "disk-denied", "kmsg-denied", "tty0-denied"] {
        assert!(out.contains(want), "{want} in {out}");
    }
    assert!(out.contains("Operation not permitted"), "{out}");

    // A device node that comes in an image, world-writable, is no way in
    // for an unprivileged user either.
    a.ok(&[
        "run",
        "--name",
        "maker",
        IMG,
        "sh",
        "-c",
        "mknod /kmsg c 1 11 && mknod /loop b 7 0 && chmod 666 /kmsg /loop",
    ]);
    a.ok(&["commit", "maker", "evil/devices:1"]);
    let r = a.ctl(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "evil/devices:1",
        "sh",
        "-c",
        "ls -l /kmsg /loop; echo pwned > /kmsg || echo kmsg-denied; head -c 1 /loop || echo loop-denied",
    ]);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("crw-rw-rw-"), "the node came with the image: {out}");
    for want in ["kmsg-denied", "loop-denied", "Operation not permitted"] {
        assert!(out.contains(want), "{want} in {out}");
    }
}

/// CVE-2019-5736's class: while a process of the shim is inside the
/// container (an exec'd child before its execve), root in the container
/// scans `/proc/*/exe` and tries to chmod, chown and touch whatever host
/// binary it finds. The shim binary must come out unchanged and still run
/// containers.
#[test]
fn the_shim_binary_is_out_of_reach_of_exec_children() {
    need_root!();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let a = Agent::start_with_shim_copy();
    a.load_fixture(IMG);
    let before = std::fs::metadata(&a.shim).unwrap();
    // Every process that is not the container's own busybox is a target.
    // The mode keeps the x bits, so that a hit on a process of the
    // container's own (one that has just exec'd) harms nothing; only the
    // host's binary is checked.
    let attack = "while :; do for p in /proc/[0-9]*; do \
        [ $p/exe -ef /bin/busybox ] && continue; \
        chmod 0711 $p/exe 2>/dev/null; \
        touch -d 2001-01-01 $p/exe 2>/dev/null; \
        done; done";
    a.ok(&["run", "-d", "--name", "attacker", IMG, "sh", "-c", attack]);
    for _ in 0..60 {
        a.ok(&["exec", "attacker", "true"]);
    }
    let after = std::fs::metadata(&a.shim).unwrap();
    assert_eq!(after.permissions().mode(), before.permissions().mode());
    assert_eq!(after.mtime(), before.mtime());
    a.ok(&["rm", "-f", "attacker"]);
    let r = a.ctl(&["run", "--rm", IMG, "echo", "still-works"]);
    assert_eq!(r.stdout, "still-works\n", "{r:?}");

    // The second wall: the binary berthd runs is a read-only view.
    let sealed = a.state.join("berth-shim");
    let err = std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o0)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
}

/// A container that puts a FIFO where the exec'd process reads its user
/// database (or otherwise stalls it) does not freeze its shim: the shim
/// keeps serving, and `rm -f` works.
#[test]
fn a_stalled_exec_does_not_freeze_the_shim() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&[
        "run",
        "-d",
        "--name",
        "staller",
        IMG,
        "sh",
        "-c",
        "rm /etc/passwd /etc/group; mkfifo /etc/passwd /etc/group; sleep 600",
    ]);
    Agent::eventually("the fifo is there", Duration::from_secs(10), || {
        a.ctl(&["exec", "staller", "test", "-p", "/etc/passwd"]).code == 0
    });
    // A numeric user reads passwd for HOME: no writer ever comes.
    let r = a.ctl(&["exec", "-u", "1000", "staller", "grep", "^Uid:", "/proc/self/status"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("Uid:\t1000\t"), "{r:?}");
    let r = a.ctl(&["exec", "staller", "echo", "alive"]);
    assert_eq!(r.stdout, "alive\n", "{r:?}");
    a.ok(&["rm", "-f", "staller"]);
}
