//! A JSON extractor whose rejections use the SPEC error body: malformed JSON → 400,
//! a missing or mistyped field → 422 naming the field, an oversized body → 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
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
            return Err(ApiError::bad_request(
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
        parse_json(&bytes).map(ApiJson)
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
        Err(err) => {
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
                        let full =
                            if path != "." && !path.is_empty() && !f.contains('.') && path != f {
                                format!("{path}.{f}")
                            } else {
                                f
                            };
                        e = e.with_field(full);
                    }
                    Err(e)
                }
                _ => Err(ApiError::bad_request(
                    "malformed_json",
                    format!(
                        "the body is not valid JSON: {}",
                        strip_position(&inner.to_string())
                    ),
                )),
            }
        }
    }
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
