//! `exec`: a new process in a running container, its stdio here.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::io::{self, DetachKeys, Session, DEFAULT_DETACH_KEYS};
use crate::client::Client;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Keep stdin open and attach it
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal for the process
    #[arg(short, long)]
    tty: bool,
    /// Run in the background: return once the process has started
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this shell)
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// User name or UID, optionally with group (name|uid[:group|gid])
    #[arg(short, long)]
    user: Option<String>,
    /// Keys that detach from the process, leaving it running
    #[arg(long, default_value = DEFAULT_DETACH_KEYS)]
    detach_keys: DetachKeys,
    /// Name or ID of the container
    container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub async fn exec(mut c: Client, a: ExecArgs) -> Result<u8> {
    // Detached, nothing reads this client's stdin.
    let stdin = a.interactive && !a.detach;
    if !a.detach {
        io::check_tty(stdin, a.tty)?;
    }
    let (width, height) = if a.tty { io::terminal_size().unwrap_or_default() } else { (0, 0) };
    let start = pb::ExecStart {
        id: a.container,
        cmd: a.command,
        env: super::run::env_values(&a.env),
        workdir: a.workdir.unwrap_or_default(),
        user: a.user.unwrap_or_default(),
        tty: a.tty,
        stdin,
        width,
        height,
        detach: a.detach,
    };
    let (input, output) = io::exec(&mut c, start).await?;
    if a.detach {
        return io::exec_started(output).await;
    }
    // Signals end this client, not the process, as `docker exec`.
    let s = Session { tty: a.tty, stdin, detach_keys: a.detach_keys, sig_proxy: None };
    io::session(&c, &s, input, output).await
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::Parser;

    use super::*;
    use crate::commands::Command;

    fn parse(args: &[&str]) -> Result<ExecArgs, ErrorKind> {
        let argv = ["berthctl", "exec"].iter().chain(args);
        match crate::Cli::try_parse_from(argv).map_err(|e| e.kind())?.command {
            Command::Exec(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_before_the_container_command_after() {
        let a = parse(&["c1", "sh", "-c", "echo -i -t"]).unwrap();
        assert_eq!(
            (a.container.as_str(), a.command.as_slice()),
            ("c1", &["sh", "-c", "echo -i -t"].map(String::from)[..])
        );
        assert!(!a.interactive && !a.tty && !a.detach);
        assert_eq!(a.detach_keys.0, [0x10, 0x11]);

        let a = parse(&[
            "-it",
            "-e",
            "A=b",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "--detach-keys",
            "ctrl-a,b",
            "c1",
            "ls",
            "-l",
        ])
        .unwrap();
        assert!(a.interactive && a.tty);
        assert_eq!((a.env, a.workdir, a.user), (vec!["A=b".to_owned()], Some("/tmp".into()), Some("1000:1000".into())));
        assert_eq!(a.detach_keys.0, [0x01, b'b']);
        assert_eq!(a.command, ["ls", "-l"]);

        assert!(parse(&["-d", "c1", "sleep", "9"]).unwrap().detach);
        assert_eq!(parse(&["c1"]).unwrap_err(), ErrorKind::MissingRequiredArgument);
        assert_eq!(parse(&["--detach-keys", "ctrl-1", "c1", "sh"]).unwrap_err(), ErrorKind::ValueValidation);
    }
}
