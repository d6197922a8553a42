//! Chat sessions live in the store, so any instance behind the load balancer can continue a
//! conversation.
//!
//! With PostgreSQL (several instances) every message reads its session's row and writes it
//! back when it changed. With the embedded SQLite store, which one process serves, that
//! process also keeps the sessions in memory and writes their changes behind, in one batch
//! every [`FLUSH_EVERY`]: a message then costs no database round trip, and a crash loses at
//! most that much of a conversation's context (sessions are relaxed-durability data anyway).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::conversation::Conversation;
use crate::store::{Backend, Store, StoreError};
use crate::{with_pool, write_pool};

/// How often the sessions kept in memory are written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Sessions kept in memory at most; beyond it the least recently used written ones go.
const MAX_LOCAL: usize = 100_000;

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

async fn create(store: &Store, id: &str, now: i64) -> Result<(), StoreError> {
    let state = serde_json::to_string(&Conversation::default()).unwrap_or_else(|_| "{}".into());
    write_pool!(store, pool => {
        sqlx::query("INSERT INTO chat_sessions (id, created_at, updated_at, state) VALUES ($1, $2, $2, $3)")
            .bind(id)
            .bind(now)
            .bind(state)
            .execute(pool)
            .await?;
    });
    Ok(())
}

async fn load(store: &Store, id: &str, not_before: i64) -> Result<Option<Loaded>, StoreError> {
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

async fn save(store: &Store, id: &str, state: &Conversation, now: i64) -> Result<(), StoreError> {
    let state = serde_json::to_string(state).unwrap_or_else(|_| "{}".into());
    write_pool!(store, pool => {
        sqlx::query("UPDATE chat_sessions SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

#[derive(Clone, Debug)]
struct Entry {
    state: Conversation,
    updated_at: i64,
    /// Changed since it was last written.
    dirty: bool,
}

/// The chat sessions: the store, plus the in-memory copy when this process is the store's
/// only user (SQLite).
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    local: Option<Arc<Mutex<HashMap<String, Entry>>>>,
}

impl Sessions {
    pub fn new(store: Store) -> Self {
        let local = (store.backend() == Backend::Sqlite).then(Default::default);
        Self { store, local }
    }

    fn entries(&self) -> Option<std::sync::MutexGuard<'_, HashMap<String, Entry>>> {
        self.local
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub async fn create(&self, id: &str, now: i64) -> Result<(), StoreError> {
        create(&self.store, id, now).await?;
        if let Some(mut entries) = self.entries() {
            if entries.len() >= MAX_LOCAL {
                evict_written(&mut entries, MAX_LOCAL / 10);
            }
            entries.insert(
                id.to_string(),
                Entry {
                    state: Conversation::default(),
                    updated_at: now,
                    dirty: false,
                },
            );
        }
        Ok(())
    }

    /// The session's state, or `None` when it does not exist or idled past `not_before`.
    pub async fn load(&self, id: &str, not_before: i64) -> Result<Option<Loaded>, StoreError> {
        if let Some(entries) = self.entries() {
            if let Some(e) = entries.get(id) {
                return Ok((e.updated_at >= not_before).then(|| Loaded {
                    state: e.state.clone(),
                    updated_at: e.updated_at,
                }));
            }
        }
        let loaded = load(&self.store, id, not_before).await?;
        if let (Some(l), Some(mut entries)) = (&loaded, self.entries()) {
            entries.entry(id.to_string()).or_insert_with(|| Entry {
                state: l.state.clone(),
                updated_at: l.updated_at,
                dirty: false,
            });
        }
        Ok(loaded)
    }

    pub async fn save(&self, id: &str, state: &Conversation, now: i64) -> Result<(), StoreError> {
        if let Some(mut entries) = self.entries() {
            entries.insert(
                id.to_string(),
                Entry {
                    state: state.clone(),
                    updated_at: now,
                    dirty: true,
                },
            );
            return Ok(());
        }
        save(&self.store, id, state, now).await
    }

    /// Writes the sessions changed in memory since the last flush, in one transaction.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let dirty: Vec<(String, Entry)> = match self.entries() {
            Some(mut entries) => entries
                .iter_mut()
                .filter(|(_, e)| e.dirty)
                .map(|(id, e)| {
                    e.dirty = false;
                    (id.clone(), e.clone())
                })
                .collect(),
            None => return Ok(0),
        };
        if dirty.is_empty() {
            return Ok(0);
        }
        let written = save_many(&self.store, &dirty).await;
        if written.is_err() {
            // Written next time, unless a newer state replaced them meanwhile.
            if let Some(mut entries) = self.entries() {
                for (id, e) in &dirty {
                    if let Some(cur) = entries.get_mut(id) {
                        if cur.updated_at == e.updated_at {
                            cur.dirty = true;
                        }
                    }
                }
            }
        }
        written.map(|()| dirty.len())
    }

    /// Writes changes behind every [`FLUSH_EVERY`] until aborted (with SQLite only).
    pub fn start_flusher(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.local.as_ref()?;
        let sessions = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = sessions.flush().await {
                    tracing::warn!(error = %e, "chat sessions not written; retrying");
                }
            }
        }))
    }

    /// Forgets sessions idle since before `cutoff` (written ones first); returns how many
    /// rows went.
    pub async fn purge_idle(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.flush().await?;
        if let Some(mut entries) = self.entries() {
            entries.retain(|_, e| e.updated_at >= cutoff);
        }
        purge_idle(&self.store, cutoff).await
    }
}

/// Drops `n` written (clean) entries, least recently used first.
fn evict_written(entries: &mut HashMap<String, Entry>, n: usize) {
    let mut clean: Vec<(i64, String)> = entries
        .iter()
        .filter(|(_, e)| !e.dirty)
        .map(|(id, e)| (e.updated_at, id.clone()))
        .collect();
    clean.sort_unstable();
    for (_, id) in clean.into_iter().take(n) {
        entries.remove(&id);
    }
}

async fn save_many(store: &Store, dirty: &[(String, Entry)]) -> Result<(), StoreError> {
    write_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        for (id, e) in dirty {
            let state = serde_json::to_string(&e.state).unwrap_or_else(|_| "{}".into());
            sqlx::query("UPDATE chat_sessions SET state = $1, updated_at = $2 WHERE id = $3")
                .bind(state)
                .bind(e.updated_at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

async fn purge_idle(store: &Store, cutoff: i64) -> Result<u64, StoreError> {
    let n = write_pool!(store, pool => {
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
