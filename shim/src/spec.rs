//! `config.json` (an OCI runtime spec written by berthd, read through the
//! shim's own model of it, [`crate::oci`]) turned into a [`Plan`]: everything the container's init needs, checked,
//! converted (C strings, flags, file descriptors of namespaces to join) and
//! resolved against the host *before* the fork, so the init does as little
//! as possible between clone and exec and a bad spec fails early with a
//! clear message.
//!
//! berth's own annotations:
//! * `berth.rootfs.lowerdir`, `berth.rootfs.upperdir`,
//!   `berth.rootfs.workdir`: the overlayfs the init mounts on `root.path`;
//!   without a lowerdir, `root.path` is bind-mounted onto itself.
//! * `berth.cgroup.join`: a JSON array of cgroup files (`tasks` on v1,
//!   `cgroup.procs` on v2) the init writes `0` into, to join its cgroup
//!   before it unshares its cgroup namespace.
//! * `berth.user`: the user as the person gave it (see [`crate::user`]).
//! * `berth.log.max-size` (bytes) and `berth.log.max-file`: how the shim
//!   rotates `container.log` (see [`crate::logfile`]); when absent,
//!   [`LogLimits::DEFAULT`].
//! * `berth.stdin`: `true` keeps the process's stdin open (a pipe, or the
//!   terminal) for attaches, Docker's `-i`.
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use caps::CapsHashSet;
use nix::sys::resource::Resource;

use crate::error::ShimError;
use crate::namespaces::NsPlan;
use crate::oci::{Linux, Spec};
use crate::rootfs::RootfsPlan;
use crate::user::UserRequest;
use berth_contract::annotations as key;
use berth_contract::defaults::DEFAULT_PATH;
use berth_contract::log::LogLimits;
use berth_contract::seccomp::Program;
use berth_contract::ContainerPaths;

/// Everything the init will do, prepared in the shim.
#[derive(Debug)]
pub struct Plan {
    pub namespaces: NsPlan,
    /// cgroup files to write `0` into, host paths.
    pub cgroup_join: Vec<PathBuf>,
    pub rootfs: RootfsPlan,
    pub hostname: Option<String>,
    /// `/proc/sys/...` file and value.
    pub sysctl: Vec<(PathBuf, String)>,
    pub process: ProcessPlan,
    /// How `container.log` is rotated.
    pub log: LogLimits,
    pub stdio: StdioPlan,
}

/// How the init's stdio is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StdioPlan {
    /// A terminal (`process.terminal`) of this many columns and rows
    /// (`process.consoleSize`; 0 when not given).
    pub terminal: Option<(u16, u16)>,
    /// stdin kept open for attaches (`berth.stdin`), else `/dev/null`.
    pub open_stdin: bool,
}

/// The container's process.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    /// `args[0]` as given, for lookup and messages.
    pub arg0: String,
    pub env: Vec<CString>,
    /// Whether `env` sets `HOME` (else the init adds the user's home).
    pub env_has_home: bool,
    /// `PATH` from `env`, for the executable lookup.
    pub path: String,
    pub cwd: PathBuf,
    pub user: UserRequest,
    pub umask: u32,
    pub no_new_privileges: bool,
    pub capabilities: Option<CapsPlan>,
    /// Resource, soft, hard.
    pub rlimits: Vec<(Resource, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    /// `(st_dev, st_ino)` of the shim's own binary: the init refuses to exec
    /// it (CVE-2019-5736: a container re-executing its runtime through
    /// `/proc/self/exe` can then overwrite it on the host).
    pub shim_exe: Option<(u64, u64)>,
    /// `linux.seccomp`, compiled; shared by the init and every exec.
    pub seccomp: Option<std::sync::Arc<Program>>,
}

