//! The OCI runtime spec (`config.json`) berthd writes for the shim: the
//! process from the record, Docker's defaults for isolation, and berth's
//! annotations for what the spec has no field for (the overlay layers, the
//! cgroup files to join, the user as the person gave it, the log's
//! rotation).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
    MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
};

use super::resources::rlimit_name;
use super::{ContainerRecord, Resources};
use crate::cgroups::Limits;
use crate::error::{AgentError, Result};

// The annotation keys and defaults are the contract's: one definition for
// berthd and the shim.
use berth_contract::annotations::{CGROUP_JOIN, LOG_MAX_FILE, LOG_MAX_SIZE, LOWERDIR, UPPERDIR, USER, WORKDIR};
use berth_contract::defaults::{DEFAULT_CAPABILITIES as DEFAULT_CAPS, DEFAULT_NAMESPACES};

/// Everything the spec needs besides the record.
pub struct SpecInputs<'a> {
    /// Image layer directories, uppermost first.
    pub lower: &'a [PathBuf],
    pub upper: &'a Path,
    pub work: &'a Path,
    pub cgroup_path: &'a str,
    pub cgroup_join: &'a [PathBuf],
}

/// Where `--init`'s binary appears in the container (Docker's place).
pub const INIT_TARGET: &str = "/sbin/docker-init";

/// Static init binaries berth can give a container, first found wins:
/// Debian's tini-static, then Docker's docker-init. A dynamic one would not
/// run in an image without the host's libc.
const INIT_BINARIES: [&str; 3] = ["/usr/bin/tini-static", "/usr/libexec/docker/docker-init", "/usr/bin/docker-init"];

/// The host's init binary for `--init`.
pub fn init_binary() -> Result<&'static str> {
    INIT_BINARIES
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| super::ContainerError::from(super::InvalidError::NoInit { path: INIT_BINARIES[0] }).into())
}

fn spec_err(e: impl std::fmt::Display) -> AgentError {
    AgentError::Internal(format!("build runtime spec: {e}"))
}

/// Builds the spec for one start of `rec`.
pub fn build(rec: &ContainerRecord, inputs: &SpecInputs<'_>) -> Result<Spec> {
    let p = &rec.process;
    // A numeric user needs no lookup; a name is resolved by the shim inside
    // the container's own /etc/passwd.
    let (uid, gid) = numeric_user(&p.user).unwrap_or((0, 0));
    let caps: std::collections::HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        // Docker keeps these empty (CVE-2022-24769): nothing is inherited
        // across an exec of a non-setuid program by a non-root user.
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()
        .map_err(spec_err)?;
    let mut process = ProcessBuilder::default();
    if p.tty && p.console != (0, 0) {
        let size = oci_spec::runtime::BoxBuilder::default()
            .width(u64::from(p.console.0))
            .height(u64::from(p.console.1))
            .build()
            .map_err(spec_err)?;
        process = process.console_size(size);
    }
    let process = process
        .terminal(p.tty)
        .user(UserBuilder::default().uid(uid).gid(gid).additional_gids(p.group_add.clone()).build().map_err(spec_err)?)
        .args(if p.init {
            [INIT_TARGET.to_owned(), "--".to_owned()].into_iter().chain(p.args.iter().cloned()).collect()
        } else {
            p.args.clone()
        })
        .env(p.env.clone())
        .cwd(p.cwd.clone())
        .capabilities(capabilities)
        .no_new_privileges(false)
        .rlimits(rlimits(&rec.resources)?)
        .oom_score_adj(rec.resources.oom_score_adj)
        .build()
        .map_err(spec_err)?;

    let namespaces = DEFAULT_NAMESPACES
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build().map_err(spec_err))
        .collect::<Result<Vec<_>>>()?;
    let defaults = oci_spec::runtime::Linux::default();
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from("/").join(inputs.cgroup_path))
        .masked_paths(defaults.masked_paths().clone().unwrap_or_default())
        .readonly_paths(defaults.readonly_paths().clone().unwrap_or_default())
        // Docker's default profile, for Docker's default capabilities.
        .seccomp(berth_contract::seccomp::default_profile())
        // What berthd enforces through the cgroup (`devices.rs`,
        // `limits.rs`), for any OCI tool that reads the bundle.
        .resources(resources(&rec.resources.limits)?)
        .build()
        .map_err(spec_err)?;

    let mut annotations = HashMap::new();
    let lower: Vec<String> = inputs.lower.iter().map(|l| l.display().to_string()).collect();
    annotations.insert(LOWERDIR.to_owned(), lower.join(":"));
    annotations.insert(UPPERDIR.to_owned(), inputs.upper.display().to_string());
    annotations.insert(WORKDIR.to_owned(), inputs.work.display().to_string());
    annotations.insert(CGROUP_JOIN.to_owned(), serde_json::to_string(inputs.cgroup_join)?);
    if !p.user.is_empty() {
        annotations.insert(USER.to_owned(), p.user.clone());
    }
    annotations.insert(LOG_MAX_SIZE.to_owned(), rec.log.max_size.to_string());
    annotations.insert(LOG_MAX_FILE.to_owned(), rec.log.max_files.to_string());
    if p.open_stdin {
        annotations.insert(berth_contract::annotations::STDIN.to_owned(), "true".to_owned());
    }

    let mut spec = Spec::default();
    spec.set_version("1.2.0".into());
    spec.set_process(Some(process));
    spec.set_root(Some(RootBuilder::default().path("rootfs").readonly(false).build().map_err(spec_err)?));
    spec.set_hostname(Some(p.hostname.clone()));
    spec.set_linux(Some(linux));
    // `--shm-size`: the default mounts' `/dev/shm`, sized.
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in mounts.iter_mut().filter(|m| m.destination() == Path::new("/dev/shm")) {
        let mut options: Vec<String> =
            m.options().clone().unwrap_or_default().into_iter().filter(|o| !o.starts_with("size=")).collect();
        options.push(format!("size={}k", (rec.resources.shm_bytes() + 1023) / 1024));
        m.set_options(Some(options));
    }
    if p.init {
        // The host's static tini, read-only: root in the container can run
        // it, never change it (a write through /proc/1/exe meets EROFS).
        let init = MountBuilder::default()
            .destination(INIT_TARGET)
            .typ("bind")
            .source(init_binary()?)
            .options(["bind", "ro", "nosuid", "nodev"].map(String::from).to_vec())
            .build()
            .map_err(spec_err)?;
        mounts.push(init);
    }
    spec.set_mounts(Some(mounts));
    spec.set_annotations(Some(annotations));
    Ok(spec)
}

