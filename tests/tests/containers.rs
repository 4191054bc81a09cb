//! Containers end to end: real berthd, real shims, real namespaces and
//! overlayfs, images made by the fixtures from Debian's busybox-static.
use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

#[test]
fn seed_scenario_writes_stay_in_their_container() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let images_before = a.ok(&["images"]);

    // A container writes a file and exits.
    let r = a.ctl(&[
        "run",
        "--name",
        "writer",
        IMG,
        "sh",
        "-c",
        "echo 'This is a really important file!!!!' > /foo; cat /foo",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "This is a really important file!!!!\n");

    // A second container from the same image does not see it.
    let r = a.ctl(&["run", "--name", "reader", IMG, "cat", "/foo"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("No such file") || r.stderr.contains("No such file"), "{r:?}");

    // info counts them; the socket is 0660.
    let info = a.ok(&["info"]);
    for want in ["Containers: 2", "Stopped: 2", "Images: 1", "Storage Driver: overlayfs", "Cgroup Version: "] {
        assert!(info.contains(want), "{want} in {info}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&a.socket).unwrap().permissions().mode() & 0o777, 0o660);

    // ps -a lists both as exited with their codes.
    let ps = a.ok(&["ps", "-a"]);
    let line =
        |name: &str| ps.lines().find(|l| l.ends_with(name)).unwrap_or_else(|| panic!("{name} in {ps}")).to_owned();
    assert!(line("writer").contains("Exited (0)"), "{ps}");
    assert!(line("reader").contains("Exited (1)"), "{ps}");
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    // Running-only listing is empty but for the header.
    assert_eq!(a.ok(&["ps"]).lines().count(), 1);

    // The image is unchanged: same listing, and a new container is clean.
    assert_eq!(a.ok(&["images"]), images_before);
    let r = a.ctl(&["run", "--rm", IMG, "ls", "/"]);
    assert!(!r.stdout.contains("foo"), "{r:?}");

    // The writer's change lives in its own writable layer.
    let id = a.id_of("writer");
    let upper = a.root.join("containers").join(&id).join("upper/foo");
    assert_eq!(std::fs::read_to_string(upper).unwrap(), "This is a really important file!!!!\n");
}

#[test]
fn layers_whiteouts_and_opaque_dirs_are_honoured() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", "cat /etc/motd /etc/layer3; ls /data; ls /gone 2>&1 || true"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.lines().take(3).collect::<Vec<_>>(), ["layer two", "3", "new"], "{r:?}");
    assert!(r.stdout.contains("No such file"), "{r:?}");
}

#[test]
fn containers_are_isolated_from_each_other() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let mut ids = Vec::new();
    for i in 0..5 {
        let name = format!("iso{i}");
        let id = a.ok(&["run", "-d", "--name", &name, IMG, "sh", "-c", &format!("echo {i} > /mine; sleep 60")]);
        ids.push(id.trim().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        let name = format!("iso{i}");
        // Each has its own hostname (the short ID), is PID 1 in its pid
        // namespace, and sees only its own files.
        let inspect: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", &name])).unwrap();
        assert_eq!(inspect[0]["State"]["Status"], "running");
        assert_eq!(inspect[0]["Config"]["Hostname"], &id[..12]);
        let pid = inspect[0]["State"]["Pid"].as_u64().unwrap();
        let root = format!("/proc/{pid}/root");
        assert_eq!(std::fs::read_to_string(format!("{root}/mine")).unwrap(), format!("{i}\n"));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
        let uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
        assert_ne!(uts, std::fs::read_link("/proc/self/ns/uts").unwrap());
        let net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        assert_ne!(net, std::fs::read_link("/proc/self/ns/net").unwrap());
        // In its cgroup.
        assert!(!Agent::cgroups_of(id).is_empty(), "no cgroup for {id}");
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(cg.contains(&format!("berth/{id}")), "{cg}");
    }
    let r = a.ctl(&["run", "--rm", "--hostname", "box", IMG, "sh", "-c", "hostname; echo $$; ls /mine 2>&1"]);
    assert!(r.stdout.starts_with("box\n1\n"), "{r:?}");
    assert!(r.stdout.contains("No such file"), "{r:?}");
    assert_eq!(a.ok(&["ps", "-q"]).lines().count(), 5);
    for i in 0..5 {
        a.ok(&["rm", "-f", &format!("iso{i}")]);
    }
    for id in &ids {
        assert!(Agent::cgroups_of(id).is_empty(), "cgroup left for {id}");
        assert!(!a.root.join("containers").join(id).exists());
    }
    assert_eq!(a.ok(&["ps", "-aq"]), "");
}

#[test]
fn process_settings_env_user_workdir_capabilities() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let r = a.ctl(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi there",
        "-w",
        "/tmp/work",
        "-u",
        "berth",
        IMG,
        "sh",
        "-c",
        "echo $GREETING; pwd; id -u; id -g; id -G; echo $HOME",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "hi there\n/tmp/work\n1000\n1000\n1000 2000\n/home/berth\n");
    // Docker's 14 capabilities: CapBnd = 0x00000000a80425fb.
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", "grep CapBnd /proc/self/status"]);
    assert_eq!(r.stdout.trim(), "CapBnd:\t00000000a80425fb", "{r:?}");
    // Masked and read-only paths, read-only /sys.
    let r = a.ctl(&[
        "run",
        "--rm",
        IMG,
        "sh",
        "-c",
        "cat /proc/kcore | head -c 1 | wc -c; touch /sys/x 2>&1; echo > /proc/sysrq-trigger 2>&1; ls /dev",
    ]);
    assert!(r.stdout.starts_with("0\n"), "{r:?}");
    assert!(r.stdout.contains("Read-only file system"), "{r:?}");
    for node in ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"] {
        assert!(r.stdout.contains(node), "/dev/{node} missing: {r:?}");
    }
    let r = a.ctl(&["run", "--rm", "--entrypoint", "echo", IMG, "from", "entrypoint"]);
    assert_eq!(r.stdout, "from entrypoint\n");
}