/// `process.capabilities`, in the `caps` crate's types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapsPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// Reads and parses `config.json`.
pub fn load(paths: &ContainerPaths) -> Result<Spec, ShimError> {
    let path = paths.config_file();
    let bytes = std::fs::read(&path).map_err(|source| ShimError::ReadSpec { path: path.clone(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| ShimError::ParseSpec { path, source })
}

/// Builds the plan; every error here is the spec's fault.
pub fn plan(spec: &Spec, paths: &ContainerPaths) -> Result<Plan, ShimError> {
    let annotations = &spec.annotations;
    let linux = spec.linux.as_ref().ok_or_else(|| ShimError::Spec("config.json has no linux section".into()))?;
    let namespaces = NsPlan::new(&linux.namespaces)?;
    let hostname = spec.hostname.clone().filter(|h| !h.is_empty());
    if hostname.is_some() && !namespaces.new_uts() {
        return Err(ShimError::Spec("cannot set the hostname without a private UTS namespace".into()));
    }
    let cgroup_join = match annotations.get(key::CGROUP_JOIN) {
        Some(json) => parse_cgroup_join(json)?,
        None => Vec::new(),
    };
    let mut sysctl = Vec::new();
    for (key, value) in &linux.sysctl {
        let rel = key.replace('.', "/");
        if rel.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(ShimError::Spec(format!("invalid sysctl {key:?}")));
        }
        sysctl.push((Path::new("/proc/sys").join(rel), value.clone()));
    }
    Ok(Plan {
        namespaces,
        cgroup_join,
        rootfs: RootfsPlan::new(spec, paths, annotations)?,
        hostname,
        sysctl,
        process: ProcessPlan { seccomp: seccomp_plan(linux, paths)?, ..process_plan(spec, annotations)? },
        log: log_limits(annotations)?,
        stdio: stdio_plan(spec, annotations),
    })
}

fn log_limits(annotations: &HashMap<String, String>) -> Result<LogLimits, ShimError> {
    fn number<T: std::str::FromStr>(annotations: &HashMap<String, String>, key: &str) -> Result<Option<T>, ShimError> {
        annotations
            .get(key)
            .map(|v| v.parse().map_err(|_| ShimError::Spec(format!("invalid annotation {key}: {v:?} is not a number"))))
            .transpose()
    }
    let limits = LogLimits {
        max_size: number(annotations, key::LOG_MAX_SIZE)?.unwrap_or(LogLimits::DEFAULT.max_size),
        max_files: number(annotations, key::LOG_MAX_FILE)?.unwrap_or(LogLimits::DEFAULT.max_files),
    };
    if !limits.valid() {
        return Err(ShimError::Spec(format!(
            "invalid log limits: max-size {} must be more than 0, max-file {} from 1 to {}",
            limits.max_size,
            limits.max_files,
            LogLimits::MAX_FILES
        )));
    }
    Ok(limits)
}

fn stdio_plan(spec: &Spec, annotations: &HashMap<String, String>) -> StdioPlan {
    let process = spec.process.as_ref();
    let terminal = process.filter(|p| p.terminal).map(|p| match p.console_size {
        Some(b) => (b.width.min(u64::from(u16::MAX)) as u16, b.height.min(u64::from(u16::MAX)) as u16),
        None => (0, 0),
    });
    StdioPlan { terminal, open_stdin: annotations.get(key::STDIN).is_some_and(|v| v == "true") }
}

impl ProcessPlan {
    /// The plan of a process exec'd into the running container: this one's
    /// capabilities, limits and umask, with its own command, environment,
    /// working directory and user (empty: root).
    pub fn for_exec(&self, args: &[String], env: &[String], cwd: &str, user: &str) -> Result<Self, ShimError> {
        let arg0 = args
            .first()
            .filter(|a| !a.is_empty())
            .cloned()
            .ok_or_else(|| ShimError::Spec("no command given to exec".into()))?;
        let cwd = PathBuf::from(if cwd.is_empty() { "/" } else { cwd });
        if !cwd.is_absolute() {
            return Err(ShimError::Spec(format!("the working directory {} is not absolute", cwd.display())));
        }
        Ok(Self {
            args: c_strings(args, "exec args")?,
            arg0,
            env_has_home: env.iter().any(|e| e.starts_with("HOME=")),
            env: c_strings(env, "exec env")?,
            path: env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH).to_owned(),
            cwd,
            user: UserRequest::new(Some(user), &crate::oci::User::default()),
            ..self.clone()
        })
    }
}

