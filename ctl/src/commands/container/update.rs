//! `update`: new limits for containers, at once when they run, and kept
//! for their next starts.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::each;
use super::resources::{require_some, LimitOpts};
use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    limits: LimitOpts,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn update(c: Client, a: UpdateArgs) -> Result<u8> {
    require_some(&a.limits)?;
    let resources = a.limits.message();
    let restart_policy = a.limits.restart_policy();
    each(a.containers, |id| {
        let mut c = c.clone();
        let resources = Some(resources.clone());
        let restart_policy = restart_policy.clone();
        async move {
            c.containers.update(pb::UpdateContainerRequest { id: id.clone(), resources, restart_policy }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}
