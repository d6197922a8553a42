//! Chat HTTP endpoints (public, rate limited) and the admin catalog reload.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::engine::UnknownButton;
use super::{Decision, Match, MenuNode, Reply};
use crate::analytics::{mask_personal_data, Interaction, InteractionKind};
use crate::app::AppState;
use crate::http::error::ErrorBody;
use crate::http::{ApiError, ApiJson, ApiPath, ApiResult, PublicLimit};
use crate::staff::auth::{Role, StaffUser};

pub const MAX_TEXT_CHARS: usize = 1000;

pub fn router(limit: PublicLimit) -> Router<AppState> {
    let public = Router::new()
        .route("/api/v1/chat/sessions", post(create_session))
        .route(
            "/api/v1/chat/sessions/{session_id}/messages",
            post(post_message),
        )
        .route(
            "/api/v1/chat/sessions/{session_id}/feedback",
            post(super::feedback::post_feedback),
        )
        .route("/api/v1/chat/menu", get(menu));
    limit(public).route("/api/v1/admin/catalog/reload", post(reload_catalog))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionCreated {
    pub session_id: String,
    pub reply: Reply,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// Free text: at most 1,000 characters, not all white space.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub text: Option<String>,
    /// A button id from a previous reply or the menu.
    #[serde(default)]
    pub button: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MessageOut {
    pub reply: Reply,
    #[serde(rename = "match")]
    pub matched: Match,
    /// This turn within its session: `POST …/feedback` rates the answer with it.
    pub turn_id: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReloadOut {
    pub intents: usize,
    pub topics: usize,
    pub buttons: usize,
}

/// Starts a conversation; the greeting carries the initial menu.
#[utoipa::path(post, path = "/api/v1/chat/sessions", tag = "chat",
    responses((status = 201, body = SessionCreated), (status = 429, body = ErrorBody)))]
pub async fn create_session(
    State(state): State<AppState>,
) -> ApiResult<(StatusCode, Json<SessionCreated>)> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = Utc::now();
    state.sessions.create(&id, now.timestamp_millis()).await?;
    state.recorder.record(Interaction {
        occurred_at: now,
        session_id: Some(id.clone()),
        kind: InteractionKind::SessionStarted,
        ..Interaction::default()
    });
    let reply = state.chat.engine().greeting();
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            session_id: id,
            reply,
        }),
    ))
}

