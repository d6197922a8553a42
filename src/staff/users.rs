//! Staff user administration (admins only): list, create, change role, department, active
//! flag or password. Deactivating a user or setting a new password ends their sessions (on a
//! change of one's own password, all but the one making it).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::audit_admin;
use super::auth::{self, Role, StaffUser};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::oirs::service;
use crate::store::{Store, StoreError};
use crate::{with_pool, write_pool};

pub const MIN_PASSWORD_CHARS: usize = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/users", get(list).post(create))
        .route("/api/v1/admin/users/{username}", put(update))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    pub department: Option<String>,
    pub active: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Where notices for this user go (administrators: support summaries).
    pub email: Option<String>,
}

/// Staff users, or only the one named `username`.
async fn users(store: &Store, username: Option<&str>) -> Result<Vec<UserInfo>, StoreError> {
    type Row = (String, String, Option<String>, bool, i64, Option<String>);
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT username, role, department_id, active, created_at, email FROM users \
             WHERE ($1 IS NULL OR username = $1) ORDER BY username",
        )
        .bind(username)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(username, role, department, active, created_at, email)| {
            Some(UserInfo {
                username,
                role: Role::parse(&role)?,
                department,
                active,
                created_at,
                email,
            })
        })
        .collect())
}

/// Sets a user's e-mail address (the CLI's `user add --email`).
pub async fn set_email(store: &Store, user_id: i64, email: &str) -> Result<(), StoreError> {
    write_pool!(store, pool => {
        sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
            .bind(email)
            .bind(user_id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn list_users(store: &Store) -> Result<Vec<UserInfo>, StoreError> {
    users(store, None).await
}

async fn find_user(store: &Store, username: &str) -> ApiResult<UserInfo> {
    users(store, Some(username))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("user"))
}

/// What is wrong with a user's username, role/department pair or password, as (field, message).
/// Shared by the API, the console and `ventanilla user add`.
pub fn check_user(
    username: &str,
    role: Role,
    department: Option<&str>,
    password: Option<&str>,
) -> Result<(), (&'static str, String)> {
    let ok_name = (2..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok_name {
        return Err((
            "username",
            "2 a 64 caracteres: minúsculas, dígitos, punto, guion o guion bajo".into(),
        ));
    }
    match (role, department) {
        (Role::Department, None) => {
            return Err((
                "department",
                "el rol department requiere un departamento".into(),
            ))
        }
        (Role::Department, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return Err((
                "department",
                "solo el rol department lleva departamento".into(),
            ))
        }
    }
    if let Some(p) = password {
        if p.chars().count() < MIN_PASSWORD_CHARS {
            return Err((
                "password",
                format!("la contraseña debe tener al menos {MIN_PASSWORD_CHARS} caracteres"),
            ));
        }
    }
    Ok(())
}

async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn known_department(state: &AppState, department: Option<&str>) -> ApiResult<()> {
    if let Some(d) = department {
        if !service::departments(&state.store)
            .await?
            .iter()
            .any(|x| x.id == d && x.active)
        {
            return Err(ApiError::invalid(
                "department",
                format!("departamento desconocido: {d}"),
            ));
        }
    }
    Ok(())
}

fn invalid((field, message): (&str, String)) -> ApiError {
    ApiError::invalid(field, message)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// 2 to 64 characters: lower-case letters, digits, `.`, `_` or `-`.
    pub username: String,
    #[schema(min_length = 10)]
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub department: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default)]
    pub role: Option<Role>,
    /// The department (department role only); an empty string clears it.
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    /// A new password; ends the user's sessions.
    #[serde(default)]
    #[schema(min_length = 10)]
    pub password: Option<String>,
    /// An e-mail address (support summaries reach administrators there); empty clears it.
    #[serde(default)]
    pub email: Option<String>,
}

/// An optional e-mail address as given: empty means none; otherwise it must look like one.
pub fn check_email(email: &str) -> Result<Option<String>, ApiError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c == ',');
    if ok {
        Ok(Some(email.to_string()))
    } else {
        Err(ApiError::invalid("email", "correo electrónico no válido"))
    }
}

