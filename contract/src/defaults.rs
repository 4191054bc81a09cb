//! What every berth container gets unless asked otherwise: Docker's
//! defaults, shared by berthd (which writes the spec) and the shim's tests.

#[cfg(feature = "spec")]
/// Docker's default capability set: these 14 and no others. berthd puts
/// them in every spec it writes.
pub const DEFAULT_CAPABILITIES: [oci_spec::runtime::Capability; 14] = {
    use oci_spec::runtime::Capability as C;
    [
        C::Chown,
        C::DacOverride,
        C::Fsetid,
        C::Fowner,
        C::Mknod,
        C::NetRaw,
        C::Setgid,
        C::Setuid,
        C::Setfcap,
        C::Setpcap,
        C::NetBindService,
        C::SysChroot,
        C::Kill,
        C::AuditWrite,
    ]
};

#[cfg(feature = "spec")]
/// The namespaces every berth container gets (Docker's set, plus cgroup).
pub const DEFAULT_NAMESPACES: [oci_spec::runtime::LinuxNamespaceType; 6] = {
    use oci_spec::runtime::LinuxNamespaceType as N;
    [N::Mount, N::Pid, N::Uts, N::Ipc, N::Network, N::Cgroup]
};

/// `PATH` when the spec's environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `/dev/shm`'s size when none is asked (Docker's 64 MiB): what the spec
/// mounts and what `inspect` shows.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;
