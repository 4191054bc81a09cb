//! berthd's configuration: where its state lives, where the shim is, and
//! what the config file (`--config`, TOML) says about registries.
use std::path::PathBuf;

use berth_shim::layout::Layout;

use crate::registry::RegistriesConfig;

/// Flags and environment of berthd, resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// Persistent state (`/var/lib/berth`).
    pub root: PathBuf,
    /// Runtime state on tmpfs (`/run/berth`).
    pub state: PathBuf,
    /// The gRPC unix socket.
    pub socket: PathBuf,
    /// The `berth-shim` binary.
    pub shim: PathBuf,
    /// Mirrors, CAs, insecure hosts, download limits (`docs/registries.md`).
    pub registries: RegistriesConfig,
    /// Connections one peer uid may hold open on the socket; more are
    /// closed as they come (`server::peers`).
    pub max_connections_per_uid: usize,
    /// Start a new metadata database over a root that holds state (its
    /// old one lost); nothing on disk is deleted then.
    pub reinit_metadata: bool,
    /// The group that may use the socket (Docker's `-G`); `None`: `berth`
    /// if the host has it.
    pub group: Option<String>,
}

impl Config {
    pub fn layout(&self) -> Layout {
        Layout::new(&self.root, &self.state)
    }

    /// The shim beside the running berthd, else `berth-shim` from `PATH`.
    pub fn default_shim() -> PathBuf {
        if let Ok(exe) = std::env::current_exe() {
            let beside = exe.with_file_name("berth-shim");
            if beside.exists() {
                return beside;
            }
        }
        PathBuf::from("berth-shim")
    }
}
