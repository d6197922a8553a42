//! Data subjects (Ley 21.719) over HTTP: everything held about a person, rectification,
//! anonymisation and the block flag. Administrators, and the staff of the department that
//! handles personal-data requests; every call is audited with folios, never the RUT.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Role, StaffUser};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::oirs::routes::DATA_RIGHTS_TYPE;
use crate::oirs::service::{self, Actor, DataSubject, Rectification};
use crate::oirs::Rut;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/staff/data-subjects/{rut}",
            get(gather).patch(rectify),
        )
        .route(
            "/api/v1/staff/data-subjects/{rut}/anonymize",
            post(anonymize),
        )
        .route(
            "/api/v1/staff/data-subjects/{rut}/block",
            post(block).delete(unblock),
        )
}

/// The department that handles personal-data requests: where the routing rules send them.
pub async fn privacy_department(state: &AppState) -> Result<Option<String>, ApiError> {
    let rules = service::routing_rules(&state.store).await?;
    Ok(service::route(&rules, DATA_RIGHTS_TYPE, DATA_RIGHTS_TYPE))
}

/// Whether `user` may handle data subjects: administrators and that department's staff.
pub async fn may_handle(state: &AppState, user: &StaffUser) -> Result<bool, ApiError> {
    Ok(match user.role {
        Role::Admin => true,
        Role::Department => {
            user.department.is_some() && privacy_department(state).await? == user.department
        }
        _ => false,
    })
}

async fn allowed(state: &AppState, user: &StaffUser, rut: &str) -> Result<String, ApiError> {
    if !may_handle(state, user).await? {
        return Err(ApiError::forbidden());
    }
    Rut::parse(rut)
        .map(|r| r.to_string())
        .map_err(|e| ApiError::invalid("rut", e.to_string()))
}

/// Audits a data-subject call once per case of the person (or once without a folio).
async fn audit(
    state: &AppState,
    actor: &Actor,
    action: &str,
    subject: &DataSubject,
) -> Result<(), ApiError> {
    if subject.cases.is_empty() {
        service::audit(&state.store, actor, action, "", "titular sin casos").await?;
    }
    for c in &subject.cases {
        service::audit(
            &state.store,
            actor,
            action,
            &c.case.folio,
            "titular de datos",
        )
        .await?;
    }
    Ok(())
}

/// Everything held about the person with this RUT (JSON is the portability format).
#[utoipa::path(get, path = "/api/v1/staff/data-subjects/{rut}", tag = "staff",
    params(("rut" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = DataSubject), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn gather(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(rut): ApiPath<String>,
) -> ApiResult<Json<DataSubject>> {
    let rut = allowed(&state, &user, &rut).await?;
    let subject = service::gather(&state.store, &rut).await?;
    audit(&state, &Actor::from(&user), "ver_titular", &subject).await?;
    Ok(Json(subject))
}

#[derive(Serialize, ToSchema)]
pub struct Rectified {
    pub rectified: usize,
}

/// Corrects the person's contact data on their cases, with an event on each and the audit.
#[utoipa::path(patch, path = "/api/v1/staff/data-subjects/{rut}", tag = "staff",
    params(("rut" = String, Path)), request_body = Rectification, security(("bearer" = [])),
    responses((status = 200, body = Rectified), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rectify(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(rut): ApiPath<String>,
    ApiJson(r): ApiJson<Rectification>,
) -> ApiResult<Json<Rectified>> {
    let rut = allowed(&state, &user, &rut).await?;
    let n = service::rectify(&state.store, &Actor::from(&user), &rut, &r).await?;
    Ok(Json(Rectified { rectified: n }))
}

#[derive(Serialize, ToSchema)]
pub struct Anonymized {
    pub anonymized: usize,
}

/// Removes the person from their closed cases (open ones still need them).
#[utoipa::path(post, path = "/api/v1/staff/data-subjects/{rut}/anonymize", tag = "staff",
    params(("rut" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Anonymized), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn anonymize(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(rut): ApiPath<String>,
) -> ApiResult<Json<Anonymized>> {
    let rut = allowed(&state, &user, &rut).await?;
    let n = service::anonymize(&state.store, &Actor::from(&user), &rut).await?;
    Ok(Json(Anonymized { anonymized: n }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BlockIn {
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Blocked {
    pub blocked: bool,
}

/// Blocks the person's data: no e-mail to them, no free text in webhooks, while it stands.
#[utoipa::path(post, path = "/api/v1/staff/data-subjects/{rut}/block", tag = "staff",
    params(("rut" = String, Path)), request_body = BlockIn, security(("bearer" = [])),
    responses((status = 200, body = Blocked), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn block(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(rut): ApiPath<String>,
    ApiJson(body): ApiJson<BlockIn>,
) -> ApiResult<Json<Blocked>> {
    let rut = allowed(&state, &user, &rut).await?;
    let reason = body.reason;
    if reason.chars().count() > 500 {
        return Err(ApiError::invalid("reason", "at most 500 characters"));
    }
    service::block(&state.store, &Actor::from(&user), &rut, reason.trim()).await?;
    Ok(Json(Blocked { blocked: true }))
}

/// Ends the block.
#[utoipa::path(delete, path = "/api/v1/staff/data-subjects/{rut}/block", tag = "staff",
    params(("rut" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Blocked), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn unblock(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(rut): ApiPath<String>,
) -> ApiResult<Json<Blocked>> {
    let rut = allowed(&state, &user, &rut).await?;
    service::unblock(&state.store, &Actor::from(&user), &rut).await?;
    Ok(Json(Blocked { blocked: false }))
}
