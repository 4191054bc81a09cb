//! `login`: credentials checked by berthd, then kept in config.json.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::auth;
use crate::client::Client;
use crate::out::outln;
use std::io::{IsTerminal, Read, Write};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (insecure: it shows in the process list; use --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry (default: Docker Hub)
    pub server: Option<String>,
}

/// Reads a line from the terminal, without echo when `secret`.
pub(crate) fn prompt(label: &str, secret: bool) -> Result<String> {
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let saved = if secret { rustix::termios::tcgetattr(&stdin).ok() } else { None };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn login(mut c: Client, a: LoginArgs) -> Result<u8> {
    let registry = auth::normalise_registry(a.server.as_deref().unwrap_or(""));
    let interactive = std::io::stdin().is_terminal();
    let password = match (&a.password, a.password_stdin) {
        (Some(_), true) => anyhow::bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            Some(p.clone())
        }
        (None, true) => {
            if a.username.is_none() {
                anyhow::bail!("Must provide --username with --password-stdin");
            }
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Some(s.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, false) => None,
    };
    let username = match a.username {
        Some(u) => u,
        None if interactive => prompt("Username: ", false)?,
        None => anyhow::bail!("Cannot perform an interactive login from a non TTY device"),
    };
    let password = match password {
        Some(p) => p,
        None if interactive => prompt("Password: ", true)?,
        None => anyhow::bail!("Cannot perform an interactive login from a non TTY device"),
    };
    if username.is_empty() {
        anyhow::bail!("Error: Non-null Username Required");
    }
    if password.is_empty() {
        anyhow::bail!("Error: Password Required");
    }
    let auth =
        pb::RegistryAuth { username: username.clone(), password: password.clone(), identity_token: String::new() };
    let resp = c.images.login(pb::LoginRequest { registry: registry.clone(), auth: Some(auth) }).await?.into_inner();
    let path = auth::store(&registry, &username, &password)?;
    eprintln!("WARNING! Your credentials are stored unencrypted in '{}'.", path.display());
    outln!("{}", resp.status)?;
    Ok(0)
}
