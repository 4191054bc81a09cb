//! Container cgroups, berthd's business (DESIGN.md): `berth/<id>` is created
//! before the start, the container init joins it itself (it writes `0` into
//! the files listed in the spec, see `join_files`), and berthd removes it after
//! the exit. v1 and v2 both go through `cgroups-rs`; the few files it has no
//! reader for (`memory.events`, `memory.oom_control`) are read directly.
//!
//! Every path starts from the driver's hierarchy: the host's (found in
//! `/proc/self/mountinfo` for v1, `/sys/fs/cgroup` for v2), or a directory
//! laid out as the kernel lays out cgroupfs ([`CgroupDriver::at`]), so what
//! the driver reads and writes can be tested against fixture trees of
//! either version on any host (`tests.rs`).
use std::path::{Path, PathBuf};
use std::time::Duration;

use cgroups_rs::fs::hierarchies;
use cgroups_rs::fs::Cgroup;

use crate::error::{AgentError, Result};

pub mod devices;
mod fixture;
pub mod limits;
pub mod stats;
#[cfg(test)]
mod tests;

pub use fixture::FixtureHierarchy;
pub use limits::{DeviceRate, Limits};
pub use stats::Usage;

/// Where the hierarchy is.
#[derive(Clone, Debug)]
enum Hierarchy {
    /// The host's, as `cgroups-rs` finds it.
    Host,
    /// A tree rooted elsewhere (`CgroupDriver::at`).
    At(FixtureHierarchy),
}

/// Which cgroup hierarchy this host has, and where containers go in it.
#[derive(Clone, Debug)]
pub struct CgroupDriver {
    v2: bool,
    hierarchy: Hierarchy,
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
        Self {
            v2: hierarchies::is_cgroup2_unified_mode(),
            hierarchy: Hierarchy::Host,
            parent: parent.trim_matches('/').to_owned(),
        }
    }

    /// A hierarchy rooted at `root` instead of the host's: for v2 the
    /// unified tree (`root/cgroup.controllers`, ...); for v1 one directory
    /// per controller (`root/memory`, `root/pids`, ...). Containers go
    /// under `parent`.
    pub fn at(root: &Path, v2: bool, parent: &str) -> Self {
        Self {
            v2,
            hierarchy: Hierarchy::At(FixtureHierarchy::new(root, v2)),
            parent: parent.trim_matches('/').to_owned(),
        }
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

    fn hierarchy(&self) -> Box<dyn cgroups_rs::fs::Hierarchy> {
        match &self.hierarchy {
            Hierarchy::Host => hierarchies::auto(),
            Hierarchy::At(h) => Box::new(h.clone()),
        }
    }

    /// The root of the v2 tree (meaningless on v1).
    fn unified_root(&self) -> PathBuf {
        match &self.hierarchy {
            Hierarchy::Host => PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT),
            Hierarchy::At(h) => h.root_dir().to_path_buf(),
        }
    }

    /// The container's directory in the v2 tree.
    fn unified_dir(&self, id: &str) -> PathBuf {
        self.unified_root().join(self.path_of(id))
    }

    fn load(&self, id: &str) -> Cgroup {
        Cgroup::load(self.hierarchy(), self.path_of(id))
    }

    /// The container's directory in the v1 `controller` (`devices`,
    /// `memory`, `freezer`), if the host has that controller.
    fn v1_dir(&self, id: &str, controller: &str) -> Option<PathBuf> {
        self.load(id)
            .subsystems()
            .iter()
            .find(|s| s.controller_name() == controller)
            .map(|s| s.to_controller().path().to_path_buf())
    }

    fn err(&self, id: &str, e: impl std::fmt::Display) -> AgentError {
        AgentError::Cgroup { path: self.path_of(id), message: e.to_string() }
    }

    /// Creates the container's cgroup, confines its devices, and returns
    /// the files its init writes `0` into to join it.
    pub fn create(&self, id: &str) -> Result<Vec<PathBuf>> {
        Cgroup::new(self.hierarchy(), self.path_of(id)).map_err(|e| self.err(id, e))?;
        self.restrict_devices(id)?;
        Ok(self.join_files(id))
    }

    /// Docker's device policy (`devices.rs`), before any process joins: v1
    /// through the devices controller's files, v2 through a device program.
    /// A host without either cannot confine devices: the start fails rather
    /// than run a container that can open the host's disks.
    fn restrict_devices(&self, id: &str) -> Result<()> {
        if self.v2 {
            return devices::apply_v2(&self.unified_dir(id)).map_err(|e| self.err(id, e));
        }
        let dir = self
            .v1_dir(id, "devices")
            .ok_or_else(|| self.err(id, "no devices controller: cannot confine the container's devices"))?;
        devices::apply_v1(&dir).map_err(|e| self.err(id, format!("{}: {e}", dir.display())))
    }

    /// The files the init writes `0` into to join the cgroup.
    ///
    /// On v1 the init joins through `tasks`, not `cgroup.procs`: moving the
    /// calling thread (`0`) of a single-threaded process needs no
    /// threadgroup lock, while a `cgroup.procs` write takes
    /// `cgroup_threadgroup_rwsem` for writing and, when it is idle, waits an
    /// RCU grace period (12-20 ms measured here, most of a container start).
    /// The init is single-threaded (forked from the one-threaded shim), so
    /// moving its thread moves the process.
    pub(crate) fn join_files(&self, id: &str) -> Vec<PathBuf> {
        if self.v2 {
            return vec![self.unified_dir(id).join("cgroup.procs")];
        }
        let cg = self.load(id);
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
            // A frozen (paused) process dies only once thawed.
            let _ = self.thaw(id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(cgroup = %self.path_of(id), "processes survive SIGKILL");
    }

    /// Whether the kernel's OOM killer killed anything in the cgroup: v2's
    /// `memory.events`, v1's `memory.oom_control`, both with an `oom_kill N`
    /// line.
    pub fn oom_killed(&self, id: &str) -> bool {
        let dir = if self.v2 { Some(self.unified_dir(id)) } else { self.v1_dir(id, "memory") };
        dir.is_some_and(|d| berth_contract::exit::cgroup_oom_killed(&d))
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
            let f = self.unified_dir(id).join("cgroup.freeze");
            return if f.exists() {
                Ok((f, "1"))
            } else {
                Err(self.err(id, "no cgroup.freeze: is the container running?"))
            };
        }
        self.v1_dir(id, "freezer")
            .map(|d| d.join("freezer.state"))
            .filter(|f| f.exists())
            .map(|f| (f, "FROZEN"))
            .ok_or_else(|| self.err(id, "no freezer.state: the freezer controller is not mounted"))
    }

    fn is_frozen(&self, id: &str, file: &Path) -> bool {
        if self.v2 {
            let events = self.unified_dir(id).join("cgroup.events");
            return std::fs::read_to_string(events).is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"));
        }
        std::fs::read_to_string(file).is_ok_and(|t| t.trim() == "FROZEN")
    }

    /// Whether the cgroup directory exists (in any hierarchy).
    pub fn exists(&self, id: &str) -> bool {
        self.load(id).exists()
    }
}
