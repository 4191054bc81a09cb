//! `export`: a container's filesystem as a tar.
use std::path::PathBuf;

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::image::refuse_terminal;
use crate::commands::image::write_archive;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Name or ID of the container
    container: String,
}

pub async fn export(mut c: Client, a: ExportArgs) -> Result<u8> {
    refuse_terminal(a.output.as_deref())?;
    let stream = c.containers.export(pb::ContainerRef { id: a.container }).await?.into_inner();
    write_archive(stream, a.output.as_deref(), "export").await?;
    Ok(0)
}
