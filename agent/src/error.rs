//! `AgentError`: every failure the core can return, rolled up from each
//! layer's own error type. The gRPC status code of each kind is chosen once,
//! in `api::status`.
use crate::containers::ContainerError;
use crate::images::ImageError;
use crate::limits::LimitError;
use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `No such container: x`, and the like.
    #[error("{0}")]
    NotFound(String),
    /// Bad input from the caller.
    #[error("{0}")]
    InvalidArgument(String),
    /// The call does not fit the object's state (`container web is not running`).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A name already held by another object.
    #[error("{0}")]
    AlreadyExists(String),
    /// The container's process could not be started; the text says why in
    /// the words of the runtime (`exec: "x": executable file not found in $PATH`).
    #[error("failed to start container {id}: {message}")]
    StartFailed { id: String, message: String, code: i32 },
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
