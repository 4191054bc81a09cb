//! `logs`: a container's output from its log, optionally followed.
use std::io::Write;

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;
use futures::StreamExt;

use crate::client::Client;
use crate::table;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow the output until the container exits
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end, or `all`
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Only records since this time: RFC 3339, unix seconds, or a duration like 10m, 2h, 30s
    #[arg(long)]
    since: Option<String>,
    container: String,
}

/// Parses `--since`.
fn since_nanos(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(0));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| anyhow::anyhow!("invalid value for \"since\": {s}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => anyhow::bail!("invalid value for \"since\": {s}"),
    };
    Ok(table::now_nanos() - secs * 1_000_000_000)
}

/// Writes records to stdout/stderr as they come; returns when the stream
/// ends. `on_open` runs once the log is open on the agent's side.
pub async fn stream_records(
    mut stream: tonic::Streaming<pb::LogRecord>,
    timestamps: bool,
    mut on_open: impl FnMut(),
) -> Result<()> {
    let mut opened = false;
    while let Some(rec) = stream.next().await {
        let rec = rec?;
        if rec.stream.is_empty() {
            if !opened {
                opened = true;
                on_open();
            }
            continue;
        }
        print_record(&rec, timestamps)?;
    }
    Ok(())
}

/// One record to stdout or stderr, as the container wrote it.
pub fn print_record(rec: &pb::LogRecord, timestamps: bool) -> Result<()> {
    let mut buf = Vec::with_capacity(rec.data.len() + 32);
    if timestamps {
        buf.extend_from_slice(table::rfc3339(rec.time, true).as_bytes());
        buf.push(b' ');
    }
    buf.extend_from_slice(&rec.data);
    if rec.output == pb::OutputStream::Stderr as i32 || rec.stream == "stderr" {
        let mut e = std::io::stderr().lock();
        e.write_all(&buf).and_then(|()| e.flush()).map_err(crate::out::output_error)?;
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(&buf).and_then(|()| o.flush()).map_err(crate::out::output_error)?;
    }
    Ok(())
}

pub async fn logs(mut c: Client, a: LogsArgs) -> Result<u8> {
    let tail = if a.tail == "all" {
        -1
    } else {
        a.tail.parse::<i64>().map_err(|_| anyhow::anyhow!("invalid value for --tail: {}", a.tail))?
    };
    let since = a.since.as_deref().map(since_nanos).transpose()?.unwrap_or(0);
    let stream =
        c.containers.logs(pb::LogsRequest { id: a.container, follow: a.follow, tail, since }).await?.into_inner();
    stream_records(stream, a.timestamps, || {}).await?;
    Ok(0)
}
