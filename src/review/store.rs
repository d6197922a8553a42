//! The review's reads and writes: unanswered messages, and the overlay's rows, each change
//! written in one transaction with its audit entry.

use chrono::NaiveDate;

use super::grouping::Unanswered;
use crate::chat::overlay::{normalize, DraftIntent, TaughtExample};
use crate::staff::auth::StaffUser;
use crate::store::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

/// At most this many unanswered messages are read for one worklist (the most recent).
const MAX_ROWS: i64 = 20_000;

/// Messages the assistant clarified or fell back on, with local dates in `from..=to`
/// (rows recorded before decisions were kept count as what their fallback flag says).
pub async fn unanswered(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Unanswered>, StoreError> {
    type Row = (Option<String>, String, String, Option<String>, Option<f64>);
    let rows: Vec<Row> = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT session_id, text_masked, COALESCE(decision, 'fallback'), best_intent, confidence \
             FROM interactions WHERE kind = 'message' AND text_masked IS NOT NULL \
             AND local_date >= $1 AND local_date <= $2 \
             AND (decision IN ('clarify', 'fallback') OR (decision IS NULL AND fallback)) \
             ORDER BY occurred_at DESC LIMIT $3",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .bind(MAX_ROWS)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(session, text, decision, best_intent, confidence)| Unanswered {
                session,
                text,
                decision,
                best_intent,
                confidence,
            },
        )
        .collect())
}

const AUDIT: &str =
    "INSERT INTO audit_log (at, user_id, username, action, detail) VALUES ($1, $2, $3, $4, $5)";

/// Adds a taught example and its audit entry; returns it.
pub async fn add_example(
    store: &Store,
    user: &StaffUser,
    intent: Option<&str>,
    text: &str,
) -> Result<TaughtExample, StoreError> {
    let now = now_millis();
    let detail = format!("{}: {text}", intent.unwrap_or("fuera de ámbito"));
    let (id,): (i64,) = write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let row: (i64,) = sqlx::query_as(
            "INSERT INTO catalog_examples (intent, text, normalized, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(intent)
        .bind(text)
        .bind(normalize(text))
        .bind(&user.username)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(AUDIT)
            .bind(now).bind(user.id).bind(&user.username).bind("ensenar_ejemplo").bind(&detail)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    Ok(TaughtExample {
        id,
        intent: intent.map(String::from),
        text: text.to_string(),
        created_by: user.username.clone(),
        created_at: now,
    })
}

/// Removes a taught example (audited); false when there is none with `id`.
pub async fn remove_example(store: &Store, user: &StaffUser, id: i64) -> Result<bool, StoreError> {
    let now = now_millis();
    write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let gone: Option<(Option<String>, String)> = sqlx::query_as(
            "DELETE FROM catalog_examples WHERE id = $1 RETURNING intent, text",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((intent, text)) = gone else {
            return Ok(false);
        };
        let detail = format!("{}: {text}", intent.as_deref().unwrap_or("fuera de ámbito"));
        sqlx::query(AUDIT)
            .bind(now).bind(user.id).bind(&user.username).bind("deshacer_ejemplo").bind(&detail)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(true)
}

/// Writes a new intent (insert, or update when `update`), audited.
pub async fn save_intent(
    store: &Store,
    user: &StaffUser,
    draft: &DraftIntent,
    update: bool,
) -> Result<bool, StoreError> {
    let buttons = serde_json::to_string(&draft.buttons).unwrap_or_else(|_| "[]".into());
    let action = if update {
        "editar_respuesta"
    } else {
        "nueva_respuesta"
    };
    write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        let done = if update {
            sqlx::query(
                "UPDATE catalog_intents SET topic = $1, title = $2, answer = $3, buttons = $4, \
                 updated_at = $5 WHERE id = $6",
            )
            .bind(&draft.topic).bind(&draft.title).bind(&draft.answer).bind(&buttons)
            .bind(draft.updated_at).bind(&draft.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "INSERT INTO catalog_intents (id, topic, title, answer, buttons, created_by, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&draft.id).bind(&draft.topic).bind(&draft.title).bind(&draft.answer)
            .bind(&buttons).bind(&draft.created_by).bind(draft.created_at).bind(draft.updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        if done == 0 {
            return Ok(false);
        }
        sqlx::query(AUDIT)
            .bind(draft.updated_at).bind(user.id).bind(&user.username).bind(action).bind(&draft.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(true)
}

/// Removes a new intent and the examples taught to it (audited); false when there is none.
pub async fn remove_intent(store: &Store, user: &StaffUser, id: &str) -> Result<bool, StoreError> {
    let now = now_millis();
    write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM catalog_examples WHERE intent = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM catalog_intents WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query(AUDIT)
            .bind(now).bind(user.id).bind(&user.username).bind("borrar_respuesta").bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(true)
}
