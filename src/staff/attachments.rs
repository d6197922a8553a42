//! Staff and case files: reading a resident's photos and documents (each read audited,
//! confined to the case's department like the case itself) and attaching files to an answer.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Role, StaffUser};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::oirs::attachments::{self, AttachmentOut, Source};
use crate::oirs::domain::{Folio, Status};
use crate::oirs::service::{self, Actor, CaseRecord};
use crate::oirs::uploads::{file_response, read_file, FileUpload};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/staff/cases/{folio}/attachments",
            post(upload).layer(DefaultBodyLimit::max(attachments::UPLOAD_BODY_LIMIT)),
        )
        .route("/api/v1/staff/cases/{folio}/attachments/{id}", get(read))
}

const CASE_ROLES: &[Role] = &[Role::Admin, Role::Coordinator, Role::Department];

/// The case, if this user may work on it: 404 for an unknown folio, 403 for another
/// department's case.
pub async fn case_for(state: &AppState, user: &StaffUser, folio: &str) -> ApiResult<CaseRecord> {
    user.require(CASE_ROLES)?;
    let folio = Folio::parse(folio)
        .map(|f| f.to_string())
        .ok_or_else(|| ApiError::not_found("case"))?;
    let case = service::find_case(&state.store, &folio)
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    if !Actor::from(user).may_act_on(&case.department) {
        return Err(ApiError::forbidden());
    }
    Ok(case)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// `true` for the image's thumbnail (a JPEG of at most 240 px a side).
    #[serde(default)]
    pub thumbnail: bool,
}

/// One file of a case, or its thumbnail. Every read is audited.
#[utoipa::path(get, path = "/api/v1/staff/cases/{folio}/attachments/{id}", tag = "staff",
    params(("folio" = String, Path), ("id" = i64, Path), ReadQuery), security(("bearer" = [])),
    operation_id = "read_attachment",
    responses((status = 200, description = "the file", content((String = "image/jpeg"), (String = "image/png"), (String = "application/pdf"))),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath((folio, id)): ApiPath<(String, i64)>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> ApiResult<Response> {
    let case = case_for(&state, &user, &folio).await?;
    let file = attachments::content(&state.store, case.id, id, q.thumbnail)
        .await?
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    let what = if q.thumbnail { "miniatura" } else { "archivo" };
    service::audit(
        &state.store,
        &Actor::from(&user),
        "ver_adjunto",
        &case.folio,
        &format!("{what} {id}"),
    )
    .await?;
    Ok(file_response(file))
}

/// Attaches a file to the case (staff, with their answer); the resident sees it on the
/// tracking page. Same rules as the resident's upload; up to 5 staff files per case.
#[utoipa::path(post, path = "/api/v1/staff/cases/{folio}/attachments", tag = "staff",
    params(("folio" = String, Path)), security(("bearer" = [])), operation_id = "staff_upload_attachment",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = AttachmentOut), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "5 staff files already, or the case is closed"),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(folio): ApiPath<String>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, Json<AttachmentOut>)> {
    let case = case_for(&state, &user, &folio).await?;
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
    let out = store_staff_file(&state, &user, &case, &file).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Stores a file staff attach to a case, audited.
pub async fn store_staff_file(
    state: &AppState,
    user: &StaffUser,
    case: &CaseRecord,
    file: &crate::oirs::attachments::Prepared,
) -> ApiResult<AttachmentOut> {
    let out = attachments::store(
        &state.store,
        case.id,
        Source::Staff,
        Some(&user.username),
        file,
    )
    .await?;
    service::audit(
        &state.store,
        &Actor::from(user),
        "adjuntar",
        &case.folio,
        &format!("archivo {}", out.id),
    )
    .await?;
    Ok(out)
}
