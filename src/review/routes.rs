//! Catalog review HTTP API (analyst or admin): the worklist, taught examples, new intents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{draft, grouping, intent_id, refresh, store, teach, GateReport, Refusal, ROLES};
use crate::app::AppState;
use crate::chat::overlay::{self, DraftIntent, TaughtExample};
use crate::http::error::{ErrorBody, ErrorDetail};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::staff::auth::StaffUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/catalog/review", get(review))
        .route(
            "/api/v1/admin/catalog/examples",
            get(list_examples).post(add_example),
        )
        .route(
            "/api/v1/admin/catalog/examples/{id}",
            delete(remove_example),
        )
        .route(
            "/api/v1/admin/catalog/intents",
            get(list_intents).post(add_intent),
        )
        .route(
            "/api/v1/admin/catalog/intents/{id}",
            put(update_intent).delete(remove_intent),
        )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// First local date (YYYY-MM-DD), inclusive; default 30 days before `to`.
    #[param(value_type = Option<NaiveDate>)]
    pub from: Option<String>,
    /// Last local date, inclusive; default today.
    #[param(value_type = Option<NaiveDate>)]
    pub to: Option<String>,
}

/// One question residents asked that the assistant did not answer.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReviewGroup {
    /// The most frequent wording, masked.
    pub text: String,
    /// Distinct conversations that asked it.
    pub count: usize,
    pub messages: usize,
    /// `clarify` or `fallback`.
    pub decision: String,
    /// The assistant's best guess (intent id) and its title.
    pub best_intent: Option<String>,
    pub best_title: Option<String>,
    pub confidence: Option<f64>,
    pub variants: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReviewOut {
    pub groups: Vec<ReviewGroup>,
    /// Answers residents marked as not useful ("¿Le sirvió?" → no) in the date range, most
    /// often first, with the (masked) questions they answered: taught to another intent or
    /// marked out of scope like any group.
    pub unhelpful: Vec<UnhelpfulReview>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UnhelpfulReview {
    pub intent: String,
    /// The intent's title, or null when it no longer exists.
    pub title: Option<String>,
    /// How many times its answer was marked not useful, and rated at all.
    pub unhelpful: i64,
    pub rated: i64,
    pub texts: Vec<crate::chat::feedback::UnhelpfulText>,
}

fn day(field: &str, s: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    s.as_deref()
        .map(|v| {
            crate::http::contract::iso_date(v)
                .ok_or_else(|| ApiError::invalid(field, "expected a date like 2026-04-20"))
        })
        .transpose()
}

/// The worklist: messages clarified or fallen back on in the date range, masked, grouped by
/// text and near-duplicates, largest first; texts already taught are left out.
#[utoipa::path(get, path = "/api/v1/admin/catalog/review", tag = "admin", params(ReviewQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ReviewOut), (status = 422, body = ErrorBody)))]
pub async fn review(
    State(state): State<AppState>,
    user: StaffUser,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> ApiResult<Json<ReviewOut>> {
    user.require(ROLES)?;
    let to = day("to", &q.to)?.unwrap_or_else(|| state.today());
    let from = day("from", &q.from)?.unwrap_or(to - chrono::Duration::days(30));
    if from > to {
        return Err(ApiError::invalid("from", "from is after to"));
    }
    Ok(Json(worklist(&state, from, to).await?))
}

/// The worklist for the API and the console.
pub async fn worklist(state: &AppState, from: NaiveDate, to: NaiveDate) -> ApiResult<ReviewOut> {
    let rows = store::unanswered(&state.store, from, to).await?;
    let unhelpful = crate::chat::feedback::unhelpful_answers(&state.store, from, to).await?;
    let engine = state.chat.engine();
    let groups = grouping::group(&rows, &|key| engine.taught(key).is_some());
    Ok(ReviewOut {
        groups: groups
            .into_iter()
            .map(|g| ReviewGroup {
                text: crate::analytics::mask_personal_data(&g.text),
                count: g.count,
                messages: g.messages,
                decision: g.decision,
                best_title: g
                    .best_intent
                    .as_deref()
                    .and_then(|id| engine.catalog.intent(id))
                    .map(|i| i.title.clone()),
                best_intent: g.best_intent,
                confidence: g.confidence,
                variants: g
                    .variants
                    .iter()
                    .map(|v| crate::analytics::mask_personal_data(v))
                    .collect(),
            })
            .collect(),
        unhelpful: unhelpful
            .into_iter()
            .map(|u| UnhelpfulReview {
                title: engine.catalog.intent(&u.intent).map(|i| i.title.clone()),
                intent: u.intent,
                unhelpful: u.unhelpful,
                rated: u.rated,
                texts: u.texts,
            })
            .collect(),
    })
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExampleIn {
    /// The intent the text is an example of; null marks it out of scope.
    pub intent: Option<String>,
    /// What the resident wrote (as the worklist shows it): 1 to 300 characters, not blank.
    #[schema(min_length = 1, max_length = 300)]
    pub text: String,
    /// An administrator's confirmation of a change that lowers a gated figure.
    #[serde(default)]
    pub confirm: bool,
}

/// A refused change: the error and, for `figures_lowered`, the figures before and after
/// (`already_taught` carries none).
#[derive(Serialize, ToSchema)]
pub struct GateRefusal {
    pub error: ErrorDetail,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<GateReport>,
}

/// The texts taught so far, newest first.
#[utoipa::path(get, path = "/api/v1/admin/catalog/examples", tag = "admin",
    security(("bearer" = [])), responses((status = 200, body = Vec<TaughtExample>)))]
pub async fn list_examples(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<TaughtExample>>> {
    user.require(ROLES)?;
    let mut examples = overlay::load(&state.store).await?.examples;
    examples.reverse();
    Ok(Json(examples))
}

pub const MAX_EXAMPLE_CHARS: usize = 300;

/// Teaches a text: an example of an intent, or out of scope (`intent: null`). In effect at
/// once on every instance, audited. A change that lowers a figure of the evaluation sets is
/// refused (409 `figures_lowered`, with the figures) unless an administrator confirms.
#[utoipa::path(post, path = "/api/v1/admin/catalog/examples", tag = "admin",
    request_body = ExampleIn, security(("bearer" = [])),
    responses((status = 201, body = TaughtExample),
              (status = 403, body = ErrorBody, description = "not an analyst or admin, or an analyst's `confirm` (`confirmation_requires_admin`)"),
              (status = 409, body = GateRefusal, description = "`figures_lowered` (with the figures) or `already_taught`"),
              (status = 422, body = ErrorBody)))]
