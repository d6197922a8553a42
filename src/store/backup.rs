//! Backup and restore of the embedded SQLite store (`ventanilla backup` / `restore`).
//!
//! A backup is `VACUUM INTO`: one read transaction, so the copy is a consistent snapshot of
//! every commit before it started, taken while the service keeps writing (WAL readers do not
//! block writers). A restore refuses to replace a store that holds data unless forced, checks
//! the copy and brings it to this version's schema before putting it in place, and moves a
//! replaced store aside instead of deleting it. PostgreSQL has its own tools (pg_dump,
//! pg_restore); both commands say so.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use super::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "{0} works on the embedded SQLite store only; for PostgreSQL use {1} (see the README, \
         \"Backup and restore\")"
    )]
    Postgres(&'static str, &'static str),
    #[error("DATABASE_URL is neither sqlite: nor postgres://")]
    UnsupportedUrl,
    #[error("no database at {0}")]
    Missing(PathBuf),
    #[error("{0} already exists; choose a new file name")]
    Exists(PathBuf),
    #[error("{0} is not a Ventanilla store: {1}")]
    NotAStore(PathBuf, String),
    #[error(
        "the store at {path} is not empty ({held}); restoring would replace it. Stop the \
         service and run again with --force (the current store is kept aside)"
    )]
    NotEmpty { path: PathBuf, held: String },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What a backup or restore wrote.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub cases: i64,
    pub bytes: u64,
    /// Where a forced restore moved the store it replaced.
    pub replaced: Option<PathBuf>,
}

/// The SQLite file named by `url`, or why there is none.
fn sqlite_file(
    url: &str,
    command: &'static str,
    tool: &'static str,
) -> Result<PathBuf, BackupError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(BackupError::Postgres(command, tool));
    }
    if !url.starts_with("sqlite:") {
        return Err(BackupError::UnsupportedUrl);
    }
    let opts = SqliteConnectOptions::from_str(url)?;
    Ok(opts.get_filename().to_path_buf())
}

/// One connection to an existing SQLite file (never creates it).
async fn open(path: &Path) -> Result<SqliteConnection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing(path.to_path_buf()));
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10));
    Ok(SqliteConnection::connect_with(&opts).await?)
}

/// `<file>` + `suffix`, e.g. the WAL of `data/v.db` is `data/v.db-wal`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

async fn table_exists(conn: &mut SqliteConnection, name: &str) -> Result<bool, BackupError> {
    let n: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    Ok(n.0 > 0)
}

async fn count(conn: &mut SqliteConnection, table: &str) -> Result<i64, BackupError> {
    if !table_exists(conn, table).await? {
        return Ok(0);
    }
    let n: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n.0)
}

/// Checks that `path` is an intact Ventanilla store; returns its number of cases.
async fn check_store(path: &Path) -> Result<i64, BackupError> {
    let mut conn = open(path).await?;
    let not_a_store = |why: String| BackupError::NotAStore(path.to_path_buf(), why);
    let check: Result<(String,), _> = sqlx::query_as("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await;
    match check {
        Ok((ok,)) if ok == "ok" => {}
        Ok((problem,)) => return Err(not_a_store(format!("integrity check: {problem}"))),
        Err(e) => return Err(not_a_store(e.to_string())),
    }
    for table in ["_sqlx_migrations", "cases"] {
        if !table_exists(&mut conn, table).await? {
            return Err(not_a_store(format!("no {table} table")));
        }
    }
    let cases = count(&mut conn, "cases").await?;
    conn.close().await?;
    Ok(cases)
}

/// `VACUUM INTO`: a consistent single-file copy of `from` at `to`, which must not exist.
async fn vacuum_into(from: &Path, to: &Path) -> Result<(), BackupError> {
    let mut conn = open(from).await?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(to.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await;
    conn.close().await?;
    copied?;
    Ok(())
}

/// Writes a consistent copy of the SQLite store at `url` into `dest`, a new file.
pub async fn backup(url: &str, dest: &Path) -> Result<Written, BackupError> {
    let source = sqlite_file(url, "backup", "pg_dump")?;
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| BackupError::Io(dir.to_path_buf(), e))?;
    }
    // Written under another name first, so a failed backup never looks like a good one.
    let partial = with_suffix(dest, ".partial");
    let _ = std::fs::remove_file(&partial);
    let cases = match vacuum_into(&source, &partial).await {
        Ok(()) => check_store(&partial).await,
        Err(e) => Err(e),
    };
    let cases = cases.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, dest).map_err(|e| BackupError::Io(dest.to_path_buf(), e))?;
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(Written {
        path: dest.to_path_buf(),
        cases,
        bytes,
        replaced: None,
    })
}

