//! The real `berth-shim` binary, as root, on real bundles: an overlay of a
//! lower directory holding Debian's static busybox, in real namespaces.
//! Each test builds its own bundle under /tmp and removes it (and kills a
//! shim still running) when it ends, pass or fail.
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_contract::log as logfmt;
use berth_contract::{ContainerPaths, ExitStatus};
use berth_proto::frame::{read_frame, write_frame};
use berth_proto::shim::{request::Kind, KillRequest, Request, Response, ShutdownRequest, StateRequest, WaitRequest};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder, Mount, MountBuilder, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

const APPLETS: &[&str] = &["sh", "echo", "cat", "hostname", "ls", "sleep", "id", "true", "false", "touch", "mkdir"];
const HOSTNAME: &str = "berth-test";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A bundle, a state dir and a lower dir under one temp dir, removed on drop.
struct Bundle {
    base: PathBuf,
    id: String,
    lower: PathBuf,
    paths: ContainerPaths,
    annotations: HashMap<String, String>,
    cgroup: Option<PathBuf>,
    /// The init's host pid once started, for the drop guard.
    init: std::cell::Cell<Option<i32>>,
}

impl Bundle {
    fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        // Short: shim.sock's path must fit in sun_path (108 bytes).
        let base = PathBuf::from(format!("/tmp/bst-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let id = format!("{:064x}", (std::process::id() as u128) << 32 | n as u128);
        let lower = base.join("lower");
        let paths = ContainerPaths::from_dirs(base.join("c").join(&id), base.join("s").join(&id));
        fs::create_dir_all(lower.join("bin")).unwrap();
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::copy("/bin/busybox", lower.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            symlink("busybox", lower.join("bin").join(applet)).unwrap();
        }
        for dir in [paths.upper(), paths.work(), paths.rootfs()] {
            fs::create_dir_all(dir).unwrap();
        }
        let annotations = HashMap::from([
            ("berth.rootfs.lowerdir".to_string(), lower.display().to_string()),
            ("berth.rootfs.upperdir".to_string(), paths.upper().display().to_string()),
            ("berth.rootfs.workdir".to_string(), paths.work().display().to_string()),
        ]);
        Self { base, id, lower, paths, annotations, cgroup: None, init: Default::default() }
    }

    /// Writes config.json: Docker's defaults, running `args`.
    fn write_spec(&self, args: &[&str]) {
        fs::write(self.paths.config_file(), serde_json::to_vec_pretty(&self.spec(args)).unwrap()).unwrap();
    }

    fn spec(&self, args: &[&str]) -> Spec {
        let caps: std::collections::HashSet<Capability> =
            berth_contract::defaults::DEFAULT_CAPABILITIES.into_iter().collect();
        let process = ProcessBuilder::default()
            .terminal(false)
            .user(UserBuilder::default().uid(0u32).gid(0u32).build().unwrap())
            .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .env(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()])
            .cwd("/")
            .capabilities(
                LinuxCapabilitiesBuilder::default()
                    .bounding(caps.clone())
                    .effective(caps.clone())
                    .permitted(caps)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let namespaces = berth_contract::defaults::DEFAULT_NAMESPACES
            .into_iter()
            .map(|t| LinuxNamespaceBuilder::default().typ(t).build().unwrap())
            .collect::<Vec<_>>();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let linux = LinuxBuilder::default()
            .namespaces(namespaces)
            .masked_paths(strings(&[
                "/proc/asound",
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/timer_list",
                "/proc/scsi",
                "/sys/firmware",
            ]))
            .readonly_paths(strings(&["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]))
            .build()
            .unwrap();
        SpecBuilder::default()
            .version("1.2.0")
            .root(RootBuilder::default().path("rootfs").readonly(false).build().unwrap())
            .hostname(HOSTNAME)
            .process(process)
            .mounts(docker_mounts())
            .linux(linux)
            .annotations(self.annotations.clone())
            .build()
            .unwrap()
    }

    /// Runs `berth-shim start`; returns (code, stdout, stderr). Fails the
    /// test if the foreground does not finish (a daemon holding its stdio
    /// open would make berthd hang the same way).
    fn start(&self) -> (i32, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth-shim"))
            .arg("start")
            .arg("--id")
            .arg(&self.id)
            .arg("--bundle")
            .arg(self.paths.dir())
            .arg("--state")
            .arg(self.paths.state_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let (mut o, mut e) = (String::new(), String::new());
            let _ = out.read_to_string(&mut o);
            let _ = err.read_to_string(&mut e);
            let _ = tx.send((o, e));
        });
        let (stdout, stderr) =
            rx.recv_timeout(Duration::from_secs(20)).expect("berth-shim start did not close its stdout and stderr");
        let code = child.wait().unwrap().code().unwrap_or(-1);
        (code, stdout, stderr)
    }

    /// Starts and expects success; returns the init's host pid.
    fn start_ok(&self) -> i32 {
        let (code, stdout, stderr) = self.start();
        assert_eq!(code, 0, "stderr: {stderr}");
        assert!(stdout.ends_with('\n') && stdout.lines().count() == 1, "{stdout:?}");
        let pid = stdout.trim().parse().unwrap();
        self.init.set(Some(pid));
        pid
    }

    /// Polls for exit.json.
    fn wait_exit(&self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = ExitStatus::read(&self.paths.exit_file()).unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit.json");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the shim has removed its socket and pid file.
    fn wait_gone(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.paths.shim_socket().exists() || self.paths.shim_pid().exists() {
            assert!(Instant::now() < deadline, "shim.sock or shim.pid left behind");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// (stream, content) of every record of container.log; checks the format.
    fn log(&self) -> Vec<(String, String)> {
        let text = fs::read(self.paths.log_file()).unwrap();
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let r = logfmt::decode(l).expect("malformed log line");
                assert!(!r.partial);
                (r.stream.to_string(), String::from_utf8(r.content.to_vec()).unwrap())
            })
            .collect()
    }

    fn lines(&self, stream: &str) -> Vec<String> {
        self.log().into_iter().filter(|(s, _)| s == stream).map(|(_, c)| c).collect()
    }

    fn rpc(&self, kind: Kind) -> Response {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let socket = self.paths.shim_socket();
        rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(20), async move {
                let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
                write_frame(&mut s, &Request { kind: Some(kind) }).await.unwrap();
                read_frame::<_, Response>(&mut s).await.unwrap().expect("no response")
            })
            .await
            .expect("no response in time")
        })
    }

    /// Whether a host mount refers to this bundle (it must never).
    fn mounted_on_host(&self) -> bool {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        mountinfo.contains(self.base.to_str().unwrap())
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // A failed test may leave the container running: its init first
        // (SIGKILL from the parent namespace ends the whole pid namespace),
        // then the shim.
        if let (Some(pid), true) = (self.init.get(), self.paths.shim_pid().exists()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.paths.shim_pid().exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Ok(pid) = fs::read_to_string(self.paths.shim_pid()) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        if let Some(cg) = &self.cgroup {
            let deadline = Instant::now() + Duration::from_secs(5);
            while fs::remove_dir(cg).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// (fd, target) of every open descriptor of `pid`.
fn fds(pid: i32) -> Vec<(String, String)> {
    let mut out: Vec<_> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            let target = fd_target(pid, &n);
            (n, target)
        })
        .collect();
    out.sort();
    out
}

fn fd_target(pid: i32, fd: &str) -> String {
    fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap().display().to_string()
}

fn docker_mounts() -> Vec<Mount> {
    let m = |dest: &str, typ: &str, source: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    };
    vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        m("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        m("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        m("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]),
        m("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        m("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
    ]
}

#[test]
fn runs_a_container_and_records_its_exit() {
    let b = Bundle::new();
    b.write_spec(&["sh", "-c", "echo out; echo err >&2; echo $$; hostname; ls /dev/null /dev/zero /dev/fd/; exit 3"]);
    let pid = b.start_ok();
    assert!(pid > 1);
    let status = b.wait_exit();
    assert_eq!((status.code, status.signal, status.oom_killed), (3, None, false));
    assert!(status.finished_at > 0);
    b.wait_gone();
    assert_eq!(b.lines("stderr"), ["err"]);
    let out = b.lines("stdout");
    assert_eq!(out[..3], ["out", "1", HOSTNAME], "{out:?}");
    assert!(out.contains(&"/dev/null".to_string()) && out.contains(&"/dev/zero".to_string()), "{out:?}");
    assert!(!b.mounted_on_host());
}

#[test]
fn writes_land_in_the_upper_dir() {
    let b = Bundle::new();
    b.write_spec(&["sh", "-c", "echo hi > /made-here && mkdir -p /d && touch /d/f && cat /made-here"]);
    b.start_ok();
    assert_eq!(b.wait_exit().code, 0);
    assert_eq!(fs::read_to_string(b.paths.upper().join("made-here")).unwrap(), "hi\n");
    assert!(b.paths.upper().join("d/f").is_file());
    assert!(!b.lower.join("made-here").exists() && !b.lower.join("d").exists());
    // The rootfs mount point itself stayed empty: the overlay was never on the host.
    assert_eq!(fs::read_dir(b.paths.rootfs()).unwrap().count(), 0);
    assert_eq!(b.lines("stdout"), ["hi"]);
}

#[test]
fn start_failures_have_docker_codes_and_messages() {
    // (args, annotation, exit code, stderr)
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, i32, &'a str);
    let cases: &[Case] = &[
        (&["nope"], None, 127, "exec: \"nope\": executable file not found in $PATH"),
        (&["script"], None, 127, "exec: \"script\": no such file or directory"),
        (&["/bin/noexec"], None, 126, "exec: \"/bin/noexec\": permission denied"),
        (&["/bin"], None, 126, "exec: \"/bin\": is a directory"),
        (&["id"], Some(("berth.user", "ghost")), 126, "unable to find user ghost: no matching entries in passwd file"),
        (&["id"], Some(("berth.rootfs.lowerdir", "/nonexistent/berth/lower")), 1, "mount overlay on "),
    ];
    for (args, annotation, want_code, want) in cases {
        let mut b = Bundle::new();
        fs::write(b.lower.join("bin/script"), "#!/nonexistent/interpreter\necho hi\n").unwrap();
        fs::set_permissions(b.lower.join("bin/script"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(b.lower.join("bin/noexec"), "data").unwrap();
        fs::write(b.lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        if let Some((k, v)) = annotation {
            b.annotations.insert(k.to_string(), v.to_string());
        }
        b.write_spec(args);
        let (code, stdout, stderr) = b.start();
        assert_eq!(code, *want_code, "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
        if want.starts_with("mount overlay") {
            let rootfs = b.paths.rootfs();
            assert_eq!(stderr.trim(), format!("mount overlay on {}: No such file or directory", rootfs.display()));
        }
        assert!(!b.paths.exit_file().exists(), "{args:?}: exit.json written");
        assert!(!b.paths.shim_socket().exists() && !b.paths.shim_pid().exists(), "{args:?}");
        assert!(!b.mounted_on_host());
    }
}

#[test]
fn kill_through_the_socket() {
    let b = Bundle::new();
    b.write_spec(&["sleep", "100"]);
    let pid = b.start_ok();
    // Running, and the overlay exists only in the container's namespace.
    assert!(!b.mounted_on_host());
    let mode = fs::metadata(b.paths.shim_socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let state = b.rpc(Kind::State(StateRequest {}));
    assert_eq!(state.error, "");
    let state = state.state.unwrap();
    assert_eq!((state.pid, state.running, state.exit), (pid as u32, true, None));
    // The init is PID 1 of its own pid namespace, child of the shim.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.split_whitespace().last() == Some("1"), "{nspid}");
    let shim_pid = fs::read_to_string(b.paths.shim_pid()).unwrap().trim().to_string();
    assert!(status.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["PPid:", &shim_pid]), "{status}");

    // The container holds its stdio and nothing else of the shim's.
    assert_eq!(fds(pid), ["0", "1", "2"].map(|n| (n.to_string(), fd_target(pid, n))).to_vec());
    for n in ["1", "2"] {
        assert!(fd_target(pid, n).starts_with("pipe:"), "{n}");
    }
    // The daemon let the foreground's stdio go: /dev/null and shim.log.
    let shim: i32 = shim_pid.parse().unwrap();
    assert_eq!(fd_target(shim, "0"), "/dev/null");
    assert_eq!(fd_target(shim, "1"), "/dev/null");
    assert_eq!(fd_target(shim, "2"), b.paths.shim_log().display().to_string());

    let killed = b.rpc(Kind::Kill(KillRequest { signal: 9, all: false }));
    assert_eq!(killed.error, "");
    let waited = b.rpc(Kind::Wait(WaitRequest {}));
    assert_eq!(waited.error, "");
    let state = waited.state.unwrap();
    assert!(!state.running);
    let exit = state.exit.unwrap();
    assert_eq!((exit.code, exit.signal), (137, 9));
    let status = ExitStatus::read(&b.paths.exit_file()).unwrap().unwrap();
    assert_eq!((status.code, status.signal), (137, Some(9)));
    assert_eq!(status.finished_at, exit.finished_at);
    b.wait_gone();
    assert!(!b.mounted_on_host());
}

#[test]
fn shutdown_kills_and_reports_then_the_shim_goes() {
    let b = Bundle::new();
    b.write_spec(&["sleep", "100"]);
    fs::write(b.paths.exit_file(), "{\"code\":5,\"finished_at\":1}").unwrap();
    b.start_ok();
    // The earlier run's status is gone: it is not this run's.
    assert!(!b.paths.exit_file().exists());
    // A second start while the shim lives is refused and touches nothing.
    let (code, _, stderr) = b.start();
    assert_eq!(code, 1);
    assert!(stderr.starts_with("a shim is already running for this container"), "{stderr}");
    assert!(b.paths.shim_socket().exists() && b.paths.shim_pid().exists());
    let shim: i32 = fs::read_to_string(b.paths.shim_pid()).unwrap().trim().parse().unwrap();

    let done = b.rpc(Kind::Shutdown(ShutdownRequest {}));
    assert_eq!(done.error, "");
    let exit = done.state.unwrap().exit.unwrap();
    assert_eq!((exit.code, exit.signal), (137, 9));
    assert_eq!(ExitStatus::read(&b.paths.exit_file()).unwrap().unwrap().code, 137);
    b.wait_gone();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Gone, or a zombie waiting for whichever process adopted it.
    let exited = || match fs::read_to_string(format!("/proc/{shim}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'),
    };
    while !exited() {
        assert!(Instant::now() < deadline, "the shim did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn user_and_home_from_the_container_files() {
    let mut b = Bundle::new();
    fs::write(b.lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nguest:x:1000:1000::/home/guest:/bin/sh\n")
        .unwrap();
    fs::write(b.lower.join("etc/group"), "root:x:0:\nguest:x:1000:\naudio:x:29:guest\n").unwrap();
    b.annotations.insert("berth.user".into(), "guest".into());
    b.write_spec(&["sh", "-c", "id; echo $HOME; echo to-stdout > /dev/stdout"]);
    b.start_ok();
    assert_eq!(b.wait_exit().code, 0);
    let out = b.lines("stdout");
    assert!(out[0].starts_with("uid=1000(guest) gid=1000(guest)") && out[0].contains("29(audio)"), "{out:?}");
    assert_eq!(out[1..], ["/home/guest", "to-stdout"]);
}

#[test]
fn joins_its_cgroup_before_exec() {
    let mut b = Bundle::new();
    let cgroup = PathBuf::from(format!("/sys/fs/cgroup/pids/berth-shim-test-{}", &b.id[48..]));
    fs::create_dir_all(&cgroup).unwrap();
    b.cgroup = Some(cgroup.clone());
    let procs = cgroup.join("cgroup.procs");
    b.annotations.insert("berth.cgroup.join".into(), serde_json::to_string(&[&procs]).unwrap());
    b.write_spec(&["sh", "-c", "cat /proc/self/cgroup; exec sleep 100"]);
    let pid = b.start_ok();
    assert!(fs::read_to_string(&procs).unwrap().lines().any(|l| l == pid.to_string()));
    let host_view = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let name = cgroup.file_name().unwrap().to_str().unwrap();
    assert!(host_view.lines().any(|l| l.ends_with(&format!("pids:/{name}"))), "{host_view}");
    // Inside, the cgroup namespace is rooted at the container's cgroup.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.lines("stdout").iter().any(|l| l.contains(":pids:")) {
        assert!(Instant::now() < deadline, "no output");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(b.lines("stdout").iter().any(|l| l.ends_with(":pids:/")), "{:?}", b.lines("stdout"));
    // PID 1 of a pid namespace ignores signals it has no handler for
    // (pid_namespaces(7)), SIGTERM included: SIGKILL it, and every member.
    assert_eq!(b.rpc(Kind::Kill(KillRequest { signal: 9, all: true })).error, "");
    let status = b.wait_exit();
    assert_eq!((status.code, status.signal), (137, Some(9)));
    b.wait_gone();
}

#[test]
fn long_and_unterminated_output_becomes_partial_records() {
    let b = Bundle::new();
    // 32 KiB on one line (two records of 16 KiB, the first partial), then
    // "tail" with no newline.
    b.write_spec(&["sh", "-c", "i=0; s=x; while [ $i -lt 14 ]; do s=$s$s; i=$((i+1)); done; echo $s$s; printf tail"]);
    b.start_ok();
    assert_eq!(b.wait_exit().code, 0);
    let text = fs::read(b.paths.log_file()).unwrap();
    let records: Vec<_> = text
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let r = logfmt::decode(l).unwrap();
            (r.partial, r.content.len(), r.content.to_vec())
        })
        .collect();
    assert_eq!(records.len(), 3, "{:?}", records.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>());
    assert_eq!((records[0].0, records[0].1), (true, 16 * 1024));
    assert_eq!((records[1].0, records[1].1), (false, 2 * 16384 - 16 * 1024));
    assert_eq!((records[2].0, &records[2].2[..]), (true, &b"tail"[..]));
}

#[test]
fn bad_command_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_berth-shim")).args(["start", "--id", "xyz"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("invalid container id \"xyz\""));
}
