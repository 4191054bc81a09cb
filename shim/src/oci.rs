//! The parts of an OCI runtime spec (`config.json`) the shim reads, and
//! nothing else.
//!
//! berthd writes the whole spec with the `oci-spec` crate; the shim parses
//! only these fields (others are ignored, as the spec allows). Its own
//! small model keeps `oci-spec` and what it brings (a regex engine and its
//! Unicode tables, thousands of relocated pointers) out of a process that
//! lives as long as its container: every relocated page is a private,
//! dirty page of each shim. Field names and value types are the spec's
//! (runtime-spec 1.x, `config.md` and `config-linux.md`); the shim's tests
//! check that what `oci-spec` writes parses here.
use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub process: Option<Process>,
    #[serde(default)]
    pub root: Option<Root>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub linux: Option<Linux>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default)]
    pub console_size: Option<ConsoleSize>,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub cwd: PathBuf,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct ConsoleSize {
    pub height: u64,
    pub width: u64,
}

/// `process.user`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub umask: Option<u32>,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// `process.capabilities`: names as the spec writes them (`CAP_CHOWN`).
#[derive(Debug, Default, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

/// One of `process.rlimits`: `type` is `RLIMIT_NOFILE` and the like.
#[derive(Debug, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub typ: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Deserialize)]
pub struct Root {
    pub path: PathBuf,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mount {
    pub destination: PathBuf,
    #[serde(default, rename = "type")]
    pub typ: Option<String>,
    #[serde(default)]
    pub source: Option<PathBuf>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default)]
    pub sysctl: HashMap<String, String>,
    #[serde(default)]
    pub rootfs_propagation: Option<String>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// Only whether it is there: berthd compiles the profile into
    /// `seccomp.bpf`, which the shim loads.
    #[serde(default)]
    pub seccomp: Option<serde::de::IgnoredAny>,
}

/// One of `linux.namespaces`.
#[derive(Debug, Clone, Deserialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub typ: NamespaceType,
    #[serde(default)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceType {
    Pid,
    Network,
    Mount,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

