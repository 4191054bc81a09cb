//! Platforms as OCI writes them (`linux/arm64/v8`, Go's names), the node's
//! own, and the choice of one manifest from an index or manifest list.
//!
//! Matching: the OS and architecture must be equal after normalising the
//! aliases people type (`x86_64` → `amd64`, `aarch64` → `arm64`); a
//! requested variant must be equal too (`arm64` without a variant is
//! `arm64/v8`, `arm` without one is `arm/v7`), and with no variant
//! requested any variant does, the first entry winning as in the list.

use std::fmt;

/// One `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Go's name for a Rust architecture.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "riscv64" | "riscv64gc" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn normalise_arch(arch: &str) -> String {
    let a = arch.to_ascii_lowercase();
    match a.as_str() {
        "x86_64" | "x86-64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        "i386" | "i686" => "386".to_owned(),
        "armhf" => "arm".to_owned(),
        _ => a,
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

impl Platform {
    /// The node's: `linux/<Go arch of this build>`.
    pub fn node() -> Self {
        Self { os: "linux".to_owned(), architecture: go_arch(std::env::consts::ARCH).to_owned(), variant: None }
    }

    /// Parses `os/arch[/variant]` (`--platform`); an empty string is the
    /// node's platform.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::node());
        }
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || format!("invalid platform {s:?}: use os/arch[/variant], like linux/arm64");
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        if !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')) {
            return Err(bad());
        }
        let architecture = normalise_arch(parts[1]);
        Ok(Self {
            os: parts[0].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
            architecture,
        })
    }

    /// Whether an entry's platform (`os`, `architecture`, `variant` as
    /// the registry wrote them) serves this request.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if !os.eq_ignore_ascii_case(&self.os) || normalise_arch(architecture) != self.architecture {
            return false;
        }
        let Some(want) = self.variant.as_deref() else {
            return true;
        };
        let dflt = default_variant(&self.architecture);
        let have = variant.filter(|v| !v.is_empty()).or(dflt);
        have.is_some_and(|h| h.eq_ignore_ascii_case(want))
    }
}

/// The (os, architecture, variant) of each entry of an index, in order;
/// empty strings for an entry without a platform.
pub fn index_entries(index: &oci_spec::image::ImageIndex) -> Vec<(String, String, Option<String>)> {
    index
        .manifests()
        .iter()
        .map(|d| match d.platform() {
            Some(p) => (p.os().to_string(), p.architecture().to_string(), p.variant().clone()),
            None => (String::new(), String::new(), None),
        })
        .collect()
}

/// Picks the entry for `want` from `(os, architecture, variant)` triples;
/// returns its index.
pub fn select<'a>(
    want: &Platform,
    entries: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> Option<usize> {
    entries.into_iter().position(|(os, arch, variant)| want.matches(os, arch, variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_platforms() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p, Platform { os: "linux".into(), architecture: "arm64".into(), variant: None });
        assert_eq!(Platform::parse("linux/x86_64").unwrap().architecture, "amd64");
        assert_eq!(Platform::parse("linux/arm/v6").unwrap().to_string(), "linux/arm/v6");
        assert_eq!(Platform::parse("").unwrap(), Platform::node());
        for bad in ["linux", "linux/", "/amd64", "linux/amd64/v1/x", "linux amd64", "linux/am d64"] {
            assert!(Platform::parse(bad).unwrap_err().starts_with("invalid platform"), "{bad}");
        }
    }

    #[test]
    fn node_uses_go_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        let node = Platform::node();
        assert_eq!(node.os, "linux");
        assert!(!node.architecture.contains('_'), "{}", node.architecture);
    }

    #[test]
    fn selection() {
        let list: &[(&str, &str, Option<&str>)] = &[
            ("linux", "amd64", None),
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("windows", "amd64", None),
            ("linux", "s390x", None),
        ];
        let pick = |s: &str| select(&Platform::parse(s).unwrap(), list.iter().copied());
        assert_eq!(pick("linux/amd64"), Some(0));
        assert_eq!(pick("linux/x86_64"), Some(0));
        assert_eq!(pick("linux/arm64"), Some(3));
        assert_eq!(pick("linux/arm64/v8"), Some(3));
        assert_eq!(pick("linux/aarch64"), Some(3));
        assert_eq!(pick("linux/arm"), Some(1));
        assert_eq!(pick("linux/arm/v7"), Some(2));
        assert_eq!(pick("linux/arm/v5"), None);
        assert_eq!(pick("windows/amd64"), Some(4));
        assert_eq!(pick("linux/ppc64le"), None);
        assert_eq!(pick("linux/s390x"), Some(5));
        // arm64 written without a variant is v8.
        let plain: &[(&str, &str, Option<&str>)] = &[("linux", "arm64", None)];
        assert_eq!(select(&Platform::parse("linux/arm64/v8").unwrap(), plain.iter().copied()), Some(0));
        assert_eq!(select(&Platform::parse("linux/arm64/v9").unwrap(), plain.iter().copied()), None);
    }
}
