//! One authenticated conversation with one endpoint about one repository
//! (OCI distribution spec: `GET /v2/`, `GET /v2/<name>/manifests/<ref>`,
//! `GET /v2/<name>/blobs/<digest>`), and the translation of what a
//! registry answers into errors a person recognises, with Docker's words.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::auth::{self, Challenge, Credentials, TokenResponse};
use super::endpoint::{Endpoint, Scheme};
use super::RegistryError;

/// Manifest and index media types berth accepts, best first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Manifests, indexes and configs larger than this are refused.
pub const DOCUMENT_MAX: u64 = 16 << 20;

#[derive(Clone, Debug)]
enum Auth {
    Anonymous,
    Basic,
    Bearer(String),
}

/// An endpoint after the ping: the scheme that answered and how to
/// authenticate.
pub struct Session {
    pub endpoint: Endpoint,
    scheme: Scheme,
    /// Repository path (`library/busybox`).
    path: String,
    /// How the repository is shown in errors (`busybox`, `127.0.0.1:5000/x`).
    shown: String,
    creds: Option<Credentials>,
    auth: Auth,
    /// How long to wait for response headers.
    stall: Duration,
    /// Token scopes asked for (`repository:NAME:pull`).
    scopes: Vec<String>,
}

/// What a session is for: it decides the token scopes.
#[derive(Clone, Debug)]
pub enum Access {
    /// Read the repository.
    Pull,
    /// Write the repository, and read these others of the same registry
    /// (to mount their blobs).
    Push { mount_from: Vec<String> },
    /// Only check the credentials (`GET /v2/`).
    Login,
}

impl Access {
    fn scopes(&self, path: &str) -> Vec<String> {
        match self {
            Access::Pull => vec![auth::pull_scope(path)],
            Access::Push { mount_from } => {
                let mut v = vec![format!("repository:{path}:pull,push")];
                v.extend(mount_from.iter().filter(|m| m.as_str() != path).map(|m| auth::pull_scope(m)));
                v
            }
            Access::Login => Vec::new(),
        }
    }
}

impl Session {
    /// Pings the endpoint (HTTPS, then plain HTTP where allowed) and
    /// authenticates for pulling `path`. Credentials are never sent to a
    /// mirror.
    pub async fn open(
        endpoint: Endpoint,
        path: &str,
        shown: &str,
        creds: Option<&Credentials>,
        stall: Duration,
        access: Access,
    ) -> Result<Self, RegistryError> {
        let creds = if endpoint.mirror { None } else { creds.cloned() };
        let mut first_error: Option<RegistryError> = None;
        for &scheme in &endpoint.schemes {
            let url = endpoint.base(scheme);
            let sent = with_stall(stall, &url, endpoint.client.get(&url).send()).await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let status = resp.status();
            // A TLS server answers plain HTTP with 400: the HTTPS error
            // said more.
            if scheme == Scheme::Http && status == StatusCode::BAD_REQUEST && first_error.is_some() {
                continue;
            }
            let challenges = challenges_of(resp.headers());
            let mut s = Session {
                endpoint: endpoint.clone(),
                scheme,
                path: path.to_owned(),
                shown: shown.to_owned(),
                creds: creds.clone(),
                auth: Auth::Anonymous,
                stall,
                scopes: access.scopes(path),
            };
            match status {
                s2 if s2.is_success() => {}
                StatusCode::UNAUTHORIZED => s.authenticate(&challenges).await?,
                other => {
                    let text = error_text(resp).await;
                    return Err(RegistryError::Protocol(format!(
                        "{} does not answer as a registry: GET {url}: {other}{text}",
                        endpoint.host
                    )));
                }
            }
            tracing::debug!(host = %endpoint.host, scheme = scheme.as_str(), auth = ?s.auth_kind(), "registry session");
            return Ok(s);
        }
        Err(first_error.unwrap_or_else(|| RegistryError::Protocol(format!("{}: no scheme to try", endpoint.host))))
    }

