//! `top` and `diff`: a running container's processes, and what any
//! container changed in its filesystem.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::out::outln;
use crate::table;

#[derive(Args, Debug)]
pub struct TopArgs {
    container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

pub async fn top(mut c: Client, a: TopArgs) -> Result<u8> {
    let req = pb::TopRequest { id: a.container, ps_args: a.ps_options.join(" ") };
    let top = c.containers.top(req).await?.into_inner();
    let titles: Vec<&str> = top.titles.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = top.processes.into_iter().map(|p| p.cells).collect();
    table::print(&titles, &rows)?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    container: String,
}

pub async fn diff(mut c: Client, a: DiffArgs) -> Result<u8> {
    let changes = c.containers.diff(pb::ContainerRef { id: a.container }).await?.into_inner().changes;
    for ch in changes {
        let letter = match pb::ChangeKind::try_from(ch.kind) {
            Ok(pb::ChangeKind::Added) => 'A',
            Ok(pb::ChangeKind::Deleted) => 'D',
            _ => 'C',
        };
        outln!("{letter} {}", ch.path)?;
    }
    Ok(0)
}
