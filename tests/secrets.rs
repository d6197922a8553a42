//! Secrets at rest, on both backends: after a filing with an Idempotency-Key (replayed),
//! e-mails and a webhook that cannot be delivered, and a staff login, neither the raw SQLite
//! files nor a PostgreSQL dump contain the tracking code, the Idempotency-Key, the password or
//! the session token; and delivery errors keep no addresses.

mod common;

use std::time::Duration;

use common::{spawn_app_with, Backend, TestApp};
use serde_json::{json, Value};

/// A port nothing listens on: bind, note, close.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").port()
}

async fn file(app: &TestApp, key: &str) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/oirs/cases"))
        .header("idempotency-key", key)
        .json(&json!({
            "type": "reclamo", "topic": "alumbrado_publico",
            "description": "El foco de la esquina lleva una semana apagado.",
            "name": "Juana Secreta", "email": "juana.secreta@example.cl", "consent": true
        }))
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.expect("json"))
}

/// Everything the store holds, as bytes: the SQLite files, or a pg_dump of the database.
async fn raw_store(app: &TestApp) -> Vec<u8> {
    match app.db.pg_name() {
        None => {
            let path = app
                .state
                .config
                .database_url
                .trim_start_matches("sqlite://")
                .to_string();
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    all.extend(bytes);
                }
            }
            assert!(!all.is_empty(), "no database files at {path}");
            all
        }
        Some(name) => {
            let out = std::process::Command::new("pg_dump")
                .args(["-h", "127.0.0.1", "-U", "postgres", "--data-only", name])
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

async fn no_secret_is_recoverable_from_the_store(backend: Backend) {
    let (hook, smtp) = (closed_port().await, closed_port().await);
    let Some(app) = spawn_app_with(backend, move |c| {
        c.outbox.webhook_url = Some(format!("http://127.0.0.1:{hook}/hook"));
        c.webhook_secret = ventanilla::config::Secret::new("whsec-test");
        c.outbox.base_backoff_ms = 10;
        c.outbox.max_backoff_ms = 20;
        c.outbox.poll_ms = 10;
        c.outbox.max_attempts = 2;
        c.smtp.host = Some("127.0.0.1".into());
        c.smtp.port = smtp;
    })
    .await
    else {
        return;
    };
    let key = "clave-idempotencia-7f3a9c";
    let (status, filed) = file(&app, key).await;
    assert_eq!(status, 201, "{filed}");
    let code = filed["tracking_code"].as_str().expect("code").to_string();
    // A replay still answers the code, though the store does not keep it.
    let (status, again) = file(&app, key).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["tracking_code"], code.as_str());
    assert_eq!(again["folio"], filed["folio"]);

    let token = app.login_as("jefa", "admin", None).await;
    // Wait until every message has been tried and given up on.
    let settled = common::wait_for(Duration::from_secs(30), || async {
        let rows: Vec<(String, Option<String>)> = ventanilla::with_pool!(&app.state.store, pool => {
            sqlx::query_as("SELECT status, last_error FROM outbox").fetch_all(pool).await.expect("rows")
        });
        (!rows.is_empty() && rows.iter().all(|(s, _)| s == "dead")).then_some(rows)
    })
    .await
    .expect("deliveries given up");
    for (_, err) in &settled {
        let err = err.as_deref().unwrap_or("");
        assert!(!err.is_empty() && !err.contains("@example.cl"), "{err}");
    }

    let raw = raw_store(&app).await;
    assert!(
        contains(&raw, "Juana Secreta"),
        "the scan reads the data it should"
    );
    for (what, secret) in [
        ("tracking code", code.as_str()),
        ("Idempotency-Key", key),
        ("session token", token.as_str()),
        ("password", "correct horse battery"),
    ] {
        assert!(
            !contains(&raw, secret),
            "the {what} is readable in the store"
        );
    }
}
on_both_backends!(no_secret_is_recoverable_from_the_store);
