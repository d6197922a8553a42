//! Signals between instances sharing one database: a change every instance must act on (a
//! catalog reload) bumps a named generation in `service_signals`; each instance polls the
//! generations and catches up when one moved past what it has seen. Polling one tiny table
//! every few seconds needs no broker and works the same on SQLite and PostgreSQL.

use super::{now_millis, Store, StoreError};
use crate::{with_pool, write_pool};

/// The intent catalog on disk changed: every instance reloads it.
pub const CATALOG: &str = "catalog";

/// Bumps `name`'s generation and returns the new one.
pub async fn bump(store: &Store, name: &str) -> Result<i64, StoreError> {
    let (generation,): (i64,) = write_pool!(store, pool => {
        sqlx::query_as(
            "INSERT INTO service_signals (name, generation, at) VALUES ($1, 1, $2) \
             ON CONFLICT (name) DO UPDATE SET generation = service_signals.generation + 1, at = $2 \
             RETURNING generation",
        )
        .bind(name)
        .bind(now_millis())
        .fetch_one(pool)
        .await?
    });
    Ok(generation)
}

/// The current generation of `name` (0 when it was never bumped).
pub async fn generation(store: &Store, name: &str) -> Result<i64, StoreError> {
    let row: Option<(i64,)> = with_pool!(store, pool => {
        sqlx::query_as("SELECT generation FROM service_signals WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map_or(0, |r| r.0))
}
