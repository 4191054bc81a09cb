//! Image verbs, one file each; `ImageCommand` is `berthctl image VERB`,
//! Docker's management form (the top-level aliases are in
//! `commands/mod.rs`).
use anyhow::{Context, Result};
use berth_proto::v1 as pb;
use clap::Subcommand;

use crate::client::Client;

pub mod history;
pub mod import;
pub mod inspect;
pub mod list;
pub mod load;
pub mod progress;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rm;
pub mod save;
pub mod tag;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(list::ImagesArgs),
    /// Show images as JSON
    Inspect(inspect::InspectImageArgs),
    /// Remove images
    Rm(rm::RmiArgs),
    /// Give an image another name
    Tag(tag::TagArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Load images from an archive
    Load(load::LoadArgs),
    /// Save images to an OCI layout tar that `docker load` also reads
    Save(save::SaveArgs),
    /// Make a one-layer image from a rootfs tarball
    Import(import::ImportArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Remove unused images
    Prune(prune::ImagePruneArgs),
}

pub async fn image(c: Client, cmd: ImageCommand) -> Result<u8> {
    match cmd {
        ImageCommand::Ls(a) => list::list(c, a).await,
        ImageCommand::Inspect(a) => inspect::inspect(c, a).await,
        ImageCommand::Rm(a) => rm::rmi(c, a).await,
        ImageCommand::Tag(a) => tag::tag(c, a).await,
        ImageCommand::Pull(a) => pull::pull(c, a).await,
        ImageCommand::Push(a) => push::push(c, a).await,
        ImageCommand::Load(a) => load::load(c, a).await,
        ImageCommand::Save(a) => save::save(c, a).await,
        ImageCommand::Import(a) => import::import(c, a).await,
        ImageCommand::History(a) => history::history(c, a).await,
        ImageCommand::Prune(a) => prune::image_prune(c, a).await,
    }
}

/// A tar on stdout only when stdout is not a terminal, as Docker.
pub(crate) fn refuse_terminal(output: Option<&std::path::Path>) -> Result<()> {
    if output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    Ok(())
}

/// Writes a streamed archive to `output`, or stdout. A file is removed
/// again when the stream fails, so no half archive is left for a later
/// `load` to reject less clearly. `what` names the verb in the error.
pub(crate) async fn write_archive(
    mut stream: tonic::Streaming<pb::DataChunk>,
    output: Option<&std::path::Path>,
    what: &str,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let Some(path) = output else {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = stream.message().await? {
            out.write_all(&chunk.data).await.map_err(crate::out::output_error)?;
        }
        out.flush().await.map_err(crate::out::output_error)?;
        return Ok(());
    };
    let mut file = tokio::fs::File::create(&path).await.with_context(|| format!("create {}", path.display()))?;
    let result: Result<()> = async {
        while let Some(chunk) = stream.message().await? {
            file.write_all(&chunk.data).await?;
        }
        file.sync_all().await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    result.with_context(|| format!("{what} to {}", path.display()))
}

/// The short form Docker shows: `busybox:latest`, `user/app:1`,
/// `localhost:5000/app:1`.
pub fn familiar(name: &str) -> String {
    let s = name.strip_prefix("docker.io/").unwrap_or(name);
    let s = s.strip_prefix("library/").unwrap_or(s);
    s.to_owned()
}
