//! Registry authentication: the `WWW-Authenticate` challenge a registry
//! answers `GET /v2/` with (RFC 7235), and the two schemes registries use:
//! `Basic` (the credentials on every request) and `Bearer` (Docker's token
//! flow: GET the challenge's `realm` with its `service` and the
//! `repository:NAME:pull` scope, with the credentials as Basic auth if
//! there are any, and send the `token` / `access_token` it returns; with an
//! identity token, POST an OAuth2 `refresh_token` grant instead).
//!
//! Credentials come with each request from berthctl and live only as
//! long as the pull.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// Credentials for one registry, as berthctl read them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token (`identitytoken` in Docker's config.json).
    pub identity_token: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

impl Credentials {
    /// None when nothing was given.
    pub fn non_empty(self) -> Option<Self> {
        (!self.username.is_empty() || !self.password.is_empty() || !self.identity_token.is_empty()).then_some(self)
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic { realm: Option<String> },
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses a `WWW-Authenticate` value into the challenges berth can answer,
/// in the order given; schemes it cannot answer are skipped. Parameters
/// are `key=token` or `key="quoted"` (with `\` escapes); scheme and keys
/// are case-insensitive.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut p = Parser { s: header.as_bytes(), i: 0 };
    loop {
        p.skip_ws_commas();
        let Some(scheme) = p.token() else { break };
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        loop {
            p.skip_ws();
            let save = p.i;
            // A parameter is `key=value`; a token not followed by `=`
            // starts the next challenge.
            let Some(key) = p.token() else { break };
            p.skip_ws();
            if !p.eat(b'=') {
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') { p.quoted() } else { p.token().unwrap_or_default() };
            params.insert(key.to_ascii_lowercase(), value);
            p.skip_ws();
            if !p.eat(b',') {
                break;
            }
        }
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic { realm: params.remove("realm") }),
            "bearer" => {
                if let Some(realm) = params.remove("realm").filter(|r| !r.is_empty()) {
                    out.push(Challenge::Bearer {
                        realm,
                        service: params.remove("service"),
                        scope: params.remove("scope"),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// An RFC 7230 token (plus `/` for token68-ish values like scopes).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c);
            if !ok {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> String {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The scope a pull asks a token server for.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// What a token server answers; Docker Hub sends `token`, OAuth2 servers
/// `access_token`, some both.
#[derive(Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<String> {
        [self.token, self.access_token].into_iter().find(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.to_owned(),
            service: service.map(str::to_owned),
            scope: scope.map(str::to_owned),
        }
    }

    #[test]
    fn challenges() {
        let table: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                vec![bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/busybox:pull"),
                )],
            ),
            (
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#,
                vec![bearer("https://ghcr.io/token", Some("ghcr.io"), Some("repository:user/image:pull"))],
            ),
            (r#"Basic realm="basic-realm""#, vec![Challenge::Basic { realm: Some("basic-realm".into()) }]),
            ("basic", vec![Challenge::Basic { realm: None }]),
            (r#"BEARER Realm = "https://a/t" , Service=svc"#, vec![bearer("https://a/t", Some("svc"), None)]),
            (
                r#"Negotiate, Basic realm="r", Bearer realm="https://t""#,
                vec![Challenge::Basic { realm: Some("r".into()) }, bearer("https://t", None, None)],
            ),
            (r#"Bearer realm="https://t/\"q\"""#, vec![bearer("https://t/\"q\"", None, None)]),
            (r#"Bearer service="x""#, vec![]),
            (r#"Bearer realm="""#, vec![]),
            ("", vec![]),
            (
                r#"Bearer realm="https://t",scope="repository:a/b:pull,push""#,
                vec![bearer("https://t", None, Some("repository:a/b:pull,push"))],
            ),
        ];
        for (header, want) in table {
            assert_eq!(parse_challenges(header), want, "{header}");
        }
    }

    #[test]
    fn tokens_and_scopes() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("a"));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("b"));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.into_token(), None);
        assert_eq!(pull_scope("library/busybox"), "repository:library/busybox:pull");
    }

    #[test]
    fn credentials_stay_out_of_logs() {
        let c = Credentials { username: "u".into(), password: "secret".into(), identity_token: String::new() };
        assert!(!format!("{c:?}").contains("secret"));
        assert!(Credentials::default().non_empty().is_none());
    }
}
