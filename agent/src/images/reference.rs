//! Image references, parsed and normalised as Docker does
//! (github.com/distribution/reference): `busybox` is
//! `docker.io/library/busybox:latest`, `user/x` is `docker.io/user/x:latest`,
//! a first component with a `.` or a `:`, or equal to `localhost`, or with
//! an upper-case letter, is a registry. The database stores the full form;
//! people see the familiar one.
//!
//! Grammar (all of it checked by hand, no regex crate):
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] component ( "/" component )*
//! domain     := host [ ":" port ]        host := label ( "." label )* | "[" ipv6 "]"
//! component  := alnum+ ( separator alnum+ )*      alnum := [a-z0-9]
//! separator  := "." | "_" | "__" | "-"+
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := "sha256:" [0-9a-f]{64}
//! ```

use std::fmt;

use super::ImageError;

/// The registry of unqualified names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;

const INVALID: &str = "invalid reference format";
const UPPERCASE: &str = "invalid reference format: repository name must be lowercase";

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Parses `s` and normalises it; a name with neither tag nor digest gets
/// the tag `latest`.
pub fn parse(s: &str) -> Result<Reference, ImageError> {
    match parse_strict(s) {
        Some(r) => Ok(r),
        None => {
            let lower = s.to_ascii_lowercase();
            let msg = if lower != s && parse_strict(&lower).is_some() { UPPERCASE } else { INVALID };
            Err(ImageError::InvalidReference(msg.to_owned()))
        }
    }
}

fn parse_strict(s: &str) -> Option<Reference> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:")?;
        if hex.len() != 64 || !super::is_hex(hex) {
            return None;
        }
    }
    // A tag is what follows the last ':' that has no '/' after it
    // (`localhost:5000/x` has none).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        if !valid_tag(t) {
            return None;
        }
    }
    if name.is_empty() {
        return None;
    }
    // A 64-hex-digit name would be confused with an image ID.
    if name.len() == 64 && super::is_hex(name) {
        return None;
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, remainder))
            if first.contains(['.', ':']) || first == "localhost" || first.to_ascii_lowercase() != first =>
        {
            if !valid_domain(first) {
                return None;
            }
            (first, remainder.to_owned())
        }
        _ => (DEFAULT_DOMAIN, name.to_owned()),
    };
    if !path.split('/').all(valid_component) {
        return None;
    }
    let domain = if domain == LEGACY_DOMAIN { DEFAULT_DOMAIN } else { domain };
    let path =
        if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("{OFFICIAL_REPO_PREFIX}{path}") } else { path };
    // The limit is on the normalised name, as Docker checks it: a name
    // that fits only as typed could be stored but never parsed back.
    if domain.len() + 1 + path.len() > NAME_MAX {
        return None;
    }
    let tag = match (tag, digest) {
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        (t, _) => t.map(str::to_owned),
    };
    Some(Reference { domain: domain.to_owned(), path, tag, digest: digest.map(str::to_owned) })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        if ip.is_empty() || !ip.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => return valid_port(port),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if !valid_port(p) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())
}

impl Reference {
    /// The registry: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any (`latest` when the input had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest, `sha256:<hex>`, if the input had one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The repository as Docker shows it: `busybox`, `user/x`,
    /// `localhost:5000/x`.
    pub fn repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The short form Docker displays: `busybox:latest`,
    /// `localhost:5000/x:y`, `busybox@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut s = self.repository();
        push_suffix(&mut s, self.tag.as_deref(), self.digest.as_deref());
        s
    }

    /// The same reference without its digest (the form names are stored
    /// in); `None` when it has no tag either.
    pub fn tagged(&self) -> Option<Reference> {
        self.tag.as_ref().map(|_| Reference { digest: None, ..self.clone() })
    }
}

fn push_suffix(s: &mut String, tag: Option<&str>, digest: Option<&str>) {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d);
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_suffix(&mut s, self.tag.as_deref(), self.digest.as_deref());
        f.write_str(&s)
    }
}

