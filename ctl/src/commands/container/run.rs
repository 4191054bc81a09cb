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
    /// Read environment variables from a file (KEY=VALUE lines; # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<std::path::PathBuf>,
    /// Signal to stop the container (default SIGTERM, or the image's)
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,
    /// Seconds to wait for the container to stop before SIGKILL (default 10)
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    stop_timeout: Option<i32>,
    /// Add supplementary groups (GID or group name of the image)
    #[arg(long = "group-add", value_name = "GROUP")]
    group_add: Vec<String>,
    /// Run an init (tini) as PID 1 that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Write the container ID to the file
    #[arg(long, value_name = "FILE")]
    cidfile: Option<std::path::PathBuf>,
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
    /// Attach to STDIN, STDOUT or STDERR (repeatable; default: stdout and stderr)
    #[arg(short, long = "attach", value_name = "STREAM", value_parser = parse_stream)]
    attach: Vec<String>,
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

/// `-a`'s value, as Docker names the streams (any case).
fn parse_stream(s: &str) -> Result<String, String> {
    let l = s.to_ascii_lowercase();
    match l.as_str() {
        "stdin" | "stdout" | "stderr" => Ok(l),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".into()),
    }
}

/// `--env-file`: `KEY=VALUE` lines as they are, `KEY` alone from this
/// shell (dropped when unset), blank lines and `#` comments skipped; a key
/// with white space refused, as Docker does.
pub(super) fn env_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or_default();
        if key.is_empty() {
            anyhow::bail!("invalid environment variable: {line}");
        }
        if key.chars().any(char::is_whitespace) {
            anyhow::bail!("poorly formatted environment: variable '{key}' contains whitespaces");
        }
        if line.contains('=') {
            out.push(line.to_owned());
        } else if let Ok(v) = std::env::var(key) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

/// `--cidfile`: refused before anything is created when the file exists.
fn check_cidfile(o: &ContainerOpts) -> Result<()> {
    match &o.cidfile {
        Some(f) if f.exists() => Err(anyhow::anyhow!(
            "Container ID file found, make sure the other container isn't running or delete {}",
            f.display()
        )),
        _ => Ok(()),
    }
}

/// Writes the new container's ID into `--cidfile`.
fn write_cidfile(o: &ContainerOpts, id: &str) -> Result<()> {
    if let Some(f) = &o.cidfile {
        std::fs::write(f, id).map_err(|e| anyhow::anyhow!("write the container ID file {}: {e}", f.display()))?;
    }
    Ok(())
}

fn request(o: &ContainerOpts) -> Result<pb::CreateContainerRequest> {
    let mut env = Vec::new();
    for f in &o.env_file {
        env.extend(env_file(f)?);
    }
    env.extend(env_values(&o.env));
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
        stop_signal: o.stop_signal.clone().unwrap_or_default(),
        stop_timeout: o.stop_timeout,
        group_add: o.group_add.clone(),
        init: o.init,
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
    check_cidfile(&a.opts)?;
    let ct = c.containers.create(request(&a.opts)?).await?.into_inner().container.unwrap_or_default();
    write_cidfile(&a.opts, &ct.id)?;
    outln!("{}", ct.id)?;
    Ok(0)
}

pub async fn run(mut c: Client, a: RunArgs) -> Result<u8> {
    if a.detach && !a.attach.is_empty() {
        anyhow::bail!("Conflicting options: -a and -d");
    }
    check_cidfile(&a.opts)?;
    let stdin = a.opts.interactive || a.attach.iter().any(|s| s == "stdin");
    let interactive = !a.detach && (stdin || a.opts.tty);
    if !interactive {
        return run_streamed(c, &a).await;
    }
    io::check_tty(stdin, a.opts.tty)?;
    let mut req = request(&a.opts)?;
    // `-a stdin` keeps stdin open, as `-i` does.
    req.open_stdin |= stdin;
    let ct = c.containers.create(req).await?.into_inner().container.unwrap_or_default();
    write_cidfile(&a.opts, &ct.id)?;
    let s = container_session(&ct.id, a.opts.tty, stdin, a.detach_keys);
    session_and_start(c, &ct, s, true, a.opts.rm).await
}

/// `run` without a session, in one `Run` stream: created, started, the
/// output from its first byte, the exit (or, with `-d`, the ID once it
/// runs). SIGINT and SIGTERM are passed to the container.
async fn run_streamed(c: Client, a: &RunArgs) -> Result<u8> {
    let req = pb::RunRequest { create: Some(request(&a.opts)?), detach: a.detach, ..Default::default() };
    let shown = Shown { attach: a.attach.clone(), cidfile: a.opts.cidfile.clone() };
    follow_run(c, req, &shown).await
}

/// What a followed run prints (`-a`: only these streams; empty: both) and
/// where its ID goes (`--cidfile`).
#[derive(Default)]
struct Shown {
    attach: Vec<String>,
    cidfile: Option<std::path::PathBuf>,
}

impl Shown {
    fn shows(&self, rec: &pb::LogRecord) -> bool {
        self.attach.is_empty() || self.attach.contains(&rec.stream)
    }
}

/// Follows a `Run` stream to the container's exit: its output printed, its
/// code returned; berthd's word on a start that failed printed as Docker
/// prints it, with 126, 127 or 125.
async fn follow_run(mut c: Client, req: pb::RunRequest, shown: &Shown) -> Result<u8> {
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
                    Some(Kind::Created(ct)) => {
                        id = ct.id;
                        if let Some(f) = &shown.cidfile {
                            std::fs::write(f, &id)
                                .map_err(|e| anyhow::anyhow!("write the container ID file {}: {e}", f.display()))?;
                        }
                    }
                    Some(Kind::Started(_)) if detach => {
                        outln!("{id}")?;
                        return Ok(0);
                    }
                    Some(Kind::Started(_)) | None => {}
                    Some(Kind::StartFailed(f)) => {
                        eprintln!("berthctl: {}", crate::out::daemon_text(&f.message));
                        return Err(Exit(docker_start_code(f.exit_code)).into());
                    }
                    Some(Kind::Log(rec)) if shown.shows(&rec) => print_record(&rec, false)?,
                    Some(Kind::Log(_)) => {}
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
            return follow_run(c, pb::RunRequest { id: ct.id, ..Default::default() }, &Shown::default()).await;
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
