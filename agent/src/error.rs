//! `AgentError`: every failure the core can return, rolled up from each
//! service's own error type (containers, images, registry, limits), plus
//! what only berthd's start-up or its plumbing (I/O, the database, cgroups,
//! a shim) can fail with. The gRPC status code of each kind is chosen once,
//! in `api::status`.
use crate::containers::ContainerError;
use crate::images::ImageError;
use crate::limits::LimitError;
use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// berthd cannot start here: another berthd holds the socket or the
    /// database, the database is lost, the socket's group or the shim
    /// binary is missing. Never an RPC's answer.
    #[error("{0}")]
    Startup(String),
    /// Input over one of berthd's bounds (`limits.rs`).
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata database: {0}")]
    Db(String),
    #[error("cgroup {path}: {message}")]
    Cgroup { path: String, message: String },
    #[error("shim of container {id}: {message}")]
    Shim { id: String, message: String },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;

/// Adds the "what were we doing" context to an `io::Error`.
pub trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| AgentError::Io { context: what(), source })
    }
}

macro_rules! db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for AgentError {
            fn from(e: $t) -> Self {
                AgentError::Db(e.to_string())
            }
        }
    )*};
}
db_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

impl From<crate::tree::TreeError> for AgentError {
    fn from(e: crate::tree::TreeError) -> Self {
        AgentError::Io { context: format!("{} {}", e.what, e.shown()), source: e.errno.into() }
    }
}
