//! Where the bytes of a repository come from: the registry a reference
//! names (Docker Hub's API lives at `registry-1.docker.io`), preceded by its
//! configured mirrors, each with the HTTP client its TLS settings need.
//!
//! Transport policy, per host:
//! * HTTPS always comes first; certificates are checked against the system
//!   trust store plus the host's `ca` files.
//! * Plain HTTP is tried when HTTPS cannot connect, and only for hosts
//!   marked `insecure` or on loopback (`localhost`, 127.0.0.0/8, `::1`),
//!   as Docker does. Unlike Docker, a loopback host still gets its
//!   certificates checked; only `insecure = true` turns that off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use super::config::{canonical_host, RegistriesConfig};
use super::RegistryError;

/// The API host of Docker Hub.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A repository inside a registry, from a parsed reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// The registry as references and the config name it: `docker.io`.
    pub registry: String,
    /// The repository path: `library/busybox`.
    pub path: String,
}

/// `https://` or `http://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
        }
    }
}

/// One place to fetch from.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host[:port]` for URLs.
    pub host: String,
    /// Schemes to try, in order.
    pub schemes: Vec<Scheme>,
    /// A mirror (not the registry itself): credentials are not sent to it.
    pub mirror: bool,
    pub client: reqwest::Client,
}

impl Endpoint {
    /// `scheme://host/v2/`.
    pub fn base(&self, scheme: Scheme) -> String {
        format!("{}://{}/v2/", scheme.as_str(), self.host)
    }
}

