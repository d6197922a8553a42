//! The one error type every handler returns, rendered as the SPEC error body:
//! `{"error": {"code": "snake_case", "message": "…", "field": "…"?}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// When several fields are wrong: every one of them (the first is `field` above), so a
    /// form can show all its errors at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub fields: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Several invalid fields at once (a 422 naming the first, listing all).
    pub fn invalid_fields(fields: Vec<FieldError>) -> Self {
        let first = fields.first().cloned().unwrap_or(FieldError {
            field: String::new(),
            message: "invalid input".into(),
        });
        let mut e = Self::invalid(&first.field, first.message);
        if fields.len() > 1 {
            e.fields = fields;
        }
        e
    }

    /// Every invalid field: the list, or the one named.
    pub fn field_errors(&self) -> Vec<FieldError> {
        if !self.fields.is_empty() {
            return self.fields.clone();
        }
        self.field
            .iter()
            .map(|f| FieldError {
                field: f.clone(),
                message: self.message.clone(),
            })
            .collect()
    }

    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            field: None,
            fields: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Input that parsed but is not acceptable; names the offending field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "not allowed for this user",
        )
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {retry_after} s"),
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// Logs the cause and answers with a body that reveals nothing of it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the incident was logged",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.clone(),
                message: self.message.clone(),
                field: self.field.clone(),
                fields: self.fields.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            _ if e.is_unavailable() => {
                tracing::warn!(error = %Chain(&e), "database unavailable");
                ApiError::unavailable("the database is not available; try again shortly")
            }
            // Call sites map the constraints they expect; one that slips through still says
            // nothing of tables or columns.
            _ if e.integrity_violation() => {
                tracing::warn!(error = %Chain(&e), "unmapped integrity violation");
                if e.unique_violation() {
                    ApiError::conflict(
                        "already_exists",
                        "a record with the same key already exists",
                    )
                } else {
                    ApiError::conflict("conflict", "the change clashes with what is stored")
                }
            }
            _ => ApiError::internal(Chain(&e)),
        }
    }
}

/// An error with its causes, for the log: "outer: inner: innermost".
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            // thiserror's transparent and `{0}` messages repeat their source: skip repeats.
            let text = s.to_string();
            if !self.0.to_string().ends_with(&text) {
                write!(f, ": {text}")?;
            }
            source = s.source();
        }
        Ok(())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