    fn auth_kind(&self) -> &'static str {
        match self.auth {
            Auth::Anonymous => "anonymous",
            Auth::Basic => "basic",
            Auth::Bearer(_) => "bearer",
        }
    }

    async fn authenticate(&mut self, challenges: &[Challenge]) -> Result<(), RegistryError> {
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer { realm, service, .. } => Some((realm.clone(), service.clone())),
            Challenge::Basic { .. } => None,
        });
        if let Some((realm, service)) = bearer {
            let token = self.fetch_token(&realm, service.as_deref()).await?;
            self.auth = Auth::Bearer(token);
        } else if challenges.iter().any(|c| matches!(c, Challenge::Basic { .. })) {
            self.auth = match &self.creds {
                Some(c) if !c.username.is_empty() => Auth::Basic,
                _ => Auth::Anonymous,
            };
        } else {
            return Err(RegistryError::Protocol(format!(
                "{} asks for authentication berth does not know (no Basic or Bearer challenge)",
                self.endpoint.host
            )));
        }
        Ok(())
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>) -> Result<String, RegistryError> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(RegistryError::Protocol(format!("token realm {realm:?} is not an http(s) URL")));
        }
        let client = &self.endpoint.client;
        let scopes = self.scopes.iter().map(|s| ("scope", s.as_str()));
        let request = match &self.creds {
            Some(c) if !c.identity_token.is_empty() => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", c.identity_token.as_str()),
                    ("client_id", "berth"),
                ];
                form.extend(scopes);
                if let Some(s) = service {
                    form.push(("service", s));
                }
                client.post(realm).form(&form)
            }
            creds => {
                let mut query: Vec<(&str, &str)> = scopes.collect();
                if let Some(s) = service {
                    query.push(("service", s));
                }
                let r = client.get(realm).query(&query);
                match creds {
                    Some(c) if !c.username.is_empty() => r.basic_auth(&c.username, Some(&c.password)),
                    _ => r,
                }
            }
        };
        let resp = with_stall(self.stall, realm, request.send()).await?;
        let status = resp.status();
        if !status.is_success() {
            let text = registry_errors(resp).await.text();
            return Err(
                if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) && self.creds.is_some() {
                    RegistryError::Unauthorized(nonempty_or(text, "unauthorized: incorrect username or password"))
                } else {
                    RegistryError::Protocol(format!("token server {realm}: {status}{}", prefixed(&text)))
                },
            );
        }
        let body = read_limited(resp, DOCUMENT_MAX, realm, self.stall).await?;
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("token server {realm}: bad answer: {e}")))?;
        token.into_token().ok_or_else(|| RegistryError::Protocol(format!("token server {realm} sent no token")))
    }

    /// Proves the credentials: `GET /v2/` with them must succeed (a Basic
    /// registry is only asked here; a token server was asked already).
    pub async fn check(&self) -> Result<(), RegistryError> {
        let url = self.endpoint.base(self.scheme);
        let resp = with_stall(self.stall, &url, self.request(Method::GET, &url).send()).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = registry_errors(resp).await.text();
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                RegistryError::Unauthorized(nonempty_or(text, "unauthorized: authentication required"))
            }
            other => RegistryError::Protocol(format!("GET {url}: {other}{}", prefixed(&text))),
        })
    }

    /// The scheme and host, for messages.
    pub fn base(&self) -> String {
        self.endpoint.base(self.scheme)
    }

    /// The repository path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A request with this session's authentication, for the push side.
    pub fn authed(&self, method: Method, url: &str) -> RequestBuilder {
        self.request(method, url)
    }

    /// The stall time-out.
    pub fn stall(&self) -> Duration {
        self.stall
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}{}/{kind}/{reference}", self.endpoint.base(self.scheme), self.path)
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let r = self.endpoint.client.request(method, url);
        match (&self.auth, &self.creds) {
            (Auth::Bearer(t), _) => r.bearer_auth(t),
            (Auth::Basic, Some(c)) => r.basic_auth(&c.username, Some(&c.password)),
            _ => r,
        }
    }

    /// GETs a manifest or index by tag or digest: its bytes and the media
    /// type the registry gave.
    pub async fn manifest(&self, reference: &str) -> Result<(Vec<u8>, Option<String>), RegistryError> {
        let url = self.url("manifests", reference);
        let resp = self.send(self.request(Method::GET, &url).header(ACCEPT, MANIFEST_ACCEPT), &url, reference).await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let body = read_limited(resp, DOCUMENT_MAX, &url, self.stall).await?;
        Ok((body, media_type))
    }

    /// The URL of a blob.
    pub fn blob_url(&self, digest: &str) -> String {
        self.url("blobs", digest)
    }

    /// GETs a blob; the caller reads and checks the body.
    pub async fn blob(&self, digest: &str) -> Result<Response, RegistryError> {
        let url = self.url("blobs", digest);
        self.send(self.request(Method::GET, &url), &url, digest).await
    }

    /// GETs a blob from byte `from` on (`Range: bytes=from-`); the
    /// caller looks at the status: 206 is the range, 200 the whole blob.
    pub async fn blob_from(&self, digest: &str, from: u64) -> Result<Response, RegistryError> {
        let url = self.url("blobs", digest);
        self.send(
            self.request(Method::GET, &url).header(reqwest::header::RANGE, format!("bytes={from}-")),
            &url,
            digest,
        )
        .await
    }

    /// GETs a small blob (a config) whole.
    pub async fn small_blob(&self, digest: &str, size: u64) -> Result<Vec<u8>, RegistryError> {
        if size > DOCUMENT_MAX {
            return Err(RegistryError::Protocol(format!("blob {digest} is {size} bytes, more than {DOCUMENT_MAX}")));
        }
        let url = self.url("blobs", digest);
        let resp = self.blob(digest).await?;
        read_limited(resp, size.max(1), &url, self.stall).await
    }

    /// Sends, and turns an error status into the error Docker would show.
    async fn send(&self, req: RequestBuilder, url: &str, reference: &str) -> Result<Response, RegistryError> {
        let resp = with_stall(self.stall, url, req.send()).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let errors = registry_errors(resp).await;
        let text = errors.text();
        let denied = || RegistryError::AccessDenied { repository: self.shown.clone(), detail: text.clone() };
        Err(match status {
            StatusCode::UNAUTHORIZED if self.creds.is_some() => {
                RegistryError::Unauthorized(nonempty_or(text.clone(), "unauthorized: authentication required"))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => denied(),
            StatusCode::NOT_FOUND if errors.has("NAME_UNKNOWN") => denied(),
            StatusCode::NOT_FOUND if url.contains("/manifests/") => RegistryError::ManifestUnknown {
                reference: format!(
                    "{}{}{reference}",
                    self.shown,
                    if reference.starts_with("sha256:") { '@' } else { ':' }
                ),
                detail: nonempty_or(text.clone(), "manifest unknown"),
            },
            StatusCode::NOT_FOUND => RegistryError::Protocol(format!(
                "blob {reference} not found in {}: {}",
                self.shown,
                nonempty_or(text.clone(), "blob unknown")
            )),
            other => RegistryError::Protocol(format!("GET {url}: {other}{}", prefixed(&text))),
        })
    }
}