#[test]
fn errors_people_recognise() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);

    let r = a.ctl(&["run", "--rm", IMG, "nope"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("exec: \"nope\": executable file not found in $PATH"), "{r:?}");

    let r = a.ctl(&["run", "--rm", IMG, "/etc/motd"]);
    assert_eq!(r.code, 126, "{r:?}");
    assert!(r.stderr.contains("permission denied"), "{r:?}");

    let r = a.ctl(&["run", "--rm", "-u", "ghost", IMG, "true"]);
    assert_eq!(r.code, 126, "{r:?}");
    assert!(r.stderr.contains("unable to find user ghost"), "{r:?}");

    let r = a.ctl(&["run", "--rm", "berth-test/nosuch:latest", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("No such image: berth-test/nosuch:latest"), "{r:?}");

    let r = a.ctl(&["run", "--rm", "Berth/UPPER", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid reference format: repository name must be lowercase"), "{r:?}");

    for verb in [
        &["stop", "ghost"][..],
        &["rm", "ghost"],
        &["logs", "ghost"],
        &["start", "ghost"],
        &["inspect", "ghost"],
        &["wait", "ghost"],
    ] {
        let r = a.ctl(verb);
        assert_ne!(r.code, 0, "{verb:?}");
        assert!(r.stderr.contains("ghost"), "{verb:?}: {r:?}");
    }
    let r = a.ctl(&["stop", "ghost"]);
    assert!(r.stderr.contains("No such container: ghost"), "{r:?}");

    a.ok(&["run", "-d", "--name", "web", IMG, "sleep", "60"]);
    let id = a.id_of("web");
    let r = a.ctl(&["run", "-d", "--name", "web", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("\"/web\" is already in use by container") && r.stderr.contains(&id), "{r:?}");

    let r = a.ctl(&["rm", "web"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("container is running: stop the container before removing or force remove"), "{r:?}");

    let r = a.ctl(&["start", "web"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is already running"), "{r:?}");

    a.ok(&["kill", "web"]);
    let r = a.ctl(&["kill", "web"]);
    assert!(r.stderr.contains("container web is not running"), "{r:?}");
    a.ok(&["rm", "web"]);

    // A failed start leaves the container created, nothing running.
    let r = a.ctl(&["create", "--name", "broken", IMG, "nope"]);
    assert_eq!(r.code, 0);
    let r = a.ctl(&["start", "broken"]);
    assert_ne!(r.code, 0);
    let ps = a.ok(&["ps", "-a", "--filter", "name=broken"]);
    assert!(ps.contains("Created"), "{ps}");
}

#[test]
fn lifecycle_stop_kill_wait_logs() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);

    // create then start -a.
    let id = a.ok(&["create", "--name", "c1", IMG, "sh", "-c", "echo out; echo err >&2; exit 7"]).trim().to_owned();
    assert_eq!(id.len(), 64);
    assert!(a.ok(&["ps", "-a"]).contains("Created"));
    let r = a.ctl(&["start", "-a", "c1"]);
    assert_eq!(r.code, 7, "{r:?}");
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(a.ok(&["wait", "c1"]).trim(), "7");

    // logs, with timestamps and tail.
    let r = a.ctl(&["logs", "c1"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));
    let r = a.ctl(&["logs", "--tail", "1", "c1"]);
    assert_eq!(r.stdout.lines().count() + r.stderr.lines().count(), 1, "{r:?}");
    let r = a.ctl(&["logs", "-t", "c1"]);
    assert!(r.stdout.len() > 31 && r.stdout.ends_with("Z out\n"), "{r:?}");

    // stop: a process that handles SIGTERM ends on it.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        IMG,
        "sh",
        "-c",
        "trap 'exit 3' TERM; echo trapped; while true; do sleep 0.1; done",
    ]);
    // The signal is sent once the trap is set, not after a guessed wait.
    Agent::eventually("sleeper's trap is set", Duration::from_secs(10), || a.ok(&["logs", "sleeper"]) == "trapped\n");
    a.ok(&["stop", "-t", "5", "sleeper"]);
    assert_eq!(a.ok(&["wait", "sleeper"]).trim(), "3");
    // PID 1 without a TERM handler ignores it (the kernel protects a pid
    // namespace's init), so it is killed after the timeout: 137, as Docker.
    a.ok(&["run", "-d", "--name", "stubborn", IMG, "sleep", "100"]);
    a.ok(&["stop", "-t", "1", "stubborn"]);
    assert_eq!(a.ok(&["wait", "stubborn"]).trim(), "137");
    let ps = a.ok(&["ps", "-a", "--filter", "name=stubborn"]);
    assert!(ps.contains("Exited (137)"), "{ps}");

    // kill -s, and a restart of an exited container keeps its files.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "kk",
        IMG,
        "sh",
        "-c",
        "echo run >> /count; trap 'exit 9' HUP; echo trapped; while true; do sleep 0.1; done",
    ]);
    let trapped = |n: usize| {
        Agent::eventually(&format!("kk's trap is set ({n})"), Duration::from_secs(10), || {
            a.ok(&["logs", "kk"]).matches("trapped").count() == n
        })
    };
    trapped(1);
    a.ok(&["kill", "-s", "HUP", "kk"]);
    assert_eq!(a.ok(&["wait", "kk"]).trim(), "9");
    a.ok(&["start", "kk"]);
    trapped(2);
    a.ok(&["kill", "kk"]);
    assert_eq!(a.ok(&["wait", "kk"]).trim(), "137");
    let id = a.id_of("kk");
    assert_eq!(std::fs::read_to_string(a.root.join("containers").join(&id).join("upper/count")).unwrap(), "run\nrun\n");

    // logs -f follows until the exit.
    a.ok(&["run", "-d", "--name", "ticker", IMG, "sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.2; done"]);
    let r = a.ctl(&["logs", "-f", "ticker"]);
    assert_eq!(r.stdout, "tick 1\ntick 2\ntick 3\n");

    // --rm removes it; filters and JSON.
    let r = a.ctl(&["run", "--rm", "--name", "gone", IMG, "true"]);
    assert_eq!(r.code, 0);
    assert!(!a.ok(&["ps", "-a"]).contains("gone"));
    let json = a.ok(&["ps", "-a", "--format", "json", "--filter", "status=exited"]);
    let names: Vec<String> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Names"].as_str().unwrap().to_owned())
        .collect();
    for n in ["c1", "sleeper", "stubborn", "kk", "ticker"] {
        assert!(names.contains(&n.to_owned()), "{n} in {names:?}");
    }
    let anc = a.ok(&["ps", "-a", "-q", "--filter", &format!("ancestor={IMG}")]);
    assert_eq!(anc.lines().count(), 5);
    // A generated name looks like Docker's.
    let id = a.ok(&["create", IMG]).trim().to_owned();
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", &id[..8]])).unwrap();
    let name = v[0]["Name"].as_str().unwrap();
    assert!(name.starts_with('/') && name.contains('_'), "{name}");
}

/// A deep state directory puts `<state>/<64-hex id>/shim.sock` past the
/// 107 bytes a unix socket address holds; berth still binds and reaches it.
#[test]
fn long_state_paths_still_reach_the_shim() {
    need_root!();
    let deep = std::env::temp_dir().join("berth-long-paths").join("d".repeat(40));
    let a = Agent::start_in(&deep);
    assert!(a.state.join("f".repeat(64)).join("shim.sock").as_os_str().len() > 107);
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "deep", IMG, "sleep", "100"]);
    assert_eq!(a.ok(&["ps", "-q"]).lines().count(), 1);
    a.ok(&["kill", "deep"]);
    assert_eq!(a.ok(&["wait", "deep"]).trim(), "137");
    let r = a.ctl(&["run", "--rm", IMG, "echo", "ok"]);
    assert_eq!(r.stdout, "ok\n", "{r:?}");
}

