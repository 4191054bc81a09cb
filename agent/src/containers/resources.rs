//! What a container may use: the cgroup's [`Limits`] and the process's own
//! (rlimits, OOM score, the size of `/dev/shm`), kept in its record, checked
//! with Docker's rules and in Docker's words when it is created, and
//! applied at each start (the cgroup is made anew each time).
use serde::{Deserialize, Serialize};

use crate::cgroups::Limits;

/// Docker's floor for `--memory` and `--memory-reservation`.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

pub use berth_contract::defaults::DEFAULT_SHM_SIZE;

/// One `--ulimit NAME=SOFT[:HARD]`; names as Docker's (`nofile`, `nproc`,
/// ...), values as numbers (-1: unlimited).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    #[serde(flatten)]
    pub limits: Limits,
    /// `--kernel-memory`: kept only to be refused with a reason.
    #[serde(skip)]
    pub kernel_memory: i64,
    pub ulimits: Vec<Ulimit>,
    /// -1000 to 1000, the container's init's `oom_score_adj`.
    pub oom_score_adj: i32,
    /// Bytes of `/dev/shm`; 0: [`DEFAULT_SHM_SIZE`].
    pub shm_size: i64,
}

/// What the host offers, for the checks that depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `/sys/devices/system/cpu/online`, `/sys/devices/system/node/online`.
    pub online_cpus: String,
    pub online_mems: String,
    /// `MemTotal` of `/proc/meminfo`, in bytes: the limit of a container
    /// without one, as `stats` shows it.
    pub memory: u64,
}

impl Host {
    pub fn detect() -> Self {
        let read = |p: &str, or: &str| {
            std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_else(|_| or.to_owned())
        };
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            online_cpus: read("/sys/devices/system/cpu/online", "0"),
            online_mems: read("/sys/devices/system/node/online", "0"),
            memory: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|t| {
                    let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
                    line.split_whitespace().nth(1)?.parse::<u64>().ok()
                })
                .map_or(0, |kib| kib * 1024),
        }
    }
}

/// A resource setting refused, in Docker's words where Docker has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooLow,
    #[error("Minimum memory reservation allowed is 6MB")]
    ReservationTooLow,
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    #[error("Minimum memory limit can not be less than memory reservation limit, see usage")]
    MemoryBelowReservation,
    /// Kernel memory is counted in the memory limit on every kernel berth
    /// runs on (v2 has no separate limit; v1's is deprecated since 5.4).
    #[error("Kernel memory limit is not supported: kernel memory is counted in --memory")]
    KernelMemory,
    #[error("Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available")]
    Cpus { cpus: usize },
    #[error("Conflicting options: Nano CPUs and CPU Period cannot both be set")]
    CpusAndPeriod,
    #[error("Conflicting options: Nano CPUs and CPU Quota cannot both be set")]
    CpusAndQuota,
    #[error("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")]
    CpuPeriod,
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuota,
    #[error("Invalid value {value} for cpuset cpus")]
    CpusetSyntax { value: String },
    #[error("Invalid value {value} for cpuset mems")]
    CpusetMemsSyntax { value: String },
    #[error("Requested CPUs are not available - requested {requested}, available: {available}")]
    CpusetCpus { requested: String, available: String },
    #[error("Requested memory nodes are not available - requested {requested}, available: {available}")]
    CpusetMems { requested: String, available: String },
    #[error("Invalid value {value}, range for oom score adj is [-1000, 1000]")]
    OomScoreAdj { value: i32 },
    #[error("Range of blkio weight is from 10 to 1000")]
    BlkioWeight,
    #[error("invalid device {path}: {reason}")]
    BlkioDevice { path: String, reason: String },
    #[error("SHM size can not be less than 0")]
    ShmSize,
    #[error("invalid ulimit type: {name}")]
    UlimitName { name: String },
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitOrder { soft: i64, hard: i64 },
}

/// The rlimit a Docker ulimit name means.
pub fn rlimit_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

/// `0-3,5` as a set of numbers; None when it is not such a list.
fn parse_list(s: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut set = std::collections::BTreeSet::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a > b || b - a > 65_536 {
            return None;
        }
        set.extend(a..=b);
    }
    Some(set)
}

