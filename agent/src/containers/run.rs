//! `run` as one sequence for every front end: a created container's log
//! opened from its first byte, the start, the output followed to the
//! recorded exit. berthd's `Containers.Run` streams it; the kubelet's CRI
//! will not need it, but a second CLI-like front end would.
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::{ContainerRecord, ExitEvent, LogOptions, LogRecord, Manager};
use crate::error::{AgentError, Result};

/// What a run reports, in this order: `Started` or `StartFailed` (last),
/// then `Log` records, then `Exit`.
#[derive(Debug)]
pub enum RunEvent {
    Started {
        pid: u32,
    },
    /// Nothing runs; an auto-remove container is already removed.
    StartFailed(AgentError),
    Log(LogRecord),
    Exit(ExitEvent),
}

impl Manager {
    /// Starts the created container `rec` and reports on `tx` until its
    /// exit (or, with `detach`, until it runs). A receiver that goes away
    /// ends the report; the container runs on.
    pub async fn run_created(
        self: &Arc<Self>,
        rec: ContainerRecord,
        detach: bool,
        tx: mpsc::Sender<RunEvent>,
    ) -> Result<()> {
        let id = rec.id.clone();
        // Subscribed before the start: the exit cannot be missed.
        let mut exits = self.exits.subscribe();
        let (log_tx, mut log_rx) = mpsc::channel(256);
        let reader = if detach {
            None
        } else {
            let (m, id) = (self.clone(), id.clone());
            let opts = LogOptions { follow: true, tail: None, since: 0 };
            let task = tokio::spawn(async move { m.logs(&id, opts, log_tx).await });
            // The first record is the "open" mark: from here on, no output
            // is missed.
            match log_rx.recv().await {
                Some(r) if r.stream.is_empty() => {}
                Some(r) => tracing::warn!(stream = r.stream, "a log record before the open mark"),
                None => {
                    return Err(match task.await {
                        Ok(Err(e)) => e,
                        Ok(Ok(())) => AgentError::Internal("the log reader ended before it opened the log".into()),
                        Err(e) => AgentError::Internal(e.to_string()),
                    })
                }
            }
            Some(task)
        };
        let started = match self.start(&id).await {
            Ok(rec) => rec,
            Err(e) => {
                if let Some(t) = reader {
                    t.abort();
                }
                if rec.auto_remove {
                    let _ = self.remove(&id, true).await;
                }
                return match e {
                    AgentError::StartFailed { .. } => {
                        let _ = tx.send(RunEvent::StartFailed(e)).await;
                        Ok(())
                    }
                    other => Err(other),
                };
            }
        };
        if tx.send(RunEvent::Started { pid: started.state.pid }).await.is_err() {
            return Ok(());
        }
        let Some(reader) = reader else { return Ok(()) };
        while let Some(r) = log_rx.recv().await {
            if tx.send(RunEvent::Log(r)).await.is_err() {
                // Dropping the receiver ends the log reader.
                return Ok(());
            }
        }
        reader.await.map_err(|e| AgentError::Internal(e.to_string()))??;
        let exit = match recorded_exit(&mut exits, &id) {
            Some(ev) => ev,
            None => self.wait(&id).await?,
        };
        let _ = tx.send(RunEvent::Exit(exit)).await;
        Ok(())
    }
}

/// The exit of `id` if it was broadcast already (the log reader ends once
/// the exit is recorded, usually after the broadcast).
fn recorded_exit(exits: &mut broadcast::Receiver<ExitEvent>, id: &str) -> Option<ExitEvent> {
    loop {
        match exits.try_recv() {
            Ok(ev) if ev.id == id => return Some(ev),
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return None,
        }
    }
}
