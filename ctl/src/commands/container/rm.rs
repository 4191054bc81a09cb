//! `rm`: remove containers.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::each;
use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill and remove a running container
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn rm(c: Client, a: RmArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            c.containers.remove(pb::RemoveContainerRequest { id: id.clone(), force: a.force }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}
