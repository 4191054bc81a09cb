//! Registry credentials kept by berthctl, in Docker's `config.json` format
//! so that `docker login` and `berthctl login` share them: the file is
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; entries are
//! `auths.<registry>.auth` = base64 of `user:password` (or
//! `identitytoken`), keyed `https://index.docker.io/v1/` for Docker Hub
//! and `host[:port]` for the others. Other keys of the file are kept as
//! they are. Credential helpers (`credsStore`, `credHelpers`) are not run.
//!
//! The file is written with mode 0600 (its directory 0700), atomically:
//! temp file, fsync, rename. berthd never sees the file; berthctl sends
//! the one entry a pull or push needs with the request.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine;
use berth_proto::v1 as pb;
use serde_json::{Map, Value};

/// Docker Hub's key in `auths`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The registry a reference names: `docker.io` for `busybox`, `user/x`;
/// `host[:port]` when the first component looks like a host.
pub fn registry_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => normalise_registry(first),
        _ => "docker.io".to_owned(),
    }
}

/// `https://host/v1/` → `host`; Docker Hub's names → `docker.io`.
pub fn normalise_registry(server: &str) -> String {
    let s = server.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

fn key_for(registry: &str) -> String {
    if registry == "docker.io" {
        DOCKER_HUB_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// The directory of `config.json`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).context("HOME is not set; set DOCKER_CONFIG")?;
    Ok(PathBuf::from(home).join(".docker"))
}

pub fn config_file() -> Result<PathBuf> {
    Ok(config_dir()?.join("config.json"))
}

fn read_config() -> Result<Map<String, Value>> {
    let path = config_file()?;
    match fs::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => anyhow::bail!("{}: not a JSON object", path.display()),
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

fn write_config(config: &Map<String, Value>) -> Result<()> {
    let dir = config_dir()?;
    if !dir.exists() {
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    }
    let path = dir.join("config.json");
    let mut bytes = serde_json::to_vec_pretty(config)?;
    bytes.push(b'\n');
    berth_contract::fs::atomic_write(&path, &bytes).with_context(|| format!("write {}", path.display()))
}

/// The keys under which `registry`'s entry may be stored (Docker has
/// written several forms over the years).
fn matches(key: &str, registry: &str) -> bool {
    normalise_registry(key) == registry
}

/// The stored credentials for `registry`, if any.
pub fn lookup(registry: &str) -> Result<Option<pb::RegistryAuth>> {
    let config = read_config()?;
    let Some(Value::Object(auths)) = config.get("auths") else {
        return Ok(None);
    };
    let exact = key_for(registry);
    let entry = auths.get(&exact).or_else(|| auths.iter().find(|(k, _)| matches(k, registry)).map(|(_, v)| v));
    let Some(entry) = entry else {
        return Ok(None);
    };
    let mut out = pb::RegistryAuth::default();
    let file = config_file()?;
    if let Some(a) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .with_context(|| format!("{}: the auth of {exact} is not base64 of user:password", file.display()))?;
        let (u, p) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
        out.username = u.to_owned();
        out.password = p.to_owned();
    }
    if let Some(t) = entry.get("identitytoken").and_then(Value::as_str) {
        out.identity_token = t.to_owned();
    }
    Ok(Some(out))
}

/// Stores (replaces) the credentials for `registry`.
pub fn store(registry: &str, username: &str, password: &str) -> Result<PathBuf> {
    let mut config = read_config()?;
    let auths = config.entry("auths").or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let map = auths.as_object_mut().expect("object");
    map.retain(|k, _| !matches(k, registry));
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    map.insert(key_for(registry), serde_json::json!({ "auth": encoded }));
    write_config(&config)?;
    config_file()
}

/// Removes the credentials for `registry`; whether there were any.
pub fn remove(registry: &str) -> Result<bool> {
    let mut config = read_config()?;
    let Some(Value::Object(map)) = config.get_mut("auths") else {
        return Ok(false);
    };
    let before = map.len();
    map.retain(|k, _| !matches(k, registry));
    if map.len() == before {
        return Ok(false);
    }
    write_config(&config)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_of_references() {
        let table = [
            ("busybox", "docker.io"),
            ("user/app:1", "docker.io"),
            ("docker.io/library/busybox", "docker.io"),
            ("index.docker.io/x/y", "docker.io"),
            ("127.0.0.1:5000/x", "127.0.0.1:5000"),
            ("localhost/x", "localhost"),
            ("ghcr.io/o/a@sha256:00", "ghcr.io"),
            ("Reg.Example.com/x", "reg.example.com"),
        ];
        for (r, want) in table {
            assert_eq!(registry_of(r), want, "{r}");
        }
        assert_eq!(normalise_registry("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalise_registry("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(key_for("docker.io"), DOCKER_HUB_KEY);
    }
}