pub(super) fn nonempty_or(text: String, fallback: &str) -> String {
    if text.is_empty() {
        fallback.to_owned()
    } else {
        text
    }
}

pub(super) fn prefixed(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
    headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).flat_map(auth::parse_challenges).collect()
}

/// Sends with a limit on the wait for response headers; a failure to
/// connect names the address and the cause.
pub(super) async fn with_stall(
    stall: Duration,
    url: &str,
    send: impl std::future::Future<Output = reqwest::Result<Response>>,
) -> Result<Response, RegistryError> {
    match tokio::time::timeout(stall, send).await {
        Err(_) => Err(RegistryError::Stalled { what: format!("GET {url}"), after: stall }),
        Ok(Err(e)) => Err(RegistryError::Unreachable { url: url.to_owned(), cause: cause_chain(&e) }),
        Ok(Ok(r)) => Ok(r),
    }
}

/// An error and its sources, each once, joined with `: `.
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        // reqwest's own line repeats the URL the message already names.
        if !text.starts_with("error sending request") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// Reads a whole body of at most `max` bytes, each chunk within `stall`.
async fn read_limited(resp: Response, max: u64, url: &str, stall: Duration) -> Result<Vec<u8>, RegistryError> {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    loop {
        match tokio::time::timeout(stall, stream.next()).await {
            Err(_) => return Err(RegistryError::Stalled { what: format!("GET {url}"), after: stall }),
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => return Err(RegistryError::Unreachable { url: url.to_owned(), cause: cause_chain(&e) }),
            Ok(Some(Ok(chunk))) => {
                if out.len() as u64 + chunk.len() as u64 > max {
                    return Err(RegistryError::Protocol(format!("GET {url}: the answer is larger than {max} bytes")));
                }
                out.extend_from_slice(&chunk);
            }
        }
    }
}

/// The distribution spec's error body: `{"errors":[{"code","message"}]}`.
#[derive(Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl ErrorBody {
    pub(super) fn has(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    /// As Docker prints them: `manifest unknown: manifest unknown`.
    pub(super) fn text(&self) -> String {
        self.errors
            .iter()
            .map(|e| {
                let code = e.code.to_ascii_lowercase().replace('_', " ");
                match (code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{code}: {}", e.message),
                    (false, true) => code,
                    _ => e.message.clone(),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub(super) async fn registry_errors(resp: Response) -> ErrorBody {
    let bytes = resp.bytes().await.unwrap_or_default();
    serde_json::from_slice(&bytes[..bytes.len().min(64 * 1024)]).unwrap_or_default()
}

async fn error_text(resp: Response) -> String {
    prefixed(&registry_errors(resp).await.text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_text() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        )
        .unwrap();
        assert_eq!(body.text(), "manifest unknown: manifest unknown");
        assert!(body.has("MANIFEST_UNKNOWN"));
        let body: ErrorBody =
            serde_json::from_str(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
                .unwrap();
        assert_eq!(body.text(), "unauthorized: authentication required");
        assert_eq!(ErrorBody::default().text(), "");
    }
}
