//! Staff login.

use axum::extract::State;
use axum::http::header;
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{self, SESSION_COOKIE};
use super::second_factor::{self, Enrolment};
use crate::app::AppState;
use crate::config::Config;
use crate::http::error::ErrorBody;
use crate::http::throttle::{ClientAddr, Throttle};
use crate::http::{ApiError, ApiJson, ApiResult, PublicLimit};

/// The error code of a password login refused because the role must use single sign-on.
pub const SSO_REQUIRED: &str = "sso_required";
pub const SESSION_TTL_MS: i64 = 8 * 60 * 60 * 1000;
/// Failed logins: five free per client and username, then waits from 2 s doubling up to
/// 15 minutes; a client failing 20 times on any usernames waits for all of them. A stranger's
/// failures never keep the user out.
pub const LOGIN: Throttle = Throttle {
    scope: "login",
    window_ms: 15 * 60 * 1000,
    free: 5,
    base_wait_ms: 2_000,
    per_client: 20,
};

pub fn router(limit: PublicLimit) -> Router<AppState> {
    limit(Router::new().route("/api/v1/auth/login", post(login)))
        .route("/api/v1/auth/logout", post(logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    pub username: String,
    pub password: String,
    /// The second factor: a 6-digit code from the authenticator app, or an unused recovery
    /// code. Required once the user has enrolled one (answer 401 `totp_required` without it).
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginOut {
    pub token: String,
    /// For cookie sessions: send it as `X-CSRF-Token` with every POST/PUT/DELETE.
    pub csrf_token: String,
    pub role: auth::Role,
    pub department: Option<String>,
    /// The user's role requires a second factor they have not enrolled yet: this session can
    /// only enrol one (`/api/v1/auth/2fa/start`, then `/confirm`).
    pub enrolment_required: bool,
}

/// A successful login: the user, the session token, and whether the session is limited to
/// enrolling a second factor.
pub struct LoggedIn {
    pub user: auth::StaffUser,
    pub token: String,
    pub enrolment_required: bool,
}

/// How the second factor is asked for when the password was right and no code came.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CodeStep {
    /// Answer 401 `totp_required` (the API: the client sends everything again with the code).
    Refuse,
    /// Hold the login for a few minutes under a pending token (the console's second step).
    Hold,
}

/// The password was right; the code is still to come (console). The token names the
/// pending login and opens nothing else.
pub struct Pending(pub String);

pub const PENDING_TTL_MS: i64 = 5 * 60 * 1000;

/// Checks a username, password and, when the user has one, second factor (with the failure
/// backoff: wrong codes count as wrong passwords) and opens a session. Shared by the API
/// login and the console's login form.
pub async fn authenticate(
    state: &AppState,
    ClientAddr(client): ClientAddr,
    username: &str,
    password: String,
    code: Option<&str>,
    step: CodeStep,
) -> ApiResult<Result<LoggedIn, Pending>> {
    let username = username.trim();
    if let Some(secs) = LOGIN.retry_after(&state.store, client, username).await? {
        return Err(ApiError::too_many_requests(secs));
    }
    let found = auth::find_user(&state.store, username).await?;
    // Verify against a dummy hash when the user does not exist, so timing does not reveal it.
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, state.dummy_hash.clone()),
    };
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let user = match (user, ok) {
        (Some(u), true) => u,
        _ => {
            LOGIN.failed(&state.store, client, username).await?;
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "usuario o contraseña incorrectos",
            ));
        }
    };
    if crate::signin::staff::password_refused(&state.config, user.role) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            SSO_REQUIRED,
            "su perfil ingresa solo con la cuenta municipal (ingreso único)",
        ));
    }
    let enrolment = second_factor::enrolment(&state.store, user.id).await?;
    let mut enrolment_required = false;
    if enrolment == Enrolment::Confirmed {
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            if step == CodeStep::Hold {
                let token =
                    auth::create_pending_login(&state.store, user.id, PENDING_TTL_MS).await?;
                return Ok(Err(Pending(token)));
            }
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "totp_required",
                "ingrese el código de verificación de su aplicación autenticadora",
            )
            .with_field("code"));
        };
        check_code(state, client, username, user.id, code).await?;
    } else if state.config.requires_2fa(user.role) {
        enrolment_required = true;
    }
    LOGIN.succeeded(&state.store, client, username).await?;
    let token =
        auth::create_session_for(&state.store, user.id, SESSION_TTL_MS, enrolment_required).await?;
    Ok(Ok(LoggedIn {
        user,
        token,
        enrolment_required,
    }))
}

