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
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            c.containers.stop(pb::StopRequest { id: id.clone(), timeout: a.time }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}

/// `restart` takes `stop`'s arguments.
pub async fn restart(c: Client, a: StopArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            c.containers.restart(pb::StopRequest { id: id.clone(), timeout: a.time }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}
