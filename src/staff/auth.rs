//! Staff authentication: argon2id password hashes, opaque session tokens (stored hashed)
//! usable as a cookie or as `Authorization: Bearer`, and role checks.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "coordinator" => Some(Self::Coordinator),
            "department" => Some(Self::Department),
            "analyst" => Some(Self::Analyst),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Coordinator => "coordinator",
            Self::Department => "department",
            Self::Analyst => "analyst",
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StaffUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub department: Option<String>,
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
    let (token, digest) = new_token();
    let now = now_millis();
    write_pool!(store, pool => {
        sqlx::query("INSERT INTO staff_sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&digest)
            .bind(user_id)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(pool)
            .await?;
    });
    Ok(token)
}

pub async fn user_for_token(store: &Store, token: &str) -> Result<Option<StaffUser>, StoreError> {
    let digest = token_digest(token);
    let row: Option<(i64, String, String, Option<String>)> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT u.id, u.username, u.role, u.department_id FROM staff_sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active",
        )
        .bind(&digest)
        .bind(now_millis())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.and_then(|(id, username, role, department)| {
        Some(StaffUser {
            id,
            username,
            role: Role::parse(&role)?,
            department,
        })
    }))
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
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
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
        user_for_token(&state.store, &token)
            .await?
            .ok_or_else(ApiError::unauthorized)
    }
}
