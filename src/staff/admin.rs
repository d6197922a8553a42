//! Administration: departments, case types, routing rules, holidays, the outbox and the
//! audit log. Admins only (the coordinator may read the outbox state).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Role, StaffUser};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::oirs::calendar::Clock;
use crate::oirs::service::{self, CaseType, Department, Holiday, RoutingRule};
use crate::outbox::{self, OutboxMessage};
use crate::store::now_millis;
use crate::{with_pool, write_pool};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/departments", get(list_departments))
        .route("/api/v1/admin/departments/{id}", put(put_department))
        .route("/api/v1/admin/case-types", get(list_case_types))
        .route("/api/v1/admin/case-types/{id}", put(put_case_type))
        .route("/api/v1/admin/routing-rules", get(list_rules).put(put_rule))
        .route(
            "/api/v1/admin/routing-rules/{case_type}/{topic}",
            axum::routing::delete(delete_rule),
        )
        .route("/api/v1/admin/holidays", get(list_holidays))
        .route(
            "/api/v1/admin/holidays/{date}",
            put(put_holiday).delete(delete_holiday),
        )
        .route("/api/v1/admin/outbox", get(list_outbox))
        .route("/api/v1/admin/outbox/{id}/retry", post(retry_outbox))
        .route("/api/v1/admin/audit", get(list_audit))
}

fn slug_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Departments.
#[utoipa::path(get, path = "/api/v1/admin/departments", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<Department>), (status = 403, body = ErrorBody)))]
pub async fn list_departments(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<Department>>> {
    user.require(&[Role::Admin, Role::Coordinator])?;
    Ok(Json(service::departments(&state.store).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentIn {
    /// Not blank.
    pub name: String,
    /// An e-mail address, or empty for none.
    #[serde(default)]
    pub email: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Creates or updates a department.
#[utoipa::path(put, path = "/api/v1/admin/departments/{id}", tag = "admin", request_body = DepartmentIn,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Department), (status = 422, body = ErrorBody)))]
pub async fn put_department(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(d): ApiJson<DepartmentIn>,
) -> ApiResult<Json<Department>> {
    user.require(&[Role::Admin])?;
    if !slug_ok(&id) {
        return Err(ApiError::invalid(
            "id",
            "lower-case letters, digits and _ only",
        ));
    }
    if d.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "required"));
    }
    if !d.email.is_empty()
        && (d.email.chars().count() > 254 || crate::oirs::domain::Email::parse(&d.email).is_none())
    {
        return Err(ApiError::invalid("email", "not an e-mail address"));
    }
    let dep = Department {
        id,
        name: d.name.trim().to_string(),
        email: d.email,
        active: d.active,
    };
    service::upsert_department(&state.store, &dep).await?;
    audit_admin(&state, &user, "departamento", &dep.id).await?;
    Ok(Json(dep))
}

/// Case types with their deadlines.
#[utoipa::path(get, path = "/api/v1/admin/case-types", tag = "admin", security(("bearer" = [])), operation_id = "admin_list_case_types",
    responses((status = 200, body = Vec<CaseType>)))]
