//! A cgroup hierarchy rooted at a directory of berthd's choosing, for
//! `CgroupDriver::at`: the same `cgroups-rs` controllers as on the host,
//! pointed at another tree. On a v2 tree the controllers are those that
//! `root/cgroup.controllers` lists (and the freezer, which v2 has built
//! in); on a v1 tree, each controller whose directory `root/<name>`
//! exists.
use std::path::{Path, PathBuf};

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::devices::DevicesController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, Hierarchy, Subsystem};

/// The v1 controllers berth uses, by their directory names.
const V1_CONTROLLERS: [&str; 8] = ["blkio", "memory", "pids", "cpuset", "cpuacct", "cpu", "devices", "freezer"];

#[derive(Clone, Debug)]
pub struct FixtureHierarchy {
    root: PathBuf,
    v2: bool,
}

impl FixtureHierarchy {
    pub fn new(root: &Path, v2: bool) -> Self {
        Self { root: root.to_path_buf(), v2 }
    }

    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    fn v2_subsystems(&self) -> Vec<Subsystem> {
        let listed = std::fs::read_to_string(self.root.join("cgroup.controllers")).unwrap_or_default();
        let root = || self.root.clone();
        let base = PathBuf::new;
        listed
            .split_whitespace()
            .chain(std::iter::once("freezer"))
            .filter_map(|name| {
                Some(match name {
                    "cpu" => Subsystem::Cpu(CpuController::new(root(), base(), true)),
                    "io" => Subsystem::BlkIo(BlkIoController::new(root(), base(), true)),
                    "cpuset" => Subsystem::CpuSet(CpuSetController::new(root(), base(), true)),
                    "memory" => Subsystem::Mem(MemController::new(root(), base(), true)),
                    "pids" => Subsystem::Pid(PidController::new(root(), base(), true)),
                    "freezer" => Subsystem::Freezer(FreezerController::new(root(), base(), true)),
                    _ => return None,
                })
            })
            .collect()
    }

    fn v1_subsystems(&self) -> Vec<Subsystem> {
        let base = || PathBuf::from("/");
        V1_CONTROLLERS
            .iter()
            .filter(|name| self.root.join(name).is_dir())
            .map(|name| {
                let point = self.root.join(name);
                match *name {
                    "blkio" => Subsystem::BlkIo(BlkIoController::new(point, base(), false)),
                    "memory" => Subsystem::Mem(MemController::new(point, base(), false)),
                    "pids" => Subsystem::Pid(PidController::new(point, base(), false)),
                    "cpuset" => Subsystem::CpuSet(CpuSetController::new(point, base(), false)),
                    "cpuacct" => Subsystem::CpuAcct(CpuAcctController::new(point, base())),
                    "cpu" => Subsystem::Cpu(CpuController::new(point, base(), false)),
                    "devices" => Subsystem::Devices(DevicesController::new(point, base())),
                    _ => Subsystem::Freezer(FreezerController::new(point, base(), false)),
                }
            })
            .collect()
    }
}

impl Hierarchy for FixtureHierarchy {
    fn subsystems(&self) -> Vec<Subsystem> {
        if self.v2 {
            self.v2_subsystems()
        } else {
            self.v1_subsystems()
        }
    }

    fn root(&self) -> PathBuf {
        self.root.clone()
    }

    fn root_control_group(&self) -> Cgroup {
        Cgroup::load(Box::new(self.clone()), "")
    }

    fn parent_control_group(&self, path: &str) -> Cgroup {
        let parent = Path::new(path).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        Cgroup::load(Box::new(self.clone()), parent)
    }

    fn v2(&self) -> bool {
        self.v2
    }
}
