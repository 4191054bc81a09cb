//! `login`: the credentials berthctl read or was given are tried against
//! the registry itself (never a mirror), the way a pull would use them:
//! `GET /v2/`, and on a challenge the token server (Bearer) or the same
//! request again with them (Basic). berthd keeps nothing; berthctl stores
//! what passed.

use super::auth::Credentials;
use super::client::{Access, Session};
use super::endpoint::{self, Repository};
use super::{Puller, RegistryError};
use crate::images::reference::DEFAULT_DOMAIN;

impl Puller {
    /// Checks `creds` against `registry` (`docker.io`, `host:port`).
    pub async fn login(&self, registry: &str, creds: Credentials) -> Result<(), RegistryError> {
        let registry = super::config::canonical_host(registry.trim());
        let registry = if registry.is_empty() { DEFAULT_DOMAIN.to_owned() } else { registry };
        if registry.contains(['/', '@', ' ']) {
            return Err(RegistryError::Config(format!("invalid registry address {registry:?}")));
        }
        let Some(creds) = creds.non_empty() else {
            return Err(RegistryError::Unauthorized("unauthorized: no username or password given".into()));
        };
        let repo = Repository { registry: registry.clone(), path: String::new() };
        let upstream = endpoint::endpoints(&self.config, &self.clients, &repo)?
            .into_iter()
            .find(|e| !e.mirror)
            .ok_or_else(|| RegistryError::Protocol(format!("{registry}: no endpoint")))?;
        let stall = self.config.stall_timeout(&registry);
        let session = Session::open(upstream, "", &registry, Some(&creds), stall, Access::Login).await?;
        session.check().await?;
        tracing::info!(registry, user = %creds.username, "login checked");
        Ok(())
    }
}
