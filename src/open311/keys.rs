//! The keys apps file GeoReport requests with: issued and revoked by an administrator (API,
//! console, CLI). Only a key's SHA-256 is stored; the key itself is shown once, at issue.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::staff::auth::{Role, StaffUser};
use crate::store::{now_millis, sha256_hex, Store, StoreError};
use crate::{with_pool, write_pool};

/// A key as listed: never the key itself.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ApiKeyInfo {
    pub id: i64,
    /// Who uses it (the app or organisation), as the administrator named it.
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The administrator (username, or `cli`) who issued it.
    pub created_by: String,
    /// When it was revoked; a revoked key files nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just issued: the only time `api_key` is shown.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedKey {
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// The key the app sends as `api_key`. Shown once; only its digest is kept.
    pub api_key: String,
}

/// The (id, name) of a key that may file.
pub type KeyHolder = (i64, String);

fn digest(key: &str) -> String {
    sha256_hex(format!("open311:{}", key.trim()).as_bytes())
}

/// A name as an administrator typed it: 1 to 100 characters once trimmed.
pub fn parse_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("Escriba un nombre para la clave (1 a 100 caracteres), por ejemplo la aplicación que la usará.".into());
    }
    if name.chars().any(char::is_control) {
        return Err("El nombre no puede tener caracteres de control.".into());
    }
    Ok(name.to_string())
}

/// Who issues or revokes a key: a staff administrator, or an operator at the command line.
pub struct Issuer<'a> {
    pub user_id: Option<i64>,
    pub username: &'a str,
}

const AUDIT: &str =
    "INSERT INTO audit_log (at, user_id, username, action, detail) VALUES ($1, $2, $3, $4, $5)";

/// Issues a key named `name` (already parsed), with its audit row in the same transaction.
pub async fn issue(store: &Store, name: &str, by: &Issuer<'_>) -> Result<IssuedKey, StoreError> {
    // 244 random bits from two v4 UUIDs, as staff session tokens.
    let key = format!(
        "o311_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = now_millis();
    let (id,): (i64,) = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let row: (i64,) = sqlx::query_as("INSERT INTO open311_keys (name, key_hash, created_at, created_by) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(name).bind(digest(&key)).bind(now).bind(by.username)
            .fetch_one(&mut *tx).await?;
        sqlx::query(AUDIT).bind(now).bind(by.user_id).bind(by.username).bind("open311_clave_emitida")
            .bind(format!("clave {} ({name})", row.0)).execute(&mut *tx).await?;
        tx.commit().await?;
        row
    });
    Ok(IssuedKey {
        info: ApiKeyInfo {
            id,
            name: name.to_string(),
            created_at: crate::oirs::service::millis(now),
            created_by: by.username.to_string(),
            revoked_at: None,
        },
        api_key: key,
    })
}

pub async fn list(store: &Store) -> Result<Vec<ApiKeyInfo>, StoreError> {
    type Row = (i64, String, i64, String, Option<i64>);
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as("SELECT id, name, created_at, created_by, revoked_at FROM open311_keys ORDER BY id")
            .fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(id, name, created_at, created_by, revoked_at)| ApiKeyInfo {
                id,
                name,
                created_at: crate::oirs::service::millis(created_at),
                created_by,
                revoked_at: revoked_at.map(crate::oirs::service::millis),
            },
        )
        .collect())
}

/// Revokes a key at once, with its audit row; `None` when there is no such key. Revoking twice
/// keeps the first time.
pub async fn revoke(
    store: &Store,
    id: i64,
    by: &Issuer<'_>,
) -> Result<Option<ApiKeyInfo>, StoreError> {
    let now = now_millis();
    write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let done = sqlx::query("UPDATE open311_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() > 0 {
            sqlx::query(AUDIT).bind(now).bind(by.user_id).bind(by.username).bind("open311_clave_revocada")
                .bind(format!("clave {id}")).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(list(store).await?.into_iter().find(|k| k.id == id))
}

/// The holder of a key that may file now, or `None` (unknown or revoked).
pub async fn holder(store: &Store, key: &str) -> Result<Option<KeyHolder>, StoreError> {
    if key.trim().is_empty() {
        return Ok(None);
    }
    let row: Option<(i64, String)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT id, name FROM open311_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(digest(key)).fetch_optional(pool).await?
    });
    Ok(row)
}

// ---- administration API ----

fn issuer(user: &StaffUser) -> Issuer<'_> {
    Issuer {
        user_id: Some(user.id),
        username: &user.username,
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/open311/keys", get(list_keys).post(issue_key))
        .route("/api/v1/admin/open311/keys/{id}", delete(revoke_key))
}

/// Open311 keys, without the keys themselves.
#[utoipa::path(get, path = "/api/v1/admin/open311/keys", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<ApiKeyInfo>>> {
    user.require(&[Role::Admin])?;
    Ok(Json(list(&state.store).await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    /// Who will use the key (the app or organisation): 1 to 100 characters once trimmed, no
    /// control characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// Issues a key for an app to file GeoReport requests with. The answer is the only time the
/// key is shown.
#[utoipa::path(post, path = "/api/v1/admin/open311/keys", tag = "admin", request_body = KeyIn, operation_id = "issue_open311_key",
    security(("bearer" = [])),
    responses((status = 201, body = IssuedKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn issue_key(
    State(state): State<AppState>,
    user: StaffUser,
    ApiJson(input): ApiJson<KeyIn>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    user.require(&[Role::Admin])?;
    let name = parse_name(&input.name).map_err(|m| ApiError::invalid("name", m))?;
    let issued = issue(&state.store, &name, &issuer(&user)).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revokes a key: requests with it are refused from now on.
#[utoipa::path(delete, path = "/api/v1/admin/open311/keys/{id}", tag = "admin",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = ApiKeyInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ApiKeyInfo>> {
    user.require(&[Role::Admin])?;
    let info = revoke(&state.store, id, &issuer(&user))
        .await?
        .ok_or_else(|| ApiError::not_found("open311 key"))?;
    Ok(Json(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_keys_digested() {
        assert_eq!(parse_name("  App Vecinal "), Ok("App Vecinal".to_string()));
        assert!(parse_name("  ").is_err());
        assert!(parse_name(&"x".repeat(101)).is_err());
        assert!(parse_name("a\u{7}b").is_err());
        assert_eq!(digest(" abc "), digest("abc"));
        assert_ne!(digest("abc"), digest("abd"));
        assert_eq!(digest("abc").len(), 64);
    }
}
