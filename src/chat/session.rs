//! Chat sessions live in the store, so any instance behind the load balancer can continue a
//! conversation.

use super::conversation::Conversation;
use crate::store::{Store, StoreError};
use crate::with_pool;

/// A session as loaded: its state and when it was last written.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub state: Conversation,
    pub updated_at: i64,
}

/// How stale `updated_at` may get before a message refreshes it even with no state change.
pub const TOUCH_EVERY_MS: i64 = 60_000;

impl Loaded {
    /// Whether saving `next` at `now` is needed.
    pub fn needs_save(&self, next: &Conversation, now: i64) -> bool {
        &self.state != next || now - self.updated_at >= TOUCH_EVERY_MS
    }
}

pub async fn create(store: &Store, id: &str, now: i64) -> Result<(), StoreError> {
    let state = serde_json::to_string(&Conversation::default()).unwrap_or_else(|_| "{}".into());
    let _gate = store.write_gate().await;
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
pub async fn load(store: &Store, id: &str, not_before: i64) -> Result<Option<Loaded>, StoreError> {
    let row: Option<(String, i64)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT state, updated_at FROM chat_sessions WHERE id = $1 AND updated_at >= $2")
            .bind(id)
            .bind(not_before)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|(s, updated_at)| Loaded {
        state: serde_json::from_str(&s).unwrap_or_default(),
        updated_at,
    }))
}

pub async fn save(
    store: &Store,
    id: &str,
    state: &Conversation,
    now: i64,
) -> Result<(), StoreError> {
    let state = serde_json::to_string(state).unwrap_or_else(|_| "{}".into());
    let _gate = store.write_gate().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_only_on_change_or_when_stale() {
        let loaded = Loaded {
            state: Conversation::default(),
            updated_at: 1_000,
        };
        assert!(!loaded.needs_save(&Conversation::default(), 1_000 + TOUCH_EVERY_MS - 1));
        assert!(loaded.needs_save(
            &Conversation {
                misses: 1,
                ..Conversation::default()
            },
            1_001
        ));
        assert!(loaded.needs_save(&Conversation::default(), 1_000 + TOUCH_EVERY_MS));
    }
}
