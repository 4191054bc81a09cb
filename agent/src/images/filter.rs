//! `images --filter`: Docker's `dangling=true|false` and
//! `reference=PATTERN`.
//!
//! A reference pattern is matched as Docker does (`reference.FamiliarMatch`,
//! i.e. Go's `path.Match`) against both the familiar name with its tag
//! (`berth-test/busybox:latest`) and without it (`berth-test/busybox`):
//! `*` is any run of characters but `/`, `?` one such character, `\`
//! quotes the next one. Several reference patterns are alternatives; an
//! image listed by reference shows only its matching names.

use super::{reference, ImageError, ImageRecord};

/// Parsed `--filter` values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFilters {
    dangling: Option<bool>,
    references: Vec<String>,
}

impl ImageFilters {
    /// From `key=value` strings.
    pub fn parse(filters: &[String]) -> Result<Self, ImageError> {
        let mut out = Self::default();
        for f in filters {
            let bad = || {
                ImageError::Invalid(format!(
                    "invalid filter {f:?}: use dangling=true, dangling=false or reference=PATTERN"
                ))
            };
            let (key, value) = f.split_once('=').ok_or_else(bad)?;
            match key {
                "dangling" => {
                    let v = match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad()),
                    };
                    if out.dangling.is_some_and(|d| d != v) {
                        return Err(ImageError::Invalid("dangling=true and dangling=false exclude each other".into()));
                    }
                    out.dangling = Some(v);
                }
                "reference" if !value.is_empty() => out.references.push(value.to_owned()),
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }

    /// The image with only the names that pass, or `None` when it is
    /// filtered out.
    pub fn apply(&self, mut image: ImageRecord) -> Option<ImageRecord> {
        if let Some(d) = self.dangling {
            if image.names.is_empty() != d {
                return None;
            }
        }
        if !self.references.is_empty() {
            image.names.retain(|n| self.references.iter().any(|p| reference_matches(p, n)));
            if image.names.is_empty() {
                return None;
            }
        }
        Some(image)
    }
}

/// Whether a stored full name matches a pattern, with or without its tag.
fn reference_matches(pattern: &str, full_name: &str) -> bool {
    let Ok(r) = reference::parse(full_name) else { return false };
    glob(pattern.as_bytes(), r.familiar().as_bytes()) || glob(pattern.as_bytes(), r.repository().as_bytes())
}

/// Go's `path.Match` without character classes.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => {
            // Try every split that does not swallow a '/'.
            let mut i = 0;
            loop {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i == s.len() || s[i] == b'/' {
                    return false;
                }
                i += 1;
            }
        }
        Some((b'?', rest)) => matches!(s.split_first(), Some((c, tail)) if *c != b'/' && glob(rest, tail)),
        Some((b'\\', rest)) if !rest.is_empty() => {
            matches!(s.split_first(), Some((c, tail)) if *c == rest[0] && glob(&rest[1..], tail))
        }
        Some((c, rest)) => matches!(s.split_first(), Some((d, tail)) if d == c && glob(rest, tail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        for (pattern, name, want) in [
            ("berth-test/*", "docker.io/berth-test/busybox:latest", true),
            ("berth-test/*", "docker.io/library/busybox:latest", false),
            ("busybox", "docker.io/library/busybox:latest", true),
            ("busybox:latest", "docker.io/library/busybox:latest", true),
            ("busybox:1", "docker.io/library/busybox:latest", false),
            ("busy*", "docker.io/library/busybox:v1", true),
            ("*", "docker.io/berth-test/busybox:latest", false),
            ("*/*", "docker.io/berth-test/busybox:latest", true),
            ("berth-test/busybox:?atest", "docker.io/berth-test/busybox:latest", true),
            ("localhost:5000/*", "localhost:5000/app:1", true),
            ("a\\*", "docker.io/library/a:latest", false),
        ] {
            assert_eq!(reference_matches(pattern, name), want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn parse_errors() {
        let p = |v: &[&str]| ImageFilters::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            p(&["label=x"]).unwrap_err().to_string(),
            "invalid filter \"label=x\": use dangling=true, dangling=false or reference=PATTERN"
        );
        assert!(p(&["dangling=maybe"]).is_err());
        assert!(p(&["dangling"]).is_err());
        assert!(p(&["dangling=true", "dangling=false"]).is_err());
        assert_eq!(p(&["dangling=TRUE"]).unwrap().dangling, Some(true));
        assert_eq!(p(&["reference=a/*", "reference=b"]).unwrap().references, vec!["a/*", "b"]);
    }
}
