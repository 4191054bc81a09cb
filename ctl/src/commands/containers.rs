//! Container verbs: `stop`, `kill`, `rm`, `ps`, `inspect`, `wait`,
//! `container ...`.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::{Args, Subcommand};

use super::FormatArg;
use crate::client::Client;
use crate::out::outln;
use crate::table;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout", default_value_t = -1, allow_negative_numbers = true)]
    time: i32,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send (name or number)
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill and remove a running container
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only show container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Filter: status=, name=, ancestor=, id=, label=
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Show full IDs and commands
    #[arg(long)]
    no_trunc: bool,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    objects: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Show containers as JSON
    Inspect(InspectArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Stop containers
    Stop(StopArgs),
    /// Signal containers
    Kill(KillArgs),
    /// Wait for containers to exit
    Wait(WaitArgs),
    /// Create a new image from a container's changes
    Commit(super::commit::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::prune::ExportArgs),
    /// Remove all stopped containers
    Prune(super::prune::ContainerPruneArgs),
}

pub async fn container(c: Client, cmd: ContainerCommand) -> Result<u8> {
    match cmd {
        ContainerCommand::Ls(a) => ps(c, a).await,
        ContainerCommand::Inspect(a) => inspect(c, a).await,
        ContainerCommand::Rm(a) => rm(c, a).await,
        ContainerCommand::Commit(a) => super::commit::commit(c, a).await,
        ContainerCommand::Stop(a) => stop(c, a).await,
        ContainerCommand::Kill(a) => kill(c, a).await,
        ContainerCommand::Wait(a) => wait(c, a).await,
        ContainerCommand::Export(a) => super::prune::export(c, a).await,
        ContainerCommand::Prune(a) => super::prune::container_prune(c, a).await,
    }
}

/// Runs `f` for each container, printing Docker's error line for failures;
/// exit code 1 if any failed.
async fn each<F, Fut>(containers: Vec<String>, mut f: F) -> Result<u8>
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

pub async fn stop(c: Client, a: StopArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            c.containers.stop(pb::StopRequest { id: id.clone(), timeout: a.time }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}

pub async fn kill(c: Client, a: KillArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        let signal = a.signal.clone();
        async move {
            c.containers.kill(pb::KillRequest { id: id.clone(), signal }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}

pub async fn rm(c: Client, a: RmArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            c.containers.remove(pb::RemoveContainerRequest { id: id.clone(), force: a.force }).await?;
            outln!("{id}")?;
            Ok(())
        }
    })
    .await
}

pub async fn wait(c: Client, a: WaitArgs) -> Result<u8> {
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            let r = c.containers.wait(pb::ContainerRef { id }).await?.into_inner();
            outln!("{}", r.exit_code)?;
            Ok(())
        }
    })
    .await
}

/// `Up 3 seconds`, `Exited (0) 12 seconds ago`, `Created`.
pub fn status_text(c: &pb::Container) -> String {
    match c.status.as_str() {
        "running" => format!("Up {}", table::human_duration(table::ago_nanos(c.started_at))),
        "paused" => format!("Up {} (Paused)", table::human_duration(table::ago_nanos(c.started_at))),
        "exited" => format!("Exited ({}) {} ago", c.exit_code, table::human_duration(table::ago_nanos(c.finished_at))),
        _ => "Created".into(),
    }
}

fn image_column(c: &pb::Container) -> String {
    if c.image.is_empty() {
        c.image_id.trim_start_matches("sha256:").chars().take(12).collect()
    } else {
        c.image.clone()
    }
}

pub async fn ps(mut c: Client, a: PsArgs) -> Result<u8> {
    let json = a.format.json()?;
    let list = c.list_containers(pb::ListContainersRequest { all: a.all, filters: a.filter.clone() }).await?;
    if a.quiet {
        for ct in &list {
            outln!("{}", if a.no_trunc { ct.id.as_str() } else { &ct.id[..12] })?;
        }
        return Ok(0);
    }
    if json {
        for ct in &list {
            let v = serde_json::json!({
                "ID": if a.no_trunc { ct.id.clone() } else { ct.id[..12].to_owned() },
                "Image": image_column(ct),
                "Command": table::command(&ct.command, !a.no_trunc),
                "CreatedAt": table::rfc3339(ct.created, false),
                "RunningFor": format!("{} ago", table::human_duration(table::ago_nanos(ct.created))),
                "Status": status_text(ct),
                "State": ct.status,
                "ExitCode": ct.exit_code,
                "Names": ct.name,
                "Labels": ct.labels,
            });
            outln!("{v}")?;
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|ct| {
            vec![
                if a.no_trunc { ct.id.clone() } else { ct.id[..12].to_owned() },
                image_column(ct),
                table::command(&ct.command, !a.no_trunc),
                format!("{} ago", table::human_duration(table::ago_nanos(ct.created))),
                status_text(ct),
                String::new(),
                ct.name.clone(),
            ]
        })
        .collect();
    table::print(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], &rows)?;
    Ok(0)
}

/// Containers first, then images, as `docker inspect` does.
pub async fn inspect(mut c: Client, a: InspectArgs) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for obj in a.objects {
        let json = match c.containers.inspect(pb::ContainerRef { id: obj.clone() }).await {
            Ok(r) => Some(r.into_inner().json),
            Err(s) if s.code() == tonic::Code::NotFound => {
                match c.images.inspect(pb::InspectImageRequest { reference: obj.clone() }).await {
                    Ok(r) => Some(r.into_inner().json),
                    Err(_) => None,
                }
            }
            Err(s) => return Err(s.into()),
        };
        match json {
            Some(j) => out.push(serde_json::from_str::<serde_json::Value>(&j)?),
            None => {
                eprintln!("Error: No such object: {obj}");
                code = 1;
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(code)
}
