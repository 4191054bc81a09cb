//! `inspect`: containers first, then images, as JSON.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    objects: Vec<String>,
}

/// Containers first, then images, as `docker inspect` does.
pub async fn inspect(mut c: Client, a: InspectArgs) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for obj in a.objects {
        let json = match c.containers.inspect(pb::ContainerRef { id: obj.clone() }).await {
            Ok(r) => Some(r.into_inner().json),
            Err(s) if s.code() == tonic::Code::NotFound => {
                match c.images.inspect(pb::InspectImageRequest { reference: obj.clone() }).await {
                    Ok(r) => Some(r.into_inner().json),
                    Err(_) => None,
                }
            }
            Err(s) => return Err(s.into()),
        };
        match json {
            Some(j) => out.push(serde_json::from_str::<serde_json::Value>(&j)?),
            None => {
                eprintln!("Error: No such object: {obj}");
                code = 1;
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(code)
}