/// What a store holds beyond the seeded defaults, e.g. "12 cases, 3 staff users"; empty when
/// nothing.
async fn held(path: &Path) -> Result<String, BackupError> {
    let mut conn = open(path).await?;
    let mut held = Vec::new();
    for (table, what) in [
        ("cases", "cases"),
        ("users", "staff users"),
        ("interactions", "chat interactions"),
    ] {
        let n = count(&mut conn, table).await?;
        if n > 0 {
            held.push(format!("{n} {what}"));
        }
    }
    conn.close().await?;
    Ok(held.join(", "))
}

/// Puts the backup at `src` in place of the SQLite store at `url`. Refuses a store that holds
/// cases, staff users or chat interactions unless `force`; then the replaced store is moved
/// aside (`<file>.replaced-<epoch ms>`). The service must be stopped.
pub async fn restore(url: &str, src: &Path, force: bool) -> Result<Written, BackupError> {
    let target = sqlite_file(url, "restore", "pg_restore")?;
    check_store(src).await?;
    let held = if !target.exists() {
        String::new()
    } else {
        match held(&target).await {
            Ok(held) => held,
            // A store too broken to read is what --force is for; it is kept aside too.
            Err(e) if force => format!("unreadable: {e}"),
            Err(e) => return Err(e),
        }
    };
    if !held.is_empty() && !force {
        return Err(BackupError::NotEmpty {
            path: target.clone(),
            held,
        });
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| BackupError::Io(dir.to_path_buf(), e))?;
    }
    // The copy is brought to this version's schema before it goes in place (a backup
    // written by a newer version fails here and leaves the current store untouched), on a
    // scratch file so the backup itself stays as it was. VACUUM INTO reads through SQLite,
    // so a source with a WAL of its own comes over whole, and the final copy is one file.
    let scratch = with_suffix(&target, ".migrating");
    let partial = with_suffix(&target, ".restoring");
    let remove = |file: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(file, suffix));
        }
    };
    remove(&scratch);
    remove(&partial);
    let result = async {
        vacuum_into(src, &scratch).await?;
        let store = Store::connect(&format!("sqlite://{}", scratch.display())).await?;
        let migrated = store.migrate().await;
        store.close().await;
        migrated?;
        vacuum_into(&scratch, &partial).await
    }
    .await;
    remove(&scratch);
    if let Err(e) = result {
        remove(&partial);
        return Err(e);
    }
    let replaced = if held.is_empty() {
        None
    } else {
        Some(with_suffix(
            &target,
            &format!(".replaced-{}", super::now_millis()),
        ))
    };
    for suffix in ["", "-wal", "-shm"] {
        let old = with_suffix(&target, suffix);
        if !old.exists() {
            continue;
        }
        let moved = match &replaced {
            Some(aside) => std::fs::rename(&old, with_suffix(aside, suffix)),
            None => std::fs::remove_file(&old),
        };
        moved.map_err(|e| BackupError::Io(old.clone(), e))?;
    }
    std::fs::rename(&partial, &target).map_err(|e| BackupError::Io(target.clone(), e))?;
    let cases = check_store(&target).await?;
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    Ok(Written {
        path: target,
        cases,
        bytes,
        replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_point_at_its_tools() {
        let e = sqlite_file("postgres://u@h/db", "backup", "pg_dump").expect_err("pg");
        assert!(e.to_string().contains("pg_dump"), "{e}");
        let e = sqlite_file("postgresql://u@h/db", "restore", "pg_restore").expect_err("pg");
        assert!(e.to_string().contains("pg_restore"), "{e}");
        assert_eq!(
            sqlite_file("sqlite://data/v.db", "backup", "pg_dump").expect("sqlite"),
            PathBuf::from("data/v.db")
        );
    }

    #[test]
    fn companion_files_keep_the_name() {
        assert_eq!(
            with_suffix(Path::new("data/v.db"), "-wal"),
            PathBuf::from("data/v.db-wal")
        );
    }
}
