//! `create`, `start`, `run`: a container from an image, and its output
//! streamed while it runs in the foreground.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::{ArgAction, Args};
use futures::FutureExt;
use tokio::signal::unix::{signal, SignalKind};

use super::logs::stream_records;
use crate::client::Client;
use crate::Exit;

/// Flags shared by `create` and `run` (Docker's names; `-h` is the
/// hostname, so help is `--help` only).
#[derive(Args, Debug, Clone)]
pub struct ContainerOpts {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this shell)
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Overwrite the image's ENTRYPOINT
    #[arg(long)]
    entrypoint: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// User name or UID, optionally with group (name|uid[:group|gid])
    #[arg(short, long)]
    user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Set metadata on the container (KEY=VALUE)
    #[arg(short, long = "label")]
    label: Vec<String>,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Log rotation, KEY=VALUE, repeatable: max-size=SIZE (10k, 10m, 1g or
    /// bytes; default 10m) and max-file=N (files kept, 1 to 100; default 3)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opt: Vec<String>,
    /// The image to run
    image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    opts: ContainerOpts,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    #[command(flatten)]
    opts: ContainerOpts,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach to the output and exit with the container's code
    #[arg(short, long)]
    attach: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

fn request(o: &ContainerOpts) -> Result<pb::CreateContainerRequest> {
    let env = o
        .env
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                // `-e KEY` passes this shell's value, or nothing if unset.
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    let labels = o
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect();
    // berthd checks keys and values; here only the shape.
    let log_opts = o
        .log_opt
        .iter()
        .map(|opt| match opt.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(anyhow::anyhow!("invalid --log-opt \"{opt}\": want KEY=VALUE, e.g. max-size=10m")),
        })
        .collect::<Result<_>>()?;
    Ok(pb::CreateContainerRequest {
        image: o.image.clone(),
        name: o.name.clone().unwrap_or_default(),
        cmd: o.command.clone(),
        entrypoint: o.entrypoint.clone(),
        env,
        workdir: o.workdir.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        hostname: o.hostname.clone().unwrap_or_default(),
        auto_remove: o.rm,
        labels,
        log_opts,
        ..Default::default()
    })
}

/// Docker's exit code for a start failure: 127 not found, 126 cannot
/// invoke, else 125.
fn start_failure_code(message: &str) -> u8 {
    if message.contains("executable file not found") || message.contains("no such file or directory") {
        127
    } else if message.contains("permission denied")
        || message.contains("unable to find user")
        || message.contains("is a directory")
    {
        126
    } else {
        125
    }
}

pub async fn create(mut c: Client, a: CreateArgs) -> Result<u8> {
    let ct = c.containers.create(request(&a.opts)?).await?.into_inner().container.unwrap_or_default();
    println!("{}", ct.id);
    Ok(0)
}

pub async fn run(mut c: Client, a: RunArgs) -> Result<u8> {
    let ct = c.containers.create(request(&a.opts)?).await?.into_inner().container.unwrap_or_default();
    if a.detach {
        if let Err(s) = c.containers.start(pb::ContainerRef { id: ct.id.clone() }).await {
            return fail_start(&mut c, &ct, a.opts.rm, s).await;
        }
        println!("{}", ct.id);
        return Ok(0);
    }
    attach_and_start(c, &ct, a.opts.rm).await
}

async fn fail_start(c: &mut Client, ct: &pb::Container, rm: bool, s: tonic::Status) -> Result<u8> {
    eprintln!("berthctl: Error response from daemon: {}", s.message());
    if rm {
        let _ = c.containers.remove(pb::RemoveContainerRequest { id: ct.id.clone(), force: true }).await;
    }
    Err(Exit(start_failure_code(s.message())).into())
}

/// Opens the log stream, starts the container once the agent has the log
/// open (so no output is missed), prints until the exit, and returns the
/// container's exit code. SIGINT and SIGTERM are passed to the container.
async fn attach_and_start(mut c: Client, ct: &pb::Container, rm: bool) -> Result<u8> {
    let stream =
        c.containers.logs(pb::LogsRequest { id: ct.id.clone(), follow: true, tail: 0, since: 0 }).await?.into_inner();
    let (open_tx, open_rx) = tokio::sync::oneshot::channel();
    let mut open_tx = Some(open_tx);
    let printer = tokio::spawn(stream_records(stream, false, move || {
        if let Some(tx) = open_tx.take() {
            let _ = tx.send(());
        }
    }));
    // If the stream ends before saying it is open, start anyway.
    let _ = open_rx.await;
    if let Err(s) = c.containers.start(pb::ContainerRef { id: ct.id.clone() }).await {
        printer.abort();
        return fail_start(&mut c, ct, rm, s).await;
    }

    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut printer = printer.fuse();
    loop {
        tokio::select! {
            r = &mut printer => { r??; break; }
            _ = int.recv() => { let _ = c.containers.kill(pb::KillRequest { id: ct.id.clone(), signal: "INT".into() }).await; }
            _ = term.recv() => { let _ = c.containers.kill(pb::KillRequest { id: ct.id.clone(), signal: "TERM".into() }).await; }
        }
    }
    let w = c.containers.wait(pb::ContainerRef { id: ct.id.clone() }).await?.into_inner();
    Ok(w.exit_code.clamp(0, 255) as u8)
}

pub async fn start(mut c: Client, a: StartArgs) -> Result<u8> {
    if a.attach {
        if a.containers.len() != 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let ct = c.containers.inspect(pb::ContainerRef { id: a.containers[0].clone() }).await?.into_inner();
        let v: serde_json::Value = serde_json::from_str(&ct.json)?;
        let ct = pb::Container { id: v["Id"].as_str().unwrap_or_default().to_owned(), ..Default::default() };
        return attach_and_start(c, &ct, false).await;
    }
    let mut code = 0;
    for id in a.containers {
        match c.containers.start(pb::ContainerRef { id: id.clone() }).await {
            Ok(_) => println!("{id}"),
            Err(s) => {
                eprintln!("Error response from daemon: {}", s.message());
                code = 1;
            }
        }
    }
    Ok(code)
}
