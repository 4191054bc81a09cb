//! `image inspect`.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct InspectImageArgs {
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn inspect(mut c: Client, a: InspectImageArgs) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for r in a.images {
        match c.images.inspect(pb::InspectImageRequest { reference: r }).await {
            Ok(resp) => out.push(serde_json::from_str::<serde_json::Value>(&resp.into_inner().json)?),
            Err(s) => {
                eprintln!("{}", crate::out::daemon_error(&s));
                code = 1;
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(code)
}