pub async fn list_case_types(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<CaseType>>> {
    user.require(&[Role::Admin, Role::Coordinator])?;
    Ok(Json(service::case_types(&state.store).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseTypeIn {
    #[serde(alias = "label")]
    pub name: String,
    /// `habiles` or `corridos`; an existing type keeps its clock when omitted, a new one
    /// counts días hábiles.
    #[serde(default)]
    pub clock: Option<Clock>,
    #[serde(alias = "term_days")]
    #[schema(minimum = 1, maximum = 365)]
    pub deadline_days: i32,
    /// Days before the due date when the case enters alert; less than `deadline_days`.
    #[schema(minimum = 0, maximum = 364)]
    pub alert_days: i32,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 365)]
    pub extension_days: i32,
    #[serde(default = "yes")]
    pub active: bool,
}

/// Creates or updates a case type: its clock, term, alert threshold and extension (in the
/// clock's days).
#[utoipa::path(put, path = "/api/v1/admin/case-types/{id}", tag = "admin", request_body = CaseTypeIn,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseType), (status = 422, body = ErrorBody)))]
pub async fn put_case_type(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(t): ApiJson<CaseTypeIn>,
) -> ApiResult<Json<CaseType>> {
    user.require(&[Role::Admin])?;
    if !slug_ok(&id) {
        return Err(ApiError::invalid(
            "id",
            "lower-case letters, digits and _ only",
        ));
    }
    if !(1..=365).contains(&t.deadline_days) {
        return Err(ApiError::invalid("deadline_days", "between 1 and 365"));
    }
    if t.alert_days < 0 || t.alert_days >= t.deadline_days {
        return Err(ApiError::invalid(
            "alert_days",
            "between 0 and deadline_days - 1",
        ));
    }
    if !(0..=365).contains(&t.extension_days) {
        return Err(ApiError::invalid("extension_days", "between 0 and 365"));
    }
    let clock = match t.clock {
        Some(c) => c,
        None => service::case_type(&state.store, &id)
            .await?
            .map(|c| c.clock)
            .unwrap_or_default(),
    };
    let ct = CaseType {
        clock,
        id,
        name: t.name.trim().to_string(),
        deadline_days: t.deadline_days,
        alert_days: t.alert_days,
        extension_days: t.extension_days,
        active: t.active,
    };
    service::upsert_case_type(&state.store, &ct).await?;
    audit_admin(&state, &user, "tipo_de_caso", &ct.id).await?;
    Ok(Json(ct))
}

/// Routing rules: (case type, topic) → department; `*` matches any.
#[utoipa::path(get, path = "/api/v1/admin/routing-rules", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<RoutingRule>)))]
pub async fn list_rules(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<RoutingRule>>> {
    user.require(&[Role::Admin, Role::Coordinator])?;
    Ok(Json(service::routing_rules(&state.store).await?))
}

/// Creates or replaces a routing rule.
#[utoipa::path(put, path = "/api/v1/admin/routing-rules", tag = "admin", request_body = RoutingRule,
    security(("bearer" = [])), responses((status = 200, body = RoutingRule), (status = 422, body = ErrorBody)))]
pub async fn put_rule(
    State(state): State<AppState>,
    user: StaffUser,
    ApiJson(r): ApiJson<RoutingRule>,
) -> ApiResult<Json<RoutingRule>> {
    user.require(&[Role::Admin])?;
    let types = service::case_types(&state.store).await?;
    if r.case_type != "*" && !types.iter().any(|t| t.id == r.case_type) {
        return Err(ApiError::invalid("case_type", "unknown case type"));
    }
    if r.topic != "*"
        && !state
            .chat
            .engine()
            .catalog
            .topic_ids()
            .any(|t| t == r.topic)
    {
        return Err(ApiError::invalid("topic", "unknown topic"));
    }
    if !service::departments(&state.store)
        .await?
        .iter()
        .any(|d| d.id == r.department)
    {
        return Err(ApiError::invalid("department", "unknown department"));
    }
    service::upsert_routing_rule(&state.store, &r).await?;
    audit_admin(
        &state,
        &user,
        "regla_derivacion",
        &format!("{}/{}", r.case_type, r.topic),
    )
    .await?;
    Ok(Json(r))
}

/// Deletes a routing rule (the catch-all `*`/`*` cannot be deleted).
#[utoipa::path(delete, path = "/api/v1/admin/routing-rules/{case_type}/{topic}", tag = "admin",
    params(("case_type" = String, Path), ("topic" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath((case_type, topic)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    user.require(&[Role::Admin])?;
    if case_type == "*" && topic == "*" {
        return Err(ApiError::conflict(
            "catch_all",
            "the catch-all rule keeps every case routable",
        ));
    }
    if !service::delete_routing_rule(&state.store, &case_type, &topic).await? {
        return Err(ApiError::not_found("routing rule"));
    }
    audit_admin(
        &state,
        &user,
        "borrar_regla",
        &format!("{case_type}/{topic}"),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Public holidays used to count días hábiles.
#[utoipa::path(get, path = "/api/v1/admin/holidays", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<Holiday>)))]
pub async fn list_holidays(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<Holiday>>> {
    user.require(&[Role::Admin, Role::Coordinator])?;
    Ok(Json(service::holidays(&state.store).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayIn {
    /// Not blank.
    pub name: String,
}

fn parse_date(s: &str) -> Result<NaiveDate, ApiError> {
    crate::http::contract::iso_date(s)
        .ok_or_else(|| ApiError::invalid("date", "expected YYYY-MM-DD"))
}

/// Adds or renames a holiday (e.g. a new election day).
#[utoipa::path(put, path = "/api/v1/admin/holidays/{date}", tag = "admin", request_body = HolidayIn,
    params(("date" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Holiday), (status = 422, body = ErrorBody)))]
pub async fn put_holiday(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(date): ApiPath<String>,
    ApiJson(h): ApiJson<HolidayIn>,
) -> ApiResult<Json<Holiday>> {
    user.require(&[Role::Admin])?;
    let date = parse_date(&date)?;
    if h.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "required"));
    }
    let hol = Holiday {
        date,
        name: h.name.trim().to_string(),
        source: "admin".into(),
    };
    service::upsert_holiday(&state.store, &hol).await?;
    state.refresh_calendar().await?;
    audit_admin(&state, &user, "feriado", &date.to_string()).await?;
    Ok(Json(hol))
}

/// Removes a holiday.
#[utoipa::path(delete, path = "/api/v1/admin/holidays/{date}", tag = "admin",
    params(("date" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_holiday(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(date): ApiPath<String>,
) -> ApiResult<StatusCode> {
    user.require(&[Role::Admin])?;
    let date = parse_date(&date)?;
    if !service::delete_holiday(&state.store, date).await? {
        return Err(ApiError::not_found("holiday"));
    }
    state.refresh_calendar().await?;
    audit_admin(&state, &user, "borrar_feriado", &date.to_string()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// pending, sent, dead or skipped; `failing` = pending after at least one failed attempt.
    pub status: Option<String>,
    /// At most this many messages (default 100; values outside 1–1,000 are clamped).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxOut {
    pub counts: std::collections::BTreeMap<String, i64>,
    pub messages: Vec<OutboxMessage>,
}

/// Outbox state: counts by status and the latest messages (dead letters with `status=dead`).
#[utoipa::path(get, path = "/api/v1/admin/outbox", tag = "admin", params(OutboxQuery),
    security(("bearer" = [])), responses((status = 200, body = OutboxOut)))]
pub async fn list_outbox(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<OutboxQuery>,
) -> ApiResult<Json<OutboxOut>> {
    user.require(&[Role::Admin, Role::Coordinator])?;
    let counts = outbox::counts(&state.store).await?.into_iter().collect();
    let messages = outbox::list(
        &state.store,
        q.status.as_deref(),
        q.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await?;
    Ok(Json(OutboxOut { counts, messages }))
}

/// Puts a dead (or skipped) message back in the queue.
#[utoipa::path(post, path = "/api/v1/admin/outbox/{id}/retry", tag = "admin",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn retry_outbox(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    user.require(&[Role::Admin])?;
    if !outbox::retry(&state.store, id).await? {
        return Err(ApiError::not_found(
            "dead or skipped outbox message with content to deliver",
        ));
    }
    state.outbox_wake.notify_one();
    audit_admin(&state, &user, "reintentar_envio", &id.to_string()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub folio: Option<String>,
    pub username: Option<String>,
    pub action: Option<String>,
    /// At most this many entries (default 200; values outside 1–5,000 are clamped).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub at: i64,
    pub username: String,
    pub action: String,
    pub folio: Option<String>,
    pub detail: Option<String>,
}

/// Who read or changed what, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery),
    security(("bearer" = [])), responses((status = 200, body = Vec<AuditEntry>)))]
pub async fn list_audit(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    user.require(&[Role::Admin])?;
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    type Row = (i64, String, String, Option<String>, Option<String>);
    let rows: Vec<Row> = with_pool!(&state.store, pool => {
        sqlx::query_as(
            "SELECT at, username, action, folio, detail FROM audit_log WHERE ($1 IS NULL OR folio = $1) \
             AND ($2 IS NULL OR username = $2) AND ($3 IS NULL OR action = $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(&q.folio).bind(&q.username).bind(&q.action).bind(limit)
        .fetch_all(pool).await?
    });
    Ok(Json(
        rows.into_iter()
            .map(|(at, username, action, folio, detail)| AuditEntry {
                at,
                username,
                action,
                folio,
                detail,
            })
            .collect(),
    ))
}

/// Writes an administrative change to the audit log.
pub(crate) async fn audit_admin(
    state: &AppState,
    user: &StaffUser,
    action: &str,
    detail: &str,
) -> ApiResult<()> {
    write_pool!(&state.store, pool => {
        sqlx::query("INSERT INTO audit_log (at, user_id, username, action, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(now_millis()).bind(user.id).bind(&user.username).bind(action).bind(detail)
            .execute(pool).await?;
    });
    Ok(())
}
