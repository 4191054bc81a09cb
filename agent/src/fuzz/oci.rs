//! OCI documents from registries and archives: image manifests (and
//! `docker save`'s `manifest.json`), indexes and configs, parsed with
//! oci-spec and serde and then read by berth's own code. Bad input must
//! give an error, never a panic; what parses must survive being written
//! back; what berth derives from it (document kind, digests, platform
//! choice, names, paths, times) must hold its invariants.

use berth_fuzz::Target;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::corpus;
use crate::images::load::{names_of, plain_relative, select_platform, DockerEntry};
use crate::images::{created_secs, reference, store};
use crate::registry::platform::{self, Platform};
use crate::registry::pull::{kind_of, DocKind};

const DICT: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"mediaType\":",
    "\"schemaVersion\":2",
    "\"schemaVersion\":1",
    "\"manifests\":",
    "\"config\":",
    "\"layers\":",
    "\"digest\":",
    "\"size\":",
    "\"platform\":",
    "\"os\":\"linux\"",
    "\"architecture\":\"amd64\"",
    "\"variant\":\"v8\"",
    "\"annotations\":",
    "\"io.containerd.image.name\":",
    "\"org.opencontainers.image.ref.name\":",
    "\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
    "\"sha512:00\"",
    "\"application/vnd.oci.image.index.v1+json\"",
    "\"application/vnd.oci.image.manifest.v1+json\"",
    "\"application/vnd.docker.distribution.manifest.list.v2+json\"",
    "\"rootfs\":",
    "\"diff_ids\":",
    "\"history\":",
    "\"created\":\"2024-05-06T07:08:09Z\"",
    "\"created\":\"+999999-01-01T00:00:00Z\"",
    "\"Config\":",
    "\"Layers\":",
    "\"RepoTags\":",
    "\"../x\"",
    "\"/abs\"",
];

/// Parses as `T`; invalid JSON must be refused, and what parses must read
/// back the same after being written. (Invalid UTF-8 inside a field
/// nobody reads is let through: serde_json skips such fields unchecked,
/// and the document's digest is checked anyway.)
fn parse<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(input: &[u8]) -> Option<T> {
    let parsed = serde_json::from_slice::<T>(input);
    if std::str::from_utf8(input).is_ok() && serde_json::from_slice::<serde_json::Value>(input).is_err() {
        assert!(parsed.is_err(), "invalid JSON parsed as {}", std::any::type_name::<T>());
    }
    let v = parsed.ok()?;
    let again: T = serde_json::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
    // Compared as JSON values: oci-spec keeps a map such as ExposedPorts
    // as a list whose order after a parse is not defined (a hash set), so
    // only the document, not the order of its keys, must come back.
    assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&v).unwrap(), "written back differently");
    Some(v)
}

/// berth reads a digest with `sha256_hex`: it accepts exactly
/// `sha256:` and 64 lower-case hex digits.
fn check_digest(d: &str) {
    let ok = store::Expected::parse(d, None).is_ok();
    let want =
        d.len() == 71 && d.starts_with("sha256:") && d[7..].bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    assert_eq!(ok, want, "digest {d:?}");
}

fn check_descriptor(d: &Descriptor) {
    check_digest(d.digest().as_ref());
    for name in names_of(d).into_iter().flatten() {
        assert!(reference::parse(&name).is_ok(), "name {name:?} from annotations does not parse");
    }
}

fn check_manifest(input: &[u8]) {
    for media_type in [None, Some("application/vnd.oci.image.manifest.v1+json"), Some("text/plain")] {
        let kind = kind_of(media_type, input);
        if media_type.is_none() && serde_json::from_slice::<serde_json::Value>(input).is_err() {
            assert!(kind.is_err(), "not JSON, yet a known document kind");
        }
        if media_type == Some("application/vnd.oci.image.manifest.v1+json") {
            assert!(matches!(kind, Ok(DocKind::Manifest)), "the media type decides");
        }
    }
    if let Some(m) = parse::<ImageManifest>(input) {
        check_descriptor(m.config());
        m.layers().iter().for_each(check_descriptor);
    }
    // `docker save`'s manifest.json: the paths it names must be plain.
    if let Ok(entries) = serde_json::from_slice::<Vec<DockerEntry>>(input) {
        for e in &entries {
            for p in std::iter::once(&e.config).chain(&e.layers) {
                if let Some(rel) = plain_relative(p) {
                    assert!(
                        rel.components().all(|c| matches!(c, std::path::Component::Normal(_))),
                        "{p:?} taken as the plain path {rel:?}"
                    );
                }
            }
            for t in e.repo_tags.iter().flatten() {
                let _ = reference::parse(t);
            }
        }
    }
}

fn check_index(input: &[u8]) {
    let _ = kind_of(None, input);
    let Some(index) = parse::<ImageIndex>(input) else { return };
    index.manifests().iter().for_each(check_descriptor);
    let entries = platform::index_entries(&index);
    for want in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64"] {
        let want = Platform::parse(want).unwrap();
        let pick = platform::select(&want, entries.iter().map(|(o, a, v)| (o.as_str(), a.as_str(), v.as_deref())));
        if let Some(i) = pick {
            let (os, arch, variant) = &entries[i];
            assert!(want.matches(os, arch, variant.as_deref()), "picked {os}/{arch} for {want}");
        }
    }
    if let Some(chosen) = select_platform(&index) {
        assert!(index.manifests().iter().any(|d| std::ptr::eq(d, chosen)), "chose a descriptor not in the index");
    }
}

fn check_config(input: &[u8]) {
    let Some(config) = parse::<ImageConfiguration>(input) else { return };
    let _ = created_secs(config.created().as_ref());
    for h in config.history().iter().flatten() {
        let _ = created_secs(h.created().as_ref());
    }
    config.rootfs().diff_ids().iter().for_each(|d| check_digest(d));
    let _ = (config.os().to_string(), config.architecture().to_string());
}

#[test]
fn manifests_parse_or_fail() {
    Target::new("oci-manifest", corpus("oci-manifest")).dict(DICT).max_len(8192).run(check_manifest);
}

#[test]
fn indexes_parse_or_fail() {
    Target::new("oci-index", corpus("oci-index")).dict(DICT).max_len(8192).run(check_index);
}

#[test]
fn configs_parse_or_fail() {
    Target::new("oci-config", corpus("oci-config")).dict(DICT).max_len(8192).run(check_config);
}
