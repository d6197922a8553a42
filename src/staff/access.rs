//! HTTP for access control beyond the password: enrolling the second factor
//! (`/api/v1/auth/2fa/...`) and support grants (`/api/v1/admin/support-grants`, admins).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{self, Role, StaffUser};
use super::second_factor;
use super::support::{self, Grant, GrantAction, GrantRefusal, Scope};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/2fa/start", post(start_enrolment))
        .route("/api/v1/auth/2fa/confirm", post(confirm_enrolment))
        .route(
            "/api/v1/admin/support-grants",
            get(list_grants).post(create_grant),
        )
        .route(
            "/api/v1/admin/support-grants/{id}",
            get(get_grant).delete(revoke_grant),
        )
        .route(
            "/api/v1/admin/support-grants/{id}/actions",
            get(grant_actions),
        )
}

#[derive(Serialize, ToSchema)]
pub struct EnrolmentStarted {
    /// Base32 secret, for typing into an app that cannot scan the QR code.
    pub secret: String,
    /// `otpauth://totp/...`: what the QR code holds.
    pub otpauth_uri: String,
}

/// Starts enrolling a TOTP second factor: a new secret to load in an authenticator app.
/// Confirm it with a first code at `/api/v1/auth/2fa/confirm`.
#[utoipa::path(post, path = "/api/v1/auth/2fa/start", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = EnrolmentStarted), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "a second factor is already active")))]
pub async fn start_enrolment(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<EnrolmentStarted>> {
    let secret = second_factor::start(&state.store, user.id)
        .await?
        .ok_or_else(already_enrolled)?;
    Ok(Json(EnrolmentStarted {
        otpauth_uri: second_factor::otpauth_uri(&secret, &user.username),
        secret,
    }))
}

fn already_enrolled() -> ApiError {
    ApiError::conflict(
        "already_enrolled",
        "El segundo factor ya está activo; para cambiarlo, un administrador debe restablecerlo.",
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmIn {
    /// The code the authenticator app shows now.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct Confirmed {
    /// Ten single-use codes for when the app is lost: shown this once, stored hashed.
    pub recovery_codes: Vec<String>,
}

/// Confirms the pending secret with a first code; the session making the call becomes a full
/// one (an enrolment-only session is lifted).
#[utoipa::path(post, path = "/api/v1/auth/2fa/confirm", tag = "staff", request_body = ConfirmIn,
    security(("bearer" = [])),
    responses((status = 200, body = Confirmed),
              (status = 401, body = ErrorBody, description = "not signed in, or `totp_invalid`: the code is wrong"),
              (status = 409, body = ErrorBody)))]
pub async fn confirm_enrolment(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: StaffUser,
    ApiJson(input): ApiJson<ConfirmIn>,
) -> ApiResult<Json<Confirmed>> {
    let codes = confirm(&state, &headers, &user, &input.code).await?;
    Ok(Json(Confirmed {
        recovery_codes: codes,
    }))
}

/// Confirms enrolment for the API and the console: the codes, or why not.
pub async fn confirm(
    state: &AppState,
    headers: &HeaderMap,
    user: &StaffUser,
    code: &str,
) -> ApiResult<Vec<String>> {
    use second_factor::Enrolment;
    match second_factor::enrolment(&state.store, user.id).await? {
        Enrolment::Confirmed => return Err(already_enrolled()),
        Enrolment::None => {
            return Err(ApiError::conflict(
                "enrolment_not_started",
                "Primero genere el código QR del segundo factor.",
            ))
        }
        Enrolment::Pending => {}
    }
    let codes = second_factor::confirm(&state.store, user.id, code)
        .await?
        .ok_or_else(|| {
            // 401 like a wrong code at login: the code is well formed, just not the right one.
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "totp_invalid",
                "El código no coincide: revise la hora del teléfono y use el código vigente.",
            )
            .with_field("code")
        })?;
    if let Some(token) = auth::bearer(headers).or_else(|| auth::session_cookie(headers)) {
        auth::complete_session(&state.store, &token).await?;
    }
    Ok(codes)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantIn {
    /// A staff user with the `support` role (404 when there is none by that name).
    pub username: String,
    /// Why access is needed (the ticket or problem), 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
    /// How long, 1 to 480 minutes.
    #[schema(minimum = 1, maximum = 480)]
    pub minutes: i64,
    /// `config`: administration without personal data; `cases`: case details too.
    #[schema(min_items = 1)]
    pub scope: Vec<Scope>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantCreated {
    pub id: i64,
    /// RFC 3339.
    pub expires_at: String,
}

/// Validated grant input: (username, reason, minutes, scope).
pub fn check_grant(input: &GrantIn) -> ApiResult<(String, String, i64, Scope)> {
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > support::MAX_REASON {
        return Err(ApiError::invalid(
            "reason",
            format!(
                "Indique el motivo (hasta {} caracteres).",
                support::MAX_REASON
            ),
        ));
    }
    if !(1..=support::MAX_MINUTES).contains(&input.minutes) {
        return Err(ApiError::invalid(
            "minutes",
            format!("Indique entre 1 y {} minutos.", support::MAX_MINUTES),
        ));
    }
    let scope = if input.scope.contains(&Scope::Cases) {
        Scope::Cases
    } else if input.scope.contains(&Scope::Config) {
        Scope::Config
    } else {
        return Err(ApiError::invalid(
            "scope",
            "Indique el alcance: config o cases.",
        ));
    };
    Ok((
        input.username.trim().to_string(),
        reason.to_string(),
        input.minutes,
        scope,
    ))
}

/// Authorises a support user for a reason, a time and a scope (administrators).
#[utoipa::path(post, path = "/api/v1/admin/support-grants", tag = "admin", request_body = GrantIn,
    security(("bearer" = [])),
    responses((status = 201, body = GrantCreated), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no active support user by that name"),
              (status = 409, body = ErrorBody, description = "the user already has an active grant"),
              (status = 422, body = ErrorBody)))]
