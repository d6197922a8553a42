//! Extractors whose rejections use the SPEC error body, so no request is ever answered with
//! axum's plain-text rejections:
//! - `ApiJson`: a body that is not declared JSON → 415, malformed JSON → 400, a missing or
//!   mistyped field → 422 naming the field, an oversized body → 413;
//! - `ApiPath`: a path parameter of the wrong type (`/outbox/abc/retry`) → 422 naming it;
//! - `ApiQuery`: a query parameter of the wrong type or an unknown value → 422 naming it.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                payload_too_large()
            } else {
                ApiError::bad_request("unreadable_body", "the request body could not be read")
            }
        })?;
        let value = parse_json(&bytes)?;
        // serde also reads a struct from an array of its fields in order (`[null, null]`);
        // every body of this API is an object, as the document says.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "the body must be a JSON object",
            ));
        }
        Ok(ApiJson(value))
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than allowed",
    )
}

/// Parses `bytes` as `T`, classifying failures the way clients need them.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        // JSON has one number type: `15.0` is the integer 15 to JSON Schema (and to the
        // OpenAPI document's `integer` fields), so whole floats are read as integers. Only on
        // this failure path, so ordinary bodies are parsed once.
        Err(err)
            if err
                .inner()
                .to_string()
                .starts_with("invalid type: floating point") =>
        {
            match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(mut value) => {
                    if whole_floats_to_integers(&mut value) {
                        parse_json(&serde_json::to_vec(&value).unwrap_or_default())
                    } else {
                        Err(classify(err))
                    }
                }
                Err(_) => Err(classify(err)),
            }
        }
        Err(err) => Err(classify(err)),
    }
}

/// Rewrites every float without a fractional part (within i64) as an integer; says whether
/// it changed anything.
fn whole_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                *value = Value::from(f as i64);
                true
            }
            _ => false,
        },
        // Every element is visited (no short circuit): all whole floats are rewritten.
        Value::Array(items) => items
            .iter_mut()
            .map(whole_floats_to_integers)
            .fold(false, |a, b| a | b),
        Value::Object(map) => map
            .values_mut()
            .map(whole_floats_to_integers)
            .fold(false, |a, b| a | b),
        _ => false,
    }
}

fn classify(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let msg = inner.to_string();
            let field = field_from_message(&msg)
                .or_else(|| (path != "." && !path.is_empty()).then(|| path.clone()));
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                strip_position(&msg),
            );
            if let Some(f) = field {
                let full = if path != "." && !path.is_empty() && !f.contains('.') && path != f {
                    format!("{path}.{f}")
                } else {
                    f
                };
                e = e.with_field(full);
            }
            e
        }
        _ => ApiError::bad_request(
            "malformed_json",
            format!(
                "the body is not valid JSON: {}",
                strip_position(&inner.to_string())
            ),
        ),
    }
}

/// Path parameters, deserialized as axum's `Path` does; a value of the wrong type answers 422
/// naming the parameter instead of axum's plain-text 400.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(rej) => {
                let route = parts.extensions.get::<MatchedPath>().map(|m| m.as_str());
                Err(path_rejection(rej, route))
            }
        }
    }
}

/// The names of a route's parameters, in order: `/a/{x}/b/{y}` → `["x", "y"]`.
fn route_params(route: &str) -> Vec<&str> {
    route
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*'))
        .collect()
}

fn path_rejection(rej: PathRejection, route: Option<&str>) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(err) = rej else {
        return ApiError::internal(rej.body_text());
    };
    let params = route.map(route_params).unwrap_or_default();
    let invalid = |name: Option<&str>, value: &str, expected: &str| {
        let name = name.unwrap_or("path");
        ApiError::invalid(
            name,
            format!("the path parameter {name} must be {expected}, not {value:?}"),
        )
    };
    match err.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => invalid(Some(key), value, expected_of(expected_type)),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => invalid(
            params.get(*index).copied(),
            value,
            expected_of(expected_type),
        ),
        ErrorKind::ParseError {
            value,
            expected_type,
        } => invalid(params.first().copied(), value, expected_of(expected_type)),
        ErrorKind::InvalidUtf8InPathParam { key } => {
            ApiError::invalid(key, "the path parameter is not valid UTF-8")
        }
        ErrorKind::DeserializeError { key, message, .. } => {
            ApiError::invalid(key, strip_position(message))
        }
        _ => ApiError::internal(err.body_text()),
    }
}

/// How a Rust type reads in an error message.
fn expected_of(rust_type: &str) -> &'static str {
    match rust_type {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer in range",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer in range",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        _ => "a valid value",
    }
}

/// Query parameters, deserialized as axum's `Query` does; a wrong type or an unknown value
/// answers 422 naming the parameter instead of axum's plain-text 400.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// Parses a query string as `T`, naming the offending parameter when it fails.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|err| {
        let path = err.path().to_string();
        let msg = err.into_inner().to_string();
        let field = field_from_message(&msg)
            .or_else(|| (path != "." && !path.is_empty()).then_some(path))
            .unwrap_or_else(|| "query".into());
        ApiError::invalid(&field, format!("query parameter {field}: {msg}"))
    })
}

/// serde reports missing/unknown fields only in its message: "missing field `text`".
fn field_from_message(msg: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = msg.split(marker).nth(1) {
            return rest.split('`').next().map(String::from);
        }
    }
    None
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Msg {
        text: String,
        inner: Option<Inner>,
    }
    #[allow(dead_code)]
    #[derive(Deserialize, Debug)]
    struct Inner {
        n: u8,
    }

    #[test]
    fn whole_floats_are_integers() {
        let m = parse_json::<Msg>(br#"{"text": "a", "inner": {"n": 97.0}}"#).expect("15.0 is 15");
        assert_eq!(m.inner.map(|i| i.n), Some(97));
        let e = parse_json::<Msg>(br#"{"text": "a", "inner": {"n": 97.5}}"#).expect_err("fraction");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("inner.n"));
        let e = parse_json::<Msg>(br#"{"text": 1.0}"#).expect_err("still not a string");
        assert_eq!(e.field.as_deref(), Some("text"));
    }

    #[test]
    fn classifies_errors() {
        let e = parse_json::<Msg>(b"{not json").expect_err("malformed");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "malformed_json");

        let e = parse_json::<Msg>(b"{}").expect_err("missing");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("text"));

        let e = parse_json::<Msg>(br#"{"text": 5}"#).expect_err("type");
        assert_eq!(e.field.as_deref(), Some("text"));

        let e = parse_json::<Msg>(br#"{"text": "a", "inner": {"n": 300}}"#).expect_err("range");
        assert_eq!(e.field.as_deref(), Some("inner.n"));

        let e = parse_json::<Msg>(br#"{"text": "a", "bogus": 1}"#).expect_err("unknown");
        assert_eq!(e.field.as_deref(), Some("bogus"));
    }
}
