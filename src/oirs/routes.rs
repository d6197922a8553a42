//! Public OIRS endpoints: parameters, filing (web form and chat) and tracking.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::domain::{Channel, Email, Folio, Phone, Status};
use super::service::{self, CaseType, Filed, NewCase, OirsError};
use super::Rut;
use crate::analytics::{Interaction, InteractionKind};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiResult, PublicLimit};

/// Failed tracking attempts on one folio before it is locked for a while.
pub const TRACKING_MAX_FAILURES: i64 = 5;
pub const TRACKING_WINDOW_MS: i64 = 15 * 60 * 1000;

pub fn router(limit: PublicLimit) -> Router<AppState> {
    limit(
        Router::new()
            .route("/api/v1/oirs/case-types", get(list_case_types))
            .route("/api/v1/oirs/topics", get(list_topics))
            .route("/api/v1/oirs/cases", post(file_case))
            .route("/api/v1/oirs/cases/{folio}", get(track_case)),
    )
}

impl From<OirsError> for ApiError {
    fn from(e: OirsError) -> Self {
        match e {
            OirsError::Store(s) => s.into(),
            OirsError::NotFound => ApiError::not_found("case"),
            OirsError::Invalid(field, msg) => ApiError::invalid(field, msg),
            OirsError::Conflict(msg) => ApiError::conflict("conflict", msg),
            OirsError::Forbidden => ApiError::forbidden(),
        }
    }
}

/// Active case types with their legal deadlines.
#[utoipa::path(get, path = "/api/v1/oirs/case-types", tag = "oirs",
    responses((status = 200, body = Vec<CaseType>)))]
pub async fn list_case_types(State(state): State<AppState>) -> ApiResult<Json<Vec<CaseType>>> {
    let types = service::case_types(&state.store).await?;
    Ok(Json(types.into_iter().filter(|t| t.active).collect()))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TopicOut {
    pub id: String,
    /// Resident-facing name (Spanish).
    pub label: String,
    pub description: String,
    pub department: Option<String>,
}

/// Topics a case can be about (those of the chat catalog, small talk excluded).
#[utoipa::path(get, path = "/api/v1/oirs/topics", tag = "oirs",
    responses((status = 200, body = Vec<TopicOut>)))]
