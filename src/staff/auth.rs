//! Staff authentication: argon2id password hashes, opaque session tokens (stored hashed)
//! usable as a cookie or as `Authorization: Bearer`, and role checks.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::support::{self, SupportAccess};
use crate::app::AppState;
use crate::http::ApiError;
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

pub const SESSION_COOKIE: &str = "ventanilla_session";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Coordinator,
    Department,
    Analyst,
    /// Vendor or IT support: nothing outside an active support grant.
    Support,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "coordinator" => Some(Self::Coordinator),
            "department" => Some(Self::Department),
            "analyst" => Some(Self::Analyst),
            "support" => Some(Self::Support),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Coordinator => "coordinator",
            Self::Department => "department",
            Self::Analyst => "analyst",
            Self::Support => "support",
        }
    }
}

/// The signed-in staff member of a request. A `support` user acting under an active grant
/// has `role` Admin and `support` set: the grant's scope (checked centrally in
/// [`session_user`] against the request's path) is what limits it, so handlers need not
/// know about support access.
#[derive(Clone, Debug)]
pub struct StaffUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub department: Option<String>,
    /// The grant a support user acts under.
    pub support: Option<SupportAccess>,
    /// A session opened by a password alone for a user who must first enrol a second factor.
    pub enrol_only: bool,
}

impl StaffUser {
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

/// Hashes a password with argon2id. CPU-heavy: call from `spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Verifies a password against a stored hash. CPU-heavy: call from `spawn_blocking`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Token as handed to the client, and its digest as stored.
pub fn new_token() -> (String, String) {
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = token_digest(&token);
    (token, digest)
}

pub fn token_digest(token: &str) -> String {
    crate::store::sha256_hex(token.as_bytes())
}

pub async fn add_user(
    store: &Store,
    username: &str,
    password_hash: &str,
    role: Role,
    department: Option<&str>,
) -> Result<i64, StoreError> {
    let id: (i64,) = write_pool!(store, pool => {
        sqlx::query_as(
            "INSERT INTO users (username, password_hash, role, department_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(department)
        .bind(now_millis())
        .fetch_one(pool)
        .await?
    });
    Ok(id.0)
}

type UserRow = (i64, String, String, String, Option<String>);

pub async fn find_user(
    store: &Store,
    username: &str,
) -> Result<Option<(StaffUser, String)>, StoreError> {
    let row: Option<UserRow> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, username, password_hash, role, department_id FROM users \
             WHERE username = $1 AND active",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.and_then(|(id, username, hash, role, department)| {
        Some((
            StaffUser {
                id,
                username,
                role: Role::parse(&role)?,
                department,
                support: None,
                enrol_only: false,
            },
            hash,
        ))
    }))
}

pub async fn create_session(
    store: &Store,
    user_id: i64,
    ttl_ms: i64,
) -> Result<String, StoreError> {
    create_session_for(store, user_id, ttl_ms, false).await
}

/// Opens a session; `enrol_only` limits it to enrolling a second factor.
pub async fn create_session_for(
    store: &Store,
    user_id: i64,
    ttl_ms: i64,
    enrol_only: bool,
) -> Result<String, StoreError> {
    let (token, digest) = new_token();
    let now = now_millis();
    let purpose = if enrol_only { "enrol" } else { "full" };
    write_pool!(store, pool => {
        sqlx::query("INSERT INTO staff_sessions (token_hash, user_id, created_at, expires_at, purpose) VALUES ($1, $2, $3, $4, $5)")
            .bind(&digest)
            .bind(user_id)
            .bind(now)
            .bind(now + ttl_ms)
            .bind(purpose)
            .execute(pool)
            .await?;
    });
    Ok(token)
}

/// A login waiting for its second-factor code (the console's second step): a session row
/// with purpose 'code', which [`user_for_token`] never accepts.
pub async fn create_pending_login(
    store: &Store,
    user_id: i64,
    ttl_ms: i64,
) -> Result<String, StoreError> {
    let (token, digest) = new_token();
    let now = now_millis();
    write_pool!(store, pool => {
        sqlx::query("INSERT INTO staff_sessions (token_hash, user_id, created_at, expires_at, purpose) VALUES ($1, $2, $3, $4, 'code')")
            .bind(&digest)
            .bind(user_id)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(pool)
            .await?;
    });
    Ok(token)
}

/// The user of a pending login, while it lasts.
pub async fn pending_login_user(
    store: &Store,
    token: &str,
) -> Result<Option<StaffUser>, StoreError> {
    let row: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT u.username FROM staff_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active AND s.purpose = 'code'",
        )
        .bind(token_digest(token))
        .bind(now_millis())
        .fetch_optional(pool)
        .await?
    });
    match row {
        Some((username,)) => Ok(find_user(store, &username).await?.map(|(u, _)| u)),
        None => Ok(None),
    }
}

