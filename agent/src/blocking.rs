//! The one way berthd runs blocking work off its two async worker threads:
//! redb write transactions (each commit is an fsync), `config.json` and
//! other durable writes, file-tree walks and removals, archive streams,
//! cgroup removal (it sleeps between retries). A slow disk then stalls the
//! call that waits for it, never every other RPC.
//!
//! Reads of the database stay on the async threads: they take no lock a
//! writer holds for long and never touch the disk's write path.
use std::future::Future;

use tokio::task::JoinHandle;

use crate::error::AgentError;
use crate::registry::RegistryError;

/// A blocking task that did not finish: it panicked, or the runtime is
/// shutting down.
#[derive(Debug, thiserror::Error)]
#[error("internal: blocking task failed: {0}")]
pub struct TaskLost(String);

impl From<TaskLost> for AgentError {
    fn from(e: TaskLost) -> Self {
        AgentError::Internal(e.to_string())
    }
}

impl From<TaskLost> for RegistryError {
    fn from(e: TaskLost) -> Self {
        RegistryError::Protocol(e.to_string())
    }
}

impl From<TaskLost> for std::io::Error {
    fn from(e: TaskLost) -> Self {
        std::io::Error::other(e)
    }
}

/// Runs `f` on the blocking pool and waits for its result.
pub fn run<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> impl Future<Output = Result<T, E>>
where
    T: Send + 'static,
    E: From<TaskLost> + Send + 'static,
{
    let task = tokio::task::spawn_blocking(f);
    async move { task.await.map_err(|e| E::from(TaskLost(e.to_string())))? }
}

/// Starts `f` on the blocking pool without waiting: a producer that feeds
/// a stream (an archive, a download's disk side) and reports through it.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}