/// The host the registry API of `registry` answers on.
pub fn api_host(registry: &str) -> &str {
    if registry == crate::images::reference::DEFAULT_DOMAIN {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Whether a `host[:port]` is on loopback.
pub fn is_loopback(host: &str) -> bool {
    let name = strip_port(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A mirror entry: `https://host[:port]`, `http://host[:port]` or a bare
/// `host[:port]`; returns the host and the scheme it demands, if any.
pub fn parse_mirror(m: &str) -> Result<(String, Option<Scheme>), String> {
    let trimmed = m.trim().trim_end_matches('/');
    let (scheme, rest) = if let Some(r) = trimmed.strip_prefix("https://") {
        (Some(Scheme::Https), r)
    } else if let Some(r) = trimmed.strip_prefix("http://") {
        (Some(Scheme::Http), r)
    } else if trimmed.contains("://") {
        return Err(format!("mirror {m:?}: only http:// and https:// are supported"));
    } else {
        (None, trimmed)
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!("mirror {m:?}: give a host[:port], without a path"));
    }
    Ok((rest.to_owned(), scheme))
}

/// HTTP clients by host, built once: each loads the system trust store.
#[derive(Default)]
pub struct Clients {
    cache: Mutex<HashMap<String, reqwest::Client>>,
}

impl Clients {
    /// The client for `host` with its config's CA files and `insecure`.
    pub fn for_host(&self, config: &RegistriesConfig, host: &str) -> Result<reqwest::Client, RegistryError> {
        let key = canonical_host(host);
        if let Some(c) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(c.clone());
        }
        let entry = config.host(&key);
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            .tls_built_in_native_certs(true);
        if let Some(h) = entry {
            for path in &h.ca {
                let pem = std::fs::read(path).map_err(|e| {
                    RegistryError::Config(format!("registry {key:?}: read CA file {}: {e}", path.display()))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| RegistryError::Config(format!("registry {key:?}: CA file {}: {e}", path.display())))?;
                if certs.is_empty() {
                    return Err(RegistryError::Config(format!(
                        "registry {key:?}: CA file {} holds no certificate",
                        path.display()
                    )));
                }
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
            if h.insecure {
                b = b.danger_accept_invalid_certs(true);
            }
        }
        let client = b.build().map_err(|e| RegistryError::Config(format!("registry {key:?}: HTTP client: {e}")))?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, client.clone());
        Ok(client)
    }
}

/// The endpoints of a repository: its mirrors in order, then the
/// registry itself.
pub fn endpoints(
    config: &RegistriesConfig,
    clients: &Clients,
    repo: &Repository,
) -> Result<Vec<Endpoint>, RegistryError> {
    let mut out = Vec::new();
    if let Some(h) = config.host(&repo.registry) {
        for m in &h.mirrors {
            let (host, scheme) = parse_mirror(m).map_err(RegistryError::Config)?;
            let schemes = match scheme {
                Some(s) => vec![s],
                None => schemes_for(config, &host),
            };
            out.push(Endpoint { client: clients.for_host(config, &host)?, host, schemes, mirror: true });
        }
    }
    let host = api_host(&repo.registry).to_owned();
    out.push(Endpoint {
        client: clients.for_host(config, &repo.registry)?,
        schemes: schemes_for(config, &repo.registry),
        host,
        mirror: false,
    });
    Ok(out)
}

fn schemes_for(config: &RegistriesConfig, host: &str) -> Vec<Scheme> {
    let insecure = config.host(host).is_some_and(|h| h.insecure);
    if insecure || is_loopback(host) {
        vec![Scheme::Https, Scheme::Http]
    } else {
        vec![Scheme::Https]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::reference;

    fn repo_of(s: &str) -> (String, String, String) {
        let r = reference::parse(s).unwrap();
        let repo = Repository { registry: r.domain().to_owned(), path: r.path().to_owned() };
        (repo.registry.clone(), api_host(&repo.registry).to_owned(), repo.path)
    }

    #[test]
    fn references_map_to_registry_urls() {
        let table: &[(&str, &str, &str, &str)] = &[
            ("busybox", "docker.io", "registry-1.docker.io", "library/busybox"),
            ("docker.io/busybox:1", "docker.io", "registry-1.docker.io", "library/busybox"),
            ("index.docker.io/library/alpine", "docker.io", "registry-1.docker.io", "library/alpine"),
            ("user/app", "docker.io", "registry-1.docker.io", "user/app"),
            ("ghcr.io/owner/app:v1", "ghcr.io", "ghcr.io", "owner/app"),
            ("localhost:5000/x", "localhost:5000", "localhost:5000", "x"),
            ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "127.0.0.1:5000", "a/b/c"),
        ];
        for (input, registry, host, path) in table {
            assert_eq!(repo_of(input), (registry.to_string(), host.to_string(), path.to_string()), "{input}");
        }
        let config = RegistriesConfig::default();
        let clients = Clients::default();
        let eps =
            endpoints(&config, &clients, &Repository { registry: "docker.io".into(), path: "library/busybox".into() })
                .unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].base(Scheme::Https), "https://registry-1.docker.io/v2/");
        assert_eq!(eps[0].schemes, [Scheme::Https]);
    }

    #[test]
    fn loopback_and_insecure_may_use_http() {
        for h in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "LOCALHOST:1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1:5000", "localhost.example.com", "[::2]:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
        let config = RegistriesConfig::parse(
            "[registry.\"reg.lan:5000\"]\ninsecure = true\n[registry.\"docker.io\"]\nmirrors = [\"http://m1:5000\", \"https://m2\", \"m3.lan\", \"127.0.0.1:6000\"]",
            "t",
        )
        .unwrap();
        assert_eq!(schemes_for(&config, "reg.lan:5000"), [Scheme::Https, Scheme::Http]);
        assert_eq!(schemes_for(&config, "127.0.0.1:5000"), [Scheme::Https, Scheme::Http]);
        assert_eq!(schemes_for(&config, "reg.lan:5001"), [Scheme::Https]);
        let clients = Clients::default();
        let repo = Repository { registry: "docker.io".into(), path: "library/x".into() };
        let eps = endpoints(&config, &clients, &repo).unwrap();
        let seen: Vec<(&str, Vec<Scheme>, bool)> =
            eps.iter().map(|e| (e.host.as_str(), e.schemes.clone(), e.mirror)).collect();
        assert_eq!(
            seen,
            [
                ("m1:5000", vec![Scheme::Http], true),
                ("m2", vec![Scheme::Https], true),
                ("m3.lan", vec![Scheme::Https], true),
                ("127.0.0.1:6000", vec![Scheme::Https, Scheme::Http], true),
                ("registry-1.docker.io", vec![Scheme::Https], false),
            ]
        );
    }

    #[test]
    fn mirror_syntax() {
        assert_eq!(parse_mirror("https://m.io/").unwrap(), ("m.io".to_owned(), Some(Scheme::Https)));
        assert_eq!(parse_mirror("m.io:5000").unwrap(), ("m.io:5000".to_owned(), None));
        assert!(parse_mirror("ftp://m.io").unwrap_err().contains("only http:// and https://"));
        assert!(parse_mirror("https://m.io/path").unwrap_err().contains("without a path"));
        assert!(parse_mirror("").is_err());
    }
}
