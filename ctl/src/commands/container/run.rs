//! `create`, `start`, `run`: a container from an image, and its output
//! streamed while it runs in the foreground: from its log without `-i` or
//! `-t`, else through an interactive session (see `io`).
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::{ArgAction, Args};
use tokio::signal::unix::{signal, SignalKind};

use super::health::HealthOpts;
use super::io::{self, DetachKeys, Session, DEFAULT_DETACH_KEYS};
use super::logs::print_record;
use super::resources::ResourceOpts;
use crate::client::Client;
use crate::out::outln;
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
    /// Keep stdin open (and attach it, in the foreground)
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal for the process
    #[arg(short, long)]
    tty: bool,
    /// Log rotation, KEY=VALUE, repeatable: max-size=SIZE (10k, 10m, 1g or
    /// bytes; default 10m) and max-file=N (files kept, 1 to 100; default 3)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opt: Vec<String>,
    #[command(flatten)]
    resources: ResourceOpts,
    #[command(flatten)]
    health: HealthOpts,
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
    /// Keys that detach from the container, leaving it running
    #[arg(long, default_value = DEFAULT_DETACH_KEYS)]
    detach_keys: DetachKeys,
    #[command(flatten)]
    opts: ContainerOpts,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach to the output and exit with the container's code
    #[arg(short, long)]
    attach: bool,
    /// Attach stdin too (implies -a)
    #[arg(short, long)]
    interactive: bool,
    /// Keys that detach from the container, leaving it running
    #[arg(long, default_value = DEFAULT_DETACH_KEYS)]
    detach_keys: DetachKeys,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `-e` values: `KEY=VALUE` as given; `KEY` takes this shell's value, or
/// is dropped when unset.
pub(super) fn env_values(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                // `-e KEY` passes this shell's value, or nothing if unset.
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

fn request(o: &ContainerOpts) -> Result<pb::CreateContainerRequest> {
    let env = env_values(&o.env);
    let labels = o
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let console = if o.tty { io::terminal_size().unwrap_or_default() } else { (0, 0) };
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
        tty: o.tty,
        open_stdin: o.interactive,
        // The client's size from the first byte, so a shell draws right.
        console_width: console.0,
        console_height: console.1,
        log_opts,
        resources: Some(o.resources.message()),
        restart_policy: o.resources.restart_policy(),
        healthcheck: o.health.message()?,
    })
}

/// Docker's exit code for a start failure: the process's own 127 (not
/// found) or 126 (cannot invoke), as berthd sends it beside the status
/// ([`berth_proto::START_EXIT_CODE`]); else 125.
fn start_failure_code(status: &tonic::Status) -> u8 {
    let code = status.metadata().get(berth_proto::START_EXIT_CODE).and_then(|v| v.to_str().ok()?.parse::<i32>().ok());
    docker_start_code(code.unwrap_or(1))
}

/// berthctl's exit code for a process that could not start with `code`.
fn docker_start_code(code: i32) -> u8 {
    match code {
        c @ (126 | 127) => c as u8,
        _ => 125,
    }
}

pub async fn create(mut c: Client, a: CreateArgs) -> Result<u8> {
    let ct = c.containers.create(request(&a.opts)?).await?.into_inner().container.unwrap_or_default();
    outln!("{}", ct.id)?;
    Ok(0)
}

pub async fn run(mut c: Client, a: RunArgs) -> Result<u8> {
    let interactive = !a.detach && (a.opts.interactive || a.opts.tty);
    if !interactive {
        return run_streamed(c, &a).await;
    }
    io::check_tty(a.opts.interactive, a.opts.tty)?;
    let ct = c.containers.create(request(&a.opts)?).await?.into_inner().container.unwrap_or_default();
    let s = container_session(&ct.id, a.opts.tty, a.opts.interactive, a.detach_keys);
    session_and_start(c, &ct, s, true, a.opts.rm).await
}

/// `run` without a session, in one `Run` stream: created, started, the
/// output from its first byte, the exit (or, with `-d`, the ID once it
/// runs). SIGINT and SIGTERM are passed to the container.
async fn run_streamed(c: Client, a: &RunArgs) -> Result<u8> {
    let req = pb::RunRequest { create: Some(request(&a.opts)?), detach: a.detach, ..Default::default() };
    follow_run(c, req).await
}

/// Follows a `Run` stream to the container's exit: its output printed, its
/// code returned; berthd's word on a start that failed printed as Docker
/// prints it, with 126, 127 or 125.
async fn follow_run(mut c: Client, req: pb::RunRequest) -> Result<u8> {
    use pb::run_event::Kind;
    let detach = req.detach;
    let mut stream = c.containers.run(req).await?.into_inner();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut id = String::new();
    loop {
        let (sig, code) = tokio::select! {
            ev = stream.message() => {
                let Some(ev) = ev? else { anyhow::bail!("berthd ended the run before the container's exit") };
                match ev.kind {
                    Some(Kind::Created(ct)) => id = ct.id,
                    Some(Kind::Started(_)) if detach => {
                        outln!("{id}")?;
                        return Ok(0);
                    }
                    Some(Kind::Started(_)) | None => {}
                    Some(Kind::StartFailed(f)) => {
                        eprintln!("berthctl: {}", crate::out::daemon_text(&f.message));
                        return Err(Exit(docker_start_code(f.exit_code)).into());
                    }
                    Some(Kind::Log(rec)) => print_record(&rec, false)?,
                    Some(Kind::Exit(e)) => return Ok(e.exit_code.clamp(0, 255) as u8),
                }
                continue;
            }
            _ = int.recv() => ("INT", 130),
            _ = term.recv() => ("TERM", 143),
        };
        if id.is_empty() || detach {
            // Nothing to pass it to yet: the signal's own meaning.
            return Ok(code);
        }
        let _ = c.containers.kill(pb::KillRequest { id: id.clone(), signal: sig.into(), ..Default::default() }).await;
    }
}