/// Lifts an enrolment-only session to a full one (the second factor was just confirmed).
pub async fn complete_session(store: &Store, token: &str) -> Result<(), StoreError> {
    write_pool!(store, pool => {
        sqlx::query("UPDATE staff_sessions SET purpose = 'full' WHERE token_hash = $1")
            .bind(token_digest(token))
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn user_for_token(store: &Store, token: &str) -> Result<Option<StaffUser>, StoreError> {
    let digest = token_digest(token);
    let row: Option<(i64, String, String, Option<String>, String)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT u.id, u.username, u.role, u.department_id, s.purpose FROM staff_sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active AND s.purpose <> 'code'",
        )
        .bind(&digest)
        .bind(now_millis())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.and_then(|(id, username, role, department, purpose)| {
        Some(StaffUser {
            id,
            username,
            role: Role::parse(&role)?,
            department,
            support: None,
            enrol_only: purpose == "enrol",
        })
    }))
}

/// Where an enrolment-only session may go: the second factor's pages and logout.
pub fn enrolment_path(path: &str) -> bool {
    path.starts_with("/api/v1/auth/2fa/")
        || matches!(path, "/staff/2fa" | "/staff/salir" | "/api/v1/auth/logout")
}

/// Why a valid session may not make this request.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The session may only enrol a second factor.
    EnrolmentRequired,
    /// A support user without an active grant, or outside its scope.
    NoSupportGrant,
    OutOfScope,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::EnrolmentRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "enrolment_required",
                "debe activar el segundo factor (código de verificación) antes de continuar",
            ),
            Refusal::NoSupportGrant => ApiError::new(
                StatusCode::FORBIDDEN,
                "no_support_grant",
                "el acceso de soporte requiere una autorización vigente de un administrador",
            ),
            Refusal::OutOfScope => ApiError::new(
                StatusCode::FORBIDDEN,
                "outside_support_scope",
                "la autorización de soporte vigente no alcanza a esta sección",
            ),
        }
    }
}

/// The staff member of a session token, for a request to `path`: every API and console
/// request goes through here. A support user is let through only under an active grant
/// whose scope covers the request, which is then audited with the grant's id.
pub async fn session_user(
    store: &Store,
    token: &str,
    method: &Method,
    path: &str,
) -> Result<Option<Result<StaffUser, Refusal>>, StoreError> {
    let Some(mut user) = user_for_token(store, token).await? else {
        return Ok(None);
    };
    if user.enrol_only && !enrolment_path(path) {
        return Ok(Some(Err(Refusal::EnrolmentRequired)));
    }
    // Logging out needs no grant.
    let leaving = matches!(path, "/staff/salir" | "/api/v1/auth/logout");
    if user.role == Role::Support && !user.enrol_only && !leaving {
        let Some(grant) = support::active(store, user.id).await? else {
            return Ok(Some(Err(Refusal::NoSupportGrant)));
        };
        if !support::allows(grant.scope, method, path) {
            return Ok(Some(Err(Refusal::OutOfScope)));
        }
        support::audit_request(store, user.id, &user.username, grant.grant_id, method, path)
            .await?;
        user.role = Role::Admin;
        user.support = Some(grant);
    }
    Ok(Some(Ok(user)))
}

/// Ends a session (logout).
pub async fn end_session(store: &Store, token: &str) -> Result<(), StoreError> {
    let digest = token_digest(token);
    write_pool!(store, pool => {
        sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
            .bind(&digest)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Forgets expired sessions; returns how many.
pub async fn purge_sessions(store: &Store) -> Result<u64, StoreError> {
    let n = write_pool!(store, pool => {
        sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
            .bind(now_millis())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n)
}

/// The anti-CSRF token of a cookie session: derived from the session token, which only the
/// browser holding the (HttpOnly) cookie has, so another site cannot know it.
pub fn csrf_token(session_token: &str) -> String {
    crate::store::sha256_hex(format!("csrf:{session_token}").as_bytes())[..40].to_string()
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

impl FromRequestParts<AppState> for StaffUser {
    type Rejection = ApiError;

    /// A bearer token, or the session cookie. With the cookie, a request that changes
    /// something must also carry the session's anti-CSRF token in `X-CSRF-Token`.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = match bearer(&parts.headers) {
            Some(t) => t,
            None => {
                let t = session_cookie(&parts.headers).ok_or_else(ApiError::unauthorized)?;
                if !parts.method.is_safe() {
                    let sent = parts
                        .headers
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if !same_token(sent, &csrf_token(&t)) {
                        return Err(ApiError::new(
                            axum::http::StatusCode::FORBIDDEN,
                            "csrf",
                            "missing or wrong X-CSRF-Token for a cookie session",
                        ));
                    }
                }
                t
            }
        };
        match session_user(&state.store, &token, &parts.method, parts.uri.path()).await? {
            Some(Ok(user)) => Ok(user),
            Some(Err(refusal)) => Err(refusal.into()),
            None => Err(ApiError::unauthorized()),
        }
    }
}
