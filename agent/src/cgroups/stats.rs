//! What a container's cgroup has used, for `stats`: CPU time, memory,
//! block I/O and tasks, read from the kernel's accounting files of either
//! version. Every counter is the kernel's own; nothing is estimated here.
//!
//! | counter          | v1                                          | v2                          |
//! |------------------|---------------------------------------------|-----------------------------|
//! | CPU time (ns)    | `cpuacct.usage`                             | `cpu.stat` `usage_usec`     |
//! | memory in use    | `memory.usage_in_bytes`                     | `memory.current`            |
//! | memory limit     | `memory.limit_in_bytes`                     | `memory.max`                |
//! | page cache       | `memory.stat` `total_inactive_file`         | `memory.stat` `inactive_file` |
//! | block read/write | `blkio.throttle.io_service_bytes_recursive` | `io.stat` `rbytes`/`wbytes` |
//! | tasks            | `pids.current`                              | `pids.current`              |
use std::path::{Path, PathBuf};

use berth_contract::exit::flat_keyed as keyed;

use super::CgroupDriver;

/// A v1 memory limit at or above this is "no limit" (the kernel shows
/// `PAGE_COUNTER_MAX` pages, 9223372036854771712 on 4 KiB pages).
const V1_UNLIMITED: u64 = 1 << 62;

/// One reading of a container's cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time of every task, in nanoseconds, since the cgroup was made.
    pub cpu_ns: u64,
    /// Memory charged to the cgroup, page cache included.
    pub memory: u64,
    /// The part of `memory` that is inactive file cache, which Docker
    /// leaves out of MEM USAGE (the kernel can drop it at any time).
    pub inactive_file: u64,
    /// The memory limit; `None` for none.
    pub memory_limit: Option<u64>,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl Usage {
    /// Docker's MEM USAGE: in use minus inactive file cache.
    pub fn memory_without_cache(&self) -> u64 {
        self.memory.saturating_sub(self.inactive_file)
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// v1's `blkio.throttle.io_service_bytes_recursive`: `MAJ:MIN Read N`
/// lines per device (and a `Total` line, not counted twice).
fn v1_blkio(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(dev), Some(op), Some(n)) = (f.next(), f.next(), f.next()) else { continue };
        if !dev.contains(':') {
            continue;
        }
        let n: u64 = n.parse().unwrap_or(0);
        match op {
            "Read" => r = r.saturating_add(n),
            "Write" => w = w.saturating_add(n),
            _ => {}
        }
    }
    (r, w)
}

/// v2's `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N ...` per device.
fn v2_io(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for field in text.split_whitespace() {
        let Some((k, v)) = field.split_once('=') else { continue };
        let n: u64 = v.parse().unwrap_or(0);
        match k {
            "rbytes" => r = r.saturating_add(n),
            "wbytes" => w = w.saturating_add(n),
            _ => {}
        }
    }
    (r, w)
}

impl CgroupDriver {
    /// The container's usage now; `None` when its cgroup is gone (the
    /// container is not running).
    pub fn usage(&self, id: &str) -> Option<Usage> {
        if !self.exists(id) {
            return None;
        }
        Some(if self.v2 { self.usage_v2(&self.unified_dir(id)) } else { self.usage_v1(id) })
    }

    fn usage_v2(&self, dir: &Path) -> Usage {
        let cpu = read(&dir.join("cpu.stat")).and_then(|t| keyed(&t, "usage_usec")).unwrap_or(0);
        let stat = read(&dir.join("memory.stat")).unwrap_or_default();
        let (block_read, block_write) = read(&dir.join("io.stat")).map(|t| v2_io(&t)).unwrap_or_default();
        Usage {
            cpu_ns: cpu.saturating_mul(1000),
            memory: read_u64(&dir.join("memory.current")).unwrap_or(0),
            inactive_file: keyed(&stat, "inactive_file").unwrap_or(0),
            // "max" does not parse: no limit.
            memory_limit: read_u64(&dir.join("memory.max")),
            block_read,
            block_write,
            pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
        }
    }

