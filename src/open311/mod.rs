//! Open311 GeoReport v2 (<http://wiki.open311.org/GeoReport_v2>) under `/open311/v2`: the
//! interoperability door through which civic-reporting apps file and read territorial
//! reports. Services are the territorial topics (`open311_services`, data); a request is an
//! OIRS case, its `service_request_id` the folio. Listings never carry personal data.
//!
//! These endpoints speak GeoReport's own formats (JSON and XML by extension, form-encoded
//! bodies, errors as `[{"code", "description"}]`), so they are outside `/api/v1`'s OpenAPI
//! document; the README describes them.

pub mod keys;
pub mod render;
pub mod requests;
pub mod services;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
use crate::http::{ApiPath, PublicLimit};
use render::{Format, Record};

pub const BASE: &str = "/open311/v2";

pub fn router(limit: PublicLimit) -> Router<AppState> {
    limit(
        Router::new()
            .route("/open311/v2/{file}", get(get_file).post(post_file))
            .route("/open311/v2/services/{file}", get(services::definition))
            .route("/open311/v2/requests/{file}", get(requests::one)),
    )
}

/// A GeoReport error: the HTTP status, and the same number as its `code`.
#[derive(Debug)]
pub struct Open311Error {
    pub status: StatusCode,
    pub description: String,
    pub format: Format,
}

impl Open311Error {
    pub fn new(status: StatusCode, format: Format, description: impl Into<String>) -> Self {
        Self {
            status,
            description: description.into(),
            format,
        }
    }

    pub fn bad_request(format: Format, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format, description)
    }

    pub fn not_found(format: Format, description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, format, description)
    }

    /// A failure of the service itself: logged with its detail, answered without it.
    pub fn internal(format: Format, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "open311: internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format,
            "Error interno del servicio; intente nuevamente más tarde.",
        )
    }

    /// The store failed: 503 when it is unreachable, else 500.
    pub fn store(format: Format, e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "open311: database unavailable");
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format,
                "El servicio no está disponible en este momento; intente nuevamente más tarde.",
            )
        } else {
            Self::internal(format, e)
        }
    }
}

impl IntoResponse for Open311Error {
    fn into_response(self) -> Response {
        let record = Record::default()
            .field("code", self.status.as_u16())
            .field("description", self.description);
        render::answer(self.status, self.format, "errors", "error", &[record])
    }
}

pub type Open311Result = Result<Response, Open311Error>;

/// The format of a path's file, or a 404 (in JSON: the extension named none).
pub fn format_of(file: &str) -> Result<(&str, Format), Open311Error> {
    Format::split(file).ok_or_else(|| {
        Open311Error::not_found(
            Format::Json,
            "Recurso desconocido: use la extensión .json o .xml.",
        )
    })
}

async fn get_file(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Open311Result {
    if file == "discovery.json" {
        return Ok(discovery(&state).into_response());
    }
    match format_of(&file)? {
        ("services", f) => services::list(&state, f).await,
        ("requests", f) => requests::list(&state, f, query.as_deref()).await,
        (_, f) => Err(unknown(f)),
    }
}

async fn post_file(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Open311Result {
    match format_of(&file)? {
        ("requests", f) => {
            let body = body.map_err(|e| Open311Error::new(e.status(), f, e.body_text()))?;
            requests::create(&state, f, &body).await
        }
        (_, f) => Err(Open311Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            f,
            "Solo se pueden crear solicitudes (POST requests.json o requests.xml).",
        )),
    }
}

fn unknown(format: Format) -> Open311Error {
    Open311Error::not_found(
        format,
        "Recurso desconocido: vea discovery.json para los disponibles.",
    )
}

/// Where the API is and what it speaks (GeoReport's service discovery).
fn discovery(state: &AppState) -> Json<serde_json::Value> {
    let base = state.config.public_base_url.trim_end_matches('/');
    let profile = &state.chat.engine().catalog.profile;
    let contact = match profile.get("correo_oirs") {
        "" => profile.get("correo_general"),
        oirs => oirs,
    };
    Json(json!({
        "changeset": "2026-12-01T00:00:00-03:00",
        "contact": contact,
        "key_service": "Solicite una clave (api_key) a la administración municipal; la emite un administrador del servicio.",
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": format!("{base}{BASE}"),
            "changeset": "2026-12-01T00:00:00-03:00",
            "type": "production",
            "formats": ["application/json", "text/xml"],
        }],
    }))
}