/// `linux.seccomp` as the program berthd compiled into `seccomp.bpf`. A
/// spec with a profile and no program is refused: the container never runs
/// without the filter it was given.
fn seccomp_plan(linux: &Linux, paths: &ContainerPaths) -> Result<Option<std::sync::Arc<Program>>, ShimError> {
    if linux.seccomp.is_none() {
        return Ok(None);
    }
    let path = paths.seccomp_program();
    let bytes = std::fs::read(&path).map_err(|e| ShimError::sys(format!("read {}", path.display()), e))?;
    Ok(Some(std::sync::Arc::new(Program::from_bytes(&bytes)?)))
}

fn parse_cgroup_join(json: &str) -> Result<Vec<PathBuf>, ShimError> {
    let list: Vec<PathBuf> = serde_json::from_str(json)
        .map_err(|e| ShimError::Spec(format!("invalid annotation {}: {e}", key::CGROUP_JOIN)))?;
    if let Some(bad) = list.iter().find(|p| !p.is_absolute()) {
        return Err(ShimError::Spec(format!(
            "invalid annotation {}: {} is not absolute",
            key::CGROUP_JOIN,
            bad.display()
        )));
    }
    Ok(list)
}

fn process_plan(spec: &Spec, annotations: &HashMap<String, String>) -> Result<ProcessPlan, ShimError> {
    let process = spec.process.as_ref().ok_or_else(|| ShimError::Spec("config.json has no process".into()))?;
    let args = &process.args;
    let arg0 = args
        .first()
        .filter(|a| !a.is_empty())
        .cloned()
        .ok_or_else(|| ShimError::Spec("process.args is empty".into()))?;
    let env = &process.env;
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH).to_owned();
    let cwd = process.cwd.clone();
    if !cwd.is_absolute() {
        return Err(ShimError::Spec(format!("process.cwd {} is not absolute", cwd.display())));
    }
    let rlimits =
        process.rlimits.iter().map(|r| Ok((resource(&r.typ)?, r.soft, r.hard))).collect::<Result<_, ShimError>>()?;
    Ok(ProcessPlan {
        args: c_strings(args, "process.args")?,
        arg0,
        env_has_home: env.iter().any(|e| e.starts_with("HOME=")),
        env: c_strings(env, "process.env")?,
        path,
        cwd,
        user: UserRequest::new(annotations.get(key::USER).map(String::as_str), &process.user),
        umask: process.user.umask.unwrap_or(0o022),
        no_new_privileges: process.no_new_privileges,
        capabilities: process
            .capabilities
            .as_ref()
            .map(|c| -> Result<CapsPlan, ShimError> {
                Ok(CapsPlan {
                    bounding: caps_set(&c.bounding)?,
                    effective: caps_set(&c.effective)?,
                    permitted: caps_set(&c.permitted)?,
                    inheritable: caps_set(&c.inheritable)?,
                    ambient: caps_set(&c.ambient)?,
                })
            })
            .transpose()?,
        rlimits,
        oom_score_adj: process.oom_score_adj,
        shim_exe: std::fs::metadata("/proc/self/exe").ok().map(|m| (m.dev(), m.ino())),
        seccomp: None,
    })
}

fn c_strings(list: &[String], what: &str) -> Result<Vec<CString>, ShimError> {
    list.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ShimError::Spec(format!("{what} contains a NUL byte: {s:?}"))))
        .collect()
}

