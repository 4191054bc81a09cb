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

/// Docker's document, from the typed message (from the text a berthd of
/// before the typed message sends).
fn container_document(r: pb::InspectContainerResponse) -> Result<serde_json::Value> {
    match r.inspect {
        Some(i) => Ok(berth_contract::inspect::container_document(&i)),
        None => Ok(serde_json::from_str(&r.json)?),
    }
}

/// Containers first, then images, as `docker inspect` does.
pub async fn inspect(mut c: Client, a: InspectArgs) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for obj in a.objects {
        let doc = match c.containers.inspect(pb::ContainerRef { id: obj.clone() }).await {
            Ok(r) => Some(container_document(r.into_inner())?),
            Err(s) if s.code() == tonic::Code::NotFound => {
                match c.images.inspect(pb::InspectImageRequest { reference: obj.clone() }).await {
                    Ok(r) => Some(crate::commands::image::inspect::image_document(r.into_inner())?),
                    Err(_) => None,
                }
            }
            Err(s) => return Err(s.into()),
        };
        match doc {
            Some(d) => out.push(d),
            None => {
                eprintln!("Error: No such object: {obj}");
                code = 1;
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(code)
}
