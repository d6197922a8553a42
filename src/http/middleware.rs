//! Cross-cutting layers: what every request goes through (`Observe`: request id, span,
//! declared-length guard, metrics, security headers), the client IP for rate limiting, and
//! the Prometheus recorder.
//!
//! Every request passes through `Observe`, so it avoids per-request allocations, system calls
//! and shared-counter traffic where it can: `bench/middleware.sh` measures what it costs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::GovernorError;

use super::error::ApiError;
use super::extract::payload_too_large;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a random prefix drawn once per process (instances behind a load balancer
/// differ) followed by a counter, printed in the UUID form. As unique as a v4 UUID, without
/// asking the operating system for random bytes on every request.
struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        Self {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            next: AtomicU64::new(0),
        }
    }

    fn make(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::from_u64_pair(self.prefix, n)
            .hyphenated()
            .encode_lower(&mut buf);
        HeaderValue::from_str(id).expect("a hyphenated UUID is a valid header value")
    }
}

/// The span every request's logs are recorded in: its id, method and path. The path may carry
/// a folio but never personal data; query strings are left out because tracking lookups carry
/// a RUT there.
fn request_span(id: &HeaderValue, req: &Request) -> tracing::Span {
    let id = id.to_str().unwrap_or("-");
    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
}

/// What every request goes through on its way in and out, as one layer: its id (the
/// client's `x-request-id`, or a new one) set on the request and echoed on the response, its
/// span (every log line inside carries the id), the declared-length guard, request metrics,
/// an error log line for 5xx answers, and the security headers.
///
/// One layer rather than the eight tower-http and `from_fn` layers it replaces: axum clones a
/// route's whole layer stack for every request, and each of those added a clone, a future and
/// often an allocation or a shared-counter update; together they cost twice what axum itself
/// spends serving a request (`bench/middleware.sh`).
#[derive(Clone)]
pub struct ObserveLayer {
    shared: Arc<Observed>,
}

struct Observed {
    metrics: Arc<Metrics>,
    ids: RequestIds,
    body_limit: usize,
    csp: HeaderValue,
}

impl ObserveLayer {
    pub fn new(metrics: Arc<Metrics>, body_limit: usize, csp: HeaderValue) -> Self {
        Self {
            shared: Arc::new(Observed {
                metrics,
                ids: RequestIds::new(),
                body_limit,
                csp,
            }),
        }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    shared: Arc<Observed>,
}

impl<S> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Error = std::convert::Infallible>,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        use tracing::Instrument;
        let start = Instant::now();
        let shared = self.shared.clone();
        let id = match req.headers().get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = shared.ids.make();
                req.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        let span = request_span(&id, &req);
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        // Bodies declared too large are refused before any handler reads them. File uploads
        // have their own, larger limit (their routes set it for the body as read too).
        let limit = crate::oirs::attachments::upload_limit(req.method(), req.uri().path())
            .map_or(shared.body_limit, |l| l.max(shared.body_limit));
        let inner = declared
            .is_none_or(|n| n <= limit)
            .then(|| self.inner.call(req).instrument(span.clone()));
        Box::pin(async move {
            let mut resp = match inner {
                Some(inner) => match inner.await {
                    Ok(r) => r.into_response(),
                    Err(never) => match never {},
                },
                None => payload_too_large().into_response(),
            };
            let status = resp.status();
            let secs = start.elapsed().as_secs_f64();
            if status.is_server_error() {
                let latency_ms = secs * 1000.0;
                span.in_scope(|| {
                    tracing::error!(status = status.as_u16(), latency_ms, "response failed")
                });
            }
            shared.metrics.observe_request(
                route.as_ref().map_or("unmatched", MatchedPath::as_str),
                &method,
                status,
                secs,
            );
            let headers = resp.headers_mut();
            headers.insert(REQUEST_ID, id);
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            );
            if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
                headers.insert(header::CONTENT_SECURITY_POLICY, shared.csp.clone());
            }
            Ok(resp)
        })
    }
}

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
    /// The request counter and latency histogram of each route, method and status seen so
    /// far, registered on first use: building a metric key on every request (three label
    /// strings, a registry lookup per metric) cost as much as the rest of a small request.
    http: RwLock<HashMap<String, Vec<HttpSeries>>>,
}