    fn usage_v1(&self, id: &str) -> Usage {
        let file =
            |controller: &str, name: &str| -> Option<PathBuf> { self.v1_dir(id, controller).map(|d| d.join(name)) };
        let num = |controller: &str, name: &str| file(controller, name).and_then(|f| read_u64(&f));
        let stat = file("memory", "memory.stat").and_then(|f| read(&f)).unwrap_or_default();
        let (block_read, block_write) = file("blkio", "blkio.throttle.io_service_bytes_recursive")
            .and_then(|f| read(&f))
            .map(|t| v1_blkio(&t))
            .unwrap_or_default();
        Usage {
            cpu_ns: num("cpuacct", "cpuacct.usage").unwrap_or(0),
            memory: num("memory", "memory.usage_in_bytes").unwrap_or(0),
            inactive_file: keyed(&stat, "total_inactive_file").unwrap_or(0),
            memory_limit: num("memory", "memory.limit_in_bytes").filter(|&l| l < V1_UNLIMITED),
            block_read,
            block_write,
            pids: num("pids", "pids.current").unwrap_or(0),
        }
    }
}

/// The host's CPU time of every CPU in every state, in nanoseconds, and
/// the number of CPUs online: `/proc/stat`'s `cpu` line and `cpuN` lines,
/// as Docker reads them for CPU %.
pub fn host_cpu() -> (u64, u32) {
    parse_proc_stat(&read(Path::new("/proc/stat")).unwrap_or_default())
}

/// Nanoseconds per clock tick, the unit of `/proc/stat`.
fn tick_ns() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => 1_000_000_000 / t as u64,
        _ => 10_000_000,
    }
}

fn parse_proc_stat(text: &str) -> (u64, u32) {
    let tick_ns = tick_ns();
    let mut total = 0u64;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                // user nice system idle iowait irq softirq steal (guest
                // time is already in user and nice).
                total = f.take(8).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>().saturating_mul(tick_ns);
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus.max(1))
}

/// Bytes received and sent by the interfaces of the network namespace of
/// process `pid`, loopback left out (Docker counts the container's
/// network interfaces): `/proc/PID/net/dev`. `(0, 0)` when it is gone.
pub fn net_io(pid: u32) -> (u64, u64) {
    if pid == 0 {
        return (0, 0);
    }
    parse_net_dev(&read(&PathBuf::from(format!("/proc/{pid}/net/dev"))).unwrap_or_default())
}

fn parse_net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    // Two header lines, then `iface: rx_bytes packets ... (8 fields) tx_bytes ...`.
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if f.len() >= 9 {
            rx = rx.saturating_add(f[0]);
            tx = tx.saturating_add(f[8]);
        }
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_blkio_sums_devices_and_skips_the_total() {
        let text = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:16 Read 100\n8:16 Write 0\nTotal 12388\n";
        assert_eq!(v1_blkio(text), (4196, 8192));
        assert_eq!(v1_blkio("Total 0\n"), (0, 0));
    }

    #[test]
    fn v2_io_sums_devices() {
        let text = "8:0 rbytes=1000 wbytes=2000 rios=3 wios=4 dbytes=0 dios=0\n254:0 rbytes=5 wbytes=6 rios=1 wios=1\n";
        assert_eq!(v2_io(text), (1005, 2006));
    }

    #[test]
    fn proc_stat_gives_total_time_and_cpus() {
        let text =
            "cpu  100 0 50 800 10 0 0 0 0 0\ncpu0 50 0 25 400 5 0 0 0 0 0\ncpu1 50 0 25 400 5 0 0 0 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(text), (960 * tick_ns(), 2));
    }

    #[test]
    fn net_dev_leaves_loopback_out() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  \
eth0:   1234      10    0    0    0     0          0         0     5678      12    0    0    0     0       0          0\n";
        assert_eq!(parse_net_dev(text), (1234, 5678));
    }
}
