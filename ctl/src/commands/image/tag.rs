//! `tag`: another name for an image.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;

#[derive(Args, Debug)]
pub struct TagArgs {
    source: String,
    target: String,
}

pub async fn tag(mut c: Client, a: TagArgs) -> Result<u8> {
    c.images.tag(pb::TagRequest { source: a.source, target: a.target }).await?;
    Ok(0)
}
