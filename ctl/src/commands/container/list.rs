//! `ps` / `container ls`: Docker's table, or JSON lines.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::FormatArg;
use crate::out::outln;
use crate::table;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only show container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Filter: status=, name=, ancestor=, id=, label=
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Show full IDs and commands
    #[arg(long)]
    no_trunc: bool,
    #[command(flatten)]
    format: FormatArg,
}

/// `Up 3 seconds`, `Up 3 seconds (healthy)`, `Exited (0) 12 seconds ago`,
/// `Created`.
pub fn status_text(c: &pb::Container) -> String {
    use pb::ContainerState as S;
    match berth_contract::inspect::container_state(c) {
        S::Running => {
            let up = format!("Up {}", table::human_duration(table::ago_nanos(c.started_at)));
            match c.health.as_str() {
                "" => up,
                "starting" => format!("{up} (health: starting)"),
                h => format!("{up} ({h})"),
            }
        }
        S::Paused => format!("Up {} (Paused)", table::human_duration(table::ago_nanos(c.started_at))),
        S::Exited => format!("Exited ({}) {} ago", c.exit_code, table::human_duration(table::ago_nanos(c.finished_at))),
        S::Created | S::Unspecified => "Created".into(),
    }
}

pub(crate) fn image_column(c: &pb::Container) -> String {
    if c.image.is_empty() {
        c.image_id.trim_start_matches("sha256:").chars().take(12).collect()
    } else {
        c.image.clone()
    }
}

pub async fn ps(mut c: Client, a: PsArgs) -> Result<u8> {
    let json = a.format.json()?;
    let list = c.list_containers(pb::ListContainersRequest { all: a.all, filters: a.filter.clone() }).await?;
    if a.quiet {
        for ct in &list {
            outln!("{}", if a.no_trunc { ct.id.as_str() } else { &ct.id[..12] })?;
        }
        return Ok(0);
    }
    if json {
        for ct in &list {
            let v = serde_json::json!({
                "ID": if a.no_trunc { ct.id.clone() } else { ct.id[..12].to_owned() },
                "Image": image_column(ct),
                "Command": table::command(&ct.command, !a.no_trunc),
                "CreatedAt": table::rfc3339(ct.created, false),
                "RunningFor": format!("{} ago", table::human_duration(table::ago_nanos(ct.created))),
                "Status": status_text(ct),
                "State": ct.status,
                "ExitCode": ct.exit_code,
                "Names": ct.name,
                "Labels": ct.labels,
            });
            outln!("{v}")?;
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|ct| {
            vec![
                if a.no_trunc { ct.id.clone() } else { ct.id[..12].to_owned() },
                image_column(ct),
                table::command(&ct.command, !a.no_trunc),
                format!("{} ago", table::human_duration(table::ago_nanos(ct.created))),
                status_text(ct),
                String::new(),
                ct.name.clone(),
            ]
        })
        .collect();
    table::print(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], &rows)?;
    Ok(0)
}
