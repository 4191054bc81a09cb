//! Container verbs, one file each; `ContainerCommand` is `berthctl
//! container VERB`, Docker's management form (the top-level aliases are in
//! `commands/mod.rs`).
use anyhow::Result;
use clap::Subcommand;

use crate::client::Client;

pub mod attach;
pub mod commit;
pub mod cp;
pub mod exec;
pub mod export;
pub mod health;
pub mod inspect;
pub(crate) mod io;
pub mod kill;
pub mod list;
pub mod logs;
pub mod pause;
pub mod prune;
pub mod rename;
pub mod resources;
pub mod rm;
pub mod run;
pub mod stats;
pub mod stop;
pub mod top;
pub mod update;
pub mod wait;

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(list::PsArgs),
    /// Create a container without starting it
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    /// Create and start a container
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Start created or exited containers
    Start(run::StartArgs),
    /// Attach to a running container's input and output
    Attach(attach::AttachArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Show a container's output
    Logs(logs::LogsArgs),
    /// Copy files and directories between a container and the host
    Cp(cp::CpArgs),
    /// Show containers as JSON
    Inspect(inspect::InspectArgs),
    /// Remove containers
    Rm(rm::RmArgs),
    /// Stop containers
    Stop(stop::StopArgs),
    /// Signal containers
    Kill(kill::KillArgs),
    /// Stop containers, then start them again
    Restart(stop::StopArgs),
    /// Freeze every process of containers
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
    /// Wait for containers to exit
    Wait(wait::WaitArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(export::ExportArgs),
    /// Remove all stopped containers
    Prune(prune::ContainerPruneArgs),
}

impl ContainerCommand {
    /// Whether berthd's failure ends the verb with 125 (`run`, `create`).
    pub fn is_create(&self) -> bool {
        matches!(self, ContainerCommand::Create(_) | ContainerCommand::Run(_))
    }
}

pub async fn container(c: Client, cmd: ContainerCommand) -> Result<u8> {
    match cmd {
        ContainerCommand::Ls(a) => list::ps(c, a).await,
        ContainerCommand::Create(a) => run::create(c, a).await,
        ContainerCommand::Run(a) => run::run(c, a).await,
        ContainerCommand::Start(a) => run::start(c, a).await,
        ContainerCommand::Attach(a) => attach::attach(c, a).await,
        ContainerCommand::Exec(a) => exec::exec(c, a).await,
        ContainerCommand::Logs(a) => logs::logs(c, a).await,
        ContainerCommand::Cp(a) => cp::cp(c, a).await,
        ContainerCommand::Inspect(a) => inspect::inspect(c, a).await,
        ContainerCommand::Rm(a) => rm::rm(c, a).await,
        ContainerCommand::Stop(a) => stop::stop(c, a).await,
        ContainerCommand::Kill(a) => kill::kill(c, a).await,
        ContainerCommand::Restart(a) => stop::restart(c, a).await,
        ContainerCommand::Pause(a) => pause::pause(c, a).await,
        ContainerCommand::Unpause(a) => pause::unpause(c, a).await,
        ContainerCommand::Rename(a) => rename::rename(c, a).await,
        ContainerCommand::Update(a) => update::update(c, a).await,
        ContainerCommand::Stats(a) => stats::stats(c, a).await,
        ContainerCommand::Top(a) => top::top(c, a).await,
        ContainerCommand::Diff(a) => top::diff(c, a).await,
        ContainerCommand::Wait(a) => wait::wait(c, a).await,
        ContainerCommand::Commit(a) => commit::commit(c, a).await,
        ContainerCommand::Export(a) => export::export(c, a).await,
        ContainerCommand::Prune(a) => prune::container_prune(c, a).await,
    }
}

/// Runs `f` for each container, printing Docker's error line for failures;
/// exit code 1 if any failed.
pub(crate) async fn each<F, Fut>(containers: Vec<String>, mut f: F) -> Result<u8>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut code = 0;
    for name in containers {
        if let Err(e) = f(name).await {
            // berthd's refusals are reported and the next one goes on;
            // anything else (a closed stdout) ends the verb.
            let s = e.downcast::<tonic::Status>()?;
            eprintln!("{}", crate::out::daemon_error(&s));
            code = 1;
        }
    }
    Ok(code)
}
