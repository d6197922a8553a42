//! Staff case endpoints: inbox, detail (audited), registration of cases from other channels,
//! events and the pending report. Department staff see and act on their own department only.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Role, StaffUser};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::oirs::calendar::Clock;
use crate::oirs::domain::{Channel, Folio};
use crate::oirs::routes::{file_and_answer, idempotency, validate, CaseIn};
use crate::oirs::service::{
    self, Actor, CaseEvent, CaseFilter, CaseRecord, EventIn, Filed, PendingRow,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/staff/cases", get(list).post(register))
        .route("/api/v1/staff/cases/{folio}", get(detail))
        .route("/api/v1/staff/cases/{folio}/events", post(add_event))
        .route("/api/v1/staff/reports/pending", get(pending))
}

impl From<&StaffUser> for Actor {
    fn from(u: &StaffUser) -> Self {
        Actor {
            user_id: u.id,
            username: u.username.clone(),
            role: u.role,
            department: u.department.clone(),
        }
    }
}

const CASE_ROLES: &[Role] = &[Role::Admin, Role::Coordinator, Role::Department];

#[derive(Serialize, ToSchema)]
pub struct CaseSummary {
    pub folio: String,
    #[serde(rename = "type")]
    pub case_type: String,
    pub topic: String,
    pub department: String,
    pub status: crate::oirs::domain::Status,
    pub channel: String,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    /// Business days until the due date (negative when overdue).
    pub business_days_left: i64,
    /// The clock the case's term runs on.
    pub clock: Clock,
    /// Days on the case's clock until the due date (negative when overdue).
    pub days_left: i64,
    pub alert_level: String,
    /// The first words of the description with RUTs, e-mails and phones masked: enough to
    /// tell cases apart in a list without opening each one.
    pub subject: String,
    /// The staff member (username) the case is assigned to.
    pub assignee: Option<String>,
}

/// The subject line of a case in a list.
pub fn subject(description: &str) -> String {
    const MAX: usize = 70;
    let masked = crate::analytics::mask_personal_data(description);
    let one_line = masked.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX {
        return one_line;
    }
    let cut: String = one_line.chars().take(MAX).collect();
    let cut = cut.rsplit_once(' ').map(|(a, _)| a).unwrap_or(&cut);
    format!("{cut}…")
}

