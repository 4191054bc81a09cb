//! Resource limits in a container's cgroup: Docker's `HostConfig` resource
//! fields in Docker's units (bytes, nano-CPUs, microseconds), written
//! through `cgroups-rs` to the files of v1 or v2, with the conversions v2
//! needs (`cpu.weight` from shares, `memory.swap.max` as the swap alone).
//! Checking them against Docker's rules is the containers service's
//! (`containers/resources.rs`); this module only writes what it is given.
use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use serde::{Deserialize, Serialize};

use super::CgroupDriver;
use crate::error::Result;

/// The CFS period `--cpus` uses (Docker's, 100 ms).
pub const CPU_PERIOD_US: i64 = 100_000;

/// What a container's cgroup limits. Zero (or empty) is "no limit" for
/// every field, as in Docker's API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Bytes of memory.
    pub memory: i64,
    /// Bytes of memory plus swap; 0: twice `memory` (Docker's default);
    /// -1: swap unlimited.
    pub memory_swap: i64,
    /// Bytes the kernel reclaims down to under memory pressure (soft
    /// limit).
    pub memory_reservation: i64,
    /// The OOM killer leaves the container alone (v1 only).
    pub oom_kill_disable: bool,
    /// CPUs in billionths (`--cpus 1.5` is 1500000000): a quota over
    /// [`CPU_PERIOD_US`].
    pub nano_cpus: i64,
    /// Relative CPU weight (v1 shares, 2 to 262144).
    pub cpu_shares: i64,
    /// CFS period and quota, microseconds.
    pub cpu_period: i64,
    pub cpu_quota: i64,
    /// `0-3`, `0,2`: the CPUs and memory nodes it may use.
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// Processes and threads at most; 0 or less: no limit.
    pub pids_limit: i64,
    /// Relative block I/O weight, 10 to 1000 (the BFQ scheduler's, where
    /// the host has no other).
    pub blkio_weight: u16,
    /// Bytes per second read from and written to block devices.
    pub device_read_bps: Vec<DeviceRate>,
    pub device_write_bps: Vec<DeviceRate>,
}

/// A rate on one block device: its host path as given, and its numbers
/// (found when the container is created).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRate {
    pub path: String,
    pub major: u64,
    pub minor: u64,
    pub rate: u64,
}

impl Limits {
    /// The CFS quota and period the cgroup gets: from `--cpus`, else as
    /// given.
    pub fn cfs(&self) -> (Option<i64>, Option<u64>) {
        if self.nano_cpus > 0 {
            return (Some(self.nano_cpus * CPU_PERIOD_US / 1_000_000_000), Some(CPU_PERIOD_US as u64));
        }
        ((self.cpu_quota != 0).then_some(self.cpu_quota), u64::try_from(self.cpu_period).ok().filter(|p| *p > 0))
    }

    /// Memory plus swap, as v1's `memory.memsw.limit_in_bytes` takes it:
    /// only with a memory limit; unset means twice the memory, as Docker.
    pub fn memory_and_swap(&self) -> Option<i64> {
        if self.memory <= 0 {
            return None;
        }
        Some(match self.memory_swap {
            0 => self.memory.saturating_mul(2),
            n => n,
        })
    }
}

/// v1 `cpu.shares` as v2 `cpu.weight` (runc's mapping: 2..262144 onto
/// 1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

