//! HTTP: the router assembled from one router per capability, shared layers, and `serve`.

pub mod contract;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod ops;
pub mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::Router;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::{ApiError, ApiResult};
pub use extract::{ApiJson, ApiPath, ApiQuery};

use crate::app::AppState;

/// What wraps a public (unauthenticated) router in the per-client-IP rate limit. One limiter
/// serves every public router, so a client has one budget across the public API.
pub type PublicLimit<'a> = &'a dyn Fn(Router<AppState>) -> Router<AppState>;

fn public_limit(state: &AppState) -> Box<dyn Fn(Router<AppState>) -> Router<AppState>> {
    let rl = &state.config.rate_limit;
    if !rl.enabled {
        return Box::new(|r| r);
    }
    let key = middleware::ClientIpKey {
        trusted: Arc::new(state.config.trusted_proxies.clone()),
    };
    // One token every 1/per_second seconds, `burst` tokens at most.
    let period = Duration::from_nanos(1_000_000_000 / rl.per_second.max(1));
    let Some(cfg) = GovernorConfigBuilder::default()
        .key_extractor(key)
        .period(period)
        .burst_size(rl.burst)
        .finish()
    else {
        tracing::error!("invalid rate-limit settings; rate limiting disabled");
        return Box::new(|r| r);
    };
    let cfg = Arc::new(cfg);
    // Forget idle clients so the limiter's map does not grow without bound.
    let limiter = cfg.limiter().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.retain_recent();
        }
    });
    let layer = GovernorLayer::new(cfg).error_handler(middleware::governor_error);
    Box::new(move |r| r.layer(layer.clone()))
}

pub fn router(state: AppState) -> Router {
    let cfg = state.config.clone();
    let limit = public_limit(&state);
    let app = Router::new()
        .merge(ops::router())
        .merge(crate::chat::routes::router(&*limit))
        .merge(crate::staff::routes::router(&*limit))
        .merge(limit(crate::signin::staff::router()))
        .merge(limit(crate::signin::resident::router()))
        .merge(crate::oirs::routes::router(&*limit))
        .merge(crate::oirs::satisfaction::router(&*limit))
        .merge(crate::oirs::uploads::router(&*limit))
        .merge(crate::staff::attachments::router())
        .merge(crate::staff::templates::router())
        .merge(crate::staff::cases::router())
        .merge(crate::staff::subjects::router())
        .merge(crate::staff::admin::router())
        .merge(crate::staff::users::router())
        .merge(crate::staff::access::router())
        .merge(crate::analytics::routes::router())
        .merge(crate::review::routes::router())
        .merge(crate::open311::router(&*limit))
        .merge(crate::open311::keys::router())
        .merge(crate::web::router(&*limit))
        .merge(crate::console::router(&*limit))
        .fallback(|| async { ApiError::not_found("route").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
            .into_response()
        });

    // A predicate rather than `AllowOrigin::list`: the stack is cloned for every request (see
    // below), and a list is a vector to copy each time; the predicate is shared.
    let origins: Arc<Vec<HeaderValue>> = Arc::new(
        cfg.cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect(),
    );
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.contains(origin)
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .max_age(Duration::from_secs(3600))
        // Set once below instead: tower-http joins its list into a new header per request.
        .vary([]);
    let vary = HeaderValue::from_static(
        "origin, access-control-request-method, access-control-request-headers",
    );

    let ancestors = if cfg.frame_ancestors.is_empty() {
        "'self'".to_string()
    } else {
        format!("'self' {}", cfg.frame_ancestors.join(" "))
    };
    let csp = format!(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    );
    let csp = HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'self'"));

    // One stack, outermost first, applied once: axum boxes every `Router::layer` call around
    // each route separately and clones a route's whole chain for each request, so each layer
    // here must be cheap to clone (an `Arc`, a static header).
    let stack = ServiceBuilder::new()
        .layer(middleware::ObserveLayer::new(
            state.metrics.clone(),
            cfg.body_limit_bytes,
            csp,
        ))
        .layer(SetResponseHeaderLayer::appending(header::VARY, vary))
        .layer(cors)
        .layer(DefaultBodyLimit::max(cfg.body_limit_bytes));
    app.layer(stack).with_state(state)
}

/// A CSV file: RFC 4180 (comma, no BOM), or with `excel` the variant a Chilean Excel opens in
/// columns (it expects `;` where the decimal separator is a comma, and a UTF-8 byte-order mark
/// to read accents).
pub fn csv_bytes<R, F>(header: &[&str], rows: R, excel: bool) -> Result<Vec<u8>, csv::Error>
where
    R: IntoIterator<Item = Vec<F>>,
    F: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(&r)?;
    }
    w.flush()?;
    let plain = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    if excel {
        excel_csv(&plain, true)
    } else {
        Ok(plain)
    }
}

/// Rewrites an RFC 4180 CSV as the variant a Chilean Excel opens in columns: `;` between
/// fields, decimal commas (`0,6667`), and a UTF-8 byte-order mark.
pub fn excel_csv(rfc4180: &[u8], with_bom: bool) -> Result<Vec<u8>, csv::Error> {
    let mut out = Vec::new();
    if with_bom {
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(rfc4180);
    let mut w = csv::WriterBuilder::new().delimiter(b';').from_writer(out);
    for rec in r.records() {
        let rec = rec?;
        let fields: Vec<String> = rec.iter().map(decimal_comma).collect();
        w.write_record(&fields)?;
    }
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error().into())
}

/// "0.6667" → "0,6667"; anything that is not a plain decimal number stays as it is.
fn decimal_comma(field: &str) -> String {
    let digits = field.strip_prefix('-').unwrap_or(field);
    match digits.split_once('.') {
        Some((a, b))
            if !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit()) =>
        {
            field.replacen('.', ",", 1)
        }
        _ => field.to_string(),
    }
}

/// Serves until SIGTERM/SIGINT, then stops accepting, drains requests in flight and flushes
/// background writers.
pub async fn serve(state: AppState, listener: TcpListener) -> anyhow::Result<()> {
    let app = router(state.clone());
    let metrics = state.metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.upkeep();
        }
    });
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    upkeep.abort();
    tracing::info!("draining background work");
    state.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    #[test]
    fn excel_variant_uses_semicolons_decimal_commas_and_a_bom() {
        let plain = "key,label,share\nmartes,\"Martes, miércoles\",0.4350\nv1.2,x,-3.5\n";
        let out = excel_csv(plain.as_bytes(), true).expect("csv");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "\u{feff}key;label;share\nmartes;Martes, miércoles;0,4350\nv1.2;x;-3,5\n"
        );
    }
}
