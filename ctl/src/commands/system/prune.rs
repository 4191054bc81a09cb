//! `system prune`: stopped containers, then dangling (with -a: unused) images.

use anyhow::Result;
use berth_proto::v1 as pb;

use crate::client::Client;
use crate::commands::image::prune::ImagePruneArgs;
use crate::commands::system::confirm;
use crate::commands::system::print_deleted;
use crate::out::outln;
use crate::table;

pub(crate) async fn system_prune(mut c: Client, a: ImagePruneArgs) -> Result<u8> {
    let images =
        if a.all { "all images without at least one container associated to them" } else { "all dangling images" };
    let warning = format!("WARNING! This will remove:\n  - all stopped containers\n  - {images}\n");
    if !a.force && !confirm(&warning)? {
        return Ok(0);
    }
    // Containers first: their images become unused and go in the same run.
    let containers = c.containers.prune(pb::PruneContainersRequest {}).await?.into_inner();
    let images = c.images.prune(pb::PruneImagesRequest { all: a.all }).await?.into_inner();
    print_deleted("Deleted Containers", &containers.deleted)?;
    print_deleted("Deleted Images", &images.deleted)?;
    outln!("Total reclaimed space: {}", table::human_size(containers.reclaimed + images.reclaimed))?;
    Ok(0)
}
