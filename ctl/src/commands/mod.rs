//! One file per group of verbs; `Command` is the whole CLI surface.
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::client::Client;

mod attach;
mod commit;
mod containers;
mod cp;
mod exec;
mod images;
mod io;
mod logs;
mod prune;
mod registry;
mod run;
mod system;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show berthctl's and berthd's versions
    Version,
    /// Show berthd's state: root, drivers, counts
    Info,
    /// Load images from an OCI layout (tar or directory) or a `docker save` archive
    Load(images::LoadArgs),
    /// Save images to a tar (OCI image layout plus Docker's manifest.json)
    Save(images::SaveArgs),
    /// Make a one-layer image from a rootfs tarball
    Import(images::ImportArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Log in to a registry (credentials checked, then kept in config.json)
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Give an image another name
    Tag(images::TagArgs),
    /// Remove image names (and images no name or container still needs)
    Rmi(images::RmiArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Show the history of an image
    History(commit::HistoryArgs),
    /// Export a container's filesystem as a tar archive
    Export(prune::ExportArgs),
    /// Copy files and directories between a container and the host
    Cp(cp::CpArgs),
    /// Image commands: ls, inspect, rm, tag, history, prune
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Create a container without starting it
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    /// Start created or exited containers
    Start(run::StartArgs),
    /// Create and start a container
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Attach to a running container's input and output
    Attach(attach::AttachArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Stop running containers: the stop signal, then SIGKILL after a grace period
    Stop(containers::StopArgs),
    /// Send a signal to running containers
    Kill(containers::KillArgs),
    /// Remove containers
    Rm(containers::RmArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Show a container's output
    Logs(logs::LogsArgs),
    /// Show containers or images as JSON
    Inspect(containers::InspectArgs),
    /// Wait for containers to exit and print their exit codes
    Wait(containers::WaitArgs),
    /// Container commands: ls, inspect, rm, prune, export, ...
    #[command(subcommand)]
    Container(containers::ContainerCommand),
    /// System commands: df, prune, info
    #[command(subcommand)]
    System(prune::SystemCommand),
}

/// `--format json` on listings.
#[derive(Args, Debug, Clone, Default)]
pub struct FormatArg {
    /// Output format: `table` (default) or `json` (one object per line)
    #[arg(long, default_value = "table")]
    pub format: String,
}

impl FormatArg {
    pub fn json(&self) -> Result<bool> {
        match self.format.as_str() {
            "table" | "" => Ok(false),
            "json" | "{{json .}}" => Ok(true),
            other => anyhow::bail!("unsupported --format {other:?}: use table or json"),
        }
    }
}

pub async fn run(socket: PathBuf, cmd: Command) -> Result<u8> {
    // logout needs no berthd.
    let cmd = match cmd {
        Command::Logout(a) => return registry::logout(a).await,
        other => other,
    };
    let c = Client::connect(socket).await?;
    match cmd {
        Command::Version => system::version(c).await,
        Command::Info => system::info(c).await,
        Command::Load(a) => images::load(c, a).await,
        Command::Save(a) => images::save(c, a).await,
        Command::Import(a) => images::import(c, a).await,
        Command::Images(a) => images::list(c, a).await,
        Command::Pull(a) => registry::pull(c, a).await,
        Command::Push(a) => registry::push(c, a).await,
        Command::Login(a) => registry::login(c, a).await,
        Command::Logout(_) => unreachable!("handled above"),
        Command::Tag(a) => images::tag(c, a).await,
        Command::Rmi(a) => images::rmi(c, a).await,
        Command::Commit(a) => commit::commit(c, a).await,
        Command::History(a) => commit::history(c, a).await,
        Command::Export(a) => prune::export(c, a).await,
        Command::Cp(a) => cp::cp(c, a).await,
        Command::Image(sub) => images::image(c, sub).await,
        Command::Create(a) => run::create(c, a).await,
        Command::Start(a) => run::start(c, a).await,
        Command::Run(a) => run::run(c, a).await,
        Command::Attach(a) => attach::attach(c, a).await,
        Command::Exec(a) => exec::exec(c, a).await,
        Command::Stop(a) => containers::stop(c, a).await,
        Command::Kill(a) => containers::kill(c, a).await,
        Command::Rm(a) => containers::rm(c, a).await,
        Command::Ps(a) => containers::ps(c, a).await,
        Command::Logs(a) => logs::logs(c, a).await,
        Command::Inspect(a) => containers::inspect(c, a).await,
        Command::Wait(a) => containers::wait(c, a).await,
        Command::Container(sub) => containers::container(c, sub).await,
        Command::System(sub) => prune::system(c, sub).await,
    }
}
