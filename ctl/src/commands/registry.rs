//! `pull`, `push`, `login`, `logout`. berthd talks to the registry;
//! berthctl reads the credentials from its `config.json` (`crate::auth`)
//! and sends them with the request, and draws the progress as `docker
//! pull` does: on a terminal one line per layer, redrawn in place, with a
//! bar while bytes move; elsewhere one line per change of state.
use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::images::familiar;
use crate::auth;
use crate::client::Client;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Pull for this platform (os/arch[/variant]) instead of the node's
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image name
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub reference: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Print only the manifest digest
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub reference: String,
}

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

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub)
    pub server: Option<String>,
}

fn credentials_for(reference: &str) -> Result<Option<pb::RegistryAuth>> {
    auth::lookup(&auth::registry_of(reference))
}

/// Layer lines, as `docker pull` and `docker push` draw them.
struct Progress {
    tty: bool,
    /// Layer ids in the order first seen; their line index.
    lines: HashMap<String, usize>,
    count: usize,
    /// The last status printed per id (no repeats off a terminal).
    last: HashMap<String, String>,
}

impl Progress {
    fn new() -> Self {
        Self { tty: std::io::stdout().is_terminal(), lines: HashMap::new(), count: 0, last: HashMap::new() }
    }

    /// A progress message: a line about the whole pull or push (no `id`),
    /// or a layer's.
    /// Texts from the registry are escaped (`out::shown`): a hostile one
    /// must not move the cursor these lines are drawn with.
    fn show(&mut self, id: &str, status: &str, current: u64, total: u64) -> Result<()> {
        let (id, status) = (crate::out::shown(id), crate::out::shown(status));
        if id.is_empty() {
            self.line(&status)
        } else {
            self.layer(&id, &status, current, total);
            Ok(())
        }
    }

    fn line(&mut self, text: &str) -> Result<()> {
        outln!("{text}")?;
        if self.tty {
            // Lines above no longer move with the layer lines.
            self.lines.clear();
            self.count = 0;
        }
        Ok(())
    }

    fn layer(&mut self, id: &str, status: &str, current: u64, total: u64) {
        let moving = matches!(status, "Downloading" | "Pushing" | "Extracting");
        let text = if moving && self.tty && total > 0 {
            format!("{id}: {status} {}", bar(current, total))
        } else {
            format!("{id}: {status}")
        };
        let mut out = std::io::stdout().lock();
        if !self.tty {
            if moving || self.last.get(id).is_some_and(|s| s == status) {
                return;
            }
            self.last.insert(id.to_owned(), status.to_owned());
            let _ = writeln!(out, "{text}");
            return;
        }
        match self.lines.get(id) {
            None => {
                self.lines.insert(id.to_owned(), self.count);
                self.count += 1;
                let _ = writeln!(out, "{text}");
            }
            Some(&i) => {
                let up = self.count - i;
                let _ = write!(out, "\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B");
            }
        }
        let _ = out.flush();
    }
}

fn bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (current.min(total) * WIDTH / total.max(1)) as usize;
    let mut b = "=".repeat(filled);
    if filled < WIDTH as usize {
        b.push('>');
    }
    format!("[{b:<50}] {:>8}/{}", human(current), human(total))
}

/// Sizes as Docker's progress shows them (decimal units).
fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        return format!("{n}B");
    }
    // Four significant digits, as Go's %.4g in Docker's units.HumanSize.
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{v:.digits$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", units[u])
}

pub async fn pull(mut c: Client, a: PullArgs) -> Result<u8> {
    let auth = credentials_for(&a.reference)?;
    let mut stream = c
        .images
        .pull(pb::PullRequest {
            reference: a.reference.clone(),
            platform: a.platform.clone().unwrap_or_default(),
            auth,
        })
        .await?
        .into_inner();
    let mut p = Progress::new();
    while let Some(msg) = stream.message().await? {
        if let Some(r) = msg.result {
            if !a.quiet {
                p.line(&format!("Digest: {}", r.digest))?;
                let shown = familiar(&r.name);
                if r.up_to_date {
                    p.line(&format!("Status: Image is up to date for {shown}"))?;
                } else {
                    p.line(&format!("Status: Downloaded newer image for {shown}"))?;
                }
            }
            outln!("{}", r.name)?;
            continue;
        }
        if !a.quiet {
            p.show(&msg.id, &msg.status, msg.current, msg.total)?;
        }
    }
    Ok(0)
}

pub async fn push(mut c: Client, a: PushArgs) -> Result<u8> {
    let auth = credentials_for(&a.reference)?;
    let mut stream = c.images.push(pb::PushRequest { reference: a.reference.clone(), auth }).await?.into_inner();
    let mut p = Progress::new();
    while let Some(msg) = stream.message().await? {
        if let Some(r) = msg.result {
            if a.quiet {
                outln!("{}", r.digest)?;
            } else {
                p.line(&format!("{}: digest: {} size: {}", r.tag, r.digest, r.size))?;
            }
            continue;
        }
        if !a.quiet {
            p.show(&msg.id, &msg.status, msg.current, msg.total)?;
        }
    }
    Ok(0)
}

/// Reads a line from the terminal, without echo when `secret`.
fn prompt(label: &str, secret: bool) -> Result<String> {
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

pub async fn logout(a: LogoutArgs) -> Result<u8> {
    let registry = auth::normalise_registry(a.server.as_deref().unwrap_or(""));
    let shown = if registry == "docker.io" { auth::DOCKER_HUB_KEY.to_owned() } else { registry.clone() };
    if auth::remove(&registry)? {
        outln!("Removing login credentials for {shown}")?;
    } else {
        outln!("Not logged in to {shown}")?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars() {
        assert_eq!(human(999), "999B");
        assert_eq!(human(1000), "1kB");
        assert_eq!(human(1_234_567), "1.235MB");
        assert_eq!(human(3_400_000), "3.4MB");
        assert_eq!(human(123_450_000), "123.5MB");
        assert_eq!(human(20_000_000), "20MB");
        let b = bar(1, 2);
        assert!(b.starts_with(&format!("[{}>", "=".repeat(25))), "{b}");
        assert!(b.ends_with("1B/2B"), "{b}");
        assert!(bar(5, 5).starts_with(&format!("[{}]", "=".repeat(50))));
        assert!(bar(0, 0).starts_with("[>"));
    }
}