pub async fn list_topics(State(state): State<AppState>) -> Json<Vec<TopicOut>> {
    let engine = state.chat.engine();
    Json(
        engine
            .catalog
            .topics
            .iter()
            .filter(|t| t.department.is_some())
            .map(|t| TopicOut {
                id: t.id.clone(),
                label: engine.catalog.topic_label(&t.id),
                description: t.description.clone(),
                department: t.department.clone(),
            })
            .collect(),
    )
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct CaseIn {
    #[serde(rename = "type")]
    pub case_type: String,
    pub topic: String,
    pub description: String,
    pub name: String,
    #[serde(default)]
    pub rut: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub chat_session_id: Option<String>,
    pub consent: bool,
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Checks every field of a filing and builds the case; errors name the field.
pub fn validate(
    input: &CaseIn,
    state: &AppState,
    channel: Channel,
    received_at: DateTime<Utc>,
) -> Result<NewCase, ApiError> {
    if !input.consent {
        return Err(ApiError::invalid(
            "consent",
            "debe aceptar el tratamiento de sus datos para ingresar el caso",
        ));
    }
    let engine = state.chat.engine();
    let topic = input.topic.trim();
    if !engine
        .catalog
        .topics
        .iter()
        .any(|t| t.id == topic && t.department.is_some())
    {
        return Err(ApiError::invalid(
            "topic",
            format!("unknown topic {topic:?}"),
        ));
    }
    let description = input.description.trim();
    let n = description.chars().count();
    if !(10..=5000).contains(&n) {
        return Err(ApiError::invalid(
            "description",
            "la descripción debe tener entre 10 y 5.000 caracteres",
        ));
    }
    let name = input.name.trim();
    if !(2..=200).contains(&name.chars().count()) {
        return Err(ApiError::invalid(
            "name",
            "el nombre debe tener entre 2 y 200 caracteres",
        ));
    }
    let rut = opt(&input.rut)
        .map(|r| Rut::parse(r).map_err(|e| ApiError::invalid("rut", e.to_string())))
        .transpose()?;
    let email = opt(&input.email)
        .map(|e| {
            Email::parse(e).ok_or_else(|| ApiError::invalid("email", "el correo no es válido"))
        })
        .transpose()?;
    let phone = opt(&input.phone)
        .map(|p| {
            Phone::parse(p).ok_or_else(|| {
                ApiError::invalid("phone", "el teléfono no es un número chileno válido")
            })
        })
        .transpose()?;
    let address = opt(&input.address).map(String::from);
    if address.as_ref().is_some_and(|a| a.chars().count() > 300) {
        return Err(ApiError::invalid(
            "address",
            "la dirección es demasiado larga",
        ));
    }
    let chat_session_id = opt(&input.chat_session_id)
        .map(|s| {
            uuid::Uuid::parse_str(s)
                .map(|u| u.to_string())
                .map_err(|_| ApiError::invalid("chat_session_id", "not a chat session id"))
        })
        .transpose()?;
    Ok(NewCase {
        case_type: input.case_type.trim().to_string(),
        topic: topic.to_string(),
        description: description.to_string(),
        name: name.to_string(),
        rut: rut.map(|r| r.to_string()),
        email: email.map(|e| e.as_str().to_string()),
        phone: phone.map(|p| p.as_str().to_string()),
        address,
        chat_session_id,
        channel,
        received_at,
        created_by: None,
    })
}

/// The Idempotency-Key header and a digest of the request it protects.
pub fn idempotency(
    headers: &HeaderMap,
    body: &impl Serialize,
) -> Result<Option<(String, String)>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 200 visible characters",
            )
        })?;
    let hash = crate::store::sha256_hex(&serde_json::to_vec(body).unwrap_or_default());
    Ok(Some((key.to_string(), hash)))
}

pub async fn file_and_answer(
    state: &AppState,
    case: NewCase,
    idem: Option<(String, String)>,
) -> ApiResult<(StatusCode, Json<Filed>)> {
    let calendar = state.calendar().await;
    let ctx = service::FilingContext {
        tz: state.tz,
        calendar: &calendar,
        public_base_url: &state.config.public_base_url,
        channels: state.channels(),
    };
    let (filed, replay) = service::file_case(
        &state.store,
        &ctx,
        &case,
        idem.as_ref().map(|(k, h)| (k.as_str(), h.as_str())),
    )
    .await?;
    state.outbox_wake.notify_one();
    if !replay {
        state.recorder.record(Interaction {
            occurred_at: Utc::now(),
            session_id: case.chat_session_id.clone(),
            kind: InteractionKind::CaseFiled,
            topic: Some(case.topic.clone()),
            ..Interaction::default()
        });
    }
    let status = if replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(filed)))
}

/// Files a consulta, solicitud, reclamo, sugerencia, felicitación… from the web form or the
/// chat. The case is durable before the 201. `Idempotency-Key` replays answer 200 with the
/// first case.
#[utoipa::path(post, path = "/api/v1/oirs/cases", tag = "oirs", request_body = CaseIn,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Filed), (status = 200, body = Filed, description = "replay"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn file_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<CaseIn>,
) -> ApiResult<(StatusCode, Json<Filed>)> {
    let idem = idempotency(&headers, &input)?;
    let channel = if opt(&input.chat_session_id).is_some() {
        Channel::Chat
    } else {
        Channel::Web
    };
    let case = validate(&input, &state, channel, Utc::now())?;
    if let Some(sid) = &case.chat_session_id {
        let ttl = chrono::Duration::minutes(state.config.chat.session_ttl_minutes);
        let not_before = (Utc::now() - ttl).timestamp_millis();
        if state.sessions.load(sid, not_before).await?.is_none() {
            return Err(ApiError::invalid(
                "chat_session_id",
                "unknown or expired chat session",
            ));
        }
    }
    file_and_answer(&state, case, idem).await
}

