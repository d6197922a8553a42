//! Storage: one `Store` handle, one implementation per backend, chosen by the URL scheme.
//!
//! Domain modules write their queries once with `$N` placeholders (both SQLite and PostgreSQL
//! accept them) and run them through [`with_pool!`], which expands the same code for each
//! backend's pool. Where the SQL dialects really differ, the domain module matches on the enum.

pub mod backup;
pub mod signals;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// SQLite admits one writer at a time; writers of this process take turns here instead of
/// sleeping in SQLite's busy handler (which wakes late and wastes the lock).
pub type WriteGate = Arc<tokio::sync::Mutex<()>>;

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool, WriteGate),
    Postgres(PgPool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
    #[error("cannot create database directory {0}: {1}")]
    Directory(String, std::io::Error),
}

impl StoreError {
    /// The database cannot be reached or is going away (down, restarting, out of
    /// connections): worth a 503 and a retry, not a 500. PostgreSQL says so with class 08
    /// (connection exception) and 57P01–57P03 (shut down, crashed, not accepting yet).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlx(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => true,
            StoreError::Sqlx(sqlx::Error::Database(db)) => db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|pg| {
                    let code = pg.code();
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
                }),
            _ => false,
        }
    }

    /// Whether a unique constraint was violated (whichever).
    pub fn unique_violation(&self) -> bool {
        matches!(self, StoreError::Sqlx(sqlx::Error::Database(db)) if db.is_unique_violation())
    }

    /// Whether this is the violation of `c`. PostgreSQL names the constraint; SQLite names
    /// the columns at the end of its message ("UNIQUE constraint failed: users.username").
    pub fn violates(&self, c: &Constraint) -> bool {
        let StoreError::Sqlx(sqlx::Error::Database(db)) = self else {
            return false;
        };
        match db.constraint() {
            Some(name) => name == c.postgres,
            None => db.message().ends_with(c.sqlite),
        }
    }

    /// Any integrity violation (unique, foreign key, check, not null): the request clashed
    /// with what is stored, as opposed to the database failing.
    pub fn integrity_violation(&self) -> bool {
        matches!(self, StoreError::Sqlx(sqlx::Error::Database(db))
            if !matches!(db.kind(), sqlx::error::ErrorKind::Other))
    }
}

/// A constraint, named as each backend reports it; call sites map the ones they expect to
/// their own answer (realworld's `on_constraint`), and no answer ever quotes the database.
#[derive(Clone, Copy, Debug)]
pub struct Constraint {
    pub postgres: &'static str,
    pub sqlite: &'static str,
}

pub const USERS_USERNAME: Constraint = Constraint {
    postgres: "users_username_key",
    sqlite: "users.username",
};

pub const CATALOG_EXAMPLES_NORMALIZED: Constraint = Constraint {
    postgres: "catalog_examples_normalized_key",
    sqlite: "catalog_examples.normalized",
};

pub const CATALOG_INTENTS_ID: Constraint = Constraint {
    postgres: "catalog_intents_pkey",
    sqlite: "catalog_intents.id",
};

pub const IDEMPOTENCY_KEY: Constraint = Constraint {
    postgres: "idempotency_keys_pkey",
    sqlite: "idempotency_keys.key",
};

/// Runs `$body` with `$pool` bound to whichever backend `$store` uses. The body is compiled
/// once per backend, so it must only use SQL and types both accept.
#[macro_export]
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool, _) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

/// [`with_pool!`] for statements that write: on SQLite it first waits for this process's turn
/// to write (the write gate), so writers queue here instead of in SQLite's busy handler. Every
/// write goes through it; a test scans the sources for writes run through `with_pool!`.
#[macro_export]
macro_rules! write_pool {
    ($store:expr, $pool:ident => $body:expr) => {{
        let _gate = $store.write_gate().await;
        $crate::with_pool!($store, $pool => $body)
    }};
}

macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($name),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(concat!("../../migrations/", $dir, "/", stringify!($version), "_", $name, ".sql"))),
            false,
        )),*]
    };
}

fn sqlite_migrations() -> Vec<Migration> {
    migrations!("sqlite": 1 "init", 2 "oirs", 3 "journey", 4 "privacy", 5 "integrity", 6 "instances", 7 "review", 8 "casework", 9 "feedback", 10 "open311", 11 "support", 12 "signin")
}

fn postgres_migrations() -> Vec<Migration> {
    migrations!("postgres": 1 "init", 2 "oirs", 3 "journey", 4 "privacy", 5 "integrity", 6 "instances", 7 "review", 8 "casework", 9 "feedback", 10 "open311", 11 "support", 12 "signin")
}

/// How hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every commit reaches the disk before it returns: cases, events, outbox, users.
    Full,
    /// Commits return before the disk flush (SQLite WAL `synchronous=NORMAL`, PostgreSQL
    /// `synchronous_commit=off`); the database stays consistent but a power cut may lose the
    /// last moments. For chat sessions and analytics events, where that is acceptable and a
    /// flush per message would cap throughput.
    Relaxed,
}

impl Store {
    /// Opens (and for SQLite creates) the database named by `url`, with full durability.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, Durability::Full, Arc::default()).await
    }

    /// Another handle on the same database with relaxed durability, sharing this one's
    /// write gate.
    pub async fn relaxed_twin(&self, url: &str) -> Result<Self, StoreError> {
        let gate = match self {
            Store::Sqlite(_, g) => g.clone(),
            Store::Postgres(_) => Arc::default(),
        };
        Self::open(url, Durability::Relaxed, gate).await
    }

    /// Waits for this process's turn to write (SQLite); a no-op on PostgreSQL, whose row
    /// locks already queue writers.
    pub async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self {
            Store::Sqlite(_, g) => Some(g.lock().await),
            Store::Postgres(_) => None,
        }
    }

    async fn open(url: &str, durability: Durability, gate: WriteGate) -> Result<Self, StoreError> {
        let relaxed = durability == Durability::Relaxed;
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(if relaxed {
                    SqliteSynchronous::Normal
                } else {
                    SqliteSynchronous::Full
                })
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(parent) = opts.get_filename().parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Directory(parent.display().to_string(), e))?;
                }
            }
            // A local file does not drop connections: skip the ping before every acquire.
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Store::Sqlite(pool, gate))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut opts = PgConnectOptions::from_str(url)?;
            if relaxed {
                opts = opts.options([("synchronous_commit", "off")]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(opts)
                .await?;
            Ok(Store::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(..) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the backend's migrations; idempotent.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = match self {
            Store::Sqlite(..) => sqlite_migrations(),
            Store::Postgres(_) => postgres_migrations(),
        };
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        with_pool!(self, pool => migrator.run(pool).await?);
        Ok(())
    }

    /// Versions of the migrations applied so far.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        let rows: Vec<(i64,)> =
            with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => { sqlx::query("SELECT 1").execute(pool).await?; });
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, pool => { pool.close().await; })
    }
}

/// Lower-case hex SHA-256: how secrets that must be checked but never read back (session
/// tokens, tracking codes) and request fingerprints are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Milliseconds since the Unix epoch; the storage representation of instants on both backends.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
