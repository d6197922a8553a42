//! Chat sessions live in the store, so any instance behind the load balancer can continue a
//! conversation.

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};
use crate::with_pool;

/// What the bot remembers between messages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub turns: u32,
    /// Consecutive messages the bot did not understand; after two it insists on a person.
    pub misses: u32,
    pub last_intent: Option<String>,
}

pub async fn create(store: &Store, id: &str, now: i64) -> Result<(), StoreError> {
    let state = serde_json::to_string(&SessionState::default()).unwrap_or_else(|_| "{}".into());
    with_pool!(store, pool => {
        sqlx::query("INSERT INTO chat_sessions (id, created_at, updated_at, state) VALUES ($1, $2, $2, $3)")
            .bind(id)
            .bind(now)
            .bind(state)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// The session's state, or `None` when it does not exist or idled past `not_before`.
pub async fn load(
    store: &Store,
    id: &str,
    not_before: i64,
) -> Result<Option<SessionState>, StoreError> {
    let row: Option<(String,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT state FROM chat_sessions WHERE id = $1 AND updated_at >= $2")
            .bind(id)
            .bind(not_before)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|(s,)| serde_json::from_str(&s).unwrap_or_default()))
}

pub async fn save(
    store: &Store,
    id: &str,
    state: &SessionState,
    now: i64,
) -> Result<(), StoreError> {
    let state = serde_json::to_string(state).unwrap_or_else(|_| "{}".into());
    with_pool!(store, pool => {
        sqlx::query("UPDATE chat_sessions SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Forgets sessions idle since before `cutoff`; returns how many.
pub async fn purge_idle(store: &Store, cutoff: i64) -> Result<u64, StoreError> {
    let n = with_pool!(store, pool => {
        sqlx::query("DELETE FROM chat_sessions WHERE updated_at < $1")
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n)
}
