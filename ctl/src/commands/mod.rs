//! The whole CLI surface: `commands/<noun>/<verb>.rs`, one file a verb
//! (`container`, `image`, `registry`, `system`), each noun's management
//! form (`berthctl container run`, `berthctl image pull`, ...), and here,
//! in one place, Docker's top-level aliases (`run`, `pull`, `ps`, `rmi`,
//! ...), each the same arguments and code as its management form.
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::client::Client;

pub mod container;
pub mod image;
pub mod registry;
pub mod system;

use container::{
    attach, commit, cp, exec, export, inspect, kill, list, logs, pause, rename, rm, run, stats, stop, top, update, wait,
};
use image::{history, import, load, pull, push, save, tag};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show berthctl's and berthd's versions
    Version,
    /// Show berthd's state: root, drivers, counts
    Info,
    /// Load images from an OCI layout (tar or directory) or a `docker save` archive
    Load(load::LoadArgs),
    /// Save images to a tar (OCI image layout plus Docker's manifest.json)
    Save(save::SaveArgs),
    /// Make a one-layer image from a rootfs tarball
    Import(import::ImportArgs),
    /// List images
    Images(image::list::ImagesArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Log in to a registry (credentials checked, then kept in config.json)
    Login(registry::login::LoginArgs),
    /// Log out from a registry
    Logout(registry::logout::LogoutArgs),
    /// Give an image another name
    Tag(tag::TagArgs),
    /// Remove image names (and images no name or container still needs)
    Rmi(image::rm::RmiArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Export a container's filesystem as a tar archive
    Export(export::ExportArgs),
    /// Copy files and directories between a container and the host
    Cp(cp::CpArgs),
    /// Image commands: ls, pull, push, inspect, rm, tag, load, save, history, prune, ...
    #[command(subcommand)]
    Image(image::ImageCommand),
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
    Stop(stop::StopArgs),
    /// Send a signal to running containers
    Kill(kill::KillArgs),
    /// Stop containers, then start them again
    Restart(stop::StopArgs),
    /// Freeze every process of containers (cgroup freezer)
    Pause(pause::PauseArgs),
    /// Thaw paused containers
    Unpause(pause::PauseArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// Change containers' limits (memory, CPUs, pids), at once and for later starts
    Update(update::UpdateArgs),
    /// Show containers' CPU, memory, network, block I/O and pids, live
    Stats(stats::StatsArgs),
    /// Show a running container's processes (ps options after the name)
    Top(top::TopArgs),
    /// Show a container's filesystem changes (A added, C changed, D deleted)
    Diff(top::DiffArgs),
    /// Remove containers
    Rm(rm::RmArgs),
    /// List containers
    Ps(list::PsArgs),
    /// Show a container's output
    Logs(logs::LogsArgs),
    /// Show containers or images as JSON
    Inspect(inspect::InspectArgs),
    /// Wait for containers to exit and print their exit codes
    Wait(wait::WaitArgs),
    /// Container commands: run, create, start, ls, logs, exec, cp, attach, rm, ...
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// System commands: df, prune, info
    #[command(subcommand)]
    System(system::SystemCommand),
}

impl Command {
    /// The exit code when berthd fails the request: 125 for `run` and
    /// `create` (either form), 1 for every other verb, as Docker's CLI.
    pub fn daemon_failure_code(&self) -> u8 {
        match self {
            Command::Run(_) | Command::Create(_) => 125,
            Command::Container(sub) if sub.is_create() => 125,
            _ => 1,
        }
    }
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
        Command::Logout(a) => return registry::logout::logout(a).await,
        other => other,
    };
    let c = Client::connect(socket).await?;
    match cmd {
        Command::Version => system::version::version(c).await,
        Command::Info => system::info::info(c).await,
        Command::Load(a) => load::load(c, a).await,
        Command::Save(a) => save::save(c, a).await,
        Command::Import(a) => import::import(c, a).await,
        Command::Images(a) => image::list::list(c, a).await,
        Command::Pull(a) => pull::pull(c, a).await,
        Command::Push(a) => push::push(c, a).await,
        Command::Login(a) => registry::login::login(c, a).await,
        Command::Logout(_) => unreachable!("handled above"),
        Command::Tag(a) => tag::tag(c, a).await,
        Command::Rmi(a) => image::rm::rmi(c, a).await,
        Command::Commit(a) => commit::commit(c, a).await,
        Command::History(a) => history::history(c, a).await,
        Command::Export(a) => export::export(c, a).await,
        Command::Cp(a) => cp::cp(c, a).await,
        Command::Image(sub) => image::image(c, sub).await,
        Command::Create(a) => run::create(c, a).await,
        Command::Start(a) => run::start(c, a).await,
        Command::Run(a) => run::run(c, a).await,
        Command::Attach(a) => attach::attach(c, a).await,
        Command::Exec(a) => exec::exec(c, a).await,
        Command::Stop(a) => stop::stop(c, a).await,
        Command::Kill(a) => kill::kill(c, a).await,
        Command::Restart(a) => stop::restart(c, a).await,
        Command::Pause(a) => pause::pause(c, a).await,
        Command::Unpause(a) => pause::unpause(c, a).await,
        Command::Rename(a) => rename::rename(c, a).await,
        Command::Update(a) => update::update(c, a).await,
        Command::Stats(a) => stats::stats(c, a).await,
        Command::Top(a) => top::top(c, a).await,
        Command::Diff(a) => top::diff(c, a).await,
        Command::Rm(a) => rm::rm(c, a).await,
        Command::Ps(a) => list::ps(c, a).await,
        Command::Logs(a) => logs::logs(c, a).await,
        Command::Inspect(a) => inspect::inspect(c, a).await,
        Command::Wait(a) => wait::wait(c, a).await,
        Command::Container(sub) => container::container(c, sub).await,
        Command::System(sub) => system::system(c, sub).await,
    }
}
