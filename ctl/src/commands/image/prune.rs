//! `image prune`: dangling (with -a: unused) images.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::system::confirm;
use crate::commands::system::print_deleted;
use crate::out::outln;
use crate::table;

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
}

pub(crate) const DANGLING_WARNING: &str = "WARNING! This will remove all dangling images.";

pub(crate) const ALL_WARNING: &str =
    "WARNING! This will remove all images without at least one container associated to them.";

pub async fn image_prune(mut c: Client, a: ImagePruneArgs) -> Result<u8> {
    if !a.force && !confirm(if a.all { ALL_WARNING } else { DANGLING_WARNING })? {
        return Ok(0);
    }
    let r = c.images.prune(pb::PruneImagesRequest { all: a.all }).await?.into_inner();
    print_deleted("Deleted Images", &r.deleted)?;
    outln!("Total reclaimed space: {}", table::human_size(r.reclaimed))?;
    Ok(0)
}
