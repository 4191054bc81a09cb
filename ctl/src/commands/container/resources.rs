//! The resource flags of `create`/`run` and `update`, in Docker's names and
//! units: sizes as `64m` or bytes (binary multiples, as Docker's
//! `RAMInBytes`), CPUs as a decimal count. berthd checks the values with
//! Docker's rules; here only their shape.
use anyhow::{bail, Result};
use berth_proto::v1 as pb;
use clap::Args;

/// A size: digits with an optional fraction, then an optional unit
/// (`b`, `k`, `m`, `g`, `t`, `p`, each also with `b` or `ib` after it),
/// case-insensitive; each unit 1024 times the one before.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let err = || format!("invalid size: '{s}'");
    let t = s.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: f64 = number.parse().map_err(|_| err())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty())).unwrap_or(unit);
    let power = match unit {
        "" | "b" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(err()),
    };
    let bytes = number * 1024f64.powi(power);
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as i64)
}

/// A size, or -1 (unlimited), as `--memory-swap` takes it.
fn parse_size_or_unlimited(s: &str) -> Result<i64, String> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    parse_size(s)
}

/// `--cpus 1.5`: billionths of a CPU, exactly (no float rounding).
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let err = || format!("failed to parse {s} as a rational number");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| err())? };
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| err())? };
    whole.checked_mul(1_000_000_000).and_then(|n| n.checked_add(frac)).ok_or_else(err)
}

/// `--ulimit NAME=SOFT[:HARD]`: a value is a number, or -1 or `unlimited`
/// for no limit; the hard limit is the soft one when not given.
pub fn parse_ulimit(s: &str) -> Result<pb::Ulimit, String> {
    let Some((name, values)) = s.split_once('=') else {
        return Err(format!("invalid ulimit argument: {s}"));
    };
    let value = |v: &str| match v {
        "unlimited" | "-1" => Ok(-1),
        v => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| format!("invalid ulimit value {v:?} in {s}")),
    };
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (value(soft)?, value(hard)?),
        None => {
            let v = value(values)?;
            (v, v)
        }
    };
    Ok(pb::Ulimit { name: name.to_owned(), soft, hard })
}

/// `--device-read-bps /dev/sda:1mb`: a host path and bytes per second.
pub fn parse_device_rate(s: &str) -> Result<pb::DeviceRate, String> {
    let (path, rate) = s.rsplit_once(':').ok_or_else(|| format!("bad format: {s}"))?;
    if !path.starts_with('/') {
        return Err(format!("bad format for device path: {path}"));
    }
    let rate = parse_size(rate).map_err(|e| format!("invalid rate for device: {rate} ({e})"))?;
    Ok(pb::DeviceRate { path: path.to_owned(), rate: rate as u64 })
}

/// The cgroup's limits: the flags `update` changes, and `create`/`run`
/// sets.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitOpts {
    /// Memory limit (bytes, or with a unit: 64m, 1g); at least 6m
    #[arg(short, long, value_name = "BYTES", value_parser = parse_size)]
    memory: Option<i64>,
    /// Memory plus swap; -1: unlimited swap (default: twice --memory)
    #[arg(long, value_name = "BYTES", value_parser = parse_size_or_unlimited, allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// Memory soft limit, reclaimed down to under pressure
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    memory_reservation: Option<i64>,
    /// Kernel memory limit (refused: kernel memory is counted in --memory)
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    kernel_memory: Option<i64>,
    /// Number of CPUs (1.5: one and a half CPUs' time)
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    cpus: Option<i64>,
    /// Relative CPU weight (v1 shares, 2 to 262144)
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// CFS period, microseconds
    #[arg(long)]
    cpu_period: Option<i64>,
    /// CFS quota per period, microseconds; -1: unlimited
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPUs it may run on (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes it may use (0-3, 0,1)
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Processes and threads at most; -1: unlimited
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Relative block I/O weight, 10 to 1000
    #[arg(long)]
    blkio_weight: Option<u32>,
    /// Restart policy: no, on-failure[:MAX-RETRIES], always, unless-stopped
    #[arg(long, value_name = "POLICY", value_parser = parse_restart)]
    restart: Option<pb::RestartPolicy>,
}

/// `on-failure:3` as name and count; berthd checks the name and the count.
pub fn parse_restart(s: &str) -> Result<pb::RestartPolicy, String> {
    let (name, max) = match s.split_once(':') {
        Some((n, m)) => (
            n,
            m.parse::<i32>()
                .map_err(|_| format!("invalid restart policy: maximum retry count must be an integer: {m}"))?,
        ),
        None => (s, 0),
    };
    Ok(pb::RestartPolicy { name: name.to_owned(), maximum_retry_count: max })
}

