//! `logout`.

use anyhow::Result;
use clap::Args;

use crate::auth;
use crate::out::outln;

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub)
    pub server: Option<String>,
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