/// The inbox: cases filtered by status, department, type, overdue, due date or alert level.
/// Lists carry no personal data; the detail view does (and is audited).
#[utoipa::path(get, path = "/api/v1/staff/cases", tag = "staff", params(CaseFilter), operation_id = "list_cases",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<CaseSummary>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(mut filter): ApiQuery<CaseFilter>,
) -> ApiResult<Json<Vec<CaseSummary>>> {
    user.require(CASE_ROLES)?;
    if let Some(s) = &filter.status {
        if s.parse::<crate::oirs::domain::Status>().is_err() {
            return Err(ApiError::invalid("status", format!("unknown status {s:?}")));
        }
    }
    if let Some(a) = &filter.alert {
        if !["alerta", "vencido", "none"].contains(&a.as_str()) {
            return Err(ApiError::invalid(
                "alert",
                "expected alerta, vencido or none",
            ));
        }
    }
    if filter.assignee.as_deref().map(str::trim) == Some("me") {
        filter.assignee = Some(user.username.clone());
    }
    // Department staff are confined to their own department.
    if user.role == Role::Department {
        if filter.department.is_some() && filter.department != user.department {
            return Err(ApiError::forbidden());
        }
        filter.department = user.department.clone();
    }
    let today = state.today();
    let cal = state.calendar().await;
    let rows = service::list_cases(&state.store, &filter, today).await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| CaseSummary {
                business_days_left: cal.days_left(today, c.due_date),
                days_left: cal.left(c.clock, today, c.due_date),
                clock: c.clock,
                subject: subject(&c.description),
                folio: c.folio,
                case_type: c.case_type,
                topic: c.topic,
                department: c.department,
                status: c.status,
                channel: c.channel,
                received_at: c.received_at,
                due_date: c.due_date,
                alert_level: c.alert_level,
                assignee: c.assignee,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseRecord,
    pub business_days_left: i64,
    /// Days on the case's clock until the due date (negative when overdue).
    pub days_left: i64,
    pub events: Vec<CaseEvent>,
    /// The resident's rating of the answer, once given (the comment is for staff only).
    #[serde(default)]
    pub satisfaction: Option<crate::oirs::satisfaction::Rated>,
    /// The files attached to the case (read each one with
    /// `GET /api/v1/staff/cases/{folio}/attachments/{id}`).
    pub attachments: Vec<crate::oirs::attachments::AttachmentInfo>,
}

fn parse_folio(folio: &str) -> Result<String, ApiError> {
    Folio::parse(folio)
        .map(|f| f.to_string())
        .ok_or_else(|| ApiError::not_found("case"))
}

/// One case with the resident's data and its whole history. Every read is audited.
#[utoipa::path(get, path = "/api/v1/staff/cases/{folio}", tag = "staff",
    params(("folio" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(folio): ApiPath<String>,
) -> ApiResult<Json<CaseDetail>> {
    user.require(CASE_ROLES)?;
    let folio = parse_folio(&folio)?;
    let case = service::find_case(&state.store, &folio)
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    let actor = Actor::from(&user);
    if !actor.may_act_on(&case.department) {
        return Err(ApiError::forbidden());
    }
    service::audit(
        &state.store,
        &actor,
        "ver_caso",
        &folio,
        "lectura de datos personales",
    )
    .await?;
    let events = service::case_events(&state.store, case.id, false).await?;
    let satisfaction = crate::oirs::satisfaction::rating_of(&state.store, case.id).await?;
    let attachments = crate::oirs::attachments::list(&state.store, case.id).await?;
    let cal = state.calendar().await;
    Ok(Json(CaseDetail {
        attachments,
        business_days_left: cal.days_left(state.today(), case.due_date),
        days_left: cal.left(case.clock, state.today(), case.due_date),
        case,
        events,
        satisfaction,
    }))
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct StaffCaseIn {
    #[serde(flatten)]
    pub case: CaseIn,
    pub channel: Channel,
    /// When the municipality received it (RFC 3339); defaults to now.
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
}

/// Registers a case received by another channel (presencial, Oficina de Partes, e-mail,
/// teléfono) with its real reception time, so the deadline counts from then.
#[utoipa::path(post, path = "/api/v1/staff/cases", tag = "staff", request_body = StaffCaseIn, operation_id = "register_case",
    security(("bearer" = [])),
    responses((status = 201, body = Filed), (status = 200, body = Filed, description = "replay"),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    user: StaffUser,
    headers: HeaderMap,
    ApiJson(input): ApiJson<StaffCaseIn>,
) -> ApiResult<(StatusCode, Json<Filed>)> {
    user.require(CASE_ROLES)?;
    let now = Utc::now();
    let received_at = input.received_at.unwrap_or(now);
    if received_at > now + chrono::Duration::minutes(5) {
        return Err(ApiError::invalid(
            "received_at",
            "la fecha de recepción está en el futuro",
        ));
    }
    if received_at < now - chrono::Duration::days(366) {
        return Err(ApiError::invalid(
            "received_at",
            "la fecha de recepción tiene más de un año",
        ));
    }
    if input.channel.is_self_service() {
        return Err(ApiError::invalid(
            "channel",
            "web, chat and Open311 cases are filed by residents",
        ));
    }
    let idem = idempotency(&headers, &input)?;
    let mut case = validate(&input.case, &state, input.channel, received_at).await?;
    case.created_by = Some((user.id, user.username.clone()));
    file_and_answer(&state, case, idem).await
}

/// Applies an event: derivar (coordinator), iniciar, comentar, pedir_informacion, reanudar,
/// prorrogar, responder, cerrar, corregir_tema, asignar (to an active staff member of the
/// case's department; derivar clears it). Illegal transitions answer 409.
#[utoipa::path(post, path = "/api/v1/staff/cases/{folio}/events", tag = "staff",
    params(("folio" = String, Path)), request_body = EventIn, security(("bearer" = [])),
    responses((status = 200, body = CaseRecord), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_event(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(folio): ApiPath<String>,
    ApiJson(ev): ApiJson<EventIn>,
) -> ApiResult<Json<CaseRecord>> {
    user.require(CASE_ROLES)?;
    let folio = parse_folio(&folio)?;
    let case = state.apply_event(&Actor::from(&user), &folio, &ev).await?;
    Ok(Json(case))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    pub department: Option<String>,
}

/// Pending, in-alert, overdue and paused cases per department.
#[utoipa::path(get, path = "/api/v1/staff/reports/pending", tag = "staff", params(PendingQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<PendingRow>), (status = 403, body = ErrorBody)))]
pub async fn pending(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<PendingQuery>,
) -> ApiResult<Json<Vec<PendingRow>>> {
    user.require(CASE_ROLES)?;
    let department = match user.role {
        Role::Department => user.department.clone(),
        _ => q.department,
    };
    Ok(Json(
        service::pending_report(&state.store, department.as_deref(), state.today()).await?,
    ))
}