impl Resources {
    /// Docker's checks, of a create or of the settings an update would
    /// leave.
    pub fn check(&self, host: &Host) -> Result<(), ResourceError> {
        let l = &self.limits;
        if self.kernel_memory != 0 {
            return Err(ResourceError::KernelMemory);
        }
        if l.memory != 0 && l.memory < MIN_MEMORY {
            return Err(ResourceError::MemoryTooLow);
        }
        if l.memory > 0 && l.memory_swap > 0 && l.memory_swap < l.memory {
            return Err(ResourceError::SwapBelowMemory);
        }
        if l.memory == 0 && l.memory_swap > 0 {
            return Err(ResourceError::SwapWithoutMemory);
        }
        if l.memory_reservation != 0 && l.memory_reservation < MIN_MEMORY {
            return Err(ResourceError::ReservationTooLow);
        }
        if l.memory > 0 && l.memory_reservation > 0 && l.memory < l.memory_reservation {
            return Err(ResourceError::MemoryBelowReservation);
        }
        if l.nano_cpus != 0 {
            if l.cpu_period != 0 {
                return Err(ResourceError::CpusAndPeriod);
            }
            if l.cpu_quota != 0 {
                return Err(ResourceError::CpusAndQuota);
            }
            if l.nano_cpus < 10_000_000 || l.nano_cpus > host.cpus as i64 * 1_000_000_000 {
                return Err(ResourceError::Cpus { cpus: host.cpus });
            }
        }
        if l.cpu_period != 0 && !(1000..=1_000_000).contains(&l.cpu_period) {
            return Err(ResourceError::CpuPeriod);
        }
        if l.cpu_quota > 0 && l.cpu_quota < 1000 {
            return Err(ResourceError::CpuQuota);
        }
        for (value, online, cpus) in
            [(&l.cpuset_cpus, &host.online_cpus, true), (&l.cpuset_mems, &host.online_mems, false)]
        {
            if value.is_empty() {
                continue;
            }
            let bad_syntax = || {
                if cpus {
                    ResourceError::CpusetSyntax { value: value.clone() }
                } else {
                    ResourceError::CpusetMemsSyntax { value: value.clone() }
                }
            };
            let want = parse_list(value).ok_or_else(bad_syntax)?;
            let have = parse_list(online).unwrap_or_default();
            if !want.is_subset(&have) {
                let (requested, available) = (value.clone(), online.clone());
                return Err(if cpus {
                    ResourceError::CpusetCpus { requested, available }
                } else {
                    ResourceError::CpusetMems { requested, available }
                });
            }
        }
        if l.blkio_weight != 0 && !(10..=1000).contains(&l.blkio_weight) {
            return Err(ResourceError::BlkioWeight);
        }
        if !(-1000..=1000).contains(&self.oom_score_adj) {
            return Err(ResourceError::OomScoreAdj { value: self.oom_score_adj });
        }
        if self.shm_size < 0 {
            return Err(ResourceError::ShmSize);
        }
        for u in &self.ulimits {
            if rlimit_name(&u.name).is_none() {
                return Err(ResourceError::UlimitName { name: u.name.clone() });
            }
            if u.soft >= 0 && u.hard >= 0 && u.soft > u.hard {
                return Err(ResourceError::UlimitOrder { soft: u.soft, hard: u.hard });
            }
        }
        Ok(())
    }

