//! `stats`: Docker's live table of what containers use, from berthd's
//! `Stats` stream. On a terminal the table is redrawn in place each second
//! (cursor home, each line cleared to its end, the rest of the screen
//! cleared: no blank frame between two, so no flicker); to a pipe or file
//! each batch is written after the last, one table (or, with `--format
//! json`, one object per container) per second.
use std::io::{IsTerminal, Write};

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::FormatArg;
use crate::out::{outln, print};
use crate::table;

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    #[command(flatten)]
    format: FormatArg,
    containers: Vec<String>,
}

const HEADERS: [&str; 8] =
    ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"];

/// One container's cells, in `HEADERS` order.
fn cells(s: &pb::ContainerStats, no_trunc: bool) -> Vec<String> {
    let id = if no_trunc { s.id.clone() } else { s.id.chars().take(12).collect() };
    let pair = |a: String, b: String| format!("{a} / {b}");
    vec![
        id,
        s.name.clone(),
        format!("{:.2}%", s.cpu_percent),
        pair(table::binary_size(s.memory_usage), table::binary_size(if s.running { s.memory_limit } else { 0 })),
        format!("{:.2}%", s.memory_percent),
        pair(table::human_size(s.net_rx_bytes), table::human_size(s.net_tx_bytes)),
        pair(table::human_size(s.block_read_bytes), table::human_size(s.block_write_bytes)),
        s.pids.to_string(),
    ]
}

/// Docker's `--format json` object, and the raw counters under `Raw` for
/// scripts that want numbers rather than Docker's rounded texts.
fn json(s: &pb::ContainerStats, given: Option<&str>, no_trunc: bool) -> serde_json::Value {
    let c = cells(s, no_trunc);
    serde_json::json!({
        "BlockIO": c[6],
        "CPUPerc": c[2],
        "Container": given.unwrap_or(&c[0]),
        "ID": c[0],
        "MemPerc": c[4],
        "MemUsage": c[3],
        "Name": c[1],
        "NetIO": c[5],
        "PIDs": c[7],
        "Raw": {
            "running": s.running,
            "cpu_percent": s.cpu_percent,
            "cpu_usage_ns": s.cpu_usage_ns,
            "system_cpu_ns": s.system_cpu_ns,
            "online_cpus": s.online_cpus,
            "memory_usage": s.memory_usage,
            "memory_limit": s.memory_limit,
            "memory_percent": s.memory_percent,
            "memory_cache": s.memory_cache,
            "net_rx_bytes": s.net_rx_bytes,
            "net_tx_bytes": s.net_tx_bytes,
            "block_read_bytes": s.block_read_bytes,
            "block_write_bytes": s.block_write_bytes,
            "pids": s.pids,
        },
    })
}

pub async fn stats(mut c: Client, a: StatsArgs) -> Result<u8> {
    let as_json = a.format.json()?;
    let req = pb::StatsRequest { ids: a.containers.clone(), all: a.all, stream: !a.no_stream, interval_ms: 0 };
    let mut stream = c.containers.stats(req).await?.into_inner();
    // What the user called each container, for JSON's `Container`.
    let given = |s: &pb::ContainerStats| {
        a.containers.iter().find(|k| s.id.starts_with(k.as_str()) || s.name == k.trim_start_matches('/')).cloned()
    };
    let redraw = !a.no_stream && !as_json && std::io::stdout().is_terminal();
    if redraw {
        // Clear once; every frame after starts from the top-left corner.
        print(format_args!("\x1b[2J"))?;
    }
    while let Some(batch) = stream.message().await? {
        if as_json {
            for s in &batch.containers {
                outln!("{}", json(s, given(s).as_deref(), a.no_trunc))?;
            }
            continue;
        }
        let rows: Vec<Vec<String>> = batch.containers.iter().map(|s| cells(s, a.no_trunc)).collect();
        let lines = table::render(&HEADERS, &rows);
        if redraw {
            let mut frame = String::from("\x1b[H");
            for l in lines {
                frame.push_str(&l);
                frame.push_str("\x1b[K\n");
            }
            frame.push_str("\x1b[J");
            print(format_args!("{frame}"))?;
            std::io::stdout().flush().map_err(crate::out::output_error)?;
        } else {
            for l in lines {
                outln!("{l}")?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_dockers_texts() {
        let s = pb::ContainerStats {
            id: "0123456789abcdef".repeat(4),
            name: "web".into(),
            running: true,
            cpu_percent: 12.345,
            memory_usage: 1536 * 1024,
            memory_limit: 2 << 30,
            memory_percent: 0.0732,
            net_rx_bytes: 1234,
            block_read_bytes: 4_260_000,
            block_write_bytes: 0,
            pids: 3,
            ..Default::default()
        };
        assert_eq!(
            cells(&s, false),
            ["0123456789ab", "web", "12.35%", "1.5MiB / 2GiB", "0.07%", "1.23kB / 0B", "4.26MB / 0B", "3"]
        );
        let stopped = pb::ContainerStats { id: s.id.clone(), name: "old".into(), ..Default::default() };
        assert_eq!(cells(&stopped, true)[2..], ["0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"]);
        assert_eq!(cells(&stopped, true)[0], s.id);
    }

    #[test]
    fn binary_sizes_have_four_significant_digits() {
        assert_eq!(table::binary_size(0), "0B");
        assert_eq!(table::binary_size(1023), "1023B");
        assert_eq!(table::binary_size(1024), "1KiB");
        assert_eq!(table::binary_size(2_038_431_744), "1.898GiB");
        assert_eq!(table::binary_size(100 << 20), "100MiB");
    }
}
