//! `rmi` / `image rm`.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::image::familiar;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove the image even if a container uses it (the image stays, unnamed, until that container goes)
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn rmi(mut c: Client, a: RmiArgs) -> Result<u8> {
    let mut code = 0;
    for r in a.images {
        match c.images.remove(pb::RemoveImageRequest { reference: r, force: a.force }).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                for u in resp.untagged {
                    outln!("Untagged: {}", familiar(&u))?;
                }
                for d in resp.deleted {
                    outln!("Deleted: {d}")?;
                }
            }
            Err(s) => {
                eprintln!("{}", crate::out::daemon_error(&s));
                code = 1;
            }
        }
    }
    Ok(code)
}
