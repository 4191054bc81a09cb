//! berthd's configuration: where its state lives, where the shim is, and
//! what the config file (`--config`, TOML) says about registries and
//! images.
use std::path::PathBuf;

use berth_contract::Layout;
use serde::Deserialize;

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

/// `[images]` of the config file (`docs/choices.md`):
///
/// ```toml
/// [images]
/// max_layer_bytes = 68719476736  # 64 GiB: most one layer may expand to
/// max_expansion_ratio = 1000     # past 1 GiB written, per byte of blob; 0: off
/// ```
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    pub max_layer_bytes: Option<u64>,
    pub max_expansion_ratio: Option<u64>,
}

impl ImagesConfig {
    /// The unpack limits, defaults where the file says nothing.
    pub fn limits(&self) -> crate::images::unpack::Limits {
        let d = crate::images::unpack::Limits::default();
        crate::images::unpack::Limits {
            max_layer_bytes: self.max_layer_bytes.unwrap_or(d.max_layer_bytes),
            max_expansion_ratio: self.max_expansion_ratio.unwrap_or(d.max_expansion_ratio),
        }
    }
}
