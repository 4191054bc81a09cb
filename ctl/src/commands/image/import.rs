//! `import`: a one-layer image from a rootfs tarball.
use std::path::PathBuf;

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::image::load::read_input;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The rootfs tarball (plain, gzip or zstd), or `-` for stdin
    file: String,
    /// The name for the new image
    reference: Option<String>,
    /// A commit message for the image's history
    #[arg(short, long, default_value = "")]
    message: String,
}

pub async fn import(mut c: Client, a: ImportArgs) -> Result<u8> {
    let input = (a.file != "-").then(|| PathBuf::from(&a.file));
    let chunks = read_input(input.as_deref()).await?;
    let reference = a.reference.clone().unwrap_or_default();
    let mut first = true;
    let stream = tokio_stream::iter(chunks.into_iter().map(move |data| {
        let (reference, message) =
            if std::mem::take(&mut first) { (reference.clone(), a.message.clone()) } else { Default::default() };
        pb::ImportChunk { reference, message, data }
    }));
    let img = c.images.import(stream).await?.into_inner().image.unwrap_or_default();
    outln!("{}", img.id)?;
    Ok(0)
}
