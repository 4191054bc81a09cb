//! `attach`: this client's stdio to a running container's.
use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use super::io::{self, DetachKeys, Session, DEFAULT_DETACH_KEYS};
use crate::client::Client;

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach stdin
    #[arg(long)]
    no_stdin: bool,
    /// Keys that detach from the container, leaving it running
    #[arg(long, default_value = DEFAULT_DETACH_KEYS)]
    detach_keys: DetachKeys,
    /// Name or ID of the container
    container: String,
}

/// The container `name` (a name, ID or ID prefix) as listed, with its
/// `tty` and `open_stdin`, which `inspect` does not show.
pub(super) async fn lookup(c: &mut Client, name: &str) -> Result<pb::Container> {
    let json = c.containers.inspect(pb::ContainerRef { id: name.to_owned() }).await?.into_inner().json;
    let v: serde_json::Value = serde_json::from_str(&json)?;
    let id = v["Id"].as_str().unwrap_or_default().to_owned();
    let status = v["State"]["Status"].as_str().unwrap_or_default().to_owned();
    let list = c.list_containers(pb::ListContainersRequest { all: true, filters: vec![format!("id={id}")] }).await?;
    // Gone between the two calls: what inspect said is all there is.
    Ok(list.into_iter().find(|ct| ct.id == id).unwrap_or(pb::Container { id, status, ..Default::default() }))
}

pub async fn attach(mut c: Client, a: AttachArgs) -> Result<u8> {
    let ct = lookup(&mut c, &a.container).await?;
    // Stdin only where the container keeps one open (`-i`), as Docker.
    let stdin = !a.no_stdin && ct.open_stdin;
    io::check_tty(stdin, ct.tty)?;
    let (input, output) = io::attach(&mut c, pb::AttachStart { id: ct.id.clone(), stdin, from_start: false }).await?;
    let s = Session { tty: ct.tty, stdin, detach_keys: a.detach_keys, sig_proxy: (!ct.tty).then_some(ct.id) };
    io::session(&c, &s, input, output).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::commands::Command;

    #[test]
    fn attach_flags() {
        let cli =
            crate::Cli::try_parse_from(["berthctl", "attach", "--no-stdin", "--detach-keys", "q", "web"]).unwrap();
        let Command::Attach(a) = cli.command else { panic!() };
        assert!(a.no_stdin);
        assert_eq!((a.detach_keys.0.as_slice(), a.container.as_str()), (&b"q"[..], "web"));
    }
}
