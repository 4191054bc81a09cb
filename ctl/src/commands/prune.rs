//! Reclaiming space and taking things out: `export`, `container prune`,
//! `image prune`, `system prune`, `system df`.
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::{Args, Subcommand};

use super::FormatArg;
use crate::client::Client;
use crate::out::{out, outln};
use crate::table;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Name or ID of the container
    container: String,
}

#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage of images, containers and layers
    Df(FormatArg),
    /// Remove stopped containers and dangling (with -a: unused) images
    Prune(ImagePruneArgs),
    /// Show berthd's state: root, drivers, counts
    Info,
}

pub async fn export(mut c: Client, a: ExportArgs) -> Result<u8> {
    super::images::refuse_terminal(a.output.as_deref())?;
    let stream = c.containers.export(pb::ContainerRef { id: a.container }).await?.into_inner();
    super::images::write_archive(stream, a.output.as_deref(), "export").await?;
    Ok(0)
}

/// Docker's question; only `y` or `yes` (any case) goes on. No answer (no
/// terminal, EOF) is a no.
fn confirm(warning: &str) -> Result<bool> {
    use std::io::Write;
    out!("{warning}\nAre you sure you want to continue? [y/N] ")?;
    std::io::stdout().flush().map_err(crate::out::output_error)?;
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Ok(false);
    }
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn print_deleted(title: &str, lines: &[String]) -> Result<()> {
    if !lines.is_empty() {
        outln!("{title}:")?;
        for l in lines {
            outln!("{l}")?;
        }
        outln!()?;
    }
    Ok(())
}

pub async fn container_prune(mut c: Client, a: ContainerPruneArgs) -> Result<u8> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let r = c.containers.prune(pb::PruneContainersRequest {}).await?.into_inner();
    print_deleted("Deleted Containers", &r.deleted)?;
    outln!("Total reclaimed space: {}", table::human_size(r.reclaimed))?;
    Ok(0)
}

const DANGLING_WARNING: &str = "WARNING! This will remove all dangling images.";
const ALL_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.";

pub async fn image_prune(mut c: Client, a: ImagePruneArgs) -> Result<u8> {
    if !a.force && !confirm(if a.all { ALL_WARNING } else { DANGLING_WARNING })? {
        return Ok(0);
    }
    let r = c.images.prune(pb::PruneImagesRequest { all: a.all }).await?.into_inner();
    print_deleted("Deleted Images", &r.deleted)?;
    outln!("Total reclaimed space: {}", table::human_size(r.reclaimed))?;
    Ok(0)
}

pub async fn system(c: Client, cmd: SystemCommand) -> Result<u8> {
    match cmd {
        SystemCommand::Df(f) => df(c, f).await,
        SystemCommand::Prune(a) => system_prune(c, a).await,
        SystemCommand::Info => super::system::info(c).await,
    }
}

async fn system_prune(mut c: Client, a: ImagePruneArgs) -> Result<u8> {
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

async fn df(mut c: Client, f: FormatArg) -> Result<u8> {
    let json = f.json()?;
    let rows = c.system.disk_usage(pb::DiskUsageRequest {}).await?.into_inner().rows;
    if json {
        for r in &rows {
            let v = serde_json::json!({
                "Type": r.kind,
                "TotalCount": r.total,
                "Active": r.active,
                "Size": table::human_size(r.size),
                "Reclaimable": reclaimable(r),
                "SizeBytes": r.size,
                "ReclaimableBytes": r.reclaimable,
            });
            outln!("{v}")?;
        }
        return Ok(0);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![r.kind.clone(), r.total.to_string(), r.active.to_string(), table::human_size(r.size), reclaimable(r)]
        })
        .collect();
    table::print(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &cells)?;
    Ok(0)
}

/// `1.2MB (40%)`, as Docker.
fn reclaimable(r: &pb::DiskUsageRow) -> String {
    let pct = (r.reclaimable * 100).checked_div(r.size).unwrap_or(0);
    format!("{} ({pct}%)", table::human_size(r.reclaimable))
}
