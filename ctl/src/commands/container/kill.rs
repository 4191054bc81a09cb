//! `kill`: a signal to running containers.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::each;
use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send (name or number)
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn kill(c: Client, a: KillArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        let signal = a.signal.clone();
        async move {
            c.containers.kill(pb::KillRequest { id: id.clone(), signal, ..Default::default() }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}
