//! `wait`: block until containers exit, print their codes.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::each;
use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn wait(c: Client, a: WaitArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            let r = c.containers.wait(pb::ContainerRef { id }).await?.into_inner();
            outln!("{}", r.exit_code)?;
            Ok(())
        }
    })
    .await
}
