//! `pause` and `unpause`: every process of the containers frozen, or
//! thawed again.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::each;
use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn pause(c: Client, a: PauseArgs) -> Result<u8> {
    set_paused(c, a, true).await
}

pub async fn unpause(c: Client, a: PauseArgs) -> Result<u8> {
    set_paused(c, a, false).await
}

async fn set_paused(c: Client, a: PauseArgs, pause: bool) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            let req = pb::ContainerRef { id: id.clone() };
            if pause {
                c.containers.pause(req).await?;
            } else {
                c.containers.unpause(req).await?;
            }
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}
