//! The `[pull]` and `[registry."HOST"]` tables of berthd's config file
//! (`berthd --config FILE`, TOML; see `docs/registries.md`):
//!
//! ```toml
//! [pull]
//! max_concurrent_downloads = 3   # layers fetched at once
//! stall_timeout = "60s"          # no byte for this long fails the pull
//!
//! [registry."docker.io"]
//! mirrors = ["https://mirror.example.com", "mirror.local:5000"]
//!
//! [registry."registry.internal:5000"]
//! ca = ["/etc/berth/certs/internal-ca.pem"]
//! insecure = false               # true: plain HTTP allowed, certificates not checked
//! max_concurrent_downloads = 6   # overrides [pull] for this registry
//! ```
//!
//! Unknown keys are errors, so a typo does not silently change nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::RegistryError;

/// Layers fetched at once when nothing says otherwise (Docker's default).
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;
/// How long a download may go without a byte (Docker has none; 60 s is
/// long enough for a slow mirror, short enough for a person).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What the config file says about registries.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    #[serde(default)]
    pub pull: PullConfig,
    /// By registry host as references name it (`docker.io`,
    /// `localhost:5000`).
    #[serde(default)]
    pub registry: BTreeMap<String, HostConfig>,
    /// `[images]`: not about registries, but in the same file
    /// (`crate::config::ImagesConfig`).
    #[serde(default)]
    pub images: crate::config::ImagesConfig,
}

/// `[pull]`: defaults for every registry.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    pub max_concurrent_downloads: Option<usize>,
    #[serde(default, with = "duration_opt")]
    pub stall_timeout: Option<Duration>,
}

/// `[registry."HOST"]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Tried in order before the registry itself: `https://host[:port]`,
    /// `http://host[:port]` or a bare `host[:port]` (HTTPS).
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP allowed and TLS certificates not verified.
    #[serde(default)]
    pub insecure: bool,
    /// PEM files of CA certificates trusted for this host, besides the
    /// system's.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    pub max_concurrent_downloads: Option<usize>,
    #[serde(default, with = "duration_opt")]
    pub stall_timeout: Option<Duration>,
}

impl RegistriesConfig {
    /// Parses the file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, RegistryError> {
        let mut config: Self =
            toml::from_str(text).map_err(|e| RegistryError::Config(format!("{origin}: {}", e.to_string().trim())))?;
        let mut normalised = BTreeMap::new();
        for (host, h) in std::mem::take(&mut config.registry) {
            let key = canonical_host(&host);
            for m in &h.mirrors {
                super::endpoint::parse_mirror(m)
                    .map_err(|e| RegistryError::Config(format!("{origin}: registry {host:?}: {e}")))?;
            }
            if h.max_concurrent_downloads == Some(0) {
                return Err(RegistryError::Config(format!(
                    "{origin}: registry {host:?}: max_concurrent_downloads must be at least 1"
                )));
            }
            if normalised.insert(key.clone(), h).is_some() {
                return Err(RegistryError::Config(format!("{origin}: registry {key:?} is configured twice")));
            }
        }
        config.registry = normalised;
        if config.pull.max_concurrent_downloads == Some(0) {
            return Err(RegistryError::Config(format!("{origin}: max_concurrent_downloads must be at least 1")));
        }
        Ok(config)
    }

    /// Reads and parses a config file.
    pub fn load(path: &std::path::Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RegistryError::Config(format!("read {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The entry for a registry host, if any.
    pub fn host(&self, host: &str) -> Option<&HostConfig> {
        self.registry.get(&canonical_host(host))
    }

    /// Layers fetched at once from `host`.
    pub fn max_concurrent_downloads(&self, host: &str) -> usize {
        self.host(host)
            .and_then(|h| h.max_concurrent_downloads)
            .or(self.pull.max_concurrent_downloads)
            .unwrap_or(DEFAULT_MAX_CONCURRENT_DOWNLOADS)
    }

    /// How long a download from `host` may stall.
    pub fn stall_timeout(&self, host: &str) -> Duration {
        self.host(host).and_then(|h| h.stall_timeout).or(self.pull.stall_timeout).unwrap_or(DEFAULT_STALL_TIMEOUT)
    }
}

/// Docker Hub's other names are the same registry.
pub fn canonical_host(host: &str) -> String {
    let h = host.trim_end_matches('/').to_ascii_lowercase();
    match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_owned(),
        _ => h,
    }
}

/// `"90s"`, `"2m"`, `"1m30s"`, `"500ms"`, `"1h"`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: use a number with a unit, like \"60s\", \"2m\" or \"500ms\"");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    Ok(total)
}