#[test]
fn seccomp_default_profile_for_the_init_and_every_exec() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    // Mode 2 (filter), one filter, in the container's process...
    let status = a.ok(&["run", "--rm", IMG, "grep", "Seccomp", "/proc/self/status"]);
    assert!(status.contains("Seccomp:\t2\n"), "{status}");
    // ...which may not make namespaces, even a user namespace (which needs
    // no capability, so only the filter stops it) or mount anything.
    let r = a.ctl(&["run", "--rm", IMG, "unshare", "-U", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Operation not permitted"), "{r:?}");
    // What ordinary programs do still works: fork, threads of a shell
    // pipeline, chroot (a default capability), sockets, personality query.
    let out = a.ok(&[
        "run",
        "--rm",
        IMG,
        "sh",
        "-c",
        "echo a | cat; chroot / true && echo chroot-ok; nc -w 1 127.0.0.1 9 </dev/null 2>&1 | grep -c 'not permitted'; echo end",
    ]);
    assert_eq!(out, "a\nchroot-ok\n0\nend\n");
    // An exec'd process gets the same filter.
    a.ok(&["run", "-d", "--name", "s1", IMG, "sleep", "600"]);
    let status = a.ok(&["exec", "s1", "grep", "Seccomp", "/proc/self/status"]);
    assert!(status.contains("Seccomp:\t2\n"), "{status}");
    let r = a.ctl(&["exec", "s1", "unshare", "-U", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
    // The profile is in the container's spec, as other OCI tools read it.
    let id = a.id_of("s1");
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.root.join("containers").join(&id).join("config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO", "{}", spec["linux"]["seccomp"]);
    // berthd compiled it (once) for the shim: whole sock_filter records.
    let program = std::fs::read(a.root.join("containers").join(&id).join("seccomp.bpf")).unwrap();
    assert!(program.len() > 800 && program.len().is_multiple_of(8), "{} bytes", program.len());
}

/// `ps` answers its label and status filters, and `ps` without `-a` its
/// running containers, the same before and after berthd is killed and
/// started again, and after a container's state changes while it was down.
#[test]
fn ps_filters_by_label_and_status_across_a_restart() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "front", "-l", "tier=front", "-l", "team=x", IMG, "sleep", "100"]);
    a.ok(&["create", "--name", "back", "-l", "tier=back", IMG, "true"]);
    a.ok(&["run", "--name", "job", "-l", "team=x", IMG, "true"]);
    let names = |a: &Agent, args: &[&str]| -> Vec<String> {
        let args: Vec<&str> = [&["ps", "--format", "json"][..], args].concat();
        let mut v: Vec<String> = a
            .ok(&args)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Names"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let check = |a: &Agent| {
        assert_eq!(names(a, &[]), ["front"]);
        assert_eq!(names(a, &["-a"]), ["back", "front", "job"]);
        assert_eq!(names(a, &["-a", "--filter", "label=tier"]), ["back", "front"]);
        assert_eq!(names(a, &["-a", "--filter", "label=tier=back"]), ["back"]);
        assert_eq!(names(a, &["--filter", "label=team"]), ["front"], "without -a: running only");
        assert_eq!(names(a, &["-a", "--filter", "label=team", "--filter", "status=exited"]), ["job"]);
        assert_eq!(names(a, &["-a", "--filter", "label=team", "--filter", "label=tier"]), ["front"]);
        assert_eq!(names(a, &["--filter", "status=created"]), ["back"]);
        assert!(names(a, &["-a", "--filter", "label=tie"]).is_empty());
        assert!(names(a, &["-a", "--filter", "label=tier=fr"]).is_empty());
    };
    check(&a);
    a.kill9();
    a.spawn();
    check(&a);

    // An exit while berthd is down moves the container in the listing.
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "front"])).unwrap();
    let pid = v[0]["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 1, "{v}");
    a.kill9();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    a.spawn();
    Agent::eventually("front to be exited", Duration::from_secs(10), || names(&a, &[]).is_empty());
    assert_eq!(names(&a, &["-a", "--filter", "status=exited"]), ["front", "job"]);
    a.ok(&["rm", "back", "job", "front"]);
    assert!(names(&a, &["-a"]).is_empty());
    assert!(names(&a, &["-a", "--filter", "label=team"]).is_empty());
}

