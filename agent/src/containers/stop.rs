//! `stop` and `kill`: signals through the shim. `stop` sends the image's
//! stop signal (SIGTERM by default), waits, then SIGKILLs.
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{ContainerError, InvalidError, Wanted};
use super::{ContainerRecord, Manager};
use crate::error::{AgentError, Result};
use berth_contract::shim_client::ShimClient;

/// Docker's default grace period.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> Result<i32> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Signal::SIGKILL as i32);
    }
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map(|sig| sig as i32)
            .map_err(|_| ContainerError::from(InvalidError::Signal { signal: s.to_owned() }).into());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| ContainerError::from(InvalidError::Signal { signal: s.to_owned() }).into())
}

impl Manager {
    async fn signal(self: &Arc<Self>, rec: &ContainerRecord, signal: i32) -> Result<()> {
        match ShimClient::new(&self.paths(rec)).kill(signal).await {
            Ok(_) => Ok(()),
            Err(e) if e.not_running() => {
                Err(ContainerError::wrong_state(&rec.name, rec.state.status, Wanted::Running).into())
            }
            Err(e) => Err(AgentError::Shim { id: rec.short_id().to_owned(), message: e.to_string() }),
        }
    }

    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn kill(self: &Arc<Self>, key: &str, signal: &str) -> Result<ContainerRecord> {
        let signal = parse_signal(signal)?;
        let rec = self.refresh(key).await?;
        if !rec.state.status.can_stop() {
            return Err(ContainerError::wrong_state(&rec.name, rec.state.status, Wanted::Running).into());
        }
        // As Docker: any signal a user sends counts as a stop by hand.
        self.mark_manually_stopped(&rec.id).await?;
        self.signal(&rec, signal).await?;
        if signal == Signal::SIGKILL as i32 {
            // Other signals wait, pending, for the unpause (Docker).
            self.thaw_for_signal(&rec.id).await?;
            self.wait_exit(&rec.id, Duration::from_secs(10)).await;
        }
        self.lookup(&rec.id).or_else(|_| Ok(rec))
    }

    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn stop(self: &Arc<Self>, key: &str, timeout: Option<Duration>) -> Result<ContainerRecord> {
        let rec = self.refresh(key).await?;
        if !rec.state.status.can_stop() {
            // Stopping a stopped container is not an error (Docker).
            return Ok(rec);
        }
        let sig = if rec.process.stop_signal.is_empty() {
            Signal::SIGTERM as i32
        } else {
            parse_signal(&rec.process.stop_signal).unwrap_or(Signal::SIGTERM as i32)
        };
        let kept = rec.process.stop_timeout.map(|s| Duration::from_secs(s.max(0) as u64));
        let timeout = timeout.or(kept).unwrap_or(DEFAULT_STOP_TIMEOUT);
        self.mark_manually_stopped(&rec.id).await?;
        match self.signal(&rec, sig).await {
            Ok(()) | Err(AgentError::Container(ContainerError::WrongState { .. })) => {}
            Err(e) => return Err(e),
        }
        // A paused container stops too: thawed, it gets the signal.
        self.thaw_for_signal(&rec.id).await?;
        if !self.wait_exit(&rec.id, timeout).await {
            tracing::info!("stop signal ignored, sending SIGKILL");
            match self.signal(&rec, Signal::SIGKILL as i32).await {
                Ok(()) | Err(AgentError::Container(ContainerError::WrongState { .. })) => {}
                Err(e) => return Err(e),
            }
            self.wait_exit(&rec.id, Duration::from_secs(10)).await;
        }
        self.lookup(&rec.id).or_else(|_| Ok(rec))
    }

    /// `restart`: `stop` with its grace period, then `start`; a container
    /// that does not run is just started (Docker).
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn restart(self: &Arc<Self>, key: &str, timeout: Option<Duration>) -> Result<ContainerRecord> {
        let rec = self.stop(key, timeout).await?;
        self.start(&rec.id).await
    }

    /// Waits (bounded) for the exit to be recorded; true if it was.
    pub(crate) async fn wait_exit(self: &Arc<Self>, id: &str, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait(id)).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGHUP").unwrap(), 1);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("NOPE").unwrap_err().to_string(), "invalid signal: NOPE");
        assert!(parse_signal("99").is_err());
    }
}