pub async fn add_example(
    State(state): State<AppState>,
    user: StaffUser,
    ApiJson(input): ApiJson<ExampleIn>,
) -> Response {
    if let Err(e) = user.require(ROLES) {
        return e.into_response();
    }
    let text = input.text.trim().to_string();
    if !super::has_word(&text) || overlay::normalize(&text).is_empty() {
        return ApiError::invalid("text", "the text has no words").into_response();
    }
    if input.text.chars().count() > MAX_EXAMPLE_CHARS {
        return ApiError::invalid("text", format!("at most {MAX_EXAMPLE_CHARS} characters"))
            .into_response();
    }
    match teach(&state, &user, input.intent, text, input.confirm).await {
        Ok(saved) => (StatusCode::CREATED, Json(saved)).into_response(),
        Err(Refusal::Api(e)) => e.into_response(),
        Err(Refusal::Lowered(report)) => {
            let message = format!(
                "the change lowers {}; an administrator may confirm it",
                report.lowered.join(", ")
            );
            let body = GateRefusal {
                error: ErrorDetail {
                    code: "figures_lowered".into(),
                    message,
                    field: Some("text".into()),
                    fields: Vec::new(),
                },
                figures: Some(report),
            };
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
    }
}

/// Undoes a taught example: the text is read as before it was taught, at once everywhere.
#[utoipa::path(delete, path = "/api/v1/admin/catalog/examples/{id}", tag = "admin",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_example(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    user.require(ROLES)?;
    let _turn = state.teaching.lock().await;
    if !store::remove_example(&state.store, &user, id).await? {
        return Err(ApiError::not_found("example"));
    }
    refresh(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentIn {
    /// A topic id (`GET /api/v1/oirs/topics`).
    pub topic: String,
    /// What residents read on a button: 3 to 120 characters.
    #[schema(min_length = 3, max_length = 120)]
    pub title: String,
    /// The answer, with the municipality profile's `{{placeholders}}`: 1 to 2,000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub answer: String,
    /// Botonera button ids offered after the answer.
    #[serde(default)]
    #[schema(max_items = 6)]
    pub buttons: Vec<String>,
}

fn check_lengths(i: &IntentIn) -> Result<(), ApiError> {
    let title = i.title.trim().chars().count();
    if !(3..=120).contains(&title) || i.title.chars().count() > 120 {
        return Err(ApiError::invalid("title", "3 to 120 characters"));
    }
    if i.answer.trim().is_empty() || i.answer.chars().count() > 2000 {
        return Err(ApiError::invalid("answer", "1 to 2,000 characters"));
    }
    if i.buttons.len() > 6 {
        return Err(ApiError::invalid("buttons", "at most 6 buttons"));
    }
    Ok(())
}

/// The new intents written in the review.
#[utoipa::path(get, path = "/api/v1/admin/catalog/intents", tag = "admin",
    security(("bearer" = [])), responses((status = 200, body = Vec<DraftIntent>)))]
