//! Pulling images from registries (OCI distribution spec) into the image
//! store.
//!
//! Shape:
//! * [`config`]: the registry part of berthd's config file (mirrors,
//!   insecure hosts, CA files, download concurrency, stall time-out).
//! * [`endpoint`]: reference → registry host (`docker.io` is served by
//!   `registry-1.docker.io`), its mirrors, the HTTP client for each.
//! * [`auth`]: `WWW-Authenticate` challenges, Basic and Bearer tokens.
//! * [`client`]: one authenticated session with an endpoint; registry
//!   answers turned into Docker's error texts.
//! * [`platform`]: choosing the node's (or `--platform`'s) manifest from
//!   an index.
//! * [`pull`]: the whole pull: resolve, fetch config and layers
//!   concurrently, each layer streamed through its digest check into the
//!   content store and unpacked as it arrives, then committed through the
//!   same staging `load` uses (`images::pull`).
//!
//! The core is async (network) and hands bytes to blocking tasks (disk):
//! berthd's async threads never write a file.

pub mod auth;
pub mod client;
pub mod config;
pub mod endpoint;
pub mod login;
pub mod platform;
pub mod pull;
pub mod push;

use std::time::Duration;

use crate::images::ImageError;

pub use config::RegistriesConfig;
pub use pull::{PullEvent, PullOptions, Puller};
pub use push::{PushEvent, PushOptions};

/// Why a pull failed. The texts are Docker's where Docker has one.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The config file is wrong.
    #[error("config file {0}")]
    Config(String),
    /// `--platform` does not parse.
    #[error("{0}")]
    InvalidPlatform(String),
    /// No connection (refused, DNS, TLS handshake, certificate).
    #[error("registry unreachable: Get \"{url}\": {cause}")]
    Unreachable { url: String, cause: String },
    /// No bytes for too long.
    #[error("{what}: no data received for {}s; the registry or the network stalled", after.as_secs_f64())]
    Stalled { what: String, after: Duration },
    /// Anonymous access refused, or the repository does not exist.
    #[error(
        "pull access denied for {repository}, repository does not exist or may require 'berthctl login'{}",
        detail_suffix(detail)
    )]
    AccessDenied { repository: String, detail: String },
    /// Credentials were given and refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The tag or digest is not in the repository.
    #[error("manifest for {reference} not found: {detail}")]
    ManifestUnknown { reference: String, detail: String },
    /// The index has no manifest for the platform.
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoMatchingManifest(String),
    /// `--platform` names another platform than the single manifest's.
    #[error("image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch { reference: String, wanted: String, actual: String },
    /// Push of a name the store does not have.
    #[error("{0}")]
    NoSuchLocalImage(String),
    /// The registry refused a write.
    #[error("{0}")]
    Denied(String),
    /// The registry answered something berth cannot use.
    #[error("{0}")]
    Protocol(String),
    /// The client went away.
    #[error("pull cancelled")]
    Cancelled,
    /// Storing the image failed, or the content was wrong.
    #[error(transparent)]
    Image(#[from] ImageError),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// How the RPC layer should classify a [`RegistryError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryErrorKind {
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Cancelled,
    Image,
    Internal,
}

impl RegistryError {
    pub fn kind(&self) -> RegistryErrorKind {
        match self {
            Self::Config(_) | Self::InvalidPlatform(_) => RegistryErrorKind::InvalidArgument,
            Self::ManifestUnknown { .. } | Self::NoMatchingManifest(_) | Self::PlatformMismatch { .. } => {
                RegistryErrorKind::NotFound
            }
            Self::NoSuchLocalImage(_) => RegistryErrorKind::NotFound,
            Self::AccessDenied { .. } | Self::Denied(_) => RegistryErrorKind::PermissionDenied,
            Self::Unauthorized(_) => RegistryErrorKind::Unauthenticated,
            Self::Unreachable { .. } | Self::Stalled { .. } => RegistryErrorKind::Unavailable,
            Self::Cancelled => RegistryErrorKind::Cancelled,
            Self::Image(_) => RegistryErrorKind::Image,
            Self::Protocol(_) => RegistryErrorKind::Internal,
        }
    }
}
