//! Test harness: `spawn_app` runs the real router on port 0 with a fresh database — a new
//! SQLite file, or a new PostgreSQL database created for the test and dropped after it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection;
use ventanilla::app::AppState;
use ventanilla::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Admin URL of the PostgreSQL server the tests create databases on.
pub fn pg_admin_url() -> String {
    std::env::var("VENTANILLA_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// `None` when PostgreSQL is unreachable outside CI (the test is then skipped loudly);
    /// under CI=true an unreachable PostgreSQL fails the test.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(Self {
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) => {
                        if std::env::var("CI").is_ok_and(|v| v == "true") {
                            note_postgres("unreachable");
                            panic!("PostgreSQL at {admin} is unreachable under CI=true: {e}");
                        }
                        eprintln!("SKIPPED: PostgreSQL at {admin} unreachable ({e})");
                        note_postgres("skipped");
                        return None;
                    }
                };
                note_postgres("ran");
                let name = format!("ventanilla_t_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Some(Self {
                    url: format!("{base}/{name}"),
                    pg_name: Some(name),
                    _dir: None,
                })
            }
        }
    }

    /// A database the test manages itself (a private PostgreSQL cluster, a restored SQLite
    /// file): nothing is created or dropped for it.
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pg_name: None,
            _dir: None,
        }
    }

    fn placeholder() -> Self {
        Self {
            url: String::new(),
            pg_name: None,
            _dir: None,
        }
    }

    pub fn pg_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async context: use a private runtime on a plain thread.
        let admin = pg_admin_url();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Appends "ran TEST", "skipped TEST" or "unreachable TEST" (under CI, which then fails) to
/// the file named by `VENTANILLA_TEST_PG_LOG`, so `scripts/test.sh` can count the PostgreSQL
/// tests that ran and those that did not (a skipped test passes, so the runner's own counts
/// cannot tell).
fn note_postgres(outcome: &str) {
    use std::io::Write;
    let Ok(path) = std::env::var("VENTANILLA_TEST_PG_LOG") else {
        return;
    };
    // libtest runs each test on a thread named after it; the binary tells test files apart.
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let test = format!("{binary}::{}", thread.name().unwrap_or("unnamed")).replace(' ', "_");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        let _ = writeln!(f, "{outcome} {test}");
    }
}

pub fn intents_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents")
}

pub fn test_config(db_url: &str) -> Config {
    let mut cfg = Config {
        database_url: db_url.into(),
        listen: "127.0.0.1:0".into(),
        intents_dir: intents_dir(),
        ..Config::default()
    };
    cfg.rate_limit.enabled = false;
    // Tests that are not about the second factor log in with a password alone; those that
    // are turn the requirement on themselves.
    cfg.require_2fa = Vec::new();
    cfg
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: TestDb,
    server: tokio::task::JoinHandle<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Creates a staff user directly in the store and logs in; returns the bearer token.
    pub async fn login_as(&self, username: &str, role: &str, department: Option<&str>) -> String {
        let role_v = ventanilla::staff::auth::Role::parse(role).expect("role");
        let hash = ventanilla::staff::auth::hash_password("correct horse battery").expect("hash");
        ventanilla::staff::auth::add_user(&self.state.store, username, &hash, role_v, department)
            .await
            .expect("add user");
        let resp = self
            .post_json(
                "/api/v1/auth/login",
                serde_json::json!({"username": username, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(resp.status(), 200, "login");
        let body: serde_json::Value = resp.json().await.expect("json");
        body["token"].as_str().expect("token").to_string()
    }
}

/// A resident's report of a pothole; `n` makes each filing's text differ.
pub fn pothole_report(n: usize) -> serde_json::Value {
    serde_json::json!({
        "type": "reclamo",
        "topic": "calles_veredas",
        "description": format!("Bache profundo frente al número {n} de la calle Serrano."),
        "name": "Pedro Soto",
        "email": "pedro@example.cl",
        "consent": true
    })
}

impl TestApp {
    /// Files `body` on the public API, asserts it was acknowledged (201) and returns the answer.
    pub async fn file_case(&self, body: serde_json::Value) -> serde_json::Value {
        let r = self.post_json("/api/v1/oirs/cases", body).await;
        assert_eq!(r.status(), 201, "filing acknowledged");
        r.json().await.expect("json")
    }

    /// Stops the server and its background jobs and hands back the database, to start
    /// another instance on it (a restart).
    pub fn stop(mut self) -> TestDb {
        self.server.abort();
        for h in &self.background {
            h.abort();
        }
        std::mem::replace(&mut self.db, TestDb::placeholder())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        for h in &self.background {
            h.abort();
        }
    }
}

/// Spawns the app on a fresh database of `backend`, with `tweak` applied to the config.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    Some(spawn_on(db, tweak).await)
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns the app on an existing test database.
pub async fn spawn_on(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut cfg = test_config(&db.url);
    tweak(&mut cfg);
    let state = AppState::build(cfg).await.expect("app state");
    let background = state.start_background().expect("background jobs");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = ventanilla::http::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        state,
        db,
        server,
        background,
    }
}

/// Polls `check` until it returns `Some`, for at most `limit`; no fixed sleeps in tests.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Runs an async test body once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(common::Backend::Postgres).await;
            }
        }
    };
}
