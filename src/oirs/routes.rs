//! Public OIRS endpoints: parameters, filing (web form and chat) and tracking.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::domain::{Channel, DataRight, Email, Folio, Phone, Status};
use super::location::Location;
use super::service::{self, CaseType, Filed, NewCase, OirsError};
use super::Rut;
use crate::analytics::{Interaction, InteractionKind};
use crate::app::AppState;
use crate::http::error::{ErrorBody, FieldError};
use crate::http::throttle::{ClientAddr, Throttle};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, PublicLimit};

/// Wrong tracking guesses: five free per client and folio, then waits from 2 s doubling up to
/// 15 minutes; a client failing 30 times on any folios waits for all of them. The resident
/// keeps access whatever strangers try.
pub const TRACKING: Throttle = Throttle {
    scope: "tracking",
    window_ms: 15 * 60 * 1000,
    free: 5,
    base_wait_ms: 2_000,
    per_client: 30,
};

pub fn router(limit: PublicLimit) -> Router<AppState> {
    limit(
        Router::new()
            .route("/api/v1/oirs/case-types", get(list_case_types))
            .route("/api/v1/oirs/rights", get(list_rights))
            .route("/api/v1/oirs/topics", get(list_topics))
            .route("/api/v1/oirs/cases", post(file_case))
            .route("/api/v1/oirs/cases/{folio}", get(track_case))
            .route("/api/v1/oirs/cases/{folio}/tracking", post(track_case_post)),
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

/// A right over one's personal data, as residents read it.
#[derive(Serialize, ToSchema)]
pub struct RightOut {
    pub id: &'static str,
    pub label: &'static str,
    /// What exercising it asks for, in one plain sentence.
    pub description: &'static str,
}

/// The rights a `datos_personales` request can exercise (Ley 21.719).
#[utoipa::path(get, path = "/api/v1/oirs/rights", tag = "oirs",
    responses((status = 200, body = Vec<RightOut>)))]
pub async fn list_rights() -> Json<Vec<RightOut>> {
    Json(
        DataRight::ALL
            .into_iter()
            .map(|r| RightOut {
                id: r.as_str(),
                label: r.label(),
                description: r.meaning(),
            })
            .collect(),
    )
}

/// Topics a case can be about (chat-only topics excluded), in Spanish alphabetical order.
#[utoipa::path(get, path = "/api/v1/oirs/topics", tag = "oirs",
    responses((status = 200, body = Vec<TopicOut>)))]
pub async fn list_topics(State(state): State<AppState>) -> Json<Vec<TopicOut>> {
    let engine = state.chat.engine();
    let mut topics: Vec<TopicOut> = engine
        .catalog
        .topics
        .iter()
        .filter(|t| t.case)
        .map(|t| TopicOut {
            id: t.id.clone(),
            label: engine.catalog.topic_label(&t.id),
            description: t.description.clone(),
            department: t.department.clone(),
        })
        .collect();
    topics.sort_by_key(|t| crate::chat::text::sort_key(&t.label));
    Json(topics)
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct CaseIn {
    #[serde(rename = "type")]
    pub case_type: String,
    pub topic: String,
    /// 10 to 5,000 characters (at least 10 once trimmed).
    #[schema(max_length = 5000)]
    pub description: String,
    /// 2 to 200 characters (at least 2 once trimmed).
    #[schema(max_length = 200)]
    pub name: String,
    /// Required for `datos_personales`; the check digit must be right.
    #[serde(default)]
    pub rut: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(max_length = 300)]
    pub address: Option<String>,
    /// Latitude of the place the case is about (WGS 84 degrees, with `long`); it must lie in
    /// the area the municipality serves (Chile unless configured).
    #[serde(default)]
    #[schema(minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Longitude of the place (WGS 84 degrees, with `lat`).
    #[serde(default)]
    #[schema(minimum = -180, maximum = 180)]
    pub long: Option<f64>,
    /// The resident agrees to publish the description in the public Open311 listing (their
    /// name and contact data are never published). Off unless chosen.
    #[serde(default)]
    pub public_description: bool,
    #[serde(default)]
    pub chat_session_id: Option<String>,
    /// For `datos_personales`: the right exercised (acceso, rectificacion, supresion,
    /// oposicion, portabilidad, bloqueo). Such a request also needs the RUT.
    #[serde(default)]
    pub right: Option<String>,
    pub consent: bool,
}

