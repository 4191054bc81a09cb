//! The `berth.*` annotations berthd writes into a container's
//! `config.json` and the shim reads: what the runtime spec has no field
//! for.

/// The overlay's read-only layers, `:`-separated, top first.
pub const LOWERDIR: &str = "berth.rootfs.lowerdir";
/// The container's writable layer.
pub const UPPERDIR: &str = "berth.rootfs.upperdir";
/// overlayfs's work directory, beside the upper one.
pub const WORKDIR: &str = "berth.rootfs.workdir";
/// The `cgroup.procs` files the init writes its pid into.
pub const CGROUP_JOIN: &str = "berth.cgroup.join";
/// The user as the person gave it (`name[:group]`), resolved in the
/// container's own passwd and group files.
pub const USER: &str = "berth.user";
/// Log rotation: bytes a file.
pub const LOG_MAX_SIZE: &str = "berth.log.max-size";
/// Log rotation: files kept.
pub const LOG_MAX_FILE: &str = "berth.log.max-file";
/// `"true"`: the container's stdin is a pipe the shim holds open.
pub const STDIN: &str = "berth.stdin";