/// Staff users, without password hashes.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), operation_id = "list_users",
    responses((status = 200, body = Vec<UserInfo>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<UserInfo>>> {
    user.require(&[Role::Admin])?;
    Ok(Json(list_users(&state.store).await?))
}

/// Creates a staff user (password hashed with argon2id).
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = UserIn, operation_id = "create_user",
    security(("bearer" = [])),
    responses((status = 201, body = UserInfo), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: StaffUser,
    ApiJson(input): ApiJson<UserIn>,
) -> ApiResult<(StatusCode, Json<UserInfo>)> {
    user.require(&[Role::Admin])?;
    let username = input.username.trim().to_string();
    let department = input.department.as_deref().filter(|d| !d.is_empty());
    check_user(&username, input.role, department, Some(&input.password)).map_err(invalid)?;
    known_department(&state, department).await?;
    let hashed = hash(input.password).await?;
    match auth::add_user(&state.store, &username, &hashed, input.role, department).await {
        Ok(_) => {}
        Err(e) if e.violates(&crate::store::USERS_USERNAME) => {
            return Err(ApiError::conflict(
                "user_exists",
                format!("ya existe el usuario {username}"),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    audit_admin(&state, &user, "crear_usuario", &username).await?;
    let created = find_user(&state.store, &username).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Changes a user's role, department, active flag or password.
#[utoipa::path(put, path = "/api/v1/admin/users/{username}", tag = "admin", request_body = UserUpdate, operation_id = "update_user",
    params(("username" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = UserInfo), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "an administrator may not demote or deactivate themself"),
              (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: StaffUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(change): ApiJson<UserUpdate>,
) -> ApiResult<Json<UserInfo>> {
    user.require(&[Role::Admin])?;
    let current = find_user(&state.store, &username).await?;
    let role = change.role.unwrap_or(current.role);
    let department = match &change.department {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(d.clone()),
        None if role == Role::Department => current.department.clone(),
        None => None,
    };
    let active = change.active.unwrap_or(current.active);
    let email = match &change.email {
        Some(e) => check_email(e)?,
        None => current.email.clone(),
    };
    check_user(
        &username,
        role,
        department.as_deref(),
        change.password.as_deref(),
    )
    .map_err(invalid)?;
    known_department(&state, department.as_deref()).await?;
    if username == user.username && (!active || role != Role::Admin) {
        return Err(ApiError::conflict(
            "own_account",
            "no puede quitarse a sí mismo el rol de administrador ni desactivarse",
        ));
    }
    let hashed = match change.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let end_sessions = !active || hashed.is_some();
    // Changing one's own password ends one's other sessions (a thief's, say), not the one
    // making the change.
    let keep = (username == user.username)
        .then(|| auth::bearer(&headers).or_else(|| auth::session_cookie(&headers)))
        .flatten()
        .map(|token| auth::token_digest(&token))
        .unwrap_or_default();
    {
        write_pool!(&state.store, pool => {
            let mut tx = pool.begin().await?;
            let (id,): (i64,) = sqlx::query_as(
                "UPDATE users SET role = $1, department_id = $2, active = $3, \
                 password_hash = COALESCE($4, password_hash), email = $6 WHERE username = $5 RETURNING id",
            )
            .bind(role.as_str())
            .bind(&department)
            .bind(active)
            .bind(&hashed)
            .bind(&username)
            .bind(&email)
            .fetch_one(&mut *tx)
            .await?;
            if end_sessions {
                sqlx::query("DELETE FROM staff_sessions WHERE user_id = $1 AND token_hash <> $2")
                    .bind(id)
                    .bind(&keep)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
    }
    let what = if hashed.is_some() {
        "cambiar_clave"
    } else {
        "modificar_usuario"
    };
    audit_admin(&state, &user, what, &username).await?;
    Ok(Json(UserInfo {
        username,
        role,
        department,
        active,
        created_at: current.created_at,
        email,
    }))
}
