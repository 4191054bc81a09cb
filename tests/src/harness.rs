//! A real berthd for one test: its own root, state dir and socket under a
//! temp dir, the real `berthd`, `berth-shim` and `berthctl` binaries from
//! this build, and cleanup on drop even when the test fails (containers
//! killed, shims and cgroups gone, nothing left mounted).
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures;

/// The directory holding this build's binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/<test> -> target/debug
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    for b in ["berthd", "berth-shim", "berthctl"] {
        assert!(
            dir.join(b).exists(),
            "{} missing: run `cargo build --workspace --bins` before the integration tests",
            dir.join(b).display()
        );
    }
    dir
}

/// Whether this process may run containers (root, overlayfs).
pub fn can_run_containers() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// One berthd and its directories.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    bins: PathBuf,
    child: Option<Child>,
    /// berthd's `--config` file, if any.
    pub config: Option<PathBuf>,
    /// The shim binary berthd is given.
    pub shim: PathBuf,
    /// More flags for berthd.
    pub extra_args: Vec<String>,
}

/// What a berthctl call gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Agent {
    /// Starts berthd on fresh directories and waits until it answers.
    pub fn start() -> Agent {
        let base = std::env::var_os("BERTH_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        Agent::start_in(&base)
    }

    /// Starts berthd with its directories under `base`.
    pub fn start_in(base: &Path) -> Agent {
        Agent::start_full(base, None)
    }

    /// Starts berthd with this text as its `--config` file (TOML).
    pub fn start_with_config(config: &str) -> Agent {
        let base = std::env::var_os("BERTH_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        Agent::start_full(&base, Some(config))
    }

    fn start_full(base: &Path, config: Option<&str>) -> Agent {
        std::fs::create_dir_all(base).expect("test base dir");
        let dir = tempfile::Builder::new().prefix("berth-it-").tempdir_in(base).expect("tempdir");
        let root = dir.path().join("root");
        let state = dir.path().join("state");
        let socket = dir.path().join("berthd.sock");
        let config = config.map(|text| {
            let path = dir.path().join("berthd.toml");
            std::fs::write(&path, text).expect("write berthd.toml");
            path
        });
        let bins = bin_dir();
        let shim = bins.join("berth-shim");
        let mut agent = Agent { root, state, socket, bins, child: None, dir, config, shim, extra_args: Vec::new() };
        agent.spawn();
        agent
    }

    /// Starts berthd with a copy of the shim binary of its own, for tests
    /// that attack the binary.
    pub fn start_with_shim_copy() -> Agent {
        let mut a = Agent::start();
        a.terminate();
        let copy = a.dir.path().join("berth-shim-copy");
        std::fs::copy(&a.shim, &copy).expect("copy the shim");
        a.shim = copy;
        a.spawn();
        a
    }

    /// berthctl's `DOCKER_CONFIG` directory (credentials), private to
    /// this agent.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker-config")
    }

    /// Starts berthd (again) on this agent's directories.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .expect("berthd log");
        let mut cmd = Command::new(self.bins.join("berthd"));
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd
            .arg("--root")
            .arg(&self.root)
            .arg("--state")
            .arg(&self.state)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--shim")
            .arg(&self.shim)
            .args(&self.extra_args)
            .env("BERTH_LOG", "info,berth_agent=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ctl(&["version"]).code == 0 {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!("berthd exited with {st}: {}", self.agent_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not answer: {}", self.agent_log());
    }

    /// berthd's own log, for failure messages.
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// kill -9 berthd.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM berthd and wait for it.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::SIGTERM);
            let _ = c.wait();
        }
    }

    /// Starts berthd again on the same directories.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bins.join("berthctl"));
        c.env("BERTH_SOCKET", &self.socket).env("DOCKER_CONFIG", self.docker_config()).args(args).stdin(Stdio::null());
        c
    }

    /// Runs berthctl and returns what it gave.
    pub fn ctl(&self, args: &[&str]) -> Run {
        Run::from(self.ctl_cmd(args).output().expect("run berthctl"))
    }

    /// Runs berthctl, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.ctl(args);
        assert_eq!(r.code, 0, "berthctl {args:?} failed: {r:?}\nagent log:\n{}", self.agent_log());
        r.stdout
    }

    /// Loads the three-layer fixture image as `name`, returns its info.
    pub fn load_fixture(&self, name: &str) -> fixtures::ImageInfo {
        let path = self.dir.path().join(format!("{}.tar", name.replace(['/', ':'], "_")));
        let info = fixtures::oci_layout_tar(&path, &fixtures::ImageSpec::new(name)).expect("fixture");
        self.ok(&["load", "-i", path.to_str().unwrap()]);
        info
    }

    /// The cgroup directories of a container that still exist.
    pub fn cgroups_of(id: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let p = e.path().join("berth").join(id);
                if p.exists() {
                    out.push(p);
                }
            }
        }
        let v2 = Path::new("/sys/fs/cgroup/berth").join(id);
        if v2.exists() {
            out.push(v2);
        }
        out
    }

    /// Host processes whose command line mentions `needle`.
    pub fn processes_with(needle: &str) -> Vec<i32> {
        let mut out = Vec::new();
        let me = std::process::id() as i32;
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            if pid == me {
                continue;
            }
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmd).contains(needle) {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// Host mounts whose mount point is under `dir`.
    pub fn mounts_under(dir: &Path) -> Vec<String> {
        let d = dir.display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
            .filter(|m| m.starts_with(&d))
            .collect()
    }

    /// The shim's pid from `<state>/<id>/shim.pid`.
    pub fn shim_pid(&self, id: &str) -> Option<i32> {
        std::fs::read_to_string(self.state.join(id).join("shim.pid")).ok()?.trim().parse().ok()
    }

    /// The full ID of a container by name.
    pub fn id_of(&self, name: &str) -> String {
        let out = self.ok(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
        v[0]["Id"].as_str().expect("Id").to_owned()
    }

    /// How many calls of `method` (`Containers/Logs`) berthd has answered
    /// (its per-RPC span's `answered` line, at debug). A streaming call is
    /// answered once its stream is set up: a `logs -f` is following, an
    /// `attach` queues what is typed for the container.
    pub fn answered(&self, method: &str) -> usize {
        let tag = format!("method=/berth.v1.{method}}}");
        self.agent_log().lines().filter(|l| l.contains(&tag) && l.contains(" answered ")).count()
    }

    /// Waits until berthd has answered `n` calls of `method` in all.
    pub fn wait_answered(&self, method: &str, n: usize) {
        Agent::eventually(&format!("berthd answered {n} {method} call(s)"), Duration::from_secs(20), || {
            self.answered(method) >= n
        });
    }

    /// Polls `f` until it is true or the time is up.
    pub fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("timed out waiting for: {what}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Everything this agent started, by its state dir on the shims'
        // command lines; then the cgroups of its containers.
        let ids: Vec<String> = std::fs::read_dir(self.root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if self.child.is_some() {
            let _ = self.ctl_cmd(&["rm", "-f"]).args(&ids).output();
        }
        self.kill9();
        for pid in Agent::processes_with(&self.state.display().to_string()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        for id in &ids {
            for cg in Agent::cgroups_of(id) {
                if let Ok(procs) = std::fs::read_to_string(cg.join("cgroup.procs")) {
                    for p in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
                let _ = std::fs::remove_dir(&cg);
            }
        }
        for m in Agent::mounts_under(self.dir.path()).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
