//! Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::contract;
use super::error::ApiError;
use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "ok", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready", body = String, content_type = "text/plain"),
              (status = 503, description = "database unreachable", body = super::error::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::unavailable("the database does not answer"))
        }
        Err(_) => Err(ApiError::unavailable("the database did not answer in time")),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.refresh_gauges();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// This document. Fields that name catalog or database entries (chat buttons, case types,
/// topics, departments) list this deployment's values.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    let live = match live_values(&state).await {
        Ok(live) => Some(live),
        Err(e) => {
            // The document stays available without the store; only the live lists are missing.
            tracing::warn!(error = %e, "openapi: live values unavailable");
            None
        }
    };
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    Json(contract::document(doc, live.as_ref()))
}

async fn live_values(state: &AppState) -> Result<contract::Live, crate::store::StoreError> {
    let engine = state.chat.engine();
    let catalog = &engine.catalog;
    let today = state.today();
    let mut buttons = vec![crate::chat::engine::MENU_BUTTON.to_string()];
    buttons.extend(catalog.botonera.buttons.keys().cloned());
    buttons.extend(
        catalog
            .intents
            .iter()
            .filter(|i| i.valid_on(today))
            .map(|i| format!("{}{}", crate::chat::engine::INTENT_BUTTON_PREFIX, i.id)),
    );
    buttons.sort();
    let mut topics: Vec<String> = catalog.topic_ids().map(String::from).collect();
    topics.sort();
    let case_types = crate::oirs::service::case_types(&state.store)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    let departments = crate::oirs::service::departments(&state.store)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let mut intents: Vec<String> = catalog.intents.iter().map(|i| i.id.clone()).collect();
    intents.sort();
    intents.dedup();
    Ok(contract::Live {
        intents,
        buttons,
        case_types,
        topics,
        departments,
    })
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Ventanilla", description = "Digital front desk of a Chilean municipality: chat assistant, OIRS and analytics."),
    paths(
        healthz, readyz, metrics, openapi,
        crate::chat::routes::create_session,
        crate::chat::routes::post_message,
        crate::chat::routes::menu,
        crate::chat::feedback::post_feedback,
        crate::chat::routes::reload_catalog,
        crate::staff::routes::login,
        crate::staff::routes::logout,
        crate::oirs::routes::list_case_types,
        crate::oirs::routes::list_topics,
        crate::oirs::routes::list_rights,
        crate::oirs::routes::file_case,
        crate::oirs::routes::track_case,
        crate::oirs::routes::track_case_post,
        crate::oirs::satisfaction::rate_answer,
        crate::oirs::uploads::upload,
        crate::oirs::uploads::download,
        crate::staff::attachments::read,
        crate::staff::attachments::upload,
        crate::staff::templates::list_templates,
        crate::staff::templates::create,
        crate::staff::templates::replace,
        crate::staff::templates::delete,
        crate::open311::keys::list_keys,
        crate::open311::keys::issue_key,
        crate::open311::keys::revoke_key,
        crate::staff::cases::list,
        crate::staff::cases::detail,
        crate::staff::cases::register,
        crate::staff::cases::add_event,
        crate::staff::cases::pending,
        crate::staff::subjects::gather,
        crate::staff::subjects::rectify,
        crate::staff::subjects::anonymize,
        crate::staff::subjects::block,
        crate::staff::subjects::unblock,
        crate::staff::admin::list_departments,
        crate::staff::admin::put_department,
        crate::staff::admin::list_case_types,
        crate::staff::admin::put_case_type,
        crate::staff::admin::list_rules,
        crate::staff::admin::put_rule,
        crate::staff::admin::delete_rule,
        crate::staff::admin::list_holidays,
        crate::staff::admin::put_holiday,
        crate::staff::admin::delete_holiday,
        crate::staff::admin::list_outbox,
        crate::staff::admin::retry_outbox,
        crate::staff::admin::list_audit,
        crate::staff::users::list,
        crate::staff::users::create,
        crate::staff::users::update,
        crate::staff::access::start_enrolment,
        crate::staff::access::confirm_enrolment,
        crate::staff::access::list_grants,
        crate::staff::access::create_grant,
        crate::staff::access::get_grant,
        crate::staff::access::revoke_grant,
        crate::staff::access::grant_actions,
        crate::analytics::routes::interactions,
        crate::analytics::routes::export,
        crate::analytics::routes::monthly,
        crate::review::routes::review,
        crate::review::routes::list_examples,
        crate::review::routes::add_example,
        crate::review::routes::remove_example,
        crate::review::routes::list_intents,
        crate::review::routes::add_intent,
        crate::review::routes::update_intent,
        crate::review::routes::remove_intent,
        crate::analytics::routes::satisfaction,
        crate::analytics::routes::feedback,
    ),
    components(schemas(
        super::error::ErrorBody, super::error::ErrorDetail,
        crate::chat::Reply, crate::chat::ReplyButton, crate::chat::ReplyLink,
        crate::chat::Match, crate::chat::Alternative, crate::chat::MenuNode,
        crate::chat::routes::SessionCreated, crate::chat::routes::MessageIn,
        crate::chat::routes::MessageOut, crate::chat::routes::ReloadOut,
        crate::staff::routes::LoginIn, crate::staff::routes::LoginOut, crate::staff::auth::Role,
        crate::staff::users::UserInfo, crate::staff::users::UserIn, crate::staff::users::UserUpdate,
        crate::oirs::routes::CaseIn, crate::oirs::routes::TrackOut, crate::oirs::routes::PublicEvent,
        crate::oirs::routes::TopicOut, crate::oirs::service::Filed, crate::oirs::service::CaseType,
        crate::oirs::service::CaseRecord, crate::oirs::service::CaseEvent, crate::oirs::service::EventIn,
        crate::oirs::service::PendingRow, crate::oirs::service::Department, crate::oirs::service::RoutingRule,
        crate::oirs::service::Holiday, crate::oirs::domain::Status, crate::oirs::domain::EventKind,
        crate::oirs::domain::Channel, crate::staff::cases::CaseSummary, crate::staff::cases::CaseDetail,
        crate::staff::cases::StaffCaseIn, crate::staff::admin::DepartmentIn, crate::staff::admin::CaseTypeIn,
        crate::staff::admin::HolidayIn, crate::staff::admin::OutboxOut, crate::staff::admin::AuditEntry,
        crate::outbox::OutboxMessage,
        crate::oirs::calendar::Clock, crate::oirs::domain::DataRight, crate::oirs::routes::RightOut,
        crate::oirs::service::DataSubject, crate::oirs::service::SubjectCase,
        crate::oirs::service::SubjectMessage, crate::oirs::service::SubjectChat,
        crate::oirs::service::SubjectInteraction, crate::oirs::service::SubjectContact,
        crate::oirs::service::SubjectBlock, crate::oirs::service::Rectification,
        crate::staff::subjects::Rectified, crate::staff::subjects::Anonymized,
        crate::staff::subjects::BlockIn, crate::staff::subjects::Blocked,
        crate::analytics::aggregate::Aggregate, crate::analytics::aggregate::Group,
        crate::analytics::aggregate::GroupBy,
        crate::review::routes::ReviewOut, crate::review::routes::ReviewGroup,
        crate::review::routes::UnhelpfulReview,
        crate::review::routes::ExampleIn, crate::review::routes::GateRefusal,
        crate::review::routes::IntentIn, crate::review::GateReport, crate::review::gate::Figures,
        crate::chat::overlay::TaughtExample, crate::chat::overlay::DraftIntent,
        crate::oirs::satisfaction::Survey, crate::oirs::satisfaction::SatisfactionIn,
        crate::oirs::satisfaction::SatisfactionOut, crate::oirs::satisfaction::SatisfactionGroup,
        crate::oirs::satisfaction::Rated,
        crate::chat::feedback::FeedbackIn, crate::chat::feedback::IntentFeedback,
        crate::chat::feedback::UnhelpfulAnswer, crate::chat::feedback::UnhelpfulText,
        crate::analytics::routes::SatisfactionOut, crate::analytics::routes::DepartmentSatisfaction,
        crate::analytics::routes::FeedbackOut,
        crate::oirs::attachments::AttachmentOut, crate::oirs::attachments::AttachmentInfo,
        crate::oirs::uploads::FileUpload,
        crate::staff::templates::Template, crate::staff::templates::TemplateIn,
        crate::staff::access::EnrolmentStarted, crate::staff::access::ConfirmIn,
        crate::staff::access::Confirmed, crate::staff::access::GrantIn,
        crate::staff::access::GrantCreated, crate::staff::support::Grant,
        crate::staff::support::GrantAction, crate::staff::support::Summary,
        crate::staff::support::Scope,
        crate::open311::keys::ApiKeyInfo, crate::open311::keys::IssuedKey, crate::open311::keys::KeyIn,
    )),
    tags((name = "operations"), (name = "chat"), (name = "admin"), (name = "staff"), (name = "oirs"), (name = "analytics"))
)]
pub struct ApiDoc;
