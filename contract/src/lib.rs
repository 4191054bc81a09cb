//! What berth's three programs agree on, in one place, so that berthd,
//! berth-shim and berthctl can never disagree on a path, a format or a
//! protocol:
//!
//! * [`id`]: the validated [`ContainerId`];
//! * [`layout`]: a container's files and berth's two directory trees;
//! * [`exit`]: `exit.json`, the shim's record of how the init ended;
//! * [`log`]: the container log's record format and rotation limits;
//! * [`fs`]: the one atomic-write helper every state file goes through;
//! * [`annotations`]: the `berth.*` keys berthd writes into a spec and the
//!   shim reads;
//! * [`user`]: the uid/gid range every user spec is checked against;
//! * [`defaults`]: the default `PATH` and, with feature `spec`, the
//!   default capabilities and namespaces;
//! * [`seccomp`] (feature `seccomp`): compiled programs as `seccomp.bpf`
//!   holds them; with feature `spec`, Docker's profile and its compiler;
//! * [`shim_start`]: the `berth-shim start` command line and its report
//!   (pid on stdout, or a message on stderr and the exit code); and,
//!   with feature `shim-client`, [`shim_client`]: berthd's half of it and
//!   of the `shim.sock` protocol (`berth.shim.v1`);
//! * with feature `inspect`, [`inspect`]: Docker's inspect documents from
//!   `berth.v1`'s typed messages, for berthd and berthctl alike.
#![deny(unsafe_code)]

pub mod annotations;
pub mod exit;
pub mod fs;
pub mod id;
pub mod layout;
pub mod log;
pub mod shim_start;
pub mod user;

pub mod defaults;
#[cfg(feature = "inspect")]
pub mod inspect;
#[cfg(feature = "seccomp")]
pub mod seccomp;
#[cfg(feature = "shim-client")]
pub mod shim_client;

pub use exit::ExitStatus;
pub use id::ContainerId;
pub use layout::{ContainerPaths, Layout, SocketPath};

/// Unix nanoseconds now: the one unit of every time berth records.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}
