//! `run` as one sequence for every front end: a created container's log
//! opened from its first byte, the start, the output followed to the
//! recorded exit. berthd's `Containers.Run` streams it; the kubelet's CRI
//! will not need it, but a second CLI-like front end would.
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::logs::ReaderGuard;
use super::{ContainerError, ContainerRecord, ExitEvent, LogOptions, LogRecord, Manager};
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
    /// Starts the container `rec` and reports on `tx` until its exit (or,
    /// with `detach`, until it runs). A receiver that goes away ends the
    /// report; the container runs on. `new`: created for this run (its log
    /// is followed from the start, and a start failure of an auto-remove
    /// container removes it); else an existing container is started again
    /// (`start -a`) and its log followed from now on.
    pub async fn run_created(
        self: &Arc<Self>,
        rec: ContainerRecord,
        new: bool,
        detach: bool,
        tx: mpsc::Sender<RunEvent>,
    ) -> Result<()> {
        let id = rec.id.clone();
        // Counted as a log reader until the exit is read from the record:
        // an auto-remove waits for it (so no exit has to be remembered
        // for a container that is gone).
        let _reading = ReaderGuard::new(self, &id);
        // Subscribed before the start: the exit cannot be missed.
        let mut exits = self.exits.subscribe();
        let since = if new { 0 } else { berth_contract::now_nanos() };
        // A new container's log is opened before the start, so nothing
        // is missed. An exited one's is opened after (a reader opened on
        // an exited container ends at once); its records from `since` on
        // are in the file by then.
        let log = if new && !detach { Some(self.open_log(&id, since).await?) } else { None };
        let started = match self.start(&id).await {
            Ok(rec) => rec,
            Err(e) => {
                if let Some((reader, _)) = log {
                    reader.abort();
                }
                if new && rec.auto_remove {
                    drop(_reading);
                    let _ = self.remove(&id, true).await;
                }
                return match e {
                    AgentError::Container(ContainerError::StartFailed { .. }) => {
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
        if detach {
            return Ok(());
        }
        let (reader, mut log_rx) = match log {
            Some(log) => log,
            None => self.open_log(&id, since).await?,
        };
        while let Some(r) = log_rx.recv().await {
            if tx.send(RunEvent::Log(r)).await.is_err() {
                // Dropping the receiver ends the log reader.
                return Ok(());
            }
        }
        reader.await.map_err(|e| AgentError::Internal(e.to_string()))??;
        let exit = match recorded_exit(&mut exits, &id) {
            Some(ev) => ev,
            // The log ends once the exit is recorded, and the record stays
            // while this run counts as a reader.
            None => {
                let rec = self.lookup(&id)?;
                ExitEvent { id: id.clone(), exit_code: rec.state.exit_code, error: rec.state.error }
            }
        };
        let _ = tx.send(RunEvent::Exit(exit)).await;
        Ok(())
    }

    /// A follow reader of `id`'s log from `since`, once it has the log open
    /// (its first record, the open mark, is taken here).
    async fn open_log(
        self: &Arc<Self>,
        id: &str,
        since: i64,
    ) -> Result<(tokio::task::JoinHandle<Result<()>>, mpsc::Receiver<LogRecord>)> {
        let (log_tx, mut log_rx) = mpsc::channel(256);
        let (m, id) = (self.clone(), id.to_owned());
        let opts = LogOptions { follow: true, tail: None, since };
        let task = tokio::spawn(async move { m.logs(&id, opts, log_tx).await });
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
        Ok((task, log_rx))
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