/// The familiar form of a stored full name, or the name itself if it does
/// not parse.
pub fn familiar(full: &str) -> String {
    parse(full).map(|r| r.familiar()).unwrap_or_else(|_| full.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parse_table() {
        // input, full form, familiar form
        let ok: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("user/x", "docker.io/user/x:latest", "user/x:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
            ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
            ("docker.io/a/b/c", "docker.io/a/b/c:latest", "a/b/c:latest"),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ("localhost:5000/x:y", "localhost:5000/x:y", "localhost:5000/x:y"),
            ("example.com/a/b/c:v1.0-rc_1", "example.com/a/b/c:v1.0-rc_1", "example.com/a/b/c:v1.0-rc_1"),
            ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
            ("a__b.c-d---e", "docker.io/library/a__b.c-d---e:latest", "a__b.c-d---e:latest"),
            ("busybox:_Under.Score-1", "docker.io/library/busybox:_Under.Score-1", "busybox:_Under.Score-1"),
        ];
        for (input, full, familiar) in ok {
            let r = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
        }

        // 261 characters as typed, 255 once normalised.
        let legacy_long = format!("index.docker.io/library/{}", "a".repeat(237));
        let r = parse(&legacy_long).unwrap();
        assert_eq!(r.name().len(), 255);
        assert_eq!(parse(&r.to_string()).unwrap(), r);
        assert!(parse(&"a".repeat(237)).is_ok());
        assert!(parse(&"a".repeat(238)).is_err());

        let with_digest = format!("busybox@{D}");
        let r = parse(&with_digest).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.familiar(), with_digest);
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.tagged(), None);
        let both = parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(both.to_string(), format!("docker.io/library/busybox:1@{D}"));
        assert_eq!(both.tagged().unwrap().to_string(), "docker.io/library/busybox:1");

        let long_tag = format!("busybox:{}", "a".repeat(129));
        let long_name = "a".repeat(256);
        // 240 characters as typed, 258 once `docker.io/library/` is added.
        let long_normalised = "a".repeat(240);
        let bad: &[(&str, &str)] = &[
            ("", INVALID),
            ("Busybox", UPPERCASE),
            ("library/Busybox", UPPERCASE),
            ("Foo/Bar", UPPERCASE),
            ("busybox:", INVALID),
            (":tag", INVALID),
            ("busybox:-x", INVALID),
            ("busybox:.x", INVALID),
            (&long_tag, INVALID),
            (&long_name, INVALID),
            (&long_normalised, INVALID),
            ("a..b", INVALID),
            ("a_-b", INVALID),
            ("-a", INVALID),
            ("a-", INVALID),
            ("a/", INVALID),
            ("/a", INVALID),
            ("a//b", INVALID),
            ("ex ample", INVALID),
            ("busybox@sha256:abc", INVALID),
            ("busybox@md5:0123", INVALID),
            ("busybox@", INVALID),
            ("host:port:bad/x", INVALID),
            ("-host.com/x", INVALID),
            ("host.com:/x", INVALID),
            ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", INVALID),
            ("busybox:latest:2", INVALID),
        ];
        for (input, msg) in bad {
            match parse(input) {
                Err(ImageError::InvalidReference(m)) => assert_eq!(m, *msg, "{input:?}"),
                other => panic!("{input:?}: want an invalid reference, got {other:?}"),
            }
        }
    }

    #[test]
    fn accessors() {
        let r = parse("localhost:5000/team/app:v2").unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.name(), "localhost:5000/team/app");
        assert_eq!(r.repository(), "localhost:5000/team/app");
        assert_eq!(r.tag(), Some("v2"));
        let r = parse("busybox").unwrap();
        assert_eq!(r.repository(), "busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(familiar("docker.io/library/busybox:latest"), "busybox:latest");
    }
}
