//! Catalog review (issue #16): what residents asked that the assistant did not answer,
//! grouped for a municipal team to teach it from the console, with a safety gate and undo.
//! Changes are an overlay of the catalog files stored in the database (`chat::overlay`), in
//! effect at once here and, through the catalog signal, on every instance.

pub mod gate;
pub mod grouping;
pub mod routes;
pub mod store;

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::chat::overlay::{self, DraftIntent, Overlay, TaughtExample};
use crate::chat::Engine;
use crate::http::ApiError;
use crate::staff::auth::{Role, StaffUser};

/// Who may review the catalog.
pub const ROLES: &[Role] = &[Role::Analyst, Role::Admin];

/// The figures before and after a refused change.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GateReport {
    pub before: Vec<gate::Figures>,
    pub after: Vec<gate::Figures>,
    /// "set: figure" for each figure the change lowers.
    pub lowered: Vec<String>,
}

/// Why a change was not made.
pub enum Refusal {
    Api(ApiError),
    /// The change lowers a gated figure and no administrator confirmed it.
    Lowered(GateReport),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::Api(e.into())
    }
}

/// Builds the engine `overlay` would give, off the async threads.
async fn would_be(engine: Arc<Engine>, overlay: Overlay) -> Result<Engine, ApiError> {
    tokio::task::spawn_blocking(move || engine.with_overlay(&overlay))
        .await
        .map_err(ApiError::internal)?
        .map(|(e, _)| e)
        .map_err(|e| ApiError::internal(format!("{:?}", e.0)))
}

/// Teaches `text` as an example of `intent` (None = out of scope): checks it, measures the
/// would-be engine against the running one, and, unless a figure is lowered without an
/// administrator's confirmation, stores it and puts it in service here and everywhere.
pub async fn teach(
    state: &AppState,
    user: &StaffUser,
    intent: Option<String>,
    text: String,
    confirm: bool,
) -> Result<TaughtExample, Refusal> {
    if confirm && user.role != Role::Admin {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "confirmation_requires_admin",
            "only an administrator may confirm a change that lowers the assistant's figures",
        )
        .with_field("confirm")
        .into());
    }
    let _turn = state.teaching.lock().await;
    let running = state.chat.engine();
    if let Some(id) = &intent {
        if running.catalog.intent(id).is_none() {
            return Err(ApiError::invalid("intent", format!("unknown intent {id:?}")).into());
        }
    }
    if let Some(taught) = running.taught(&text) {
        let what = match taught {
            overlay::Taught::Intent(id) => format!("an example of {id}"),
            overlay::Taught::OutOfScope => "out of scope".into(),
        };
        return Err(ApiError::conflict(
            "already_taught",
            format!("this text is already taught as {what}; undo that first"),
        )
        .with_field("text")
        .into());
    }
    let mut next = overlay::load(&state.store).await?;
    next.examples.push(TaughtExample {
        id: 0,
        intent: intent.clone(),
        text: text.clone(),
        created_by: user.username.clone(),
        created_at: 0,
    });
    let candidate = would_be(running.clone(), next).await?;
    let sets = state.config.chat.eval_sets.clone();
    let today = state.today();
    let (candidate, report) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let sets = gate::load_sets(&sets);
        let before = gate::figures(&running, &sets, today);
        let after = gate::figures(&candidate, &sets, today);
        let lowered = gate::lowered(&before, &after);
        tracing::info!(
            sets = sets.len(),
            lowered = lowered.len(),
            ms = started.elapsed().as_millis() as u64,
            "catalog review gate"
        );
        (
            candidate,
            GateReport {
                before,
                after,
                lowered,
            },
        )
    })
    .await
    .map_err(ApiError::internal)?;
    if !report.lowered.is_empty() && !confirm {
        return Err(Refusal::Lowered(report));
    }
    let saved = store::add_example(&state.store, user, intent.as_deref(), &text)
        .await
        .map_err(|e| {
            if e.violates(&crate::store::CATALOG_EXAMPLES_NORMALIZED) {
                ApiError::conflict(
                    "already_taught",
                    "this text is already taught; undo that first",
                )
                .with_field("text")
            } else {
                e.into()
            }
        })?;
    state.chat.replace(candidate);
    state.signal_catalog().await;
    Ok(saved)
}

/// Rebuilds this instance's engine from the stored overlay (after an undo or a change to the
/// new intents) and signals the others.
pub async fn refresh(state: &AppState) -> Result<(), ApiError> {
    let overlay = overlay::load(&state.store).await?;
    let engine = would_be(state.chat.engine(), overlay).await?;
    state.chat.replace(engine);
    state.signal_catalog().await;
    Ok(())
}

/// Whether a text has a letter or digit the review reads (the document's pattern for it).
pub fn has_word(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_ascii_alphanumeric()
            || ('\u{C0}'..='\u{24F}').contains(&c) && c != '\u{D7}' && c != '\u{F7}'
    })
}

/// A new intent's id from its title: its folded words joined by `_`, at most 60 characters.
pub fn intent_id(title: &str) -> String {
    let id: String = overlay::normalize(title)
        .replace(' ', "_")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(60)
        .collect();
    id.trim_matches('_').to_string()
}

/// A new intent as stored, checked against the running catalog's files.
pub fn draft(
    engine: &Engine,
    user: &StaffUser,
    id: String,
    topic: String,
    title: String,
    answer: String,
    buttons: Vec<String>,
) -> Result<DraftIntent, ApiError> {
    let now = crate::store::now_millis();
    let d = DraftIntent {
        id,
        topic,
        title: title.trim().to_string(),
        answer: answer.trim().to_string(),
        buttons,
        created_by: user.username.clone(),
        created_at: now,
        updated_at: now,
    };
    overlay::check_draft(&engine.files, &d).map_err(|problems| {
        ApiError::invalid_fields(
            problems
                .into_iter()
                .map(|(field, message)| crate::http::error::FieldError {
                    field: field.to_string(),
                    message,
                })
                .collect(),
        )
    })?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn intent_ids_come_from_titles() {
        assert_eq!(
            super::intent_id("Horario del Cementerio"),
            "horario_del_cementerio"
        );
        assert_eq!(super::intent_id("¡Ñuñoa!"), "nunoa");
    }
}
