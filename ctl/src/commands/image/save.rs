//! `save`: images to a tar.
use std::path::PathBuf;

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::image::refuse_terminal;
use crate::commands::image::write_archive;

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Names or IDs of the images to save
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn save(mut c: Client, a: SaveArgs) -> Result<u8> {
    refuse_terminal(a.output.as_deref())?;
    // The call fails here, before any file is made, when a name is unknown.
    let stream = c.images.save(pb::SaveRequest { references: a.images }).await?.into_inner();
    write_archive(stream, a.output.as_deref(), "save").await?;
    Ok(0)
}
