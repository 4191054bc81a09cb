//! `push`: an image to a registry (only the layers it lacks).

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::image::progress::Progress;
use crate::commands::registry::credentials_for;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Print only the manifest digest
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub reference: String,
}

pub async fn push(mut c: Client, a: PushArgs) -> Result<u8> {
    let auth = credentials_for(&a.reference)?;
    let mut stream = c.images.push(pb::PushRequest { reference: a.reference.clone(), auth }).await?.into_inner();
    let mut p = Progress::new();
    while let Some(msg) = stream.message().await? {
        if let Some(r) = msg.result {
            if a.quiet {
                outln!("{}", r.digest)?;
            } else {
                p.line(&format!("{}: digest: {} size: {}", r.tag, r.digest, r.size))?;
            }
            continue;
        }
        if !a.quiet {
            p.show(&msg.id, &msg.status, msg.current, msg.total)?;
        }
    }
    Ok(0)
}
