//! Reply templates: the paragraphs staff would otherwise retype, for one department or for
//! all, with placeholders filled from the case (`{{folio}}`, `{{nombre}}`,
//! `{{fecha_ingreso}}`, `{{unidad}}`). Administrators manage them; staff pick one on the
//! case page and edit the text before sending.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Role, StaffUser};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::oirs::service;
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["folio", "nombre", "fecha_ingreso", "unidad"];

/// The first placeholder in `body` that is not one of [`PLACEHOLDERS`], or an unclosed `{{`.
pub fn unknown_placeholder(body: &str) -> Option<String> {
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Some(format!(
                "{{{{{}",
                after.chars().take(20).collect::<String>()
            ));
        };
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Some(name.to_string());
        }
        rest = &after[end + 2..];
    }
    None
}

/// What the placeholders stand for in one case.
pub struct Values<'a> {
    pub folio: &'a str,
    pub nombre: &'a str,
    /// The reception date as residents read it (dd-mm-aaaa).
    pub fecha_ingreso: &'a str,
    /// The department's name.
    pub unidad: &'a str,
}

/// The body with every placeholder replaced (spaces inside the braces allowed).
pub fn render(body: &str, v: &Values<'_>) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = match after[..end].trim() {
            "folio" => v.folio,
            "nombre" => v.nombre,
            "fecha_ingreso" => v.fecha_ingreso,
            "unidad" => v.unidad,
            _ => &after[..end],
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub id: i64,
    /// The department it belongs to; `null` for every department.
    pub department: Option<String>,
    pub title: String,
    pub body: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateIn {
    /// A department id; absent or `null` for a template every department may use.
    #[serde(default)]
    pub department: Option<String>,
    /// 1 to 120 characters.
    #[schema(min_length = 1, max_length = 120)]
    pub title: String,
    /// 1 to 10,000 characters; may use `{{folio}}`, `{{nombre}}`, `{{fecha_ingreso}}` and
    /// `{{unidad}}`.
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
}

/// Checks a template as sent; 422 naming the field (an unknown placeholder by its name).
pub async fn validate(store: &Store, t: &TemplateIn) -> Result<TemplateIn, ApiError> {
    let title = t.title.trim();
    if title.is_empty() || t.title.chars().count() > 120 {
        return Err(ApiError::invalid(
            "title",
            "Escriba un título de 1 a 120 caracteres.",
        ));
    }
    let body = t.body.trim();
    if body.is_empty() || t.body.chars().count() > 10_000 {
        return Err(ApiError::invalid(
            "body",
            "Escriba el texto de la plantilla (hasta 10.000 caracteres).",
        ));
    }
    if let Some(name) = unknown_placeholder(body) {
        return Err(ApiError::invalid(
            "body",
            format!(
                "La plantilla usa {{{{{name}}}}}, que no existe: use {{{{folio}}}}, {{{{nombre}}}}, {{{{fecha_ingreso}}}} o {{{{unidad}}}}."
            ),
        ));
    }
    let department = t
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if let Some(d) = department {
        let known = service::departments(store).await?;
        if !known.iter().any(|k| k.id == d) {
            return Err(ApiError::invalid(
                "department",
                format!("El departamento {d:?} no existe."),
            ));
        }
    }
    Ok(TemplateIn {
        department: department.map(String::from),
        title: title.to_string(),
        body: body.to_string(),
    })
}

type Row = (i64, Option<String>, String, String);

fn from_row((id, department, title, body): Row) -> Template {
    Template {
        id,
        department,
        title,
        body,
    }
}

/// Every template, or those a department may use (its own and the global ones), by title.
pub async fn list(store: &Store, department: Option<&str>) -> Result<Vec<Template>, StoreError> {
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT id, department_id, title, body FROM reply_templates \
             WHERE $1 IS NULL OR department_id IS NULL OR department_id = $1 ORDER BY title, id",
        )
        .bind(department)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(from_row).collect())
}