struct HttpSeries {
    method: Method,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
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
        Self {
            recorder,
            handle,
            http: RwLock::new(HashMap::new()),
        }
    }

    /// Runs `f` with this app's recorder as the target of the `metrics` macros.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Folds recorded latencies into the histograms. Without it they pile up between scrapes
    /// (forever, where nothing scrapes), so `http::serve` runs it every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Counts one request and its duration under `http_requests_total` and
    /// `http_request_duration_seconds`, labelled by method, route and status.
    pub fn observe_request(&self, route: &str, method: &Method, status: StatusCode, secs: f64) {
        // Any method a client invents would otherwise make a new series.
        let method = if STANDARD_METHODS.contains(method) {
            method
        } else {
            &OTHER_METHOD
        };
        let find = |series: &[HttpSeries]| -> bool {
            match series
                .iter()
                .find(|s| s.status == status && s.method == *method)
            {
                Some(s) => {
                    s.requests.increment(1);
                    s.duration.record(secs);
                    true
                }
                None => false,
            }
        };
        {
            let http = self.http.read().unwrap_or_else(PoisonError::into_inner);
            if http.get(route).is_some_and(|series| find(series)) {
                return;
            }
        }
        let mut http = self.http.write().unwrap_or_else(PoisonError::into_inner);
        let series = http.entry(route.to_string()).or_default();
        if find(series) {
            return;
        }
        let (requests, duration) = self.record(|| {
            let labels = [
                ("method", method.to_string()),
                ("route", route.to_string()),
                ("status", status.as_str().to_string()),
            ];
            (
                metrics::counter!("http_requests_total", &labels),
                metrics::histogram!("http_request_duration_seconds", &labels),
            )
        });
        requests.increment(1);
        duration.record(secs);
        series.push(HttpSeries {
            method: method.clone(),
            status,
            requests,
            duration,
        });
    }
}

const STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::CONNECT,
    Method::TRACE,
];

/// The method label of requests with a non-standard method.
static OTHER_METHOD: std::sync::LazyLock<Method> = std::sync::LazyLock::new(|| {
    Method::from_bytes(b"OTHER").expect("OTHER is a valid method token")
});

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::{Layer, ServiceExt};

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

    #[tokio::test]
    async fn observe_keeps_request_ids_counts_requests_and_refuses_declared_oversize() {
        let metrics = Arc::new(Metrics::new());
        let csp = HeaderValue::from_static("default-src 'self'");
        let app = ObserveLayer::new(metrics.clone(), 1024, csp).layer(tower::service_fn(
            |req: Request| async move {
                // The handler sees the same id the client will.
                let id = req.headers().get(REQUEST_ID).cloned();
                let mut resp = "ok".into_response();
                resp.extensions_mut().insert(id);
                Ok::<_, std::convert::Infallible>(resp)
            },
        ));
        let send = |req: axum::http::Request<Body>| app.clone().oneshot(req);
        let get = || Request::get("/x").body(Body::empty()).expect("request");

        let a = send(get()).await.expect("response");
        let b = send(get()).await.expect("response");
        let id = |r: &Response| r.headers()[REQUEST_ID].to_str().expect("ascii").to_string();
        assert_ne!(id(&a), id(&b), "each request gets its own id");
        assert!(uuid::Uuid::parse_str(&id(&a)).is_ok(), "{}", id(&a));
        assert_eq!(
            a.extensions().get::<Option<HeaderValue>>(),
            Some(&Some(a.headers()[REQUEST_ID].clone()))
        );
        assert_eq!(a.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            a.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'"
        );

        let mut req = get();
        req.headers_mut()
            .insert(REQUEST_ID, HeaderValue::from_static("from-the-proxy"));
        assert_eq!(id(&send(req).await.expect("response")), "from-the-proxy");

        let req = Request::post("/x")
            .header(header::CONTENT_LENGTH, "4096")
            .body(Body::empty())
            .expect("request");
        let resp = send(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(resp.headers().contains_key(REQUEST_ID));
        let body = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["error"]["code"], "payload_too_large");

        let req = Request::builder()
            .method("BREW")
            .uri("/x")
            .body(Body::empty())
            .expect("request");
        send(req).await.expect("response");

        let text = metrics.render();
        for series in [
            r#"http_requests_total{method="GET",route="unmatched",status="200"} 3"#,
            r#"http_requests_total{method="POST",route="unmatched",status="413"} 1"#,
            r#"http_requests_total{method="OTHER",route="unmatched",status="200"} 1"#,
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
        assert!(
            text.contains("http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
