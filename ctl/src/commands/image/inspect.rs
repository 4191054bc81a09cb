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

/// Docker's document, from the typed message (from the text a berthd of
/// before the typed message sends).
pub(crate) fn image_document(r: pb::InspectImageResponse) -> Result<serde_json::Value> {
    match r.inspect {
        Some(i) => Ok(berth_contract::inspect::image_document(&i)),
        None => Ok(serde_json::from_str(&r.json)?),
    }
}

pub async fn inspect(mut c: Client, a: InspectImageArgs) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for r in a.images {
        match c.images.inspect(pb::InspectImageRequest { reference: r }).await {
            Ok(resp) => out.push(image_document(resp.into_inner())?),
            Err(s) => {
                eprintln!("{}", crate::out::daemon_error(&s));
                code = 1;
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(code)
}