/// Docker's management forms (`container run`, `container logs`, `image
/// ls`, ...) are the same verbs as the top-level ones: same output, same
/// exit codes (125 when berthd refuses a `container run` or `create`).
#[test]
fn management_forms_answer_as_the_top_level_verbs() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let r = a.ctl(&["container", "run", "--name", "m1", IMG, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (3, "out\n", "err\n"), "{r:?}");
    assert_eq!(a.ok(&["container", "logs", "m1"]), a.ok(&["logs", "m1"]));
    // A process that ends at once still started before it finished.
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["container", "inspect", "m1"])).unwrap();
    let (started, finished) =
        (v[0]["State"]["StartedAt"].as_str().unwrap(), v[0]["State"]["FinishedAt"].as_str().unwrap());
    assert!(started <= finished, "started {started}, finished {finished}");
    let id = a.ok(&["container", "create", "--name", "m2", IMG, "sleep", "100"]).trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(a.ok(&["container", "start", "m2"]).trim(), "m2");
    assert_eq!(a.ok(&["container", "exec", "m2", "echo", "in"]), "in\n");
    a.ok(&["container", "cp", "m2:/etc/hostname", &a.root.join("..").join("hostname").display().to_string()]);
    assert_eq!(a.ok(&["container", "ls", "-q"]), a.ok(&["ps", "-q"]));
    assert_eq!(a.ok(&["container", "ps", "-aq"]), a.ok(&["ps", "-aq"]));
    assert_eq!(a.ok(&["image", "ls"]), a.ok(&["images"]));
    let r = a.ctl(&["container", "run", "no-such-image:1", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    let r = a.ctl(&["container", "create", "--name", "m2", IMG, "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("is already in use"), "{r:?}");
    let r = a.ctl(&["container", "run", IMG, "/no/such/binary"]);
    assert_eq!(r.code, 127, "{r:?}");
    let r = a.ctl(&["container", "stop", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr.trim(), "Error response from daemon: No such container: nope", "{r:?}");
    a.ok(&["container", "rm", "-f", "m1", "m2"]);
}

/// `start -a` is one `Run` stream of the existing container: the output of
/// this start only (not the log of earlier runs, as Docker), the exit code
/// also of an auto-remove container that is gone right after, and `wait`
/// on a container that is gone says so.
#[test]
fn start_attached_shows_this_run_and_its_code_even_when_removed() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let r = a.ctl(&["run", "--name", "again", IMG, "sh", "-c", "echo run-$$; exit 5"]);
    assert_eq!(r.code, 5, "{r:?}");
    let r = a.ctl(&["start", "-a", "again"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "only this run's line: {r:?}");
    assert_eq!(a.ok(&["logs", "again"]).lines().count(), 2, "the log keeps both runs");
    for i in 0..5 {
        let name = format!("gone{i}");
        a.ok(&["create", "--rm", "--name", &name, IMG, "sh", "-c", "echo bye; exit 4"]);
        let r = a.ctl(&["start", "-a", &name]);
        assert_eq!((r.code, r.stdout.as_str()), (4, "bye\n"), "{r:?}");
        Agent::eventually("the auto-remove", Duration::from_secs(10), || !a.ok(&["ps", "-a"]).contains(&name));
        let r = a.ctl(&["wait", &name]);
        assert_eq!(r.code, 1, "{r:?}");
        assert_eq!(r.stderr.trim(), format!("Error response from daemon: No such container: {name}"), "{r:?}");
    }
    let r = a.ctl(&["start", "-a", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    a.ok(&["rm", "again"]);
}
