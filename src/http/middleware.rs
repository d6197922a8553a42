//! Cross-cutting layers: client IP for rate limiting, request metrics, body-size guard.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::GovernorError;

use super::error::ApiError;
use super::extract::payload_too_large;
use crate::app::AppState;

/// The client IP is the TCP peer, unless the peer is a trusted proxy: then it is the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. The left-most entry
/// is whatever the client wrote, so it is never believed.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(s) = value.to_str() else { return peer };
        for part in s.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                // An unparsable hop means the chain cannot be trusted past this point.
                Err(_) => hops.clear(),
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

/// Requests served without a socket (router tests via `oneshot`) have no peer address.
const NO_PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

#[derive(Clone)]
pub struct ClientIpKey {
    pub trusted: Arc<Vec<IpAddr>>,
}

impl KeyExtractor for ClientIpKey {
    type Key = IpAddr;

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<Self::Key, GovernorError> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(NO_PEER);
        Ok(client_ip(peer, req.headers(), &self.trusted))
    }
}

pub fn governor_error(e: GovernorError) -> Response {
    match e {
        GovernorError::TooManyRequests { wait_time, .. } => {
            ApiError::too_many_requests(wait_time.max(1)).into_response()
        }
        GovernorError::UnableToExtractKey => {
            ApiError::bad_request("no_client_address", "client address unknown").into_response()
        }
        GovernorError::Other { code, msg, .. } => {
            ApiError::new(code, "rate_limited", msg.unwrap_or_default()).into_response()
        }
    }
}

/// Prometheus recorder owned by the app (not installed globally, so several apps can live in
/// one test process).
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .expect("static bucket list is non-empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle }
    }

    /// Runs `f` with this app's recorder as the target of the `metrics` macros.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let secs = start.elapsed().as_secs_f64();
    state.metrics.record(|| {
        let labels = [("method", method), ("route", route), ("status", status)];
        metrics::counter!("http_requests_total", &labels).increment(1);
        metrics::histogram!("http_request_duration_seconds", &labels).record(secs);
    });
    resp
}

/// Rejects bodies whose declared length exceeds the limit before any handler reads them.
pub async fn limit_declared_length(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.config.body_limit_bytes) {
        return payload_too_large().into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_only_believed_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 2.2.2.2"),
        );
        let trusted = [ip("10.0.0.1")];
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &trusted), ip("9.9.9.9"));
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("2.2.2.2"));
        // A chain of trusted proxies is skipped from the right.
        let trusted = [ip("10.0.0.1"), ip("2.2.2.2")];
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("1.1.1.1"));
        // Garbage in the header does not let the client pick its key.
        h.insert("x-forwarded-for", HeaderValue::from_static("7.7.7.7, junk"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &[ip("10.0.0.1")]),
            ip("10.0.0.1")
        );
    }
}
