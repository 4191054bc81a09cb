//! `pull`: an image from a registry, with `docker pull`'s progress.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::progress::Progress;
use crate::client::Client;
use crate::commands::image::familiar;
use crate::commands::registry::credentials_for;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Pull for this platform (os/arch[/variant]) instead of the node's
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image name
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub reference: String,
}

pub async fn pull(mut c: Client, a: PullArgs) -> Result<u8> {
    let auth = credentials_for(&a.reference)?;
    let mut stream = c
        .images
        .pull(pb::PullRequest {
            reference: a.reference.clone(),
            platform: a.platform.clone().unwrap_or_default(),
            auth,
        })
        .await?
        .into_inner();
    let mut p = Progress::new();
    while let Some(msg) = stream.message().await? {
        if let Some(r) = msg.result {
            if !a.quiet {
                p.line(&format!("Digest: {}", r.digest))?;
                let shown = familiar(&r.name);
                if r.up_to_date {
                    p.line(&format!("Status: Image is up to date for {shown}"))?;
                } else {
                    p.line(&format!("Status: Downloaded newer image for {shown}"))?;
                }
            }
            outln!("{}", r.name)?;
            continue;
        }
        if !a.quiet {
            p.show(&msg.id, &msg.status, msg.current, msg.total)?;
        }
    }
    Ok(0)
}
