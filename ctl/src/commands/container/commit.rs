//! `commit`: a new image from a container's changes.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::{ArgAction, Args};

use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Commit message
    #[arg(short, long, default_value = "")]
    message: String,
    /// Author (e.g. "Jane Doe <jane@example.com>")
    #[arg(short, long, default_value = "")]
    author: String,
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE)
    #[arg(short, long = "change")]
    change: Vec<String>,
    /// Pause the container during the commit
    #[arg(short, long, action = ArgAction::Set, num_args = 0..=1, default_value_t = true, default_missing_value = "true")]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG] for the new image
    reference: Option<String>,
}

pub async fn commit(mut c: Client, a: CommitArgs) -> Result<u8> {
    let req = pb::CommitRequest {
        container: a.container,
        reference: a.reference.unwrap_or_default(),
        message: a.message,
        author: a.author,
        changes: a.change,
        pause: a.pause,
    };
    let img = c.containers.commit(req).await?.into_inner().image.unwrap_or_default();
    outln!("{}", img.id)?;
    Ok(0)
}
