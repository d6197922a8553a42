//! The register of processing for administrators (/staff/admin/privacidad): the same text as
//! the public /privacidad, from the same partial, with the live settings that feed it.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use minijinja::context;

use super::{Console, PageResult};
use crate::app::AppState;
use crate::staff::auth::Role;
use crate::web::privacy::{contact_email, controller, days_es, register_context, thousands};

pub fn router() -> Router<AppState> {
    Router::new().route("/staff/admin/privacidad", get(register_page))
}

async fn register_page(State(state): State<AppState>, c: Console) -> PageResult {
    c.require(&[Role::Admin])?;
    let config = &state.config;
    let engine = state.chat.engine();
    let profile = &engine.catalog.profile;
    let from_profile = "tomado del perfil del municipio";
    let settings = vec![
        context! {
            label => "Responsable del tratamiento",
            value => controller(config, profile),
            note => config.privacy.controller.trim().is_empty().then_some(from_profile),
            key => "privacy.controller", env => "VENTANILLA_PRIVACY_CONTROLLER",
        },
        context! {
            label => "Correo de contacto para datos personales",
            value => contact_email(config, profile),
            note => if !config.privacy.contact_email.trim().is_empty() {
                None
            } else if contact_email(config, profile).is_empty() {
                Some("sin correo: se indica el formulario de la OIRS")
            } else {
                Some(from_profile)
            },
            key => "privacy.contact_email", env => "VENTANILLA_PRIVACY_CONTACT_EMAIL",
        },
        context! {
            label => "Datos personales de un caso, después de cerrado",
            value => days_es(config.retention.case_personal_data_days),
            note => "luego se anonimiza",
            key => "retention.case_personal_data_days",
            env => "VENTANILLA_RETENTION_CASE_PERSONAL_DATA_DAYS",
        },
        context! {
            label => "Texto de los mensajes del chat",
            value => days_es(config.analytics.text_retention_days),
            note => "los conteos se conservan sin texto",
            key => "analytics.text_retention_days",
            env => "VENTANILLA_ANALYTICS_TEXT_RETENTION_DAYS",
        },
        context! {
            label => "Conversación del chat inactiva",
            value => format!("{} minutos", thousands(config.chat.session_ttl_minutes)),
            note => "luego se descarta",
            key => "chat.session_ttl_minutes",
            env => "VENTANILLA_CHAT_SESSION_TTL_MINUTES",
        },
    ];
    Ok(c.page(
        &state,
        "privacidad.html",
        "Registro de actividades de tratamiento",
        context! { settings => settings, ..register_context(config, profile) },
    ))
}