/// A session with the container `id`; signals go to it when it has no
/// terminal (with one, ^C is a byte for it).
fn container_session(id: &str, tty: bool, stdin: bool, detach_keys: DetachKeys) -> Session {
    Session { tty, stdin, detach_keys, sig_proxy: (!tty).then(|| id.to_owned()) }
}

/// Starts the container with an `Attach` stream open from its start: opened
/// first when `attach_first` (a created container: berthd waits for its
/// start behind the answer), else right after the start (the shim of an
/// interactive container holds its first output for the first attach).
async fn session_and_start(mut c: Client, ct: &pb::Container, s: Session, attach_first: bool, rm: bool) -> Result<u8> {
    let attach = pb::AttachStart { id: ct.id.clone(), stdin: s.stdin, from_start: true };
    let early = match attach_first {
        true => match io::attach(&mut c, attach.clone()).await {
            Ok(stream) => Some(stream),
            Err(e) => {
                if rm {
                    let _ = c.containers.remove(pb::RemoveContainerRequest { id: ct.id.clone(), force: true }).await;
                }
                return Err(e);
            }
        },
        false => None,
    };
    if let Err(st) = c.containers.start(pb::ContainerRef { id: ct.id.clone() }).await {
        drop(early);
        return fail_start(&mut c, ct, rm, st).await;
    }
    let (input, output) = match early {
        Some(stream) => stream,
        None => io::attach(&mut c, attach).await?,
    };
    io::session(&c, &s, input, output).await
}

async fn fail_start(c: &mut Client, ct: &pb::Container, rm: bool, s: tonic::Status) -> Result<u8> {
    eprintln!("berthctl: {}", crate::out::daemon_error(&s));
    if rm {
        let _ = c.containers.remove(pb::RemoveContainerRequest { id: ct.id.clone(), force: true }).await;
    }
    Err(Exit(start_failure_code(&s)).into())
}

pub async fn start(mut c: Client, a: StartArgs) -> Result<u8> {
    if a.attach || a.interactive {
        if a.containers.len() != 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let ct = super::attach::lookup(&mut c, &a.containers[0]).await?;
        if !(a.interactive || ct.tty || ct.open_stdin) {
            // Output only, no terminal: one `Run` stream of the existing
            // container, as `run` without -i/-t.
            return follow_run(c, pb::RunRequest { id: ct.id, ..Default::default() }).await;
        }
        let stdin = a.interactive && ct.open_stdin;
        io::check_tty(stdin, ct.tty)?;
        let s = container_session(&ct.id, ct.tty, stdin, a.detach_keys);
        return session_and_start(
            c,
            &ct,
            s,
            berth_contract::inspect::container_state(&ct) == pb::ContainerState::Created,
            false,
        )
        .await;
    }
    let mut code = 0;
    for id in a.containers {
        match c.containers.start(pb::ContainerRef { id: id.clone() }).await {
            Ok(_) => outln!("{id}")?,
            Err(s) => {
                eprintln!("{}", crate::out::daemon_error(&s));
                code = 1;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::commands::Command;

    fn parse(args: &[&str]) -> Command {
        crate::Cli::try_parse_from(["berthctl"].iter().chain(args)).unwrap().command
    }

    #[test]
    fn run_it_asks_for_a_terminal_and_open_stdin() {
        let Command::Run(a) = parse(&["run", "--rm", "-it", "demo/busybox", "sh", "-i"]) else { panic!() };
        let r = request(&a.opts).unwrap();
        assert!(r.tty && r.open_stdin && r.auto_remove && !a.detach);
        assert_eq!(r.cmd, ["sh", "-i"]);

        let Command::Run(a) = parse(&["run", "-d", "-t", "demo/busybox"]) else { panic!() };
        let r = request(&a.opts).unwrap();
        assert!(a.detach && r.tty && !r.open_stdin);

        let Command::Create(a) = parse(&["create", "-i", "demo/busybox"]) else { panic!() };
        let r = request(&a.opts).unwrap();
        assert!(!r.tty && r.open_stdin);
        assert_eq!((r.console_width, r.console_height), (0, 0), "no terminal, no size");
    }

    #[test]
    fn start_interactive_and_detach_keys() {
        let Command::Start(a) = parse(&["start", "-ai", "--detach-keys", "ctrl-@,x", "c1"]) else { panic!() };
        assert!(a.attach && a.interactive);
        assert_eq!(a.detach_keys.0, [0, b'x']);
        assert_eq!(a.containers, ["c1"]);
        let Command::Start(a) = parse(&["start", "c1", "c2"]) else { panic!() };
        assert!(!a.attach && !a.interactive);
    }
}
