//! One tracing span per RPC: `rpc{id=… method=/berth.v1.Containers/Start}`,
//! around the handler, so every event logged while it answers (in the core
//! too) says which call it belongs to. The id is the caller's
//! `x-request-id` when it sends one (an orchestrator's own id, so its logs
//! and berthd's meet), else berthd's own counter. The answer is logged at
//! debug level with the time it took.
//!
//! A stream's later messages are produced by tasks of their own: their
//! events carry the span only where the handler passes it on.
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tonic::codegen::http;
use tracing::Instrument;

/// The header a caller names its request with.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest id taken from a caller; a longer one is cut.
const MAX_ID: usize = 64;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The request's id: the caller's, made printable and bounded, or the
/// next of berthd's.
pub fn request_id(headers: &http::HeaderMap) -> String {
    match headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
        Some(v) => berth_proto::text::printable(v, MAX_ID),
        None => NEXT.fetch_add(1, Ordering::Relaxed).to_string(),
    }
}

/// The layer tonic's server runs every call through.
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcSpans;

impl<S> tower::Layer<S> for RpcSpans {
    type Service = RpcSpan<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcSpan { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RpcSpan<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for RpcSpan<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let id = request_id(req.headers());
        let span = tracing::info_span!("rpc", id = %id, method = %req.uri().path());
        let started = std::time::Instant::now();
        let call = self.inner.call(req);
        Box::pin(
            async move {
                let out = call.await;
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "answered");
                out
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_id_is_kept_printable_and_bounded_else_berthd_numbers_the_call() {
        let mut h = http::HeaderMap::new();
        let a: u64 = request_id(&h).parse().unwrap();
        let b: u64 = request_id(&h).parse().unwrap();
        assert!(b > a, "{a} then {b}");
        h.insert(REQUEST_ID, http::HeaderValue::from_static("kubelet-7f3a"));
        assert_eq!(request_id(&h), "kubelet-7f3a");
        h.insert(REQUEST_ID, http::HeaderValue::from_str(&"x".repeat(500)).unwrap());
        let long = request_id(&h);
        assert!(long.len() < 100 && long.starts_with("xxx"), "{long}");
        h.insert(REQUEST_ID, http::HeaderValue::from_bytes(b"a\tb").unwrap());
        assert!(!request_id(&h).contains('\t'), "{:?}", request_id(&h));
    }
}
