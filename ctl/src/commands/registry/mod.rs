//! Registry verbs that are not an image's: `login`, `logout`. berthd
//! talks to the registry; berthctl reads the credentials from its
//! `config.json` (`crate::auth`) and sends them with each request.
use anyhow::Result;
use berth_proto::v1 as pb;

use crate::auth;

pub mod login;
pub mod logout;

pub(crate) fn credentials_for(reference: &str) -> Result<Option<pb::RegistryAuth>> {
    auth::lookup(&auth::registry_of(reference))
}
