//! `logs`: reads the shim's `container.log` (format in `berth_shim::logfmt`)
//! and, with follow, keeps reading until the container has exited and every
//! record it wrote has been sent.
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

use berth_shim::logfmt;
use tokio::sync::mpsc;

use super::{Manager, Status};
use crate::error::{AgentError, Result};

#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Last N records; None = all.
    pub tail: Option<usize>,
    /// Unix nanoseconds; records before are skipped.
    pub since: i64,
}

/// One record as sent to the client.
#[derive(Clone, Debug)]
pub struct LogRecord {
    pub time: i64,
    pub stream: String,
    pub data: Vec<u8>,
}

fn to_record(line: &[u8]) -> Option<LogRecord> {
    let r = logfmt::decode(line)?;
    let mut data = r.content.to_vec();
    if !r.partial {
        data.push(b'\n');
    }
    Some(LogRecord { time: r.time, stream: r.stream.to_owned(), data })
}

impl Manager {
    /// Streams the log into `tx`. The first message sent is an empty
    /// record: it tells the caller the log is open (so a `run` can start
    /// the container knowing no output will be missed).
    pub async fn logs(self: &Arc<Self>, key: &str, opts: LogOptions, tx: mpsc::Sender<LogRecord>) -> Result<()> {
        let rec = self.lookup(key)?;
        let id = rec.id.clone();
        let path = self.paths(&rec).log_file();
        let mut exits = self.exits.subscribe();
        let _ = tx.send(LogRecord { time: 0, stream: String::new(), data: Vec::new() }).await;

        // The file stays open from here on: an auto-removed container's log
        // is unlinked after its exit, and what is open can still be read.
        let file = match std::fs::File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(AgentError::Io { context: "open container log".into(), source }),
        };
        let Some(file) = file else { return Ok(()) };
        let mut reader = BufReader::new(file);
        let (r, mut history) = read_records(reader).await?;
        reader = r;
        history.retain(|r| r.time >= opts.since);
        if let Some(t) = opts.tail {
            let skip = history.len().saturating_sub(t);
            history.drain(..skip);
        }
        for r in history {
            if tx.send(r).await.is_err() {
                return Ok(());
            }
        }
        if !opts.follow {
            return Ok(());
        }

        loop {
            // Status first, then the file: an exit recorded before the read
            // means every record is already in the file.
            let done = match self.refresh(&id).await {
                Ok(r) => r.state.status == Status::Exited,
                Err(_) => true,
            };
            let (r, records) = read_records(reader).await?;
            reader = r;
            for r in records {
                if r.time >= opts.since && tx.send(r).await.is_err() {
                    return Ok(());
                }
            }
            if done {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = exits.recv() => {}
                _ = tx.closed() => return Ok(()),
            }
        }
    }
}

/// Whole records from the reader's position on. A last line without its
/// newline (the shim is writing it) is left for the next call.
async fn read_records(reader: BufReader<std::fs::File>) -> Result<(BufReader<std::fs::File>, Vec<LogRecord>)> {
    tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut reader = reader;
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                reader.seek_relative(-(n as i64))?;
                break;
            }
            if let Some(r) = to_record(&line[..line.len() - 1]) {
                out.push(r);
            }
        }
        Ok((reader, out))
    })
    .await
    .map_err(|e| AgentError::Internal(e.to_string()))?
    .map_err(|source| AgentError::Io { context: "read container log".into(), source })
}
