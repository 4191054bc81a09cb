//! Container cgroups, berthd's business (DESIGN.md): `berth/<id>` is created
//! before the start, the container init joins it itself (it writes `0` into
//! the files listed in the spec, see `join_files`), and berthd removes it after
//! the exit. v1 and v2 both go through `cgroups-rs`; the few files it has no
//! reader for (`memory.events`, `memory.oom_control`) are read directly.
use std::path::PathBuf;
use std::time::Duration;

use cgroups_rs::fs::hierarchies;
use cgroups_rs::fs::Cgroup;

use crate::error::{AgentError, Result};

/// Which cgroup hierarchy this host has.
#[derive(Clone, Debug)]
pub struct CgroupDriver {
    v2: bool,
    /// Parent of every container cgroup, relative to each hierarchy's root.
    parent: String,
}

impl Default for CgroupDriver {
    fn default() -> Self {
        Self::detect("berth")
    }
}

impl CgroupDriver {
    /// Detects the host's hierarchy; containers go under `parent`.
    pub fn detect(parent: &str) -> Self {
        Self { v2: hierarchies::is_cgroup2_unified_mode(), parent: parent.trim_matches('/').to_owned() }
    }

    /// "1" or "2".
    pub fn version(&self) -> &'static str {
        if self.v2 {
            "2"
        } else {
            "1"
        }
    }

    /// `berth/<id>`.
    pub fn path_of(&self, id: &str) -> String {
        format!("{}/{id}", self.parent)
    }

    fn load(&self, id: &str) -> Cgroup {
        Cgroup::load(hierarchies::auto(), self.path_of(id))
    }

    fn err(&self, id: &str, e: impl std::fmt::Display) -> AgentError {
        AgentError::Cgroup { path: self.path_of(id), message: e.to_string() }
    }

    /// Creates the container's cgroup and returns the files its init
    /// writes `0` into to join it.
    pub fn create(&self, id: &str) -> Result<Vec<PathBuf>> {
        let cg = Cgroup::new(hierarchies::auto(), self.path_of(id)).map_err(|e| self.err(id, e))?;
        self.restrict_devices(&cg, id)?;
        Ok(self.join_files(&cg, id))
    }

    /// Docker's device policy (`devices.rs`), before any process joins: v1
    /// through the devices controller's files, v2 through a device program.
    /// A host without either cannot confine devices: the start fails rather
    /// than run a container that can open the host's disks.
    fn restrict_devices(&self, cg: &Cgroup, id: &str) -> Result<()> {
        if cg.v2() {
            let dir = PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT).join(self.path_of(id));
            return super::devices::apply_v2(&dir).map_err(|e| self.err(id, e));
        }
        let dir = cg
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path().to_path_buf())
            .find(|p| p.join("devices.allow").exists())
            .ok_or_else(|| self.err(id, "no devices controller: cannot confine the container's devices"))?;
        super::devices::apply_v1(&dir).map_err(|e| self.err(id, format!("{}: {e}", dir.display())))
    }

    /// On v1 the init joins through `tasks`, not `cgroup.procs`: moving the
    /// calling thread (`0`) of a single-threaded process needs no
    /// threadgroup lock, while a `cgroup.procs` write takes
    /// `cgroup_threadgroup_rwsem` for writing and, when it is idle, waits an
    /// RCU grace period (12-20 ms measured here, most of a container start).
    /// The init is single-threaded (forked from the one-threaded shim), so
    /// moving its thread moves the process.
    fn join_files(&self, cg: &Cgroup, id: &str) -> Vec<PathBuf> {
        if cg.v2() {
            return vec![PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT).join(self.path_of(id)).join("cgroup.procs")];
        }
        let mut files: Vec<PathBuf> = cg.subsystems().iter().map(|s| s.to_controller().path().join("tasks")).collect();
        files.sort();
        files.dedup();
        files.retain(|f| f.parent().is_some_and(|d| d.exists()));
        files
    }

    /// Process IDs still in the container's cgroup.
    pub fn pids(&self, id: &str) -> Vec<u64> {
        let cg = self.load(id);
        if !cg.exists() {
            return Vec::new();
        }
        let mut pids: Vec<u64> = cg.procs().into_iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process left in the cgroup and waits (bounded) until
    /// none is left. Used when a shim is gone and its container is not.
    pub async fn kill_all(&self, id: &str) {
        for _ in 0..100 {
            let pids = self.pids(id);
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(cgroup = %self.path_of(id), "processes survive SIGKILL");
    }

    /// Whether the kernel's OOM killer killed anything in the cgroup.
    pub fn oom_killed(&self, id: &str) -> bool {
        let rel = self.path_of(id);
        let (file, key) = if self.v2 {
            (PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT).join(&rel).join("memory.events"), "oom_kill")
        } else {
            let cg = self.load(id);
            let Some(mem) = cg
                .subsystems()
                .iter()
                .map(|s| s.to_controller().path().to_path_buf())
                .find(|p| p.join("memory.oom_control").exists())
            else {
                return false;
            };
            (mem.join("memory.oom_control"), "oom_kill")
        };
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
                })
            })
            .is_some_and(|n| n > 0)
    }

    /// [`Self::remove`] on a blocking thread: its retries sleep.
    pub async fn remove_off_runtime(&self, id: &str) -> Result<()> {
        let (this, id) = (self.clone(), id.to_owned());
        crate::blocking::run(move || this.remove(&id)).await
    }

    /// Removes the cgroup; a missing one is fine. Blocks (it retries while
    /// the kernel still counts a dying task): from async code, call
    /// [`Self::remove_off_runtime`].
    pub fn remove(&self, id: &str) -> Result<()> {
        let cg = self.load(id);
        if !cg.exists() {
            return Ok(());
        }
        // rmdir fails with EBUSY for a moment after the last process died.
        let mut last = None;
        for _ in 0..50 {
            match cg.delete() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            if !cg.exists() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(self.err(id, last.map(|e| e.to_string()).unwrap_or_default()))
    }

    /// Freezes every process of the container (v1 `freezer.state` =
    /// `FROZEN`, v2 `cgroup.freeze` = `1`) and waits, bounded, until the
    /// kernel reports it frozen. On a timeout the cgroup is thawed again.
    /// Blocks: call it from a blocking task.
    pub fn freeze(&self, id: &str) -> Result<()> {
        let (file, on) = self.freezer_file(id)?;
        for _ in 0..1000 {
            // v1 may stay in FREEZING while a task sleeps in an odd place;
            // writing FROZEN again retries it (runc does the same).
            std::fs::write(&file, on).map_err(|e| self.err(id, format!("write {}: {e}", file.display())))?;
            if self.is_frozen(id, &file) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.thaw(id);
        Err(self.err(id, "the processes did not freeze within 5 seconds"))
    }

    /// Thaws the container's processes (a thawed cgroup stays thawed).
    pub fn thaw(&self, id: &str) -> Result<()> {
        let (file, _) = self.freezer_file(id)?;
        let off = if self.v2 { "0" } else { "THAWED" };
        std::fs::write(&file, off).map_err(|e| self.err(id, format!("write {}: {e}", file.display())))
    }

    /// The file that freezes the cgroup and the value that freezes it.
    fn freezer_file(&self, id: &str) -> Result<(PathBuf, &'static str)> {
        if self.v2 {
            let f = PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT).join(self.path_of(id)).join("cgroup.freeze");
            return if f.exists() {
                Ok((f, "1"))
            } else {
                Err(self.err(id, "no cgroup.freeze: is the container running?"))
            };
        }
        self.load(id)
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path().join("freezer.state"))
            .find(|f| f.exists())
            .map(|f| (f, "FROZEN"))
            .ok_or_else(|| self.err(id, "no freezer.state: the freezer controller is not mounted"))
    }

    fn is_frozen(&self, id: &str, file: &std::path::Path) -> bool {
        if self.v2 {
            let events = PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT).join(self.path_of(id)).join("cgroup.events");
            return std::fs::read_to_string(events).is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"));
        }
        std::fs::read_to_string(file).is_ok_and(|t| t.trim() == "FROZEN")
    }

    /// Whether the cgroup directory exists (in any hierarchy).
    pub fn exists(&self, id: &str) -> bool {
        self.load(id).exists()
    }
}