/// One of `linux.devices`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(rename = "type")]
    pub typ: DeviceType,
    pub path: PathBuf,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default)]
    pub file_mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DeviceType {
    /// Character (`c`, and `u`: unbuffered character).
    #[serde(rename = "c", alias = "u")]
    Char,
    #[serde(rename = "b")]
    Block,
    #[serde(rename = "p")]
    Fifo,
    /// `a`: only meaningful in cgroup device rules.
    #[serde(rename = "a")]
    All,
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime as full;
    use std::path::Path;

    /// A spec as berthd builds it (through `oci-spec`, with every section
    /// the shim reads), serialized and parsed back with the shim's model.
    #[test]
    fn what_oci_spec_writes_parses_here() {
        let mut spec = full::Spec::default();
        let mut process = spec.process().clone().unwrap();
        process.set_terminal(Some(true));
        process.set_console_size(Some(full::BoxBuilder::default().height(24u64).width(80u64).build().unwrap()));
        process.set_user(
            full::UserBuilder::default()
                .uid(1000u32)
                .gid(1001u32)
                .umask(0o027u32)
                .additional_gids(vec![5u32, 6])
                .build()
                .unwrap(),
        );
        process.set_args(Some(vec!["sh".into(), "-c".into(), "true".into()]));
        process.set_cwd("/work".into());
        process.set_no_new_privileges(Some(true));
        process.set_oom_score_adj(Some(-500));
        process.set_rlimits(Some(vec![full::PosixRlimitBuilder::default()
            .typ(full::PosixRlimitType::RlimitNofile)
            .hard(4096u64)
            .soft(1024u64)
            .build()
            .unwrap()]));
        spec.set_process(Some(process));
        spec.set_hostname(Some("box".into()));
        spec.set_annotations(Some([("berth.stdin".to_string(), "true".to_string())].into()));
        let mut linux = spec.linux().clone().unwrap();
        linux.set_devices(Some(vec![full::LinuxDeviceBuilder::default()
            .typ(full::LinuxDeviceType::C)
            .path("/dev/fuse")
            .major(10)
            .minor(229)
            .file_mode(0o620u32)
            .uid(0u32)
            .gid(0u32)
            .build()
            .unwrap()]));
        linux.set_sysctl(Some([("net.ipv4.ip_forward".to_string(), "1".to_string())].into()));
        linux.set_rootfs_propagation(Some("rprivate".into()));
        linux.set_seccomp(Some(berth_contract::seccomp::default_profile()));
        let mut namespaces = linux.namespaces().clone().unwrap();
        namespaces.push(
            full::LinuxNamespaceBuilder::default()
                .typ(full::LinuxNamespaceType::Network)
                .path("/proc/1/ns/net")
                .build()
                .unwrap(),
        );
        linux.set_namespaces(Some(namespaces));
        spec.set_linux(Some(linux));
        let json = serde_json::to_vec(&spec).unwrap();

        let got: Spec = serde_json::from_slice(&json).unwrap();
        let p = got.process.as_ref().unwrap();
        assert!(p.terminal && p.no_new_privileges);
        let size = p.console_size.unwrap();
        assert_eq!((size.height, size.width), (24, 80));
        assert_eq!((p.user.uid, p.user.gid, p.user.umask), (1000, 1001, Some(0o027)));
        assert_eq!(p.user.additional_gids, [5, 6]);
        assert_eq!(p.args, ["sh", "-c", "true"]);
        assert_eq!(p.cwd, PathBuf::from("/work"));
        assert_eq!(p.oom_score_adj, Some(-500));
        assert_eq!((p.rlimits[0].typ.as_str(), p.rlimits[0].soft, p.rlimits[0].hard), ("RLIMIT_NOFILE", 1024, 4096));
        assert!(p.env.iter().any(|e| e.starts_with("PATH=")));
        let caps = p.capabilities.as_ref().unwrap();
        assert!(caps.bounding.iter().any(|c| c == "CAP_KILL"), "{:?}", caps.bounding);
        assert_eq!(got.root.as_ref().unwrap().path, PathBuf::from("rootfs"));
        assert_eq!(got.hostname.as_deref(), Some("box"));
        assert_eq!(got.annotations["berth.stdin"], "true");
        let proc_mount = got.mounts.iter().find(|m| m.destination == Path::new("/proc")).unwrap();
        assert_eq!((proc_mount.typ.as_deref(), proc_mount.source.as_deref()), (Some("proc"), Some("proc".as_ref())));
        let dev = got.mounts.iter().find(|m| m.destination == Path::new("/dev")).unwrap();
        assert!(dev.options.iter().any(|o| o == "nosuid"));
        let l = got.linux.as_ref().unwrap();
        let d = &l.devices[0];
        assert_eq!((d.typ, d.major, d.minor, d.file_mode, d.uid), (DeviceType::Char, 10, 229, Some(0o620), Some(0)));
        assert_eq!(d.path, PathBuf::from("/dev/fuse"));
        assert_eq!(l.sysctl["net.ipv4.ip_forward"], "1");
        assert_eq!(l.rootfs_propagation.as_deref(), Some("rprivate"));
        assert!(l.seccomp.is_some());
        assert!(!l.masked_paths.is_empty() && !l.readonly_paths.is_empty());
        assert!(l.namespaces.iter().any(|n| n.typ == NamespaceType::Mount && n.path.is_none()));
        let net = l.namespaces.iter().find(|n| n.typ == NamespaceType::Network && n.path.is_some()).unwrap();
        assert_eq!(net.path.as_deref(), Some("/proc/1/ns/net".as_ref()));
    }

    #[test]
    fn every_device_and_namespace_type_parses() {
        for (text, want) in [
            ("c", DeviceType::Char),
            ("u", DeviceType::Char),
            ("b", DeviceType::Block),
            ("p", DeviceType::Fifo),
            ("a", DeviceType::All),
        ] {
            let d: Device = serde_json::from_str(&format!(r#"{{"type":"{text}","path":"/dev/x"}}"#)).unwrap();
            assert_eq!(d.typ, want, "{text}");
        }
        for t in ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"] {
            let n: Namespace = serde_json::from_str(&format!(r#"{{"type":"{t}"}}"#)).unwrap();
            assert_eq!(format!("{:?}", n.typ).to_lowercase(), t);
        }
        assert!(serde_json::from_str::<Namespace>(r#"{"type":"bogus"}"#).is_err());
    }
}
