//! `rename OLD NEW`.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;

#[derive(Args, Debug)]
pub struct RenameArgs {
    /// The container (ID, ID prefix or name)
    container: String,
    /// Its new name
    new_name: String,
}

pub async fn rename(mut c: Client, a: RenameArgs) -> Result<u8> {
    c.containers.rename(pb::RenameContainerRequest { id: a.container, name: a.new_name }).await?;
    Ok(0)
}
