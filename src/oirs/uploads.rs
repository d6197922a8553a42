//! Attachments over HTTP: the multipart upload both sides use, the resident's upload and
//! download (with the tracking code, like tracking), and the file response.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::attachments::{self, AttachmentOut, Content, Prepared, Refusal, Source};
use super::domain::Status;
use super::routes::{authorize, TrackQuery};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::throttle::ClientAddr;
use crate::http::{ApiError, ApiPath, ApiQuery, ApiResult, PublicLimit};

pub fn router(limit: PublicLimit) -> Router<AppState> {
    limit(
        Router::new()
            .route(
                "/api/v1/oirs/cases/{folio}/attachments",
                post(upload).layer(DefaultBodyLimit::max(attachments::UPLOAD_BODY_LIMIT)),
            )
            .route("/api/v1/oirs/cases/{folio}/attachments/{id}", get(download)),
    )
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r {
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::WrongType | Refusal::Damaged => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Empty => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let code = match r {
            Refusal::TooLarge => "payload_too_large",
            Refusal::WrongType | Refusal::Damaged => "unsupported_media_type",
            Refusal::Empty => "invalid_field",
        };
        ApiError::new(status, code, r.to_string()).with_field("file")
    }
}

/// The `file` field of a multipart body, read up to the size limit, checked and cleaned.
pub async fn read_file(mut form: Multipart) -> ApiResult<Prepared> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(Refusal::TooLarge)
        } else {
            ApiError::bad_request("invalid_multipart", "the multipart body does not parse")
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().map(String::from);
        let mut data: Vec<u8> = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            if data.len() + chunk.len() > attachments::MAX_BYTES {
                return Err(Refusal::TooLarge.into());
            }
            data.extend_from_slice(&chunk);
        }
        // Decoding an image for its thumbnail is CPU work.
        let prepared =
            tokio::task::spawn_blocking(move || attachments::prepare(name.as_deref(), &data))
                .await
                .map_err(ApiError::internal)??;
        return Ok(prepared);
    }
    Err(ApiError::invalid(
        "file",
        "Adjunte un archivo en el campo file.",
    ))
}

/// A multipart body whose `file` is a JPEG, PNG or PDF of up to 5 MB.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FileUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Attaches a photo (JPEG, PNG) or a PDF to a case, with its tracking code: up to 5 files of
/// up to 5 MB, judged by their content. Images are stored without their metadata (EXIF).
#[utoipa::path(post, path = "/api/v1/oirs/cases/{folio}/attachments", tag = "oirs", operation_id = "upload_attachment",
    params(("folio" = String, Path), TrackQuery),
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = AttachmentOut), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the case already has 5 files, or is closed"),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiPath(folio): ApiPath<String>,
    ApiQuery(q): ApiQuery<TrackQuery>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, Json<AttachmentOut>)> {
    let case = authorize(&state, client, &folio, &q).await?;
    let form = form.map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as multipart/form-data",
        )
    })?;
    if case.status == Status::Cerrado {
        return Err(ApiError::conflict(
            "closed",
            "El caso está cerrado: ya no se pueden adjuntar archivos.",
        ));
    }
    let file = read_file(form).await?;
    let out = attachments::store(&state.store, case.id, Source::Vecino, None, &file).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// One file of a case (the resident's or staff's), with the tracking code.
#[utoipa::path(get, path = "/api/v1/oirs/cases/{folio}/attachments/{id}", tag = "oirs", operation_id = "download_attachment",
    params(("folio" = String, Path), ("id" = i64, Path), TrackQuery),
    responses((status = 200, description = "the file", content((String = "image/jpeg"), (String = "image/png"), (String = "application/pdf"))),
              (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiPath((folio, id)): ApiPath<(String, i64)>,
    ApiQuery(q): ApiQuery<TrackQuery>,
) -> ApiResult<Response> {
    let case = authorize(&state, client, &folio, &q).await?;
    let file = attachments::content(&state.store, case.id, id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    Ok(file_response(file))
}

/// A stored file as a response: its own type, never sniffed, never cached by proxies;
/// images shown inline, PDFs downloaded.
pub fn file_response(file: Content) -> Response {
    let disposition = if file.content_type == "application/pdf" {
        "attachment"
    } else {
        "inline"
    };
    let value = format!(
        "{disposition}; filename*=UTF-8''{}",
        percent_encode(&file.name)
    );
    let mut resp = file.data.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&file.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

/// RFC 8187 encoding of a file name for `filename*`.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_percent_encoded() {
        assert_eq!(
            super::percent_encode("foto año 1.jpg"),
            "foto%20a%C3%B1o%201.jpg"
        );
    }
}
