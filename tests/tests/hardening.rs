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
    assert_eq!(r.code, 126, "{r:?}");
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

/// The files of a container (its spec holds its environment: passwords)
/// and the database are out of reach of other users, even where the
/// directory above berth's root is open to all.
#[test]
fn state_is_private_to_root() {
    need_root!();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["create", "--name", "secret", "-e", "PASSWORD=hunter2", IMG, "true"]);
    a.ok(&["start", "secret"]);
    let id = a.id_of("secret");
    // Only berth's own modes may protect it: the test's directory is open.
    std::fs::set_permissions(a.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = a.root.join("containers").join(&id).join("config.json");
    let meta = a.root.join("meta.redb");
    assert_eq!(std::fs::metadata(&a.root).unwrap().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(&config).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&meta).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&a.state).unwrap().mode() & 0o777, 0o711);
    for path in [&config, &meta, &a.root.join("containers")] {
        let out = std::process::Command::new("/bin/cat").arg(path).uid(65534).gid(65534).output().unwrap();
        assert!(!out.status.success(), "nobody read {}: {out:?}", path.display());
        assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{out:?}");
    }
    // The socket: 0660, so nobody cannot talk to berthd either.
    let out = a.ctl_cmd(&["ps"]).uid(65534).gid(65534).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
}

/// A database lost (deleted, or truncated to nothing) must not become lost
/// containers and images: berthd refuses to start, and with
/// `--reinit-metadata` starts empty but deletes nothing.
#[test]
fn a_lost_database_deletes_nothing() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "alive", IMG, "sleep", "600"]);
    a.ok(&["run", "--name", "done", IMG, "true"]);
    let id = a.id_of("alive");
    let shim = a.shim_pid(&id).expect("shim pid");
    let root = a.root.clone();
    let listing = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = (listing("containers"), listing("snapshots"), listing("content/blobs/sha256"));
    assert_eq!(before.0.len(), 2);
    assert!(!before.1.is_empty() && !before.2.is_empty());
    let meta = a.root.join("meta.redb");
    let berthd = berth_tests::harness::bin_dir().join("berthd");
    for damage in ["truncate", "delete"] {
        a.terminate();
        match damage {
            "truncate" => std::fs::File::create(&meta).map(drop).unwrap(),
            _ => std::fs::remove_file(&meta).unwrap(),
        }
        let out = std::process::Command::new(&berthd)
            .args(["--root", a.root.to_str().unwrap(), "--state", a.state.to_str().unwrap()])
            .args(["--socket", a.socket.to_str().unwrap(), "--shim", a.shim.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{damage}: berthd started over a lost database: {err}");
        assert!(err.contains("missing or empty") && err.contains("--reinit-metadata"), "{damage}: {err}");
        assert_eq!((listing("containers"), listing("snapshots"), listing("content/blobs/sha256")), before, "{damage}");
        assert!(std::path::Path::new(&format!("/proc/{shim}")).exists(), "{damage}: the running container's shim");
    }
    // Explicitly: a new database, and still nothing deleted.
    a.extra_args = vec!["--reinit-metadata".into()];
    a.spawn();
    assert_eq!((listing("containers"), listing("snapshots"), listing("content/blobs/sha256")), before);
    assert!(std::path::Path::new(&format!("/proc/{shim}")).exists());
    assert!(a.ok(&["ps", "-aq"]).trim().is_empty());
    // A load into it does not collide with the snapshots kept on disk.
    a.load_fixture("again/busybox:1");
    let r = a.ctl(&["run", "--rm", "again/busybox:1", "echo", "fresh"]);
    assert_eq!(r.stdout, "fresh\n", "{r:?}");
    // And a restart of that database keeps it so.
    a.extra_args.clear();
    a.restart();
    let after = listing("snapshots");
    assert!(before.1.iter().all(|s| after.contains(s)), "{before:?} vs {after:?}");
    // The orphaned container is the operator's to stop now.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim), nix::sys::signal::SIGKILL);
    for cg in Agent::cgroups_of(&id) {
        let _ = std::fs::remove_dir(cg);
    }
}

/// Unmounts a mount the test made, whatever happens.
struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A container that fills the disk berth's root is on does not lose its
/// exit status (the space was set aside at its start), and what its log
/// could not take is said, not silently lost.
#[test]
fn a_full_disk_loses_no_exit_status() {
    need_root!();
    let mut a = Agent::start();
    a.terminate();
    // berth's root on a small filesystem of its own.
    nix::mount::mount(Some("tmpfs"), &a.root, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=48m,mode=0700"))
        .expect("mount tmpfs");
    let _unmount = Unmount(a.root.clone());
    a.spawn();
    a.load_fixture(IMG);
    let script = "echo before-full; dd if=/dev/zero of=/fill bs=1M 2>/dev/null; \
                  i=0; while [ $i -lt 2000 ]; do echo lost-line-$i; i=$((i+1)); done; exit 7";
    let r = a.ctl(&["run", "--name", "filler", IMG, "sh", "-c", script]);
    assert_eq!(r.code, 7, "{r:?}");
    let id = a.id_of("filler");
    let inspect = a.ok(&["inspect", "filler"]);
    assert!(inspect.contains("\"ExitCode\": 7"), "{inspect}");
    let ps = a.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (7)"), "{ps}");
    // Room again: the log has what came before, and says what it dropped
    // (in the log, or where the log could not say it, in the state).
    std::fs::remove_file(a.root.join("containers").join(&id).join("upper/fill")).unwrap();
    let logs = a.ctl(&["logs", "filler"]);
    let inspect = a.ok(&["inspect", "filler"]);
    assert!(logs.stdout.contains("before-full"), "{logs:?}");
    let told = logs.stderr.contains("bytes of output dropped") || inspect.contains("bytes of output dropped");
    assert!(told, "{logs:?} {inspect}");
    assert!(!logs.stdout.lines().any(|l| l.starts_with("lost-line") && !l.ends_with(char::is_numeric)), "{logs:?}");
    a.ok(&["rm", "filler"]);
    a.terminate();
}

/// A start that fails keeps the shim's diagnostics (its `shim.log`) until
/// the container is removed.
#[test]
fn a_failed_start_keeps_the_shims_log() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let r = a.ctl(&["run", "--name", "broken", IMG, "/no/such/binary"]);
    assert_eq!(r.code, 127, "{r:?}");
    let id = a.id_of("broken");
    let log = a.state.join(&id).join("shim.log");
    assert!(log.exists(), "{} is gone", log.display());
    assert!(!a.state.join(&id).join("shim.sock").exists());
    a.ok(&["rm", "broken"]);
    assert!(!a.state.join(&id).exists());
}