/// Checks a second-factor code; a wrong one counts as a failed login for the client and
/// username (the same throttle as passwords).
async fn check_code(
    state: &AppState,
    client: std::net::IpAddr,
    username: &str,
    user_id: i64,
    code: &str,
) -> ApiResult<()> {
    if second_factor::verify(&state.store, user_id, code).await? {
        return Ok(());
    }
    LOGIN.failed(&state.store, client, username).await?;
    Err(ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "totp_invalid",
        "el código de verificación no es válido o ya fue usado",
    )
    .with_field("code"))
}

/// The console's second step: the code for a pending login. `Ok(None)` when the pending
/// login is unknown or expired (start again).
pub async fn complete_login(
    state: &AppState,
    ClientAddr(client): ClientAddr,
    pending: &str,
    code: &str,
) -> ApiResult<Option<LoggedIn>> {
    let Some(user) = auth::pending_login_user(&state.store, pending).await? else {
        return Ok(None);
    };
    if let Some(secs) = LOGIN
        .retry_after(&state.store, client, &user.username)
        .await?
    {
        return Err(ApiError::too_many_requests(secs));
    }
    check_code(state, client, &user.username, user.id, code).await?;
    LOGIN
        .succeeded(&state.store, client, &user.username)
        .await?;
    auth::end_session(&state.store, pending).await?;
    let token = auth::create_session(&state.store, user.id, SESSION_TTL_MS).await?;
    Ok(Some(LoggedIn {
        user,
        token,
        enrolment_required: false,
    }))
}

/// The `Set-Cookie` value for a session (HttpOnly, SameSite=Strict), or one that removes it.
/// It is `Secure` when residents and staff reach the service over https (`public_base_url`),
/// so the browser never sends it in clear; a plain-http deployment (a laptop, the tests)
/// would otherwise lose the session.
pub fn session_cookie(config: &Config, token: Option<&str>) -> String {
    let https = config
        .public_base_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let secure = if https { "; Secure" } else { "" };
    match token {
        Some(t) => format!(
            "{SESSION_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            SESSION_TTL_MS / 1000
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}

/// Exchanges a username and password for a session (cookie and bearer token). A browser
/// using the cookie sends `csrf_token` back in `X-CSRF-Token` on every change.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "staff", request_body = LoginIn,
    responses((status = 200, body = LoginOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(input): ApiJson<LoginIn>,
) -> ApiResult<impl IntoResponse> {
    let LoggedIn {
        user,
        token,
        enrolment_required,
    } = authenticate(
        &state,
        client,
        &input.username,
        input.password,
        input.code.as_deref(),
        CodeStep::Refuse,
    )
    .await?
    .map_err(|_| ApiError::internal("a pending login on the API"))?;
    Ok((
        AppendHeaders([(
            header::SET_COOKIE,
            session_cookie(&state.config, Some(&token)),
        )]),
        Json(LoginOut {
            csrf_token: auth::csrf_token(&token),
            token,
            role: user.role,
            department: user.department,
            enrolment_required,
        }),
    ))
}

/// Ends the session of the request (bearer token or cookie) and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "staff", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    _user: auth::StaffUser,
    headers: axum::http::HeaderMap,
) -> ApiResult<impl IntoResponse> {
    if let Some(t) = auth::bearer(&headers).or_else(|| auth::session_cookie(&headers)) {
        auth::end_session(&state.store, &t).await?;
    }
    Ok((
        axum::http::StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, session_cookie(&state.config, None))]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_secure_behind_https() {
        let mut config = Config {
            public_base_url: "https://oirs.muni.example".into(),
            ..Config::default()
        };
        for cookie in [
            session_cookie(&config, Some("t0ken")),
            session_cookie(&config, None),
        ] {
            assert!(cookie.ends_with("; Secure"), "{cookie}");
            assert!(cookie.contains("HttpOnly; SameSite=Strict"), "{cookie}");
        }
        config.public_base_url = "http://127.0.0.1:8080".into();
        for cookie in [
            session_cookie(&config, Some("t0ken")),
            session_cookie(&config, None),
        ] {
            assert!(!cookie.contains("Secure"), "{cookie}");
        }
    }
}
