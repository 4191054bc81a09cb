//! `version`.

use anyhow::Result;
use berth_proto::v1 as pb;

use crate::client::Client;
use crate::out::outln;

pub async fn version(mut c: Client) -> Result<u8> {
    let v = c.system.version(pb::VersionRequest {}).await?.into_inner();
    outln!(
        "Client:\n Version:    {}\n\nServer:\n Version:    {}\n API version: {}",
        env!("CARGO_PKG_VERSION"),
        v.version,
        v.api_version
    )?;
    Ok(0)
}