mod duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok: &[(&str, u64)] =
            &[("60s", 60_000), ("2m", 120_000), ("1m30s", 90_000), ("500ms", 500), ("1h", 3_600_000), ("15", 15_000)];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(*ms), "{s}");
        }
        for bad in ["", "s", "10x", "1.5s", "-1s", "m5"] {
            assert!(parse_duration(bad).unwrap_err().starts_with("invalid duration"), "{bad}");
        }
        assert_eq!(parse_duration("0s").unwrap_err(), "invalid duration \"0s\": must be more than zero");
    }

    #[test]
    fn full_file() {
        let text = r#"
            [pull]
            max_concurrent_downloads = 5
            stall_timeout = "30s"

            [registry."index.docker.io"]
            mirrors = ["https://mirror.example.com", "mirror.local:5000"]

            [registry."registry.internal:5000"]
            ca = ["/etc/ca.pem"]
            insecure = true
            max_concurrent_downloads = 2
            stall_timeout = "2m"
        "#;
        let c = RegistriesConfig::parse(text, "berthd.toml").unwrap();
        let hub = c.host("docker.io").unwrap();
        assert_eq!(hub.mirrors, ["https://mirror.example.com", "mirror.local:5000"]);
        assert!(!hub.insecure);
        assert_eq!(c.max_concurrent_downloads("docker.io"), 5);
        assert_eq!(c.stall_timeout("docker.io"), Duration::from_secs(30));
        let internal = c.host("registry.internal:5000").unwrap();
        assert!(internal.insecure);
        assert_eq!(internal.ca, [PathBuf::from("/etc/ca.pem")]);
        assert_eq!(c.max_concurrent_downloads("registry.internal:5000"), 2);
        assert_eq!(c.stall_timeout("registry.internal:5000"), Duration::from_secs(120));
        assert!(c.host("quay.io").is_none());
    }

    #[test]
    fn defaults() {
        let c = RegistriesConfig::parse("", "x").unwrap();
        assert_eq!(c, RegistriesConfig::default());
        assert_eq!(c.max_concurrent_downloads("docker.io"), DEFAULT_MAX_CONCURRENT_DOWNLOADS);
        assert_eq!(c.stall_timeout("docker.io"), DEFAULT_STALL_TIMEOUT);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("[registry.\"a.io\"]\nmirror = [\"x\"]", "unknown field `mirror`"),
            ("[pull]\nstall_timeout = \"soon\"", "invalid duration \"soon\""),
            ("[pull]\nmax_concurrent_downloads = 0", "max_concurrent_downloads must be at least 1"),
            ("[registry.\"a.io\"]\nmirrors = [\"ftp://m\"]", "registry \"a.io\": mirror \"ftp://m\""),
            ("[registry.\"docker.io\"]\n[registry.\"index.docker.io\"]", "registry \"docker.io\" is configured twice"),
            ("[registry.\"a.io\"]\ninsecure = \"yes\"", "invalid type"),
            ("[nope]", "unknown field `nope`"),
        ];
        for (text, want) in cases {
            let err = RegistriesConfig::parse(text, "f.toml").unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("config file f.toml"), "{text:?}: {err}");
        }
    }
}