    /// Finds the numbers of the block devices the I/O rates name (on this
    /// host, where the rates apply).
    pub fn resolve_devices(&mut self) -> Result<(), ResourceError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let l = &mut self.limits;
        for d in l.device_read_bps.iter_mut().chain(l.device_write_bps.iter_mut()) {
            let bad = |reason: String| ResourceError::BlkioDevice { path: d.path.clone(), reason };
            let meta = std::fs::metadata(&d.path).map_err(|e| bad(e.kind().to_string()))?;
            if !meta.file_type().is_block_device() {
                return Err(bad("not a block device".into()));
            }
            let rdev = meta.rdev();
            (d.major, d.minor) = (u64::from(libc::major(rdev)), u64::from(libc::minor(rdev)));
        }
        Ok(())
    }

    /// An update: each limit `change` sets replaces the kept one (Docker's
    /// `update` changes only the cgroup's limits, never the process's own
    /// settings).
    pub fn update(&mut self, change: &Resources) {
        let (l, c) = (&mut self.limits, &change.limits);
        for (kept, new) in [
            (&mut l.memory, c.memory),
            (&mut l.memory_swap, c.memory_swap),
            (&mut l.memory_reservation, c.memory_reservation),
            (&mut l.nano_cpus, c.nano_cpus),
            (&mut l.cpu_shares, c.cpu_shares),
            (&mut l.cpu_period, c.cpu_period),
            (&mut l.cpu_quota, c.cpu_quota),
            (&mut l.pids_limit, c.pids_limit),
        ] {
            if new != 0 {
                *kept = new;
            }
        }
        for (kept, new) in [(&mut l.cpuset_cpus, &c.cpuset_cpus), (&mut l.cpuset_mems, &c.cpuset_mems)] {
            if !new.is_empty() {
                kept.clone_from(new);
            }
        }
        if c.blkio_weight != 0 {
            l.blkio_weight = c.blkio_weight;
        }
        l.oom_kill_disable |= c.oom_kill_disable;
        self.kernel_memory = change.kernel_memory;
    }

    /// `/dev/shm`'s size in bytes.
    pub fn shm_bytes(&self) -> i64 {
        if self.shm_size > 0 {
            self.shm_size
        } else {
            DEFAULT_SHM_SIZE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host { cpus: 2, online_cpus: "0-1".into(), online_mems: "0".into(), memory: 1 << 30 }
    }

    fn with(f: impl FnOnce(&mut Resources)) -> Result<(), String> {
        let mut r = Resources::default();
        f(&mut r);
        r.check(&host()).map_err(|e| e.to_string())
    }

    #[test]
    fn dockers_rules_and_words() {
        assert_eq!(with(|_| {}), Ok(()));
        assert_eq!(with(|r| r.limits.memory = 4 << 20), Err("Minimum memory limit allowed is 6MB".into()));
        assert_eq!(with(|r| r.limits.memory = 6 << 20), Ok(()));
        assert_eq!(
            with(|r| r.limits.memory_swap = 64 << 20),
            Err("You should always set the Memory limit when using Memoryswap limit, see usage".into())
        );
        assert_eq!(
            with(|r| {
                r.limits.memory = 64 << 20;
                r.limits.memory_swap = 32 << 20;
            }),
            Err("Minimum memoryswap limit should be larger than memory limit, see usage".into())
        );
        assert_eq!(
            with(|r| {
                r.limits.memory = 64 << 20;
                r.limits.memory_swap = -1;
            }),
            Ok(())
        );
        assert_eq!(
            with(|r| {
                r.limits.memory = 64 << 20;
                r.limits.memory_reservation = 128 << 20;
            }),
            Err("Minimum memory limit can not be less than memory reservation limit, see usage".into())
        );
        assert_eq!(
            with(|r| r.limits.memory_reservation = 1 << 20),
            Err("Minimum memory reservation allowed is 6MB".into())
        );
        assert!(with(|r| r.kernel_memory = 64 << 20).unwrap_err().starts_with("Kernel memory limit is not supported"));
        let cpus = "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
        assert_eq!(with(|r| r.limits.nano_cpus = 3_000_000_000), Err(cpus.into()));
        assert_eq!(with(|r| r.limits.nano_cpus = 1_000_000), Err(cpus.into()));
        assert_eq!(with(|r| r.limits.nano_cpus = 500_000_000), Ok(()));
        assert_eq!(
            with(|r| {
                r.limits.nano_cpus = 500_000_000;
                r.limits.cpu_quota = 50_000;
            }),
            Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into())
        );
        assert_eq!(
            with(|r| r.limits.cpu_period = 100),
            Err("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into())
        );
        assert_eq!(with(|r| r.limits.cpu_quota = 10), Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".into()));
        assert_eq!(with(|r| r.limits.cpu_quota = -1), Ok(()));
        assert_eq!(with(|r| r.limits.cpuset_cpus = "1".into()), Ok(()));
        assert_eq!(
            with(|r| r.limits.cpuset_cpus = "0-3".into()),
            Err("Requested CPUs are not available - requested 0-3, available: 0-1".into())
        );
        assert_eq!(with(|r| r.limits.cpuset_cpus = "a".into()), Err("Invalid value a for cpuset cpus".into()));
        assert_eq!(
            with(|r| r.oom_score_adj = 1001),
            Err("Invalid value 1001, range for oom score adj is [-1000, 1000]".into())
        );
        assert_eq!(with(|r| r.shm_size = -1), Err("SHM size can not be less than 0".into()));
        assert_eq!(with(|r| r.limits.blkio_weight = 5), Err("Range of blkio weight is from 10 to 1000".into()));
        assert_eq!(with(|r| r.limits.blkio_weight = 500), Ok(()));
        let u = |name: &str, soft, hard| Ulimit { name: name.into(), soft, hard };
        assert_eq!(with(|r| r.ulimits = vec![u("nofile", 10, 20)]), Ok(()));
        assert_eq!(with(|r| r.ulimits = vec![u("files", 10, 20)]), Err("invalid ulimit type: files".into()));
        assert_eq!(
            with(|r| r.ulimits = vec![u("nofile", 30, 20)]),
            Err("ulimit soft limit must be less than or equal to hard limit: 30 > 20".into())
        );
        // An update is checked as what it leaves: swap alone is fine over a
        // kept memory limit.
        let mut r = Resources { limits: Limits { memory: 32 << 20, ..Default::default() }, ..Default::default() };
        r.update(&Resources { limits: Limits { memory_swap: 64 << 20, ..Default::default() }, ..Default::default() });
        assert_eq!(r.check(&host()), Ok(()));
        assert_eq!((r.limits.memory, r.limits.memory_swap), (32 << 20, 64 << 20));
        r.update(&Resources {
            limits: Limits { pids_limit: -1, cpuset_cpus: "1".into(), ..Default::default() },
            ..Default::default()
        });
        assert_eq!((r.limits.memory, r.limits.pids_limit, r.limits.cpuset_cpus.as_str()), (32 << 20, -1, "1"));
    }

    #[test]
    fn io_rates_name_block_devices() {
        let rate = |path: &str| crate::cgroups::DeviceRate { path: path.into(), rate: 1024, ..Default::default() };
        let mut r = Resources::default();
        r.limits.device_read_bps = vec![rate("/dev/null")];
        assert_eq!(r.resolve_devices().unwrap_err().to_string(), "invalid device /dev/null: not a block device");
        r.limits.device_read_bps = vec![rate("/dev/berth-none")];
        assert_eq!(r.resolve_devices().unwrap_err().to_string(), "invalid device /dev/berth-none: entity not found");
        // The first block device of this host, if it has one.
        let block = std::fs::read_dir("/sys/dev/block").ok().and_then(|mut d| d.next()).and_then(|e| e.ok());
        if let Some(e) = block {
            let numbers = e.file_name().to_string_lossy().into_owned();
            let name = std::fs::read_link(e.path()).unwrap().file_name().unwrap().to_string_lossy().into_owned();
            if std::path::Path::new("/dev").join(&name).exists() {
                r.limits.device_write_bps = vec![rate(&format!("/dev/{name}"))];
                r.limits.device_read_bps.clear();
                r.resolve_devices().unwrap();
                let d = &r.limits.device_write_bps[0];
                assert_eq!(format!("{}:{}", d.major, d.minor), numbers);
            }
        }
    }

    #[test]
    fn lists_and_defaults() {
        assert_eq!(parse_list("0-2,5").unwrap().into_iter().collect::<Vec<_>>(), [0, 1, 2, 5]);
        assert!(parse_list("2-1").is_none() && parse_list("").is_none() && parse_list("x").is_none());
        assert_eq!(Resources::default().shm_bytes(), 64 << 20);
        // An old record without the field reads as no limits.
        let r: Resources = serde_json::from_str("{}").unwrap();
        assert_eq!(r, Resources::default());
        let r: Resources = serde_json::from_str(r#"{"memory":7340032,"pids_limit":20}"#).unwrap();
        assert_eq!((r.limits.memory, r.limits.pids_limit), (7 << 20, 20));
    }
}