/// `--ulimit`s as `process.rlimits` (-1, unlimited, as `RLIM_INFINITY`),
/// over the default spec's (`RLIMIT_NOFILE` 1024/1024, containerd's): a
/// `--ulimit` replaces the default of its kind.
fn rlimits(r: &Resources) -> Result<Vec<PosixRlimit>> {
    let value = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    let mut out = Process::default().rlimits().clone().unwrap_or_default();
    for u in &r.ulimits {
        let name = rlimit_name(&u.name).ok_or_else(|| spec_err(format!("unknown ulimit {}", u.name)))?;
        let typ: PosixRlimitType =
            serde_json::from_value(serde_json::Value::from(name)).map_err(|e| spec_err(format!("{name}: {e}")))?;
        out.retain(|l| l.typ() != typ);
        out.push(
            PosixRlimitBuilder::default().typ(typ).soft(value(u.soft)).hard(value(u.hard)).build().map_err(spec_err)?,
        );
    }
    Ok(out)
}

/// `linux.resources`: the device rules and the limits, in the spec's terms.
fn resources(l: &Limits) -> Result<LinuxResources> {
    let mut b = LinuxResourcesBuilder::default().devices(crate::cgroups::devices::spec_rules());
    if l.memory > 0 || l.memory_reservation > 0 || l.oom_kill_disable {
        let mut m = LinuxMemoryBuilder::default().disable_oom_killer(l.oom_kill_disable);
        if l.memory > 0 {
            m = m.limit(l.memory);
        }
        if let Some(swap) = l.memory_and_swap() {
            m = m.swap(swap);
        }
        if l.memory_reservation > 0 {
            m = m.reservation(l.memory_reservation);
        }
        b = b.memory(m.build().map_err(spec_err)?);
    }
    let (quota, period) = l.cfs();
    if quota.is_some() || period.is_some() || l.cpu_shares > 0 || !l.cpuset_cpus.is_empty() || !l.cpuset_mems.is_empty()
    {
        let mut c = LinuxCpuBuilder::default();
        if let Some(q) = quota {
            c = c.quota(q);
        }
        if let Some(p) = period {
            c = c.period(p);
        }
        if let Ok(shares) = u64::try_from(l.cpu_shares) {
            if shares > 0 {
                c = c.shares(shares);
            }
        }
        if !l.cpuset_cpus.is_empty() {
            c = c.cpus(l.cpuset_cpus.clone());
        }
        if !l.cpuset_mems.is_empty() {
            c = c.mems(l.cpuset_mems.clone());
        }
        b = b.cpu(c.build().map_err(spec_err)?);
    }
    if l.blkio_weight > 0 || !l.device_read_bps.is_empty() || !l.device_write_bps.is_empty() {
        let rates = |v: &[crate::cgroups::DeviceRate]| {
            v.iter()
                .map(|d| {
                    let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    LinuxThrottleDeviceBuilder::default()
                        .major(number(d.major))
                        .minor(number(d.minor))
                        .rate(d.rate)
                        .build()
                        .map_err(spec_err)
                })
                .collect::<Result<Vec<_>>>()
        };
        let mut io = LinuxBlockIoBuilder::default()
            .throttle_read_bps_device(rates(&l.device_read_bps)?)
            .throttle_write_bps_device(rates(&l.device_write_bps)?);
        if l.blkio_weight > 0 {
            io = io.weight(l.blkio_weight);
        }
        b = b.block_io(io.build().map_err(spec_err)?);
    }
    if l.pids_limit > 0 {
        b = b.pids(LinuxPidsBuilder::default().limit(l.pids_limit).build().map_err(spec_err)?);
    }
    b.build().map_err(spec_err)
}

