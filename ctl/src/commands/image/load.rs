//! `load`: images from an OCI layout or a `docker save` archive.
use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_proto::v1 as pb;
use clap::Args;
use tokio::io::AsyncReadExt;

use crate::client::Client;
use crate::commands::image::familiar;
use crate::out::outln;

pub(crate) const CHUNK: usize = 1 << 20;

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from this file or OCI layout directory instead of stdin
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Print only the loaded image names
    #[arg(short, long)]
    quiet: bool,
}

/// Reads a whole input into chunks for a client stream. A directory (an
/// OCI layout) is sent as a tar of its contents.
pub(crate) async fn read_input(input: Option<&std::path::Path>) -> Result<Vec<Vec<u8>>> {
    let bytes = match input {
        Some(p) if p.is_dir() => {
            let dir = p.to_path_buf();
            tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                let mut b = tar::Builder::new(Vec::new());
                b.follow_symlinks(false);
                b.append_dir_all(".", &dir).with_context(|| format!("read {}", dir.display()))?;
                Ok(b.into_inner()?)
            })
            .await??
        }
        Some(p) => tokio::fs::read(p).await.with_context(|| format!("open {}", p.display()))?,
        None => {
            let mut buf = Vec::new();
            tokio::io::stdin().read_to_end(&mut buf).await.context("read stdin")?;
            buf
        }
    };
    Ok(bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect())
}

pub async fn load(mut c: Client, a: LoadArgs) -> Result<u8> {
    if a.input.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("requested load from stdin, but stdin is empty");
    }
    let chunks = read_input(a.input.as_deref()).await?;
    let stream = tokio_stream::iter(chunks.into_iter().map(|data| pb::DataChunk { data }));
    let resp = c.images.load(stream).await?.into_inner();
    for img in resp.images {
        if img.names.is_empty() {
            outln!("Loaded image ID: {}", img.id)?;
        }
        for n in img.names {
            if a.quiet {
                outln!("{}", familiar(&n))?;
            } else {
                outln!("Loaded image: {}", familiar(&n))?;
            }
        }
    }
    Ok(0)
}
