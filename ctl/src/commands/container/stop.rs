//! `stop`: the stop signal, then SIGKILL after the grace period; `restart`:
//! the same, then a start.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::each;
use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout", default_value_t = -1, allow_negative_numbers = true)]
    time: i32,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn stop(c: Client, a: StopArgs) -> Result<u8> {
    stop_each(c, a, false).await
}

/// `restart` takes `stop`'s arguments.
pub async fn restart(c: Client, a: StopArgs) -> Result<u8> {
    stop_each(c, a, true).await
}

async fn stop_each(c: Client, a: StopArgs, restart: bool) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            let req = pb::StopRequest { id: id.clone(), timeout: a.time };
            if restart {
                c.containers.restart(req).await?;
            } else {
                c.containers.stop(req).await?;
            }
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}