/// `uid` or `uid:gid`, all digits.
fn numeric_user(user: &str) -> Option<(u32, u32)> {
    if user.is_empty() {
        return Some((0, 0));
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let uid = u.parse().ok()?;
    let gid = if g.is_empty() { 0 } else { g.parse().ok()? };
    Some((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_users() {
        assert_eq!(numeric_user(""), Some((0, 0)));
        assert_eq!(numeric_user("1000"), Some((1000, 0)));
        assert_eq!(numeric_user("1000:2000"), Some((1000, 2000)));
        assert_eq!(numeric_user("berth"), None);
        assert_eq!(numeric_user("1000:staff"), None);
    }

    /// The limits and the process's own settings reach the spec, in its
    /// units: what the shim applies and what OCI tools read.
    #[test]
    fn resources_in_the_spec() {
        let mut rec: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "ab".repeat(32), "name": "web", "image": "busybox", "image_id": "sha256:00", "created": 1,
            "process": {"args": ["sh"], "env": [], "cwd": "/", "user": "", "hostname": "web", "stop_signal": ""},
            "state": {"status": "created", "pid": 0, "started_at": 0, "finished_at": 0, "exit_code": 0,
                      "oom_killed": false, "error": ""},
        }))
        .unwrap();
        let (lower, upper, work) = ([PathBuf::from("/l")], PathBuf::from("/u"), PathBuf::from("/w"));
        let inputs = SpecInputs { lower: &lower, upper: &upper, work: &work, cgroup_path: "berth/x", cgroup_join: &[] };
        let shm = |spec: &Spec| {
            let mounts = spec.mounts().clone().unwrap();
            let m = mounts.iter().find(|m| m.destination() == Path::new("/dev/shm")).unwrap();
            m.options().clone().unwrap().into_iter().filter(|o| o.starts_with("size=")).collect::<Vec<_>>()
        };
        let spec = build(&rec, &inputs).unwrap();
        assert_eq!(shm(&spec), ["size=65536k"]);
        assert!(spec.linux().as_ref().unwrap().resources().as_ref().unwrap().memory().is_none());

        rec.resources.limits.memory = 32 << 20;
        rec.resources.limits.nano_cpus = 500_000_000;
        rec.resources.limits.pids_limit = 20;
        rec.resources.shm_size = 1 << 20;
        rec.resources.oom_score_adj = 500;
        rec.resources.ulimits = vec![super::super::Ulimit { name: "nofile".into(), soft: 100, hard: -1 }];
        let spec = build(&rec, &inputs).unwrap();
        assert_eq!(shm(&spec), ["size=1024k"]);
        let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        let mem = r.memory().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(32 << 20), Some(64 << 20)));
        let cpu = r.cpu().clone().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
        assert_eq!(r.pids().unwrap().limit(), 20);
        let p = spec.process().clone().unwrap();
        assert_eq!(p.oom_score_adj(), Some(500));
        let l = &p.rlimits().clone().unwrap()[0];
        assert_eq!((l.typ(), l.soft(), l.hard()), (PosixRlimitType::RlimitNofile, 100, u64::MAX));
        assert!(r.devices().as_ref().is_some_and(|d| !d.is_empty()));
    }
}
