//! `container prune`: remove every stopped container.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::system::confirm;
use crate::commands::system::print_deleted;
use crate::out::outln;
use crate::table;

#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    force: bool,
}

pub async fn container_prune(mut c: Client, a: ContainerPruneArgs) -> Result<u8> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let r = c.containers.prune(pb::PruneContainersRequest {}).await?.into_inner();
    print_deleted("Deleted Containers", &r.deleted)?;
    outln!("Total reclaimed space: {}", table::human_size(r.reclaimed))?;
    Ok(0)
}
