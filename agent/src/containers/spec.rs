//! The OCI runtime spec (`config.json`) berthd writes for the shim: the
//! process from the record, Docker's defaults for isolation, and berth's
//! annotations for what the spec has no field for (the overlay layers, the
//! cgroup files to join, the user as the person gave it, the log's
//! rotation).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
};

use super::ContainerRecord;
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
        .user(UserBuilder::default().uid(uid).gid(gid).build().map_err(spec_err)?)
        .args(p.args.clone())
        .env(p.env.clone())
        .cwd(p.cwd.clone())
        .capabilities(capabilities)
        .no_new_privileges(false)
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
        // What berthd enforces through the cgroup (`devices.rs`), for any
        // OCI tool that reads the bundle.
        .resources(
            oci_spec::runtime::LinuxResourcesBuilder::default()
                .devices(crate::cgroups::devices::spec_rules())
                .build()
                .map_err(spec_err)?,
        )
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
    spec.set_annotations(Some(annotations));
    Ok(spec)
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
}