pub async fn create_grant(
    State(state): State<AppState>,
    user: StaffUser,
    ApiJson(input): ApiJson<GrantIn>,
) -> ApiResult<(StatusCode, Json<GrantCreated>)> {
    let (id, expires) = grant(&state, &user, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(GrantCreated {
            id,
            expires_at: chrono::DateTime::from_timestamp_millis(expires)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
        }),
    ))
}

/// Makes a grant for the API and the console: (id, expiry in ms).
pub async fn grant(state: &AppState, user: &StaffUser, input: &GrantIn) -> ApiResult<(i64, i64)> {
    require_admin(user)?;
    let (username, reason, minutes, scope) = check_grant(input)?;
    match support::grant(
        &state.store,
        &user.username,
        &username,
        &reason,
        minutes,
        scope,
    )
    .await?
    {
        Ok(out) => Ok(out),
        Err(GrantRefusal::NoSuchSupportUser) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No hay un usuario de soporte activo con ese nombre.",
        )
        .with_field("username")),
        Err(GrantRefusal::AlreadyActive) => Err(ApiError::conflict(
            "grant_active",
            "Ese usuario ya tiene una autorización vigente: revóquela antes de dar otra.",
        )),
    }
}

/// A real administrator: support users never manage grants, even under one.
fn require_admin(user: &StaffUser) -> ApiResult<()> {
    user.require(&[Role::Admin])?;
    if user.support.is_some() {
        return Err(ApiError::forbidden());
    }
    Ok(())
}

/// Support grants, newest first.
#[utoipa::path(get, path = "/api/v1/admin/support-grants", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<Grant>), (status = 403, body = ErrorBody)))]
pub async fn list_grants(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<Grant>>> {
    require_admin(&user)?;
    support::end_expired(&state.store, &state.config.public_base_url).await?;
    Ok(Json(support::list(&state.store, 200).await?))
}

/// One grant; once ended (revoked or expired) it carries its summary.
#[utoipa::path(get, path = "/api/v1/admin/support-grants/{id}", tag = "admin",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Grant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_grant(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Grant>> {
    require_admin(&user)?;
    support::get(&state.store, id, &state.config.public_base_url)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("support grant"))
}

/// The requests made under a grant so far (the live view), by time.
#[utoipa::path(get, path = "/api/v1/admin/support-grants/{id}/actions", tag = "admin",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<GrantAction>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn grant_actions(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<GrantAction>>> {
    require_admin(&user)?;
    if support::get(&state.store, id, &state.config.public_base_url)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("support grant"));
    }
    Ok(Json(support::actions(&state.store, id).await?))
}

/// Ends a grant at once, on every instance; its summary is kept and e-mailed to the
/// administrators.
#[utoipa::path(delete, path = "/api/v1/admin/support-grants/{id}", tag = "admin",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Grant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Grant>> {
    revoke(&state, &user, id).await.map(Json)
}

/// Revokes for the API and the console; an already ended grant is answered as it is.
pub async fn revoke(state: &AppState, user: &StaffUser, id: i64) -> ApiResult<Grant> {
    require_admin(user)?;
    let base = &state.config.public_base_url;
    if support::revoke(&state.store, id, &user.username, base)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("support grant"));
    }
    state.outbox_wake.notify_one();
    support::get(&state.store, id, base)
        .await?
        .ok_or_else(|| ApiError::not_found("support grant"))
}