impl LimitOpts {
    pub fn message(&self) -> pb::Resources {
        pb::Resources {
            memory: self.memory.unwrap_or(0),
            memory_swap: self.memory_swap.unwrap_or(0),
            memory_reservation: self.memory_reservation.unwrap_or(0),
            kernel_memory: self.kernel_memory.unwrap_or(0),
            nano_cpus: self.cpus.unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            // Docker: 0 and -1 both mean unlimited on create and update.
            pids_limit: self.pids_limit.map_or(0, |n| if n <= 0 { -1 } else { n }),
            blkio_weight: self.blkio_weight.unwrap_or(0),
            ..Default::default()
        }
    }

    /// `--restart` as given; absent: berthd's default (`no`) or, for
    /// `update`, the container's own.
    pub fn restart_policy(&self) -> Option<pb::RestartPolicy> {
        self.restart.clone()
    }

    /// Whether any flag was given (`update` with none is refused).
    pub fn any(&self) -> bool {
        self.message() != pb::Resources::default() || self.restart.is_some()
    }
}

/// `create`/`run`'s resource flags: the limits and the process's own.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceOpts {
    #[command(flatten)]
    limits: LimitOpts,
    /// Keep the OOM killer away from the container (cgroup v1 only)
    #[arg(long)]
    oom_kill_disable: bool,
    /// The init's OOM score adjustment, -1000 to 1000
    #[arg(long, allow_hyphen_values = true)]
    oom_score_adj: Option<i32>,
    /// Size of /dev/shm (default 64m)
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    shm_size: Option<i64>,
    /// A resource limit of the processes, NAME=SOFT[:HARD] (nofile=1024:2048), repeatable
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = parse_ulimit)]
    ulimit: Vec<pb::Ulimit>,
    /// Limit reads from a block device of the host, PATH:RATE (/dev/sda:1mb), repeatable
    #[arg(long, value_name = "PATH:RATE", value_parser = parse_device_rate)]
    device_read_bps: Vec<pb::DeviceRate>,
    /// Limit writes to a block device of the host, PATH:RATE, repeatable
    #[arg(long, value_name = "PATH:RATE", value_parser = parse_device_rate)]
    device_write_bps: Vec<pb::DeviceRate>,
}

impl ResourceOpts {
    pub fn restart_policy(&self) -> Option<pb::RestartPolicy> {
        self.limits.restart_policy()
    }

    pub fn message(&self) -> pb::Resources {
        pb::Resources {
            oom_kill_disable: self.oom_kill_disable,
            oom_score_adj: self.oom_score_adj.unwrap_or(0),
            shm_size: self.shm_size.unwrap_or(0),
            ulimits: self.ulimit.clone(),
            device_read_bps: self.device_read_bps.clone(),
            device_write_bps: self.device_write_bps.clone(),
            ..self.limits.message()
        }
    }
}

/// `update` with nothing to change is refused, as Docker.
pub fn require_some(l: &LimitOpts) -> Result<()> {
    if !l.any() {
        bail!("you must provide one or more flags when using this command");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        for (s, want) in [
            ("32m", 32 << 20),
            ("32M", 32 << 20),
            ("32mb", 32 << 20),
            ("32MiB", 32 << 20),
            ("1g", 1 << 30),
            ("1.5k", 1536),
            ("4096", 4096),
            ("10b", 10),
        ] {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
        for bad in ["", "m", "12x", "-5m", "1..2m"] {
            assert_eq!(parse_size(bad), Err(format!("invalid size: '{bad}'")), "{bad}");
        }
        assert_eq!(parse_size_or_unlimited("-1"), Ok(-1));
    }

    #[test]
    fn cpus_are_exact_billionths() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus(".01"), Ok(10_000_000));
        assert_eq!(parse_cpus("0.000000001"), Ok(1));
        assert!(parse_cpus("abc").is_err() && parse_cpus("1.2.3").is_err() && parse_cpus("").is_err());
    }

    #[test]
    fn device_rates() {
        let d = parse_device_rate("/dev/vda:1mb").unwrap();
        assert_eq!((d.path.as_str(), d.rate), ("/dev/vda", 1 << 20));
        assert_eq!(parse_device_rate("/dev/vda"), Err("bad format: /dev/vda".into()));
        assert!(parse_device_rate("vda:1m").is_err() && parse_device_rate("/dev/vda:x").is_err());
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = parse_ulimit("nproc=64").unwrap();
        assert_eq!((u.soft, u.hard), (64, 64));
        let u = parse_ulimit("core=unlimited:-1").unwrap();
        assert_eq!((u.soft, u.hard), (-1, -1));
        assert_eq!(parse_ulimit("nofile"), Err("invalid ulimit argument: nofile".into()));
        assert!(parse_ulimit("nofile=x").is_err());
    }
}