/// An OCI capability set (`CAP_CHOWN`, ...) in the `caps` crate's type.
fn caps_set(names: &[String]) -> Result<CapsHashSet, ShimError> {
    names
        .iter()
        .map(|name| name.parse::<caps::Capability>().map_err(|_| ShimError::Spec(format!("unknown capability {name}"))))
        .collect()
}

/// `RLIMIT_NOFILE` and the like: the limits the spec names.
fn resource(name: &str) -> Result<Resource, ShimError> {
    Ok(match name {
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        other => return Err(ShimError::Spec(format!("unknown rlimit {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability;

    #[test]
    fn capability_names_map_to_caps() {
        // As berthd writes them (oci-spec's names).
        let set: Vec<String> = [
            Capability::Chown,
            Capability::NetBindService,
            Capability::AuditWrite,
            Capability::Bpf,
            Capability::CheckpointRestore,
            Capability::SysAdmin,
        ]
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap().as_str().unwrap().to_owned())
        .collect();
        let got = caps_set(&set).unwrap();
        for want in [
            caps::Capability::CAP_CHOWN,
            caps::Capability::CAP_NET_BIND_SERVICE,
            caps::Capability::CAP_AUDIT_WRITE,
            caps::Capability::CAP_BPF,
            caps::Capability::CAP_CHECKPOINT_RESTORE,
            caps::Capability::CAP_SYS_ADMIN,
        ] {
            assert!(got.contains(&want), "{want}");
        }
        assert_eq!(got.len(), 6);
        let err = caps_set(&["CAP_NOPE".to_owned()]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability CAP_NOPE");
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(resource("RLIMIT_NOFILE").unwrap(), Resource::RLIMIT_NOFILE);
        assert_eq!(resource("RLIMIT_RTTIME").unwrap(), Resource::RLIMIT_RTTIME);
        assert_eq!(resource("RLIMIT_BOGUS").unwrap_err().to_string(), "unknown rlimit \"RLIMIT_BOGUS\"");
    }

    #[test]
    fn log_limit_annotations() {
        let ann = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(log_limits(&ann(&[])).unwrap(), LogLimits::DEFAULT);
        assert_eq!(
            log_limits(&ann(&[(key::LOG_MAX_SIZE, "102400"), (key::LOG_MAX_FILE, "2")])).unwrap(),
            LogLimits { max_size: 102_400, max_files: 2 }
        );
        assert_eq!(log_limits(&ann(&[(key::LOG_MAX_FILE, "1")])).unwrap().max_size, LogLimits::DEFAULT.max_size);
        for (pairs, want) in [
            (&[(key::LOG_MAX_SIZE, "10m")][..], "invalid annotation berth.log.max-size: \"10m\" is not a number"),
            (&[(key::LOG_MAX_FILE, "-1")][..], "invalid annotation berth.log.max-file: \"-1\" is not a number"),
            (&[(key::LOG_MAX_SIZE, "0")][..], "max-size 0 must be more than 0"),
            (&[(key::LOG_MAX_FILE, "0")][..], "max-file 0 from 1 to 100"),
            (&[(key::LOG_MAX_FILE, "101")][..], "max-file 101 from 1 to 100"),
        ] {
            let err = log_limits(&ann(pairs)).unwrap_err().to_string();
            assert!(err.contains(want), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn cgroup_join_annotation() {
        assert_eq!(
            parse_cgroup_join(r#"["/sys/fs/cgroup/pids/x/cgroup.procs"]"#).unwrap(),
            vec![PathBuf::from("/sys/fs/cgroup/pids/x/cgroup.procs")]
        );
        assert!(parse_cgroup_join("[]").unwrap().is_empty());
        for (bad, want) in [
            ("nope", "invalid annotation berth.cgroup.join: expected"),
            (r#"["rel/cgroup.procs"]"#, "rel/cgroup.procs is not absolute"),
        ] {
            let err = parse_cgroup_join(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
