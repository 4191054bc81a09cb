//! berthd-wide verbs, one file each; `SystemCommand` is `berthctl system
//! VERB`. `confirm` and `print_deleted` are every prune's.
use std::io::BufRead;

use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;
use crate::out::{out, outln};

pub mod df;
pub mod info;
pub mod prune;
pub mod version;

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage of images, containers and layers
    Df(crate::commands::FormatArg),
    /// Remove stopped containers and dangling (with -a: unused) images
    Prune(crate::commands::image::prune::ImagePruneArgs),
    /// Show berthd's state: root, drivers, counts
    Info,
}

pub async fn system(c: Client, cmd: SystemCommand) -> Result<u8> {
    match cmd {
        SystemCommand::Df(f) => df::df(c, f).await,
        SystemCommand::Prune(a) => prune::system_prune(c, a).await,
        SystemCommand::Info => info::info(c).await,
    }
}

/// Docker's question; only `y` or `yes` (any case) goes on. No answer (no
/// terminal, EOF) is a no.
pub(crate) fn confirm(warning: &str) -> Result<bool> {
    use std::io::Write;
    out!("{warning}\nAre you sure you want to continue? [y/N] ")?;
    std::io::stdout().flush().map_err(crate::out::output_error)?;
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Ok(false);
    }
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

pub(crate) fn print_deleted(title: &str, lines: &[String]) -> Result<()> {
    if !lines.is_empty() {
        outln!("{title}:")?;
        for l in lines {
            outln!("{l}")?;
        }
        outln!()?;
    }
    Ok(())
}