impl CgroupDriver {
    /// Writes `limits` into the container's cgroup: every field that is set,
    /// each to its controller's file for this version. Fails on the first
    /// file that refuses (a controller the host lacks for a limit that was
    /// asked for, a value the kernel rejects).
    pub fn set_limits(&self, id: &str, limits: &Limits) -> Result<()> {
        let cg = self.load(id);
        let err = |what: &str, e: cgroups_rs::fs::error::Error| self.err(id, format!("{what}: {e}{}", e.source_text()));
        let needs = |what: &str| self.err(id, format!("{what} needs a controller this host does not have"));

        let memory_asked = limits.memory > 0 || limits.memory_reservation > 0 || limits.oom_kill_disable;
        if memory_asked {
            let mem: &MemController = cg.controller_of().ok_or_else(|| needs("a memory limit"))?;
            if let Some(total) = limits.memory_and_swap() {
                if self.v2 {
                    mem.set_limit(limits.memory).map_err(|e| err("memory.max", e))?;
                    let swap = if total < 0 { -1 } else { (total - limits.memory).max(0) };
                    mem.set_memswap_limit(swap).map_err(|e| err("memory.swap.max", e))?;
                } else {
                    // memsw must stay at or above the limit at every step:
                    // unlimited first, then the limit, then the total.
                    let memsw = self.v1_dir(id, "memory").map(|d| d.join("memory.memsw.limit_in_bytes"));
                    let swap_accounting = memsw.is_some_and(|f| f.exists());
                    if swap_accounting {
                        mem.set_memswap_limit(-1).map_err(|e| err("memory.memsw.limit_in_bytes", e))?;
                    }
                    mem.set_limit(limits.memory).map_err(|e| err("memory.limit_in_bytes", e))?;
                    if swap_accounting {
                        mem.set_memswap_limit(total).map_err(|e| err("memory.memsw.limit_in_bytes", e))?;
                    }
                }
            }
            if limits.memory_reservation > 0 {
                mem.set_soft_limit(limits.memory_reservation).map_err(|e| err("memory reservation", e))?;
            }
            if limits.oom_kill_disable {
                if self.v2 {
                    return Err(self.err(id, "the OOM killer cannot be disabled on cgroup v2"));
                }
                mem.disable_oom_killer().map_err(|e| err("memory.oom_control", e))?;
            }
        }

        let (quota, period) = limits.cfs();
        if quota.is_some() || period.is_some() || limits.cpu_shares > 0 {
            let cpu: &CpuController = cg.controller_of().ok_or_else(|| needs("a CPU limit"))?;
            if limits.cpu_shares > 0 {
                let shares = limits.cpu_shares as u64;
                let value = if self.v2 { shares_to_weight(shares) } else { shares };
                cpu.set_shares(value).map_err(|e| err("CPU shares", e))?;
            }
            if quota.is_some() || period.is_some() {
                cpu.set_cfs_quota_and_period(quota, period).map_err(|e| err("CPU quota", e))?;
            }
        }

        if !limits.cpuset_cpus.is_empty() || !limits.cpuset_mems.is_empty() {
            let set: &CpuSetController = cg.controller_of().ok_or_else(|| needs("a cpuset"))?;
            if !limits.cpuset_cpus.is_empty() {
                set.set_cpus(&limits.cpuset_cpus).map_err(|e| err("cpuset.cpus", e))?;
            }
            if !limits.cpuset_mems.is_empty() {
                set.set_mems(&limits.cpuset_mems).map_err(|e| err("cpuset.mems", e))?;
            }
        }

        if limits.blkio_weight > 0 || !limits.device_read_bps.is_empty() || !limits.device_write_bps.is_empty() {
            let io: &BlkIoController = cg.controller_of().ok_or_else(|| needs("a block I/O limit"))?;
            if limits.blkio_weight > 0 {
                let w = u64::from(limits.blkio_weight);
                // v1 without CFQ has only the BFQ scheduler's weight, which
                // cgroups-rs does not know (runc writes it the same way).
                let bfq =
                    self.v1_dir(id, "blkio").map(|d| d.join("blkio.bfq.weight")).filter(|f| !self.v2 && f.exists());
                let plain = self.v1_dir(id, "blkio").is_some_and(|d| d.join("blkio.weight").exists());
                match bfq {
                    Some(file) if !plain => std::fs::write(&file, w.to_string())
                        .map_err(|e| self.err(id, format!("blkio.bfq.weight: {e}")))?,
                    _ => io.set_weight(w).map_err(|e| err("block I/O weight", e))?,
                }
            }
            for d in &limits.device_read_bps {
                io.throttle_read_bps_for_device(d.major, d.minor, d.rate).map_err(|e| err(&d.path, e))?;
            }
            for d in &limits.device_write_bps {
                io.throttle_write_bps_for_device(d.major, d.minor, d.rate).map_err(|e| err(&d.path, e))?;
            }
        }

        if limits.pids_limit != 0 {
            let pids: &PidController = cg.controller_of().ok_or_else(|| needs("a pids limit"))?;
            let max = if limits.pids_limit > 0 { MaxValue::Value(limits.pids_limit) } else { MaxValue::Max };
            pids.set_pid_max(max).map_err(|e| err("pids.max", e))?;
        }
        Ok(())
    }
}

/// `cgroups-rs` keeps the OS error as the source; its text says why.
trait SourceText {
    fn source_text(&self) -> String;
}

impl SourceText for cgroups_rs::fs::error::Error {
    fn source_text(&self) -> String {
        std::error::Error::source(self).map(|s| format!(" ({s})")).unwrap_or_default()
    }
}
