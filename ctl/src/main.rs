//! berthctl: the operator CLI, a thin gRPC client of berthd. Docker's verbs,
//! flags, tables and exit codes: 1 when berthd fails the request, except
//! for `run` and `create`, which end with 125 then; for those, 126 when the
//! container's command cannot be invoked, 127 when it is not found, else
//! the container's own code. `exec` ends with its process's code (126 or
//! 127 too), and any attached verb with 0 after the detach keys.
// The doc comments of the clap types are berthctl's --help text, in
// Docker's notation (`NAME[:TAG]`), not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod auth;
mod client;
mod commands;
mod out;
mod table;

/// berth's command-line client.
#[derive(Parser, Debug)]
#[command(name = "berthctl", version, about = "Run containers from images, with berthd")]
pub struct Cli {
    /// berthd's socket.
    #[arg(long, short = 'H', global = true, env = "BERTH_SOCKET", default_value = "/run/berth/berthd.sock")]
    socket: PathBuf,
    #[command(subcommand)]
    command: commands::Command,
}

/// An error that ends berthctl with a given exit code.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}
impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Docker's CLI: 125 is the daemon-error code of `run` and `create`
    // only; every other verb fails with 1.
    let failure = cli.command.daemon_failure_code();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthctl: {e}");
            return ExitCode::from(125);
        }
    };
    match rt.block_on(commands::run(cli.socket, cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            if out::is_closed(&e) {
                return ExitCode::from(out::CLOSED_EXIT);
            }
            let msg = match e.downcast_ref::<tonic::Status>() {
                Some(s) => out::daemon_error(s),
                // Other errors may quote berthd too (a copy's failure).
                None => out::shown(&format!("{e:#}")),
            };
            eprintln!("{msg}");
            ExitCode::from(failure)
        }
    }
}