pub async fn list_intents(
    State(state): State<AppState>,
    user: StaffUser,
) -> ApiResult<Json<Vec<DraftIntent>>> {
    user.require(ROLES)?;
    Ok(Json(overlay::load(&state.store).await?.intents))
}

/// Writes a new intent (its id comes from the title); it answers the texts taught to it.
#[utoipa::path(post, path = "/api/v1/admin/catalog/intents", tag = "admin",
    request_body = IntentIn, security(("bearer" = [])),
    responses((status = 201, body = DraftIntent), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn add_intent(
    State(state): State<AppState>,
    user: StaffUser,
    ApiJson(input): ApiJson<IntentIn>,
) -> ApiResult<(StatusCode, Json<DraftIntent>)> {
    user.require(ROLES)?;
    check_lengths(&input)?;
    let id = intent_id(&input.title);
    if id.is_empty() {
        return Err(ApiError::invalid(
            "title",
            "the title needs letters or digits",
        ));
    }
    let _turn = state.teaching.lock().await;
    let engine = state.chat.engine();
    if engine.catalog.intent(&id).is_some() {
        return Err(ApiError::conflict(
            "intent_exists",
            format!("an intent {id:?} already exists"),
        )
        .with_field("title"));
    }
    let d = draft(
        &engine,
        &user,
        id,
        input.topic,
        input.title,
        input.answer,
        input.buttons,
    )?;
    store::save_intent(&state.store, &user, &d, false)
        .await
        .map_err(|e| {
            if e.violates(&crate::store::CATALOG_INTENTS_ID) {
                ApiError::conflict("intent_exists", "an intent with this title already exists")
                    .with_field("title")
            } else {
                e.into()
            }
        })?;
    refresh(&state).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// Changes a new intent's topic, title, answer or buttons (its id stays).
#[utoipa::path(put, path = "/api/v1/admin/catalog/intents/{id}", tag = "admin",
    params(("id" = String, Path)), request_body = IntentIn, security(("bearer" = [])),
    responses((status = 200, body = DraftIntent), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_intent(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<IntentIn>,
) -> ApiResult<Json<DraftIntent>> {
    user.require(ROLES)?;
    let _turn = state.teaching.lock().await;
    let existing = overlay::load(&state.store)
        .await?
        .intents
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| ApiError::not_found("new intent"))?;
    check_lengths(&input)?;
    let engine = state.chat.engine();
    let mut d = draft(
        &engine,
        &user,
        id,
        input.topic,
        input.title,
        input.answer,
        input.buttons,
    )?;
    d.created_by = existing.created_by;
    d.created_at = existing.created_at;
    if !store::save_intent(&state.store, &user, &d, true).await? {
        return Err(ApiError::not_found("new intent"));
    }
    refresh(&state).await?;
    Ok(Json(d))
}

/// Removes a new intent and the texts taught to it.
#[utoipa::path(delete, path = "/api/v1/admin/catalog/intents/{id}", tag = "admin",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_intent(
    State(state): State<AppState>,
    user: StaffUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    user.require(ROLES)?;
    let _turn = state.teaching.lock().await;
    if !store::remove_intent(&state.store, &user, &id).await? {
        return Err(ApiError::not_found("new intent"));
    }
    refresh(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}