/// The case type of requests about one's personal data (Ley 21.719).
pub const DATA_RIGHTS_TYPE: &str = "datos_personales";

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Checks every field of a filing and builds the case. Every problem is reported at once
/// (a 422 naming the first field and listing all), in sentence-case Spanish a resident can act
/// on.
pub async fn validate(
    input: &CaseIn,
    state: &AppState,
    channel: Channel,
    received_at: DateTime<Utc>,
) -> Result<NewCase, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.to_string(),
            message,
        })
    };
    let case_type = input.case_type.trim();
    let types = service::case_types(&state.store).await?;
    if !types.iter().any(|t| t.active && t.id == case_type) {
        let message = if case_type.is_empty() {
            "Elija el tipo de caso.".to_string()
        } else {
            format!("El tipo de caso {case_type:?} no existe: elija uno de la lista.")
        };
        fail("type", message);
    }
    // A transparency or personal-data request is its own subject: the type names the topic.
    let topic = match input.topic.trim() {
        "" if [DATA_RIGHTS_TYPE, "transparencia"].contains(&case_type) => case_type,
        t => t,
    };
    if !state.chat.engine().catalog.is_case_topic(topic) {
        let message = if topic.is_empty() {
            "Elija el tema de su caso.".to_string()
        } else {
            format!("El tema {topic:?} no existe: elija uno de la lista.")
        };
        fail("topic", message);
    }
    // Lengths are counted as sent (the document's `maxLength`); minimums once trimmed.
    let description = input.description.trim();
    if description.chars().count() < 10 || input.description.chars().count() > 5000 {
        fail(
            "description",
            "Describa su caso en 10 a 5.000 caracteres.".into(),
        );
    }
    let name = input.name.trim();
    if name.chars().count() < 2 || input.name.chars().count() > 200 {
        fail("name", "Escriba su nombre (2 a 200 caracteres).".into());
    }
    let rut = match opt(&input.rut).map(Rut::parse) {
        Some(Ok(r)) => Some(r.to_string()),
        Some(Err(e)) => {
            fail("rut", format!("{e}."));
            None
        }
        None => None,
    };
    let long_email = input
        .email
        .as_ref()
        .is_some_and(|e| e.chars().count() > 254);
    let email = match opt(&input.email).map(|e| Email::parse(e).filter(|_| !long_email).ok_or(())) {
        Some(Ok(e)) => Some(e.as_str().to_string()),
        Some(Err(())) => {
            fail(
                "email",
                "El correo no es válido: revíselo (ejemplo: nombre@correo.cl).".into(),
            );
            None
        }
        None => None,
    };
    let phone = match opt(&input.phone).map(|p| Phone::parse(p).ok_or(())) {
        Some(Ok(p)) => Some(p.as_str().to_string()),
        Some(Err(())) => {
            fail(
                "phone",
                "El teléfono no es un número chileno válido (ejemplo: +56 9 1234 5678).".into(),
            );
            None
        }
        None => None,
    };
    let address = opt(&input.address).map(String::from);
    if input
        .address
        .as_ref()
        .is_some_and(|a| a.chars().count() > 300)
    {
        fail(
            "address",
            "La dirección es demasiado larga (300 caracteres como máximo).".into(),
        );
    }
    let location = match Location::parse(input.lat, input.long, &state.config.geo_bounds) {
        Ok(l) => l,
        Err(e) => {
            fail(e.field, e.message);
            None
        }
    };
    let chat_session_id = match opt(&input.chat_session_id).map(uuid::Uuid::parse_str) {
        Some(Ok(u)) => Some(u.to_string()),
        Some(Err(_)) => {
            fail("chat_session_id", "Not a chat session id.".into());
            None
        }
        None => None,
    };
    let data_right = if case_type == DATA_RIGHTS_TYPE {
        match opt(&input.right).map(|r| DataRight::parse(r).ok_or(r)) {
            Some(Ok(r)) => Some(r),
            Some(Err(r)) => {
                fail(
                    "right",
                    format!("El derecho {r:?} no existe: elija uno de la lista."),
                );
                None
            }
            None => {
                fail(
                    "right",
                    "Elija qué derecho quiere ejercer sobre sus datos.".into(),
                );
                None
            }
        }
    } else {
        if opt(&input.right).is_some() {
            fail(
                "right",
                "Solo las solicitudes sobre datos personales indican un derecho.".into(),
            );
        }
        None
    };
    if case_type == DATA_RIGHTS_TYPE && rut.is_none() && opt(&input.rut).is_none() {
        fail(
            "rut",
            "Para una solicitud sobre sus datos personales escriba su RUT: así sabemos de qué datos se trata.".into(),
        );
    }
    if !input.consent {
        fail(
            "consent",
            "Para ingresar el caso debe aceptar que la municipalidad use sus datos para responderle."
                .into(),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    Ok(NewCase {
        case_type: case_type.to_string(),
        topic: topic.to_string(),
        description: description.to_string(),
        name: name.to_string(),
        rut,
        email,
        phone,
        address,
        location,
        public_description: input.public_description,
        chat_session_id,
        data_right,
        channel,
        received_at,
        created_by: None,
        open311_key: None,
        identity_verified: false,
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
        .filter(|k| k.len() <= 200)
        .map(str::trim)
        .filter(|k| !k.is_empty())
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
    let case = validate(&input, &state, channel, Utc::now()).await?;
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
#[into_params(parameter_in = Query)]
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
    pub department_name: String,
    /// The case type's and the topic's names, as residents read them.
    pub type_label: String,
    pub topic_label: String,
    pub received_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    pub history: Vec<PublicEvent>,
    pub answer: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    /// Whether the resident may rate the answer now (`open`: the case is closed and not yet
    /// rated), already did (`answered`), or not (`not_available`).
    #[serde(default)]
    pub survey: super::satisfaction::Survey,
    /// Files attached by the resident and by staff with their answer.
    pub attachments: Vec<super::attachments::AttachmentInfo>,
}

/// Status, deadline, public history and the answer. Needs the folio plus the tracking code
/// or the RUT; a wrong secret answers exactly like an unknown folio.
#[utoipa::path(get, path = "/api/v1/oirs/cases/{folio}", tag = "oirs",
    params(("folio" = String, Path), TrackQuery),
    responses((status = 200, body = TrackOut), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn track_case(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiPath(folio): ApiPath<String>,
    ApiQuery(q): ApiQuery<TrackQuery>,
) -> ApiResult<Json<TrackOut>> {
    Ok(Json(lookup(&state, client, &folio, &q).await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackIn {
    /// The tracking code given at filing.
    #[serde(default)]
    pub code: Option<String>,
    /// Or the RUT given at filing.
    #[serde(default)]
    pub rut: Option<String>,
}

/// The same as `GET /api/v1/oirs/cases/{folio}`, with the code or RUT in the body, so they stay
/// out of addresses, browser histories and logs (the widget uses it).
#[utoipa::path(post, path = "/api/v1/oirs/cases/{folio}/tracking", tag = "oirs",
    params(("folio" = String, Path)), request_body = TrackIn,
    responses((status = 200, body = TrackOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn track_case_post(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiPath(folio): ApiPath<String>,
    ApiJson(input): ApiJson<TrackIn>,
) -> ApiResult<Json<TrackOut>> {
    let q = TrackQuery {
        code: input.code,
        rut: input.rut,
    };
    Ok(Json(lookup(&state, client, &folio, &q).await?))
}

/// Tracking for the API and the /seguimiento page (see [`authorize`]).
pub async fn lookup(
    state: &AppState,
    client: ClientAddr,
    folio: &str,
    q: &TrackQuery,
) -> ApiResult<TrackOut> {
    let store = &state.store;
    let case = authorize(state, client, folio, q).await?;
    let events = service::case_events(store, case.id, true).await?;
    let names = service::Names::load(store).await?;
    let rated = super::satisfaction::rating_of(store, case.id)
        .await?
        .is_some();
    let survey =
        super::satisfaction::survey_state(case.status, case.duplicate_of.as_deref(), rated);
    let attachments = super::attachments::list(store, case.id).await?;
    Ok(track_out(state, case, events, &names, survey, attachments))
}

/// The case behind a folio and its tracking code or RUT, for the resident who filed it: the
/// same 404 for an unknown folio and a wrong secret, 429 once this client has guessed wrong
/// too often (see [`TRACKING`]).
pub async fn authorize(
    state: &AppState,
    ClientAddr(client): ClientAddr,
    folio: &str,
    q: &TrackQuery,
) -> ApiResult<service::CaseRecord> {
    let not_found = || ApiError::not_found("case");
    let Some(folio) = Folio::parse(folio).map(|f| f.to_string()) else {
        return Err(not_found());
    };
    let store = &state.store;
    if let Some(secs) = TRACKING.retry_after(store, client, &folio).await? {
        return Err(ApiError::too_many_requests(secs));
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
        TRACKING.failed(store, client, &folio).await?;
        return Err(not_found());
    };
    Ok(case)
}

fn track_out(
    state: &AppState,
    case: service::CaseRecord,
    events: Vec<service::CaseEvent>,
    names: &service::Names,
    survey: super::satisfaction::Survey,
    attachments: Vec<super::attachments::AttachmentInfo>,
) -> TrackOut {
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
                "recibido" => Channel::parse(&case.channel)
                    .map(|c| format!("por {}", c.label().to_lowercase())),
                "derivar" => e.department.map(|d| names.department(&d)),
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
    let type_label = names.case_type(&case.case_type);
    let topic_label = state.chat.engine().catalog.topic_label(&case.topic);
    TrackOut {
        folio: case.folio,
        case_type: case.case_type,
        topic: case.topic,
        status: case.status,
        status_label: case.status.label().to_string(),
        department_name: names.department(&case.department),
        type_label,
        topic_label,
        department: case.department,
        received_at: case.received_at,
        due_date: case.due_date,
        history,
        answer: case.answer,
        answered_at: case.answered_at,
        survey,
        attachments,
    }
}