/// Sends a message (free text or a button click) and returns the bot's reply.
#[utoipa::path(post, path = "/api/v1/chat/sessions/{session_id}/messages", tag = "chat",
    params(("session_id" = String, Path)),
    request_body = MessageIn,
    responses((status = 200, body = MessageOut), (status = 404, body = ErrorBody),
               (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn post_message(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
    ApiJson(input): ApiJson<MessageIn>,
) -> ApiResult<Json<MessageOut>> {
    let input = Input::parse(input)?;
    let now = Utc::now();
    let ttl = chrono::Duration::minutes(state.config.chat.session_ttl_minutes);
    let not_before = (now - ttl).timestamp_millis();
    let loaded = state
        .sessions
        .load(&session_id, not_before)
        .await?
        .ok_or_else(|| ApiError::not_found("chat session (it may have expired)"))?;
    let mut sess = loaded.state.clone();
    let engine = state.chat.engine();
    let today = now.with_timezone(&state.tz).date_naive();

    let (reply, matched) = match &input {
        Input::Button(id) => {
            let turn = engine
                .click(id, &mut sess, today)
                .map_err(|UnknownButton| {
                    ApiError::invalid("button", format!("unknown button {id:?}"))
                })?;
            state.recorder.record(Interaction {
                occurred_at: now,
                session_id: Some(session_id.clone()),
                kind: InteractionKind::Button,
                button_id: turn.button_id.clone(),
                parent_id: turn.parent_id.clone(),
                intent: turn.matched.intent.clone(),
                topic: turn.matched.topic.clone(),
                confidence: turn.matched.intent.as_ref().map(|_| 1.0),
                ..Interaction::default()
            });
            (turn.reply, turn.matched)
        }
        Input::Text(text) => {
            let turn = engine.respond(text, &mut sess, today);
            let m = &turn.matched;
            state.recorder.record(Interaction {
                occurred_at: now,
                session_id: Some(session_id.clone()),
                kind: InteractionKind::Message,
                intent: m.intent.clone(),
                topic: m.topic.clone(),
                confidence: Some(f64::from(m.confidence)),
                fallback: m.fallback,
                text_masked: Some(mask_personal_data(text)),
                decision: Some(m.decision.as_str()),
                best_intent: m
                    .intent
                    .clone()
                    .or_else(|| m.alternatives.first().map(|a| a.intent.clone())),
                ..Interaction::default()
            });
            (turn.reply, turn.matched)
        }
    };
    if matched.decision == Decision::Answer && matched.topic.as_deref() == Some("contactar_me") {
        state.recorder.record(Interaction {
            occurred_at: now,
            session_id: Some(session_id.clone()),
            kind: InteractionKind::ContactRequested,
            ..Interaction::default()
        });
    }

    let now_ms = now.timestamp_millis();
    if loaded.needs_save(&sess, now_ms) {
        state.sessions.save(&session_id, &sess, now_ms).await?;
    }
    let turn_id = super::feedback::Turn {
        at: now_ms,
        decision: matched.decision,
        intent: matched.intent.clone(),
    }
    .id(&session_id);
    Ok(Json(MessageOut {
        reply,
        matched,
        turn_id,
    }))
}

enum Input {
    Text(String),
    Button(String),
}

impl Input {
    fn parse(m: MessageIn) -> Result<Self, ApiError> {
        match (m.text, m.button) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "text",
                "send either text or button, not both",
            )),
            (None, None) => Err(ApiError::invalid("text", "text or button is required")),
            (None, Some(b)) => {
                if b.trim().is_empty() || b.len() > 200 {
                    return Err(ApiError::invalid("button", "unknown button"));
                }
                Ok(Input::Button(b))
            }
            (Some(t), None) => {
                let trimmed = t.trim();
                if trimmed.is_empty() {
                    return Err(ApiError::invalid("text", "the message is empty"));
                }
                // Counted as sent, so the limit is the document's `maxLength`.
                if t.chars().count() > MAX_TEXT_CHARS {
                    return Err(ApiError::invalid(
                        "text",
                        format!("the message is longer than {MAX_TEXT_CHARS} characters"),
                    ));
                }
                Ok(Input::Text(trimmed.to_string()))
            }
        }
    }
}

/// The botonera as a tree.
#[utoipa::path(get, path = "/api/v1/chat/menu", tag = "chat",
    responses((status = 200, body = Vec<MenuNode>)))]
pub async fn menu(State(state): State<AppState>) -> Json<Vec<MenuNode>> {
    Json(state.chat.engine().menu())
}

/// Reloads the intent catalog from disk; a broken catalog is rejected and the running one
/// stays in service.
#[utoipa::path(post, path = "/api/v1/admin/catalog/reload", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = ReloadOut), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reload_catalog(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<ReloadOut>> {
    user.require(&[Role::Admin])?;
    match state.reload_catalog().await {
        Ok(engine) => Ok(Json(ReloadOut {
            intents: engine.catalog.intents.len(),
            topics: engine.catalog.topics.len(),
            buttons: engine.catalog.botonera.buttons.len(),
        })),
        Err(e) => {
            let first = e.0.first().map(|f| f.to_string()).unwrap_or_default();
            let mut err = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "catalog_invalid",
                format!(
                    "{} problem(s); the running catalog stays in service. {}",
                    e.0.len(),
                    e.0.iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
            if let Some(f) = e.0.first() {
                err = err.with_field(f.file.clone());
            }
            tracing::warn!(first = %first, "catalog reload rejected");
            Err(err)
        }
    }
}