async fn insert(store: &Store, t: &TemplateIn) -> Result<i64, StoreError> {
    let now = now_millis();
    let (id,): (i64,) = write_pool!(store, pool => {
        sqlx::query_as(
            "INSERT INTO reply_templates (department_id, title, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(&t.department)
        .bind(&t.title)
        .bind(&t.body)
        .bind(now)
        .fetch_one(pool)
        .await?
    });
    Ok(id)
}

async fn update(store: &Store, id: i64, t: &TemplateIn) -> Result<bool, StoreError> {
    let n = write_pool!(store, pool => {
        sqlx::query(
            "UPDATE reply_templates SET department_id = $1, title = $2, body = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&t.department)
        .bind(&t.title)
        .bind(&t.body)
        .bind(now_millis())
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n > 0)
}

async fn remove(store: &Store, id: i64) -> Result<bool, StoreError> {
    let n = write_pool!(store, pool => {
        sqlx::query("DELETE FROM reply_templates WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n > 0)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/templates", get(list_templates).post(create))
        .route("/api/v1/admin/templates/{id}", put(replace).delete(delete))
}

async fn audit(state: &AppState, user: &StaffUser, action: &str, id: i64) -> ApiResult<()> {
    super::admin::audit_admin(state, user, action, &format!("plantilla {id}")).await
}

/// Reply templates (administrators).
#[utoipa::path(get, path = "/api/v1/admin/templates", tag = "admin", security(("bearer" = [])),
    operation_id = "list_templates",
    responses((status = 200, body = Vec<Template>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_templates(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<Template>>> {
    user.require(&[Role::Admin])?;
    Ok(Json(list(&state.store, None).await?))
}

/// Adds a reply template, for one department or (without `department`) for all.
#[utoipa::path(post, path = "/api/v1/admin/templates", tag = "admin", request_body = TemplateIn,
    security(("bearer" = [])), operation_id = "create_template",
    responses((status = 201, body = Template), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: StaffUser,
    ApiJson(t): ApiJson<TemplateIn>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    user.require(&[Role::Admin])?;
    let t = validate(&state.store, &t).await?;
    let id = insert(&state.store, &t).await?;
    audit(&state, &user, "plantilla_crear", id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Template {
            id,
            department: t.department,
            title: t.title,
            body: t.body,
        }),
    ))
}

/// Replaces a reply template.
#[utoipa::path(put, path = "/api/v1/admin/templates/{id}", tag = "admin", request_body = TemplateIn,
    params(("id" = i64, Path)), security(("bearer" = [])), operation_id = "update_template",
    responses((status = 200, body = Template), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(t): ApiJson<TemplateIn>,
) -> ApiResult<Json<Template>> {
    user.require(&[Role::Admin])?;
    let t = validate(&state.store, &t).await?;
    if !update(&state.store, id, &t).await? {
        return Err(ApiError::not_found("template"));
    }
    audit(&state, &user, "plantilla_editar", id).await?;
    Ok(Json(Template {
        id,
        department: t.department,
        title: t.title,
        body: t.body,
    }))
}

/// Deletes a reply template.
#[utoipa::path(delete, path = "/api/v1/admin/templates/{id}", tag = "admin",
    params(("id" = i64, Path)), security(("bearer" = [])), operation_id = "delete_template",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    user.require(&[Role::Admin])?;
    if !remove(&state.store, id).await? {
        return Err(ApiError::not_found("template"));
    }
    audit(&state, &user, "plantilla_borrar", id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_and_filled() {
        assert_eq!(
            unknown_placeholder("Hola {{nombre}}, folio {{ folio }}"),
            None
        );
        assert_eq!(
            unknown_placeholder("Hola {{nombre}} de {{comuna}}").as_deref(),
            Some("comuna")
        );
        assert!(unknown_placeholder("Hola {{nombre").is_some());
        let v = Values {
            folio: "OIRS-2026-000001",
            nombre: "Juana Pérez",
            fecha_ingreso: "03-11-2026",
            unidad: "Aseo y ornato",
        };
        assert_eq!(
            render(
                "Estimada {{nombre}}: su caso {{ folio }} del {{fecha_ingreso}} lo atiende {{unidad}}.",
                &v
            ),
            "Estimada Juana Pérez: su caso OIRS-2026-000001 del 03-11-2026 lo atiende Aseo y ornato."
        );
        assert_eq!(render("Sin marcas", &v), "Sin marcas");
    }
}