#[derive(Deserialize, IntoParams)]
pub struct TrackQuery {
    /// The tracking code given at filing.
    pub code: Option<String>,
    /// Or the RUT given at filing.
    pub rut: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PublicEvent {
    pub at: DateTime<Utc>,
    pub status: Option<String>,
    pub label: String,
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TrackOut {
    pub folio: String,
    #[serde(rename = "type")]
    pub case_type: String,
    pub topic: String,
    pub status: Status,
    pub status_label: String,
    pub department: String,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    pub history: Vec<PublicEvent>,
    pub answer: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// Status, deadline, public history and the answer. Needs the folio plus the tracking code
/// or the RUT; a wrong secret answers exactly like an unknown folio.
#[utoipa::path(get, path = "/api/v1/oirs/cases/{folio}", tag = "oirs",
    params(("folio" = String, Path), TrackQuery),
    responses((status = 200, body = TrackOut), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn track_case(
    State(state): State<AppState>,
    Path(folio): Path<String>,
    Query(q): Query<TrackQuery>,
) -> ApiResult<Json<TrackOut>> {
    Ok(Json(lookup(&state, &folio, &q).await?))
}

/// Tracking for the API and the /seguimiento page: the same 404 for an unknown folio and a
/// wrong secret, 429 once a folio has seen too many wrong guesses.
pub async fn lookup(state: &AppState, folio: &str, q: &TrackQuery) -> ApiResult<TrackOut> {
    let not_found = || ApiError::not_found("case");
    let Some(folio) = Folio::parse(folio).map(|f| f.to_string()) else {
        return Err(not_found());
    };
    let store = &state.store;
    if service::recent_failures(store, "tracking", &folio, TRACKING_WINDOW_MS).await?
        >= TRACKING_MAX_FAILURES
    {
        return Err(ApiError::too_many_requests(
            TRACKING_WINDOW_MS as u64 / 1000,
        ));
    }
    let case = service::find_case(store, &folio).await?;
    let ok = case.as_ref().is_some_and(|c| {
        let by_code = q
            .code
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .is_some_and(|code| service::tracking_hash(&c.folio, code) == c.tracking_hash);
        let by_rut = q.rut.as_deref().is_some_and(|r| {
            let given = Rut::parse(r).map(|r| r.to_string()).ok();
            given.is_some() && given == c.rut
        });
        by_code || by_rut
    });
    let Some(case) = case.filter(|_| ok) else {
        service::note_failure(store, "tracking", &folio, TRACKING_WINDOW_MS).await?;
        return Err(not_found());
    };
    let events = service::case_events(store, case.id, true).await?;
    state.recorder.record(Interaction {
        occurred_at: Utc::now(),
        kind: InteractionKind::CaseTracked,
        topic: Some(case.topic.clone()),
        ..Interaction::default()
    });
    let history = events
        .into_iter()
        .map(|e| {
            let status = e.to_status.clone();
            let label = status
                .as_deref()
                .and_then(|s| s.parse::<Status>().ok())
                .map(|s| s.label().to_string())
                .unwrap_or_else(|| e.kind.clone());
            // Derivations show where the case went, not the internal reason.
            let note = match e.kind.as_str() {
                "derivar" => e.department.map(|d| format!("Unidad responsable: {d}")),
                "responder" => None,
                _ => e.note,
            };
            PublicEvent {
                at: e.at,
                status,
                label,
                note,
            }
        })
        .collect();
    Ok(TrackOut {
        folio: case.folio,
        case_type: case.case_type,
        topic: case.topic,
        status: case.status,
        status_label: case.status.label().to_string(),
        department: case.department,
        received_at: case.received_at,
        due_date: case.due_date,
        history,
        answer: case.answer,
        answered_at: case.answered_at,
    })
}
